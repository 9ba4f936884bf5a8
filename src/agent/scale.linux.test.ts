/**
 * 100 tenants provisioned by the reconciler into a real namespace playing the server: one pass
 * converges (the next plan is empty), the server's main table is unchanged, and removing them all
 * leaves nothing of ours.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { manyTenants } from './fixtures.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { loadEdge, unloadEdge, edgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';

const lab = new NetLab('K');
const marks = marksWith({ prefix: `k${(process.pid % 10000).toString(36)}s` });
const bpfName = `${lab.prefix}srv`;

after(async () => {
  await linuxKernel(marks).netns.prune([]);
  await lab.destroy();
  await unloadEdge(edgePins(bpfName));
});

test('100 tenants on the real kernel: one pass converges, main table unchanged, all removed cleanly', async (t) => {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool', 'nsenter', 'nft'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  await lab.addNs('s');
  await lab.addNs('x');
  await lab.veth('s', 'eth0', 'x', 'eth0');
  const pins = await loadEdge(bpfName);
  if (!pins.ok) assert.fail(pins.error.message);
  const env: ReconcileEnv = { kernel: linuxKernel(marks), bpf: linuxBpfMaps(pins.value), attach: linuxAttach(pins.value) };
  const compile = (n: number): DesiredServer => {
    const d = compileServer(manyTenants(n), { dc: 'ams', server: 's1' }, { marks, serverNs: lab.ns('s'), linkPool: '192.0.2.0/24' });
    if (!d.ok) assert.fail(d.error.message);
    return d.value;
  };
  const pass = async (d: DesiredServer) => {
    const p = await plan(env, d);
    if (!p.ok) assert.fail(p.error.message);
    const r = await apply(p.value);
    assert.equal(r.failed, undefined, r.failed?.error.message);
    return p.value.length;
  };
  const mainBefore = await lab.ip('s', 'route', 'show', 'table', 'main');
  const t0 = Date.now();
  const d = compile(100);
  assert.ok((await pass(d)) > 1000);
  const t1 = Date.now();
  const again = await plan(env, d);
  assert.ok(again.ok);
  assert.equal(formatPlan(again.value), 'nothing to do\n');
  const t2 = Date.now();
  t.diagnostic(`100 tenants: apply ${t1 - t0} ms, a pass with nothing to do ${t2 - t1} ms`);
  assert.equal(await lab.ip('s', 'route', 'show', 'table', 'main'), mainBefore);
  const ns = await env.kernel.netns.list();
  assert.ok(ns.ok && ns.value.length === 100);
  await pass(compile(0));
  const left = await env.kernel.netns.list();
  assert.ok(left.ok && left.value.length === 0);
  const links = await env.kernel.links.list(lab.ns('s'));
  assert.ok(links.ok && links.value.every((l) => !l.owned));
  const enc = await env.bpf.listEncap();
  assert.ok(enc.ok && enc.value.size === 0);
});
