import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cidrContains,
  cidrOverlaps,
  cidrSchema,
  cidrSetSchema,
  formatCidr,
  formatIp,
  ifAddrNetwork,
  ipSchema,
  mergeRanges,
  mustCidr,
  parseCidr,
  parseIfAddr,
  parseIp,
  parseProtocol,
  parseRange,
  portSetSchema,
  protocolNumber,
  protocolSchema,
} from './net.ts';
import { parseAt } from './schema.ts';
import { formatIssue } from './issue.ts';

function ipText(text: string): string {
  const r = parseIp(text);
  assert.ok(r.ok, `expected ${text} to parse: ${r.ok ? '' : r.error}`);
  return formatIp(r.value);
}

function ipError(text: string): string {
  const r = parseIp(text);
  assert.ok(!r.ok, `expected ${text} to be refused`);
  return r.error;
}

test('IPv4 addresses parse and print as dotted quads', () => {
  assert.equal(ipText('203.0.113.100'), '203.0.113.100');
  assert.equal(ipText('0.0.0.0'), '0.0.0.0');
  assert.equal(ipText('255.255.255.255'), '255.255.255.255');
  assert.match(ipError('256.0.0.1'), /256 is above 255/);
  assert.match(ipError('1.2.3'), /four numbers/);
  // A leading zero is octal to inet_aton; we refuse it and say what to write.
  assert.match(ipError('010.0.0.1'), /leading zero.*write 10\.0\.0\.1/);
  assert.match(ipError('203.0.113.0/24'), /is a prefix, not an address/);
});

test('IPv6 addresses are stored in RFC 5952 form', () => {
  assert.equal(ipText('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(ipText('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1'); // first of two equal runs
  assert.equal(ipText('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1'); // one zero group is not compressed
  assert.equal(ipText('::'), '::');
  assert.equal(ipText('::1'), '::1');
  assert.equal(ipText('::ffff:192.0.2.1'), '::ffff:192.0.2.1');
  assert.match(ipError('2001:db8::1::2'), /"::" may appear only once/);
  assert.match(ipError('2001:db8:1:2:3:4:5'), /has 7 groups, needs 8/);
  assert.match(ipError('fe80::1%eth0'), /zone indexes/);
  assert.match(ipError('2001:db8::/32'), /is a prefix/);
  assert.match(ipError('2001:db8::g'), /not 1–4 hex digits/);
});

test('CIDRs must be canonical; the canonical form is suggested', () => {
  const bad = parseCidr('203.0.113.5/24');
  assert.ok(!bad.ok);
  assert.equal(bad.error, '"203.0.113.5/24" is not canonical (host bits are set after /24); use 203.0.113.0/24');
  const bad6 = parseCidr('2001:db8::1/64');
  assert.ok(!bad6.ok);
  assert.match(bad6.error, /use 2001:db8::\/64$/);
  assert.equal(formatCidr(mustCidr('2001:DB8::/32')), '2001:db8::/32');
  assert.equal(formatCidr(mustCidr('0.0.0.0/0')), '0.0.0.0/0');
  const noLen = parseCidr('203.0.113.0');
  assert.ok(!noLen.ok);
  assert.match(noLen.error, /no prefix length; write 203\.0\.113\.0\/32/);
  const longLen = parseCidr('203.0.113.0/33');
  assert.ok(!longLen.ok);
  assert.match(longLen.error, /prefix length must be a number 0–32/);
  // In match sets a bare address means its host prefix.
  const bare = parseCidr('2001:db8::1', { bareIp: true });
  assert.ok(bare.ok);
  assert.equal(formatCidr(bare.value), '2001:db8::1/128');
});

test('CIDR containment and overlap', () => {
  const a = mustCidr('203.0.113.0/24');
  const b = mustCidr('203.0.113.128/25');
  const c = mustCidr('198.51.100.0/24');
  assert.ok(cidrContains(a, b));
  assert.ok(!cidrContains(b, a));
  assert.ok(cidrOverlaps(a, b) && cidrOverlaps(b, a));
  assert.ok(!cidrOverlaps(a, c));
  // Same numbers in another family are different addresses.
  assert.ok(!cidrOverlaps(mustCidr('0.0.0.0/0'), mustCidr('::/0')));
});

test('interface addresses keep their host bits', () => {
  const r = parseIfAddr('192.0.2.18/28');
  assert.ok(r.ok);
  assert.equal(formatCidr(ifAddrNetwork(r.value)), '192.0.2.16/28');
});

test('ranges: single values, low-high, bounds and order', () => {
  assert.deepEqual(parseRange(443, 0, 65535, 'port'), { ok: true, value: [443, 443] });
  assert.deepEqual(parseRange('20-21', 0, 65535, 'port'), { ok: true, value: [20, 21] });
  assert.deepEqual(parseRange('0', 0, 65535, 'port'), { ok: true, value: [0, 0] });
  const reversed = parseRange('21-20', 0, 65535, 'port');
  assert.ok(!reversed.ok);
  assert.match(reversed.error, /low end is above the high end; write 20-21/);
  const high = parseRange('1-65536', 0, 65535, 'port');
  assert.ok(!high.ok);
  assert.match(high.error, /65536 is not a port; use 0–65535/);
  assert.ok(!parseRange(-1, 0, 65535, 'port').ok);
  assert.ok(!parseRange(1.5, 0, 65535, 'port').ok);
  assert.ok(!parseRange('http', 0, 65535, 'port').ok);
  assert.deepEqual(mergeRanges([[443, 443], [20, 21], [22, 22], [21, 21]]), [[20, 22], [443, 443]]);
});

test('port sets are merged and sorted, and a single port may be written without a list', () => {
  assert.deepEqual(portSetSchema.parse([443, '20-21', 21]), ['20-21', 443]);
  assert.deepEqual(portSetSchema.parse(443), [443]);
  assert.deepEqual(portSetSchema.parse([0, 65535, '1-2']), ['0-2', 65535]); // both ends of the port space
  assert.deepEqual(portSetSchema.parse('20-21'), ['20-21']);
  const empty = parseAt(portSetSchema, [], ['x']);
  assert.ok(!empty.ok);
  assert.match(empty.error[0]!.message, /empty port set matches nothing/);
  const bad = parseAt(portSetSchema, [80, 70000], ['tenants', 'acme', 'firewall']);
  assert.ok(!bad.ok);
  assert.equal(formatIssue(bad.error[0]!), 'tenants/acme/firewall.1: 70000 is not a port: use 0–65535');
});

test('address sets accept prefixes and bare addresses of both families', () => {
  assert.deepEqual(cidrSetSchema.parse(['203.0.113.100', '2001:db8::/32']), ['203.0.113.100/32', '2001:db8::/32']);
  assert.deepEqual(cidrSetSchema.parse('203.0.113.0/25'), ['203.0.113.0/25']);
  const bad = parseAt(cidrSetSchema, ['203.0.113.1/24'], []);
  assert.ok(!bad.ok);
  assert.equal(bad.error[0]!.code, 'invalid_cidr');
  assert.deepEqual(bad.error[0]!.field, [0]);
});

test('protocols by name, alias or number; stored by name when one exists', () => {
  assert.deepEqual(parseProtocol('TCP'), { ok: true, value: 'tcp' });
  assert.deepEqual(parseProtocol(6), { ok: true, value: 'tcp' });
  assert.deepEqual(parseProtocol('17'), { ok: true, value: 'udp' });
  assert.deepEqual(parseProtocol('ipv6-icmp'), { ok: true, value: 'icmpv6' });
  assert.deepEqual(parseProtocol(253), { ok: true, value: 253 }); // experimental, no name
  assert.equal(protocolNumber('gre'), 47);
  const typo = parseProtocol('tpc');
  assert.ok(!typo.ok);
  assert.match(typo.error, /unknown protocol "tpc".*did you mean "tcp"\?/);
  assert.ok(!parseProtocol(256).ok);
  assert.ok(!parseProtocol(true).ok);
  assert.equal(protocolSchema.parse('Udp'), 'udp');
});

test('address schemas store canonical text', () => {
  assert.equal(ipSchema.parse('2001:0DB8::0001'), '2001:db8::1');
  assert.equal(cidrSchema.parse('2001:0db8:0000::/32'), '2001:db8::/32');
  const r = parseAt(cidrSchema, 42, ['anycast']);
  assert.ok(!r.ok);
  assert.match(r.error[0]!.message, /expected text, got the number 42/);
});
