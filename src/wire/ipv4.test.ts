// IPv4: a real header parsed and re-emitted byte for byte, options walked, fragments flagged,
// and each malformed field a typed error pointing at it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from './bytes.ts';
import { emitIpv4, encodeIpv4Options, ipv4HeaderLen, Ipv4Packet, parseIpv4, parseIpv4Options } from './ipv4.ts';
import { a5, refChecksum } from './testutil.ts';

// A UDP datagram's IPv4 header (192.168.0.1 → 192.168.0.199, total length 0x73, DF, TTL 64).
const HDR = '4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7';
const PKT = fromHex(HDR + ' 00'.repeat(0x73 - 20));

test('parses a real header and emits the same bytes into a 0xa5 buffer', () => {
  const r = parseIpv4(PKT);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.value, {
    src: '192.168.0.1', dst: '192.168.0.199', protocol: 17, ttl: 64, dscp: 0, ecn: 0, ident: 0, reservedFlag: false,
    dontFrag: true, moreFrags: false, fragOffset: 0, options: new Uint8Array(0), payloadLen: 0x73 - 20,
  });
  const out = a5(20);
  assert.equal(emitIpv4(r.value, out), 20);
  assert.equal(toHex(out), toHex(PKT, 0, 20));
});

test('options: parsed, re-encoded, counted in the header length and the checksum', () => {
  const options = encodeIpv4Options([{ type: 7, data: new Uint8Array([4, 0, 0, 0, 0]) }, { type: 1, data: new Uint8Array(0) }, { type: 148, data: new Uint8Array([0, 0]) }]);
  assert.equal(options.length, 12);
  const base = parseIpv4(PKT);
  assert.ok(base.ok);
  const repr = { ...base.value, options, payloadLen: 4 };
  const out = a5(ipv4HeaderLen(repr) + 4);
  out.fill(0, 32);
  emitIpv4(repr, out);
  assert.equal(out[0], 0x48, 'IHL 8');
  assert.equal(refChecksum(out.subarray(0, 32)), 0);
  const back = parseIpv4(out);
  assert.ok(back.ok);
  assert.deepEqual(back.value.options, options);
  const list = parseIpv4Options(back.value.options);
  assert.ok(list.ok);
  assert.deepEqual(list.value.map((o) => [o.type, o.data.length]), [[7, 5], [1, 0], [148, 2]]);
  // Padding to a multiple of 4 is EOL bytes, which the list shows once and then stops.
  const padded = parseIpv4Options(encodeIpv4Options([{ type: 148, data: new Uint8Array([0, 0]) }, { type: 1, data: new Uint8Array(0) }]));
  assert.ok(padded.ok);
  assert.deepEqual(padded.value.map((o) => o.type), [148, 1, 0]);
  assert.throws(() => encodeIpv4Options([{ type: 7, data: new Uint8Array(39) }]), RangeError);
});

test('fragments: MF and offset exposed in bytes', () => {
  const b = PKT.slice();
  b[6] = 0x20 | 0x00; // MF, offset 185 * 8 = 1480
  b[7] = 185;
  const v = new Ipv4Packet().reset(b);
  assert.equal(v.check(), null);
  assert.equal(v.isFragment, true);
  assert.equal(v.moreFrags, true);
  assert.equal(v.fragOffset, 1480);
  const r = parseIpv4(b, 0, b.length, { verifyChecksum: false });
  assert.ok(r.ok);
  assert.equal(r.value.fragOffset, 1480);
  assert.equal(r.value.moreFrags, true);
});

test('each malformed field is a typed error with its layer and offset', () => {
  const at = (hex: string, edit: (b: Uint8Array) => void, len?: number) => {
    const b = fromHex(hex + ' 00'.repeat(0x73 - 20));
    edit(b);
    return parseIpv4(b.subarray(0, len ?? b.length));
  };
  const cases: [string, ReturnType<typeof parseIpv4>, string, number][] = [
    ['19 bytes', at(HDR, () => {}, 19), 'truncated', 0],
    ['version 5', at(HDR, (b) => (b[0] = 0x55)), 'malformed', 0],
    ['IHL 4', at(HDR, (b) => (b[0] = 0x44)), 'malformed', 0],
    ['IHL past the data', at(HDR, (b) => (b[0] = 0x4f), 40), 'truncated', 0],
    ['total length < header', at(HDR, (b) => (b[3] = 19)), 'malformed', 2],
    ['total length > bytes', at(HDR, (b) => (b[3] = 0x74)), 'truncated', 2],
    ['option length 1', at(HDR, (b) => { b[0] = 0x46; b[20] = 7; b[21] = 1; }), 'malformed', 20],
    ['option past header', at(HDR, (b) => { b[0] = 0x46; b[20] = 7; b[21] = 8; }), 'malformed', 20],
    ['ping of death', at(HDR, (b) => { b[6] = 0x1f; b[7] = 0xff; }), 'malformed', 6],
    ['bad checksum', at(HDR, (b) => (b[11] = b[11]! ^ 1)), 'bad_checksum', 10],
  ];
  for (const [what, r, code, offset] of cases) {
    assert.ok(!r.ok, what);
    assert.equal(r.error.layer, 'ipv4', what);
    assert.equal(r.error.code, code, `${what}: ${r.error.message}`);
    assert.equal(r.error.offset, offset, `${what}: ${r.error.message}`);
  }
});

test('emit refuses a repr that cannot be on the wire', () => {
  const r = parseIpv4(PKT);
  assert.ok(r.ok);
  assert.throws(() => emitIpv4({ ...r.value, options: new Uint8Array(3) }, a5(60)), RangeError);
  assert.throws(() => emitIpv4({ ...r.value, fragOffset: 3 }, a5(60)), RangeError);
  assert.throws(() => emitIpv4({ ...r.value, ttl: 256 }, a5(60)), RangeError);
  assert.throws(() => emitIpv4(r.value, a5(19)), RangeError);
});
