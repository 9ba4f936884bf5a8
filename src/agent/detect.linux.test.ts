/**
 * Detection on the real kernel: hping3 sends a bounded UDP flood from one namespace into a veth
 * whose far end runs our xdp_edge; the sampler's per-CPU rings, read with bpftool, feed the
 * detection loop, which installs the rule (Acme's policy: install over 1000 pps) in an LMDB store.
 * Everything is in namespaces, BPF pins and a store of this test's own, removed at the end.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { NetLab } from '../testkit/netlab.ts';
import { hasTool, isRoot, needs } from '../testkit/needs.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { linuxSampleSource, samplePins } from '../kernel/bpf/sample.ts';
import { mustOpen } from '../store/lmdb-harness.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import type { LmdbConfigStore } from '../store/lmdb.ts';
import type { JsonValue } from '../store/types.ts';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { DetectionLoop } from './detect-loop.ts';

// `aeQ…`: no other test's prefix starts with Q.
const lab = new NetLab('Q');
const FLOOD = 4000;
let pins: EdgePins | null = null;
let store: LmdbConfigStore | null = null;
let dir: string | null = null;
let setupError: Error | null = null;

function nsenter(ns: string, ...argv: string[]): Promise<string> {
  // `ip netns exec` remounts /sys and would hide the pins under /sys/fs/bpf.
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || !hasTool('hping3') || missingObjects().length) return;
  try {
    await lab.addNs('a');
    await lab.addNs('s');
    await lab.veth('a', 'eth0', 's', 'up0');
    for (const [ns, dev] of [['a', 'eth0'], ['s', 'up0']] as const) await lab.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
    await lab.ip('a', 'addr', 'add', '192.0.2.10/30', 'dev', 'eth0');
    await lab.ip('a', 'route', 'add', 'default', 'via', '192.0.2.9');
    await lab.ip('s', 'addr', 'add', '192.0.2.9/30', 'dev', 'up0');
    const loaded = await loadEdge(`${lab.prefix}x`);
    if (!loaded.ok) throw new Error(`${loaded.error.op}: ${loaded.error.message}`);
    pins = loaded.value;
    await nsenter('s', 'ip', 'link', 'set', 'dev', 'up0', 'xdpdrv', 'pinned', pins.progs.xdpEdge);
    dir = await mkdtemp(join(tmpdir(), 'anyedge-detect-linux-'));
    store = mustOpen({ path: dir, validation: CONFIG_VALIDATION, noSync: true });
    const doc = parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as { tenants: Record<string, Record<string, unknown>> };
    doc.tenants.acme!.dos = { detection: { action: 'install', thresholds: { pps: 1000 } } };
    const config = parseConfig(doc);
    if (!config.ok) throw new Error(JSON.stringify(config.error.slice(0, 3)));
    const w = await store.txn({ then: [...configToEntries(config.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    if (!w.ok) throw new Error(w.error.message);
  } catch (e) {
    setupError = e as Error;
  }
});

after(async () => {
  await lab.destroy();
  if (pins) await unloadEdge(pins);
  await store?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a real UDP flood through XDP is sampled, read from the rings and installed as a rule', async (t) => {
  if (!needs(t, { root: true, tools: ['bpftool', 'hping3'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  if (setupError) throw setupError;
  assert.ok(pins && store);
  const s = store;
  const config = async (): Promise<Map<string, JsonValue>> => {
    const l = await s.list('/tenants/');
    assert.ok(l.ok);
    return new Map(l.value.entries.map((e) => [e.key, e.value]));
  };
  const loop = new DetectionLoop({ where: { dc: 'ams', server: 's1' }, source: linuxSampleSource(samplePins(pins.root)), every: 1, config, store: () => s, intervalMs: 3_600_000 });
  const started = await loop.start();
  assert.ok(started.ok, started.ok ? '' : started.error);
  try {
    // Bounded: FLOOD packets at most 10 000/s, inside the lab's namespaces only.
    await lab.exec('a', 'hping3', ['--udp', '-p', '53', '-d', '24', '-i', 'u100', '-c', String(FLOOD), '-q', '203.0.113.100']).catch(() => '');
    const r = await loop.tick();
    assert.deepEqual(r.errors, []);
    assert.ok(r.samples + r.lost >= FLOOD, `every packet passed the sampler at 1 in 1: ${r.samples} read + ${r.lost} overwritten < ${FLOOD}`);
    assert.ok(r.samples > 0);
    assert.equal(r.window.topDestinations[0]?.key, '203.0.113.100');
    assert.equal(r.window.topSignatures[0]?.key.startsWith('udp dport 53'), true, JSON.stringify(r.window.topSignatures));
    assert.equal(r.window.attacks.length, 1, JSON.stringify(r.window));
    const a = r.window.attacks[0]!;
    assert.equal(a.tenant, 'acme');
    assert.deepEqual(r.events.map((e) => e.kind), ['detected', 'installed']);
    const rule = await s.get(`/dos/rules/${a.ruleId}`);
    assert.ok(rule.ok && rule.value, 'the rule is in the store');
    // One sender: the most specific rule that covers the flood drops its /24 towards the address.
    const v = rule.value.value as { match: unknown; action: string; scope: unknown };
    assert.deepEqual(v.match, { src: ['192.0.2.0/24'], dst: ['203.0.113.100/32'], protocol: 'udp' });
    assert.equal(v.action, 'drop');
    assert.deepEqual(v.scope, { tenant: 'acme' });
  } finally {
    await loop.stop();
  }
});
