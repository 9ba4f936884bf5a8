/**
 * Byte layouts of the steering stage's map keys and values (bpf/steer.h), and their encoders.
 * steer-layout.test.ts compares every layout with the compiled object's BTF, so the two sides
 * cannot drift apart silently.
 */
import { ipv4Bytes, ipv6Bytes, formatIpv4Addr, formatIpv6Addr } from '../../wire/addr.ts';
import type { StructSpec } from './layout.ts';
import { formatIp, mustCidr } from '../../model/net.ts';

/** struct steer_cfg: steer_cfg[0]. The port is in network order (written by hand below). */
export const STEER_CFG: StructSpec = {
  name: 'steer_cfg',
  size: 8,
  fields: [
    { name: 'self', offset: 0, kind: 'be32' },
    { name: 'port', offset: 4, kind: 'u16' },
    { name: 'enabled', offset: 6, kind: 'u8' },
    { name: '_pad', offset: 7, kind: 'u8' },
  ],
};

/** struct steer_bucket: value of steer_table. */
export const STEER_BUCKET: StructSpec = {
  name: 'steer_bucket',
  size: 8,
  fields: [
    { name: 'first', offset: 0, kind: 'be32' },
    { name: 'second', offset: 4, kind: 'be32' },
  ],
};

/** struct steer_egress: value of steer_egress. */
export const STEER_EGRESS: StructSpec = {
  name: 'steer_egress',
  size: 8,
  fields: [
    { name: 'server', offset: 0, kind: 'be32' },
    { name: 'kind', offset: 4, kind: 'u8' },
    { name: 'shift', offset: 5, kind: 'u8' },
    { name: '_pad', offset: 6, kind: 'u16' },
  ],
};

/** struct steer_slice_key: key of steer_slices. */
export const STEER_SLICE_KEY: StructSpec = {
  name: 'steer_slice_key',
  size: 8,
  fields: [
    { name: 'ip', offset: 0, kind: 'be32' },
    { name: 'slice', offset: 4, kind: 'u32' },
  ],
};

/** The structs with only fixed-width fields, compared field by field with BTF. */
export const STEER_STRUCTS: readonly StructSpec[] = [STEER_CFG, STEER_BUCKET, STEER_EGRESS, STEER_SLICE_KEY];

/** struct steer_tenant_key (LPM-trie key of steer_tenant): a u32 prefix length, then a steer_ip. */
export const STEER_TENANT_KEY_SIZE = 20;

/** struct steer_ip is one 16-byte array: compared by size. */
export const STEER_IP_SIZE = 16;

/** Buckets of steer_table (bpf/steer.h STEER_BUCKETS = compile/maglev.ts MAGLEV_SIZE). */
export const STEER_BUCKETS = 65537;

/** steer_egress.kind values. */
export const STEER_EG_SLICES = 1;
export const STEER_EG_SERVER = 2;

/** The steer_cnt indexes, in the order of enum steer_counter in bpf/steer.h. */
export const STEER_COUNTERS = [
  'local',
  'forward',
  'forward_second',
  'decap',
  'bad_peer',
  'malformed',
  'egress_local',
  'egress_forward',
  'egress_unowned',
  'no_route',
  'via_stack',
  'tenant_local',
  'tenant_forward',
  'tenant_forward_second',
  'tunnel_local',
  'tunnel_forward',
  'tunnel_forward_second',
] as const;

/** A steer_cnt counter name. */
export type SteerCounterName = (typeof STEER_COUNTERS)[number];

/** The maps of the steering stage, pinned with the edge's other maps (loader.ts pinmaps). */
export const STEER_MAPS = ['steer_cfg', 'steer_table', 'steer_svc', 'steer_peers', 'steer_egress', 'steer_slices', 'steer_tenant', 'steer_cnt'] as const;
export type SteerMapName = (typeof STEER_MAPS)[number];

const LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A host-order u32 (array indexes, counters' keys). */
export function hostU32(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return b;
}

/** Reads a host-order u32. */
export function readHostU32(b: Buffer, off = 0): number {
  return LE ? b.readUInt32LE(off) : b.readUInt32BE(off);
}

/** An IPv4 address as 4 bytes in network order; 0.0.0.0 for null (no server). */
export function addr4(ip: string | null): Buffer {
  return ip === null ? Buffer.alloc(4) : Buffer.from(ipv4Bytes(ip));
}

/** 4 network-order bytes as an address; null for 0.0.0.0 (no server). */
export function readAddr4(b: Buffer, off = 0): string | null {
  const v = b.readUInt32BE(off);
  return v === 0 ? null : formatIpv4Addr(b, off);
}

/** struct steer_ip: IPv6, or IPv4 as ::ffff:a.b.c.d. */
export function steerIp(ip: string): Buffer {
  const b = Buffer.alloc(16);
  if (ip.includes(':')) b.set(ipv6Bytes(ip));
  else {
    b[10] = 0xff;
    b[11] = 0xff;
    b.set(ipv4Bytes(ip), 12);
  }
  return b;
}

/** Reads a struct steer_ip back to canonical text. */
export function readSteerIp(b: Buffer): string {
  const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? formatIpv4Addr(b, 12) : formatIpv6Addr(b);
}

/** steer_cfg's value. */
export interface SteerCfg {
  readonly self: string | null;
  readonly port: number;
  readonly enabled: boolean;
}

export function encodeCfg(c: SteerCfg): Buffer {
  const b = Buffer.alloc(STEER_CFG.size);
  addr4(c.self).copy(b, 0);
  b.writeUInt16BE(c.port, 4);
  b[6] = c.enabled ? 1 : 0;
  return b;
}

export function decodeCfg(b: Buffer): SteerCfg {
  return { self: readAddr4(b, 0), port: b.readUInt16BE(4), enabled: b[6] !== 0 };
}

/** One bucket: the first owner's and the second choice's addresses (null: none). */
export interface Bucket {
  readonly first: string | null;
  readonly second: string | null;
}

export function encodeBucket(x: Bucket): Buffer {
  return Buffer.concat([addr4(x.first), addr4(x.second)]);
}

export function decodeBucket(b: Buffer): Bucket {
  return { first: readAddr4(b, 0), second: readAddr4(b, 4) };
}

/** Who owns an egress address, as the stage reads it. */
export type EgressEntry = { readonly kind: 'slices'; readonly sliceSize: number } | { readonly kind: 'server'; readonly server: string };

export function encodeEgress(e: EgressEntry): Buffer {
  const b = Buffer.alloc(STEER_EGRESS.size);
  if (e.kind === 'server') {
    addr4(e.server).copy(b, 0);
    b[4] = STEER_EG_SERVER;
  } else {
    b[4] = STEER_EG_SLICES;
    b[5] = Math.log2(e.sliceSize);
  }
  return b;
}

export function decodeEgress(b: Buffer): EgressEntry | null {
  if (b[4] === STEER_EG_SERVER) {
    const server = readAddr4(b, 0);
    return server === null ? null : { kind: 'server', server };
  }
  if (b[4] === STEER_EG_SLICES) return { kind: 'slices', sliceSize: 2 ** (b[5] as number) };
  return null;
}

export function encodeSliceKey(ip: string, slice: number): Buffer {
  const b = Buffer.alloc(STEER_SLICE_KEY.size);
  addr4(ip).copy(b, 0);
  hostU32(slice).copy(b, 4);
  return b;
}

export function decodeSliceKey(b: Buffer): { ip: string; slice: number } {
  return { ip: readAddr4(b, 0) ?? '0.0.0.0', slice: readHostU32(b, 4) };
}

/**
 * steer_tenant's key for a prefix: its length counted over struct steer_ip (IPv4 + 96, as the
 * address is ::ffff:a.b.c.d), in host order as the LPM trie wants it, then the address.
 */
export function encodeTenantKey(cidr: string): Buffer {
  const c = mustCidr(cidr);
  const b = Buffer.alloc(STEER_TENANT_KEY_SIZE);
  hostU32(c.family === 4 ? c.len + 96 : c.len).copy(b, 0);
  steerIp(formatIp({ family: c.family, value: c.start })).copy(b, 4);
  return b;
}

/** A steer_tenant key back to canonical CIDR text. */
export function decodeTenantKey(b: Buffer): string {
  const len = readHostU32(b, 0);
  const ip = readSteerIp(b.subarray(4, 20));
  return `${ip}/${ip.includes(':') ? len : len - 96}`;
}
