/**
 * IPv6 tenant space on the real kernel, end to end, inside the IPv4-outer anycast GRE. The
 * reconciler provisions the Acme example with IPv6 prefixes (agent/fixtures.ts acmeDoc6) into a
 * server namespace; an IPv6 eyeball then reaches Acme's IPv6 host through the tunnel and back:
 *
 *   eyeball(e) 2001:db8:e::10 ── eye0 server(s) eth0 (XDP) ── wan0 acme router(c) lan0 ── acme host(h) 2001:db8:a::100
 *                                  │ q…-acme, q…-globex (made by us)
 *
 * The customer router runs its own copy of the programs (as in reconcile.linux.test.ts), with
 * IPv6 on its tunnel device and a route for the eyeballs' IPv6 net into it. Globex has IPv6
 * space too but no router here: it is the target of the cross-tenant test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { acmeDoc6, mustConfig } from './fixtures.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import { linuxKernel, marksWith, type Kernel } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { EdgeMaps } from '../kernel/bpf/edge.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';

const lab = new NetLab('V');
// Not a prefix of the lab's namespace names (`aeV…`), nor of reconcile.linux.test.ts's marks.
const marks = marksWith({ prefix: `v${(process.pid % 10000).toString(36)}s` });
const edges: EdgePins[] = [];
let setupError: Error | null = null;
let env: ReconcileEnv | null = null;
let kernel: Kernel | null = null;

const ENDPOINT = '198.51.100.1';
const ROUTER = '198.51.100.200';
const EYEBALL6 = '2001:db8:e::10';
const ACME_HOST6 = '2001:db8:a::100';
const GLOBEX_HOST6 = '2001:db8:b::100';
/** Acme's tunnel: no GRE key, so MTU 1476 (examples/acme.yaml). */
const TUNNEL_MTU = 1476;

function desired(): DesiredServer {
  const d = compileServer(mustConfig(acmeDoc6()), { dc: 'ams', server: 's1' }, { marks, serverNs: lab.ns('s'), linkPool: '192.0.2.64/26' });
  if (!d.ok) throw new Error(`${d.error.path}: ${d.error.message}`);
  return d.value;
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

async function build(): Promise<void> {
  for (const n of ['e', 's', 'c', 'h']) await lab.addNs(n);
  await lab.veth('e', 'eth0', 's', 'eye0');
  await lab.veth('s', 'eth0', 'c', 'wan0');
  await lab.veth('c', 'lan0', 'h', 'eth0');
  // `nodad`: duplicate address detection would keep the addresses unusable for a second.
  const addr6 = (ns: string, cidr: string, dev: string) => lab.ip(ns, '-6', 'addr', 'add', cidr, 'dev', dev, 'nodad');
  await lab.ip('e', 'addr', 'add', '192.0.2.10/30', 'dev', 'eth0');
  await addr6('e', `${EYEBALL6}/64`, 'eth0');
  await lab.ip('e', '-6', 'route', 'add', 'default', 'via', '2001:db8:e::9');
  await lab.ip('s', 'addr', 'add', '192.0.2.9/30', 'dev', 'eye0');
  await addr6('s', '2001:db8:e::9/64', 'eye0');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/30', 'dev', 'eth0');
  await lab.ip('s', 'route', 'add', `${ROUTER}/32`, 'via', '192.0.2.2');
  await lab.ip('c', 'addr', 'add', '192.0.2.2/30', 'dev', 'wan0');
  await lab.ip('c', 'addr', 'add', '203.0.113.1/25', 'dev', 'lan0');
  await addr6('c', '2001:db8:a::1/64', 'lan0');
  await lab.ip('c', 'route', 'add', `${ENDPOINT}/32`, 'via', '192.0.2.1');
  await lab.ip('h', 'addr', 'add', '203.0.113.100/25', 'dev', 'eth0');
  await addr6('h', `${ACME_HOST6}/64`, 'eth0');
  await lab.ip('h', '-6', 'route', 'add', 'default', 'via', '2001:db8:a::1');
  await lab.exec('c', 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
  await lab.exec('c', 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  for (const ns of ['e', 'h']) await lab.exec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  for (const side of ['s', 'c']) {
    const pins = await loadEdge(`${lab.prefix}${side}`);
    if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
    edges.push(pins.value);
  }
  // The customer router: its tunnel device keeps IPv6 (without an address of its own: the
  // eyeballs' net is routed straight into it); the outer end needs none.
  const c = 'c';
  await lab.veth(c, 'ctun0', c, 'ctun0p', { indexA: 3001 });
  for (const dev of ['ctun0', 'ctun0p']) await lab.ip(c, 'link', 'set', dev, 'arp', 'off');
  await lab.ip(c, 'link', 'set', 'dev', 'ctun0', 'addrgenmode', 'none');
  await lab.exec(c, 'sysctl', ['-qw', 'net.ipv6.conf.ctun0p.disable_ipv6=1']);
  await lab.ip(c, 'link', 'set', 'ctun0', 'mtu', String(TUNNEL_MTU));
  await lab.ip(c, '-6', 'route', 'add', '2001:db8:e::/64', 'dev', 'ctun0');
  const pins = edges[1] as EdgePins;
  const m = new EdgeMaps(pins);
  const tunMac = await lab.mac(c, 'ctun0');
  const outerMac = await lab.mac(c, 'ctun0p');
  const must = (r: { ok: boolean }) => assert.ok(r.ok, JSON.stringify(r));
  must(await m.putEndpoint(ROUTER));
  must(await m.putDecap({ remote: ENDPOINT, local: ROUTER }, { ifindex: await lab.ifindex(c, 'ctun0p'), srcMac: outerMac, dstMac: tunMac, statsIdx: 1 }));
  must(await m.putEncap(3001, { local: ROUTER, remote: ENDPOINT, outIfindex: 0, mtu: TUNNEL_MTU, ttl: 64, srcMac: tunMac, dstMac: outerMac, statsIdx: 1 }));
  await nsenter(c, 'ip', 'link', 'set', 'dev', 'wan0', 'xdpdrv', 'pinned', pins.progs.xdpEdge);
  await nsenter(c, 'ip', 'link', 'set', 'dev', 'ctun0', 'xdpdrv', 'pinned', pins.progs.xdpPass);
  await nsenter(c, 'tc', 'qdisc', 'add', 'dev', 'ctun0', 'clsact');
  await nsenter(c, 'tc', 'filter', 'add', 'dev', 'ctun0', 'egress', 'bpf', 'direct-action', 'pinned', pins.progs.tcGreEncap);
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

async function ping6(from: string, to: string, count = 2): Promise<boolean> {
  const r = await lab.tryExec(from, 'ping', ['-6', '-c', String(count), '-i', '0.2', '-W', '1', to]);
  return r.ok && new RegExp(`${count} received`).test(r.stdout);
}

let mainBefore = '';

test('IPv6: provisioning puts tenant IPv6 routes in place; a second pass has nothing to do', async (t) => {
  if (!ready(t)) return;
  mainBefore = (await lab.ip('s', '-4', '-j', 'route', 'show', 'table', 'main')) + (await lab.ip('s', '-6', '-j', 'route', 'show', 'table', 'main'));
  assert.ok(env);
  const d = desired();
  const p = await plan(env, d);
  assert.ok(p.ok);
  const r = await apply(p.value);
  if (r.failed) assert.fail(`apply: ${r.failed.step.path}: ${r.failed.error.message}\nplan was:\n${formatPlan(p.value)}`);
  assert.equal(await planText(d), 'nothing to do\n');
  assert.match(await lab.ip('s', '-6', 'rule', 'show'), /fwmark 0xae lookup 100/);
  // Through the tenant end's link-local address, on the wire device: no per-wire route in transit.
  const transit6 = await lab.ip('s', '-6', 'route', 'show', 'table', '100');
  assert.match(transit6, /^2001:db8:a::\/48 via fe80::2 dev \S+w\S+ proto 174/m);
  assert.doesNotMatch(transit6, /2001:db8:ffff::/);
  const acme = d.netns[0]?.name as string;
  assert.match(await lab.sh('ip', ['-n', acme, '-6', 'route', 'show', 'default']), /default via fe80::1 dev \S+up proto 174/);
  assert.match(await lab.sh('ip', ['-n', acme, '-6', 'route', 'show']), /2001:db8:a::\/48 via fe80::1 dev \S+gre1 proto 174 metric 100/);
});

test('IPv6: ping -6 and TCP with data reach the Acme host through anycast GRE (IPv4 outer) and come back', async (t) => {
  if (!ready(t)) return;
  assert.ok(await ping6('e', ACME_HOST6, 3), 'ping -6 eyeball → acme host');
  const server = lab.spawn('h', process.execPath, ['-e', `require('net').createServer(s=>s.pipe(s)).listen(21,'${ACME_HOST6}',()=>console.log('listening'))`]);
  const [line] = (await once(server.stdout!, 'data')) as [Buffer];
  assert.match(line.toString(), /listening/);
  const r = await lab.tryExec('e', process.execPath, [
    '-e',
    `const s=require('net').connect(21,'${ACME_HOST6}',()=>s.end('hello over IPv6'));let d='';s.on('data',b=>d+=b);s.on('close',()=>{console.log(d);process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(2)});setTimeout(()=>{console.log('timeout');process.exit(3)},2000).unref()`,
  ]);
  assert.equal(r.stdout.trim(), 'hello over IPv6');
  const d = desired();
  const stats = await new EdgeMaps(edges[0] as EdgePins).tunnelStats(d.encap.find((e) => e.path === 'tenants/acme/tunnels/gre1')?.entry.statsIdx ?? -1);
  assert.ok(stats.ok && stats.value.encapPackets >= 3n && stats.value.decapPackets >= 3n);
});

test('IPv6: a packet from acme\'s tunnel to globex\'s IPv6 space is dropped at the server and counted', async (t) => {
  if (!ready(t)) return;
  assert.ok(kernel);
  const count = async () => {
    const c = await (kernel as Kernel).nft.counters(lab.ns('s'), { family: 'inet', name: `${marks.prefix}transit` });
    if (!c.ok) assert.fail(c.error.message);
    return c.value.find((x) => x.kind === 'named' && x.name === 'cross_tenant')?.packets ?? -1;
  };
  const before = await count();
  await lab.ip('c', '-6', 'route', 'add', '2001:db8:b::/48', 'dev', 'ctun0');
  try {
    assert.equal(await ping6('h', GLOBEX_HOST6), false);
  } finally {
    await lab.ip('c', '-6', 'route', 'del', '2001:db8:b::/48', 'dev', 'ctun0');
  }
  assert.ok((await count()) >= before + 2, 'dropped at the server and counted');
});

test('IPv6: an IPv6 packet too big for the tunnel gets ICMPv6 "packet too big" with the tunnel MTU', async (t) => {
  if (!ready(t)) return;
  // 1452 bytes of payload + 8 (ICMPv6) + 40 (IPv6) = 1500: fits the eyeball's link, not the tunnel.
  const r = await lab.tryExec('e', 'ping', ['-6', '-M', 'do', '-c', '1', '-W', '1', '-s', '1452', ACME_HOST6]);
  assert.match(r.stdout + r.stderr, new RegExp(`Packet too big: mtu=${TUNNEL_MTU}`));
  // Just under the tunnel MTU still goes through.
  assert.ok((await lab.tryExec('e', 'ping', ['-6', '-M', 'do', '-c', '1', '-W', '1', '-s', String(TUNNEL_MTU - 48), ACME_HOST6])).ok);
});

test('IPv6: nothing was added to the server\'s main tables (IPv4 or IPv6)', async (t) => {
  if (!ready(t)) return;
  const now = (await lab.ip('s', '-4', '-j', 'route', 'show', 'table', 'main')) + (await lab.ip('s', '-6', '-j', 'route', 'show', 'table', 'main'));
  assert.equal(now, mainBefore);
});
