/**
 * The egress proxy on the real kernel: `anyedge proxy` runs in a server namespace, its egress
 * addresses on lo and their SNAT into this server's 64-port slice put there by the reconciler
 * (the agent's job) from the same store the proxy follows; eyeballs in two "countries" connect
 * through it to an Internet namespace whose server reports the source address and port it sees.
 *
 *   eyeball(e) eth0 192.0.2.10 (NL), 192.0.2.140 (US) /24 ── 192.0.2.1/24 eye0 server(s)
 *   server(s)  lo: 198.51.100.2 (proxy :3128), egress 198.51.100.64 (NL), .80 (US), .96 (NL, untrusted)
 *              eth0 198.51.100.249/30 ── 198.51.100.250/30 inet0 internet(i): 203.0.113.1–80 on lo,
 *              a server on :7007 that answers "<source ip>:<source port>" and then echoes
 *
 * The config has two data centers; 198.51.100.65 (NL, trusted) starts in par and is moved to lon
 * (this server's) and back during the test.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { compileServer } from '../compile/server.ts';
import { serverEgress } from '../compile/egress/server.ts';
import { configOf, egressDoc, type Doc } from '../compile/egress/fixtures.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import { apply, formatPlan, plan, type ReconcileEnv } from '../agent/reconcile.ts';
import { configToEntries } from '../model/keyspace.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openLmdbStore } from '../store/lmdb.ts';
import type { ConfigStore } from '../store/types.ts';
import type { Config } from '../model/config.ts';

const lab = new NetLab('X');
// Not a prefix of the lab's namespace names (`aeX…`): our tables carry this one.
const marks = marksWith({ prefix: `x${(process.pid % 10000).toString(36)}p` });
const PEER = fileURLToPath(new URL('./testdata/peer.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../bin/anyedge.mjs', import.meta.url));
const SERVICE = '198.51.100.2:3128';
const PORT = 7007;
const NL_EYE = '192.0.2.10';
const US_EYE = '192.0.2.140';
const DSTS = Array.from({ length: 80 }, (_, i) => `203.0.113.${i + 1}`);
// Destinations no other test connects to: a closed connection's conntrack entry stays in
// TIME_WAIT for two minutes and keeps its NAT port towards that destination taken meanwhile.
const FRESH = ['203.0.113.100', '203.0.113.101', '203.0.113.102'];

let store: ConfigStore | null = null;
let storeDir = '';
let env: ReconcileEnv | null = null;
let proxy: ChildProcess | null = null;
let eyeball: Eyeball | null = null;
const proxyLog: string[] = [];
let setupError: Error | null = null;

/** The config: two DCs; lon/s1 is this server. `where65` is the DC owning 198.51.100.65. */
function doc(where65: 'lon' | 'par'): Doc {
  const d = egressDoc();
  d.anycast.services = ['198.51.100.2'];
  d.egress.pools = {
    'nl-trusted': { cidrs: ['198.51.100.64/31'], tags: { class: 'trusted', country: 'NL' }, sliceSize: 64 },
    'us-trusted': { cidrs: ['198.51.100.80/32'], tags: { class: 'trusted', country: 'US' }, sliceSize: 64 },
    'nl-untrusted': { cidrs: ['198.51.100.96/32'], tags: { class: 'untrusted', country: 'NL' }, sliceSize: 64 },
  };
  d.egress.assign = { '198.51.100.64': { dc: 'lon' }, '198.51.100.65': { dc: where65 }, '198.51.100.80': { dc: 'lon' }, '198.51.100.96': { dc: 'lon' } };
  return d;
}

/** This server's port slice of `ip` under config `c`. */
function sliceOf(c: Config, ip: string): { lo: number; hi: number } {
  const mine = serverEgress(c, 'lon', 's1');
  if (!mine.ok) throw new Error(mine.error.message);
  const a = mine.value.find((x) => x.ip === ip);
  if (!a) throw new Error(`${ip} is not lon/s1's`);
  return { lo: a.portLo, hi: a.portHi };
}

/** What the agent does: make the server namespace's egress state (lo addresses, SNAT) match. */
async function reconcile(c: Config): Promise<string> {
  assert.ok(env);
  const d = compileServer(c, { dc: 'lon', server: 's1' }, { marks, serverNs: lab.ns('s') });
  if (!d.ok) throw new Error(`${d.error.path}: ${d.error.message}`);
  const p = await plan(env, d.value);
  if (!p.ok) throw new Error(`plan: ${p.error.path}: ${p.error.message}`);
  const r = await apply(p.value);
  if (r.failed) throw new Error(`apply: ${r.failed.step.path}: ${r.failed.error.message}`);
  return formatPlan(p.value);
}

/**
 * Writes the assignment of .65 and waits until the proxy's latest address list (its log) agrees:
 * the test is the store's only writer, so the latest list is the one of this write.
 */
async function move65(to: 'lon' | 'par'): Promise<void> {
  assert.ok(store);
  const w = await store.put('/egress/assign/198.51.100.65', { dc: to });
  if (!w.ok) throw new Error(w.error.message);
  const want = to === 'lon';
  const deadline = Date.now() + 10_000;
  for (;;) {
    const lists = proxyLog.filter((l) => l.includes('"event":"addresses"')).map((l) => JSON.parse(l) as { revision: number; addresses: string[] });
    const latest = lists[lists.length - 1];
    if (latest && latest.addresses.some((a) => a.startsWith('198.51.100.65 ')) === want) return;
    if (Date.now() > deadline) throw new Error(`the proxy did not pick up revision ${w.value.revision}; its log:\n${proxyLog.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Opened {
  readonly id: number;
  readonly status: number;
  readonly egress?: string;
  readonly seen?: string;
  readonly body?: string;
  readonly error?: string;
}

/** Drives testdata/peer.mjs eyeball in the eyeball namespace. */
class Eyeball {
  #next = 1;
  readonly #waiting = new Map<number, (v: Record<string, unknown>) => void>();
  constructor(private readonly p: ChildProcess) {
    createInterface({ input: p.stdout! }).on('line', (line) => {
      const v = JSON.parse(line) as Record<string, unknown>;
      const id = v.id as number | undefined;
      if (id === undefined) return;
      this.#waiting.get(id)?.(v);
      this.#waiting.delete(id);
    });
  }
  #send(c: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      this.#waiting.set(c.id as number, resolve);
      this.p.stdin!.write(JSON.stringify(c) + '\n');
    });
  }
  open(src: string, dst: string, port = PORT): Promise<Opened> {
    return this.#send({ op: 'open', id: this.#next++, proxy: SERVICE, src, target: `${dst}:${port}`, timeoutMs: 8000 }) as Promise<unknown> as Promise<Opened>;
  }
  async echo(id: number, text: string, timeoutMs = 2000): Promise<string | null> {
    const r = await this.#send({ op: 'echo', id, text, timeoutMs });
    return typeof r.echo === 'string' ? r.echo : null;
  }
  async close(ids: readonly number[]): Promise<void> {
    await Promise.all(ids.map((id) => this.#send({ op: 'close', id })));
  }
}

async function metrics(): Promise<string> {
  return lab.exec('s', process.execPath, ['-e', "fetch('http://127.0.0.1:9475/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))"]);
}

function portOf(seen: string | undefined): { ip: string; port: number } {
  const [ip = '', port = ''] = (seen ?? '').split(':');
  return { ip, port: Number(port) };
}

async function build(): Promise<void> {
  await lab.addNs('e');
  await lab.addNs('s');
  await lab.addNs('i');
  await lab.veth('e', 'eth0', 's', 'eye0');
  await lab.veth('s', 'eth0', 'i', 'inet0');
  await lab.ip('e', 'addr', 'add', `${NL_EYE}/24`, 'dev', 'eth0');
  await lab.ip('e', 'addr', 'add', `${US_EYE}/24`, 'dev', 'eth0');
  await lab.ip('e', 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.1');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/24', 'dev', 'eye0');
  await lab.ip('s', 'addr', 'add', '198.51.100.2/32', 'dev', 'lo');
  await lab.ip('s', 'addr', 'add', '198.51.100.249/30', 'dev', 'eth0');
  await lab.ip('s', 'route', 'add', 'default', 'via', '198.51.100.250');
  await lab.ip('i', 'addr', 'add', '198.51.100.250/30', 'dev', 'inet0');
  await lab.ip('i', 'route', 'add', '198.51.100.64/26', 'via', '198.51.100.249');
  for (const d of [...DSTS, ...FRESH]) await lab.ip('i', 'addr', 'add', `${d}/32`, 'dev', 'lo');
  const srv = lab.spawn('i', process.execPath, [PEER, 'server', String(PORT)]);
  await once(srv.stdout!, 'data');

  storeDir = await mkdtemp(join(tmpdir(), 'ae-proxy-linux-'));
  const s = openLmdbStore({ path: join(storeDir, 'store'), validation: CONFIG_VALIDATION, pollIntervalMs: 10 });
  if (!s.ok) throw new Error(s.error.message);
  store = s.value;
  const config = configOf(doc('par'));
  const w = await store.txn({ then: [...configToEntries(config)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
  if (!w.ok) throw new Error(w.error.message);
  const kernel = linuxKernel(marks);
  env = { kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel) };
  await reconcile(config);

  proxy = lab.spawn('s', process.execPath, [CLI, 'proxy', '--listen', SERVICE, '--class', 'trusted', '--store', `lmdb:${join(storeDir, 'store')}`, '--server', 'lon/s1', '--metrics', '127.0.0.1:9475', '--connect-timeout', '2000']);
  createInterface({ input: proxy.stderr! }).on('line', (l) => proxyLog.push(l));
  const deadline = Date.now() + 30_000;
  while (!proxyLog.some((l) => l.includes('"event":"listening"'))) {
    if (proxy.exitCode !== null || Date.now() > deadline) throw new Error(`the proxy did not start: ${proxyLog.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const eye = lab.spawn('e', process.execPath, [PEER, 'eyeball']);
  await once(eye.stdout!, 'data');
  eyeball = new Eyeball(eye);
}

before(async () => {
  if (!isRoot() || !hasTool('nft')) return;
  try {
    await build();
  } catch (e) {
    setupError = e as Error;
  }
});

after(async () => {
  proxy?.stdin?.end();
  await lab.destroy();
  await store?.close();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

function ready(t: TestContext): Eyeball | null {
  if (!needs(t, { root: true, tools: ['ip', 'nft'] })) return null;
  if (setupError) throw setupError;
  assert.ok(eyeball);
  return eyeball;
}

test('tunnels leave from the egress address of the eyeball\'s country and the service\'s class, inside this server\'s slice', async (t) => {
  const eye = ready(t);
  if (!eye) return;
  const config = configOf(doc('par'));
  const nl = await Promise.all(DSTS.slice(0, 5).map((d) => eye.open(NL_EYE, d)));
  const us = await Promise.all(DSTS.slice(0, 5).map((d) => eye.open(US_EYE, d)));
  for (const [opened, ip] of [[nl, '198.51.100.64'], [us, '198.51.100.80']] as const) {
    const slice = sliceOf(config, ip);
    for (const o of opened) {
      assert.equal(o.status, 200, JSON.stringify(o));
      assert.equal(o.egress, ip);
      const seen = portOf(o.seen);
      assert.equal(seen.ip, ip, `the Internet saw ${o.seen}`);
      assert.ok(seen.port >= slice.lo && seen.port <= slice.hi, `port ${seen.port} outside ${ip}'s slice ${slice.lo}–${slice.hi}`);
      assert.equal(await eye.echo(o.id, `hello ${o.id}`), `hello ${o.id}`);
    }
  }
  await eye.close([...nl, ...us].map((o) => o.id));
});

test('80 concurrent tunnels to 80 destinations share one 64-port slice (ports reused across destinations)', async (t) => {
  const eye = ready(t);
  if (!eye) return;
  const slice = sliceOf(configOf(doc('par')), '198.51.100.64');
  const opened = await Promise.all(DSTS.map((d) => eye.open(NL_EYE, d)));
  const ports = opened.map((o) => {
    assert.equal(o.status, 200, JSON.stringify(o));
    const seen = portOf(o.seen);
    assert.equal(seen.ip, '198.51.100.64');
    assert.ok(seen.port >= slice.lo && seen.port <= slice.hi, `port ${seen.port} outside the slice ${slice.lo}–${slice.hi}`);
    return seen.port;
  });
  assert.ok(new Set(ports).size < ports.length, '80 connections in 64 ports: some port carries two destinations');
  assert.match(await metrics(), /anyedge_proxy_connections\{egress_ip="198\.51\.100\.64"\} 80/);
  const echoes = await Promise.all(opened.map((o) => eye.echo(o.id, `e${o.id}`)));
  assert.deepEqual(echoes, opened.map((o) => `e${o.id}`));
  await eye.close(opened.map((o) => o.id));
});

test('the 65th tunnel to ONE destination takes the second address once the config gives it to this server; both full is a clear 503', async (t) => {
  const eye = ready(t);
  if (!eye) return;
  const dst = FRESH[0]!;
  const first = await Promise.all(Array.from({ length: 64 }, () => eye.open(NL_EYE, dst)));
  const slice64 = sliceOf(configOf(doc('par')), '198.51.100.64');
  const ports64 = first.map((o) => {
    assert.equal(o.status, 200, JSON.stringify(o));
    assert.equal(portOf(o.seen).ip, '198.51.100.64');
    return portOf(o.seen).port;
  });
  assert.equal(new Set(ports64).size, 64, 'each connection to one destination has its own port');
  assert.ok(ports64.every((p) => p >= slice64.lo && p <= slice64.hi));
  const refused = await eye.open(NL_EYE, dst);
  assert.equal(refused.status, 503);
  assert.match(refused.body ?? '', /every eligible egress slice is full for class=trusted country=NL IPv4 → 203\.0\.113\.100:7007: 1 slice tried \(198\.51\.100\.64 ports \d+–\d+: 64\/64 live to it\)/);

  // 198.51.100.65 comes to this data center: the agent puts it on lo with its SNAT, the proxy sees
  // it in the store.
  const moved = configOf(doc('lon'));
  await move65('lon');
  assert.match(await reconcile(moved), /addr add 198\.51\.100\.65\/32 dev lo/);
  const slice65 = sliceOf(moved, '198.51.100.65');
  const second = await Promise.all(Array.from({ length: 64 }, () => eye.open(NL_EYE, dst)));
  for (const o of second) {
    assert.equal(o.status, 200, JSON.stringify(o));
    const seen = portOf(o.seen);
    assert.equal(seen.ip, '198.51.100.65', `the 65th+ tunnel to ${dst} should leave from the second address, the Internet saw ${o.seen}`);
    assert.ok(seen.port >= slice65.lo && seen.port <= slice65.hi, `port ${seen.port} outside .65's slice ${slice65.lo}–${slice65.hi}`);
  }
  const full = await eye.open(NL_EYE, dst);
  assert.equal(full.status, 503);
  assert.match(full.body ?? '', /every eligible egress slice is full for class=trusted country=NL IPv4 → 203\.0\.113\.100:7007: 2 slices tried \(198\.51\.100\.64 ports \d+–\d+: 64\/64 live to it; 198\.51\.100\.65 ports \d+–\d+: 64\/64 live to it\); retry when connections to this destination close, or add addresses to a trusted\/NL pool/);
  const m = await metrics();
  assert.match(m, /anyedge_proxy_slice_usage_ratio\{egress_ip="198\.51\.100\.64"\} 1/);
  assert.match(m, /anyedge_proxy_slice_usage_ratio\{egress_ip="198\.51\.100\.65"\} 1/);
  assert.match(m, /anyedge_proxy_requests_total\{result="exhausted"\} 2/);
  assert.match(m, /anyedge_proxy_slice_exhausted_total [1-9]/);
  // Another destination still has room on the same slices.
  const other = await eye.open(NL_EYE, DSTS[1]!);
  assert.equal(other.status, 200);
  await eye.close([...first, ...second, other].map((o) => o.id));
});

test('an egress address moved away: new tunnels stop using it at once; its open tunnels are left alone, and stall once the address leaves lo', async (t) => {
  const eye = ready(t);
  if (!eye) return;
  await move65('lon');
  await reconcile(configOf(doc('lon')));
  // Two tunnels to one destination: most free capacity first puts one on each address.
  const pair = await Promise.all([eye.open(NL_EYE, FRESH[1]!), eye.open(NL_EYE, FRESH[1]!)]);
  const on65 = pair.find((o) => portOf(o.seen).ip === '198.51.100.65');
  assert.ok(on65, `expected one tunnel from .65: ${JSON.stringify(pair)}`);

  await move65('par');
  const after = await Promise.all(DSTS.slice(10, 16).map((d) => eye.open(NL_EYE, d)));
  assert.deepEqual([...new Set(after.map((o) => portOf(o.seen).ip))], ['198.51.100.64']);
  // The proxy did not cut the tunnel from .65: while the address is still on lo it works.
  assert.equal(await eye.echo(on65.id, 'still open'), 'still open');
  // The agent removes .65 from lo and its SNAT rule: replies to it are no longer local here, the
  // tunnel stalls (it ends by a timeout, not by the proxy).
  assert.match(await reconcile(configOf(doc('par'))), /addr del 198\.51\.100\.65\/32 dev lo/);
  assert.equal(await eye.echo(on65.id, 'after the move', 1500), null);
  assert.match(await metrics(), /anyedge_proxy_connections\{egress_ip="198\.51\.100\.65"\} 1/);
  await eye.close([...pair, ...after].map((o) => o.id));
});

test('a closed tunnel\'s port stays taken in the kernel\'s NAT (TIME_WAIT): the proxy counts it and refuses instead of dialling into a timeout', async (t) => {
  const eye = ready(t);
  if (!eye) return;
  await move65('par');
  await reconcile(configOf(doc('par')));
  const dst = FRESH[2]!;
  const open = await Promise.all(Array.from({ length: 64 }, () => eye.open(NL_EYE, dst)));
  assert.ok(open.every((o) => o.status === 200 && portOf(o.seen).ip === '198.51.100.64'), JSON.stringify(open.filter((o) => o.status !== 200)));
  const closed = open.pop()!;
  await eye.close([closed.id]);
  // The kernel: a direct connection from the egress address to that destination (63 live, 1
  // closing or in TIME_WAIT in a 64-port slice) either gets no port and times out, or — the NAT
  // may evict a TIME_WAIT tuple once the range is otherwise exhausted, seen on 6.18 in CI — gets
  // exactly the closed connection's port; never a live one's.
  const direct = JSON.parse(await lab.exec('s', process.execPath, [PEER, 'dial', '198.51.100.64', dst, String(PORT), '2000'])) as { seen?: string; error?: string };
  if (direct.error === undefined) assert.equal(direct.seen, closed.seen, `the NAT reused a port other than the closed one: ${JSON.stringify(direct)}`);
  else assert.deepEqual(direct, { error: 'timeout' });
  // The proxy knew: 503 at once, naming the TIME_WAIT.
  const refused = await eye.open(NL_EYE, dst);
  assert.equal(refused.status, 503);
  assert.match(refused.body ?? '', /198\.51\.100\.64 ports \d+–\d+: 64\/64 taken to it \(63 live, 1 closed less than 120 s ago, their ports held in TIME_WAIT\)/);
  await eye.close(open.map((o) => o.id));
});
