/**
 * The tunnel devices' TX checksum offload through the reconciler, on the fake kernel: every
 * tunnel device (the tenant-namespace end, where tc_gre.c encapsulates) is created with it off,
 * the server end keeps it, a device turned back on is repaired, and a second pass has nothing to
 * do. Why it matters: kernel/txcsum.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';
import { acmeConfig } from './fixtures.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import { fakeKernel, marksWith } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';

const marks = marksWith({ prefix: 'ae' });

async function world(): Promise<{ env: ReconcileEnv; attach: ReturnType<typeof fakeAttach> }> {
  const kernel = fakeKernel(marks);
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  assert.ok((await kernel.links.setUp(null, 'eth0', true)).ok);
  const attach = fakeAttach(kernel);
  return { env: { kernel, bpf: fakeBpfMaps(), attach }, attach };
}

function desired(): DesiredServer {
  const d = compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks });
  if (!d.ok) assert.fail(d.error.message);
  return d.value;
}

async function pass(env: ReconcileEnv, d: DesiredServer): Promise<string> {
  const p = await plan(env, d);
  if (!p.ok) assert.fail(p.error.message);
  const r = await apply(p.value);
  assert.equal(r.failed, undefined, r.failed?.error.message);
  return formatPlan(p.value);
}

const tunnelVeths = (d: DesiredServer) => d.veths.filter((v) => (v.txCsumOff ?? []).length > 0);

test('compile: every tunnel device, and only its tenant-namespace end, asks for TX checksum offload off', () => {
  const d = desired();
  const tunnels = tunnelVeths(d);
  assert.ok(tunnels.length >= 1, 'the Acme example has a tunnel');
  assert.deepEqual(tunnels.map((v) => v.path).sort(), d.tunnels.map((t) => t.path).sort());
  for (const v of tunnels) assert.deepEqual(v.txCsumOff, ['a']);
  // The server↔tenant wires are not tunnels: left as the kernel makes them.
  assert.ok(d.veths.some((v) => v.txCsumOff === undefined));
});

test('reconcile: tunnel devices come up with TX checksumming off, drift back on is repaired, then nothing to do', async () => {
  const { env, attach } = await world();
  const d = desired();
  await pass(env, d);
  const [v] = tunnelVeths(d);
  assert.ok(v);
  const dev = v.spec.a;
  const outer = v.spec.b;
  const on = async (ns: typeof dev.ns, name: string) => {
    const r = await attach.txChecksum(ns, name);
    if (!r.ok) assert.fail(r.error.message);
    return r.value;
  };
  assert.equal(await on(dev.ns, dev.name), false, 'tunnel device: off after the first pass');
  assert.equal(await on(outer.ns, outer.name), true, 'the outer end keeps its offload');
  assert.equal(await pass(env, d), 'nothing to do\n');

  // Someone (or a driver reset) turns it back on.
  assert.ok((await attach.setTxChecksum(dev.ns, dev.name, true)).ok);
  const repair = await pass(env, d);
  assert.match(repair, new RegExp(`ethtool -K ${dev.name} tx off`));
  assert.equal(repair.trim().split('\n').length, 1, `only the checksum step: ${repair}`);
  assert.equal(await on(dev.ns, dev.name), false, 'repaired');
  assert.equal(await pass(env, d), 'nothing to do\n');
});
