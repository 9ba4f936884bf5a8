// Cross-check with an independent decoder: GRE-encapsulated TCP SYNs built by buildFrame and
// written by writePcap are read by tshark, field by field, to the values the specs asked for —
// addresses, GRE key/protocol/sequence/checksum flag, ports, flags, MSS, and tshark's own
// verdict on every checksum (good where we computed it, bad where we corrupted it on purpose).
// Our decodeFrame must give the same values from the same bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { buildFrame, tcpFlags } from './build.ts';
import { type Frame, decodeFrame, findLayer, formatFrame } from './frame.ts';
import { readPcap, writePcap } from './pcap.ts';
import { prng, tempDir } from './testutil.ts';

interface Syn {
  outerSrc: string;
  outerDst: string;
  innerSrc: string;
  innerDst: string;
  key: number | null;
  seq: number | null;
  greChecksum: boolean;
  srcPort: number;
  dstPort: number;
  mss: number | null;
  flags: string;
  /** Which checksum to corrupt, if any. */
  bad: 'outer' | 'gre' | 'inner' | 'tcp' | null;
}

const FIELDS = [
  'ip.src', 'ip.dst', 'ip.checksum.status', 'gre.key', 'gre.proto', 'gre.sequence_number', 'gre.flags.checksum', 'gre.checksum.status',
  'tcp.srcport', 'tcp.dstport', 'tcp.flags', 'tcp.options.mss_val', 'tcp.checksum.status', 'frame.len',
] as const;

/** tshark's checksum status values (epan/proto.h: PROTO_CHECKSUM_E_BAD 0, _GOOD 1). */
const BAD = '0';
const GOOD = '1';

function makeSyns(): Syn[] {
  const rnd = prng(2890);
  const int = (n: number) => Math.floor(rnd() * n);
  const addr = (net: string) => `${net}.${1 + int(254)}`;
  const syns: Syn[] = [];
  for (let i = 0; i < 12; i++) {
    syns.push({
      outerSrc: addr('198.51.100'),
      outerDst: '198.51.100.1',
      innerSrc: addr('192.0.2'),
      innerDst: addr('203.0.113'),
      // Every combination of key / sequence / checksum appears at least once in the first 8.
      key: i & 1 ? (int(2 ** 32) >>> 0) : null,
      seq: i & 2 ? int(2 ** 32) : null,
      greChecksum: (i & 4) !== 0,
      srcPort: 1024 + int(64000),
      dstPort: [80, 443, 22, 8443][int(4)]!,
      mss: i === 3 ? null : 536 + int(1000),
      flags: i === 5 ? 'SE' : i === 6 ? 'SEC' : 'S',
      bad: i === 8 ? 'outer' : i === 9 ? 'inner' : i === 10 ? 'tcp' : i === 11 ? 'gre' : null,
    });
  }
  syns[11]!.greChecksum = true;
  return syns;
}

function build(s: Syn): Uint8Array {
  return buildFrame([
    { kind: 'eth', src: '02:00:5e:00:53:c8', dst: '02:00:5e:00:53:01' },
    { kind: 'ipv4', src: s.outerSrc, dst: s.outerDst, badChecksum: s.bad === 'outer' },
    { kind: 'gre', ...(s.key !== null ? { key: s.key } : {}), ...(s.seq !== null ? { seq: s.seq } : {}), checksum: s.greChecksum, badChecksum: s.bad === 'gre' },
    { kind: 'ipv4', src: s.innerSrc, dst: s.innerDst, df: true, badChecksum: s.bad === 'inner' },
    { kind: 'tcp', srcPort: s.srcPort, dstPort: s.dstPort, flags: s.flags, ...(s.mss !== null ? { mss: s.mss } : {}), badChecksum: s.bad === 'tcp' },
  ]);
}

/** The row tshark should print for a SYN, from the spec alone. */
function expectedRow(s: Syn, len: number): Record<(typeof FIELDS)[number], string> {
  return {
    'ip.src': `${s.outerSrc},${s.innerSrc}`,
    'ip.dst': `${s.outerDst},${s.innerDst}`,
    'ip.checksum.status': `${s.bad === 'outer' ? BAD : GOOD},${s.bad === 'inner' ? BAD : GOOD}`,
    'gre.key': s.key === null ? '' : `0x${s.key.toString(16).padStart(8, '0')}`,
    'gre.proto': '0x0800',
    'gre.sequence_number': s.seq === null ? '' : String(s.seq),
    'gre.flags.checksum': s.greChecksum ? '1' : '0',
    'gre.checksum.status': s.greChecksum ? (s.bad === 'gre' ? BAD : GOOD) : '',
    'tcp.srcport': String(s.srcPort),
    'tcp.dstport': String(s.dstPort),
    'tcp.flags': `0x${tcpFlags(s.flags).toString(16).padStart(4, '0')}`,
    'tcp.options.mss_val': s.mss === null ? '' : String(s.mss),
    'tcp.checksum.status': s.bad === 'tcp' ? BAD : GOOD,
    'frame.len': String(len),
  };
}

/** The same row from our decoder, in tshark's notation. */
function ourRow(f: Frame): Record<(typeof FIELDS)[number], string> {
  const o = findLayer(f, 'ipv4', 0)!;
  const i = findLayer(f, 'ipv4', 1)!;
  const g = findLayer(f, 'gre')!;
  const t = findLayer(f, 'tcp')!;
  const st = (c: string) => (c === 'good' ? GOOD : c === 'bad' ? BAD : c);
  const mss = t.repr.options.find((x) => x.kind === 'mss');
  return {
    'ip.src': `${o.repr.src},${i.repr.src}`,
    'ip.dst': `${o.repr.dst},${i.repr.dst}`,
    'ip.checksum.status': `${st(o.checksum)},${st(i.checksum)}`,
    'gre.key': g.repr.key === null ? '' : `0x${g.repr.key.toString(16).padStart(8, '0')}`,
    'gre.proto': `0x${g.repr.protocol.toString(16).padStart(4, '0')}`,
    'gre.sequence_number': g.repr.seq === null ? '' : String(g.repr.seq),
    'gre.flags.checksum': g.repr.checksum ? '1' : '0',
    'gre.checksum.status': g.repr.checksum ? st(g.checksum) : '',
    'tcp.srcport': String(t.repr.srcPort),
    'tcp.dstport': String(t.repr.dstPort),
    'tcp.flags': `0x${t.repr.flags.toString(16).padStart(4, '0')}`,
    'tcp.options.mss_val': mss?.kind === 'mss' ? String(mss.value) : '',
    'tcp.checksum.status': st(t.checksum),
    'frame.len': String(f.length),
  };
}

test('tshark decodes our GRE-encapsulated SYNs to the values we put in, field by field', (t) => {
  if (!needs(t, { tools: ['tshark'] })) return;
  const dir = tempDir(t, 'wire-tshark');
  const syns = makeSyns();
  const frames = syns.map(build);
  const file = join(dir, 'gre-syn.pcap');
  writeFileSync(file, writePcap(frames.map((data, i) => ({ data, tsSec: 1_700_000_000 + i }))));
  // Checksum validation is off by default in Wireshark for IP and TCP; GRE's is always on.
  const args = ['-r', file, '-n', '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|', '-E', 'occurrence=a', '-E', 'aggregator=,'];
  for (const f of FIELDS) args.push('-e', f);
  const res = spawnSync('tshark', args, { encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.status, 0, `tshark failed: ${res.stderr}`);
  const lines = res.stdout.trimEnd().split('\n');
  assert.equal(lines.length, syns.length, res.stdout);
  syns.forEach((s, n) => {
    const cols = lines[n]!.split('|');
    assert.equal(cols.length, FIELDS.length, lines[n]);
    const theirs = Object.fromEntries(FIELDS.map((f, i) => [f, cols[i]!]));
    const frame = decodeFrame(frames[n]!);
    assert.equal(frame.error, null, formatFrame(frame));
    assert.deepEqual(theirs, expectedRow(s, frames[n]!.length), `frame ${n}, tshark vs spec: ${formatFrame(frame)}`);
    assert.deepEqual(ourRow(frame), theirs, `frame ${n}, ours vs tshark`);
  });
});

test('editcap rewrites our pcap as nanosecond pcap and as pcapng; we read the first, name the second', (t) => {
  if (!needs(t, { tools: ['editcap'] })) return;
  const dir = tempDir(t, 'wire-editcap');
  const frames = makeSyns().slice(0, 3).map(build);
  const src = join(dir, 'us.pcap');
  // Timestamps with µs precision, so the ns file must carry exactly ×1000.
  writeFileSync(src, writePcap(frames.map((data, i) => ({ data, tsSec: 1_700_000_000 + i, tsNsec: 123_456_000 + i * 1000 }))));
  const ns = join(dir, 'ns.pcap');
  let res = spawnSync('editcap', ['-F', 'nsecpcap', src, ns], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.status, 0, res.stderr);
  const r = readPcap(readFileSync(ns));
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.value.nanos, true);
  assert.deepEqual(r.value.records.map((x) => [x.tsSec, x.tsNsec]), frames.map((_, i) => [1_700_000_000 + i, 123_456_000 + i * 1000]));
  assert.deepEqual(r.value.records.map((x) => x.data), frames);
  const ng = join(dir, 'x.pcapng');
  res = spawnSync('editcap', ['-F', 'pcapng', src, ng], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(res.status, 0, res.stderr);
  const e = readPcap(readFileSync(ng));
  assert.ok(!e.ok && e.error.code === 'unsupported' && e.error.layer === 'pcap');
});
