// IPv6 fixed header and extension headers: round trips, each header's own length rule, option
// TLVs, and bounds (truncation, hop-by-hop placement, AH alignment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from './bytes.ts';
import { emitIpv6, parseIpv6 } from './ipv6.ts';
import { emitIpv6Ext, type Ipv6ExtRepr, ipv6ExtHeaderLen, padIpv6Options, parseIpv6Ext, parseIpv6Options } from './ipv6ext.ts';
import { a5 } from './testutil.ts';

const HDR = fromHex(`
  6 28 12345   # version 6, traffic class 0x28, flow label 0x12345
  0008 11 40   # payload length 8, next header UDP, hop limit 64
  20010db8000000000000000000000001
  20010db8000000000000000000000002
  0001 0002 0008 0000`);

test('fixed header parses and re-emits byte for byte', () => {
  const r = parseIpv6(HDR);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value, { src: '2001:db8::1', dst: '2001:db8::2', nextHeader: 17, hopLimit: 64, trafficClass: 0x28, flowLabel: 0x12345, payloadLen: 8 });
  const out = a5(40);
  emitIpv6(r.value, out);
  assert.equal(toHex(out), toHex(HDR, 0, 40));
});

test('fixed header errors: truncated, version, payload length lie, jumbogram', () => {
  const cases: [string, Uint8Array, string, number][] = [
    ['39 bytes', HDR.subarray(0, 39), 'truncated', 0],
    ['version 4', (() => { const b = HDR.slice(); b[0] = 0x46; return b; })(), 'malformed', 0],
    ['payload length past the data', (() => { const b = HDR.slice(); b[5] = 9; return b; })(), 'truncated', 4],
    ['jumbogram', (() => { const b = HDR.slice(); b[4] = 0; b[5] = 0; b[6] = 0; return b; })(), 'unsupported', 4],
  ];
  for (const [what, b, code, offset] of cases) {
    const r = parseIpv6(b);
    assert.ok(!r.ok, what);
    assert.equal(r.error.layer, 'ipv6');
    assert.equal(r.error.code, code, what);
    assert.equal(r.error.offset, offset, what);
  }
});

test('extension headers: each kind round-trips with its own length rule', () => {
  const reprs: [number, Ipv6ExtRepr][] = [
    [0, { kind: 'hop_by_hop', nextHeader: 60, options: padIpv6Options([{ type: 5, data: new Uint8Array([0, 0]) }]) }],
    [60, { kind: 'dest_options', nextHeader: 43, options: padIpv6Options([{ type: 0, data: new Uint8Array(0) }, { type: 0xc9, data: new Uint8Array(16) }]) }],
    [43, { kind: 'routing', nextHeader: 44, routingType: 4, segmentsLeft: 1, data: new Uint8Array(20) }],
    [44, { kind: 'fragment', nextHeader: 51, fragOffset: 1232, moreFrags: true, ident: 0xfeedface }],
    [51, { kind: 'auth', nextHeader: 6, spi: 0x100, seq: 5, icv: new Uint8Array(12).fill(9) }],
  ];
  const lens = [8, 24, 24, 8, 24];
  reprs.forEach(([type, repr], i) => {
    assert.equal(ipv6ExtHeaderLen(repr), lens[i], repr.kind);
    const b = a5(lens[i]!);
    emitIpv6Ext(repr, b);
    const r = parseIpv6Ext(b, 0, b.length, type);
    assert.ok(r.ok, `${repr.kind}: ${JSON.stringify(r)}`);
    assert.deepEqual(r.value, repr);
  });
  // AH counts 32-bit words minus 2: 24 bytes → 4.
  const ah = a5(24);
  emitIpv6Ext(reprs[4]![1], ah);
  assert.equal(ah[1], 4);
});

test('option TLVs: Pad1, PadN, and a TLV running past its header', () => {
  const opts = padIpv6Options([{ type: 5, data: new Uint8Array([0, 0]) }]);
  assert.equal(opts.length, 6);
  const r = parseIpv6Options(opts);
  assert.ok(r.ok);
  assert.deepEqual(r.value.map((o) => [o.type, o.data.length]), [[5, 2], [1, 0]]);
  const bad = fromHex('3a00 0510 0000 0000'); // router alert claiming 16 data bytes
  const e = parseIpv6Ext(bad, 0, 8, 0);
  assert.ok(!e.ok && e.error.code === 'malformed' && e.error.offset === 2);
});

test('extension header bounds: truncated, AH too short or misaligned, not an extension', () => {
  const cases: [string, Uint8Array, number, string, number][] = [
    ['7 bytes', new Uint8Array(7), 0, 'truncated', 0],
    ['length past payload', fromHex('3b01 0000 0000 0000'), 0, 'truncated', 1],
    ['AH length 0', fromHex('0600 0000 0000 0000'), 51, 'malformed', 1],
    ['AH not a multiple of 8', fromHex('0601 0000 0000 0000 0000 0000 0000 0000'), 51, 'malformed', 1],
    ['TCP is not an extension header', new Uint8Array(8), 6, 'unsupported', 0],
  ];
  for (const [what, b, type, code, offset] of cases) {
    const r = parseIpv6Ext(b, 0, b.length, type);
    assert.ok(!r.ok, what);
    assert.equal(r.error.layer, 'ipv6ext');
    assert.equal(r.error.code, code, `${what}: ${r.error.message}`);
    assert.equal(r.error.offset, offset, what);
  }
  assert.throws(() => emitIpv6Ext({ kind: 'hop_by_hop', nextHeader: 6, options: new Uint8Array(5) }, a5(8)), RangeError);
});
