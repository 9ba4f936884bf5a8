// One test per object of DESIGN §3: what a valid value is stored as, and the message a wrong one
// gets. Issues are compared in their printed form, since that is what an operator reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import { parseAt } from './schema.ts';
import { formatIssue } from './issue.ts';
import { dcSchema, serverSchema } from './dc.ts';
import { anycastSchema } from './anycast.ts';
import { prefixSchema, tenantSchema } from './tenant.ts';
import { defaultMtu, tunnelSchema } from './tunnel.ts';
import { routeSchema } from './route.ts';
import { egressAssignmentSchema, egressPoolSchema, slicesPerAddress } from './egress.ts';
import { dosRuleSchema } from './dos.ts';
import { idProblem, isId } from './id.ts';

/** Parses at a fixed path and returns the value, failing the test with the issues if any. */
function good<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = parseAt(schema, value, ['x']);
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  return r.value;
}

/** Parses and returns the printed issues, failing the test if the value is accepted. */
function bad(schema: z.ZodType, value: unknown, path: string[] = ['x']): string[] {
  const r = parseAt(schema, value, path);
  assert.ok(!r.ok, `expected ${JSON.stringify(value)} to be refused`);
  return r.error.map(formatIssue);
}

test('ids: [a-z0-9-]{1,32}, not starting with "-"', () => {
  for (const ok of ['acme', 'a', 'gre-1', '0', 'x'.repeat(32)]) assert.ok(isId(ok), ok);
  for (const no of ['', 'Acme', 'a_b', 'a.b', '-a', 'x'.repeat(33), 'a b', 'é']) assert.ok(!isId(no), no);
  assert.match(idProblem('x'.repeat(33), 'tenant id')!, /is not a valid tenant id \(too long\)/);
  assert.match(idProblem('-x')!, /starts with "-"/);
  assert.equal(idProblem('ok'), undefined);
});

test('data centers and servers', () => {
  assert.deepEqual(good(dcSchema, { name: 'Amsterdam', backbone: ['192.0.2.1/30', '2001:DB8::1/64'] }), {
    name: 'Amsterdam',
    backbone: ['192.0.2.1/30', '2001:db8::1/64'],
  });
  assert.deepEqual(bad(dcSchema, { name: 'Amsterdam', backbone: [] }, ['dcs', 'ams']), [
    'dcs/ams.backbone: needs at least one address (the DC router on the backbone), e.g. [192.0.2.6/30]',
  ]);
  assert.deepEqual(bad(dcSchema, { name: 'A\nB', backbone: ['192.0.2.1/30'], servers: 3 }, ['dcs', 'ams']), [
    'dcs/ams.name: must not contain control characters (newlines, tabs, escapes); write it on one line',
    'dcs/ams.servers: unknown field "servers"; known fields: name, location, backbone',
  ]);
  // A server defaults to active, and its uplink must be a name the kernel accepts.
  assert.deepEqual(good(serverSchema, { uplink: 'eth0', addresses: ['192.0.2.18/28'] }), { uplink: 'eth0', addresses: ['192.0.2.18/28'], state: 'active' });
  assert.deepEqual(bad(serverSchema, { uplink: 'a-very-long-interface', addresses: ['192.0.2.18/28'], state: 'drain' }, ['dcs', 'ams', 'servers', 's1']), [
    'dcs/ams/servers/s1.uplink: "a-very-long-interface" is not a Linux interface name: use 1–15 characters from A–Z, a–z, 0–9, "_", "." and "-", e.g. eth0',
    'dcs/ams/servers/s1.state: "drain" is not allowed; use one of active, draining, down; did you mean "draining"?',
  ]);
  assert.deepEqual(bad(serverSchema, { uplink: 'eth0', addresses: ['192.0.2.18'] }), [
    'x.addresses.0: "192.0.2.18" has no prefix length; write 192.0.2.18/32 for a single address, or the network with its length, e.g. 203.0.113.0/24',
  ]);
});

test('anycast: endpoints and services lie inside the announced ranges, once each', () => {
  const a = good(anycastSchema, { ranges: ['198.51.100.0/28', '2001:db8:100::/48'], greEndpoints: ['198.51.100.1', '2001:db8:100::1'], services: ['198.51.100.2'] });
  assert.deepEqual(a.egressRanges, []);
  assert.deepEqual(bad(anycastSchema, { ranges: ['198.51.100.0/28'], greEndpoints: ['198.51.100.1', '198.51.100.99'], services: ['198.51.100.1'] }, ['anycast']), [
    'anycast.greEndpoints.1: 198.51.100.99 is not inside any of ranges (198.51.100.0/28); add its prefix to ranges so it is announced',
    'anycast.services.0: 198.51.100.1 is already listed at greEndpoints.0; an address is either a GRE endpoint or a service, once',
  ]);
  assert.deepEqual(bad(anycastSchema, { ranges: ['198.51.100.1/24'] }, ['anycast']), [
    'anycast.ranges.0: "198.51.100.1/24" is not canonical (host bits are set after /24); use 198.51.100.0/24',
  ]);
});

test('tenants and prefixes', () => {
  assert.deepEqual(good(tenantSchema, { name: 'Acme Corp' }), { name: 'Acme Corp', status: 'active' });
  assert.deepEqual(bad(tenantSchema, { name: 'Acme', status: 'paused', tokenHash: 'secret' }, ['tenants', 'acme']), [
    'tenants/acme.status: "paused" is not allowed; use one of active, suspended',
    'tenants/acme.tokenHash: must be "sha256:" followed by 64 lower-case hex digits (the hash of the API token, never the token)',
  ]);
  assert.deepEqual(good(prefixSchema, { cidr: '2001:db8:ac::/48' }), { cidr: '2001:db8:ac::/48' });
  assert.deepEqual(bad(prefixSchema, { cidr: '203.0.113.7/25' }, ['tenants', 'acme', 'prefixes', 'p1']), [
    'tenants/acme/prefixes/p1.cidr: "203.0.113.7/25" is not canonical (host bits are set after /25); use 203.0.113.0/25',
  ]);
  assert.deepEqual(bad(prefixSchema, {}, ['p']), ['p.cidr: required field is missing; add it']);
});

test('tunnels: MTU 576–9000, default 1476 for GRE over IPv4 on a 1500 path', () => {
  const t = good(tunnelSchema, { customerEndpoint: '198.51.100.200' });
  assert.equal(t.type, 'gre');
  assert.equal(t.mtu, 1476);
  assert.equal(t.key, undefined);
  // A key costs 4 bytes and an IPv6 outer header 20 more; the default follows.
  assert.equal(good(tunnelSchema, { customerEndpoint: '198.51.100.200', key: 42 }).mtu, 1472);
  assert.equal(good(tunnelSchema, { customerEndpoint: '2001:db8::200' }).mtu, 1456);
  assert.equal(defaultMtu(4, false), 1476);
  // An explicit MTU is kept, both bounds included.
  assert.equal(good(tunnelSchema, { customerEndpoint: '198.51.100.200', mtu: 576 }).mtu, 576);
  assert.equal(good(tunnelSchema, { customerEndpoint: '198.51.100.200', mtu: 9000 }).mtu, 9000);
  for (const mtu of [575, 9001, 1400.5])
    assert.deepEqual(bad(tunnelSchema, { customerEndpoint: '198.51.100.200', mtu }, ['tenants', 'acme', 'tunnels', 't1']), [
      `tenants/acme/tunnels/t1.mtu: must be an integer 576–9000 bytes; got ${mtu} (GRE over a 1500-byte path fits 1476)`,
    ]);
  assert.deepEqual(
    bad(tunnelSchema, { type: 'ipip', customerEndpoint: '198.51.100.300', key: 2 ** 32, anycastEndpoint: '2001:db8::1' }, ['t']).map((m) => m.split(':')[0]),
    ['t.type', 't.customerEndpoint', 't.key'],
  );
  assert.deepEqual(bad(tunnelSchema, { customerEndpoint: '198.51.100.200', anycastEndpoint: '2001:db8:100::1' }, ['t']), [
    't.anycastEndpoint: 2001:db8:100::1 is IPv6 but customerEndpoint 198.51.100.200 is IPv4; use a GRE endpoint of the same family',
  ]);
  assert.deepEqual(bad(tunnelSchema, { customerEndpoint: '198.51.100.200', healthCheck: { intervalMs: 1000, timeoutMs: 1000 } }, ['t']), [
    't.healthCheck.timeoutMs: must be shorter than intervalMs (1000), or probes overlap; lower timeoutMs or raise intervalMs',
  ]);
});

test('routes: prefix and next hops', () => {
  assert.deepEqual(good(routeSchema, { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1' }, { tunnel: 'gre2', priority: 200, weight: 3 }] }).via, [
    { tunnel: 'gre1', priority: 100, weight: 1 },
    { tunnel: 'gre2', priority: 200, weight: 3 },
  ]);
  assert.deepEqual(bad(routeSchema, { prefix: '203.0.113.0/25', via: [] }, ['r']), ['r.via: needs at least one next hop, e.g. [{ tunnel: gre1 }]']);
  assert.deepEqual(bad(routeSchema, { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1' }, { tunnel: 'gre1' }] }, ['r']), [
    'r.via.1.tunnel: tunnel gre1 is already next hop 0; list each tunnel once and use weight to shift traffic',
  ]);
  assert.deepEqual(bad(routeSchema, { prefix: '203.0.113.0/25', via: [{ tunnel: 'GRE1', weight: 0 }] }, ['r']).map((m) => m.split(':')[0]), [
    'r.via.0.tunnel',
    'r.via.0.weight',
  ]);
});

test('egress pools: tags, and a slice size that is a sane power of two', () => {
  const p = good(egressPoolSchema, { cidrs: ['198.51.100.64/27'], tags: { class: 'trusted', country: 'nl' } });
  assert.equal(p.sliceSize, 2048);
  assert.equal(p.tags.country, 'NL');
  assert.equal(slicesPerAddress(2048), 31); // DESIGN §1: slice 0 reserved → 31 servers per address
  for (const sliceSize of [1000, 32, 65536])
    assert.match(bad(egressPoolSchema, { cidrs: ['198.51.100.64/27'], tags: { class: 'trusted', country: 'NL' }, sliceSize }, ['p'])[0]!, /^p\.sliceSize: must be a power of two 64–32768/);
  assert.deepEqual(bad(egressPoolSchema, { cidrs: [], tags: { class: 'vip', country: 'UK' } }, ['p']), [
    'p.cidrs: needs at least one prefix, e.g. [198.51.100.64/26]',
    'p.tags.class: "vip" is not allowed; use one of trusted, untrusted',
    'p.tags.country: "UK" is not an ISO 3166-1 alpha-2 country code (e.g. NL, US, SG); the United Kingdom is GB',
  ]);
  assert.deepEqual(good(egressAssignmentSchema, { dc: 'ams' }), { dc: 'ams' });
});

test('DoS rules: match, action, scope', () => {
  const r = good(dosRuleSchema, { match: { protocol: 'udp', sport: 19 }, action: 'drop' });
  assert.deepEqual(r, { match: { protocol: 'udp', sport: [19] }, action: 'drop', scope: {} });
  const limited = good(dosRuleSchema, { match: { dst: '203.0.113.0/25', protocol: 'tcp', tcpFlags: { set: ['syn'] } }, action: 'rate-limit', rateLimit: { pps: 10000, per: 'src-prefix' } });
  assert.deepEqual(limited.rateLimit, { pps: 10000, per: 'src-prefix', prefixLength: { ipv4: 24, ipv6: 64 } });
  assert.deepEqual(bad(dosRuleSchema, { match: {}, action: 'rate-limit' }, ['dos', 'rules', 'd1']), [
    'dos/rules/d1.match: an empty match selects every packet; give at least one of src, dst, protocol, sport, dport, tcpFlags, length, ttl, payload',
    'dos/rules/d1.rateLimit: action rate-limit needs a rate; add rateLimit: { pps: 10000, per: dst-ip }',
  ]);
  assert.deepEqual(bad(dosRuleSchema, { match: { dport: 53, payload: { offset: 0, bytes: 'zz' } }, action: 'drop', expires: '2030-01-01 00:00' }, ['d']), [
    'd.match.payload.bytes: "zz" is not hex bytes; write pairs of hex digits, e.g. "17000302" or "17 00 03 02"',
    'd.expires: "2030-01-01 00:00" is not a date-time with a zone; write RFC 3339, e.g. 2030-01-01T00:00:00Z',
  ]);
  assert.deepEqual(bad(dosRuleSchema, { match: { dport: 53 }, action: 'drop' }, ['d']), [
    'd.match.dport: ports need protocol tcp, udp, sctp, dccp, udplite; set protocol',
  ]);
});
