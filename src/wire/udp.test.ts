// UDP: round trip with the pseudo-header checksum, the 0 → 0xffff rule, the zero checksum over
// IPv4 and IPv6, and length-field lies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv6Bytes } from './addr.ts';
import { toHex } from './bytes.ts';
import { emitUdp, parseUdp, UdpDatagram } from './udp.ts';
import { a5, refChecksum, refPseudoHeader } from './testutil.ts';

const V4 = { src: '192.0.2.1', dst: '192.0.2.2' };
const V6 = { src: '2001:db8::1', dst: '2001:db8::2' };

test('emits header, length and checksum over an IPv6 pseudo-header; parses back', () => {
  const b = a5(8 + 5);
  b.set([104, 101, 108, 108, 111], 8);
  assert.equal(emitUdp({ srcPort: 5353, dstPort: 53, zeroChecksum: false }, b, 0, 5, V6), 8);
  assert.equal(toHex(b, 0, 6), '14e9003500' + '0d');
  assert.equal(refChecksum(refPseudoHeader(ipv6Bytes(V6.src), ipv6Bytes(V6.dst), 17, 13), b), 0);
  const r = parseUdp(b, 0, b.length, { verifyWith: V6 });
  assert.ok(r.ok);
  assert.deepEqual(r.value, { srcPort: 5353, dstPort: 53, zeroChecksum: false });
});

test('a computed checksum of 0 is sent as 0xffff (0 means none)', () => {
  // Search a payload word that makes the sum come out to exactly 0.
  const b = new Uint8Array(10);
  for (let w = 0; w < 0x10000; w++) {
    b[8] = w >>> 8;
    b[9] = w & 0xff;
    emitUdp({ srcPort: 1, dstPort: 2, zeroChecksum: false }, b, 0, 2, V4);
    if (b[6] === 0xff && b[7] === 0xff) break;
  }
  assert.equal(toHex(b, 6, 8), 'ffff');
  assert.ok(parseUdp(b, 0, 10, { verifyWith: V4 }).ok, '0xffff verifies');
});

test('zero checksum: fine over IPv4, an error over IPv6', () => {
  const b = new Uint8Array(12);
  emitUdp({ srcPort: 1, dstPort: 2, zeroChecksum: true }, b, 0, 4, V4);
  assert.equal(toHex(b, 6, 8), '0000');
  const r4 = parseUdp(b, 0, 12, { verifyWith: V4 });
  assert.ok(r4.ok && r4.value.zeroChecksum);
  const r6 = parseUdp(b, 0, 12, { verifyWith: V6 });
  assert.ok(!r6.ok && r6.error.code === 'bad_checksum' && r6.error.offset === 6);
});

test('length lies: below 8 malformed, past the IP payload truncated (unless a first fragment)', () => {
  const b = new Uint8Array(16);
  emitUdp({ srcPort: 1, dstPort: 2, zeroChecksum: false }, b, 0, 8, V4);
  b[5] = 7;
  let r = parseUdp(b);
  assert.ok(!r.ok && r.error.code === 'malformed' && r.error.offset === 4);
  b[5] = 17;
  r = parseUdp(b);
  assert.ok(!r.ok && r.error.code === 'truncated' && r.error.offset === 4);
  assert.ok(parseUdp(b, 0, 16, { fragment: true }).ok);
  r = parseUdp(b.subarray(0, 7));
  assert.ok(!r.ok && r.error.code === 'truncated' && r.error.offset === 0);
  // A length shorter than the payload is fine: the rest is not UDP's (Ethernet padding, say).
  b[5] = 12;
  const v = new UdpDatagram().reset(b);
  assert.equal(v.check(), null);
});
