/**
 * `lab up`: builds a plan (topology.ts) on this machine. In order: namespaces (forwarding on,
 * reverse-path filter off), bridges, veths and addresses, the customers' GRE tunnel ends, static
 * routes; the store (a detached etcd on loopback, or an LMDB directory) with the lab's config
 * written through it (validated); the customers' TCP echo services and the Internet host's HTTP
 * and echo services; BIRD on every router (and the Internet host); one agent per server. It waits
 * until every BGP session is established and every agent has applied the config, then starts the
 * egress proxies (one per service address and server) and waits until they listen. The state file records each object and pid as soon as it exists, so
 * `lab down` can remove a half-built lab; a failed `lab up` removes what it made itself.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { err, ok, type Result } from '../lib/result.ts';
import type { ExecError } from '../kernel/exec.ts';
import { addAddr, addBridge, addNetns, addRoute, addVeth, attachXdpPinned, listNetns, loUp, setLink, setMaster, setSysctls, txChecksumOff } from '../kernel/labnet.ts';
import { BPFFS, loadEdge } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { parseConfig } from '../model/config.ts';
import { formatIssue } from '../model/issue.ts';
import { configToEntries } from '../model/keyspace.ts';
import { serverStatusSchema, statusKey } from '../model/status.ts';
import { openStore, parseStoreSpec } from '../store/open.ts';
import type { LabError } from './errors.ts';
import { LINK_POOL } from './addressing.ts';
import { bgpSessions, birdConfigPath, birdSocket } from './bgp.ts';
import { buildCustomerTunnel } from './customer.ts';
import { internetServerScript } from './internet.ts';
import { labGeofeed } from './geofeed.ts';
import { STORE_RELAY_SCRIPT } from './store-relay.ts';
import { startEtcd } from './etcd.ts';
import { labDown } from './down.ts';
import { labPrefix, nodeNs } from './names.ts';
import { aliveWithMark, sleep, spawnDetached } from './procs.ts';
import { labDir, writeState, type LabProcess, type LabState } from './state.ts';
import { planLab, type LabPlan, type LabSize } from './topology.ts';

/** Options of `lab up`. */
export interface UpOptions {
  readonly id: string;
  readonly size: LabSize;
  readonly store: 'etcd' | 'lmdb';
  readonly runDir: string;
  /** How long to wait for BGP and the agents once everything runs. */
  readonly waitMs?: number;
  /** Progress lines for people. */
  readonly log?: (line: string) => void;
  /** Leave a failed lab in place (for debugging) instead of removing it. */
  readonly keepOnFailure?: boolean;
  /** Seed firewall rules left out of the store's config, as `tenant/ruleId` (`lab demo` adds them through the API). */
  readonly withoutRules?: readonly string[];
}

/** What `lab up` did, with how long each phase took. */
export interface UpResult {
  readonly plan: LabPlan;
  readonly state: LabState;
  readonly seconds: number;
  readonly phases: ReadonlyArray<{ readonly phase: string; readonly seconds: number }>;
}

const ROOT = new URL('../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'anyedge.mjs');

/** Tools `lab up` runs. */
export function requiredTools(store: 'etcd' | 'lmdb'): string[] {
  return ['ip', 'nsenter', 'tc', 'bpftool', 'ethtool', 'sysctl', 'bird', 'birdc', ...(store === 'etcd' ? ['etcd'] : [])];
}

function missingTools(tools: readonly string[]): string[] {
  return tools.filter((t) => spawnSync('sh', ['-c', 'command -v "$1"', 'sh', t], { stdio: 'ignore' }).status !== 0);
}

/** Runs `n` async jobs at most `limit` at a time; the first error stops new ones. */
async function pool<T>(items: readonly T[], limit: number, job: (item: T) => Promise<LabError | null>): Promise<LabError | null> {
  let next = 0;
  let failed: LabError | null = null;
  const worker = async (): Promise<void> => {
    while (failed === null && next < items.length) {
      const e = await job(items[next++] as T);
      if (e && failed === null) failed = e;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return failed;
}

function step(path: string, what: string, r: Result<unknown, ExecError>): LabError | null {
  return r.ok ? null : { code: 'failed', path, message: `${what}: ${r.error.message}`, cause: r.error };
}

/** Last lines of a log, for error messages. */
function tail(file: string, lines = 8): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Builds the lab; on failure removes what it made (unless keepOnFailure) and says why. */
export async function labUp(o: UpOptions): Promise<Result<UpResult, LabError>> {
  const log = o.log ?? (() => {});
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return err({ code: 'failed', path: 'lab up', message: 'needs root (it creates namespaces, loads BPF programs); run it with sudo' });
  const missing = missingTools(requiredTools(o.store));
  if (missing.length) return err({ code: 'missing_tool', path: 'lab up', message: `missing ${missing.map((t) => `"${t}"`).join(', ')}; run scripts/setup.sh as root to install them` });
  const objs = missingObjects();
  if (objs.length) return err({ code: 'missing_tool', path: 'lab up', message: `missing BPF objects ${objs.join(', ')}: run npm run build:bpf` });
  const plan = planLab(o.id, o.size, { withoutRules: o.withoutRules ?? [] });
  if (!plan.ok) return plan;
  const prefix = labPrefix(o.id);
  const dir = labDir(o.runDir, prefix);
  const there = await listNetns(`${prefix}-`);
  if (!there.ok) return err({ code: 'failed', path: 'lab up', message: there.error.message, cause: there.error });
  if (there.value.length || existsSync(join(dir, 'state.json')))
    return err({ code: 'exists', path: 'id', message: `lab ${prefix} already exists (${there.value.length} namespaces, state in ${dir}); run anyedge lab down --id ${o.id} first, or pick another --id` });

  const started = Date.now();
  const r = await build(plan.value, o, dir, log);
  if (!r.ok) {
    if (!o.keepOnFailure) {
      log(`lab up failed (${r.error.path}: ${r.error.message}); removing what was made`);
      await labDown({ id: o.id, runDir: o.runDir });
    }
    return r;
  }
  const seconds = (Date.now() - started) / 1000;
  const state = { ...r.value.state, phase: 'up' as const, upSeconds: seconds };
  writeState(state);
  return ok({ plan: plan.value, state, seconds, phases: r.value.phases });
}

async function build(plan: LabPlan, o: UpOptions, dir: string, log: (line: string) => void): Promise<Result<{ state: LabState; phases: Array<{ phase: string; seconds: number }> }, LabError>> {
  const { prefix } = plan;
  const ns = (node: string): string => nodeNs(prefix, node);
  for (const d of ['logs', 'bird', 'agents']) mkdirSync(join(dir, d), { recursive: true });
  const storeSpecOf = (url?: string): string => (o.store === 'lmdb' ? `lmdb:${join(dir, 'store')}` : `etcd:${url}#/anyedge`);
  const state: LabState = {
    version: 1, id: plan.id, prefix, dir, size: { ...plan.size }, store: { kind: o.store, spec: o.store === 'lmdb' ? storeSpecOf() : '' },
    phase: 'building', startedAt: new Date().toISOString(), netns: [], pins: [], processes: [],
  };
  writeState(state);
  const phases: Array<{ phase: string; seconds: number }> = [];
  let t0 = Date.now();
  const phase = (name: string): void => {
    const seconds = (Date.now() - t0) / 1000;
    phases.push({ phase: name, seconds });
    log(`${name}: ${seconds.toFixed(1)} s`);
    t0 = Date.now();
  };
  const addProc = (p: LabProcess): void => {
    state.processes.push(p);
    writeState(state);
  };

  // 1. Namespaces, each with forwarding on and the reverse-path filter off (anycast and GRE make
  // asymmetric paths normal), then the plan's own sysctls.
  state.netns.push(...plan.nodes.map((n) => n.ns));
  writeState(state);
  const sysctlsOf = (node: string): Array<[string, string]> => [
    ['net.ipv4.ip_forward', '1'], ['net.ipv4.conf.all.rp_filter', '0'], ['net.ipv4.conf.default.rp_filter', '0'], ['net.ipv6.conf.all.forwarding', '1'],
    ...plan.sysctls.filter((s) => s.node === node).map((s) => [s.key, s.value] as [string, string]),
  ];
  let e = await pool(plan.nodes, 4, async (n) =>
    step(n.name, 'netns add', await addNetns(n.ns)) ?? step(n.name, 'lo up', await loUp(n.ns)) ?? step(n.name, 'sysctls', await setSysctls(n.ns, sysctlsOf(n.name))));
  if (e) return err(e);
  phase('namespaces');

  // 2. Bridges, veths, addresses.
  e = await pool(plan.bridges, 4, async (b) => {
    const first = step(`${b.node}:${b.dev}`, 'bridge add', await addBridge(ns(b.node), b.dev));
    if (first) return first;
    if (b.mtu !== undefined) {
      const x = step(`${b.node}:${b.dev}`, `mtu ${b.mtu}`, await setLink(ns(b.node), b.dev, { mtu: b.mtu }));
      if (x) return x;
    }
    for (const a of b.addrs) {
      const x = step(`${b.node}:${b.dev}`, `addr add ${a}`, await addAddr(ns(b.node), b.dev, a));
      if (x) return x;
    }
    return null;
  });
  if (e) return err(e);
  e = await pool(plan.links, 4, async (l) => {
    const path = `${l.a.node}:${l.a.dev}--${l.b.node}:${l.b.dev}`;
    const first = step(path, 'veth add', await addVeth(ns(l.a.node), l.a.dev, ns(l.b.node), l.b.dev));
    if (first) return first;
    for (const end of [l.a, l.b]) {
      if (end.mtu !== undefined) {
        const x = step(path, `mtu ${end.mtu}`, await setLink(ns(end.node), end.dev, { mtu: end.mtu }));
        if (x) return x;
      }
      if (end.master) {
        const x = step(path, `master ${end.master}`, await setMaster(ns(end.node), end.dev, end.master));
        if (x) return x;
      }
      for (const a of end.addrs) {
        const x = step(path, `addr add ${a}`, await addAddr(ns(end.node), end.dev, a));
        if (x) return x;
      }
      if (end.txOff) {
        const x = step(path, 'tx checksum off', await txChecksumOff(ns(end.node), end.dev));
        if (x) return x;
      }
    }
    return null;
  });
  if (e) return err(e);
  e = await pool(plan.localAddrs, 4, async (l) => step(`${l.node}:lo`, `addr add ${l.addr}`, await addAddr(ns(l.node), 'lo', l.addr)));
  if (e) return err(e);
  // xdp_pass on the ends that take XDP_TX frames (the bridge ports of the servers' uplinks), from
  // one copy of the edge programs for the whole lab; it goes with the veths at lab down.
  const passEnds = plan.links.flatMap((l) => [l.a, l.b]).filter((x) => x.xdpPass);
  if (passEnds.length) {
    const pinName = fabricPins(prefix);
    state.pins.push(`${BPFFS}/${pinName}`);
    writeState(state);
    const pins = await loadEdge(pinName);
    if (!pins.ok) return err({ code: 'failed', path: 'fabric/xdp_pass', message: `load the edge programs: ${pins.error.message}`, cause: pins.error });
    e = await pool(passEnds, 4, async (x) => step(`${x.node}:${x.dev}`, 'attach xdp_pass', await attachXdpPinned(ns(x.node), x.dev, pins.value.progs.xdpPass)));
    if (e) return err(e);
  }
  phase('links');

  // 3. The customers' tunnel ends (their pins are recorded before loading, so a failure half-way
  // is still swept), then every static route (the customers' default goes into their tunnel).
  for (const site of plan.sites) {
    state.pins.push(`${BPFFS}/${site.bpf}`);
    writeState(state);
    const t = await buildCustomerTunnel(site, ns(site.router));
    if (!t.ok) return t;
  }
  e = await pool(plan.routes, 4, async (r) => step(r.node, `route add ${r.dst}`, await addRoute(ns(r.node), r)));
  if (e) return err(e);
  phase('customer tunnels and routes');

  // 4. The store, and the config written through it (the store validates every key).
  let spec = state.store.spec;
  if (o.store === 'etcd') {
    const etcd = await startEtcd(prefix, dir);
    if (!etcd.ok) return etcd;
    addProc({ role: 'etcd', pid: etcd.value.pid, log: etcd.value.log });
    spec = storeSpecOf(etcd.value.clientUrl);
    state.store = { kind: 'etcd', spec };
    writeState(state);
  }
  const config = parseConfig(plan.config);
  if (!config.ok) return err({ code: 'invalid', path: 'config', message: `the lab's config is invalid (a bug in src/lab/config-doc.ts): ${config.error.map(formatIssue).join('; ')}` });
  const parsedSpec = parseStoreSpec(spec);
  if (!parsedSpec.ok) return err({ code: 'invalid', path: 'store', message: parsedSpec.error });
  const store = await openStore(parsedSpec.value);
  if (!store.ok) return err({ code: 'failed', path: 'store', message: store.error.message, cause: store.error });
  try {
    const w = await store.value.txn({ then: [...configToEntries(config.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    if (!w.ok) return err({ code: 'failed', path: 'store', message: `writing the lab's config: ${w.error.message}`, cause: w.error });
    state.configRevision = w.value.revision;
    writeState(state);
  } finally {
    await store.value.close();
  }
  writeFileSync(geofeedPath(dir), labGeofeed(plan));
  phase(`store (${o.store}) and config`);

  // 5. The customers' services: a TCP echo server on each host.
  for (const site of plan.sites) {
    const logFile = join(dir, 'logs', `echo-${site.host}.log`);
    const script = `require('net').createServer(s=>{s.on('error',()=>{});s.pipe(s)}).listen(${site.port},'${site.hostIp}',()=>console.log('listening'))`;
    // The last argument only marks the process as the lab's (see procs.ts).
    const pid = spawnDetached(`sites/${site.tenant}/echo`, ['ip', 'netns', 'exec', ns(site.host), process.execPath, '-e', script, `${prefix}-echo`], logFile);
    if (!pid.ok) return pid;
    addProc({ role: 'echo', node: site.host, pid: pid.value, log: logFile });
    const up = await waitUntil(5000, async () => readLog(logFile).includes('listening'));
    if (!up) return err({ code: 'failed', path: `sites/${site.tenant}/echo`, message: `the echo service on ${site.hostIp}:${site.port} did not start:\n${tail(logFile)}` });
  }
  {
    // The Internet host's HTTP and echo services (the destinations of proxied egress).
    const inet = plan.internet;
    const logFile = internetLog(dir);
    const pid = spawnDetached('internet', ['ip', 'netns', 'exec', ns(inet.node), process.execPath, '-e', internetServerScript(inet), `${prefix}-internet`], logFile);
    if (!pid.ok) return pid;
    addProc({ role: 'internet', node: inet.node, pid: pid.value, log: logFile });
    const up = await waitUntil(5000, async () => readLog(logFile).includes('listening'));
    if (!up) return err({ code: 'failed', path: 'internet', message: `the Internet host's services on ${inet.ip}:${inet.httpPort},${inet.echoPort} did not start:\n${tail(logFile)}` });
  }

  // 6. BIRD on every router, each with its own config and control socket.
  for (const b of plan.bird) {
    const conf = birdConfigPath(dir, b.node);
    writeFileSync(conf, b.config);
    const logFile = join(dir, 'logs', `bird-${b.node}.log`);
    const pid = spawnDetached(`bird/${b.node}`, ['ip', 'netns', 'exec', ns(b.node), 'bird', '-f', '-c', conf, '-s', birdSocket(dir, b.node)], logFile);
    if (!pid.ok) return pid;
    addProc({ role: 'bird', node: b.node, pid: pid.value, log: logFile });
  }
  const birdUp = await waitUntil(10_000, async () => plan.bird.every((b) => existsSync(birdSocket(dir, b.node))));
  const deadBird = plan.bird.find((b) => !existsSync(birdSocket(dir, b.node)));
  if (!birdUp && deadBird) return err({ code: 'failed', path: `bird/${deadBird.node}`, message: `BIRD did not open its control socket:\n${tail(join(dir, 'logs', `bird-${deadBird.node}.log`))}` });
  phase('echo services and BIRD');

  // 7. One agent per server, each with its own ownership prefix and BPF pin directory.
  for (const a of plan.agents) {
    state.pins.push(`${BPFFS}/${a.bpf}`);
    const logFile = join(dir, 'logs', `agent-${a.node}.log`);
    const pid = spawnDetached(`agents/${a.node}`, [
      process.execPath, BIN, 'agent',
      '--server', `${a.dc}/${a.server}`,
      '--store', spec,
      '--state-dir', join(dir, 'agents', a.node),
      '--netns', a.ns,
      '--prefix', a.prefix,
      '--bpf', a.bpf,
      '--link-pool', LINK_POOL,
    ], logFile);
    if (!pid.ok) return pid;
    addProc({ role: 'agent', node: a.node, pid: pid.value, log: logFile });
  }

  // 8. Wait for every BGP session and every agent.
  const waitMs = o.waitMs ?? 120_000;
  const sessionsUp = await waitUntil(waitMs, async () => {
    for (const b of plan.bird) {
      const s = await bgpSessions(dir, b.node);
      if (!s.ok || s.value.length !== b.sessions.length || !s.value.every((x) => x.established)) return false;
    }
    return true;
  });
  if (!sessionsUp) {
    const report: string[] = [];
    for (const b of plan.bird) {
      const s = await bgpSessions(dir, b.node);
      report.push(s.ok ? s.value.map((x) => `${x.router}→${x.neighbor}: ${x.info}`).join(', ') : s.error.message);
    }
    return err({ code: 'timeout', path: 'bgp', message: `BGP sessions not all established within ${waitMs} ms: ${report.join('; ')}` });
  }
  phase('BGP established');
  const applied = await waitAgents(plan, spec, state.configRevision ?? 0, waitMs, (pid) => aliveWithMark(pid, prefix), state);
  if (applied) return err(applied);
  phase('agents applied the config');

  // 9. The egress proxies, once the agents have put the egress addresses on the servers (a proxy
  // binds to them). `ip netns exec` replaces itself with node, so the geofeed path under the
  // lab's directory is what marks them as the lab's. They run inside the servers' namespaces, so
  // an etcd store is reached through the relay (store-relay.ts).
  const etcdPort = o.store === 'etcd' ? /:(\d+)#/.exec(spec)?.[1] : undefined;
  if (etcdPort !== undefined) {
    const logFile = join(dir, 'logs', 'store-relay.log');
    const namespaces = [...new Set(plan.proxies.map((x) => x.ns))];
    const pid = spawnDetached('store-relay', [process.execPath, '-e', STORE_RELAY_SCRIPT, JSON.stringify({ port: Number(etcdPort), namespaces })], logFile);
    if (!pid.ok) return pid;
    addProc({ role: 'relay', pid: pid.value, log: logFile });
    const relaying = await waitUntil(waitMs, async () => readLog(logFile).includes('relaying') || !aliveWithMark(pid.value, prefix));
    if (!relaying || !readLog(logFile).includes('relaying')) return err({ code: 'failed', path: 'store-relay', message: `the relay to etcd for the servers' namespaces did not start:\n${tail(logFile)}` });
  }
  for (const x of plan.proxies) {
    const logFile = join(dir, 'logs', `proxy-${x.node}-${x.class}.log`);
    const pid = spawnDetached(`proxies/${x.node}/${x.class}`, [
      'ip', 'netns', 'exec', x.ns, process.execPath, BIN, 'proxy',
      '--listen', `${x.ip}:${x.port}`,
      '--class', x.class,
      '--store', spec,
      '--server', `${x.dc}/${x.server}`,
      '--geoip', geofeedPath(dir),
      '--metrics', x.metrics,
      // One line per tunnel (eyeball, country, egress address): the lab's tests read them.
      '--log-level', 'debug',
    ], logFile);
    if (!pid.ok) return pid;
    addProc({ role: 'proxy', node: x.node, pid: pid.value, log: logFile });
  }
  for (const x of plan.proxies) {
    const logFile = join(dir, 'logs', `proxy-${x.node}-${x.class}.log`);
    const proc = state.processes.find((p) => p.role === 'proxy' && p.log === logFile);
    const up = await waitUntil(waitMs, async () => readLog(logFile).includes('"event":"listening"') || (proc !== undefined && !aliveWithMark(proc.pid, prefix)));
    if (!up || !readLog(logFile).includes('"event":"listening"'))
      return err({ code: 'failed', path: `proxies/${x.node}/${x.class}`, message: `the ${x.class} proxy on ${x.node} (${x.ip}:${x.port}) did not start:\n${tail(logFile)}` });
  }
  phase('proxies listening');
  return ok({ state, phases });
}

/** The pin directory of the lab's own copy of the edge programs, for xdp_pass on the fabric. */
export function fabricPins(prefix: string): string {
  return `${prefix}-fabric`;
}

/** The lab's geofeed (geofeed.ts), which the proxies read. */
export function geofeedPath(dir: string): string {
  return join(dir, 'geofeed.csv');
}

/** The log of the Internet host's services: one JSON line per accepted connection. */
export function internetLog(dir: string): string {
  return join(dir, 'logs', 'internet.log');
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Polls `cond` every 200 ms until it holds (true) or `ms` pass (false). */
export async function waitUntil(ms: number, cond: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(200);
  }
}

/** Waits until every agent's status key reports `revision` applied; names the first that did not. */
async function waitAgents(plan: LabPlan, spec: string, revision: number, ms: number, alive: (pid: number) => boolean, state: LabState): Promise<LabError | null> {
  const parsed = parseStoreSpec(spec);
  if (!parsed.ok) return { code: 'invalid', path: 'store', message: parsed.error };
  const store = await openStore(parsed.value);
  if (!store.ok) return { code: 'failed', path: 'store', message: store.error.message, cause: store.error };
  try {
    let pending = plan.agents.map((a) => a);
    const deadline = Date.now() + ms;
    while (pending.length) {
      const next: typeof pending = [];
      for (const a of pending) {
        const proc = state.processes.find((p) => p.role === 'agent' && p.node === a.node);
        if (proc && !alive(proc.pid)) return { code: 'failed', path: `agents/${a.node}`, message: `the agent exited:\n${tail(proc.log)}` };
        const kv = await store.value.get(statusKey(a.dc, a.server));
        const s = kv.ok && kv.value ? serverStatusSchema.safeParse(kv.value.value) : null;
        if (!s?.success || s.data.appliedRevision < revision) next.push(a);
      }
      pending = next;
      if (!pending.length) break;
      if (Date.now() > deadline) {
        const a = pending[0]!;
        const proc = state.processes.find((p) => p.role === 'agent' && p.node === a.node);
        return { code: 'timeout', path: `agents/${a.node}`, message: `${pending.length} agent(s) did not apply revision ${revision} within ${ms} ms (${pending.map((x) => x.node).join(', ')}); ${a.node}'s log:\n${proc ? tail(proc.log) : ''}` };
      }
      await sleep(250);
    }
    return null;
  } finally {
    await store.value.close();
  }
}
