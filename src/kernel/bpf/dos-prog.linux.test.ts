/**
 * Packet fixtures through BPF_PROG_TEST_RUN: the compiled xdp_edge with its DoS stage, fed frames
 * built by src/wire, with rules installed the way the agent installs them (compile → plan →
 * bpftool batch). Every match field, IPv4 and IPv6, match and non-match; the verdict order (drop
 * beats rate-limit, lowest slot counts); token buckets cutting a burst to the bucket size in pps
 * and in bps, per destination and per source prefix; 10,000 rules and the right slot hit.
 * No namespace is needed: the program runs on the given bytes only.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import { decodeFrame } from '../../wire/frame.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { progRun } from './bpftool.ts';
import { run } from '../exec.ts';
import { loadEdge, unloadEdge, type EdgePins } from './loader.ts';
import { missingObjects } from './objects.ts';
import { linuxDosMaps, type DosMapsApi, type DosRuleStats } from './dos.ts';
import { apply } from '../../agent/reconcile.ts';
import { lastDosTables, planDos } from '../../agent/dos-reconcile.ts';
import { configWithRules } from '../../compile/dos/fixtures.ts';

const XDP_DROP = 1;
const XDP_PASS = 2;
const NOW = Date.parse('2030-01-01T00:00:00Z');

let pins: EdgePins | null = null;
let maps: DosMapsApi | null = null;

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  const p = await loadEdge(`aeDP${process.pid}`);
  if (!p.ok) throw new Error(`${p.error.op}: ${p.error.message}`);
  pins = p.value;
  maps = linuxDosMaps(pins.root);
});

after(async () => {
  if (pins) await unloadEdge(pins);
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['bpftool', 'taskset'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(pins && maps, 'edge programs did not load');
  return true;
}

/** Makes the maps hold exactly `rules` (as the agent would); returns rule id → slot. */
async function install(rules: Record<string, unknown>): Promise<Map<string, number>> {
  // Empty first: a slot freed by a change is only reused by the next one, and tests check slots.
  await installAs({});
  return installAs(rules);
}

async function installAs(rules: Record<string, unknown>): Promise<Map<string, number>> {
  const s = await planDos(maps!, { config: configWithRules(rules), dc: 'ams', now: NOW });
  if (!s.ok) assert.fail(`${s.error.path}: ${s.error.message}`);
  const r = await apply([...s.value.adds, ...s.value.dels]);
  assert.equal(r.failed, undefined, r.failed?.error.message);
  return new Map(lastDosTables(maps!)!.rules.map((x) => [x.id, x.slot]));
}

async function verdict(frame: Uint8Array, repeat = 1): Promise<number> {
  const r = await progRun(pins!.progs.xdpEdge, Buffer.from(frame), { repeat });
  assert.ok(r.ok, r.ok ? '' : `${r.error.op}: ${r.error.message}`);
  return r.value.retval;
}

async function stats(slot: number): Promise<DosRuleStats> {
  const s = await maps!.stats([slot]);
  assert.ok(s.ok, s.ok ? '' : s.error.message);
  return s.value.get(slot)!;
}

const eth: LayerSpec = { kind: 'eth' };
const v4 = (o: { src?: string; dst?: string; ttl?: number; fragOffset?: number } = {}): LayerSpec => ({ kind: 'ipv4', src: o.src ?? '192.0.2.10', dst: o.dst ?? '203.0.113.100', ttl: o.ttl ?? 64, ...(o.fragOffset ? { fragOffset: o.fragOffset } : {}) });
const v6 = (o: { src?: string; dst?: string; hopLimit?: number } = {}): LayerSpec => ({ kind: 'ipv6', src: o.src ?? '2001:db8:1::10', dst: o.dst ?? '2001:db8:a::100', hopLimit: o.hopLimit ?? 64 });
const udp = (dstPort = 53, srcPort = 40000): LayerSpec => ({ kind: 'udp', srcPort, dstPort });
const tcp = (dstPort = 80, flags = 'S', srcPort = 40000): LayerSpec => ({ kind: 'tcp', srcPort, dstPort, flags });
const frame = (layers: LayerSpec[], payload: Uint8Array | string = '') => buildFrame([eth, ...layers], payload);

/** Asserts the verdict of each frame, naming it and showing it decoded on a mismatch. */
async function expectVerdicts(cases: Array<[string, Uint8Array, number]>): Promise<void> {
  for (const [what, f, want] of cases) {
    const got = await verdict(f);
    if (got !== want) {
      const d = decodeFrame(Buffer.from(f));
      assert.fail(`${what}: verdict ${got}, expected ${want}; frame ${d.layers.map((l) => `${l.kind} ${JSON.stringify(l.repr)}`).join(' | ')}`);
    }
  }
}

const drop = (match: Record<string, unknown>) => ({ match, action: 'drop' });

test('source and destination prefixes, IPv4 and IPv6', async (t) => {
  if (!ready(t)) return;
  await install({ s4: drop({ src: ['198.51.100.0/24'] }), d4: drop({ dst: ['203.0.113.64/26'] }), s6: drop({ src: ['2001:db8:bad::/48'] }), d6: drop({ dst: ['2001:db8:a::dead'] }) });
  await expectVerdicts([
    ['v4 src in 198.51.100.0/24', frame([v4({ src: '198.51.100.7' }), udp()]), XDP_DROP],
    ['v4 src outside', frame([v4({ src: '198.51.101.7', dst: '203.0.113.10' }), udp()]), XDP_PASS],
    ['v4 dst in 203.0.113.64/26', frame([v4({ dst: '203.0.113.127' }), udp()]), XDP_DROP],
    ['v4 dst just outside', frame([v4({ dst: '203.0.113.128' }), udp()]), XDP_PASS],
    ['v6 src in 2001:db8:bad::/48', frame([v6({ src: '2001:db8:bad:ffff::1' }), udp()]), XDP_DROP],
    ['v6 src outside', frame([v6({ src: '2001:db8:bae::1' }), udp()]), XDP_PASS],
    ['v6 dst the /128', frame([v6({ dst: '2001:db8:a::dead' }), udp()]), XDP_DROP],
    ['v6 dst the next address', frame([v6({ dst: '2001:db8:a::deae' }), udp()]), XDP_PASS],
  ]);
});

test('protocol, source port and destination port ranges (blocks), IPv4 and IPv6', async (t) => {
  if (!ready(t)) return;
  await install({ chargen: drop({ protocol: 'udp', sport: 19 }), hi: drop({ protocol: 'tcp', dport: '1000-1999' }), gre: drop({ protocol: 'gre' }) });
  await expectVerdicts([
    ['v4 udp from port 19', frame([v4(), udp(53, 19)]), XDP_DROP],
    ['v4 udp from port 20', frame([v4(), udp(53, 20)]), XDP_PASS],
    ['v4 tcp from port 19 (protocol differs)', frame([v4(), tcp(80, 'S', 19)]), XDP_PASS],
    ['v6 udp from port 19', frame([v6(), udp(53, 19)]), XDP_DROP],
    ['v4 tcp to 1000 (first block)', frame([v4(), tcp(1000)]), XDP_DROP],
    ['v4 tcp to 1500', frame([v4(), tcp(1500)]), XDP_DROP],
    ['v4 tcp to 1999 (last block)', frame([v4(), tcp(1999)]), XDP_DROP],
    ['v4 tcp to 999', frame([v4(), tcp(999)]), XDP_PASS],
    ['v4 tcp to 2000', frame([v4(), tcp(2000)]), XDP_PASS],
    ['v6 tcp to 1234', frame([v6(), tcp(1234)]), XDP_DROP],
    ['v6 udp to 1234', frame([v6(), udp(1234)]), XDP_PASS],
    ['v4 GRE (protocol 47)', frame([{ kind: 'ipv4', src: '192.0.2.10', dst: '198.51.100.99' }, { kind: 'gre' }, v4(), udp()]), XDP_DROP],
  ]);
});

test('a later fragment has no ports: a port rule does not match it, an address rule does', async (t) => {
  if (!ready(t)) return;
  await install({ chargen: drop({ protocol: 'udp', sport: 19 }), src: drop({ src: ['198.51.100.0/24'] }) });
  await expectVerdicts([
    ['v4 later fragment of a port-19 datagram', frame([v4({ fragOffset: 8 }), udp(53, 19)]), XDP_PASS],
    ['v4 later fragment from 198.51.100.0/24', frame([v4({ src: '198.51.100.1', fragOffset: 8 }), udp(53, 19)]), XDP_DROP],
  ]);
});

test('IPv6 extension headers are walked to the ports; a later IPv6 fragment has none', async (t) => {
  if (!ready(t)) return;
  await install({ chargen: drop({ protocol: 'udp', sport: 19 }) });
  const hbh: LayerSpec = { kind: 'ipv6ext', ext: { kind: 'hop_by_hop', options: new Uint8Array(6) } };
  const dst: LayerSpec = { kind: 'ipv6ext', ext: { kind: 'dest_options', options: new Uint8Array(6) } };
  const frag = (fragOffset: number): LayerSpec => ({ kind: 'ipv6ext', ext: { kind: 'fragment', fragOffset, moreFrags: true, ident: 7 } });
  await expectVerdicts([
    ['v6 hop-by-hop then UDP from 19', frame([v6(), hbh, udp(53, 19)]), XDP_DROP],
    ['v6 hop-by-hop, destination options, first fragment, UDP from 19', frame([v6(), hbh, dst, frag(0), udp(53, 19)]), XDP_DROP],
    ['v6 hop-by-hop then UDP from 20', frame([v6(), hbh, udp(53, 20)]), XDP_PASS],
    ['v6 later fragment', frame([v6(), frag(1024), udp(53, 19)]), XDP_PASS],
  ]);
});

test('TCP flags under a mask, IPv4 and IPv6', async (t) => {
  if (!ready(t)) return;
  await install({ syn: drop({ protocol: 'tcp', tcpFlags: { set: ['syn'], unset: ['ack'] } }) });
  await expectVerdicts([
    ['v4 SYN', frame([v4(), tcp(80, 'S')]), XDP_DROP],
    ['v4 SYN with ECE/CWR (not in the mask)', frame([v4(), tcp(80, 'SEC')]), XDP_DROP],
    ['v4 SYN-ACK', frame([v4(), tcp(80, 'SA')]), XDP_PASS],
    ['v4 ACK', frame([v4(), tcp(80, 'A')]), XDP_PASS],
    ['v6 SYN', frame([v6(), tcp(80, 'S')]), XDP_DROP],
    ['v6 SYN-ACK', frame([v6(), tcp(80, 'SA')]), XDP_PASS],
  ]);
});

test('packet length and TTL ranges, IPv4 and IPv6', async (t) => {
  if (!ready(t)) return;
  await install({ big: drop({ protocol: 'udp', length: '1000-1200' }), ttl: drop({ protocol: 'tcp', ttl: '1-5' }) });
  // IPv4 + UDP = 28 bytes of headers; IPv6 + UDP = 48.
  await expectVerdicts([
    ['v4 udp of 1000 bytes', frame([v4(), udp()], new Uint8Array(972)), XDP_DROP],
    ['v4 udp of 1200 bytes', frame([v4(), udp()], new Uint8Array(1172)), XDP_DROP],
    ['v4 udp of 999 bytes', frame([v4(), udp()], new Uint8Array(971)), XDP_PASS],
    ['v4 udp of 1201 bytes', frame([v4(), udp()], new Uint8Array(1173)), XDP_PASS],
    ['v6 udp of 1100 bytes', frame([v6(), udp()], new Uint8Array(1052)), XDP_DROP],
    ['v6 udp of 900 bytes', frame([v6(), udp()], new Uint8Array(852)), XDP_PASS],
    ['v4 tcp TTL 5', frame([v4({ ttl: 5 }), tcp()]), XDP_DROP],
    ['v4 tcp TTL 6', frame([v4({ ttl: 6 }), tcp()]), XDP_PASS],
    ['v6 tcp hop limit 1', frame([v6({ hopLimit: 1 }), tcp()]), XDP_DROP],
    ['v6 tcp hop limit 64', frame([v6({ hopLimit: 64 }), tcp()]), XDP_PASS],
  ]);
});

test('payload bytes under a mask at an offset after the TCP/UDP header, IPv4 and IPv6', async (t) => {
  if (!ready(t)) return;
  // A DNS query (QR 0, opcode 0) has flags byte 2 = 0x01 (RD) and the low nibble of byte 3 free.
  await install({ dns: drop({ protocol: 'udp', dport: 53, payload: { offset: 2, bytes: '0100', mask: 'ff0f' } }), tls: drop({ protocol: 'tcp', payload: { offset: 0, bytes: '16030100' } }) });
  const q = (b2: number, b3: number) => Uint8Array.from([0x12, 0x34, b2, b3, 0, 1, 0, 0]);
  await expectVerdicts([
    ['v4 DNS query RD', frame([v4(), udp(53)], q(0x01, 0x00)), XDP_DROP],
    ['v4 DNS query RD with a masked-out bit', frame([v4(), udp(53)], q(0x01, 0x20)), XDP_DROP],
    ['v4 DNS response (byte 2 differs)', frame([v4(), udp(53)], q(0x81, 0x00)), XDP_PASS],
    ['v4 byte 3 low nibble set', frame([v4(), udp(53)], q(0x01, 0x01)), XDP_PASS],
    ['v4 too short for the signature', frame([v4(), udp(53)], Uint8Array.from([0x12, 0x34, 0x01])), XDP_PASS],
    ['v6 DNS query RD', frame([v6(), udp(53)], q(0x01, 0x00)), XDP_DROP],
    ['v6 DNS response', frame([v6(), udp(53)], q(0x80, 0x00)), XDP_PASS],
    ['v4 TLS after TCP options (MSS)', frame([v4(), { kind: 'tcp', srcPort: 40000, dstPort: 443, flags: 'PA', mss: 1460 }], Uint8Array.from([0x16, 3, 1, 0, 9])), XDP_DROP],
    ['v4 TLS 1.2 record', frame([v4(), tcp(443, 'PA')], Uint8Array.from([0x16, 3, 3, 0, 9])), XDP_PASS],
    ['v6 TLS after TCP', frame([v6(), tcp(443, 'PA')], Uint8Array.from([0x16, 3, 1, 0])), XDP_DROP],
  ]);
});

test('drop beats rate-limit, and the lowest slot of one action counts the packet', async (t) => {
  if (!ready(t)) return;
  const slots = await install({
    a: { match: { protocol: 'udp' }, action: 'rate-limit', rateLimit: { pps: 1_000_000 } },
    b: drop({ protocol: 'udp', dport: 53 }),
    c: drop({ dst: ['203.0.113.100'] }),
  });
  assert.deepEqual([...slots], [['a', 0], ['b', 1], ['c', 2]]);
  const before = await Promise.all([0, 1, 2].map(stats));
  assert.equal(await verdict(frame([v4(), udp(53)])), XDP_DROP);
  assert.equal(await verdict(frame([v4(), udp(54)])), XDP_DROP); // only a and c: c drops
  assert.equal(await verdict(frame([v4({ dst: '203.0.113.101' }), udp(54)])), XDP_PASS); // only a: within rate
  const afterS = await Promise.all([0, 1, 2].map(stats));
  const d = (i: number) => ({ packets: afterS[i]!.packets - before[i]!.packets, dropped: afterS[i]!.dropped - before[i]!.dropped });
  assert.deepEqual([d(0), d(1), d(2)], [
    { packets: 1n, dropped: 0n },
    { packets: 1n, dropped: 1n },
    { packets: 1n, dropped: 1n },
  ]);
  assert.equal(afterS[1]!.bytes - before[1]!.bytes, 28n, 'bytes are IP bytes');
});

/**
 * Runs `frame` `n` times in one BPF_PROG_TEST_RUN on CPU 0 and returns how many passed the rule
 * (by its counters). Pinned, because buckets are per CPU: a run on another CPU meets that CPU's
 * own bucket (its share of the rate), as traffic spread by RSS would.
 */
async function burst(slot: number, f: Uint8Array, n: number): Promise<{ matched: bigint; passed: bigint }> {
  const b = await stats(slot);
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-dosburst-'));
  try {
    await writeFile(join(dir, 'in.bin'), f);
    const r = await run('taskset', ['-c', '0', 'bpftool', '-j', 'prog', 'run', 'pinned', pins!.progs.xdpEdge, 'data_in', join(dir, 'in.bin'), 'repeat', String(n)]);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const a = await stats(slot);
  return { matched: a.packets - b.packets, passed: a.packets - b.packets - (a.dropped - b.dropped) };
}

test('a burst over the packet rate is cut to the bucket (one second of the CPU share), per destination', async (t) => {
  if (!ready(t)) return;
  const cpus = maps!.cpus();
  const slots = await install({ r: { match: { protocol: 'udp', dport: 9 }, action: 'rate-limit', rateLimit: { pps: 100 * cpus } } });
  const slot = slots.get('r')!;
  const t0 = performance.now();
  const one = await burst(slot, frame([v4(), udp(9)]), 300);
  assert.equal(one.matched, 300n);
  // The run itself takes well under 10 ms: at most one packet of refill.
  assert.ok(one.passed >= 100n && one.passed <= 101n, `passed ${one.passed}, bucket 100`);
  const again = await burst(slot, frame([v4(), udp(9)]), 100);
  // Between the two runs (bpftool processes) the bucket refills at 100 packets a second, no more.
  const refill = BigInt(Math.ceil(((performance.now() - t0) / 1000) * 100)) + 1n;
  assert.ok(again.passed <= refill, `the bucket only refilled: passed ${again.passed}, at most ${refill}`);
  const other = await burst(slot, frame([v4({ dst: '203.0.113.101' }), udp(9)]), 300);
  assert.ok(other.passed >= 100n && other.passed <= 101n, `another destination has its own bucket: passed ${other.passed}`);
  const six = await burst(slot, frame([v6(), udp(9)]), 300);
  assert.ok(six.passed >= 100n && six.passed <= 101n, `IPv6: passed ${six.passed}`);
});

test('a burst over the bit rate is cut to the bucket', async (t) => {
  if (!ready(t)) return;
  const cpus = maps!.cpus();
  // 100-byte IP packets, 80,000 bit/s per CPU: 100 packets a second.
  const slots = await install({ r: { match: { protocol: 'udp', dport: 9 }, action: 'rate-limit', rateLimit: { bps: 80_000 * cpus } } });
  const f = frame([v4(), udp(9)], new Uint8Array(72));
  const got = await burst(slots.get('r')!, f, 300);
  assert.ok(got.passed >= 100n && got.passed <= 101n, `passed ${got.passed}, bucket 100 packets of 100 bytes`);
  // Smaller packets cost less: 50-byte packets, twice as many.
  const slots2 = await install({ r2: { match: { protocol: 'udp', dport: 10 }, action: 'rate-limit', rateLimit: { bps: 80_000 * cpus } } });
  const small = await burst(slots2.get('r2')!, frame([v4(), udp(10)], new Uint8Array(22)), 400);
  assert.ok(small.passed >= 200n && small.passed <= 202n, `passed ${small.passed}, bucket 200 packets of 50 bytes`);
});

test('per source prefix: neighbours in one /24 share a bucket, another /24 has its own', async (t) => {
  if (!ready(t)) return;
  const cpus = maps!.cpus();
  const slots = await install({ r: { match: { protocol: 'udp' }, action: 'rate-limit', rateLimit: { pps: 100 * cpus, per: 'src-prefix' } } });
  const slot = slots.get('r')!;
  const t0 = performance.now();
  const a = await burst(slot, frame([v4({ src: '198.51.100.1' }), udp()]), 60);
  const b = await burst(slot, frame([v4({ src: '198.51.100.200', dst: '203.0.113.7' }), udp()]), 60);
  const refill = BigInt(Math.ceil(((performance.now() - t0) / 1000) * 100)) + 1n;
  assert.equal(a.passed, 60n);
  assert.ok(b.passed >= 40n && b.passed <= 40n + refill, `the neighbour gets what is left of the /24's 100 (plus at most ${refill} refilled): passed ${b.passed}`);
  const c = await burst(slot, frame([v4({ src: '192.0.2.77' }), udp()]), 60);
  assert.equal(c.passed, 60n, 'another /24');
  const t1 = performance.now();
  const d = await burst(slot, frame([v6({ src: '2001:db8:1:2::1' }), udp()]), 150);
  const e = await burst(slot, frame([v6({ src: '2001:db8:1:2:ffff::9' }), udp()]), 150);
  const refill6 = BigInt(Math.ceil(((performance.now() - t1) / 1000) * 100)) + 1n;
  assert.ok(d.passed >= 100n && d.passed <= 101n && e.passed <= refill6, `one /64: ${d.passed} then ${e.passed} (refill at most ${refill6})`);
});

test('10,000 rules are installed in one batch write and a packet hits the right slot', async (t) => {
  if (!ready(t)) return;
  const rules: Record<string, unknown> = {};
  for (let i = 0; i < 10_000; i++) rules[`r${String(i).padStart(5, '0')}`] = drop({ protocol: 'udp', dst: ['203.0.113.100'], dport: 10_000 + i });
  const t0 = performance.now();
  const slots = await install(rules);
  const ms = performance.now() - t0;
  t.diagnostic(`10,000 rules compiled, planned and written in ${Math.round(ms)} ms`);
  assert.equal(slots.size, 10_000);
  const slot = slots.get('r07777')!;
  assert.equal(slot, 7777);
  const before = await stats(slot);
  assert.equal(await verdict(frame([v4(), udp(17_777)])), XDP_DROP);
  assert.equal(await verdict(frame([v4(), udp(9_999)])), XDP_PASS);
  assert.equal(await verdict(frame([v4({ dst: '203.0.113.99' }), udp(17_777)])), XDP_PASS);
  const after = await stats(slot);
  assert.equal(after.packets - before.packets, 1n);
  const tables = lastDosTables(maps!)!;
  assert.equal(tables.masks.length, 1, 'one mask for all of them: the per-packet cost does not grow');
  // And back to nothing.
  await installAs({});
  const left = await maps!.read();
  assert.ok(left.ok);
  assert.deepEqual([left.value.rules.size, left.value.entries.size, left.value.masks.size, left.value.conf.nmasks], [0, 0, 0, 0]);
});
