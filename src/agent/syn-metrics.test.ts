import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerSynMetrics, SYN_METRICS } from './syn-metrics.ts';
import { fakeSynMaps, SYN_COUNTERS } from '../kernel/bpf/syncookie.ts';
import { compileTenantSynFlood, type DesiredSynPrefix } from '../compile/firewall/synproxy.ts';
import { compileServer } from '../compile/server.ts';
import { marksWith } from '../kernel/marks.ts';
import { acmeDoc, mustConfig } from './fixtures.ts';
import { fakeServer } from './daemon-fixtures.ts';
import { AgentMetrics } from './metrics.ts';
import { apply } from './reconcile.ts';
import { planSyncookie } from './syncookie.ts';

function desiredOf(tenants: Record<string, readonly string[]>): DesiredSynPrefix[] {
  return Object.entries(tenants).flatMap(([tid, cidrs]) =>
    compileTenantSynFlood(tid, { synFlood: { protection: 'xdp', mss: 1460, wscale: 7 }, prefixes: Object.fromEntries(cidrs.map((c, i) => [`p${i}`, { cidr: c }])) }, { uplink: 'aeup', table: 'aesyn' }).prefixes,
  );
}

async function install(maps: ReturnType<typeof fakeSynMaps>, desired: readonly DesiredSynPrefix[]): Promise<void> {
  const p = await planSyncookie(maps, desired);
  assert.ok(p.ok, p.ok ? '' : p.error.message);
  assert.equal((await apply([...p.value.adds, ...p.value.dels])).failed, undefined);
}

/** `labels → value` of one metric's series in the text format (`""` for an unlabelled one). */
const series = (text: string, name: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .map((l) => [/tenant="([^"]*)"/.exec(l)?.[1] ?? '', Number(l.split(' ').pop())]),
  );

test('global and per-tenant SYN counters from the maps at scrape time, one family per enum syn_counter, each with its help', async () => {
  const server = await fakeServer();
  const syn = fakeSynMaps();
  let desired = desiredOf({ acme: ['203.0.113.0/25', '2001:db8:a::/48'], globex: ['203.0.113.128/25'] });
  const registry = new Registry();
  registerSynMetrics(registry, () => ({ ...server.env, syn }), () => ({ syncookie: desired }));
  await install(syn, desired);
  syn.count('203.0.113.0/25', 'synack', 5);
  syn.count('2001:db8:a::/48', 'synack', 2);
  syn.count('203.0.113.128/25', 'ackBad', 3);
  syn.count('203.0.113.128/25', 'ackOk', 1);
  let text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_syn_synack_total'), { '': 7 });
  assert.deepEqual(series(text, 'anyedge_syn_ack_bad_total'), { '': 3 });
  assert.deepEqual(series(text, 'anyedge_syn_tenant_synack_total'), { acme: 7, globex: 0 });
  assert.deepEqual(series(text, 'anyedge_syn_tenant_ack_bad_total'), { acme: 0, globex: 3 });
  assert.deepEqual(series(text, 'anyedge_syn_tenant_ack_ok_total'), { acme: 0, globex: 1 });
  for (const key of SYN_COUNTERS) {
    const n = SYN_METRICS[key].name;
    assert.match(text, new RegExp(`^# TYPE anyedge_syn_${n}_total counter$`, 'm'));
    assert.match(text, new RegExp(`^# HELP anyedge_syn_${n}_total \\S.{40,}Whole server\\.$`, 'm'));
    assert.match(text, new RegExp(`^# HELP anyedge_syn_tenant_${n}_total \\S.{40,}By tenant\\.$`, 'm'));
  }
  assert.deepEqual(Object.values(SYN_METRICS).map((m) => m.name), ['synack', 'ack_ok', 'ack_bad', 'flow', 'unanswerable', 'outbound', 'error', 'rst_bad'], 'enum syn_counter order and names');

  // A tenant sorted before both is added: acme and globex count on in their own series.
  desired = desiredOf({ aaa: ['198.51.100.128/27'], acme: ['203.0.113.0/25', '2001:db8:a::/48'], globex: ['203.0.113.128/25'] });
  await install(syn, desired);
  syn.count('203.0.113.0/25', 'synack', 1);
  syn.count('198.51.100.128/27', 'synack', 4);
  text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_syn_tenant_synack_total'), { aaa: 4, acme: 8, globex: 0 });
  assert.deepEqual(series(text, 'anyedge_syn_synack_total'), { '': 12 });

  // Acme goes; the next new tenant takes its block and starts from zero.
  desired = desiredOf({ aaa: ['198.51.100.128/27'], globex: ['203.0.113.128/25'] });
  await install(syn, desired);
  desired = desiredOf({ aaa: ['198.51.100.128/27'], globex: ['203.0.113.128/25'], zed: ['192.0.2.0/26'] });
  await install(syn, desired);
  text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_syn_tenant_synack_total'), { aaa: 4, globex: 0, zed: 0 });
});

test('a desired tenant whose prefixes are not in the maps yet has no series; without SYN maps there are none at all', async () => {
  const server = await fakeServer();
  const syn = fakeSynMaps();
  const registry = new Registry();
  registerSynMetrics(registry, () => ({ ...server.env, syn }), () => ({ syncookie: desiredOf({ acme: ['203.0.113.0/25'] }) }));
  let text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_syn_tenant_synack_total'), {});
  assert.deepEqual(series(text, 'anyedge_syn_synack_total'), { '': 0 }, 'the global counters exist as soon as the maps do');

  const bare = new Registry();
  registerSynMetrics(bare, () => server.env, () => undefined);
  text = await bare.metrics();
  assert.doesNotMatch(text, /^anyedge_syn_/m, 'no samples, not zeros');
  // A desired state that cannot be read leaves the tenants out, not the scrape.
  const broken = new Registry();
  registerSynMetrics(broken, () => ({ ...server.env, syn }), () => {
    throw new Error('compile failed');
  });
  assert.deepEqual(series(await broken.metrics(), 'anyedge_syn_synack_total'), { '': 0 });
});

test('the agent registry serves the SYN series, tenants named from the compiled desired state', async () => {
  const server = await fakeServer();
  const syn = fakeSynMaps();
  const doc = acmeDoc();
  doc.tenants.acme!.synFlood = { protection: 'xdp' };
  const compiled = compileServer(mustConfig(doc), { dc: 'ams', server: 's1' }, { marks: marksWith({ prefix: 'ae' }) });
  assert.ok(compiled.ok, compiled.ok ? '' : compiled.error.message);
  const desired = compiled.value;
  await install(syn, desired.syncookie ?? []);
  syn.count('203.0.113.0/25', 'ackBad', 9);
  const m = new AgentMetrics({ env: { ...server.env, syn }, desired: () => desired, status: () => { throw new Error('no status in this test'); } });
  const text = await m.registry.metrics();
  assert.match(text, /^anyedge_syn_tenant_ack_bad_total\{tenant="acme"\} 9$/m);
  assert.match(text, /^anyedge_syn_ack_bad_total 9$/m);
});
