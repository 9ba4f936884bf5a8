// The ring bookkeeping without a kernel: records built byte by byte as bpf/sample.h lays them out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeSampleRecord, RingCursor, SAMPLE_REC_LAYOUT, fakeSampleSource } from './sample.ts';

const F = SAMPLE_REC_LAYOUT.fields;

/** A slot holding sample `seq` (a UDP packet to 203.0.113.<seq % 100>), or half-written. */
function slot(seq: number, opts: { torn?: boolean } = {}): Buffer {
  const b = Buffer.alloc(SAMPLE_REC_LAYOUT.size, 0xa5);
  b.writeBigUInt64LE(BigInt(seq), F.seq[0]);
  b.writeBigUInt64LE(opts.torn ? 0n : BigInt(seq), F.seq_end[0]);
  b.writeBigUInt64LE(123n, F.ktime[0]);
  b.fill(0, F.src[0], F.dst[0] + 16);
  Buffer.from([192, 0, 2, 7]).copy(b, F.src[0]);
  Buffer.from([203, 0, 113, seq % 100]).copy(b, F.dst[0]);
  b.writeUInt16BE(5353, F.sport[0]);
  b.writeUInt16BE(53, F.dport[0]);
  b.writeUInt16LE(60, F.len[0]);
  b[F.family[0]] = 4;
  b[F.proto[0]] = 17;
  b[F.ttl[0]] = 64;
  b[F.tcp_flags[0]] = 0;
  b[F.payload_len[0]] = 2;
  Buffer.from([0xca, 0xfe]).copy(b, F.payload[0]);
  return b;
}

const empty = (): Buffer => Buffer.alloc(SAMPLE_REC_LAYOUT.size);

test('a record decodes field by field; an empty or torn slot has no sample', () => {
  assert.deepEqual(decodeSampleRecord(slot(7)).sample, { family: 4, proto: 17, src: '192.0.2.7', dst: '203.0.113.7', sport: 5353, dport: 53, len: 60, ttl: 64, tcpFlags: 0, payload: 'cafe' });
  assert.equal(decodeSampleRecord(empty()).sample, null);
  assert.equal(decodeSampleRecord(slot(8, { torn: true })).sample, null);
});

test('the first take only primes; later takes return new records in order, once, and count the lost', () => {
  const c = new RingCursor();
  // Two CPUs, four slots each for the test.
  assert.deepEqual(c.take([[slot(1), slot(2), empty(), empty()], [slot(1), empty(), empty(), empty()]]), { samples: [], lost: 0 });
  assert.equal(c.nothingNew([2n, 1n]), true);
  assert.equal(c.nothingNew([3n, 1n]), false);
  // CPU 0 wrote 3..7 into 4 slots (3 overwritten by 7), 6 is torn; CPU 1 wrote 2.
  const t = c.take([[slot(4), slot(5), slot(6, { torn: true }), slot(7)], [slot(1), slot(2), empty(), empty()]]);
  assert.deepEqual(t.samples.map((s) => s.dst), ['203.0.113.4', '203.0.113.5', '203.0.113.7', '203.0.113.2']);
  assert.equal(t.lost, 2, 'seq 3 overwritten, seq 6 torn');
  assert.deepEqual(c.take([[slot(4), slot(5), slot(6), slot(7)], [slot(1), slot(2), empty(), empty()]]), { samples: [], lost: 0 }, 'nothing twice');
  assert.equal(c.nothingNew([7n, 2n]), true);
});

test('the fake source hands out what was pushed once, with its rate and losses', async () => {
  const s = fakeSampleSource(5);
  s.push(decodeSampleRecord(slot(1)).sample!);
  s.lose(3);
  const r = await s.read();
  assert.ok(r.ok);
  assert.deepEqual([r.value.samples.length, r.value.lost, r.value.every], [1, 3, 5]);
  const again = await s.read();
  assert.ok(again.ok);
  assert.deepEqual([again.value.samples.length, again.value.lost], [0, 0]);
  const bad = await s.setRate(1.5);
  assert.ok(!bad.ok);
});
