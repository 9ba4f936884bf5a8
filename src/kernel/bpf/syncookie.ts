/**
 * The maps of xdp_edge's SYN-flood stage (bpf/syncookie.h): protected prefixes (LPM tries, one
 * per family) with the MSS our cookie SYN-ACK offers, and the stage's counters, global and per
 * tenant (read, and a tenant's block zeroed before the agent hands it to a new tenant). Written
 * and read through bpftool like the other edge maps; keys and values are encoded here with the
 * layouts below, which syncookie.test.ts compares with the object's BTF.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { err, ok, type Result } from '../../lib/result.ts';
import { familyBits, formatCidr, mustCidr } from '../../model/net.ts';
import { run } from '../exec.ts';
import { mapDelete, mapDump, mapLookupMany, mapUpdate, type BpfError } from './bpftool.ts';
import type { StructSpec } from './layout.ts';
import type { EdgePins } from './loader.ts';

/** The stage's maps, by name (pinned with the other maps of xdp_edge.o). */
export const SYN_MAPS = ['syn_v4', 'syn_v6', 'syn_flows', 'syn_counters', 'syn_tenant_cnt'] as const;
export type SynMapName = (typeof SYN_MAPS)[number];

/** enum syn_counter, in order: what the stage did with a packet to a protected address. */
export const SYN_COUNTERS = ['synack', 'ackOk', 'ackBad', 'flow', 'unanswerable', 'outbound', 'error', 'rstBad'] as const;
export type SynCounterName = (typeof SYN_COUNTERS)[number];
export type SynCounters = Readonly<Record<SynCounterName, bigint>>;

/** SYN_MAX_TENANTS: how many tenants have their own counters (tenant_idx below it). */
export const SYN_MAX_TENANTS = 65536;

/** syn_policy.flags: offer window scale, SACK and timestamps to clients that send timestamps. */
export const SYN_POL_OPTIONS = 0x01;

/** struct syn_policy: value of syn_v4 / syn_v6. */
export const SYN_POLICY: StructSpec = {
  name: 'syn_policy',
  size: 8,
  fields: [
    { name: 'mss', offset: 0, kind: 'u16' },
    { name: 'wscale', offset: 2, kind: 'u8' },
    { name: 'flags', offset: 3, kind: 'u8' },
    { name: 'tenant_idx', offset: 4, kind: 'u32' },
  ],
};

/** struct syn_key4: key of syn_v4 (the address is network order, compared as bytes). */
export const SYN_KEY4: StructSpec = {
  name: 'syn_key4',
  size: 8,
  fields: [
    { name: 'prefixlen', offset: 0, kind: 'u32' },
    { name: 'addr', offset: 4, kind: 'be32' },
  ],
};

/** Sizes of the structs whose fields layout.ts cannot describe (byte arrays). */
export const SYN_SIZES: Readonly<Record<string, number>> = { syn_key6: 20, syn_flow_key: 40 };

/** How one protected prefix is answered. */
export interface SynPolicy {
  /** MSS option of the cookie SYN-ACK, 536–9000 (the model's range). */
  readonly mss: number;
  /**
   * Window scale the SYN-ACK offers when the client sent timestamps (0–14): the tenant
   * namespace's synproxy's, which takes the connection over from the ACK on.
   */
  readonly wscale: number;
  /** Index of the tenant's counters, 0 ≤ idx < SYN_MAX_TENANTS. */
  readonly tenantIdx: number;
}

/**
 * What the agent needs of the stage's maps: the reconciler (agent/syncookie.ts) puts and deletes
 * protected prefixes and zeroes a tenant's counter slots before it hands them to that tenant; the
 * metrics (agent/syn-metrics.ts) read the counters. Linux: `SynCookieMaps`; tests: `fakeSynMaps`.
 */
export interface SynMapsApi {
  protectedPrefixes(): Promise<Result<Map<string, SynPolicy>, BpfError>>;
  protect(cidr: string, policy: SynPolicy): Promise<Result<void, BpfError>>;
  unprotect(cidr: string): Promise<Result<void, BpfError>>;
  /** Sets every counter of this tenant index to zero on every CPU. */
  zeroTenantCounters(tenantIdx: number): Promise<Result<void, BpfError>>;
  /** The stage's global counters, summed over CPUs. */
  counters(): Promise<Result<SynCounters, BpfError>>;
  /** The counters of these tenant indexes, summed over CPUs (one read for all of them). */
  tenantCountersOf(tenantIdxs: readonly number[]): Promise<Result<Map<number, SynCounters>, BpfError>>;
}

/** Pinned paths of the stage's maps for a loaded edge. */
export function synMapPaths(pins: Pick<EdgePins, 'root'>): Readonly<Record<SynMapName, string>> {
  return Object.fromEntries(SYN_MAPS.map((m) => [m, `${pins.root}/maps/${m}`])) as Record<SynMapName, string>;
}

/** LPM-trie key of a prefix: which map, and the key bytes (u32 host-order length, then the address). */
export function synPrefixKey(cidr: string): { map: 'syn_v4' | 'syn_v6'; key: Buffer } {
  const c = mustCidr(cidr);
  const bytes = familyBits(c.family) / 8;
  const key = Buffer.alloc(4 + bytes);
  key.writeUInt32LE(c.len, 0);
  let v = c.start;
  for (let i = bytes - 1; i >= 0; i--) {
    key[4 + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { map: c.family === 4 ? 'syn_v4' : 'syn_v6', key };
}

/** struct syn_policy bytes. */
export function encodeSynPolicy(p: SynPolicy): Buffer {
  const b = Buffer.alloc(SYN_POLICY.size);
  b.writeUInt16LE(p.mss, 0);
  b[2] = p.wscale;
  // Always offer window scale, SACK and timestamps to clients that send timestamps, as the
  // namespace's synproxy (`timestamp sack-perm`) does.
  b[3] = SYN_POL_OPTIONS;
  b.writeUInt32LE(p.tenantIdx, 4);
  return b;
}

/** Decodes struct syn_policy. */
export function decodeSynPolicy(b: Buffer): SynPolicy {
  // An entry without the options flag (written by hand, or by a version that offered the MSS
  // only) reads as window scale -1, which no desired policy has: the reconciler rewrites it.
  return { mss: b.readUInt16LE(0), wscale: ((b[3] as number) & SYN_POL_OPTIONS) !== 0 ? (b[2] as number) : -1, tenantIdx: b.readUInt32LE(4) };
}

function checkPolicy(op: string, p: SynPolicy): Result<void, BpfError> {
  if (!Number.isInteger(p.mss) || p.mss < 536 || p.mss > 9000) return err({ code: 'bpf_failed', op, message: `mss ${p.mss} is outside 536–9000; validate the tenant's synFlood.mss with the model first` });
  if (!Number.isInteger(p.wscale) || p.wscale < 0 || p.wscale > 14) return err({ code: 'bpf_failed', op, message: `wscale ${p.wscale} is outside 0–14 (RFC 7323); validate the tenant's synFlood.wscale with the model first` });
  if (!Number.isInteger(p.tenantIdx) || p.tenantIdx < 0 || p.tenantIdx >= SYN_MAX_TENANTS)
    return err({ code: 'bpf_failed', op, message: `tenant index ${p.tenantIdx} is outside 0–${SYN_MAX_TENANTS - 1}` });
  return ok(undefined);
}

function sumCounters(rows: readonly (readonly Buffer[])[]): SynCounters {
  const out: Record<string, bigint> = {};
  SYN_COUNTERS.forEach((name, i) => {
    out[name] = (rows[i] ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
  });
  return out as SynCounters;
}

function checkIdx(op: string, tenantIdx: number): Result<void, BpfError> {
  if (!Number.isInteger(tenantIdx) || tenantIdx < 0 || tenantIdx >= SYN_MAX_TENANTS) return err({ code: 'bpf_failed', op, message: `tenant index ${tenantIdx} is outside 0–${SYN_MAX_TENANTS - 1}` });
  return ok(undefined);
}

/** Keys of one tenant's slots in syn_tenant_cnt: tenant_idx * SYN_CNT_MAX + counter. */
function tenantKeys(tenantIdx: number): Buffer[] {
  return SYN_COUNTERS.map((_, i) => u32(tenantIdx * SYN_COUNTERS.length + i));
}

/** Pin paths a bpftool batch file can carry (it splits on blanks and has no quoting). */
const BATCH_SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;
const hexArgs = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}

/** The SYN-flood stage's maps of one loaded edge. */
export class SynCookieMaps implements SynMapsApi {
  readonly paths: Readonly<Record<SynMapName, string>>;

  constructor(pins: Pick<EdgePins, 'root'>) {
    this.paths = synMapPaths(pins);
  }

  /** Protects a prefix: SYNs to it are answered from XDP, ACKs must carry a valid cookie. */
  async protect(cidr: string, policy: SynPolicy): Promise<Result<void, BpfError>> {
    const op = `protect ${cidr} from SYN floods`;
    const checked = checkPolicy(op, policy);
    if (!checked.ok) return checked;
    const { map, key } = synPrefixKey(cidr);
    return mapUpdate(this.paths[map], key, encodeSynPolicy(policy));
  }

  /** Stops protecting a prefix; one not protected is success. */
  async unprotect(cidr: string): Promise<Result<void, BpfError>> {
    const { map, key } = synPrefixKey(cidr);
    return mapDelete(this.paths[map], key);
  }

  /**
   * The policy of exactly this prefix, or null. Reads the family's map whole: `bpftool -j map
   * lookup` of an absent key exits 254 with "null" on stdout, indistinguishable from a failure.
   */
  async policy(cidr: string): Promise<Result<SynPolicy | null, BpfError>> {
    const { map, key } = synPrefixKey(cidr);
    const r = await mapDump(this.paths[map]);
    if (!r.ok) return r;
    const hit = r.value.find((e) => e.key.equals(key));
    return ok(hit?.value ? decodeSynPolicy(hit.value) : null);
  }

  /** Every protected prefix with its policy (both families), e.g. for the reconciler's diff. */
  async protectedPrefixes(): Promise<Result<Map<string, SynPolicy>, BpfError>> {
    const out = new Map<string, SynPolicy>();
    for (const map of ['syn_v4', 'syn_v6'] as const) {
      const r = await mapDump(this.paths[map]);
      if (!r.ok) return r;
      for (const e of r.value) {
        if (!e.value) continue;
        out.set(formatKey(map, e.key), decodeSynPolicy(e.value));
      }
    }
    return ok(out);
  }

  /** The stage's global counters, summed over CPUs. */
  async counters(): Promise<Result<SynCounters, BpfError>> {
    const r = await mapLookupMany(this.paths.syn_counters, SYN_COUNTERS.map((_, i) => u32(i)));
    if (!r.ok) return r;
    return ok(sumCounters(r.value.map((e) => e.perCpu ?? [])));
  }

  /** One tenant's counters (by its policy's tenantIdx), summed over CPUs. */
  async tenantCounters(tenantIdx: number): Promise<Result<SynCounters, BpfError>> {
    const op = `read SYN counters of tenant index ${tenantIdx}`;
    const checked = checkIdx(op, tenantIdx);
    if (!checked.ok) return checked;
    const r = await mapLookupMany(this.paths.syn_tenant_cnt, tenantKeys(tenantIdx));
    if (!r.ok) return r;
    return ok(sumCounters(r.value.map((e) => e.perCpu ?? [])));
  }

  /** The counters of several tenant indexes in one bpftool run, summed over CPUs. */
  async tenantCountersOf(tenantIdxs: readonly number[]): Promise<Result<Map<number, SynCounters>, BpfError>> {
    const idxs = [...new Set(tenantIdxs)];
    for (const i of idxs) {
      const checked = checkIdx(`read SYN counters of ${idxs.length} tenant indexes`, i);
      if (!checked.ok) return checked;
    }
    const r = await mapLookupMany(this.paths.syn_tenant_cnt, idxs.flatMap(tenantKeys));
    if (!r.ok) return r;
    const n = SYN_COUNTERS.length;
    return ok(new Map(idxs.map((idx, j) => [idx, sumCounters(r.value.slice(j * n, (j + 1) * n).map((e) => e.perCpu ?? []))])));
  }

  /**
   * Zeroes one tenant index's slots of syn_tenant_cnt on every CPU, in one bpftool run (bpftool
   * copies the one value given to every CPU of a per-CPU map). The maps keep counting in a slot
   * after its prefixes are deleted and never reset it: the agent calls this before it gives the
   * index to a tenant, so that tenant does not start with another one's counts.
   */
  async zeroTenantCounters(tenantIdx: number): Promise<Result<void, BpfError>> {
    const op = `zero SYN counters of tenant index ${tenantIdx}`;
    const checked = checkIdx(op, tenantIdx);
    if (!checked.ok) return checked;
    const map = this.paths.syn_tenant_cnt;
    if (!BATCH_SAFE_PATH.test(map)) return err({ code: 'bpf_failed', op, message: `pin path ${JSON.stringify(map)} has characters a bpftool batch cannot carry; pin the maps under a plain path` });
    const zero = hexArgs(Buffer.alloc(8));
    const dir = await mkdtemp(join(tmpdir(), 'anyedge-syn-'));
    try {
      const file = join(dir, 'batch.txt');
      await writeFile(file, tenantKeys(tenantIdx).map((k) => `map update pinned ${map} key hex ${hexArgs(k)} value hex ${zero}\n`).join(''), { mode: 0o600 });
      const res = await run('bpftool', ['batch', 'file', file]);
      if (!res.ok) return err({ code: 'bpf_failed', op, message: res.error.message, cause: res.error });
      return ok(undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The canonical CIDR of an LPM key read back from a map. */
function formatKey(map: 'syn_v4' | 'syn_v6', key: Buffer): string {
  let start = 0n;
  for (const byte of key.subarray(4)) start = (start << 8n) | BigInt(byte);
  return formatCidr({ family: map === 'syn_v4' ? 4 : 6, start, len: key.readUInt32LE(0) });
}

/** The stage's maps in memory, for tests; `count` plays the XDP program. */
export interface FakeSynMaps extends SynMapsApi {
  /** Protected prefixes (canonical CIDR → policy), as the maps hold them. */
  readonly prefixes: ReadonlyMap<string, SynPolicy>;
  /** Tenant indexes zeroed so far, in order. */
  readonly zeroed: readonly number[];
  /**
   * Counts `n` packets to the protected prefix `cidr` as `counter`, as the program does: in the
   * global counters and in the slots of the prefix's current tenant index. A prefix that is not
   * protected counts nothing (the program finds no policy).
   */
  count(cidr: string, counter: SynCounterName, n?: number): void;
}

/** In-memory SYN-flood maps with the kernel's behaviour: every counter slot exists and reads zero until counted. */
export function fakeSynMaps(initial: Readonly<Record<string, SynPolicy>> = {}): FakeSynMaps {
  const canon = (cidr: string) => formatCidr(mustCidr(cidr));
  const prefixes = new Map(Object.entries(initial).map(([c, p]) => [canon(c), { ...p }]));
  const zero = (): Record<SynCounterName, bigint> => Object.fromEntries(SYN_COUNTERS.map((n) => [n, 0n])) as Record<SynCounterName, bigint>;
  const global = zero();
  const tenants = new Map<number, Record<SynCounterName, bigint>>();
  const zeroed: number[] = [];
  return {
    prefixes,
    zeroed,
    async protectedPrefixes() {
      return ok(new Map([...prefixes].map(([c, p]) => [c, { ...p }])));
    },
    async protect(cidr, policy) {
      const checked = checkPolicy(`protect ${cidr} from SYN floods`, policy);
      if (!checked.ok) return checked;
      prefixes.set(canon(cidr), { mss: policy.mss, wscale: policy.wscale, tenantIdx: policy.tenantIdx });
      return ok(undefined);
    },
    async unprotect(cidr) {
      prefixes.delete(canon(cidr));
      return ok(undefined);
    },
    async zeroTenantCounters(tenantIdx) {
      const checked = checkIdx(`zero SYN counters of tenant index ${tenantIdx}`, tenantIdx);
      if (!checked.ok) return checked;
      tenants.delete(tenantIdx);
      zeroed.push(tenantIdx);
      return ok(undefined);
    },
    async counters() {
      return ok({ ...global });
    },
    async tenantCountersOf(tenantIdxs) {
      for (const i of tenantIdxs) {
        const checked = checkIdx(`read SYN counters of ${tenantIdxs.length} tenant indexes`, i);
        if (!checked.ok) return checked;
      }
      return ok(new Map(tenantIdxs.map((i) => [i, { ...(tenants.get(i) ?? zero()) }])));
    },
    count(cidr, counter, n = 1) {
      const p = prefixes.get(canon(cidr));
      if (!p) return;
      global[counter] += BigInt(n);
      let slots = tenants.get(p.tenantIdx);
      if (!slots) tenants.set(p.tenantIdx, (slots = zero()));
      slots[counter] += BigInt(n);
    },
  };
}
