// GRE: RFC 2784 base header, RFC 2890 key and sequence, the checksum bit; RFC 1701 routing and
// version 1 refused as unsupported; truncation against the flags' announced length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fromHex, toHex } from './bytes.ts';
import { emitGre, GrePacket, greHeaderLen, parseGre } from './gre.ts';
import { a5, refChecksum } from './testutil.ts';

test('every combination of C, K, S: header length, field order, round trip', () => {
  for (let m = 0; m < 8; m++) {
    const repr = { protocol: 0x0800, checksum: (m & 1) !== 0, key: m & 2 ? 0xdeadbeef : null, seq: m & 4 ? 77 : null, reserved0: 0, reserved1: 0 };
    const hl = greHeaderLen(repr);
    assert.equal(hl, 4 + 4 * ((m & 1) + ((m >> 1) & 1) + ((m >> 2) & 1)));
    const payload = [0x45, 0, 0, 20];
    const b = a5(hl + payload.length);
    b.set(payload, hl);
    assert.equal(emitGre(repr, b, 0, payload.length), hl);
    // Flags word: C=0x8000, K=0x2000, S=0x1000; fields in the order checksum, key, sequence.
    assert.equal((b[0]! << 8) | b[1]!, (m & 1 ? 0x8000 : 0) | (m & 2 ? 0x2000 : 0) | (m & 4 ? 0x1000 : 0));
    let o = 4;
    if (m & 1) {
      assert.equal(refChecksum(b), 0, 'checksum covers header and payload');
      assert.equal(toHex(b, 6, 8), '0000', 'reserved1');
      o += 4;
    }
    if (m & 2) {
      assert.equal(toHex(b, o, o + 4), 'deadbeef');
      o += 4;
    }
    if (m & 4) assert.equal(toHex(b, o, o + 4), '0000004d');
    const r = parseGre(b);
    assert.ok(r.ok, JSON.stringify(r));
    assert.deepEqual(r.value, repr);
  }
});

test('RFC 2890 example layout parses: K and S set, IPv4 payload', () => {
  const b = fromHex('3000 0800 0000002a 00000007 45000014');
  const r = parseGre(b);
  assert.ok(r.ok);
  assert.deepEqual(r.value, { protocol: 0x0800, checksum: false, key: 42, seq: 7, reserved0: 0, reserved1: 0 });
  assert.equal(new GrePacket().reset(b).payloadOffset, 12);
});

test('unsupported and malformed headers are typed errors', () => {
  const cases: [string, string, string, number][] = [
    ['3 bytes', '0000 08', 'truncated', 0],
    ['K set, no key', '2000 0800 0000', 'truncated', 0],
    ['routing bit (RFC 1701)', '4000 0800 0000 0000', 'unsupported', 0],
    ['strict source route', '0800 0800', 'unsupported', 0],
    ['version 1 (PPTP)', '2001 880b 0000 0000', 'unsupported', 0],
    ['bad checksum', '8000 0800 1234 0000', 'bad_checksum', 4],
  ];
  for (const [what, hex, code, offset] of cases) {
    const r = parseGre(fromHex(hex));
    assert.ok(!r.ok, what);
    assert.equal(r.error.layer, 'gre');
    assert.equal(r.error.code, code, `${what}: ${r.error.message}`);
    assert.equal(r.error.offset, offset, what);
  }
  // The recursion-control bits are ignored by receivers (RFC 2784 §2.1) but kept.
  const rc = parseGre(fromHex('0300 0800'));
  assert.ok(rc.ok && rc.value.reserved0 === 0x0300);
});
