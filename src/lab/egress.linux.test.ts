/**
 * The lab for soft-unicast egress on the real kernel: `lab up` at 2 DCs × 2 servers (LMDB store),
 * then
 * - the backbone: every server reaches every server of the other DC over the DC routers'
 *   backbone LAN (ping, and the backbone bridge's ports count the packets), which is the path the
 *   XDP steering takes to forward a reply to its owner in another DC;
 * - the Internet host: BGP sessions with every DC, the anycast and egress ranges learned and
 *   routed to the first DC (the others prepend), and its HTTP service answers every server with
 *   that server's own address (the DCs announce their server LANs as unicast);
 * - the geofeed `lab up` writes for the proxies gives each eyeball its city's country;
 * - 1,000 proxied tunnels from two countries, none lost, each from the right address and slice;
 *   replies the Internet delivers to the DC that does not own their address, forwarded by XDP
 *   over the backbone; a server drained with live tunnels; an egress address moved between DCs.
 * A unique lab id per run; `lab down` also runs in `after`, so a failure leaves nothing behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { main } from '../cli/main.ts';
import type { Io } from '../cli/io.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { routes } from '../kernel/labnet.ts';
import { GeoTable, parseGeofeed } from '../proxy/geoip.ts';
import { bgpSessions } from './bgp.ts';
import { labDown } from './down.ts';
import { egressOwnership } from '../compile/egress/ownership.ts';
import { parseConfig } from '../model/config.ts';
import { formatIssue } from '../model/issue.ts';
import { LAB_EGRESS_POOLS, LAB_PROXY_SERVICES, labEgressIp } from './config-doc.ts';
import { serverStatusSchema, statusKey } from '../model/status.ts';
import { openStore, parseStoreSpec } from '../store/open.ts';
import type { ConfigStore } from '../store/types.ts';
import { startLabApi, type LabApi } from './api.ts';
import { sleep } from './procs.ts';
import { readState } from './state.ts';
import { captureOnInternet, counterDelta, devPackets, inNode, labPoolOf, routeEgressVia, sliceOwners, steerCounters, tcpConnections, whoami, type SliceOwner } from './egress-harness.ts';
import { ProxyClients, type TunnelResult, type TunnelSpec } from './proxy-client.ts';
import { labPrefix, nodeNs } from './names.ts';
import { labDir } from './state.ts';
import { planLab, type LabPlan } from './topology.ts';
import { geofeedPath, requiredTools, waitUntil } from './up.ts';

// Two base-36 characters from the pid, offset from lab.linux.test.ts's choice so the two files
// can run at once.
const id = ((process.pid + 611) % 1296).toString(36).padStart(2, '0');
const prefix = labPrefix(id);
let runDir: string | null = null;
let plan: LabPlan | null = null;

function capture(): Io & { text(): string; errors(): string } {
  let out = '';
  let errs = '';
  return { out: (t) => void (out += t), err: (t) => void (errs += t), text: () => out, errors: () => errs };
}

async function cli(sub: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await main(['node', 'anyedge', 'lab', sub, '--id', id, '--run-dir', runDir as string, ...args], io);
  return { code, out: io.text(), err: io.errors() };
}

let upError: string | null = null;

before(async () => {
  if (!(process.getuid?.() === 0) || missingObjects().length) return;
  runDir = await mkdtemp(join(tmpdir(), 'anyedge-egress-'));
  const p = planLab(id, { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) throw new Error(p.error.message);
  plan = p.value;
  const up = await cli('up', '--dcs', '2', '--servers', '2', '--store', 'lmdb', '--timeout', '90');
  if (up.code !== 0) upError = `lab up failed:\n${up.err}\n${up.out}`;
});

after(async () => {
  if (runDir) {
    await labDown({ id, runDir });
    await rm(runDir, { recursive: true, force: true });
  }
});

/** The lab, once `before` brought it up; fails the test with lab up's output otherwise. */
function lab(t: Parameters<typeof needs>[0]): LabPlan | null {
  if (!needs(t, { root: true, tools: [...requiredTools('lmdb'), 'tshark', 'ss'] })) return null;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.equal(upError, null, upError ?? '');
  assert.ok(plan, 'no plan');
  return plan;
}

test('backbone: every server reaches every server of the other DC through the DC routers\' backbone LAN', async (t) => {
  const p = lab(t);
  if (!p) return;
  const [a, b] = p.dcs as [LabPlan['dcs'][number], LabPlan['dcs'][number]];
  const before = { a: await devPackets(p, 'bb', a.id), b: await devPackets(p, 'bb', b.id) };
  let pings = 0;
  for (const [from, to] of [[a, b], [b, a]] as const)
    for (const s of from.servers)
      for (const d of to.servers) {
        const target = d.address.split('/')[0] as string;
        await inNode(p, s.node, ['ping', '-c', '1', '-W', '2', target]);
        pings++;
        // The DC router's route to the other DC's servers goes over the backbone.
        const r = await inNode(p, from.router, ['ip', '-j', 'route', 'get', target]);
        const [route] = JSON.parse(r.stdout) as Array<{ dev: string; gateway: string }>;
        assert.deepEqual([route?.dev, route?.gateway], ['bb0', to.backboneIp], `${from.router} → ${target}`);
      }
  const now = { a: await devPackets(p, 'bb', a.id), b: await devPackets(p, 'bb', b.id) };
  // Each ping is a request and a reply, each crossing both DCs' ports of the backbone bridge.
  for (const k of ['a', 'b'] as const) {
    assert.ok(now[k].rx - before[k].rx >= pings, `backbone port ${k}: ${JSON.stringify({ before: before[k], now: now[k] })}`);
    assert.ok(now[k].tx - before[k].tx >= pings, `backbone port ${k}: ${JSON.stringify({ before: before[k], now: now[k] })}`);
  }
});

test('the Internet host: BGP with every DC, the egress and anycast ranges routed to the first DC, HTTP answers each server with its own address', async (t) => {
  const p = lab(t);
  if (!p) return;
  const dir = labDir(runDir as string, prefix);
  const sessions = await bgpSessions(dir, p.internet.node);
  assert.ok(sessions.ok, sessions.ok ? '' : sessions.error.message);
  assert.deepEqual(sessions.value.map((s) => [s.neighbor, s.established]), p.dcs.map((d) => [d.id, true]));
  const r = await routes(nodeNs(prefix, p.internet.node));
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const via = (dst: string): unknown => r.value.find((x) => x.dst === dst)?.gateway;
  for (const range of ['198.51.100.64/26', '198.51.100.0/28']) assert.equal(via(range), p.dcs[0]?.ixIp, `${range}: ${JSON.stringify(r.value)}`);
  for (const dc of p.dcs) assert.equal(via(dc.lan), dc.ixIp, `${dc.id}'s servers are reached through ${dc.id}`);
  for (const dc of p.dcs)
    for (const s of dc.servers) {
      const seen = await whoami(p, s.node, `/from-${s.node}`);
      assert.equal(seen.peer, s.address.split('/')[0], `${s.node}: ${JSON.stringify(seen)}`);
      assert.equal(seen.path, `/from-${s.node}`);
    }
  const log = readFileSync(join(dir, 'logs', 'internet.log'), 'utf8');
  for (const dc of p.dcs) for (const s of dc.servers) assert.ok(log.includes(`"path":"/from-${s.node}"`), `the Internet host logged ${s.node}'s request`);
});

test('the geofeed lab up writes gives each eyeball its city\'s country (lon GB, nyc US) and nothing else', async (t) => {
  const p = lab(t);
  if (!p) return;
  const text = readFileSync(geofeedPath(labDir(runDir as string, prefix)), 'utf8');
  const rows = parseGeofeed(text, 'geofeed.csv');
  assert.ok(rows.ok, rows.ok ? '' : rows.error.map((e) => e.message).join('\n'));
  const table = new GeoTable(rows.value, null);
  const country = (ip: string): string | null => {
    const r = table.lookup(ip);
    return r.ok ? r.value.country : null;
  };
  assert.deepEqual(p.cities.map((c) => [c.id, country(c.eyeballIp)]), [['lon', 'GB'], ['nyc', 'US']]);
  assert.ok(!table.lookup(p.internet.ip).ok);
});

/** The config the lab wrote, parsed, and who owns which egress ports by it. */
function ownersOf(p: LabPlan): (ip: string, port: number) => SliceOwner | null {
  const config = parseConfig(p.config);
  if (!config.ok) assert.fail(config.error.map(formatIssue).join('\n'));
  const own = egressOwnership(config.value);
  if (!own.ok) assert.fail(own.error.message);
  return sliceOwners(own.value);
}

/**
 * Every server's established connections from eyeballs to a proxy: `service ip:port|eyeball
 * ip:port` → server node (an eyeball may use one source port toward both services).
 */
async function proxyingServers(p: LabPlan): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const listens = new Set(p.proxies.map((x) => `${x.ip}:${x.port}`));
  for (const dc of p.dcs)
    for (const s of dc.servers)
      for (const c of await tcpConnections(p, s.node)) if (listens.has(c.local)) out.set(`${c.local}|${c.peer}`, s.node);
  return out;
}

const CONNECTIONS = 1000;

test(`${CONNECTIONS} proxied connections from eyeballs in two countries leave from egress addresses of their country and class, each from the slice of the server that proxied it (tshark on the Internet side)`, async (t) => {
  const p = lab(t);
  if (!p) return;
  const owner = ownersOf(p);
  // Each egress address's replies go to the DC that owns it (cross-DC delivery is the next test).
  const config = parseConfig(p.config);
  assert.ok(config.ok);
  await routeEgressVia(p, new Map(Object.entries(config.value.egress.assign).map(([ip, a]) => [ip, a.dc])));
  const synFilter = `tcp dst port ${p.internet.httpPort} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn`;
  const cap = await captureOnInternet(p, synFilter, ['ip.src', 'tcp.srcport']);
  const eyeballs = p.cities.slice(0, 2);
  const clients = eyeballs.map((c) => ProxyClients.start(nodeNs(prefix, c.eyeball)));
  try {
    const per = CONNECTIONS / eyeballs.length;
    const results = await Promise.all(eyeballs.map((city, k) =>
      clients[k]!.open(Array.from({ length: per }, (_, i) => {
        const svc = LAB_PROXY_SERVICES[i % LAB_PROXY_SERVICES.length]!;
        return { id: `${city.id}-${i}-${svc.class}`, proxyIp: svc.ip, proxyPort: svc.port, targetIp: p.internet.ip, targetPort: p.internet.httpPort, kind: 'http' as const };
      }), 50, 15_000)));
    // Who proxied each tunnel, from the servers' own socket tables while every tunnel is open.
    const servers = await proxyingServers(p);
    const wanted = results.flat().flatMap((r) => (r.egress ? [`${r.egress.ip}:${r.egress.port}`] : []));
    const rows = await cap.stop({ seen: (rs) => { const s = new Set(rs.map(([ip, port]) => `${ip}:${port}`)); return wanted.every((w) => s.has(w)); }, ms: 10_000 });
    const onWire = new Set(rows.map(([ip, port]) => `${ip}:${port}`));
    const problems: string[] = [];
    const notUp: string[] = [];
    const leftFrom = new Map<string, number>();
    eyeballs.forEach((city, k) => {
      for (const r of results[k]!) {
        const svc = LAB_PROXY_SERVICES.find((x) => x.class === r.id.split('-')[2])!;
        const svcClass = svc.class;
        if (r.status !== 200 || !r.egress) {
          notUp.push(`${r.id}: ${r.status ?? ''} ${r.reason ?? r.error ?? ''}`);
          continue;
        }
        const where = `${r.id} (${city.eyeballIp}:${r.eyeballPort} → ${r.egress.ip}:${r.egress.port})`;
        const pool = labPoolOf(r.egress.ip);
        if (pool?.country !== city.country || pool.class !== svcClass) problems.push(`${where}: left from pool ${pool?.id ?? 'none'}, wanted ${svcClass}/${city.country}`);
        const server = servers.get(`${svc.ip}:${svc.port}|${city.eyeballIp}:${r.eyeballPort}`);
        const o = owner(r.egress.ip, r.egress.port);
        if (!server) problems.push(`${where}: no server holds the eyeball's connection`);
        else if (!o || `${o.dc}-${o.server}` !== server) problems.push(`${where}: proxied by ${server} but port ${r.egress.port} is slice ${o?.slice} of ${o ? `${o.dc}-${o.server}` : 'nobody'}`);
        if (!onWire.has(`${r.egress.ip}:${r.egress.port}`)) problems.push(`${where}: tshark saw no SYN from ${r.egress.ip}:${r.egress.port}`);
        if (server) leftFrom.set(server, (leftFrom.get(server) ?? 0) + 1);
      }
    });
    // Nothing reached the Internet host unless translated into an egress address.
    const strays = rows.filter(([ip]) => !labPoolOf(ip as string));
    t.diagnostic(`tunnels per server: ${JSON.stringify(Object.fromEntries(leftFrom))}; SYNs captured: ${rows.length}; not set up: ${notUp.length}${notUp.length ? ` (${notUp.join('; ')})` : ''}`);
    assert.deepEqual(strays, [], 'SYNs from outside the egress pools');
    // Every tunnel that came up left from the right address and slice: no exception.
    assert.deepEqual(problems.slice(0, 20), [], `${problems.length} of ${CONNECTIONS} tunnels left wrongly`);
    // Every one comes up: a flow the DC router hands to a server that does not own it is forwarded
    // by XDP (xdp_pass on the bridge port takes the XDP_TX frame; accept_local lets the first
    // packet toward an unresolved neighbour through the kernel), so none is lost.
    assert.equal(notUp.length, 0, `${notUp.length} of ${CONNECTIONS} tunnels did not come up: ${notUp.slice(0, 20).join('; ')}`);
    assert.equal([...leftFrom.values()].reduce((a, b) => a + b, 0), CONNECTIONS - notUp.length);
    // Both DCs and every server took part (ECMP spreads each city's flows over its DC's servers).
    assert.equal(leftFrom.size, p.dcs.reduce((n, d) => n + d.servers.length, 0), JSON.stringify(Object.fromEntries(leftFrom)));
  } finally {
    for (const c of clients) await c.close();
    await routeEgressVia(p, new Map(Object.keys(config.value.egress.assign).map((ip) => [ip, null])));
  }
});

/** The lab's REST API over its store, for the tests that change the config as an operator does. */
async function labApiAndStore(): Promise<{ api: LabApi; store: ConfigStore }> {
  const st = readState(labDir(runDir as string, prefix));
  if (!st.ok) assert.fail(st.error.message);
  const api = await startLabApi(st.value.store.spec);
  if (!api.ok) assert.fail(api.error.message);
  const spec = parseStoreSpec(st.value.store.spec);
  assert.ok(spec.ok);
  const store = await openStore(spec.value);
  if (!store.ok) assert.fail(store.error.message);
  return { api: api.value, store: store.value };
}

/** Waits until every agent has applied the store's current revision (what the write made). */
async function allApplied(p: LabPlan, store: ConfigStore, ms = 60_000): Promise<void> {
  const rev = await store.list('/dcs/');
  if (!rev.ok) assert.fail(rev.error.message);
  const want = rev.value.revision;
  const ok = await waitUntil(ms, async () => {
    for (const a of p.agents) {
      const kv = await store.get(statusKey(a.dc, a.server));
      const s = kv.ok && kv.value ? serverStatusSchema.safeParse(kv.value.value) : null;
      if (!s?.success || s.data.appliedRevision < want) return false;
    }
    return true;
  });
  assert.ok(ok, `the agents did not all apply revision ${want} within ${ms} ms`);
}

/** Tunnels from one city to both services, `kind` each, ids `<tag>-<i>-<class>`. */
function specs(p: LabPlan, tag: string, n: number, kind: 'http' | 'echo', classes: ReadonlyArray<(typeof LAB_PROXY_SERVICES)[number]['class']> = ['trusted', 'untrusted']): TunnelSpec[] {
  return Array.from({ length: n }, (_, i) => {
    const svc = LAB_PROXY_SERVICES.find((x) => x.class === classes[i % classes.length])!;
    return { id: `${tag}-${i}-${svc.class}`, proxyIp: svc.ip, proxyPort: svc.port, targetIp: p.internet.ip, targetPort: kind === 'http' ? p.internet.httpPort : p.internet.echoPort, kind };
  });
}

function failed(results: readonly TunnelResult[]): string[] {
  return results.filter((r) => r.status !== 200 || (r.id.includes('http') && !r.egress)).map((r) => `${r.id}: ${r.status ?? ''} ${r.reason ?? r.error ?? ''}`);
}

test('replies reach their owner when the Internet delivers them to another DC: every egress address routed to a DC that does not own it, tunnels from both cities still answer, their replies forwarded by XDP over the backbone', async (t) => {
  const p = lab(t);
  if (!p) return;
  const config = parseConfig(p.config);
  assert.ok(config.ok);
  const owner = ownersOf(p);
  const wrong = new Map(Object.entries(config.value.egress.assign).map(([ip, a]) => [ip, p.dcs.find((d) => d.id !== a.dc)!.id]));
  await routeEgressVia(p, wrong);
  const eyeballs = p.cities.slice(0, 2);
  const clients = eyeballs.map((c) => ProxyClients.start(nodeNs(prefix, c.eyeball)));
  try {
    const before = await steerCounters(p);
    const bbBefore = await Promise.all(p.dcs.map((d) => devPackets(p, 'bb', d.id)));
    const results = await Promise.all(eyeballs.map((c, k) => clients[k]!.open(specs(p, `${c.id}-http`, 50, 'http'), 25, 15_000)));
    assert.deepEqual(results.flatMap(failed), []);
    eyeballs.forEach((c, k) => {
      for (const r of results[k]!) {
        const o = owner(r.egress!.ip, r.egress!.port);
        assert.equal(o?.dc, c.prefers[0], `${r.id} left from ${r.egress!.ip}, owned by ${o?.dc}, but ${c.id} lands in ${c.prefers[0]}`);
        assert.notEqual(wrong.get(r.egress!.ip), o?.dc, 'the Internet routes it to another DC');
      }
    });
    // Again through the open tunnels: every reply still crosses to the owner.
    const probes = (await Promise.all(clients.map((c) => c.probe(5000)))).flat();
    assert.deepEqual(probes.filter((x) => !x.ok), []);
    const forwarded = counterDelta(before, await steerCounters(p), 'egress_forward');
    const bbNow = await Promise.all(p.dcs.map((d) => devPackets(p, 'bb', d.id)));
    t.diagnostic(`egress replies forwarded by XDP per server: ${JSON.stringify(forwarded)}; backbone ports rx: ${p.dcs.map((d, i) => `${d.id} +${bbNow[i]!.rx - bbBefore[i]!.rx}`).join(', ')}`);
    // Each tunnel's SYN-ACK and two answers at least, all delivered to the wrong DC first.
    for (const dc of p.dcs) {
      const sum = dc.servers.reduce((n, s) => n + (forwarded[s.node] ?? 0), 0);
      assert.ok(sum >= 3 * 50, `${dc.id} forwarded ${sum} replies of the other DC's tunnels: ${JSON.stringify(forwarded)}`);
    }
    p.dcs.forEach((d, i) => assert.ok(bbNow[i]!.rx - bbBefore[i]!.rx >= 3 * 50, `backbone port of ${d.id}`));
  } finally {
    for (const c of clients) await c.close();
    await routeEgressVia(p, new Map([...wrong.keys()].map((ip) => [ip, null])));
  }
});

test('a server drained (state draining through the API) with live proxied tunnels loses none of them; new tunnels go to the other servers; back to active', async (t) => {
  const p = lab(t);
  if (!p) return;
  const city = p.cities[0]!;
  const dc = p.dcs.find((d) => d.id === city.prefers[0])!;
  const client = ProxyClients.start(nodeNs(prefix, city.eyeball));
  const { api, store } = await labApiAndStore();
  const target = dc.servers[0]!;
  const put = (state: string): Promise<{ status: number; body: unknown }> => api.call('PUT', `/v1/dcs/${dc.id}/servers/${target.id}`, { uplink: 'eth0', addresses: [target.address], state });
  try {
    const opened = await client.open(specs(p, 'drain', 40, 'http'), 20, 15_000);
    assert.deepEqual(failed(opened), []);
    const servers = await proxyingServers(p);
    const onTarget = [...servers.values()].filter((n) => n === target.node).length;
    assert.ok(onTarget > 0, `no tunnel on ${target.node} to drain: ${JSON.stringify([...servers])}`);
    const r = await put('draining');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await allApplied(p, store);
    // Live tunnels keep working through and after the drain (the draining server keeps its flows).
    for (let i = 0; i < 5; i++) {
      const probes = await client.probe(5000);
      assert.deepEqual(probes.filter((x) => !x.ok), [], `probe ${i + 1} after draining ${target.node}`);
      await sleep(500);
    }
    // New tunnels: none lands on the draining server.
    const more = await client.open(specs(p, 'drained', 40, 'http'), 20, 15_000);
    assert.deepEqual(failed(more), []);
    const now = await proxyingServers(p);
    const svcOf = (id: string): string => LAB_PROXY_SERVICES.find((x) => x.class === id.split('-')[2])!.ip;
    const newOnTarget = more.filter((m) => now.get(`${svcOf(m.id)}:3128|${city.eyeballIp}:${m.eyeballPort}`) === target.node);
    assert.deepEqual(newOnTarget.map((m) => m.id), [], `new tunnels on the draining ${target.node}`);
    t.diagnostic(`${onTarget} of 40 live tunnels were on ${target.node} when it drained; all answered; 40 new ones avoided it`);
    const probes = await client.probe(5000);
    assert.deepEqual(probes.filter((x) => !x.ok), []);
  } finally {
    await client.close();
    const back = await put('active');
    assert.equal(back.status, 200, JSON.stringify(back.body));
    await allApplied(p, store);
    await api.close();
    await store.close();
  }
});

test('an egress address moved to another DC through the API: its established tunnels stall (documented), the DC\'s other address keeps its tunnels, new tunnels leave from what the DC still owns', async (t) => {
  const p = lab(t);
  if (!p) return;
  const city = p.cities[0]!;
  const home = city.prefers[0]!;
  const other = p.dcs.find((d) => d.id !== home)!.id;
  const pool = LAB_EGRESS_POOLS.find((x) => x.country === city.country && x.class === 'trusted')!;
  const d = p.dcs.findIndex((x) => x.id === home);
  const moving = labEgressIp(pool, d, p.dcs.length, 0)!;
  const staying = labEgressIp(pool, d, p.dcs.length, 1)!;
  const client = ProxyClients.start(nodeNs(prefix, city.eyeball));
  const { api, store } = await labApiAndStore();
  try {
    const opened = await client.open(specs(p, 'move-http', 40, 'http', ['trusted']), 20, 15_000);
    assert.deepEqual(failed(opened), []);
    const from = (ip: string): string[] => opened.filter((r) => r.egress?.ip === ip).map((r) => r.id);
    assert.ok(from(moving).length > 0 && from(staying).length > 0, `tunnels from both ${moving} and ${staying}: ${JSON.stringify(opened.map((r) => r.egress))}`);
    const r = await api.call('POST', '/v1/egress/assign', { set: { [moving]: { dc: other } } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await allApplied(p, store);
    const own = await api.call('GET', '/v1/egress/ownership');
    assert.match(JSON.stringify(own.body), new RegExp(`"${moving.replace(/\./g, '\\.')}"[^}]*"dc":"${other}"`));
    // What happens to the established ones (proxy/config-follow.ts): the proxy does not cut them,
    // but the address left the server's lo and SNAT, and its replies are steered to the new
    // owner, which has no state for them: they get no answer (or a reset) from now on.
    const probes = await client.probe(3000);
    const bad = new Set(probes.filter((x) => !x.ok).map((x) => x.id));
    assert.deepEqual(from(moving).filter((id) => !bad.has(id)), [], `tunnels from the moved ${moving} should stall`);
    assert.deepEqual(from(staying).filter((id) => bad.has(id)), [], `tunnels from ${staying} (still ${home}'s) must keep working`);
    // New tunnels from the same eyeball leave from the address the DC still owns.
    const fresh = await client.open(specs(p, 'moved-http', 20, 'http', ['trusted']), 10, 15_000);
    assert.deepEqual(failed(fresh), []);
    assert.deepEqual([...new Set(fresh.filter((f) => f.egress).map((f) => f.egress!.ip))], [staying]);
    t.diagnostic(`${from(moving).length} tunnels from ${moving} stalled after it moved ${home} → ${other}; ${from(staying).length} from ${staying} kept working; 20 new ones left from ${staying}`);
  } finally {
    await client.close();
    const back = await api.call('POST', '/v1/egress/assign', { set: { [moving]: { dc: home } } });
    assert.equal(back.status, 200, JSON.stringify(back.body));
    await allApplied(p, store);
    await api.close();
    await store.close();
  }
});
