/**
 * Packet codec benchmark (src/wire): parse and emit of 64-byte and 1500-byte frames on one core,
 * in Mpps, with the heap growth and GC count over each timed loop to show the hot path does not
 * allocate. Prints a markdown table for bench/RESULTS.md. Runs in about 15 s.
 *
 *   node --import tsx bench/wire.bench.ts
 *
 * Frames: a plain TCP segment (eth/ipv4/tcp, the 64-byte case) and a customer GRE packet
 * (eth/ipv4/gre key/ipv4/tcp, the 1500-byte case, and a 64-byte one for header-bound cost).
 * - parse: `FrameDecoder.decode`, every checksum verified (IPv4 headers, GRE, TCP over the
 *   whole segment), so a 1500-byte parse reads every byte once.
 * - emit: the headers written field by field through the views into a reused buffer, the
 *   payload copied in, every checksum computed — what a packet generator or the GRE encap
 *   path does. For GRE frames "emit" is encapsulation: outer eth/ipv4/gre written in front of
 *   the decoded inner packet.
 * - parse+emit: both, per packet (decode the input, re-emit it).
 * - decodeFrame: the allocating Repr path, for contrast (not for per-packet loops).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { PerformanceObserver } from 'node:perf_hooks';
import { buildFrame } from '../src/wire/build.ts';
import { FrameDecoder, LayerKind, LinkType } from '../src/wire/decoder.ts';
import { EthernetFrame, EtherType } from '../src/wire/ethernet.ts';
import { decodeFrame } from '../src/wire/frame.ts';
import { GRE_FLAG_K, GrePacket, GreProtocol } from '../src/wire/gre.ts';
import { IpProtocol } from '../src/wire/ip.ts';
import { IPV4_FLAG_DF, Ipv4Packet } from '../src/wire/ipv4.ts';
import { TcpFlag, TcpSegment } from '../src/wire/tcp.ts';

// A handle on the garbage collector without restarting node with --expose-gc (bench/run.ts
// starts every bench the same way): the flag set at run time takes effect in a new context.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Start times of GCs seen; entries arrive asynchronously, after the loop that caused them. */
const gcTimes: number[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcTimes.push(e.startTime);
}).observe({ entryTypes: ['gc'] });

const MAC_SRC = new Uint8Array([0x02, 0, 0x5e, 0, 0x53, 0x01]);
const MAC_DST = new Uint8Array([0x02, 0, 0x5e, 0, 0x53, 0x02]);
const MSS_OPT = new Uint8Array([2, 4, 0x05, 0xb4]);

function tcpFrame(total: number): Uint8Array {
  const payload = new Uint8Array(total - 14 - 20 - 24).map((_, i) => i);
  return buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5', df: true }, { kind: 'tcp', srcPort: 40000, dstPort: 443, flags: 'PA', mss: 1460 }], payload);
}

function greFrame(total: number): Uint8Array {
  const payload = new Uint8Array(total - 14 - 20 - 8 - 20 - 24).map((_, i) => i);
  return buildFrame([
    { kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1', df: true }, { kind: 'gre', key: 42 },
    { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5' }, { kind: 'tcp', srcPort: 40000, dstPort: 443, flags: 'PA', mss: 1460 },
  ], payload);
}

const dec = new FrameDecoder();
const eth = new EthernetFrame();
const ip = new Ipv4Packet();
const tcp = new TcpSegment();
const gre = new GrePacket();

/** Writes eth/ipv4/tcp(MSS) + `payload` into `out`, all checksums computed; returns the length. */
function emitTcpFrame(out: Uint8Array, payload: Uint8Array, seq: number): number {
  const tcpLen = 24 + payload.length;
  eth.reset(out, 0);
  out.set(MAC_DST, 0);
  out.set(MAC_SRC, 6);
  eth.etherType = EtherType.IPV4;
  ip.reset(out, 14);
  ip.headerLen = 20;
  ip.tos = 0;
  ip.totalLen = 20 + tcpLen;
  ip.ident = seq & 0xffff;
  ip.flagsFrag = IPV4_FLAG_DF;
  ip.ttl = 64;
  ip.protocol = IpProtocol.TCP;
  ip.src = 0xc000020a;
  ip.dst = 0xcb007105;
  ip.fillChecksum();
  tcp.reset(out, 34, 34 + tcpLen);
  tcp.srcPort = 40000;
  tcp.dstPort = 443;
  tcp.seq = seq;
  tcp.ack = 0;
  tcp.setHeaderLenAndFlags(24, TcpFlag.PSH | TcpFlag.ACK);
  tcp.window = 65535;
  tcp.urgent = 0;
  out.set(MSS_OPT, 54);
  out.set(payload, 58);
  tcp.fillChecksum(ip.pseudoSum(IpProtocol.TCP, tcpLen));
  return 34 + tcpLen;
}

/** GRE encap: outer eth/ipv4/gre(key) in front of `inner` (an IPv4 packet); returns the length. */
function emitGreFrame(out: Uint8Array, inner: Uint8Array, key: number): number {
  const total = 14 + 20 + 8 + inner.length;
  eth.reset(out, 0);
  out.set(MAC_DST, 0);
  out.set(MAC_SRC, 6);
  eth.etherType = EtherType.IPV4;
  ip.reset(out, 14);
  ip.headerLen = 20;
  ip.tos = 0;
  ip.totalLen = total - 14;
  ip.ident = 0;
  ip.flagsFrag = IPV4_FLAG_DF;
  ip.ttl = 64;
  ip.protocol = IpProtocol.GRE;
  ip.src = 0xc63364c8;
  ip.dst = 0xc6336401;
  ip.fillChecksum();
  gre.reset(out, 34, total);
  gre.flags = GRE_FLAG_K;
  gre.protocol = GreProtocol.IPV4;
  gre.key = key;
  out.set(inner, 42);
  return total;
}

interface Row {
  readonly frame: string;
  readonly op: string;
  readonly n: number;
  readonly mpps: number;
  readonly gbps: number;
  readonly heapPerPkt: number;
  readonly gcs: number;
}

/**
 * Times `n` calls of `fn` after a warm-up. Heap growth and the GCs that started during the timed
 * loop are reported: a loop that allocates even a few bytes per packet fills the young
 * generation within a few hundred thousand packets and shows scavenges; one that does not shows
 * none and a heap that did not grow.
 */
async function measure(frame: string, op: string, bytes: number, n: number, fn: (i: number) => number): Promise<Row> {
  let sink = 0;
  for (let i = 0; i < Math.min(n, 200_000); i++) sink += fn(i);
  gc();
  await new Promise((r) => setImmediate(r));
  const h0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) sink += fn(i);
  const t1 = performance.now();
  const h1 = process.memoryUsage().heapUsed;
  if (sink === 0.5) console.log(sink); // keeps the results alive so nothing is optimised away
  await new Promise((r) => setTimeout(r, 20)); // let the GC entries of the loop arrive
  const gcs = gcTimes.filter((t) => t >= t0 && t <= t1).length;
  const pps = n / ((t1 - t0) / 1000);
  return { frame, op, n, mpps: pps / 1e6, gbps: (pps * bytes * 8) / 1e9, heapPerPkt: (h1 - h0) / n, gcs };
}

async function main(): Promise<void> {
  const began = performance.now();
  const rows: Row[] = [];
  const out = new Uint8Array(2048);
  for (const [name, frame, n] of [
    ['64 B eth/ipv4/tcp', tcpFrame(64), 1_000_000],
    ['86 B eth/ipv4/gre/ipv4/tcp (smallest with MSS)', greFrame(86), 1_000_000],
    ['1500 B eth/ipv4/gre/ipv4/tcp', greFrame(1500), 200_000],
    ['1500 B eth/ipv4/tcp', tcpFrame(1500), 200_000],
  ] as const) {
    // Sanity: the frame decodes with every checksum good, and our emit reproduces a valid frame.
    if (!dec.decode(frame, LinkType.ETHERNET) || [...dec.checksums.subarray(0, dec.count)].some((c) => c === 2)) throw new Error(`bench frame does not decode: ${name}`);
    const isGre = dec.find(LayerKind.GRE) >= 0;
    const innerStart = isGre ? dec.offsets[dec.find(LayerKind.GRE)]! + 8 : 0;
    const inner = frame.slice(innerStart);
    const payload = frame.slice(58);
    const emit = isGre ? (i: number) => emitGreFrame(out, inner, i) : (i: number) => emitTcpFrame(out, payload, i);
    const emitted = out.subarray(0, emit(1));
    const check = decodeFrame(emitted);
    if (check.error || check.checksumErrors.length || emitted.length !== frame.length) throw new Error(`emit is wrong for ${name}: ${JSON.stringify(check.error ?? check.checksumErrors)}`);

    const bytes = frame.length;
    rows.push(await measure(name, 'parse (checksums verified)', bytes, n, () => (dec.decode(frame, LinkType.ETHERNET) ? dec.count : -1)));
    dec.verifyChecksums = false;
    rows.push(await measure(name, 'parse (no checksums)', bytes, n, () => (dec.decode(frame, LinkType.ETHERNET) ? dec.count : -1)));
    dec.verifyChecksums = true;
    rows.push(await measure(name, 'emit (checksums computed)', bytes, n, emit));
    rows.push(await measure(name, 'parse + emit', bytes, n, (i) => (dec.decode(frame, LinkType.ETHERNET) ? emit(i) : -1)));
    rows.push(await measure(name, 'decodeFrame (allocating Reprs)', bytes, Math.floor(n / 10), () => decodeFrame(frame).layers.length));
  }
  const f = (x: number, d: number) => x.toFixed(d);
  console.log(`\nwire codecs — node ${process.version}, ${process.platform}/${process.arch}, one core, ${f((performance.now() - began) / 1000, 1)} s\n`);
  console.log('| frame | operation | packets | Mpps | Gbit/s | heap Δ B/pkt | GCs in loop |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.frame} | ${r.op} | ${r.n} | ${f(r.mpps, 2)} | ${f(r.gbps, 2)} | ${f(r.heapPerPkt, 3)} | ${r.gcs} |`);
  }
  console.log('\nheap Δ: heapUsed after minus before the timed loop (which starts after a forced GC), per packet. GCs in loop: collections that started during it. Both ~0 means the path does not allocate; the decodeFrame rows show what allocation looks like.');
}

await main();
