// 100,000 random and mutated frames through both decoders: no exception, every failure a
// well-formed typed error pointing inside the frame, every layer inside the frame, and no read
// outside [off, end) (decoding the same bytes between two different guard fills gives the same
// table). Seeded, so a failure prints a seed and frame that reproduce it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type LayerSpec, buildFrame, builtLinkType } from './build.ts';
import { toHex } from './bytes.ts';
import { FrameDecoder, LinkType } from './decoder.ts';
import { isWireError } from './error.ts';
import { decodeFrame } from './frame.ts';
import { parseArp } from './arp.ts';
import { parseEthernet } from './ethernet.ts';
import { parseGre } from './gre.ts';
import { parseIcmp } from './icmp.ts';
import { parseIcmpv6 } from './icmpv6.ts';
import { encodeIpv4Options, parseIpv4, parseIpv4Options } from './ipv4.ts';
import { parseIpv6 } from './ipv6.ts';
import { padIpv6Options, parseIpv6Ext, parseIpv6Options } from './ipv6ext.ts';
import { readPcap, writePcap } from './pcap.ts';
import { parseTcp, parseTcpOptions } from './tcp.ts';
import { prng } from './testutil.ts';
import { parseUdp } from './udp.ts';
import { parseVlan } from './vlan.ts';

const FRAMES = 100_000;
/** Generous for 2 slow cores: the run takes ~3–6 s here; a hang or quadratic walk blows it. */
const BUDGET_MS = 20_000;
const SEED = Number(process.env.WIRE_FUZZ_SEED ?? 0x5eed);

const srhData = (() => {
  const d = new Uint8Array(20);
  d.set([0x20, 0x01, 0x0d, 0xb8], 4);
  d[19] = 9;
  return d;
})();

/** Valid frames the mutations start from: every codec, the encapsulations we care about. */
const SEEDS: { layers: LayerSpec[]; payload: number }[] = [
  { layers: [{ kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' }, { kind: 'gre', key: 42, seq: 1, checksum: true }, { kind: 'ipv4', src: '192.0.2.1', dst: '203.0.113.5' }, { kind: 'tcp', srcPort: 40000, dstPort: 80, mss: 1400 }], payload: 0 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' }, { kind: 'gre' }, { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'udp', srcPort: 53, dstPort: 53 }], payload: 30 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8::200', dst: '2001:db8::1' }, { kind: 'gre', key: 7 }, { kind: 'ipv4', src: '192.0.2.1', dst: '203.0.113.5' }, { kind: 'icmp' }], payload: 16 },
  { layers: [{ kind: 'eth' }, { kind: 'vlan', vid: 5 }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2', options: encodeIpv4Options([{ type: 148, data: new Uint8Array(2) }]) }, { kind: 'tcp', srcPort: 1, dstPort: 2, flags: 'SA', mss: 1460, options: [{ kind: 'timestamps', tsval: 1, tsecr: 2 }, { kind: 'sack', blocks: [{ left: 1, right: 2 }] }] }], payload: 10 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'udp', srcPort: 4789, dstPort: 4789 }], payload: 40 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'icmp', message: { kind: 'dest_unreachable', code: 4, nextHopMtu: 1400 } }], payload: 28 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'ipv6ext', ext: { kind: 'hop_by_hop', options: padIpv6Options([{ type: 5, data: new Uint8Array(2) }]) } }, { kind: 'ipv6ext', ext: { kind: 'routing', routingType: 4, segmentsLeft: 1, data: srhData } }, { kind: 'ipv6ext', ext: { kind: 'fragment', fragOffset: 0, moreFrags: true, ident: 3 } }, { kind: 'ipv6ext', ext: { kind: 'auth', spi: 1, seq: 2, icv: new Uint8Array(12) } }, { kind: 'tcp', srcPort: 1, dstPort: 2 }], payload: 8 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'icmpv6', message: { kind: 'packet_too_big', mtu: 1280 } }], payload: 48 },
  { layers: [{ kind: 'eth', pad: true }, { kind: 'arp' }], payload: 0 },
  { layers: [{ kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' }, { kind: 'gre', checksum: true }, { kind: 'eth' }, { kind: 'vlan', vid: 9 }, { kind: 'ipv4', src: '10.0.0.1', dst: '10.0.0.2' }, { kind: 'gre', key: 1 }, { kind: 'ipv4', src: '10.1.0.1', dst: '10.1.0.2' }, { kind: 'udp', srcPort: 1, dstPort: 2 }], payload: 4 },
  { layers: [{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2', mf: true }, { kind: 'udp', srcPort: 1, dstPort: 2 }], payload: 20 },
  { layers: [{ kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'tcp', srcPort: 1, dstPort: 2 }], payload: 0 },
];

/**
 * Offsets of fields whose value is a length or a count somewhere in a frame: overwriting them
 * with random values is the "length-field lie" mutation. Found from the decoded frame so the
 * offsets are right for every seed.
 */
function lengthFields(buf: Uint8Array, linkType: number): number[] {
  const f = decodeFrame(buf, linkType);
  const out: number[] = [];
  for (const l of f.layers) {
    const o = l.offset;
    switch (l.kind) {
      case 'ethernet': out.push(o + 12); break;
      case 'vlan': out.push(o + 2); break;
      case 'arp': out.push(o + 4, o + 5); break;
      case 'ipv4': out.push(o, o + 2, o + 3, o + 6, o + 9); break;
      case 'ipv6': out.push(o + 4, o + 5, o + 6); break;
      case 'ipv6ext': out.push(o, o + 1); break;
      case 'tcp': out.push(o + 12); break;
      case 'udp': out.push(o + 4, o + 5); break;
      case 'gre': out.push(o, o + 1, o + 2); break;
      default: break;
    }
  }
  return out;
}

test(`fuzz: ${FRAMES} random and mutated frames decode without throwing, in bounds, within ${BUDGET_MS} ms`, () => {
  const rnd = prng(SEED);
  const int = (n: number) => Math.floor(rnd() * n);
  const seeds = SEEDS.map((s) => {
    const bytes = buildFrame(s.layers, new Uint8Array(s.payload).map((_, i) => i));
    const lt = builtLinkType(s.layers);
    // The seeds themselves must be valid, or the mutations start from noise.
    const f = decodeFrame(bytes, lt);
    assert.equal(f.error, null, `seed ${toHex(bytes)}`);
    assert.deepEqual(f.checksumErrors, []);
    return { bytes, lt, fields: lengthFields(bytes, lt) };
  });
  const dec = new FrameDecoder();
  const GUARD = 64;
  const arena = new Uint8Array(GUARD + 4096 + GUARD);
  const tableA = new Int32Array(6 * 128);
  let errors = 0;
  let complete = 0;
  const codes = new Map<string, number>();
  const started = performance.now();
  for (let n = 0; n < FRAMES; n++) {
    let frame: Uint8Array;
    let lt: number;
    const pick = rnd();
    if (pick < 0.1) {
      // Pure noise, with a plausible first nibble half of the time so IP parsing is reached.
      frame = new Uint8Array(int(200)).map(() => int(256));
      lt = [LinkType.ETHERNET, LinkType.RAW, LinkType.IPV4, LinkType.IPV6][int(4)]!;
      if (frame.length && rnd() < 0.5) frame[0] = (rnd() < 0.5 ? 0x45 : 0x60) | (frame[0]! & 0x0f);
    } else {
      const s = seeds[int(seeds.length)]!;
      frame = s.bytes.slice();
      lt = s.lt;
      const rounds = 1 + int(4);
      for (let r = 0; r < rounds; r++) {
        const m = rnd();
        if (m < 0.35 && frame.length) {
          const bits = 1 + int(8);
          for (let k = 0; k < bits; k++) frame[int(frame.length)]! ^= 1 << int(8);
        } else if (m < 0.55) {
          frame = frame.slice(0, int(frame.length + 1));
        } else if (m < 0.85 && s.fields.length) {
          const at = s.fields[int(s.fields.length)]!;
          if (at < frame.length) frame[at] = rnd() < 0.3 ? [0, 1, 0xff, 0x40, 0x45, 0x4f, 0x60][int(7)]! : int(256);
        } else if (m < 0.95) {
          // Splice: grow or shrink the middle, so every length field becomes a lie at once.
          const at = int(frame.length + 1);
          const grow = new Uint8Array(int(40)).map(() => int(256));
          frame = rnd() < 0.5 ? new Uint8Array([...frame.subarray(0, at), ...grow, ...frame.subarray(at)]) : new Uint8Array([...frame.subarray(0, at), ...frame.subarray(Math.min(frame.length, at + int(40)))]);
        } else {
          frame = new Uint8Array([...frame, ...new Uint8Array(int(64)).map(() => int(256))]);
        }
      }
    }
    const ctx = () => `seed ${SEED} frame #${n} linktype ${lt}: ${toHex(frame)}`;
    let okA: boolean;
    try {
      // Decode inside an arena whose guard bytes are 0x00, then 0xff: a read past [off, end)
      // would see different bytes and, sooner or later, give a different table.
      arena.fill(0x00);
      arena.set(frame, GUARD);
      okA = dec.decode(arena, lt, GUARD, GUARD + frame.length);
      const countA = dec.count;
      const faultA = dec.fault;
      const faultAtA = dec.faultAt;
      for (let i = 0; i < countA; i++) {
        tableA[i * 6] = dec.kinds[i]!;
        tableA[i * 6 + 1] = dec.offsets[i]!;
        tableA[i * 6 + 2] = dec.headerLens[i]!;
        tableA[i * 6 + 3] = dec.ends[i]!;
        tableA[i * 6 + 4] = dec.checksums[i]!;
        tableA[i * 6 + 5] = dec.aux[i]!;
      }
      arena.fill(0xff);
      arena.set(frame, GUARD);
      const okB = dec.decode(arena, lt, GUARD, GUARD + frame.length);
      assert.equal(okB, okA, ctx());
      assert.equal(dec.count, countA, ctx());
      assert.equal(dec.fault, faultA, ctx());
      assert.equal(dec.faultAt, faultAtA, ctx());
      for (let i = 0; i < countA; i++) {
        const same =
          tableA[i * 6] === dec.kinds[i] && tableA[i * 6 + 1] === dec.offsets[i] && tableA[i * 6 + 2] === dec.headerLens[i] &&
          tableA[i * 6 + 3] === dec.ends[i] && tableA[i * 6 + 4] === dec.checksums[i] && tableA[i * 6 + 5] === dec.aux[i];
        if (!same) assert.fail(`guard bytes changed row ${i}: ${ctx()}`);
        const lo = dec.offsets[i]!;
        const hi = dec.ends[i]!;
        if (!(lo >= GUARD && lo + dec.headerLens[i]! <= hi && hi <= GUARD + frame.length)) assert.fail(`row ${i} [${lo}, ${hi}) outside the frame: ${ctx()}`);
      }
      if (!okA && !(dec.faultAt >= GUARD && dec.faultAt <= GUARD + frame.length)) assert.fail(`fault offset ${dec.faultAt} outside the frame: ${ctx()}`);
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.fail(`FrameDecoder threw ${String(e)}: ${ctx()}`);
    }
    let f: ReturnType<typeof decodeFrame>;
    try {
      f = decodeFrame(frame, lt);
    } catch (e) {
      assert.fail(`decodeFrame threw ${String(e)}: ${ctx()}`);
    }
    // Both paths are one walk: the allocating one must agree with the zero-allocation one.
    assert.equal(f.error === null, okA, ctx());
    assert.equal(f.layers.length, dec.count, ctx());
    if (f.error) {
      errors++;
      if (!isWireError(f.error) || f.error.offset > frame.length) assert.fail(`bad error ${JSON.stringify(f.error)}: ${ctx()}`);
      const key = `${f.error.layer}/${f.error.code}`;
      codes.set(key, (codes.get(key) ?? 0) + 1);
    } else complete++;
    for (const e of f.checksumErrors) if (!isWireError(e) || e.code !== 'bad_checksum') assert.fail(`bad checksum error ${JSON.stringify(e)}: ${ctx()}`);
  }
  const ms = performance.now() - started;
  console.log(`fuzz: ${FRAMES} frames in ${ms.toFixed(0)} ms; ${complete} decoded fully, ${errors} typed errors; top: ${[...codes].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  assert.ok(ms < BUDGET_MS, `took ${ms.toFixed(0)} ms, budget ${BUDGET_MS}`);
  // A fuzz run where nearly everything fails or nearly everything passes is not exercising both paths.
  assert.ok(errors > FRAMES / 10 && complete > FRAMES / 10, `errors ${errors}, complete ${complete}`);
  // Every kind of typed error we expect to provoke shows up.
  for (const k of ['ipv4/truncated', 'ipv4/malformed', 'tcp/malformed', 'udp/malformed', 'gre/unsupported', 'ipv6/truncated', 'ipv6ext/truncated']) {
    assert.ok(codes.has(k), `never saw ${k}; saw ${[...codes.keys()].join(' ')}`);
  }
});

test('fuzz: every standalone parser on random bytes at random offsets returns ok or a typed error', () => {
  const rnd = prng(SEED + 1);
  const int = (n: number) => Math.floor(rnd() * n);
  const seeds = SEEDS.map((s) => buildFrame(s.layers, new Uint8Array(s.payload)));
  const ep4 = { src: '192.0.2.1', dst: '192.0.2.2' };
  const ep6 = { src: '2001:db8::1', dst: '2001:db8::2' };
  const parsers: ((b: Uint8Array, o: number, e: number) => unknown)[] = [
    (b, o, e) => parseEthernet(b, o, e), (b, o, e) => parseVlan(b, o, e), (b, o, e) => parseArp(b, o, e),
    (b, o, e) => parseIpv4(b, o, e), (b, o, e) => parseIpv6(b, o, e),
    (b, o, e) => parseIpv6Ext(b, o, e, [0, 43, 44, 51, 60, 6][int(6)]!),
    (b, o, e) => parseTcp(b, o, e, { verifyWith: rnd() < 0.5 ? ep4 : ep6 }), (b, o, e) => parseUdp(b, o, e, { verifyWith: ep6, fragment: rnd() < 0.2 }),
    (b, o, e) => parseIcmp(b, o, e), (b, o, e) => parseIcmpv6(b, o, e, { verifyWith: ep6 }), (b, o, e) => parseGre(b, o, e),
    (b) => parseIpv4Options(b), (b) => parseIpv6Options(b), (b, o, e) => parseTcpOptions(b, o, e),
  ];
  for (let n = 0; n < 20_000; n++) {
    const base = rnd() < 0.5 ? seeds[int(seeds.length)]!.slice() : new Uint8Array(int(120)).map(() => int(256));
    for (let k = int(6); k > 0 && base.length; k--) base[int(base.length)] = int(256);
    const o = int(base.length + 1);
    const e = o + int(base.length - o + 1);
    const p = parsers[n % parsers.length]!;
    let r: unknown;
    try {
      r = p(base, o, e);
    } catch (x) {
      assert.fail(`parser ${n % parsers.length} threw ${String(x)} at ${o}..${e}: ${toHex(base)}`);
    }
    const res = r as { ok: boolean; error?: unknown };
    if (!res.ok && !isWireError(res.error)) assert.fail(`parser ${n % parsers.length} returned ${JSON.stringify(r)}`);
  }
});

test('fuzz: mutated pcap files read as records or a typed error, never an exception', () => {
  const rnd = prng(SEED + 2);
  const int = (n: number) => Math.floor(rnd() * n);
  const file = writePcap(SEEDS.map((s) => ({ data: buildFrame(s.layers, new Uint8Array(s.payload)), tsSec: 1 })));
  let errors = 0;
  for (let n = 0; n < 10_000; n++) {
    let b = file.slice();
    const m = rnd();
    if (m < 0.4) for (let k = 1 + int(4); k > 0; k--) b[int(b.length)] = int(256);
    else if (m < 0.7) b = b.slice(0, int(b.length + 1));
    else {
      // Lie in a record header's caplen/origlen, or in the snap length.
      const at = rnd() < 0.2 ? 16 : 24 + 8 + 4 * int(2);
      b[at + int(4)] = int(256);
    }
    if (rnd() < 0.3) b.reverse(); // also reaches the big-endian and garbage-magic paths
    let r: ReturnType<typeof readPcap>;
    try {
      r = readPcap(b);
    } catch (x) {
      assert.fail(`readPcap threw ${String(x)}`);
    }
    if (!r.ok) {
      errors++;
      if (!isWireError(r.error) || r.error.layer !== 'pcap' || r.error.offset > b.length) assert.fail(JSON.stringify(r.error));
    } else {
      for (const rec of r.value.records) assert.ok(rec.fileOffset + 16 + rec.data.length <= b.length);
    }
  }
  assert.ok(errors > 1000 && errors < 10_000, `errors ${errors}`);
});
