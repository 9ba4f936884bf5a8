/**
 * The reconciler on the fake kernel, fake maps and fake attachments: the plan and resulting state
 * of the Acme example as golden files, then idempotence, removal, drift, foreign objects, a
 * failure half-way, add-before-delete and 100 tenants.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, formatPlan, nftOnlySteps, plan, reconcile, type ReconcileEnv, type Step } from './reconcile.ts';
import { acmeConfig, acmeDoc, acmeDoc6, manyTenants, mustConfig } from './fixtures.ts';
import { compileServer, type DesiredServer, type ServerOptions } from '../compile/server.ts';
import type { Config } from '../model/config.ts';
import { fakeKernel, marksWith, type FakeKernel } from '../kernel/index.ts';
import { fakeBpfMaps, type FakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import { checkGolden } from '../testkit/golden.ts';
import { rng } from '../testkit/random.ts';

const marks = marksWith({ prefix: 'ae' });
const TESTDATA = new URL('./testdata/', import.meta.url).pathname;

interface World {
  kernel: FakeKernel;
  bpf: FakeBpfMaps;
  attach: ReturnType<typeof fakeAttach>;
  env: ReconcileEnv;
  dump(): Promise<string>;
}

async function world(): Promise<World> {
  const kernel = fakeKernel(marks);
  // The server's uplink: a link that is not ours, as a NIC would be.
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  assert.ok((await kernel.links.setUp(null, 'eth0', true)).ok);
  const bpf = fakeBpfMaps();
  const attach = fakeAttach(kernel);
  return { kernel, bpf, attach, env: { kernel, bpf, attach }, dump: async () => (await attach.sweep(), kernel.dump() + bpf.dump() + attach.dump()) };
}

function desired(c: Config, opts: Partial<ServerOptions> = {}): DesiredServer {
  const d = compileServer(c, { dc: 'ams', server: 's1' }, { marks, ...opts });
  if (!d.ok) assert.fail(d.error.message);
  return d.value;
}

async function planOf(w: World, d: DesiredServer): Promise<Step[]> {
  const p = await plan(w.env, d);
  if (!p.ok) assert.fail(p.error.message);
  return p.value;
}

/** One pass: plan, apply, and check it all went through. */
async function pass(w: World, d: DesiredServer): Promise<Step[]> {
  const steps = await planOf(w, d);
  const r = await apply(steps);
  assert.equal(r.failed, undefined, r.failed?.error.message);
  return steps;
}

test('golden: the plan for an empty server and the state it leaves', async () => {
  const w = await world();
  const d = desired(acmeConfig());
  const steps = await pass(w, d);
  checkGolden(`${TESTDATA}acme-plan.golden.txt`, formatPlan(steps));
  checkGolden(`${TESTDATA}acme-state.golden.txt`, (await w.dump()));
});

test('applying twice changes nothing, and the plan says so', async () => {
  const w = await world();
  const d = desired(acmeConfig());
  await pass(w, d);
  const before = (await w.dump());
  const again = await planOf(w, d);
  assert.equal(formatPlan(again), 'nothing to do\n');
  await pass(w, d);
  assert.equal((await w.dump()), before);
});

test('IPv6 tenant space: converges in one pass, then nothing to do; going back to IPv4 only removes all of it but the forwarding sysctls', async () => {
  const w = await world();
  const d6 = desired(mustConfig(acmeDoc6()));
  await pass(w, d6);
  assert.equal(formatPlan(await planOf(w, d6)), 'nothing to do\n');
  const state = await w.dump();
  assert.match(state, /ip -6 rule add pref 1000 fwmark 0xae lookup 100/);
  assert.match(state, /-6 route add 2001:db8:a::\/48 .*via fe80::1 dev ae-gre1.* table 254 proto 174 metric 100/);
  const back = desired(acmeConfig());
  await pass(w, back);
  assert.equal(formatPlan(await planOf(w, back)), 'nothing to do\n');
  const fresh = await world();
  await pass(fresh, back);
  // Sysctls are set, never reset (as net.ipv4.ip_forward): IPv6 forwarding stays on.
  const sansForwarding6 = (text: string) => text.split('\n').filter((l) => !l.endsWith('sysctl -w net.ipv6.conf.all.forwarding=1')).join('\n');
  assert.equal(sansForwarding6(await w.dump()), await fresh.dump());
});

test('a tenant removed from the config leaves nothing behind', async () => {
  const doc = acmeDoc();
  const onlyGlobex = mustConfig({ ...doc, tenants: { globex: doc.tenants.globex } });
  // Reference: a server that only ever had globex.
  const ref = await world();
  await pass(ref, desired(onlyGlobex));
  const w = await world();
  await pass(w, desired(acmeConfig()));
  const steps = await pass(w, desired(onlyGlobex));
  assert.ok(steps.every((s) => s.action !== 'create'), formatPlan(steps));
  assert.equal((await w.dump()), (await ref.dump()));
  assert.doesNotMatch((await w.dump()), /acme|203\.0\.113\.0\/25|198\.51\.100\.200/);
  // And everything goes when no tenant is left, but the server-wide objects.
  await pass(w, desired(mustConfig({ ...doc, tenants: {} })));
  assert.doesNotMatch((await w.dump()), /netns add|globex/);
});

test('drift: a rule, a route, a veth, an nft rule, a map entry and a program removed by hand are repaired', async () => {
  const w = await world();
  const d = desired(acmeConfig());
  await pass(w, d);
  const good = (await w.dump());
  const k = w.kernel;
  assert.ok((await k.rules.delete(null, { family: 4, priority: 1000, table: 100, fwmark: 0xae })).ok);
  assert.ok((await k.routes.delete(null, { table: 100, dst: '203.0.113.0/25', metric: 0 })).ok);
  assert.ok((await k.routes.delete('ae-globex', { table: 254, dst: '203.0.113.128/25', metric: 100 })).ok);
  assert.ok((await k.links.delete('ae-acme', 'ae-gre1')).ok);
  const fw = await k.nft.listTable('ae-acme', { family: 'inet', name: 'aefw' });
  assert.ok(fw.ok);
  const rule = fw.value.nftables.find((c) => 'rule' in c && JSON.stringify(c).includes('rule_ftp')) as { rule: { handle: number; chain: string } };
  assert.ok((await k.nft.apply('ae-acme', { nftables: [{ delete: { rule: { family: 'inet', table: 'aefw', chain: rule.rule.chain, handle: rule.rule.handle } } }] })).ok);
  assert.ok((await w.bpf.deleteEndpoint('198.51.100.1')).ok);
  assert.ok((await w.attach.detach(null, 'eth0', 'xdp')).ok);
  assert.notEqual((await w.dump()), good);
  const steps = await pass(w, d);
  assert.ok(steps.length >= 7, formatPlan(steps));
  assert.equal((await w.dump()), good);
  assert.equal(formatPlan(await planOf(w, d)), 'nothing to do\n');
});

test('objects without our mark are never touched, and one in the way is a failing step, not a change', async () => {
  const w = await world();
  const k = w.kernel;
  k.foreign.netns('other-ns');
  assert.ok(k.foreign.veth(null, 'aezz0', 'aezz1').ok, 'named like ours, but without the mark');
  assert.ok(k.foreign.route(null, { table: 100, dst: '198.51.100.128/25', dev: 'eth0', protocol: 4 }).ok);
  assert.ok(k.foreign.rule(null, { family: 4, priority: 1500, table: 50 }).ok);
  assert.ok(k.foreign.nftTable(null, { family: 'inet', name: 'filter' }).ok);
  const theirs = k.dump();
  await pass(w, desired(acmeConfig()));
  await pass(w, desired(mustConfig({ ...acmeDoc(), tenants: {} })));
  const after = k.dump();
  for (const line of theirs.split('\n')) assert.ok(after.includes(line), `kept: ${line}`);
  // A foreign program on the uplink is reported, not replaced.
  const w2 = await world();
  w2.attach.foreign(null, 'eth0', 'xdp', 999);
  const steps = await planOf(w2, desired(acmeConfig()));
  const r = await apply(steps);
  assert.equal(r.failed?.error.code, 'conflict');
  assert.equal(r.failed?.step.path, 'server/uplink');
  assert.match(w2.attach.dump(), /xdp host eth0 prog 999/);
});

test('a failure half-way leaves a state the next pass repairs', async () => {
  const w = await world();
  const d = desired(acmeConfig());
  const steps = await planOf(w, d);
  // Stop after half the steps, as a crash would.
  const half = steps.slice(0, Math.floor(steps.length / 2));
  assert.equal((await apply(half)).failed, undefined);
  // And a map write that fails once.
  const put = w.bpf.putEncap.bind(w.bpf);
  let failures = 1;
  w.bpf.putEncap = async (i, e) => (failures-- > 0 ? { ok: false, error: { code: 'bpf_failed', op: 'map update gre_encap', message: 'injected' } } : put(i, e));
  const r = await apply(await planOf(w, d));
  assert.equal(r.failed?.error.code, 'bpf');
  assert.equal(r.failed?.error.path, 'tenants/acme/tunnels/gre1');
  await pass(w, d);
  const ref = await world();
  await pass(ref, d);
  assert.equal((await w.dump()), (await ref.dump()));
  assert.equal(formatPlan(await planOf(w, d)), 'nothing to do\n');
});

test('add before delete: moving a route to another tunnel group creates the new route before deleting the old', async () => {
  const doc = acmeDoc();
  const acme = doc.tenants.acme as Record<string, unknown>;
  acme.tunnels = { gre1: { customerEndpoint: '198.51.100.200' }, gre2: { customerEndpoint: '198.51.100.202', priority: undefined } };
  acme.tunnels = { gre1: { customerEndpoint: '198.51.100.200' }, gre2: { customerEndpoint: '198.51.100.202' } };
  acme.routes = { r1: { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1' }, { tunnel: 'gre2', priority: 200 }] } };
  const cfg = mustConfig(doc);
  const w = await world();
  await pass(w, desired(cfg));
  const steps = await pass(w, desired(cfg, { down: new Set(['tenants/acme/tunnels/gre1']) }));
  const text = formatPlan(steps);
  const add = text.indexOf('+ tenants/acme/routes/r1: route replace 203.0.113.0/25 metric 200');
  const del = text.indexOf('- ae-acme/route/254/203.0.113.0/25');
  assert.ok(add >= 0 && del > add, text);
  assert.match(w.kernel.dump(), /ip -n ae-acme -4 route add 203\.0\.113\.0\/25 dev ae-gre2 table 254 proto 174 metric 200\n/);
  // ECMP with weights when both are in one group.
  acme.routes = { r1: { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1', weight: 3 }, { tunnel: 'gre2', weight: 1 }] } };
  await pass(w, desired(mustConfig(doc)));
  assert.match(w.kernel.dump(), /route add 203\.0\.113\.0\/25 nexthop dev ae-gre1 weight 3 nexthop dev ae-gre2 weight 1 table 254 proto 174 metric 100\n/);
});

test('100 tenants on the fake: converge in one pass, leave the main table unchanged, and go away cleanly', async () => {
  const w = await world();
  const mainBefore = await w.kernel.routes.list(null, 254);
  const d = desired(manyTenants(100), { linkPool: '192.0.2.0/24' });
  const r = await reconcile(w.env, d, 1);
  assert.ok(r.ok && !r.value.failed);
  assert.equal(formatPlan(await planOf(w, d)), 'nothing to do\n');
  assert.deepEqual(await w.kernel.routes.list(null, 254), mainBefore);
  assert.equal((await w.kernel.netns.list()).ok && ((await w.kernel.netns.list()) as { value: string[] }).value.length, 100);
  const encap = await w.bpf.listEncap();
  assert.ok(encap.ok && encap.value.size === 100);
  await pass(w, desired(mustConfig({ ...acmeDoc(), tenants: {} })));
  assert.doesNotMatch((await w.dump()), /netns add|gre_encap|gre_decap/);
});

/** A random config: some of five tenants, each with 1–3 tunnels, routes over random groups, maybe a firewall. */
function randomConfig(r: () => number): Config {
  const pick = (n: number) => Math.floor(r() * n);
  const tenants: Record<string, unknown> = {};
  for (let i = 0; i < 5; i++) {
    if (r() < 0.35) continue;
    const cidr = `203.0.113.${i * 32}/27`;
    const tunnels: Record<string, unknown> = {};
    const nt = 1 + pick(3);
    for (let j = 0; j < nt; j++) tunnels[`gre${j}`] = { customerEndpoint: `198.51.100.${200 + i * 5 + j}`, ...(r() < 0.5 ? { key: 100 + pick(5) } : {}), ...(r() < 0.3 ? { mtu: 1400 } : {}) };
    const via = Object.keys(tunnels)
      .filter(() => r() < 0.7)
      .map((tunnel) => ({ tunnel, priority: 100 + 100 * pick(2), weight: 1 + pick(3) }));
    tenants[`t${i}`] = {
      name: `T${i}`,
      prefixes: { p: { cidr } },
      tunnels,
      routes: via.length ? { r: { prefix: cidr, via } } : {},
      ...(r() < 0.5 ? { firewall: { default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'web', direction: 'ingress', protocol: 'tcp', dport: [80 + pick(3)], action: 'accept' }] } } : {}),
    };
  }
  return mustConfig({ ...acmeDoc(), tenants });
}

test('random transitions: whatever state a server is in, one pass makes it equal to a fresh server with the new config', async () => {
  const seed = 20261123;
  const r = rng(seed);
  const w = await world();
  for (let i = 0; i < 25; i++) {
    const cfg = randomConfig(r);
    const down = new Set(r() < 0.3 ? ['tenants/t0/tunnels/gre0', 'tenants/t2/tunnels/gre1'] : []);
    const d = desired(cfg, { down });
    await pass(w, d);
    const ref = await world();
    await pass(ref, d);
    assert.equal(await w.dump(), await ref.dump(), `seed ${seed}, step ${i}`);
    assert.equal(formatPlan(await planOf(w, d)), 'nothing to do\n', `seed ${seed}, step ${i}`);
  }
});

test('nftOnlySteps: one nft transaction per changed firewall table, null when anything else changes', async () => {
  const w = await world();
  const base = desired(acmeConfig());
  const ftp = (port: number) => {
    const doc = acmeDoc();
    ((doc.tenants.acme as { firewall: { rules: { dport: unknown[] }[] } }).firewall.rules[0] as { dport: unknown[] }).dport = [port];
    return mustConfig(doc);
  };
  assert.equal(nftOnlySteps(w.env, base, desired(acmeConfig())), null, 'nothing changed: nothing to do here');
  const steps = nftOnlySteps(w.env, base, desired(ftp(2121)));
  assert.deepEqual(steps?.map((s) => [s.action, s.path]), [['update', 'tenants/acme/firewall']]);

  // Applied on a server built for `base`, the steps leave it exactly as a full reconcile would.
  const r = await reconcile(w.env, base, 3);
  assert.ok(r.ok && !r.value.failed);
  assert.equal((await apply(steps ?? [])).failed, undefined);
  const after = await plan(w.env, desired(ftp(2121)));
  assert.ok(after.ok);
  assert.deepEqual(after.value.map((s) => s.path), [], 'a full plan finds nothing left');

  // A route, a tunnel or a tenant changing is not a firewall-only change.
  const moved = acmeDoc();
  delete (moved.tenants as Record<string, unknown>).globex;
  assert.equal(nftOnlySteps(w.env, base, desired(mustConfig(moved))), null);
  assert.equal(nftOnlySteps(w.env, base, desired(acmeConfig(), { down: new Set(['tenants/acme/tunnels/gre1']) })), null);
});
