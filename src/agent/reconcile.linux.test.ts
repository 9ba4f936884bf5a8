/**
 * The reconciler on the real kernel, end to end. The server is a namespace; the reconciler
 * provisions both tenants of the Acme example into it from the config, and real traffic checks
 * the result:
 *
 *   eyeball(e) ── eye0 server(s) eth0 (XDP) ── wan0 acme router(c) lan0 ── acme host(h) 203.0.113.100
 *                   │ q…-acme, q…-globex            │ c2l0
 *                   (tenant namespaces, made by us)  └── wan0 globex router(c2) lan0 ── globex host(h2) 203.0.113.130
 *
 * The customer routers have no GRE module either: each runs its own copy of the programs (as in
 * kernel/bpf/datapath.test.ts). Then: idempotence, drift repair, foreign objects, isolation
 * between tenants, removal of a tenant, and removal of everything.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { acmeDoc, mustConfig } from './fixtures.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import { linuxKernel, marksWith, type Kernel } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { EdgeMaps } from '../kernel/bpf/edge.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';
import { probeTargets } from './targets.ts';
import { pingProber } from './ping-prober.ts';
import type { Config } from '../model/config.ts';

const lab = new NetLab('R');
// Not a prefix of the lab's namespace names (`aeR…`), with a server tag (`s`) at the end.
const marks = marksWith({ prefix: `q${(process.pid % 10000).toString(36)}s` });
const edges: EdgePins[] = [];
let setupError: Error | null = null;
let env: ReconcileEnv | null = null;
let kernel: Kernel | null = null;

const ENDPOINT = '198.51.100.1';
const ACME_HOST = '203.0.113.100';
const GLOBEX_HOST = '203.0.113.130';

function config(tenants: readonly string[]): Config {
  const doc = acmeDoc();
  const t = Object.fromEntries(Object.entries(doc.tenants).filter(([id]) => tenants.includes(id)));
  // A TCP echo server on port 21 is the FTP server of the example; state-less rules need the
  // return traffic accepted, which the example's egress default (accept) does.
  return mustConfig({ ...doc, tenants: t });
}

function desired(tenants: readonly string[]): DesiredServer {
  const d = compileServer(config(tenants), { dc: 'ams', server: 's1' }, { marks, serverNs: lab.ns('s'), linkPool: '192.0.2.64/26' });
  if (!d.ok) throw new Error(`${d.error.path}: ${d.error.message}`);
  return d.value;
}

async function pass(d: DesiredServer): Promise<string> {
  assert.ok(env);
  const p = await plan(env, d);
  if (!p.ok) assert.fail(`plan: ${p.error.path}: ${p.error.message}`);
  const r = await apply(p.value);
  if (r.failed) assert.fail(`apply: ${r.failed.step.path}: ${r.failed.error.message}\nplan was:\n${formatPlan(p.value)}`);
  return formatPlan(p.value);
}

async function planText(d: DesiredServer): Promise<string> {
  assert.ok(env);
  const p = await plan(env, d);
  if (!p.ok) assert.fail(`plan: ${p.error.path}: ${p.error.message}`);
  return formatPlan(p.value);
}

function nsenter(ns: string, ...argv: string[]): Promise<string> {
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

/** A customer router: its own programs and maps, terminating the tunnel to the anycast endpoint. */
async function customerRouter(ns: string, pins: EdgePins, local: string, key: number | undefined, index: number, inner?: string): Promise<void> {
  await lab.veth(ns, 'ctun0', ns, 'ctun0p', { indexA: index });
  for (const dev of ['ctun0', 'ctun0p']) {
    await lab.ip(ns, 'link', 'set', dev, 'arp', 'off');
    await lab.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
  }
  await lab.ip(ns, 'link', 'set', 'ctun0', 'mtu', '1472');
  if (inner) await lab.ip(ns, 'addr', 'add', inner, 'dev', 'ctun0');
  await lab.ip(ns, 'route', 'add', '192.0.2.8/30', 'dev', 'ctun0');
  const m = new EdgeMaps(pins);
  const tunMac = await lab.mac(ns, 'ctun0');
  const outerMac = await lab.mac(ns, 'ctun0p');
  const must = (r: { ok: boolean }) => assert.ok(r.ok, JSON.stringify(r));
  must(await m.putEndpoint(local));
  must(await m.putDecap({ remote: ENDPOINT, local, ...(key !== undefined ? { key } : {}) }, { ifindex: await lab.ifindex(ns, 'ctun0p'), srcMac: outerMac, dstMac: tunMac, statsIdx: 1 }));
  must(await m.putEncap(index, { local, remote: ENDPOINT, ...(key !== undefined ? { key } : {}), outIfindex: 0, mtu: 1472, ttl: 64, srcMac: tunMac, dstMac: outerMac, statsIdx: 1 }));
  await nsenter(ns, 'ip', 'link', 'set', 'dev', 'wan0', 'xdpdrv', 'pinned', pins.progs.xdpEdge);
  await nsenter(ns, 'ip', 'link', 'set', 'dev', 'ctun0', 'xdpdrv', 'pinned', pins.progs.xdpPass);
  await nsenter(ns, 'tc', 'qdisc', 'add', 'dev', 'ctun0', 'clsact');
  await nsenter(ns, 'tc', 'filter', 'add', 'dev', 'ctun0', 'egress', 'bpf', 'direct-action', 'pinned', pins.progs.tcGreEncap);
}

async function build(): Promise<void> {
  for (const n of ['e', 's', 'c', 'h', 'c2', 'h2']) await lab.addNs(n);
  await lab.veth('e', 'eth0', 's', 'eye0');
  await lab.veth('s', 'eth0', 'c', 'wan0');
  await lab.veth('c', 'c2l0', 'c2', 'wan0');
  await lab.veth('c', 'lan0', 'h', 'eth0');
  await lab.veth('c2', 'lan0', 'h2', 'eth0');
  await lab.ip('e', 'addr', 'add', '192.0.2.10/30', 'dev', 'eth0');
  await lab.ip('e', 'route', 'add', 'default', 'via', '192.0.2.9');
  await lab.ip('s', 'addr', 'add', '192.0.2.9/30', 'dev', 'eye0');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/30', 'dev', 'eth0');
  await lab.ip('s', 'route', 'add', '198.51.100.200/31', 'via', '192.0.2.2');
  await lab.ip('c', 'addr', 'add', '192.0.2.2/30', 'dev', 'wan0');
  await lab.ip('c', 'addr', 'add', '192.0.2.17/30', 'dev', 'c2l0');
  await lab.ip('c', 'addr', 'add', '203.0.113.1/25', 'dev', 'lan0');
  await lab.ip('c', 'route', 'add', `${ENDPOINT}/32`, 'via', '192.0.2.1');
  await lab.ip('c', 'route', 'add', '198.51.100.201/32', 'via', '192.0.2.18');
  await lab.ip('c2', 'addr', 'add', '192.0.2.18/30', 'dev', 'wan0');
  await lab.ip('c2', 'addr', 'add', '203.0.113.129/25', 'dev', 'lan0');
  await lab.ip('c2', 'route', 'add', 'default', 'via', '192.0.2.17');
  await lab.ip('h', 'addr', 'add', `${ACME_HOST}/25`, 'dev', 'eth0');
  await lab.ip('h', 'route', 'add', 'default', 'via', '203.0.113.1');
  await lab.ip('h2', 'addr', 'add', `${GLOBEX_HOST}/25`, 'dev', 'eth0');
  await lab.ip('h2', 'route', 'add', 'default', 'via', '203.0.113.129');
  for (const ns of ['s', 'c', 'c2']) await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.send_redirects=0']);
  for (const ns of ['e', 'h', 'h2']) await lab.exec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  for (const side of ['s', 'c', 'c2']) {
    const pins = await loadEdge(`${lab.prefix}${side}`);
    if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
    edges.push(pins.value);
  }
  await customerRouter('c', edges[1] as EdgePins, '198.51.100.200', undefined, 3001, '192.0.2.253/31');
  await customerRouter('c2', edges[2] as EdgePins, '198.51.100.201', 42, 3002);
  kernel = linuxKernel(marks);
  env = { kernel, bpf: linuxBpfMaps(edges[0] as EdgePins), attach: linuxAttach(edges[0] as EdgePins) };
}

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || !hasTool('tc') || !hasTool('nsenter') || missingObjects().length) return;
  try {
    await build();
  } catch (e) {
    setupError = e as Error;
  }
});

after(async () => {
  // Our tenant namespaces first (they carry the marks prefix, not the lab's), then the lab.
  if (kernel) await kernel.netns.prune([]);
  await lab.destroy();
  for (const p of edges) await unloadEdge(p);
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool', 'nsenter', 'nft', 'ethtool'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  if (setupError) throw setupError;
  return true;
}

async function ping(from: string, to: string, count = 2): Promise<boolean> {
  const r = await lab.tryExec(from, 'ping', ['-c', String(count), '-i', '0.2', '-W', '1', to]);
  return r.ok && new RegExp(`${count} received`).test(r.stdout);
}

/** A TCP echo server in `ns` on addr:port; resolves once it listens. */
async function echoServer(ns: string, addr: string, port: number): Promise<void> {
  const server = lab.spawn(ns, process.execPath, ['-e', `require('net').createServer(s=>s.pipe(s)).listen(${port},'${addr}',()=>console.log('listening'))`]);
  const [line] = (await once(server.stdout!, 'data')) as [Buffer];
  assert.match(line.toString(), /listening/);
}

async function tcp(from: string, addr: string, port: number): Promise<{ ok: boolean; out: string }> {
  const r = await lab.tryExec(from, process.execPath, [
    '-e',
    `const s=require('net').connect(${port},'${addr}',()=>s.end('hello through the tunnel'));let d='';s.on('data',b=>d+=b);s.on('close',()=>{console.log(d);process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(2)});setTimeout(()=>{console.log('timeout');process.exit(3)},2000).unref()`,
  ]);
  return { ok: r.ok, out: r.stdout.trim() };
}

async function counter(ns: string, table: string, name: string): Promise<number> {
  assert.ok(kernel);
  const c = await kernel.nft.counters(ns, { family: 'inet', name: table });
  if (!c.ok) assert.fail(c.error.message);
  return c.value.find((x) => x.kind === 'named' && x.name === name)?.packets ?? -1;
}

let mainBefore = '';

test('provisioning both tenants from the config, then a second pass has nothing to do', async (t) => {
  if (!ready(t)) return;
  mainBefore = await lab.ip('s', '-j', 'route', 'show', 'table', 'main');
  const d = desired(['acme', 'globex']);
  const first = await pass(d);
  assert.match(first, /\+ tenants\/acme\/netns: netns add/);
  assert.equal(await planText(d), 'nothing to do\n');
});

test('ping and TCP with data reach the Acme host through anycast GRE and come back', async (t) => {
  if (!ready(t)) return;
  assert.ok(await ping('e', ACME_HOST, 3), 'ping eyeball → acme host');
  await echoServer('h', ACME_HOST, 21);
  const r = await tcp('e', ACME_HOST, 21);
  assert.equal(r.out, 'hello through the tunnel');
  const d = desired(['acme', 'globex']);
  const stats = await new EdgeMaps(edges[0] as EdgePins).tunnelStats(d.encap.find((e) => e.path === 'tenants/acme/tunnels/gre1')?.entry.statsIdx ?? -1);
  assert.ok(stats.ok && stats.value.encapPackets >= 3n && stats.value.decapPackets >= 3n);
});

test('a health probe through the provisioned tunnel passes; with the tunnel marked down its route goes, and comes back', async (t) => {
  if (!ready(t)) return;
  const d = desired(['acme', 'globex']);
  const [target] = probeTargets(d);
  assert.ok(target);
  const r = await pingProber.probe(target.target, 1000);
  assert.equal(r.ok, true, r.error);
  const downed = compileServer(config(['acme', 'globex']), { dc: 'ams', server: 's1' }, { marks, serverNs: lab.ns('s'), linkPool: '192.0.2.64/26', down: new Set([target.target.path]) });
  assert.ok(downed.ok);
  assert.match(await pass(downed.value), /- q\w+-acme\/route\/254\/203\.0\.113\.0\/25/);
  assert.equal(await ping('e', ACME_HOST, 1), false);
  await pass(d);
  assert.ok(await ping('e', ACME_HOST));
});

test('port 22 is dropped by the customer firewall and counted', async (t) => {
  if (!ready(t)) return;
  await echoServer('h', ACME_HOST, 22);
  const ns = desired(['acme']).netns[0]?.name as string;
  const before = await counter(ns, `${marks.prefix}fw`, 'default_ingress');
  const r = await tcp('e', ACME_HOST, 22);
  assert.notEqual(r.out, 'hello through the tunnel');
  assert.ok((await counter(ns, `${marks.prefix}fw`, 'default_ingress')) > before, 'the drop was counted');
});

test('globex works through its keyed tunnel; a packet from acme\'s tunnel to globex never reaches globex', async (t) => {
  if (!ready(t)) return;
  assert.ok(await ping('e', GLOBEX_HOST), 'ping eyeball → globex host');
  const cross = async () => counter(lab.ns('s'), `${marks.prefix}transit`, 'cross_tenant');
  const before = await cross();
  // From the acme host, and the acme router sends it into acme's tunnel (a route added for this
  // test only): it arrives decapsulated in acme's namespace, addressed to globex.
  await lab.ip('c', 'route', 'add', '203.0.113.128/25', 'dev', 'ctun0');
  try {
    assert.equal(await ping('h', GLOBEX_HOST), false);
  } finally {
    await lab.ip('c', 'route', 'del', '203.0.113.128/25', 'dev', 'ctun0');
  }
  assert.ok((await cross()) >= before + 2, 'dropped at the server and counted');
  // Neither namespace holds the other's routes or rules.
  const [acme, globex] = desired(['acme', 'globex']).netns.map((n) => n.name) as [string, string];
  const ra = await lab.sh('ip', ['-n', acme, 'route', 'show', 'table', 'all']);
  const rg = await lab.sh('ip', ['-n', globex, 'route', 'show', 'table', 'all']);
  assert.doesNotMatch(ra, /203\.0\.113\.128/);
  assert.doesNotMatch(rg, /203\.0\.113\.0\/25/);
  assert.doesNotMatch(await lab.sh('ip', ['netns', 'exec', globex, 'nft', 'list', 'ruleset']), /203\.0\.113\.100|ftp/);
});

test('nothing was added to the server\'s main table', async (t) => {
  if (!ready(t)) return;
  assert.equal(await lab.ip('s', '-j', 'route', 'show', 'table', 'main'), mainBefore);
});

test('drift: a rule, a transit route and a tenant veth removed by hand are repaired on the next pass', async (t) => {
  if (!ready(t)) return;
  const d = desired(['acme', 'globex']);
  await lab.ip('s', 'rule', 'del', 'pref', '1000');
  await lab.ip('s', 'route', 'del', '203.0.113.128/25', 'table', '100');
  const wire = d.veths.find((v) => v.path === 'tenants/acme/wire')?.spec.a.name as string;
  await lab.ip('s', 'link', 'del', wire);
  assert.equal(await ping('e', ACME_HOST, 1), false);
  const text = await pass(d);
  assert.match(text, /server\/transit\/rule/);
  assert.match(text, /tenants\/globex\/prefixes\/p0/);
  assert.match(text, /tenants\/acme\/wire/);
  assert.equal(await planText(d), 'nothing to do\n');
  assert.ok(await ping('e', ACME_HOST));
  assert.ok(await ping('e', GLOBEX_HOST));
});

test('foreign objects are left alone', async (t) => {
  if (!ready(t)) return;
  const d = desired(['acme', 'globex']);
  // Named like ours, without the mark; a static route and a rule in our bands; a foreign table.
  await lab.ip('s', 'link', 'add', `${marks.prefix}f0`, 'type', 'veth', 'peer', 'name', `${marks.prefix}f1`);
  await lab.ip('s', 'route', 'add', '198.51.100.128/25', 'dev', 'eth0', 'table', '100', 'proto', 'static');
  await lab.ip('s', 'rule', 'add', 'pref', '1500', 'lookup', '50');
  await lab.exec('s', 'nft', ['add', 'table', 'inet', 'operator']);
  const text = await planText(d);
  assert.equal(text, 'nothing to do\n');
  await pass(desired(['acme']));
  assert.match(await lab.ip('s', 'link', 'show'), new RegExp(`${marks.prefix}f0`));
  assert.match(await lab.ip('s', 'route', 'show', 'table', '100'), /198\.51\.100\.128\/25/);
  assert.match(await lab.ip('s', 'rule', 'show'), /1500:/);
  assert.match(await lab.exec('s', 'nft', ['list', 'tables']), /inet operator/);
});

test('globex removed from the config leaves nothing of it; acme keeps working', async (t) => {
  if (!ready(t)) return;
  const d = desired(['acme']);
  assert.equal(await planText(d), 'nothing to do\n', 'the previous test already applied it');
  assert.deepEqual(d.netns.map((n) => n.name), [`${marks.prefix}-acme`]);
  const all = await lab.sh('ip', ['netns', 'list']);
  assert.doesNotMatch(all, new RegExp(`${marks.prefix}-globex`));
  const links = await lab.ip('s', 'link', 'show');
  const gone = desired(['acme', 'globex']).veths.filter((v) => v.path.startsWith('tenants/globex'));
  for (const v of gone) assert.doesNotMatch(links, new RegExp(`${v.spec.a.name}|${v.spec.b.name}`));
  assert.doesNotMatch(await lab.ip('s', 'route', 'show', 'table', '100'), /203\.0\.113\.128/);
  assert.doesNotMatch(await lab.exec('s', 'nft', ['list', 'table', 'inet', `${marks.prefix}transit`]), /203\.0\.113\.128/);
  const maps = new EdgeMaps(edges[0] as EdgePins);
  const decap = await maps.listDecap();
  assert.ok(decap.ok);
  assert.deepEqual(decap.value.map((x) => x.key.local + ' ' + x.key.remote), ['198.51.100.1 198.51.100.200']);
  assert.ok(await ping('e', ACME_HOST));
  assert.equal(await ping('e', GLOBEX_HOST, 1), false);
});

test('no tenant left: nothing of ours remains but the server-wide objects', async (t) => {
  if (!ready(t)) return;
  await pass(desired([]));
  assert.ok(kernel);
  const ns = await kernel.netns.list();
  assert.ok(ns.ok && ns.value.length === 0);
  const links = await kernel.links.list(lab.ns('s'));
  assert.ok(links.ok);
  assert.deepEqual(links.value.filter((l) => l.owned).map((l) => l.name), []);
  const maps = new EdgeMaps(edges[0] as EdgePins);
  const enc = await maps.listEncap();
  const dec = await maps.listDecap();
  assert.ok(enc.ok && enc.value.size === 0 && dec.ok && dec.value.length === 0);
  // Only the foreign route of the previous test is left in our table.
  assert.equal((await lab.ip('s', 'route', 'show', 'table', '100')).trim(), '198.51.100.128/25 dev eth0 proto static scope link');
});

test('a pass stopped half-way leaves a state the next pass repairs; traffic flows again', async (t) => {
  if (!ready(t)) return;
  assert.ok(env);
  const d = desired(['acme', 'globex']);
  const p = await plan(env, d);
  assert.ok(p.ok);
  const half = await apply(p.value.slice(0, Math.floor(p.value.length / 2)));
  assert.equal(half.failed, undefined);
  assert.notEqual(await planText(d), 'nothing to do\n');
  await pass(d);
  assert.equal(await planText(d), 'nothing to do\n');
  assert.ok(await ping('e', ACME_HOST));
  assert.ok(await ping('e', GLOBEX_HOST));
});
