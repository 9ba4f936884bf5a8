/**
 * Config propagation benchmark (root): one API, a 3-member etcd cluster on loopback, and 8 agent
 * processes each reconciling its own server namespace. A firewall change is written through the
 * API (PUT of one rule, as an operator would) and timed until every agent reports it applied
 * (its `/status/<dc>/<server>` key shows an appliedRevision at or past the write's revision; the
 * agent writes it only after its kernel matches). 200 changes, one at a time; p50/p99/max of
 * write → applied-everywhere. Then the same with the embedded LMDB store shared by the API and
 * the agents (single node). Goal (issue 4): p99 < 1 s on this machine.
 *
 *   node --import tsx bench/propagation.bench.ts [--changes N] [--agents N] [--store etcd|lmdb|both]
 *
 * At the end one agent's kernel is checked against the last change (its tenant's nft table holds
 * the last port), so a fast wrong answer cannot pass as a fast right one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { acmeDoc } from '../src/agent/fixtures.ts';
import { createApi } from '../src/api/app.ts';
import { serveApi } from '../src/api/serve.ts';
import { generateToken } from '../src/api/tokens.ts';
import { EtcdCluster } from '../src/store/etcd-harness.ts';
import { openStore, type StoreSpec } from '../src/store/open.ts';
import type { ConfigStore } from '../src/store/types.ts';
import { serverStatusSchema } from '../src/model/status.ts';
import { STATUS_ROOT } from '../src/model/keyspace.ts';
import { linuxKernel, marksWith } from '../src/kernel/index.ts';
import { edgePins, unloadEdge } from '../src/kernel/bpf/loader.ts';
import { NetLab } from '../src/testkit/netlab.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const { values: args } = parseArgs({
  options: { changes: { type: 'string', default: '200' }, agents: { type: 'string', default: '8' }, store: { type: 'string', default: 'both' } },
});
const CHANGES = Number(args.changes);
const AGENTS = Number(args.agents);

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

/** The Acme example with servers ams/s1..sN, each with uplink eth0. */
function document(n: number): Record<string, unknown> {
  const doc = acmeDoc() as unknown as Record<string, unknown> & { dcs: Record<string, { servers: Record<string, unknown> }> };
  const servers: Record<string, unknown> = {};
  for (let i = 1; i <= n; i++) servers[`s${i}`] = { uplink: 'eth0', addresses: [`192.0.2.${16 + i}/28`] };
  doc.dcs.ams = { ...doc.dcs.ams, servers };
  return doc;
}

async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Follows every agent's applied revision through a watch on the status keys. */
class Applied {
  private readonly revs = new Map<string, number>();
  private waiters: { rev: number; resolve: () => void }[] = [];
  constructor(private readonly agents: number) {}

  async follow(store: ConfigStore): Promise<void> {
    const start = await store.list(STATUS_ROOT);
    if (!start.ok) throw new Error(start.error.message);
    for (const e of start.value.entries) this.note(e.key, e.value);
    void (async () => {
      for await (const item of store.watch(STATUS_ROOT, start.value.revision)) {
        if (!item.ok) return;
        for (const ev of item.value.events) if (ev.type === 'put') this.note(ev.key, ev.value);
      }
    })();
  }

  private note(key: string, value: unknown): void {
    const s = serverStatusSchema.safeParse(value);
    if (!s.success) return;
    this.revs.set(key, Math.max(this.revs.get(key) ?? 0, s.data.appliedRevision));
    this.waiters = this.waiters.filter((w) => (this.everywhere(w.rev) ? (w.resolve(), false) : true));
  }

  private everywhere(rev: number): boolean {
    if (this.revs.size < this.agents) return false;
    for (const r of this.revs.values()) if (r < rev) return false;
    return true;
  }

  until(rev: number, timeoutMs: number): Promise<void> {
    if (this.everywhere(rev)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`revision ${rev} not applied everywhere within ${timeoutMs} ms: ${JSON.stringify([...this.revs])}`)), timeoutMs);
      this.waiters.push({ rev, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }
}

async function run(kind: 'etcd' | 'lmdb'): Promise<string> {
  const lab = new NetLab('V');
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-prop-'));
  const children: ChildProcess[] = [];
  const prefixes: string[] = [];
  const bpfNames: string[] = [];
  let cluster: EtcdCluster | null = null;
  let store: ConfigStore | null = null;
  let served: Awaited<ReturnType<typeof serveApi>> | null = null;
  try {
    let spec: StoreSpec;
    let specText: string;
    if (kind === 'etcd') {
      cluster = await EtcdCluster.start(3);
      spec = { kind: 'etcd', endpoints: cluster.endpoints, prefix: '/anyedge-bench' };
      specText = `etcd:${cluster.endpoints.join(',')}#/anyedge-bench`;
    } else {
      spec = { kind: 'lmdb', path: join(dir, 'store'), noSync: true };
      specText = `lmdb:${join(dir, 'store')}`;
    }
    const opened = await openStore(spec);
    if (!opened.ok) throw new Error(opened.error.message);
    store = opened.value;
    const operator = generateToken();
    // The benchmark is one operator writing as fast as agents apply: lift the per-token limit.
    served = await serveApi(createApi({ store, operatorTokenHashes: [operator.hash], rateLimit: { perSecond: 1000, burst: 1000 } }), { host: '127.0.0.1', port: 0 });
    const seeded = await api(served.url, operator.token, 'PUT', '/v1/config', { config: document(AGENTS) });
    if (seeded.status !== 200) throw new Error(`seeding the config: ${seeded.status} ${JSON.stringify(seeded.body)}`);
    const seedRev = seeded.body.revision as number;

    const applied = new Applied(AGENTS);
    await applied.follow(store);
    for (let i = 1; i <= AGENTS; i++) {
      await lab.addNs(`s${i}`);
      await lab.addNs(`x${i}`);
      await lab.veth(`s${i}`, 'eth0', `x${i}`, 'eth0');
      const prefix = `v${(process.pid % 1000).toString(36)}${i}`;
      prefixes.push(prefix);
      bpfNames.push(`${lab.prefix}a${i}`);
      const child = spawn(
        process.execPath,
        [join(root, 'bin/anyedge.mjs'), 'agent', '--server', `ams/s${i}`, '--store', specText, '--state-dir', join(dir, `state${i}`), '--netns', lab.ns(`s${i}`), '--prefix', prefix, '--bpf', `${lab.prefix}a${i}`],
        { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let log = '';
      child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) console.error(`agent s${i} exited ${code}:\n${log}`);
      });
      children.push(child);
    }
    const t0 = performance.now();
    await applied.until(seedRev, 120_000);
    const provisionS = (performance.now() - t0) / 1000;

    const latencies: number[] = [];
    let port = 0;
    for (let k = 0; k < CHANGES; k++) {
      port = 3000 + (k % 2000);
      const rule = { id: 'ftp', direction: 'ingress', dst: ['203.0.113.100'], protocol: 'tcp', dport: [`${port}`], action: 'accept' };
      const t = performance.now();
      const w = await api(served.url, operator.token, 'PUT', '/v1/tenants/acme/firewall/rules/ftp', rule);
      if (w.status !== 200) throw new Error(`change ${k}: ${w.status} ${JSON.stringify(w.body)}`);
      await applied.until(w.body.revision as number, 30_000);
      latencies.push(performance.now() - t);
    }
    // The kernel, not only the status, has the last change.
    const table = await lab.sh('ip', ['netns', 'exec', `${prefixes[0]}-acme`, 'nft', '-j', 'list', 'table', 'inet', `${prefixes[0]}fw`]);
    if (!table.includes(`${port}`)) throw new Error(`agent s1's firewall does not hold the last port ${port}`);

    const sorted = [...latencies].sort((a, b) => a - b);
    const ms = (v: number) => v.toFixed(0);
    return `| ${kind} | ${AGENTS} | ${CHANGES} | ${provisionS.toFixed(1)} | ${ms(quantile(sorted, 0.5))} | ${ms(quantile(sorted, 0.99))} | ${ms(sorted[sorted.length - 1] ?? NaN)} |`;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
    await served?.close();
    await store?.close();
    await cluster?.stop();
    for (const p of prefixes) await linuxKernel(marksWith({ prefix: p })).netns.prune([]);
    for (const b of bpfNames) await unloadEdge(edgePins(b));
    await lab.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const kind of ['etcd', 'lmdb'] as const) {
  if (args.store !== 'both' && args.store !== kind) continue;
  const r = await run(kind);
  console.error(r);
  rows.push(r);
}
console.log('| store | agents | changes | initial provision s | p50 ms | p99 ms | max ms |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
