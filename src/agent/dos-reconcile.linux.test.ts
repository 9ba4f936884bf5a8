/**
 * The DoS reconcile step on the real kernel: maps of an edge loaded under a pin directory unique
 * to this process (removed at the end, also on failure). Adding and removing rules changes map
 * entries only — the program keeps its id —, a second plan finds nothing to do, drift made with
 * bpftool behind the agent's back is repaired, and the program drops what the rules say.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { run } from '../kernel/exec.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { encodeDosKey, linuxDosMaps, type DosMapsApi } from '../kernel/bpf/dos.ts';
import { dosMapPins } from '../kernel/bpf/dos-layout.ts';
import { mapDelete, progRun } from '../kernel/bpf/bpftool.ts';
import { buildFrame } from '../wire/build.ts';
import { configWithRules } from '../compile/dos/fixtures.ts';
import { apply, formatPlan } from './reconcile.ts';
import { lastDosTables, planDos } from './dos-reconcile.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');
let pins: EdgePins | null = null;
let dos: DosMapsApi | null = null;

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  const p = await loadEdge(`aeDR${process.pid}`);
  if (!p.ok) throw new Error(`${p.error.op}: ${p.error.message}`);
  pins = p.value;
  dos = linuxDosMaps(pins.root);
});

after(async () => {
  if (pins) await unloadEdge(pins);
});

async function progId(): Promise<number> {
  const r = await run('bpftool', ['-j', 'prog', 'show', 'pinned', pins!.progs.xdpEdge]);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return (JSON.parse(r.value.stdout) as { id: number }).id;
}

async function planOf(rules: Record<string, unknown>) {
  const s = await planDos(dos!, { config: configWithRules(rules), dc: 'ams', now: NOW });
  if (!s.ok) assert.fail(`${s.error.path}: ${s.error.message}`);
  return [...s.value.adds, ...s.value.dels];
}

async function converge(rules: Record<string, unknown>): Promise<string> {
  const steps = await planOf(rules);
  const r = await apply(steps);
  assert.equal(r.failed, undefined, r.failed?.error.message);
  assert.deepEqual(formatPlan(await planOf(rules)), 'nothing to do\n');
  return formatPlan(steps);
}

const udpFrom19 = buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.100' }, { kind: 'udp', srcPort: 19, dstPort: 5000 }]);
const tcpTo80 = buildFrame([{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8:1::10', dst: '2001:db8:a::100' }, { kind: 'tcp', srcPort: 40000, dstPort: 80, flags: 'S' }]);
const verdict = async (f: Uint8Array) => {
  const r = await progRun(pins!.progs.xdpEdge, Buffer.from(f));
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value.retval;
};

test('rules come and go as map entries; the program is never reloaded; drift is repaired', async (t) => {
  if (!needs(t, { root: true, tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(pins && dos, 'edge programs did not load');
  const id = await progId();
  const chargen = { match: { protocol: 'udp', sport: 19 }, action: 'drop' };
  const web = { match: { protocol: 'tcp', dport: 80 }, action: 'drop' };

  assert.equal(await verdict(udpFrom19), 2, 'no rules: passes');
  const first = await converge({ chargen });
  assert.match(first, /\+ dos\/rules: bpf dos_rules put 1 slots \(1 new, counters zeroed\): slot 0 chargen: drop l4/);
  assert.equal(await verdict(udpFrom19), 1);
  assert.equal(await verdict(tcpTo80), 2);

  await converge({ chargen, web });
  assert.equal(await verdict(tcpTo80), 1, 'the added rule drops (IPv6)');
  assert.equal(await progId(), id, 'adding a rule kept the program');

  await converge({ web });
  assert.equal(await verdict(udpFrom19), 2, 'the removed rule no longer drops');
  assert.equal(await verdict(tcpTo80), 1);
  assert.equal(await progId(), id, 'removing a rule kept the program');

  // Drift: an entry deleted behind the agent's back.
  const entry = lastDosTables(dos!)!.entries[0]!;
  assert.ok((await mapDelete(dosMapPins(pins!.root).dos_match, encodeDosKey(entry.key))).ok);
  const repair = await planOf({ web });
  assert.deepEqual(repair.map((s) => `${s.action} ${s.path}`), ['create dos/match']);
  assert.equal((await apply(repair)).failed, undefined);
  assert.equal(await verdict(tcpTo80), 1, 'repaired');

  await converge({});
  assert.equal(await verdict(tcpTo80), 2);
  const left = await dos!.read();
  assert.ok(left.ok);
  assert.deepEqual([left.value.rules.size, left.value.entries.size, left.value.masks.size, left.value.conf.nmasks], [0, 0, 0, 0]);
  assert.equal(await progId(), id);
});
