/**
 * Typed access to the edge programs' maps (bpf/maps.h): the GRE tunnels a server encapsulates
 * and decapsulates, the anycast endpoints it answers for, and the counters the programs keep.
 * Callers speak in addresses, ifindexes and MACs; the byte layouts live in layout.ts and are
 * checked against the objects' BTF by a test.
 */
import { ok, type Result } from '../../lib/result.ts';
import { mapDelete, mapDump, mapLookup, mapLookupMany, mapUpdate, type BpfError } from './bpftool.ts';
import { decodeStruct, EDGE_COUNTERS, encodeStruct, GRE_DECAP_INFO, GRE_DECAP_KEY, GRE_ENCAP_INFO, ipv4Bytes, TUNNEL_STATS, u32Key } from './layout.ts';
import type { EdgePins } from './loader.ts';

/** How the encapsulator wraps what is routed into one tunnel device (gre_encap value). */
export interface EncapEntry {
  /** Outer source: the anycast GRE endpoint. */
  readonly local: string;
  /** Outer destination: the customer router. */
  readonly remote: string;
  /** GRE key, or undefined for a keyless tunnel. */
  readonly key?: number;
  /** Device to redirect the encapsulated frame to; 0: it leaves by the tunnel device, to its peer in the server namespace. */
  readonly outIfindex: number;
  /** Largest inner packet; SYNs are clamped to mtu − 40 (IPv4) / mtu − 60 (IPv6). */
  readonly mtu: number;
  readonly ttl: number;
  readonly srcMac: string;
  readonly dstMac: string;
  readonly statsIdx: number;
}

/** Which tunnel an arriving GRE packet belongs to (gre_decap key). */
export interface DecapKey {
  readonly remote: string;
  readonly local: string;
  readonly key?: number;
}

/** Where a decapsulated packet goes (gre_decap value). */
export interface DecapEntry {
  readonly ifindex: number;
  readonly srcMac: string;
  readonly dstMac: string;
  readonly statsIdx: number;
}

/** One tunnel's counters, summed over CPUs. */
export interface TunnelStats {
  readonly encapPackets: bigint;
  readonly encapBytes: bigint;
  readonly decapPackets: bigint;
  readonly decapBytes: bigint;
  readonly mssClamped: bigint;
  readonly tooBig: bigint;
}

export type EdgeCounterName = (typeof EDGE_COUNTERS)[number];

const TUN_F_KEY = 1;

export function encodeEncap(e: EncapEntry): Buffer {
  return encodeStruct(GRE_ENCAP_INFO, {
    local: e.local,
    remote: e.remote,
    key: e.key ?? 0,
    out_ifindex: e.outIfindex,
    mtu: e.mtu,
    flags: e.key === undefined ? 0 : TUN_F_KEY,
    ttl: e.ttl,
    src_mac: e.srcMac,
    dst_mac: e.dstMac,
    stats_idx: e.statsIdx,
  });
}

export function decodeEncap(buf: Buffer): EncapEntry {
  const v = decodeStruct(GRE_ENCAP_INFO, buf);
  const keyed = (Number(v.flags) & TUN_F_KEY) !== 0;
  return {
    local: String(v.local),
    remote: String(v.remote),
    ...(keyed ? { key: buf.readUInt32BE(8) } : {}),
    outIfindex: Number(v.out_ifindex),
    mtu: Number(v.mtu),
    ttl: Number(v.ttl),
    srcMac: String(v.src_mac),
    dstMac: String(v.dst_mac),
    statsIdx: Number(v.stats_idx),
  };
}

export function encodeDecapKey(k: DecapKey): Buffer {
  return encodeStruct(GRE_DECAP_KEY, { remote: k.remote, local: k.local, key: k.key ?? 0, has_key: k.key === undefined ? 0 : 1 });
}

export function decodeDecapKey(buf: Buffer): DecapKey {
  const v = decodeStruct(GRE_DECAP_KEY, buf);
  return { remote: String(v.remote), local: String(v.local), ...(Number(v.has_key) ? { key: buf.readUInt32BE(8) } : {}) };
}

export function encodeDecap(e: DecapEntry): Buffer {
  return encodeStruct(GRE_DECAP_INFO, { ifindex: e.ifindex, src_mac: e.srcMac, dst_mac: e.dstMac, stats_idx: e.statsIdx });
}

export function decodeDecap(buf: Buffer): DecapEntry {
  const v = decodeStruct(GRE_DECAP_INFO, buf);
  return { ifindex: Number(v.ifindex), srcMac: String(v.src_mac), dstMac: String(v.dst_mac), statsIdx: Number(v.stats_idx) };
}

/** The maps of one loaded edge (see loader.ts), read and written through bpftool. */
export class EdgeMaps {
  constructor(private readonly pins: Pick<EdgePins, 'maps'>) {}

  putEncap(ifindex: number, e: EncapEntry): Promise<Result<void, BpfError>> {
    return mapUpdate(this.pins.maps.gre_encap, u32Key(ifindex), encodeEncap(e));
  }

  deleteEncap(ifindex: number): Promise<Result<void, BpfError>> {
    return mapDelete(this.pins.maps.gre_encap, u32Key(ifindex));
  }

  async listEncap(): Promise<Result<Map<number, EncapEntry>, BpfError>> {
    const rows = await mapDump(this.pins.maps.gre_encap);
    if (!rows.ok) return rows;
    return ok(new Map(rows.value.map((r) => [r.key.readUInt32LE(0), decodeEncap(r.value ?? Buffer.alloc(0))])));
  }

  putEndpoint(ip: string): Promise<Result<void, BpfError>> {
    return mapUpdate(this.pins.maps.gre_endpoints, ipv4Bytes(ip), u32Key(1));
  }

  deleteEndpoint(ip: string): Promise<Result<void, BpfError>> {
    return mapDelete(this.pins.maps.gre_endpoints, ipv4Bytes(ip));
  }

  async listEndpoints(): Promise<Result<string[], BpfError>> {
    const rows = await mapDump(this.pins.maps.gre_endpoints);
    if (!rows.ok) return rows;
    return ok(rows.value.map((r) => [...r.key].join('.')).sort());
  }

  putDecap(k: DecapKey, e: DecapEntry): Promise<Result<void, BpfError>> {
    return mapUpdate(this.pins.maps.gre_decap, encodeDecapKey(k), encodeDecap(e));
  }

  deleteDecap(k: DecapKey): Promise<Result<void, BpfError>> {
    return mapDelete(this.pins.maps.gre_decap, encodeDecapKey(k));
  }

  async listDecap(): Promise<Result<Array<{ key: DecapKey; value: DecapEntry }>, BpfError>> {
    const rows = await mapDump(this.pins.maps.gre_decap);
    if (!rows.ok) return rows;
    return ok(rows.value.map((r) => ({ key: decodeDecapKey(r.key), value: decodeDecap(r.value ?? Buffer.alloc(0)) })));
  }

  /** The global drop/pass counters, summed over CPUs. */
  async counters(): Promise<Result<Record<EdgeCounterName, bigint>, BpfError>> {
    const rows = await mapDump(this.pins.maps.edge_counters);
    if (!rows.ok) return rows;
    const out = Object.fromEntries(EDGE_COUNTERS.map((n) => [n, 0n])) as Record<EdgeCounterName, bigint>;
    for (const r of rows.value) {
      const name = EDGE_COUNTERS[r.key.readUInt32LE(0)];
      if (name === undefined) continue;
      out[name] = (r.perCpu ?? []).reduce((s, b) => s + b.readBigUInt64LE(0), 0n);
    }
    return ok(out);
  }

  /** One tunnel's counters, summed over CPUs. */
  async tunnelStats(statsIdx: number): Promise<Result<TunnelStats, BpfError>> {
    const row = await mapLookup(this.pins.maps.tunnel_stats, u32Key(statsIdx));
    if (!row.ok) return row;
    return ok(sumTunnelStats(row.value?.perCpu ?? []));
  }

  /**
   * The counters of many tunnel_stats slots, summed over CPUs, read with one bpftool process.
   * Every slot must be below the map's max_entries (65536), as the compiler allocates them.
   */
  async tunnelStatsMany(slots: readonly number[]): Promise<Result<Map<number, TunnelStats>, BpfError>> {
    const rows = await mapLookupMany(this.pins.maps.tunnel_stats, slots.map((s) => u32Key(s)));
    if (!rows.ok) return rows;
    return ok(new Map(slots.map((s, i) => [s, sumTunnelStats(rows.value[i]?.perCpu ?? [])])));
  }
}

/** One tunnel_stats value per CPU, summed. */
function sumTunnelStats(perCpu: readonly Buffer[]): TunnelStats {
  const sum = { encapPackets: 0n, encapBytes: 0n, decapPackets: 0n, decapBytes: 0n, mssClamped: 0n, tooBig: 0n };
  for (const cpu of perCpu) {
    const v = decodeStruct(TUNNEL_STATS, cpu);
    sum.encapPackets += BigInt(v.encap_packets ?? 0);
    sum.encapBytes += BigInt(v.encap_bytes ?? 0);
    sum.decapPackets += BigInt(v.decap_packets ?? 0);
    sum.decapBytes += BigInt(v.decap_bytes ?? 0);
    sum.mssClamped += BigInt(v.mss_clamped ?? 0);
    sum.tooBig += BigInt(v.too_big ?? 0);
  }
  return sum;
}
