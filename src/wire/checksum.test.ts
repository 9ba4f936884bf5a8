// The Internet checksum against RFC 1071's worked example and a slow reference, and RFC 1624
// incremental updates against full recomputation (including the 0x0000/0xffff corner).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldSum, internetChecksum, onesSum, pseudoHeaderSum, updateChecksum16, updateChecksum32 } from './checksum.ts';
import { fromHex } from './bytes.ts';
import { prng, refChecksum, refPseudoHeader } from './testutil.ts';

test('RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to 0xddf2', () => {
  const b = fromHex('0001 f203 f4f5 f6f7');
  assert.equal(foldSum(onesSum(b, 0, b.length)), 0xddf2);
  assert.equal(internetChecksum(b, 0, b.length), ~0xddf2 & 0xffff);
});

test('a real IPv4 header verifies and recomputes to its checksum (0xb861)', () => {
  const h = fromHex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
  assert.equal(internetChecksum(h, 0, 20), 0);
  h[10] = 0;
  h[11] = 0;
  assert.equal(internetChecksum(h, 0, 20), 0xb861);
});

test('matches the reference on random lengths, odd ones and offsets included', () => {
  const rnd = prng(1071);
  for (let i = 0; i < 500; i++) {
    const len = Math.floor(rnd() * 1600);
    const off = Math.floor(rnd() * 7);
    const b = new Uint8Array(off + len).map(() => Math.floor(rnd() * 256));
    assert.equal(internetChecksum(b, off, len), refChecksum(b.subarray(off)), `len ${len} off ${off}`);
  }
  // All 0xff: the sum is 0xffff ("negative zero") and the checksum 0.
  const ff = new Uint8Array(1500).fill(0xff);
  assert.equal(internetChecksum(ff, 0, ff.length), 0);
});

test('pseudo-header sums match a pseudo-header laid out byte by byte', () => {
  const s4 = fromHex('c0000201');
  const d4 = fromHex('cb007105');
  const s6 = fromHex('20010db8000000000000000000000001');
  const d6 = fromHex('20010db8000000000000000000000002');
  for (const len of [0, 8, 1480, 65535, 70000]) {
    // IPv4's length field is 16 bits; IPv6's pseudo-header has 32 (jumbograms), so only it sees 70000.
    if (len <= 0xffff) assert.equal(~foldSum(pseudoHeaderSum(s4, 0, d4, 0, 4, 6, len)) & 0xffff, refChecksum(refPseudoHeader(s4, d4, 6, len)));
    assert.equal(~foldSum(pseudoHeaderSum(s6, 0, d6, 0, 16, 17, len)) & 0xffff, refChecksum(refPseudoHeader(s6, d6, 17, len)));
  }
});

test('RFC 1624 incremental updates equal full recomputation', () => {
  const rnd = prng(1624);
  for (let i = 0; i < 2000; i++) {
    const b = new Uint8Array(40).map(() => Math.floor(rnd() * 256));
    b[10] = 0;
    b[11] = 0;
    const before = internetChecksum(b, 0, 40);
    const at = 2 * Math.floor(rnd() * 4); // a 16-bit field before the checksum
    const old16 = (b[at]! << 8) | b[at + 1]!;
    const new16 = i % 50 === 0 ? 0xffff - old16 : Math.floor(rnd() * 65536);
    b[at] = new16 >>> 8;
    b[at + 1] = new16 & 0xff;
    assert.equal(updateChecksum16(before, old16, new16), internetChecksum(b, 0, 40), `16-bit ${old16} → ${new16}`);
    const before32 = internetChecksum(b, 0, 40);
    const old32 = ((b[12]! << 24) | (b[13]! << 16) | (b[14]! << 8) | b[15]!) >>> 0;
    const new32 = Math.floor(rnd() * 2 ** 32);
    b[12] = new32 >>> 24;
    b[13] = (new32 >>> 16) & 0xff;
    b[14] = (new32 >>> 8) & 0xff;
    b[15] = new32 & 0xff;
    assert.equal(updateChecksum32(before32, old32, new32), internetChecksum(b, 0, 40), '32-bit');
  }
});
