import { test } from 'node:test';
import assert from 'node:assert/strict';
import { err } from '../lib/result.ts';
import { fakeSynMaps, SYN_MAX_TENANTS, type SynPolicy } from '../kernel/bpf/syncookie.ts';
import { compileTenantSynFlood, type DesiredSynPrefix } from '../compile/firewall/synproxy.ts';
import { compileServer } from '../compile/server.ts';
import { marksWith } from '../kernel/marks.ts';
import { acmeDoc, mustConfig } from './fixtures.ts';
import { apply, formatPlan } from './reconcile.ts';
import { assignSynTenantIndexes, heldSynTenantIndexes, planSyncookie, type SynMapsApi } from './syncookie.ts';

const OPTS = { uplink: 'aeup', table: 'aesyn' };
const acme = { synFlood: { protection: 'xdp', mss: 1400, wscale: 7 } as const, prefixes: { p1: { cidr: '203.0.113.0/25' }, p6: { cidr: '2001:db8:0203::/48' } } };

/** Desired XDP prefixes of xdp-protected tenants, `tenant → CIDRs` (each CIDR a prefix `p<i>`). */
function desiredOf(tenants: Record<string, readonly string[]>): DesiredSynPrefix[] {
  return Object.entries(tenants).flatMap(([tid, cidrs]) =>
    compileTenantSynFlood(tid, { synFlood: { protection: 'xdp', mss: 1460, wscale: 7 }, prefixes: Object.fromEntries(cidrs.map((c, i) => [`p${i}`, { cidr: c }])) }, OPTS).prefixes,
  );
}

async function planText(maps: SynMapsApi, desired: readonly DesiredSynPrefix[]): Promise<string[]> {
  const p = await planSyncookie(maps, desired);
  assert.ok(p.ok, p.ok ? '' : p.error.message);
  return formatPlan([...p.value.adds, ...p.value.dels]).trimEnd().split('\n');
}

/** Plans and applies; asserts that it went through and that a second plan has nothing to do. */
async function converge(maps: SynMapsApi, desired: readonly DesiredSynPrefix[]): Promise<string[]> {
  const p = await planSyncookie(maps, desired);
  assert.ok(p.ok, p.ok ? '' : p.error.message);
  const steps = [...p.value.adds, ...p.value.dels];
  const rep = await apply(steps);
  assert.equal(rep.failed, undefined, rep.failed?.error.message);
  assert.deepEqual(await planText(maps, desired), ['nothing to do'], 'a second plan is empty');
  return formatPlan(steps).trimEnd().split('\n');
}

const indexes = (maps: ReturnType<typeof fakeSynMaps>) => Object.fromEntries([...maps.prefixes].map(([c, p]) => [c, p.tenantIdx]));

async function tenantCounts(maps: SynMapsApi, idx: number) {
  const r = await maps.tenantCountersOf([idx]);
  assert.ok(r.ok);
  return r.value.get(idx);
}

test('compileTenantSynFlood: xdp gives the table and one entry per prefix, named by tenant (IPv6 MSS 20 less); synproxy only the table; off nothing', () => {
  const x = compileTenantSynFlood('acme', acme, OPTS);
  assert.ok(x.batch);
  assert.deepEqual(x.prefixes, [
    { path: 'tenants/acme/prefixes/p1', tenant: 'acme', cidr: '203.0.113.0/25', mss: 1400, wscale: 7 },
    { path: 'tenants/acme/prefixes/p6', tenant: 'acme', cidr: '2001:db8:0203::/48', mss: 1380, wscale: 7 },
  ]);
  const s = compileTenantSynFlood('acme', { ...acme, synFlood: { ...acme.synFlood, protection: 'synproxy' } }, OPTS);
  assert.ok(s.batch);
  assert.deepEqual(s.prefixes, []);
  assert.deepEqual(compileTenantSynFlood('acme', { prefixes: acme.prefixes }, OPTS), { prefixes: [] });
});

test('compileServer: a tenant\'s SYN-cookie entries do not change when another tenant, sorted before it, is added', () => {
  const marks = marksWith({ prefix: 'ae' });
  const doc = acmeDoc();
  doc.tenants.acme!.synFlood = { protection: 'xdp' };
  doc.tenants.globex!.synFlood = { protection: 'xdp' };
  const compile = () => {
    const r = compileServer(mustConfig(doc), { dc: 'ams', server: 's1' }, { marks });
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    return r.value.syncookie ?? [];
  };
  const before = compile();
  assert.deepEqual(before.map((d) => `${d.tenant} ${d.cidr}`), ['acme 203.0.113.0/25', 'globex 203.0.113.128/25']);
  doc.tenants.aaa = {
    name: 'AAA',
    prefixes: { p0: { cidr: '198.51.100.128/27' } },
    tunnels: { gre1: { customerEndpoint: '198.51.100.202', key: 43 } },
    routes: { r0: { prefix: '198.51.100.128/27', via: [{ tunnel: 'gre1' }] } },
    synFlood: { protection: 'xdp' },
  };
  const after = compile();
  assert.deepEqual(after.filter((d) => d.tenant !== 'aaa'), before, 'acme and globex compile the same');
  assert.deepEqual(after.filter((d) => d.tenant === 'aaa').map((d) => d.cidr), ['198.51.100.128/27']);
});

test('planSyncookie keeps the index the maps hold, puts what is missing, fixes what differs, deletes what nobody wants; a second plan is empty', async () => {
  const maps = fakeSynMaps({ '203.0.113.0/25': { mss: 1460, wscale: 7, tenantIdx: 3 }, '198.51.100.0/24': { mss: 1460, wscale: 7, tenantIdx: 9 } });
  const desired = compileTenantSynFlood('acme', acme, OPTS).prefixes;
  const lines = await converge(maps, desired);
  assert.deepEqual(lines, [
    '~ tenants/acme/prefixes/p1/syncookie: bpf syn_v4 203.0.113.0/25: mss 1400 wscale 7 tenant#3',
    '+ tenants/acme/prefixes/p6/syncookie: bpf syn_v6 2001:db8:203::/48: mss 1380 wscale 7 tenant#3',
    '- bpf/syncookie/198.51.100.0/24: bpf syn_v4 delete 198.51.100.0/24',
  ]);
  assert.deepEqual(maps.zeroed, [], 'acme kept its block: nothing zeroed');
  assert.deepEqual(Object.fromEntries(maps.prefixes), { '203.0.113.0/25': { mss: 1400, wscale: 7, tenantIdx: 3 }, '2001:db8:203::/48': { mss: 1380, wscale: 7, tenantIdx: 3 } });
  // Protection turned off everywhere: the entries go.
  const off = await planSyncookie(maps, []);
  assert.ok(off.ok);
  assert.deepEqual([off.value.adds.length, off.value.dels.length], [0, 2]);
});

test('tenant indexes are stable: adding or removing a tenant moves nobody; a new tenant gets the lowest free block, zeroed before its prefixes point to it', async () => {
  const maps = fakeSynMaps();
  let lines = await converge(maps, desiredOf({ acme: ['203.0.113.0/25'], globex: ['203.0.113.128/25'] }));
  assert.deepEqual(lines, [
    '+ tenants/acme/synFlood: bpf syn_tenant_cnt zero tenant#0 (slots 0–7), the counters of acme',
    '+ tenants/globex/synFlood: bpf syn_tenant_cnt zero tenant#1 (slots 8–15), the counters of globex',
    '+ tenants/acme/prefixes/p0/syncookie: bpf syn_v4 203.0.113.0/25: mss 1460 wscale 7 tenant#0',
    '+ tenants/globex/prefixes/p0/syncookie: bpf syn_v4 203.0.113.128/25: mss 1460 wscale 7 tenant#1',
  ]);
  maps.count('203.0.113.0/25', 'synack', 5);
  maps.count('203.0.113.128/25', 'ackBad', 2);

  // A tenant sorted before both arrives: it gets block 2; acme and globex keep theirs and count on.
  lines = await converge(maps, desiredOf({ aaa: ['198.51.100.0/26'], acme: ['203.0.113.0/25'], globex: ['203.0.113.128/25'] }));
  assert.deepEqual(lines, [
    '+ tenants/aaa/synFlood: bpf syn_tenant_cnt zero tenant#2 (slots 16–23), the counters of aaa',
    '+ tenants/aaa/prefixes/p0/syncookie: bpf syn_v4 198.51.100.0/26: mss 1460 wscale 7 tenant#2',
  ]);
  assert.deepEqual(indexes(maps), { '203.0.113.0/25': 0, '203.0.113.128/25': 1, '198.51.100.0/26': 2 });
  maps.count('203.0.113.0/25', 'synack', 1);
  assert.equal((await tenantCounts(maps, 0))?.synack, 6n, 'acme counts on in its block');

  // Acme goes: only its entry is deleted, nobody else moves.
  lines = await converge(maps, desiredOf({ aaa: ['198.51.100.0/26'], globex: ['203.0.113.128/25'] }));
  assert.deepEqual(lines, ['- bpf/syncookie/203.0.113.0/25: bpf syn_v4 delete 203.0.113.0/25']);
  assert.deepEqual(indexes(maps), { '203.0.113.128/25': 1, '198.51.100.0/26': 2 });
  assert.equal((await tenantCounts(maps, 0))?.synack, 6n, 'the maps keep a freed block as it was');

  // The next new tenant gets the freed block 0, zeroed first: it does not inherit acme's counts.
  const p = await planSyncookie(maps, desiredOf({ aaa: ['198.51.100.0/26'], globex: ['203.0.113.128/25'], zed: ['192.0.2.0/26'] }));
  assert.ok(p.ok);
  assert.deepEqual(formatPlan(p.value.adds).trimEnd().split('\n'), [
    '+ tenants/zed/synFlood: bpf syn_tenant_cnt zero tenant#0 (slots 0–7), the counters of zed',
    '+ tenants/zed/prefixes/p0/syncookie: bpf syn_v4 192.0.2.0/26: mss 1460 wscale 7 tenant#0',
  ]);
  assert.equal((await apply(p.value.adds)).failed, undefined);
  assert.deepEqual(await tenantCounts(maps, 0), { synack: 0n, ackOk: 0n, ackBad: 0n, flow: 0n, unanswerable: 0n, outbound: 0n, error: 0n, rstBad: 0n });
  assert.equal((await tenantCounts(maps, 1))?.ackBad, 2n, 'globex untouched');
});

test('add before delete: a tenant replacing another in one pass does not take the block a stale entry still points to', async () => {
  const maps = fakeSynMaps({ '203.0.113.0/25': { mss: 1460, wscale: 7, tenantIdx: 0 }, '203.0.113.128/25': { mss: 1460, wscale: 7, tenantIdx: 1 } });
  const lines = await converge(maps, desiredOf({ globex: ['203.0.113.128/25'], initech: ['198.51.100.0/26'] }));
  assert.deepEqual(lines, [
    '+ tenants/initech/synFlood: bpf syn_tenant_cnt zero tenant#2 (slots 16–23), the counters of initech',
    '+ tenants/initech/prefixes/p0/syncookie: bpf syn_v4 198.51.100.0/26: mss 1460 wscale 7 tenant#2',
    '- bpf/syncookie/203.0.113.0/25: bpf syn_v4 delete 203.0.113.0/25',
  ]);
});

test('a prefix added to a protected tenant joins its block, without zeroing; one removed leaves it', async () => {
  const maps = fakeSynMaps({ '203.0.113.0/25': { mss: 1460, wscale: 7, tenantIdx: 4 } });
  let lines = await converge(maps, desiredOf({ acme: ['203.0.113.0/25', '2001:db8:a::/48'] }));
  assert.deepEqual(lines, ['+ tenants/acme/prefixes/p1/syncookie: bpf syn_v6 2001:db8:a::/48: mss 1440 wscale 7 tenant#4']);
  lines = await converge(maps, desiredOf({ acme: ['2001:db8:a::/48'] }));
  assert.deepEqual(lines, ['- bpf/syncookie/203.0.113.0/25: bpf syn_v4 delete 203.0.113.0/25']);
  assert.deepEqual(indexes(maps), { '2001:db8:a::/48': 4 });
  assert.deepEqual(maps.zeroed, []);
});

test('heldSynTenantIndexes: the most-held index wins, then the lower index, then the tenant id; the losers get fresh zeroed blocks', () => {
  const cur = (e: Record<string, number>) => new Map<string, SynPolicy>(Object.entries(e).map(([c, i]) => [c, { mss: 1460, wscale: 7, tenantIdx: i }]));
  // Acme's prefixes hold 3 twice and 7 once (a half-applied pass): it keeps 3.
  const mixed = cur({ '203.0.113.0/26': 3, '203.0.113.64/26': 3, '2001:db8:a::/48': 7 });
  const desired = desiredOf({ acme: ['203.0.113.0/26', '203.0.113.64/26', '2001:db8:a::/48'] });
  assert.deepEqual(Object.fromEntries(heldSynTenantIndexes(desired, mixed)), { acme: 3 });
  // A prefix of acme's (block 5) moved to globex, which had block 2: each keeps its own.
  const moved = cur({ '203.0.113.0/26': 5, '203.0.113.64/26': 5, '203.0.113.128/25': 2 });
  const d2 = desiredOf({ acme: ['203.0.113.0/26'], globex: ['203.0.113.64/26', '203.0.113.128/25'] });
  assert.deepEqual(Object.fromEntries(heldSynTenantIndexes(d2, moved)), { acme: 5, globex: 2 });
  // Both claim block 5 once (globex's only prefix came from acme): the tenant id decides, the other starts afresh.
  const tie = cur({ '203.0.113.0/26': 5, '203.0.113.64/26': 5 });
  const d3 = desiredOf({ globex: ['203.0.113.64/26'], acme: ['203.0.113.0/26'] });
  const a = assignSynTenantIndexes(d3, tie);
  assert.ok(a.ok);
  assert.deepEqual(Object.fromEntries(a.value.index), { acme: 5, globex: 0 });
  assert.deepEqual([...a.value.fresh], ['globex']);
  // An index outside the map's range is no claim.
  assert.deepEqual(Object.fromEntries(heldSynTenantIndexes(desiredOf({ acme: ['203.0.113.0/26'] }), cur({ '203.0.113.0/26': SYN_MAX_TENANTS }))), {});
});

test('no free index: the plan fails naming the tenant, before any step', async () => {
  const full = new Map<string, SynPolicy>(Array.from({ length: SYN_MAX_TENANTS }, (_, i) => [`stale-${i}`, { mss: 1460, wscale: 7, tenantIdx: i }]));
  const r = assignSynTenantIndexes(desiredOf({ acme: ['203.0.113.0/25'] }), full);
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'invalid');
  assert.equal(r.error.path, 'tenants/acme/synFlood');
  assert.match(r.error.message, /no free SYN counter index for tenant acme: all 65536 indexes/);
});

test('a failed zeroing stops the pass before the tenant\'s prefixes point to the block; the next pass zeroes again', async () => {
  const maps = fakeSynMaps();
  let fail = true;
  const api: SynMapsApi = {
    ...maps,
    zeroTenantCounters: async (i) => (fail ? err({ code: 'bpf_failed', op: `zero SYN counters of tenant index ${i}`, message: 'bpftool exited 255' }) : maps.zeroTenantCounters(i)),
  };
  const desired = desiredOf({ acme: ['203.0.113.0/25'] });
  const p = await planSyncookie(api, desired);
  assert.ok(p.ok);
  const rep = await apply([...p.value.adds, ...p.value.dels]);
  assert.equal(rep.failed?.error.path, 'tenants/acme/synFlood');
  assert.match(rep.failed?.error.message ?? '', /zero SYN counters of tenant index 0: bpftool exited 255/);
  assert.equal(maps.prefixes.size, 0, 'nothing points to the block');
  fail = false;
  await converge(api, desired);
  assert.deepEqual(maps.zeroed, [0]);
  assert.deepEqual(indexes(maps), { '203.0.113.0/25': 0 });
});
