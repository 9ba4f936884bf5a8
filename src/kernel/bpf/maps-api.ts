/**
 * The BPF tunnel maps as the reconciler sees them: list, put, delete, for the anycast endpoints,
 * the encap entries (by tunnel device ifindex) and the decap entries. Two implementations: Linux
 * (EdgeMaps over pinned maps, through bpftool) and an in-memory fake with a canonical `dump()`.
 * Every entry of these maps is ours: the maps themselves are pinned under our directory.
 */
import { err, ok, type Result } from '../../lib/result.ts';
import type { BpfError } from './bpftool.ts';
import { EdgeMaps, type DecapEntry, type DecapKey, type EdgeCounterName, type EncapEntry, type TunnelStats } from './edge.ts';
import { EDGE_COUNTERS } from './layout.ts';
import type { EdgePins } from './loader.ts';

/** Map operations the reconciler needs. Deleting an absent entry is success. */
export interface BpfMapsApi {
  listEndpoints(): Promise<Result<string[], BpfError>>;
  putEndpoint(ip: string): Promise<Result<void, BpfError>>;
  deleteEndpoint(ip: string): Promise<Result<void, BpfError>>;
  listEncap(): Promise<Result<Map<number, EncapEntry>, BpfError>>;
  putEncap(ifindex: number, e: EncapEntry): Promise<Result<void, BpfError>>;
  deleteEncap(ifindex: number): Promise<Result<void, BpfError>>;
  listDecap(): Promise<Result<Array<{ key: DecapKey; value: DecapEntry }>, BpfError>>;
  putDecap(k: DecapKey, e: DecapEntry): Promise<Result<void, BpfError>>;
  deleteDecap(k: DecapKey): Promise<Result<void, BpfError>>;
  /** The programs' global drop/pass counters (edge_counters), summed over CPUs. For metrics. */
  edgeCounters(): Promise<Result<Record<EdgeCounterName, bigint>, BpfError>>;
  /** The counters of these tunnel_stats slots (each below 65536), summed over CPUs, in one read. For metrics. */
  tunnelStats(slots: readonly number[]): Promise<Result<Map<number, TunnelStats>, BpfError>>;
}

/** The fake, plus its canonical text and what tests need to move its counters. */
export interface FakeBpfMaps extends BpfMapsApi {
  dump(): string;
  /** Adds to a tunnel_stats slot, as the programs would for the traffic a test says passed. */
  countTunnel(slot: number, add: Partial<Record<keyof TunnelStats, number>>): void;
  /** Adds to one edge_counters reason. */
  countEdge(name: EdgeCounterName, n: number): void;
  /** Zeroes every counter, as reloading the programs (fresh maps) would. */
  resetCounters(): void;
}

/** Slots of tunnel_stats (bpf/maps.h MAX_TUNNELS). */
const TUNNEL_SLOTS = 65536;

/** Canonical text of a decap key: `remote local key|-`. */
export function decapKeyText(k: DecapKey): string {
  return `${k.remote} ${k.local} ${k.key ?? '-'}`;
}

/** Canonical, order-independent text of an encap entry. */
export function encapText(e: EncapEntry): string {
  return `local ${e.local} remote ${e.remote} key ${e.key ?? '-'} out ${e.outIfindex} mtu ${e.mtu} ttl ${e.ttl} src ${e.srcMac} dst ${e.dstMac} stats ${e.statsIdx}`;
}

/** Canonical text of a decap entry. */
export function decapText(e: DecapEntry): string {
  return `ifindex ${e.ifindex} src ${e.srcMac} dst ${e.dstMac} stats ${e.statsIdx}`;
}

const absent = (r: Result<void, BpfError>): Result<void, BpfError> =>
  // bpftool says "delete failed: No such file or directory" for a missing key.
  !r.ok && /No such file or directory|ENOENT/i.test(r.error.message) ? ok(undefined) : r;

/** The Linux implementation over one loaded edge's pinned maps. */
export function linuxBpfMaps(pins: Pick<EdgePins, 'maps'>): BpfMapsApi {
  const m = new EdgeMaps(pins);
  return {
    listEndpoints: () => m.listEndpoints(),
    putEndpoint: (ip) => m.putEndpoint(ip),
    deleteEndpoint: async (ip) => absent(await m.deleteEndpoint(ip)),
    listEncap: () => m.listEncap(),
    putEncap: (i, e) => m.putEncap(i, e),
    deleteEncap: async (i) => absent(await m.deleteEncap(i)),
    listDecap: () => m.listDecap(),
    putDecap: (k, e) => m.putDecap(k, e),
    deleteDecap: async (k) => absent(await m.deleteDecap(k)),
    edgeCounters: () => m.counters(),
    tunnelStats: (slots) => m.tunnelStatsMany(slots),
  };
}

/** An in-memory fake. */
export function fakeBpfMaps(): FakeBpfMaps {
  const endpoints = new Set<string>();
  const encap = new Map<number, EncapEntry>();
  const decap = new Map<string, { key: DecapKey; value: DecapEntry }>();
  const zeroStats = (): TunnelStats => ({ encapPackets: 0n, encapBytes: 0n, decapPackets: 0n, decapBytes: 0n, mssClamped: 0n, tooBig: 0n });
  const zeroEdge = () => Object.fromEntries(EDGE_COUNTERS.map((n) => [n, 0n])) as Record<EdgeCounterName, bigint>;
  // Like the per-CPU array: every slot exists and reads zero until counted.
  let stats = new Map<number, TunnelStats>();
  let edge = zeroEdge();
  const done = async (): Promise<Result<void, BpfError>> => ok(undefined);
  return {
    listEndpoints: async () => ok([...endpoints].sort()),
    putEndpoint: (ip) => (endpoints.add(ip), done()),
    deleteEndpoint: (ip) => (endpoints.delete(ip), done()),
    listEncap: async () => ok(new Map(encap)),
    putEncap: (i, e) => (encap.set(i, { ...e }), done()),
    deleteEncap: (i) => (encap.delete(i), done()),
    listDecap: async () => ok([...decap.values()].map((d) => ({ key: { ...d.key }, value: { ...d.value } }))),
    putDecap: (k, e) => (decap.set(decapKeyText(k), { key: { ...k }, value: { ...e } }), done()),
    deleteDecap: (k) => (decap.delete(decapKeyText(k)), done()),
    edgeCounters: async () => ok({ ...edge }),
    async tunnelStats(slots) {
      const bad = slots.find((s) => !Number.isInteger(s) || s < 0 || s >= TUNNEL_SLOTS);
      if (bad !== undefined) return err({ code: 'bpf_failed', op: `map lookup tunnel_stats (${slots.length} keys)`, message: `slot ${bad} is outside tunnel_stats (0–${TUNNEL_SLOTS - 1})` });
      return ok(new Map(slots.map((s) => [s, { ...(stats.get(s) ?? zeroStats()) }])));
    },
    countTunnel(slot, add) {
      const cur = stats.get(slot) ?? zeroStats();
      const next = { ...cur };
      for (const [k, v] of Object.entries(add) as [keyof TunnelStats, number][]) next[k] = cur[k] + BigInt(v);
      stats.set(slot, next);
    },
    countEdge(name, n) {
      edge[name] += BigInt(n);
    },
    resetCounters() {
      stats = new Map();
      edge = zeroEdge();
    },
    dump() {
      const lines = [
        ...[...endpoints].sort().map((e) => `bpf gre_endpoints ${e}`),
        ...[...encap.entries()].sort(([a], [b]) => a - b).map(([i, e]) => `bpf gre_encap ${i}: ${encapText(e)}`),
        ...[...decap.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, d]) => `bpf gre_decap ${k}: ${decapText(d.value)}`),
      ];
      return lines.join('\n') + (lines.length ? '\n' : '');
    },
  };
}
