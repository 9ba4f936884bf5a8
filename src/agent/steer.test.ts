/**
 * The steering step on the fake maps: from empty to the Acme example's maps in one apply (the
 * table as one write), idempotence, a drained server changing only its buckets, add before
 * delete, drift repair, and the hook into the reconciler's plan.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';
import { planSteer, rememberSteer, steerInput, steerUnchanged } from './steer.ts';
import { acmeConfig, acmeDoc, mustConfig } from './fixtures.ts';
import { compileSteer, type DesiredSteer } from '../compile/steer.ts';
import { compileServer } from '../compile/server.ts';
import { fakeSteerMaps, type FakeSteerMaps } from '../kernel/bpf/steer.ts';
import { fakeKernel, marksWith } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import type { Config } from '../model/config.ts';

function steerOf(cfg: Config, dc = 'ams', server = 's1'): DesiredSteer {
  const d = compileSteer(cfg, { dc, server });
  if (!d.ok) assert.fail(`${d.error.path}: ${d.error.message}`);
  return d.value;
}

async function converge(maps: FakeSteerMaps, d: DesiredSteer) {
  const p = await planSteer(maps, d);
  assert.ok(p.ok, p.ok ? '' : p.error.message);
  const steps = [...p.value.adds, ...p.value.dels];
  const r = await apply(steps);
  assert.equal(r.failed, undefined);
  return steps;
}

function withServerState(state: 'active' | 'draining' | 'down', dc = 'ams', server = 's2'): Config {
  const doc = acmeDoc();
  const dcs = doc.dcs as Record<string, { servers: Record<string, Record<string, unknown>> }>;
  return mustConfig({ ...doc, dcs: { ...dcs, [dc]: { ...dcs[dc], servers: { ...dcs[dc]!.servers, [server]: { ...dcs[dc]!.servers[server], state } } } } });
}

test('from empty maps: one step per map, the 65,537-bucket table in one write, then nothing to do', async () => {
  const maps = fakeSteerMaps();
  const d = steerOf(acmeConfig());
  const steps = await converge(maps, d);
  assert.deepEqual(
    steps.map((s) => `${s.action} ${s.path}: ${s.what.split(':')[0]}`),
    [
      'create dcs: bpf steer_peers add 192.0.2.18 192.0.2.19 192.0.2.34 192.0.2.35',
      'create egress/assign/198.51.100.64: bpf steer_egress 198.51.100.64',
      'create egress/assign/198.51.100.96: bpf steer_egress 198.51.100.96',
      'update egress/assign: bpf steer_slices put 4 (198.51.100.64/1→ams/s1, 198.51.100.64/2→ams/s2, 198.51.100.96/1→chi/s1, 198.51.100.96/2→chi/s2)',
      'update dcs/ams: bpf steer_table',
      'create anycast.services: bpf steer_svc add 198.51.100.2 198.51.100.3',
      'create dcs/ams/servers/s1: bpf steer_cfg self 192.0.2.18 port 6080 enabled',
    ],
  );
  assert.match(steps[4]!.what, /65537 of 65537 buckets/);
  assert.equal(maps.writes, steps.length, 'each step is one write (one bpftool batch on Linux)');
  const again = await planSteer(maps, d);
  assert.ok(again.ok);
  assert.deepEqual([...again.value.adds, ...again.value.dels], []);
  // Two active servers: each is the other's second choice (where flows were before it was added).
  assert.match(maps.dump(), /bpf steer_table 192\.0\.2\.18 192\.0\.2\.19: \d+ buckets\nbpf steer_table 192\.0\.2\.19 192\.0\.2\.18: \d+ buckets\n/);
});

test('draining one of two servers: its buckets get it as second choice, the other keeps its own without one', async () => {
  const maps = fakeSteerMaps();
  await converge(maps, steerOf(acmeConfig()));
  const before = maps.dump();
  const steps = await converge(maps, steerOf(withServerState('draining')));
  assert.equal(steps.length, 1);
  // s2's half: first s1, second s2. s1's half: its second choice was s2 (the owner without s1);
  // with s1 the only active server there is no owner without it, so none. Every bucket changes.
  assert.match(steps[0]!.what, /65537 of 65537 buckets/);
  assert.notEqual(maps.dump(), before);
  assert.match(maps.dump(), /bpf steer_table 192\.0\.2\.18 -: 32769 buckets\nbpf steer_table 192\.0\.2\.18 192\.0\.2\.19: 32768 buckets\n/);
  // Back to active: the same table as before.
  await converge(maps, steerOf(acmeConfig()));
  assert.equal(maps.dump(), before);
});

test('add before delete: a service and an egress address replaced — the new ones are written first', async () => {
  const maps = fakeSteerMaps();
  await converge(maps, steerOf(acmeConfig()));
  const doc = acmeDoc();
  const moved = mustConfig({
    ...doc,
    anycast: { ...(doc.anycast as object), services: ['198.51.100.4'] },
    egress: { ...(doc.egress as object), assign: { '198.51.100.65': { dc: 'ams' }, '198.51.100.96': { dc: 'chi' } } },
  });
  const p = await planSteer(maps, steerOf(moved));
  assert.ok(p.ok);
  const order = [...p.value.adds, ...p.value.dels].map((s) => s.action);
  assert.deepEqual(order, [...order].sort((a, b) => (a === 'delete' ? 1 : 0) - (b === 'delete' ? 1 : 0)), 'every delete after every add');
  assert.ok(p.value.adds.some((s) => /steer_svc add 198\.51\.100\.4/.test(s.what)));
  assert.ok(p.value.dels.some((s) => /steer_svc delete 198\.51\.100\.2 198\.51\.100\.3/.test(s.what)));
  assert.ok(p.value.dels.some((s) => /steer_egress delete 198\.51\.100\.64/.test(s.what)));
  await apply([...p.value.adds, ...p.value.dels]);
  const again = await planSteer(maps, steerOf(moved));
  assert.ok(again.ok && again.value.adds.length + again.value.dels.length === 0);
});

test('drift: a bucket, a peer and a slice changed by hand are repaired', async () => {
  const maps = fakeSteerMaps();
  const d = steerOf(acmeConfig());
  await converge(maps, d);
  await maps.write([
    { op: 'bucket', index: 7, value: { first: '192.0.2.99', second: null } },
    { op: 'peer-del', ip: '192.0.2.34' },
    { op: 'slice-put', ip: '198.51.100.64', slice: 9, server: '192.0.2.99' },
  ]);
  const steps = await converge(maps, d);
  assert.deepEqual(steps.map((s) => s.what.replace(/\(.*\)/, '').trim()), ['bpf steer_peers add 192.0.2.34', 'bpf steer_table: 1 of 65537 buckets', 'bpf steer_slices delete 1']);
});

test("the reconciler's plan carries the steering steps when the environment has steering maps", async () => {
  const kernel = fakeKernel(marksWith({ prefix: 'ae' }));
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  const steer = fakeSteerMaps();
  const env: ReconcileEnv = { kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel), steer };
  const ds = compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks: marksWith({ prefix: 'ae' }) });
  assert.ok(ds.ok);
  const input = steerInput(env, acmeConfig(), { dc: 'ams', server: 's1' });
  assert.ok(input.ok && input.value);
  const p = await plan(env, ds.value, { steer: input.value });
  assert.ok(p.ok);
  assert.match(formatPlan(p.value), /\+ anycast\.services: bpf steer_svc add 198\.51\.100\.2 198\.51\.100\.3/);
  // Without steering maps nothing is compiled or planned for them.
  const none = steerInput({}, acmeConfig(), { dc: 'ams', server: 's1' });
  assert.ok(none.ok && none.value === undefined);
  // The daemon's fast path is allowed only when steering did not change.
  const applied = {};
  rememberSteer(applied, input.value);
  assert.ok(steerUnchanged(applied, steerOf(acmeConfig())));
  assert.ok(!steerUnchanged(applied, steerOf(withServerState('draining'))));
});

test('tenant prefixes: added with protection on (after the table, before the cfg), idempotent, deleted first when it goes off, drift repaired', async () => {
  const doc = acmeDoc();
  const protectedDoc = (protection: 'xdp' | 'off') => mustConfig({ ...doc, tenants: { ...doc.tenants, acme: { ...doc.tenants.acme, synFlood: { protection } } } });
  const maps = fakeSteerMaps();
  const on = steerOf(protectedDoc('xdp'));
  const steps = await converge(maps, on);
  const names = steps.map((s) => s.what.split(' ').slice(0, 3).join(' '));
  const at = (w: string) => names.findIndex((n) => n.startsWith(w));
  assert.ok(at('bpf steer_tenant add') > at('bpf steer_table:'), names.join('\n'));
  assert.ok(at('bpf steer_tenant add') < at('bpf steer_cfg'), names.join('\n'));
  assert.match(maps.dump(), new RegExp(`bpf steer_tenant ${on.tenants[0]!.replace(/\./g, '\\.')}\n`));
  const again = await planSteer(maps, on);
  assert.ok(again.ok);
  assert.deepEqual([...again.value.adds, ...again.value.dels], []);
  // Someone deletes an entry by hand: the next pass puts it back.
  await maps.write([{ op: 'tenant-del', cidr: on.tenants[0]! }]);
  const repair = await converge(maps, on);
  assert.deepEqual(repair.map((s) => s.what), [`bpf steer_tenant add ${on.tenants[0]}`]);
  // Protection off: the prefixes go, as the first delete.
  const off = steerOf(protectedDoc('off'));
  const p = await planSteer(maps, off);
  assert.ok(p.ok);
  assert.equal(p.value.dels[0]?.what, `bpf steer_tenant delete ${on.tenants.join(' ')}`);
  await apply([...p.value.adds, ...p.value.dels]);
  assert.doesNotMatch(maps.dump(), /steer_tenant/);
});
