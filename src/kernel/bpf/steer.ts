/**
 * The steering stage's maps (bpf/steer.h) as the agent sees them: read everything, write a list
 * of changes, read the outcome counters. Two implementations: Linux, over the pinned maps through
 * bpftool (every write list is one `bpftool batch file` process, so the 65,537-bucket table is one
 * process, not 65,537), and an in-memory fake with a canonical `dump()`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { err, ok, type Result } from '../../lib/result.ts';
import { run } from '../exec.ts';
import { mapDump, type BpfError } from './bpftool.ts';
import type { EdgePins } from './loader.ts';
import {
  decodeBucket,
  decodeCfg,
  decodeEgress,
  decodeSliceKey,
  decodeTenantKey,
  encodeBucket,
  encodeCfg,
  encodeEgress,
  encodeSliceKey,
  encodeTenantKey,
  hostU32,
  addr4,
  readAddr4,
  readHostU32,
  readSteerIp,
  steerIp,
  STEER_BUCKETS,
  STEER_COUNTERS,
  STEER_MAPS,
  type Bucket,
  type EgressEntry,
  type SteerCfg,
  type SteerCounterName,
  type SteerMapName,
} from './steer-layout.ts';

/** What the steering maps hold. */
export interface SteerState {
  readonly cfg: SteerCfg;
  /** STEER_BUCKETS buckets. */
  readonly table: readonly Bucket[];
  readonly services: readonly string[];
  readonly peers: readonly string[];
  /** Egress address → owner kind. */
  readonly egress: ReadonlyMap<string, EgressEntry>;
  /** `ip/slice` → owning server's address. */
  readonly slices: ReadonlyMap<string, string>;
  /** Tenant prefixes whose flows are steered (canonical CIDR text), sorted. */
  readonly tenants: readonly string[];
}

/** One change to the steering maps. */
export type SteerWrite =
  | { readonly op: 'cfg'; readonly value: SteerCfg }
  | { readonly op: 'bucket'; readonly index: number; readonly value: Bucket }
  | { readonly op: 'svc-put' | 'svc-del' | 'peer-put' | 'peer-del' | 'egress-del'; readonly ip: string }
  | { readonly op: 'tenant-put' | 'tenant-del'; readonly cidr: string }
  | { readonly op: 'egress-put'; readonly ip: string; readonly value: EgressEntry }
  | { readonly op: 'slice-put'; readonly ip: string; readonly slice: number; readonly server: string }
  | { readonly op: 'slice-del'; readonly ip: string; readonly slice: number };

/** Map operations of the steering stage. Deleting an absent entry is success. */
export interface SteerMapsApi {
  read(): Promise<Result<SteerState, BpfError>>;
  /** Applies the writes in order, in one go where the backend can. */
  write(writes: readonly SteerWrite[]): Promise<Result<void, BpfError>>;
  /** steer_cnt, summed over CPUs. */
  counters(): Promise<Result<Record<SteerCounterName, bigint>, BpfError>>;
}

/** Canonical `ip/slice` key of the slices map. */
export const sliceKey = (ip: string, slice: number): string => `${ip}/${slice}`;

/** Canonical text of a bucket. */
export function bucketText(b: Bucket): string {
  return `${b.first ?? '-'} ${b.second ?? '-'}`;
}

/** Canonical text of an egress entry. */
export function egressText(e: EgressEntry): string {
  return e.kind === 'server' ? `server ${e.server}` : `slices of ${e.sliceSize}`;
}

/** Canonical text of steer_cfg. */
export function cfgText(c: SteerCfg): string {
  return `self ${c.self ?? '-'} port ${c.port} ${c.enabled ? 'enabled' : 'disabled'}`;
}

/** Pin paths of the steering maps of one loaded edge. */
export function steerMapPaths(pins: Pick<EdgePins, 'root'>): Record<SteerMapName, string> {
  return Object.fromEntries(STEER_MAPS.map((m) => [m, `${pins.root}/maps/${m}`])) as Record<SteerMapName, string>;
}

const hex = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
/** bpftool batch splits on blanks: only plain pin paths go into a batch file. */
const BATCH_SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;

/** The batch-file line of one write. */
function batchLine(paths: Record<SteerMapName, string>, w: SteerWrite): string {
  const upd = (m: SteerMapName, k: Buffer, v: Buffer) => `map update pinned ${paths[m]} key hex ${hex(k)} value hex ${hex(v)}\n`;
  const del = (m: SteerMapName, k: Buffer) => `map delete pinned ${paths[m]} key hex ${hex(k)}\n`;
  const one = hostU32(1);
  switch (w.op) {
    case 'cfg':
      return upd('steer_cfg', hostU32(0), encodeCfg(w.value));
    case 'bucket':
      return upd('steer_table', hostU32(w.index), encodeBucket(w.value));
    case 'svc-put':
      return upd('steer_svc', steerIp(w.ip), one);
    case 'svc-del':
      return del('steer_svc', steerIp(w.ip));
    case 'peer-put':
      return upd('steer_peers', addr4(w.ip), one);
    case 'peer-del':
      return del('steer_peers', addr4(w.ip));
    case 'egress-put':
      return upd('steer_egress', steerIp(w.ip), encodeEgress(w.value));
    case 'egress-del':
      return del('steer_egress', steerIp(w.ip));
    case 'slice-put':
      return upd('steer_slices', encodeSliceKey(w.ip, w.slice), addr4(w.server));
    case 'slice-del':
      return del('steer_slices', encodeSliceKey(w.ip, w.slice));
    case 'tenant-put':
      return upd('steer_tenant', encodeTenantKey(w.cidr), one);
    case 'tenant-del':
      return del('steer_tenant', encodeTenantKey(w.cidr));
  }
}

/** An IPv4 address from a be32 that bpftool's BTF view printed as a host-order number. */
function be32FromHost(n: number): string | null {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return readAddr4(b);
}
const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type TableRow = { key: string[]; value: string[]; formatted?: { key: number; value: { first: number; second: number } } };

/**
 * Reads steer_table: 65,537 rows, ~10 MB of bpftool JSON. The rows' BTF view (`formatted`) is
 * read when present: two numbers per bucket instead of twelve hex strings.
 */
async function readTable(path: string): Promise<Result<Bucket[], BpfError>> {
  const op = `map dump ${path}`;
  const res = await run('bpftool', ['-j', 'map', 'dump', 'pinned', path], { timeoutMs: 120_000 });
  if (!res.ok) return err({ code: 'bpf_failed', op, message: res.error.message, cause: res.error });
  let rows: TableRow[];
  try {
    rows = JSON.parse(res.value.stdout) as TableRow[];
  } catch (e) {
    return err({ code: 'bpf_bad_output', op, message: `unreadable bpftool output: ${(e as Error).message}`, cause: e as Error });
  }
  const table: Bucket[] = new Array<Bucket>(STEER_BUCKETS).fill({ first: null, second: null });
  for (const r of rows) {
    if (r.formatted) {
      const i = r.formatted.key;
      if (i >= 0 && i < STEER_BUCKETS) table[i] = { first: be32FromHost(r.formatted.value.first), second: be32FromHost(r.formatted.value.second) };
      continue;
    }
    const key = Buffer.from(r.key.map((h) => parseInt(h, 16)));
    const i = readHostU32(key);
    if (i < STEER_BUCKETS) table[i] = decodeBucket(Buffer.from(r.value.map((h) => parseInt(h, 16))));
  }
  return ok(table);
}

/**
 * How long the Linux implementation trusts its copy of steer_table (what it last read or wrote)
 * before reading the kernel's again: reading all 65,537 buckets costs 1–3 s of bpftool CPU on a
 * busy machine, far too much for every reconcile pass (the agent's drift pass runs every 30 s,
 * and a lab runs nine agents on two cores), while the table changes only through us. Drift made
 * by hand is repaired within this time; a failed write drops the copy at once.
 */
export const TABLE_REREAD_MS = 600_000;

/** The Linux implementation over one loaded edge's pinned maps. */
export function linuxSteerMaps(pins: Pick<EdgePins, 'root'>, opts: { tableRereadMs?: number } = {}): SteerMapsApi {
  const paths = steerMapPaths(pins);
  const dump = async (m: SteerMapName) => mapDump(paths[m]);
  let cache: { table: Bucket[]; at: number } | null = null;
  const rereadMs = opts.tableRereadMs ?? TABLE_REREAD_MS;
  return {
    async read() {
      const fresh = cache !== null && performance.now() - cache.at < rereadMs;
      const [cfgRows, tableRows, svc, peers, egress, slices, tenants] = await Promise.all([
        dump('steer_cfg'),
        fresh ? Promise.resolve(ok(cache?.table as Bucket[])) : readTable(paths.steer_table),
        dump('steer_svc'),
        dump('steer_peers'),
        dump('steer_egress'),
        dump('steer_slices'),
        dump('steer_tenant'),
      ]);
      for (const r of [cfgRows, tableRows, svc, peers, egress, slices, tenants]) if (!r.ok) return r;
      if (!cfgRows.ok || !tableRows.ok || !svc.ok || !peers.ok || !egress.ok || !slices.ok || !tenants.ok) throw new Error('unreachable');
      const cfgRow = cfgRows.value[0];
      if (!fresh) cache = { table: tableRows.value, at: performance.now() };
      const table = [...tableRows.value];
      const eg = new Map<string, EgressEntry>();
      for (const r of egress.value) {
        const e = r.value ? decodeEgress(r.value) : null;
        // An entry we cannot read is shown with an impossible slice size, so the plan rewrites it.
        eg.set(readSteerIp(r.key), e ?? { kind: 'slices', sliceSize: 0 });
      }
      const sl = new Map<string, string>();
      for (const r of slices.value) {
        const k = decodeSliceKey(r.key);
        sl.set(sliceKey(k.ip, k.slice), readAddr4(r.value ?? Buffer.alloc(4)) ?? '0.0.0.0');
      }
      return ok({
        cfg: cfgRow?.value ? decodeCfg(cfgRow.value) : { self: null, port: 0, enabled: false },
        table,
        services: svc.value.map((r) => readSteerIp(r.key)).sort(),
        peers: peers.value.map((r) => readAddr4(r.key) ?? '0.0.0.0').sort(),
        egress: eg,
        slices: sl,
        tenants: tenants.value.map((r) => decodeTenantKey(r.key)).sort(),
      });
    },
    async write(writes) {
      const op = `steer maps update (${writes.length} changes)`;
      if (writes.length === 0) return ok(undefined);
      const bad = Object.values(paths).find((p) => !BATCH_SAFE_PATH.test(p));
      if (bad) return err({ code: 'bpf_failed', op, message: `pin path ${JSON.stringify(bad)} has characters a bpftool batch cannot carry; pin the maps under a plain path` });
      const dir = await mkdtemp(join(tmpdir(), 'anyedge-steer-'));
      try {
        const file = join(dir, 'batch.txt');
        await writeFile(file, writes.map((w) => batchLine(paths, w)).join(''), { mode: 0o600 });
        const res = await run('bpftool', ['batch', 'file', file], { timeoutMs: 120_000 });
        // What reached the kernel is unknown after a failure: the next read goes to the kernel.
        if (!res.ok) cache = null;
        else if (cache) for (const w of writes) if (w.op === 'bucket') cache.table[w.index] = { ...w.value };
        if (!res.ok) {
          // bpftool stops at the first failing command and names it ("line N"); earlier lines
          // are applied. Every write is idempotent, so the next plan picks up from there.
          return err({ code: 'bpf_failed', op, message: `${res.error.message}; the writes before the failing line are applied, the next pass redoes the rest`, cause: res.error });
        }
        return ok(undefined);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async counters() {
      const rows = await dump('steer_cnt');
      if (!rows.ok) return rows;
      return ok(sumCounters(rows.value.map((r) => ({ index: readHostU32(r.key), perCpu: r.perCpu ?? [] }))));
    },
  };
}

/** Sums per-CPU counter rows into named counters. */
function sumCounters(rows: ReadonlyArray<{ index: number; perCpu: readonly Buffer[] }>): Record<SteerCounterName, bigint> {
  const out = Object.fromEntries(STEER_COUNTERS.map((n) => [n, 0n])) as Record<SteerCounterName, bigint>;
  for (const r of rows) {
    const name = STEER_COUNTERS[r.index];
    if (name !== undefined) out[name] = r.perCpu.reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
  }
  return out;
}

/** The fake, plus its canonical text and a way to move its counters. */
export interface FakeSteerMaps extends SteerMapsApi {
  dump(): string;
  count(name: SteerCounterName, n: number): void;
  /** Number of `write` calls so far: tests check that the table is one write, not 65,537. */
  readonly writes: number;
}

/** An in-memory fake with the Linux maps' semantics (array: every bucket exists; hashes: keys). */
export function fakeSteerMaps(): FakeSteerMaps {
  let cfg: SteerCfg = { self: null, port: 0, enabled: false };
  const table: Bucket[] = new Array<Bucket>(STEER_BUCKETS).fill({ first: null, second: null });
  const services = new Set<string>();
  const peers = new Set<string>();
  const egress = new Map<string, EgressEntry>();
  const slices = new Map<string, string>();
  const tenants = new Set<string>();
  const counters = Object.fromEntries(STEER_COUNTERS.map((n) => [n, 0n])) as Record<SteerCounterName, bigint>;
  let writes = 0;
  return {
    get writes() {
      return writes;
    },
    async read() {
      return ok({ cfg: { ...cfg }, table: [...table], services: [...services].sort(), peers: [...peers].sort(), egress: new Map(egress), slices: new Map(slices), tenants: [...tenants].sort() });
    },
    async write(ws) {
      writes++;
      for (const w of ws) {
        switch (w.op) {
          case 'cfg':
            cfg = { ...w.value };
            break;
          case 'bucket':
            if (!Number.isInteger(w.index) || w.index < 0 || w.index >= STEER_BUCKETS)
              return err({ code: 'bpf_failed', op: 'map update steer_table', message: `bucket ${w.index} is outside steer_table (0–${STEER_BUCKETS - 1})` });
            table[w.index] = { ...w.value };
            break;
          case 'svc-put':
            services.add(w.ip);
            break;
          case 'svc-del':
            services.delete(w.ip);
            break;
          case 'peer-put':
            peers.add(w.ip);
            break;
          case 'peer-del':
            peers.delete(w.ip);
            break;
          case 'egress-put':
            egress.set(w.ip, w.value);
            break;
          case 'egress-del':
            egress.delete(w.ip);
            break;
          case 'slice-put':
            slices.set(sliceKey(w.ip, w.slice), w.server);
            break;
          case 'slice-del':
            slices.delete(sliceKey(w.ip, w.slice));
            break;
          case 'tenant-put':
            tenants.add(w.cidr);
            break;
          case 'tenant-del':
            tenants.delete(w.cidr);
            break;
        }
      }
      return ok(undefined);
    },
    async counters() {
      return ok({ ...counters });
    },
    count(name, n) {
      counters[name] += BigInt(n);
    },
    dump() {
      const owners = new Map<string, number>();
      for (const b of table) owners.set(bucketText(b), (owners.get(bucketText(b)) ?? 0) + 1);
      const lines = [
        `bpf steer_cfg ${cfgText(cfg)}`,
        ...[...owners.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([o, n]) => `bpf steer_table ${o}: ${n} buckets`),
        ...[...services].sort().map((s) => `bpf steer_svc ${s}`),
        ...[...peers].sort().map((p) => `bpf steer_peers ${p}`),
        ...[...egress.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([ip, e]) => `bpf steer_egress ${ip}: ${egressText(e)}`),
        ...[...slices.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, s]) => `bpf steer_slices ${k}: ${s}`),
        ...[...tenants].sort().map((c) => `bpf steer_tenant ${c}`),
      ];
      return lines.join('\n') + '\n';
    },
  };
}
