/**
 * The sampler (bpf/sample.h) through BPF_PROG_TEST_RUN: frames built by src/wire go through the
 * compiled xdp_edge, and the reader must decode exactly what was sent, take each record once,
 * count what a full ring overwrote, and leave the verdict alone. The record layout is checked
 * against the object's BTF.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { hasTool, isRoot, needs } from '../../testkit/needs.ts';
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import { readBtfStructs } from './btf.ts';
import { progRun } from './bpftool.ts';
import { loadEdge, unloadEdge, type EdgePins } from './loader.ts';
import { BPF_OBJECTS, missingObjects } from './objects.ts';
import { linuxSampleSource, samplePins, SAMPLE_CFG_LAYOUT, SAMPLE_REC_LAYOUT, SAMPLE_SLOTS, type SampleSource } from './sample.ts';

const XDP_PASS = 2;
let pins: EdgePins | null = null;

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  const r = await loadEdge(`aeSMP${process.pid}`);
  if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);
  pins = r.value;
});

after(async () => {
  if (pins) await unloadEdge(pins);
});

function ready(t: Parameters<typeof needs>[0]): EdgePins | null {
  if (!needs(t, { root: true, tools: ['bpftool'] })) return null;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(pins, 'edge programs did not load');
  return pins;
}

async function send(p: EdgePins, layers: LayerSpec[], payload?: string | Uint8Array, repeat = 1): Promise<void> {
  const r = await progRun(p.progs.xdpEdge, Buffer.from(buildFrame(layers, payload)), { repeat });
  assert.ok(r.ok, r.ok ? '' : `${r.error.op}: ${r.error.message}`);
  assert.equal(r.value.retval, XDP_PASS, 'sampling never changes the verdict');
}

async function source(p: EdgePins, every: number): Promise<SampleSource> {
  const s = linuxSampleSource(samplePins(p.root));
  const set = await s.setRate(every);
  assert.ok(set.ok, set.ok ? '' : set.error.message);
  const primed = await s.read(); // what earlier tests left in the rings
  assert.ok(primed.ok);
  assert.deepEqual(primed.value.samples, [], 'the first read only notes where the rings are');
  return s;
}

test('struct dos_sample_rec and dos_sample_cfg match the BTF of xdp_edge.o', async (t) => {
  if (!needs(t, { tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  const btf = await readBtfStructs(BPF_OBJECTS.xdpEdge);
  assert.ok(btf.ok, btf.ok ? '' : btf.error);
  for (const spec of [SAMPLE_REC_LAYOUT, SAMPLE_CFG_LAYOUT]) {
    const s = btf.value.get(spec.name);
    assert.ok(s, `struct ${spec.name} is not in the BTF`);
    assert.equal(s.size, spec.size, `struct ${spec.name} size`);
    const inBtf: Record<string, unknown> = Object.fromEntries(s.members.map((m) => [m.name, [m.offset, m.size]]));
    assert.deepEqual(inBtf, spec.fields, `struct ${spec.name}: field offsets and sizes`);
  }
});

test('every packet is sampled at 1 in 1 and decoded exactly: UDP with payload, TCP SYN with options, IPv6, ICMP', async (t) => {
  const p = ready(t);
  if (!p) return;
  const s = await source(p, 1);
  const dns = Buffer.from('12340100000100000000000003777777', 'hex'); // 16 bytes of a DNS query
  await send(p, [{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5', ttl: 61 }, { kind: 'udp', srcPort: 5353, dstPort: 53 }], new Uint8Array([...dns, 0xff, 0xff]));
  await send(p, [{ kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.7', dst: '203.0.113.6', ttl: 250 }, { kind: 'tcp', srcPort: 40000, dstPort: 443, flags: 'S', mss: 1460 }], 'GET');
  await send(p, [{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8::10', dst: '2001:db8:1::5', hopLimit: 9 }, { kind: 'udp', srcPort: 1, dstPort: 123 }], new Uint8Array([0x17, 0, 3, 2]));
  await send(p, [{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.11', dst: '203.0.113.7' }, { kind: 'icmp' }]);
  const r = await s.read();
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.value.lost, 0);
  assert.equal(r.value.every, 1);
  // Each send is its own bpftool run and may land on another CPU's ring; the reader returns the
  // rings one after another, so the order across sends is not defined: compare as a set.
  const byDst = (a: { dst: string }, b: { dst: string }) => a.dst.localeCompare(b.dst);
  assert.deepEqual([...r.value.samples].sort(byDst), [
    { family: 4, proto: 17, src: '192.0.2.10', dst: '203.0.113.5', sport: 5353, dport: 53, len: 20 + 8 + 18, ttl: 61, tcpFlags: 0, payload: dns.toString('hex') },
    { family: 4, proto: 6, src: '198.51.100.7', dst: '203.0.113.6', sport: 40000, dport: 443, len: 20 + 24 + 3, ttl: 250, tcpFlags: 0x02, payload: '474554' },
    { family: 6, proto: 17, src: '2001:db8::10', dst: '2001:db8:1::5', sport: 1, dport: 123, len: 40 + 8 + 4, ttl: 9, tcpFlags: 0, payload: '17000302' },
    { family: 4, proto: 1, src: '192.0.2.11', dst: '203.0.113.7', sport: 0, dport: 0, len: 20 + 8, ttl: 64, tcpFlags: 0, payload: '' },
  ].sort(byDst));
  const again = await s.read();
  assert.ok(again.ok);
  assert.deepEqual(again.value.samples, [], 'a record is taken once');
});

test('a full ring keeps the newest slots and counts the overwritten ones as lost', async (t) => {
  const p = ready(t);
  if (!p) return;
  const s = await source(p, 1);
  const extra = 76;
  // One bpftool run repeats the program on one CPU: SLOTS + extra samples into one ring.
  await send(p, [{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.20', dst: '203.0.113.9' }, { kind: 'udp', srcPort: 7, dstPort: 19 }], 'x', SAMPLE_SLOTS + extra);
  const r = await s.read();
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.value.samples.length, SAMPLE_SLOTS);
  assert.equal(r.value.lost, extra);
  assert.ok(r.value.samples.every((x) => x.dst === '203.0.113.9' && x.dport === 19 && x.payload === '78'));
});

test('sampling 1 in N takes about 1/N of the packets; 0 turns it off', async (t) => {
  const p = ready(t);
  if (!p) return;
  const s = await source(p, 8);
  const frame: LayerSpec[] = [{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.21', dst: '203.0.113.10' }, { kind: 'udp', srcPort: 7, dstPort: 19 }];
  await send(p, frame, 'y', 800);
  const r = await s.read();
  assert.ok(r.ok);
  const n = r.value.samples.length + r.value.lost;
  assert.equal(r.value.every, 8);
  // Binomial(800, 1/8): mean 100, sd ≈ 9.4; 50–150 is more than five sd either side.
  assert.ok(n >= 50 && n <= 150, `sampled ${n} of 800 at 1 in 8`);
  const off = await s.setRate(0);
  assert.ok(off.ok);
  await send(p, frame, 'y', 200);
  const none = await s.read();
  assert.ok(none.ok);
  assert.equal(none.value.samples.length + none.value.lost, 0, 'rate 0 samples nothing');
  const bad = await s.setRate(-1);
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /sampling rate -1/);
});
