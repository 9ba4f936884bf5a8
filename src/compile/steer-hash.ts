/**
 * The flow hash of the XDP steering stage (bpf/steer.h `steer_parse`), in TypeScript: Linux's
 * jhash_3words over (source, destination, ports) with the protocol as the seed. Tests and tools
 * use it to say which bucket, hence which server, a flow belongs to; a BPF_PROG_TEST_RUN test
 * (kernel/bpf/steer.test.ts) checks that both sides agree.
 */
import { ipv4Bytes, ipv6Bytes } from '../wire/addr.ts';
import { MAGLEV_SIZE } from './maglev.ts';

const rol32 = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/** Linux's jhash_3words (include/linux/jhash.h). */
export function jhash3(a: number, b: number, c: number, initval: number): number {
  const init = (0xdeadbeef + (3 << 2) + initval) >>> 0;
  a = (a + init) >>> 0;
  b = (b + init) >>> 0;
  c = (c + init) >>> 0;
  c = ((c ^ b) - rol32(b, 14)) >>> 0;
  a = ((a ^ c) - rol32(c, 11)) >>> 0;
  b = ((b ^ a) - rol32(a, 25)) >>> 0;
  c = ((c ^ b) - rol32(b, 16)) >>> 0;
  a = ((a ^ c) - rol32(c, 4)) >>> 0;
  b = ((b ^ a) - rol32(a, 14)) >>> 0;
  c = ((c ^ b) - rol32(b, 24)) >>> 0;
  return c;
}

/** A flow as the stage hashes it. Ports are 0 for protocols without them. */
export interface Flow {
  readonly src: string;
  readonly dst: string;
  /** IP protocol number (6 TCP, 17 UDP). */
  readonly proto: number;
  readonly sport: number;
  readonly dport: number;
}

/** An address folded to 32 bits: IPv4 as is, IPv6 as the XOR of its four words (big-endian). */
function fold(ip: string): number {
  const b = Buffer.from(ip.includes(':') ? ipv6Bytes(ip) : ipv4Bytes(ip));
  let v = 0;
  for (let i = 0; i < b.length; i += 4) v = (v ^ b.readUInt32BE(i)) >>> 0;
  return v;
}

/** The stage's flow hash. */
export function flowHash(f: Flow): number {
  return jhash3(fold(f.src), fold(f.dst), (((f.sport & 0xffff) << 16) | (f.dport & 0xffff)) >>> 0, f.proto);
}

/** The Maglev bucket of a flow. */
export function flowBucket(f: Flow, size = MAGLEV_SIZE): number {
  return flowHash(f) % size;
}

/**
 * The hash of flows to protected tenant prefixes (bpf/steer.h `steer_sym_hash`): the same for
 * both directions of a flow, so a client's packets and the customer host's replies (which come
 * back through the GRE tunnel) fall in one bucket, on one server.
 */
export function symmetricFlowHash(f: Flow): number {
  const s = fold(f.src);
  const d = fold(f.dst);
  const sp = f.sport & 0xffff;
  const dp = f.dport & 0xffff;
  return jhash3(Math.min(s, d), Math.max(s, d), ((Math.min(sp, dp) << 16) | Math.max(sp, dp)) >>> 0, f.proto);
}

/** The Maglev bucket of a flow to a protected tenant prefix. */
export function symmetricFlowBucket(f: Flow, size = MAGLEV_SIZE): number {
  return symmetricFlowHash(f) % size;
}
