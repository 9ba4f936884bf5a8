/**
 * The SYN-cookie reconciler on the real maps of a loaded xdp_edge (no namespace: packets go
 * through BPF_PROG_TEST_RUN, as in kernel/bpf/syncookie.test.ts): tenants keep their counter
 * blocks when others come and go, and a block handed to a new tenant reads zero in the kernel
 * although the tenant that had it counted there.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { buildFrame } from '../wire/build.ts';
import { progRun } from '../kernel/bpf/bpftool.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { SYN_COUNTERS, SynCookieMaps } from '../kernel/bpf/syncookie.ts';
import { compileTenantSynFlood, type DesiredSynPrefix } from '../compile/firewall/synproxy.ts';
import { apply, formatPlan } from './reconcile.ts';
import { planSyncookie } from './syncookie.ts';

const XDP_TX = 3;

let pins: EdgePins | undefined;
let maps: SynCookieMaps | undefined;

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  const loaded = await loadEdge(`aeSA${process.pid}`);
  if (!loaded.ok) throw new Error(`${loaded.error.op}: ${loaded.error.message}`);
  pins = loaded.value;
  maps = new SynCookieMaps(pins);
});

after(async () => {
  if (pins) await unloadEdge(pins);
});

function desiredOf(tenants: Record<string, readonly string[]>): DesiredSynPrefix[] {
  return Object.entries(tenants).flatMap(([tid, cidrs]) =>
    compileTenantSynFlood(tid, { synFlood: { protection: 'xdp', mss: 1460, wscale: 7 }, prefixes: Object.fromEntries(cidrs.map((c, i) => [`p${i}`, { cidr: c }])) }, { uplink: 'aeup', table: 'aesyn' }).prefixes,
  );
}

/** Plans and applies on the real maps; returns the plan's lines and checks a second plan is empty. */
async function converge(desired: readonly DesiredSynPrefix[]): Promise<string[]> {
  const p = await planSyncookie(maps!, desired);
  assert.ok(p.ok, p.ok ? '' : p.error.message);
  const steps = [...p.value.adds, ...p.value.dels];
  const rep = await apply(steps);
  assert.equal(rep.failed, undefined, rep.failed?.error.message);
  const again = await planSyncookie(maps!, desired);
  assert.ok(again.ok);
  assert.equal(formatPlan([...again.value.adds, ...again.value.dels]), 'nothing to do\n');
  return formatPlan(steps).trimEnd().split('\n');
}

/** Sends one SYN to `dst` through xdp_edge; a protected address answers with XDP_TX. */
async function syn(dst: string, sport: number): Promise<void> {
  const frame = buildFrame([
    { kind: 'eth', src: '02:00:00:00:00:0a', dst: '02:00:00:00:00:0b' },
    { kind: 'ipv4', src: '192.0.2.10', dst },
    { kind: 'tcp', srcPort: sport, dstPort: 21, flags: 'S', seq: 1, mss: 1460 },
  ]);
  const r = await progRun(pins!.progs.xdpEdge, Buffer.from(frame));
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.value.retval, XDP_TX, `SYN to ${dst} answered in XDP`);
}

async function synacks(idx: number): Promise<bigint> {
  const r = await maps!.tenantCounters(idx);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value.synack;
}

test('real maps: blocks stay with their tenants; a freed block is zeroed before the next tenant gets it', async (t) => {
  if (!needs(t, { root: true, tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(pins && maps, 'edge programs did not load');

  let lines = await converge(desiredOf({ acme: ['203.0.113.0/25'], globex: ['203.0.113.128/25'] }));
  assert.deepEqual(lines.filter((l) => l.includes('zero')).length, 2, lines.join('\n'));
  await syn('203.0.113.100', 41000);
  await syn('203.0.113.100', 41001);
  await syn('203.0.113.200', 41002);
  assert.deepEqual([await synacks(0), await synacks(1)], [2n, 1n], 'acme in block 0, globex in block 1');

  // A tenant sorted first arrives: acme and globex stay where they are.
  lines = await converge(desiredOf({ aaa: ['198.51.100.128/27'], acme: ['203.0.113.0/25'], globex: ['203.0.113.128/25'] }));
  assert.deepEqual(lines, [
    '+ tenants/aaa/synFlood: bpf syn_tenant_cnt zero tenant#2 (slots 16–23), the counters of aaa',
    '+ tenants/aaa/prefixes/p0/syncookie: bpf syn_v4 198.51.100.128/27: mss 1460 wscale 7 tenant#2',
  ]);
  const pol = await maps!.protectedPrefixes();
  assert.ok(pol.ok);
  assert.deepEqual(Object.fromEntries([...pol.value].map(([c, p]) => [c, p.tenantIdx])), { '203.0.113.0/25': 0, '203.0.113.128/25': 1, '198.51.100.128/27': 2 });
  await syn('203.0.113.100', 41003);
  assert.deepEqual([await synacks(0), await synacks(1), await synacks(2)], [3n, 1n, 0n]);

  // Acme goes, then zed comes: zed gets block 0, which the kernel still held acme's 3 in.
  await converge(desiredOf({ aaa: ['198.51.100.128/27'], globex: ['203.0.113.128/25'] }));
  assert.equal(await synacks(0), 3n, 'the kernel keeps a freed block as it was');
  lines = await converge(desiredOf({ aaa: ['198.51.100.128/27'], globex: ['203.0.113.128/25'], zed: ['203.0.113.0/26'] }));
  assert.deepEqual(lines, [
    '+ tenants/zed/synFlood: bpf syn_tenant_cnt zero tenant#0 (slots 0–7), the counters of zed',
    '+ tenants/zed/prefixes/p0/syncookie: bpf syn_v4 203.0.113.0/26: mss 1460 wscale 7 tenant#0',
  ]);
  const fresh = await maps!.tenantCounters(0);
  assert.ok(fresh.ok);
  assert.deepEqual(fresh.value, Object.fromEntries(SYN_COUNTERS.map((n) => [n, 0n])), 'zed starts from zero');
  await syn('203.0.113.10', 41004);
  assert.deepEqual([await synacks(0), await synacks(1)], [1n, 1n], 'zed counts in its block, globex kept its own');

  await converge([]);
  const empty = await maps!.protectedPrefixes();
  assert.ok(empty.ok);
  assert.equal(empty.value.size, 0);
});
