/**
 * ConfigStore (LMDB backend) benchmark: put latency and throughput (durable, unsynced, and
 * validated by the real model), and write → watcher latency in the same process and in another
 * process. Prints a markdown table for bench/RESULTS.md. Runs in about 30–60 s.
 *
 *   node --import tsx bench/store.bench.ts
 *
 * Every put is awaited before the next, so latencies are of one write with no queueing; durable
 * (fsync'd) writes, as in production. Both cases run on a realistic keyspace (400 tenants with
 * prefixes and tunnels); the validated case uses the real `validateKeyspace` from
 * model/keyspace.ts, so its rows show what checking the whole config on every write costs. The
 * store keeps a decoded copy of the keyspace between writes, so that cost is the validator's own
 * work, not decoding the store.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { validateKeyspace } from '../src/model/keyspace.ts';
import { mustOpen } from '../src/store/lmdb-harness.ts';
import type { LmdbConfigStore, LmdbStoreOptions } from '../src/store/lmdb.ts';

/** Samples per scenario. Watch delivery does not depend on validation, so it is measured without. */
const PUTS = 2000;
const VALIDATED_PUTS = 300;
const WATCH_SAME = 1000;
const WATCH_CROSS = 200;
/** Tenants preloaded: 1 tenant + 2 prefixes + 2 tunnels each. */
const TENANTS = 400;
const SELF = fileURLToPath(import.meta.url);
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Wall-clock ms with sub-ms precision, comparable across processes on one machine. */
const now = (): number => performance.timeOrigin + performance.now();

/** A tunnel of tenant `t`; keys differ so no two tunnels share (endpoint, anycast endpoint, key). */
function tunnel(t: number, j: number, mtu: number): unknown {
  return { type: 'gre', customerEndpoint: `198.51.100.${200 + j}`, key: t * 2 + j, mtu };
}

async function preload(store: LmdbConfigStore): Promise<number> {
  const r0 = await store.put('/anycast', { ranges: ['198.51.100.0/28'], greEndpoints: ['198.51.100.1'] });
  if (!r0.ok) throw new Error(r0.error.message);
  for (let t = 0; t < TENANTS; t++) {
    const r = await store.txn({
      then: [
        { op: 'put', key: `/tenants/t${t}`, value: { name: `tenant ${t}`, status: 'active' } },
        { op: 'put', key: `/tenants/t${t}/prefixes/p0`, value: { cidr: `10.${t >> 8}.${t & 255}.0/25` } },
        { op: 'put', key: `/tenants/t${t}/prefixes/p1`, value: { cidr: `10.${t >> 8}.${t & 255}.128/25` } },
        { op: 'put', key: `/tenants/t${t}/tunnels/gre0`, value: tunnel(t, 0, 1476) },
        { op: 'put', key: `/tenants/t${t}/tunnels/gre1`, value: tunnel(t, 1, 1476) },
      ],
    });
    if (!r.ok) throw new Error(r.error.message);
  }
  return 1 + TENANTS * 5;
}

async function revision(store: LmdbConfigStore): Promise<number> {
  const st = await store.status();
  if (!st.ok) throw new Error(st.error.message);
  return st.value.revision;
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

interface Row {
  readonly what: string;
  readonly validator: string;
  readonly n: number;
  readonly lat: readonly number[];
  readonly perSec?: number;
}

async function benchPuts(store: LmdbConfigStore, validator: string, n: number): Promise<Row> {
  const lat: number[] = [];
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const s = now();
    const r = await store.put(`/tenants/t${i % TENANTS}/tunnels/gre0`, tunnel(i % TENANTS, 0, 1400 + (i % 100)));
    lat.push(now() - s);
    if (!r.ok) throw new Error(r.error.message);
  }
  return { what: 'put', validator, n, lat, perSec: n / ((now() - t0) / 1000) };
}

/**
 * Write → watcher latency in this process, two ways: from the put's return (the commit is on disk;
 * pure delivery) and from the put's call (what a writer waiting for its watcher sees).
 */
async function benchWatchSame(store: LmdbConfigStore, validator: string, n: number): Promise<Row[]> {
  const w = store.watch('/tenants/', await revision(store));
  const it = w[Symbol.asyncIterator]();
  const fromCall: number[] = [];
  const fromCommit: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = now();
    const r = await store.put(`/tenants/t${i % TENANTS}/tunnels/gre1`, tunnel(i % TENANTS, 1, 1400 + (i % 100)));
    const committed = now();
    if (!r.ok) throw new Error(r.error.message);
    for (;;) {
      const b = await it.next();
      if (b.done || !b.value.ok) throw new Error('watch ended');
      if (b.value.value.revision >= r.value.revision) break;
    }
    const t = now();
    fromCall.push(t - s);
    fromCommit.push(t - committed);
  }
  w.close();
  return [
    { what: 'watch delivery, same process: put returned → batch', validator, n, lat: fromCommit },
    { what: 'watch delivery, same process: put called → batch', validator, n, lat: fromCall },
  ];
}

/** Write → watcher latency to a watcher in a child process, which finds writes by polling. */
async function benchWatchCross(store: LmdbConfigStore, validator: string, pollMs: number, n: number): Promise<Row[]> {
  const start = await revision(store);
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, '--child', store.path, String(pollMs), String(start)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<{ rev?: number; t?: number; ready?: boolean }> => {
      const l = await lines.next();
      if (l.done) throw new Error('child watcher exited');
      return JSON.parse(l.value) as { rev?: number; t?: number; ready?: boolean };
    };
    await next(); // ready
    const fromCall: number[] = [];
    const fromCommit: number[] = [];
    for (let i = 0; i < n; i++) {
      // Write at a random phase of the child's poll, as real writes are: writing right after
      // the previous delivery would always land just after a poll and measure a full interval.
      await new Promise((r) => setTimeout(r, Math.random() * pollMs));
      const s = now();
      const r = await store.put(`/tenants/t${i % TENANTS}/tunnels/gre1`, tunnel(i % TENANTS, 1, 1300 + (i % 100)));
      const committed = now();
      if (!r.ok) throw new Error(r.error.message);
      for (;;) {
        const m = await next();
        if ((m.rev ?? 0) >= r.value.revision) {
          fromCall.push((m.t ?? NaN) - s);
          // The child may see the commit before this process has returned from the put (it is
          // visible once LMDB commits, before lmdb-js returns): clamp at 0.
          fromCommit.push(Math.max(0, (m.t ?? NaN) - committed));
          break;
        }
      }
    }
    return [
      { what: `watch delivery, other process, poll ${pollMs} ms: put returned → batch`, validator, n, lat: fromCommit },
      { what: `watch delivery, other process, poll ${pollMs} ms: put called → batch`, validator, n, lat: fromCall },
    ];
  } finally {
    child.kill('SIGKILL');
  }
}

/** Child mode: watch the store and print the arrival time of every batch. */
async function child(path: string, pollMs: number, after: number): Promise<void> {
  const store = mustOpen({ path, pollIntervalMs: pollMs });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  for await (const item of store.watch('/tenants/', after)) {
    const t = now();
    if (!item.ok) throw new Error(item.error.message);
    process.stdout.write(JSON.stringify({ rev: item.value.revision, t }) + '\n');
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-store-'));
  const rows: Row[] = [];
  const stores: LmdbConfigStore[] = [];
  const began = now();
  /** A store at `name` holding the preloaded keyspace, loaded without validation (a bulk import). */
  const prepared = async (name: string, options: Omit<LmdbStoreOptions, 'path'>): Promise<{ store: LmdbConfigStore; keys: number }> => {
    const path = join(dir, name);
    const loader = mustOpen({ path, noSync: options.noSync ?? false });
    const keys = await preload(loader);
    await loader.close();
    const store = mustOpen({ path, ...options });
    stores.push(store);
    return { store, keys };
  };
  try {
    const plain = await prepared('plain', {});
    const none = `none (${plain.keys} keys)`;
    rows.push(await benchPuts(plain.store, none, PUTS));
    rows.push(...(await benchWatchSame(plain.store, none, WATCH_SAME)));
    for (const poll of [10, 2]) rows.push(...(await benchWatchCross(plain.store, none, poll, WATCH_CROSS)));

    const unsynced = await prepared('nosync', { noSync: true });
    rows.push({ ...(await benchPuts(unsynced.store, none, PUTS)), what: 'put, noSync (no fsync: what the disk costs)' });

    const validated = await prepared('validated', { validation: { validator: validateKeyspace } });
    const label = `validateKeyspace (${validated.keys} keys)`;
    // A handle's first validated write decodes every key once to build its cache.
    rows.push({ ...(await benchPuts(validated.store, label, 1)), what: 'first validated put of a handle (builds the cache)' });
    rows.push(await benchPuts(validated.store, label, VALIDATED_PUTS));
  } finally {
    for (const s of stores) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
  const f = (x: number) => x.toFixed(3);
  console.log(`\nConfigStore (LMDB) — node ${process.version}, ${process.platform}/${process.arch}, durable writes, ${((now() - began) / 1000).toFixed(1)} s\n`);
  console.log('| scenario | validator | n | p50 ms | p99 ms | ops/s |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.what} | ${r.validator} | ${r.n} | ${f(pct(r.lat, 50))} | ${f(pct(r.lat, 99))} | ${r.perSec ? Math.round(r.perSec) : ''} |`);
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3] ?? '', Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}
