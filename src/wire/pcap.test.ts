// pcap: write → read round trip, all four header variants read (files crafted here field by
// field, not by our writer), and every kind of bad input a typed error with its file offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFrame } from './build.ts';
import { decodeFrame } from './frame.ts';
import { PCAP_MAX_SNAPLEN, PcapReader, pcapFileHeader, pcapRecord, readPcap, writePcap } from './pcap.ts';

const FRAMES = [
  buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'tcp', srcPort: 1, dstPort: 2, mss: 1460 }]),
  buildFrame([{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'udp', srcPort: 3, dstPort: 4 }], 'x'.repeat(1400)),
  buildFrame([{ kind: 'eth', pad: true }, { kind: 'arp' }]),
];

/** A pcap file laid out by hand: `le` byte order, ns or µs magic, records of [sec, frac, data]. */
function craft(le: boolean, nanos: boolean, snap: number, records: [number, number, Uint8Array, number?][]): Uint8Array {
  const size = 24 + records.reduce((n, r) => n + 16 + r[2].length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, nanos ? 0xa1b23c4d : 0xa1b2c3d4, le);
  dv.setUint16(4, 2, le);
  dv.setUint16(6, 4, le);
  dv.setUint32(16, snap, le);
  dv.setUint32(20, 1, le);
  let o = 24;
  for (const [sec, frac, data, orig] of records) {
    dv.setUint32(o, sec, le);
    dv.setUint32(o + 4, frac, le);
    dv.setUint32(o + 8, data.length, le);
    dv.setUint32(o + 12, orig ?? data.length, le);
    out.set(data, o + 16);
    o += 16 + data.length;
  }
  return out;
}

test('write then read gives back every frame, timestamp and length', () => {
  const recs = FRAMES.map((data, i) => ({ data, tsSec: 1_700_000_000 + i, tsNsec: 123_456_000 * i }));
  const bytes = writePcap(recs);
  // The writer's header, checked byte by byte: µs magic little-endian, v2.4, snaplen, linktype 1.
  assert.deepEqual([...bytes.subarray(0, 24)], [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0]);
  const r = readPcap(bytes);
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.value.linkType, 1);
  assert.equal(r.value.nanos, false);
  assert.equal(r.value.littleEndian, true);
  assert.equal(r.value.snapLen, PCAP_MAX_SNAPLEN);
  assert.equal(r.value.records.length, FRAMES.length);
  r.value.records.forEach((rec, i) => {
    assert.deepEqual(rec.data, FRAMES[i]);
    assert.equal(rec.tsSec, 1_700_000_000 + i);
    assert.equal(rec.tsNsec, 123_456_000 * i);
    assert.equal(rec.origLen, FRAMES[i]!.length);
    assert.equal(decodeFrame(rec.data).error, null);
  });
});

test('a snap length cuts frames on write and keeps the wire length', () => {
  const bytes = writePcap([{ data: FRAMES[1]! }], { snapLen: 96, linkType: 1 });
  const r = readPcap(bytes);
  assert.ok(r.ok);
  assert.equal(r.value.records[0]!.data.length, 96);
  assert.equal(r.value.records[0]!.origLen, FRAMES[1]!.length);
  assert.equal(decodeFrame(r.value.records[0]!.data).error?.code, 'truncated');
});

test('reads big- and little-endian, µs and ns files', () => {
  for (const le of [true, false]) {
    for (const nanos of [false, true]) {
      const file = craft(le, nanos, 65535, [[10, nanos ? 999_999_999 : 999_999, FRAMES[0]!], [11, 1, FRAMES[2]!, 1000]]);
      const r = readPcap(file);
      assert.ok(r.ok, `${le} ${nanos}: ${JSON.stringify(r)}`);
      assert.equal(r.value.littleEndian, le);
      assert.equal(r.value.nanos, nanos);
      assert.equal(r.value.snapLen, 65535);
      assert.deepEqual(r.value.records.map((x) => [x.tsSec, x.tsNsec, x.origLen, x.data.length]), [
        [10, nanos ? 999_999_999 : 999_999_000, FRAMES[0]!.length, FRAMES[0]!.length],
        [11, nanos ? 1 : 1000, 1000, 60],
      ]);
      assert.deepEqual(r.value.records[1]!.data, FRAMES[2]);
    }
  }
});

test('the zero-allocation reader walks the same records as readPcap', () => {
  const bytes = writePcap(FRAMES.map((data) => ({ data })));
  const rd = new PcapReader();
  assert.ok(rd.open(bytes));
  const seen: number[] = [];
  while (rd.next()) seen.push(rd.capLen, rd.dataOffset);
  assert.equal(rd.fault, null);
  const r = readPcap(bytes);
  assert.ok(r.ok);
  assert.deepEqual(seen, r.value.records.flatMap((x) => [x.data.length, x.fileOffset + 16]));
});

test('bad input is a typed error with the offset of the bad field', () => {
  const good = craft(true, false, 128, [[1, 2, FRAMES[0]!], [3, 4, FRAMES[2]!]]);
  const second = 24 + 16 + FRAMES[0]!.length;
  const set32 = (b: Uint8Array, o: number, v: number, le = true) => {
    const c = b.slice();
    new DataView(c.buffer).setUint32(o, v, le);
    return c;
  };
  const cases: [string, Uint8Array, string, number][] = [
    ['empty file', new Uint8Array(0), 'truncated', 0],
    ['short header', good.subarray(0, 23), 'truncated', 0],
    ['bad magic', set32(good, 0, 0xdeadbeef), 'malformed', 0],
    ['pcapng', set32(good, 0, 0x0a0d0d0a, false), 'unsupported', 0],
    ['version 3', (() => { const c = good.slice(); c[4] = 3; return c; })(), 'unsupported', 4],
    ['truncated record header', good.subarray(0, second + 15), 'truncated', second],
    ['truncated record data', good.subarray(0, good.length - 1), 'truncated', second + 8],
    ['caplen > snaplen', craft(true, false, 50, [[1, 2, FRAMES[0]!]]), 'malformed', 24 + 8],
    ['caplen over the 256 KiB bound with snaplen 0', set32(craft(true, false, 0, [[1, 2, FRAMES[0]!]]), 24 + 8, 0x7fffffff), 'malformed', 24 + 8],
    ['µs fraction ≥ 1e6', set32(good, 24 + 4, 1_000_000), 'malformed', 24 + 4],
  ];
  for (const [what, bytes, code, offset] of cases) {
    const r = readPcap(bytes);
    assert.ok(!r.ok, what);
    assert.equal(r.error.layer, 'pcap', what);
    assert.equal(r.error.code, code, `${what}: ${r.error.message}`);
    assert.equal(r.error.offset, offset, `${what}: ${r.error.message}`);
  }
  const ng = readPcap(set32(good, 0, 0x0a0d0d0a, false));
  assert.ok(!ng.ok && ng.error.message.includes('tshark -F pcap'), 'the pcapng error says what to do');
  // A file that is only a header has no records, and that is fine.
  const empty = readPcap(pcapFileHeader());
  assert.ok(empty.ok && empty.value.records.length === 0);
});

test('the writer refuses out-of-range fields (a caller bug)', () => {
  assert.throws(() => pcapRecord({ data: FRAMES[0]!, tsSec: -1 }), RangeError);
  assert.throws(() => pcapRecord({ data: FRAMES[0]!, tsNsec: 1e9 }), RangeError);
  assert.throws(() => pcapRecord({ data: FRAMES[0]!, origLen: 3 }), RangeError);
  assert.throws(() => pcapFileHeader({ linkType: 2 ** 32 }), RangeError);
});

test('records are copies, also when the file is a Buffer (whose slice is a view)', () => {
  const file = Buffer.from(writePcap([{ data: FRAMES[0]! }]));
  const r = readPcap(file);
  assert.ok(r.ok);
  file.fill(0);
  assert.deepEqual(r.value.records[0]!.data, FRAMES[0]);
  assert.equal(Object.getPrototypeOf(r.value.records[0]!.data), Uint8Array.prototype);
});
