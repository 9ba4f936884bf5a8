import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firewallRuleSchema, firewallSchema } from './firewall.ts';
import { tcpFlagsMaskValue } from './match.ts';
import { parseAt } from './schema.ts';
import { formatIssue } from './issue.ts';

const PATH = ['tenants', 'acme', 'firewall'];

function fw(value: unknown) {
  const r = parseAt(firewallSchema, value, PATH);
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  return r.value;
}

function fwIssues(value: unknown): string[] {
  const r = parseAt(firewallSchema, value, PATH);
  assert.ok(!r.ok, 'expected the firewall to be refused');
  return r.error.map(formatIssue);
}

const DEFAULT = { ingress: 'drop', egress: 'accept' };

test("the seed's rule: accept TCP 20–21 to 203.0.113.100, default drop for ingress", () => {
  // `nft add rule inet filter prerouting ip daddr 203.0.113.100 tcp dport 20-21 accept`
  const f = fw({
    default: DEFAULT,
    rules: [{ id: 'ftp', direction: 'ingress', dst: ['203.0.113.100'], protocol: 'tcp', dport: ['20-21'], action: 'accept' }],
  });
  assert.deepEqual(f, {
    default: { ingress: 'drop', egress: 'accept' },
    rules: [{ id: 'ftp', direction: 'ingress', dst: ['203.0.113.100/32'], protocol: 'tcp', dport: ['20-21'], action: 'accept' }],
  });
  // The same rule spelled differently is the same stored value.
  const alt = fw({ default: DEFAULT, rules: [{ id: 'ftp', direction: 'ingress', dst: '203.0.113.100/32', protocol: 6, dport: [21, 20], action: 'accept' }] });
  assert.deepEqual(alt, f);
});

test('rules keep their order and every match field is expressible', () => {
  const f = fw({
    default: { ingress: 'drop', egress: 'drop' },
    rules: [
      { id: 'syn', direction: 'ingress', src: ['192.0.2.0/24', '2001:db8::/32'], protocol: 'tcp', sport: ['1024-65535'], dport: [443, 80], tcpFlags: { set: ['syn'], unset: ['ack'] }, length: '40-1500', action: 'rate-limit', rateLimit: { pps: 1000, burst: 100 } },
      { id: 'ping', direction: 'ingress', protocol: 'icmpv6', icmp: { type: 'echo-request', code: 0 }, action: 'accept' },
      { id: 'out', direction: 'egress', dst: ['0.0.0.0/0'], action: 'accept' },
      { id: 'udp', direction: 'egress', protocol: 17, length: 64, action: 'drop' },
    ],
  });
  assert.deepEqual(
    f.rules.map((r) => r.id),
    ['syn', 'ping', 'out', 'udp'],
  );
  const [syn, ping, , udp] = f.rules;
  assert.deepEqual(syn!.dport, [80, 443]);
  assert.deepEqual(syn!.sport, ['1024-65535']);
  assert.deepEqual(syn!.tcpFlags, { set: ['syn'], unset: ['ack'] });
  assert.deepEqual(tcpFlagsMaskValue(syn!.tcpFlags!), { mask: 0x12, value: 0x02 }); // tcp flags & (syn|ack) == syn
  assert.equal(syn!.length, '40-1500');
  assert.deepEqual(syn!.rateLimit, { pps: 1000, burst: 100 });
  assert.deepEqual(ping!.icmp, { type: 128, code: 0 }); // ICMPv6 echo request
  assert.equal(udp!.protocol, 'udp');
  assert.equal(udp!.length, 64);
});

test('a default action per direction is required', () => {
  assert.deepEqual(fwIssues({ rules: [] }), ['tenants/acme/firewall.default: required field is missing; add it']);
  assert.deepEqual(fwIssues({ default: { ingress: 'reject', egress: 'accept' } }), [
    'tenants/acme/firewall.default.ingress: "reject" is not allowed; use one of accept, drop',
  ]);
  assert.deepEqual(fw({ default: DEFAULT }).rules, []);
});

test('fields that need a protocol say which', () => {
  const issues = fwIssues({
    default: DEFAULT,
    rules: [
      { id: 'a', direction: 'ingress', dport: [80], action: 'accept' },
      { id: 'b', direction: 'ingress', protocol: 'udp', tcpFlags: { set: ['syn'] }, action: 'accept' },
      { id: 'c', direction: 'ingress', protocol: 'tcp', icmp: { type: 8 }, action: 'accept' },
    ],
  });
  assert.deepEqual(issues, [
    'tenants/acme/firewall.rules.0.dport: ports need protocol tcp, udp, sctp, dccp, udplite; set protocol',
    'tenants/acme/firewall.rules.1.tcpFlags: TCP flags need protocol tcp, not udp; set protocol: tcp',
    'tenants/acme/firewall.rules.2.icmp: an ICMP type needs protocol icmp or icmpv6, not tcp; set protocol',
  ]);
});

test('address families must fit each other and the protocol', () => {
  assert.deepEqual(
    fwIssues({ default: DEFAULT, rules: [{ id: 'a', direction: 'ingress', protocol: 'icmp', dst: ['203.0.113.0/25', '2001:db8::/32'], action: 'accept' }] }),
    ['tenants/acme/firewall.rules.0.dst.1: 2001:db8::/32 is IPv6 but protocol icmp is IPv4 only; put it in a separate rule with protocol icmpv6'],
  );
  assert.deepEqual(
    fwIssues({ default: DEFAULT, rules: [{ id: 'a', direction: 'ingress', src: ['192.0.2.0/24'], dst: ['2001:db8::/32'], action: 'accept' }] }),
    ['tenants/acme/firewall.rules.0.dst: dst has only IPv6 prefixes and src only IPv4; no packet has both, so split the rule by family'],
  );
});

test('bad values name the rule, the field and the fix', () => {
  const issues = fwIssues({
    default: DEFAULT,
    rules: [
      { id: 'a', direction: 'in', protocol: 'tcp', dport: ['21-20'], action: 'allow' },
      { id: 'b', direction: 'ingress', dst: ['203.0.113.100/24'], action: 'accept', port: 80 },
      { id: 'c', direction: 'ingress', protocol: 'tcp', tcpFlags: { set: ['syn'], unset: ['syn'] }, action: 'accept' },
      { id: 'd', direction: 'ingress', icmp: { type: 'ping' }, protocol: 'icmp', action: 'accept' },
      { id: 'e', direction: 'ingress', length: '100-70000', action: 'accept' },
    ],
  });
  assert.deepEqual(issues, [
    'tenants/acme/firewall.rules.0.direction: "in" is not allowed; use one of ingress, egress',
    'tenants/acme/firewall.rules.0.dport.0: "21-20": the low end is above the high end; write 20-21',
    'tenants/acme/firewall.rules.0.action: "allow" is not allowed; use one of accept, drop, rate-limit',
    'tenants/acme/firewall.rules.1.dst.0: "203.0.113.100/24" is not canonical (host bits are set after /24); use 203.0.113.0/24',
    'tenants/acme/firewall.rules.1.port: unknown field "port"; did you mean "sport"?; known fields: id, description, direction, src, dst, protocol, sport, dport, tcpFlags, icmp, length, action, rateLimit',
    'tenants/acme/firewall.rules.2.tcpFlags.unset.0: syn is both set and unset, so nothing can match; keep it in one list',
    'tenants/acme/firewall.rules.3.icmp.type: unknown icmp type "ping"; use a number 0–255 or one of echo-reply, destination-unreachable, source-quench, redirect, echo-request, router-advertisement, router-solicitation, time-exceeded, parameter-problem, timestamp-request, timestamp-reply',
    'tenants/acme/firewall.rules.4.length: "100-70000": 70000 is not a packet length; use 0–65535',
  ]);
});

test('rate-limit needs a rate, other actions refuse one; rule ids are unique', () => {
  assert.deepEqual(
    fwIssues({
      default: DEFAULT,
      rules: [
        { id: 'a', direction: 'ingress', action: 'rate-limit' },
        { id: 'b', direction: 'ingress', action: 'drop', rateLimit: { pps: 5 } },
        { id: 'c', direction: 'ingress', action: 'rate-limit', rateLimit: { pps: 5, bps: 5 } },
        { id: 'a', direction: 'egress', action: 'accept' },
      ],
    }),
    [
      'tenants/acme/firewall.rules.0.rateLimit: action rate-limit needs a rate; add rateLimit: { pps: 1000 } (or bps)',
      'tenants/acme/firewall.rules.1.rateLimit: rateLimit only applies to action rate-limit, not drop; remove it or change the action',
      'tenants/acme/firewall.rules.2.rateLimit: give exactly one of pps (packets/s) or bps (bits/s), e.g. { pps: 1000 }',
      'tenants/acme/firewall.rules.3.id: rule id "a" is already used by rules.0; rule ids must be unique within the tenant',
    ],
  );
});

test('a missing rate is reported together with other mistakes of the rule', () => {
  assert.deepEqual(fwIssues({ default: DEFAULT, rules: [{ id: 'a', direction: 'ingress', protocol: 'tcp', dport: [70000], action: 'rate-limit' }] }), [
    'tenants/acme/firewall.rules.0.dport.0: 70000 is not a port: use 0–65535',
    'tenants/acme/firewall.rules.0.rateLimit: action rate-limit needs a rate; add rateLimit: { pps: 1000 } (or bps)',
  ]);
});

test('a single rule parses on its own (the compiler reads FirewallRule)', () => {
  const r = firewallRuleSchema.parse({ id: 'x', direction: 'egress', protocol: 'icmp', icmp: { type: 3, code: 4 }, action: 'accept' });
  assert.deepEqual(r.icmp, { type: 3, code: 4 });
});
