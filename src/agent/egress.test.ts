// The egress addresses on lo and the SNAT table, reconciled on the fake kernel: converge,
// idempotence, drift both ways, an address moved to another data center, and foreign addresses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import type { Config } from '../model/config.ts';
import { fakeKernel, marksWith, type FakeKernel } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import { configOf, egressDoc } from '../compile/egress/fixtures.ts';

const marks = marksWith({ prefix: 'ae' });

async function world(): Promise<{ kernel: FakeKernel; env: ReconcileEnv }> {
  const kernel = fakeKernel(marks);
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  return { kernel, env: { kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel) } };
}

function desired(c: Config): DesiredServer {
  const d = compileServer(c, { dc: 'lon', server: 's2' }, { marks });
  if (!d.ok) assert.fail(d.error.message);
  return d.value;
}

async function planText(env: ReconcileEnv, d: DesiredServer): Promise<string> {
  const p = await plan(env, d);
  if (!p.ok) assert.fail(p.error.message);
  return formatPlan(p.value);
}

async function pass(env: ReconcileEnv, d: DesiredServer): Promise<string> {
  const p = await plan(env, d);
  if (!p.ok) assert.fail(p.error.message);
  const r = await apply(p.value);
  assert.equal(r.failed, undefined, r.failed?.error.message);
  return formatPlan(p.value);
}

const egressLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.includes('egress') || l.includes(' dev lo'))
    .join('\n');

async function loAddrs(k: FakeKernel): Promise<string[]> {
  const r = await k.addrs.list(null, 'lo');
  assert.ok(r.ok);
  return r.value.map((a) => a.cidr);
}

test('the addresses go on lo and the SNAT table in; a second pass has nothing to do', async () => {
  const { kernel, env } = await world();
  const d = desired(configOf(egressDoc()));
  assert.equal(
    egressLines(await pass(env, d)),
    [
      '+ egress/assign/198.51.100.64: addr add 198.51.100.64/32 dev lo (host)',
      '+ egress/assign/198.51.100.80: addr add 198.51.100.80/32 dev lo (host)',
      '+ egress/assign/2001:db8:e0::1: addr add 2001:db8:e0::1/128 dev lo (host)',
      '+ server/egress/nft: nft -j -f (table ip aeegress, 9 commands) (host)',
    ].join('\n'),
  );
  assert.deepEqual(await loAddrs(kernel), ['198.51.100.64/32', '198.51.100.80/32', '2001:db8:e0::1/128']);
  assert.equal(await planText(env, d), 'nothing to do\n');
});

test('drift: a lost address comes back, a stray one in the egress ranges goes, a foreign one stays', async () => {
  const { kernel, env } = await world();
  const d = desired(configOf(egressDoc()));
  await pass(env, d);
  assert.ok((await kernel.addrs.delete(null, 'lo', '198.51.100.80/32')).ok);
  assert.ok((await kernel.addrs.add(null, 'lo', '198.51.100.70/32')).ok);
  assert.ok((await kernel.addrs.add(null, 'lo', '192.0.2.77/32')).ok);
  assert.equal(
    await pass(env, d),
    ['+ egress/assign/198.51.100.80: addr add 198.51.100.80/32 dev lo (host)', '- host/lo/addr/198.51.100.70/32: addr del 198.51.100.70/32 dev lo (host)'].join('\n') + '\n',
  );
  assert.deepEqual(await loAddrs(kernel), ['192.0.2.77/32', '198.51.100.64/32', '198.51.100.80/32', '2001:db8:e0::1/128']);
  assert.equal(await planText(env, d), 'nothing to do\n');
});

test('an address moved to another data center leaves lo and the SNAT table', async () => {
  const { kernel, env } = await world();
  await pass(env, desired(configOf(egressDoc())));
  const doc = egressDoc();
  doc.egress.assign['198.51.100.80'] = { dc: 'par' };
  doc.egress.assign['198.51.100.82'] = { dc: 'lon' };
  const d = desired(configOf(doc));
  assert.equal(
    egressLines(await pass(env, d)),
    [
      '+ egress/assign/198.51.100.82: addr add 198.51.100.82/32 dev lo (host)',
      '~ server/egress/nft: nft -j -f (table ip aeegress, 9 commands) (host)',
      '- host/lo/addr/198.51.100.80/32: addr del 198.51.100.80/32 dev lo (host)',
    ].join('\n'),
  );
  assert.deepEqual(await loAddrs(kernel), ['198.51.100.64/32', '198.51.100.82/32', '2001:db8:e0::1/128']);
  const table = await kernel.nft.listTable(null, { family: 'ip', name: 'aeegress' });
  assert.ok(table.ok);
  const text = JSON.stringify(table.value);
  assert.ok(text.includes('198.51.100.82') && !text.includes('198.51.100.80'), text);
});

test('no egress left: the addresses and the table go', async () => {
  const { kernel, env } = await world();
  await pass(env, desired(configOf(egressDoc())));
  const doc = egressDoc();
  doc.egress.assign = {};
  const steps = await pass(env, desired(configOf(doc)));
  assert.match(steps, /- host\/nft\/aeegress: nft delete table ip aeegress/);
  assert.deepEqual(await loAddrs(kernel), []);
});
