/**
 * Byte layouts of the structs in bpf/anyedge.h, and their encoders. The layouts are data, so a
 * test can compare each one with the compiled objects' BTF (sizes and offsets) and fail on any
 * drift instead of relying on a "keep in sync" comment.
 */
import { endianness } from 'node:os';
import { ipv4Bytes as wireIpv4Bytes, macBytes } from '../../wire/addr.ts';

/** How one field is stored. `be*` fields are in network order; plain ints in host order. */
export type FieldKind = 'u8' | 'u16' | 'u32' | 'u64' | 'be32' | 'mac';

/** One field of a struct. */
export interface FieldSpec {
  readonly name: string;
  readonly offset: number;
  readonly kind: FieldKind;
}

/** One struct: its C name, total size and fields. */
export interface StructSpec {
  readonly name: string;
  readonly size: number;
  readonly fields: readonly FieldSpec[];
}

const SIZE: Record<FieldKind, number> = { u8: 1, u16: 2, u32: 4, u64: 8, be32: 4, mac: 6 };

/** Width in bytes of a field kind. */
export function fieldSize(kind: FieldKind): number {
  return SIZE[kind];
}

/** struct gre_encap_info: value of gre_encap (key: tunnel device ifindex, u32). */
export const GRE_ENCAP_INFO: StructSpec = {
  name: 'gre_encap_info',
  size: 36,
  fields: [
    { name: 'local', offset: 0, kind: 'be32' },
    { name: 'remote', offset: 4, kind: 'be32' },
    { name: 'key', offset: 8, kind: 'be32' },
    { name: 'out_ifindex', offset: 12, kind: 'u32' },
    { name: 'mtu', offset: 16, kind: 'u16' },
    { name: 'flags', offset: 18, kind: 'u8' },
    { name: 'ttl', offset: 19, kind: 'u8' },
    { name: 'src_mac', offset: 20, kind: 'mac' },
    { name: 'dst_mac', offset: 26, kind: 'mac' },
    { name: 'stats_idx', offset: 32, kind: 'u32' },
  ],
};

/** struct gre_decap_key: key of gre_decap. */
export const GRE_DECAP_KEY: StructSpec = {
  name: 'gre_decap_key',
  size: 16,
  fields: [
    { name: 'remote', offset: 0, kind: 'be32' },
    { name: 'local', offset: 4, kind: 'be32' },
    { name: 'key', offset: 8, kind: 'be32' },
    { name: 'has_key', offset: 12, kind: 'u32' },
  ],
};

/** struct gre_decap_info: value of gre_decap. */
export const GRE_DECAP_INFO: StructSpec = {
  name: 'gre_decap_info',
  size: 20,
  fields: [
    { name: 'ifindex', offset: 0, kind: 'u32' },
    { name: 'src_mac', offset: 4, kind: 'mac' },
    { name: 'dst_mac', offset: 10, kind: 'mac' },
    { name: 'stats_idx', offset: 16, kind: 'u32' },
  ],
};

/** struct tunnel_stats: per-CPU value of tunnel_stats. */
export const TUNNEL_STATS: StructSpec = {
  name: 'tunnel_stats',
  size: 48,
  fields: [
    { name: 'encap_packets', offset: 0, kind: 'u64' },
    { name: 'encap_bytes', offset: 8, kind: 'u64' },
    { name: 'decap_packets', offset: 16, kind: 'u64' },
    { name: 'decap_bytes', offset: 24, kind: 'u64' },
    { name: 'mss_clamped', offset: 32, kind: 'u64' },
    { name: 'too_big', offset: 40, kind: 'u64' },
  ],
};

/** Every struct the TypeScript side encodes or decodes. */
export const STRUCTS: readonly StructSpec[] = [GRE_ENCAP_INFO, GRE_DECAP_KEY, GRE_DECAP_INFO, TUNNEL_STATS];

/** Field values: numbers/bigints for ints, dotted-quad strings for be32 addresses or numbers for keys, `aa:bb:…` for MACs. */
export type StructValue = Record<string, number | bigint | string>;

const LE = endianness() === 'LE';

/** Encodes a struct; missing fields are zero. Throws on an unknown field name (a bug, not input). */
export function encodeStruct(spec: StructSpec, v: StructValue): Buffer {
  const buf = Buffer.alloc(spec.size);
  for (const name of Object.keys(v)) {
    if (!spec.fields.some((f) => f.name === name)) throw new Error(`${spec.name} has no field ${name}`);
  }
  for (const f of spec.fields) {
    const x = v[f.name];
    if (x === undefined) continue;
    switch (f.kind) {
      case 'u8':
        buf.writeUInt8(Number(x), f.offset);
        break;
      case 'u16':
        if (LE) buf.writeUInt16LE(Number(x), f.offset);
        else buf.writeUInt16BE(Number(x), f.offset);
        break;
      case 'u32':
        if (LE) buf.writeUInt32LE(Number(x), f.offset);
        else buf.writeUInt32BE(Number(x), f.offset);
        break;
      case 'u64':
        if (LE) buf.writeBigUInt64LE(BigInt(x), f.offset);
        else buf.writeBigUInt64BE(BigInt(x), f.offset);
        break;
      case 'be32':
        if (typeof x === 'string') ipv4Bytes(x).copy(buf, f.offset);
        else buf.writeUInt32BE(Number(x), f.offset);
        break;
      case 'mac':
        buf.set(macBytes(String(x)), f.offset);
        break;
    }
  }
  return buf;
}

/** Decodes a struct into numbers (ints), bigints (u64), dotted quads (be32) and MAC strings. */
export function decodeStruct(spec: StructSpec, buf: Buffer): StructValue {
  if (buf.length < spec.size) throw new Error(`${spec.name}: ${buf.length} bytes, need ${spec.size}`);
  const out: StructValue = {};
  for (const f of spec.fields) {
    switch (f.kind) {
      case 'u8':
        out[f.name] = buf.readUInt8(f.offset);
        break;
      case 'u16':
        out[f.name] = LE ? buf.readUInt16LE(f.offset) : buf.readUInt16BE(f.offset);
        break;
      case 'u32':
        out[f.name] = LE ? buf.readUInt32LE(f.offset) : buf.readUInt32BE(f.offset);
        break;
      case 'u64':
        out[f.name] = LE ? buf.readBigUInt64LE(f.offset) : buf.readBigUInt64BE(f.offset);
        break;
      case 'be32':
        out[f.name] = [...buf.subarray(f.offset, f.offset + 4)].join('.');
        break;
      case 'mac':
        out[f.name] = [...buf.subarray(f.offset, f.offset + 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
        break;
    }
  }
  return out;
}

/** A host-order u32, as used for ifindex and array-index keys. */
export function u32Key(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}

/** Four bytes of an IPv4 address in network order (throws on bad text: callers pass validated config). */
export function ipv4Bytes(ip: string): Buffer {
  return Buffer.from(wireIpv4Bytes(ip));
}

/** The edge_counters indexes, in the order of enum edge_counter in bpf/anyedge.h. */
export const EDGE_COUNTERS = [
  'gre_no_tunnel',
  'gre_malformed',
  'gre_unsupported',
  'gre_fragment',
  'gre_decap',
  'encap_no_tunnel',
  'encap_not_ip',
  'encap_too_big',
  'encap_failed',
  'encap',
] as const;
