// ICMP and ICMPv6: typed messages (echo, unreachable with next-hop MTU, packet too big, time
// exceeded) round-trip; anything else round-trips raw; checksums right by the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv6Bytes } from './addr.ts';
import { fromHex, toHex } from './bytes.ts';
import { emitIcmp, type IcmpRepr, parseIcmp } from './icmp.ts';
import { emitIcmpv6, type Icmpv6Repr, parseIcmpv6 } from './icmpv6.ts';
import { a5, refChecksum, refPseudoHeader } from './testutil.ts';

test('ICMP: a real echo request parses and re-emits', () => {
  // Echo request: type 8, code 0, checksum (filled by the reference below), id 1, seq 7, data "abcd".
  const b = fromHex('0800 0000 0001 0007 61626364');
  const c = refChecksum(b);
  b[2] = c >>> 8;
  b[3] = c & 0xff;
  const r = parseIcmp(b);
  assert.ok(r.ok);
  assert.deepEqual(r.value, { kind: 'echo_request', ident: 1, seq: 7, data: new Uint8Array([0x61, 0x62, 0x63, 0x64]) });
  const out = a5(b.length);
  emitIcmp(r.value, out);
  assert.equal(toHex(out), toHex(b));
});

test('ICMP: every typed kind and a raw one round-trip with a valid checksum', () => {
  const data = new Uint8Array(28).fill(7);
  const reprs: IcmpRepr[] = [
    { kind: 'echo_reply', ident: 0xffff, seq: 0, data },
    { kind: 'dest_unreachable', code: 4, nextHopMtu: 1476, data },
    { kind: 'time_exceeded', code: 1, data },
    { kind: 'other', type: 12, code: 0, rest: 0x14000000, data },
    { kind: 'other', type: 8, code: 3, rest: 0x00010002, data }, // echo with a code: kept raw, not normalised
  ];
  for (const repr of reprs) {
    const b = a5(8 + data.length);
    emitIcmp(repr, b);
    assert.equal(refChecksum(b), 0, repr.kind);
    const r = parseIcmp(b);
    assert.ok(r.ok);
    assert.deepEqual(r.value, repr);
  }
  const t = parseIcmp(new Uint8Array(7));
  assert.ok(!t.ok && t.error.code === 'truncated' && t.error.layer === 'icmp');
  const bad = new Uint8Array(8);
  bad[0] = 8;
  const c = parseIcmp(bad);
  assert.ok(!c.ok && c.error.code === 'bad_checksum' && c.error.offset === 2);
});

test('ICMPv6: checksum over the IPv6 pseudo-header; typed kinds round-trip', () => {
  const ip = { src: '2001:db8::1', dst: '2001:db8::2' };
  const data = new Uint8Array(48).fill(1);
  const reprs: Icmpv6Repr[] = [
    { kind: 'echo_request', ident: 0x1234, seq: 9, data },
    { kind: 'packet_too_big', mtu: 1280, data },
    { kind: 'dest_unreachable', code: 1, data },
    { kind: 'time_exceeded', code: 0, data },
    { kind: 'other', type: 135, code: 0, rest: 0, data }, // neighbor solicitation, raw
  ];
  for (const repr of reprs) {
    const b = a5(8 + data.length);
    emitIcmpv6(repr, b, 0, ip);
    assert.equal(refChecksum(refPseudoHeader(ipv6Bytes(ip.src), ipv6Bytes(ip.dst), 58, b.length), b), 0, repr.kind);
    const r = parseIcmpv6(b, 0, b.length, { verifyWith: ip });
    assert.ok(r.ok, repr.kind);
    assert.deepEqual(r.value, repr);
    const wrong = parseIcmpv6(b, 0, b.length, { verifyWith: { ...ip, dst: '2001:db8::3' } });
    assert.ok(!wrong.ok && wrong.error.code === 'bad_checksum' && wrong.error.layer === 'icmpv6');
  }
});
