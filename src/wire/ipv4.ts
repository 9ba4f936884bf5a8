/**
 * IPv4 header (RFC 791) with options; fragments are flagged, not reassembled.
 * ```
 *  0       1       2       3       4       6       8   9   10      12      16      20
 *  |ver|ihl|dscp|ec|total length   |ident  |fl|frag|ttl|pro|cksum  |src    |dst    |options…
 * ```
 * `fragOffset` is exposed in bytes (the field times 8). A fragment with a non-zero offset
 * carries no L4 header; callers (and `decodeFrame`) must not parse one as L4.
 */
import { type Result, ok, err } from '../lib/result.ts';
import { formatIpv4Addr, ipv4Bytes } from './addr.ts';
import { assertField, assertRoom, copyBytes, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { internetChecksum, pseudoHeaderSum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { HeaderView } from './view.ts';

/** Byte offset of version (high nibble) and IHL (low nibble, in 32-bit words). */
export const IPV4_VER_IHL = 0;
/** Byte offset of DSCP (high 6 bits) and ECN (low 2 bits). */
export const IPV4_DSCP_ECN = 1;
/** Byte offset of the total length (header + payload). */
export const IPV4_TOTAL_LEN = 2;
/** Byte offset of the identification. */
export const IPV4_IDENT = 4;
/** Byte offset of flags (3 high bits) and fragment offset (13 bits, 8-byte units). */
export const IPV4_FLAGS_FRAG = 6;
/** Byte offset of the TTL. */
export const IPV4_TTL = 8;
/** Byte offset of the protocol. */
export const IPV4_PROTOCOL = 9;
/** Byte offset of the header checksum. */
export const IPV4_CHECKSUM = 10;
/** Byte offset of the source address. */
export const IPV4_SRC = 12;
/** Byte offset of the destination address. */
export const IPV4_DST = 16;
/** Byte offset of the options (when IHL > 5). */
export const IPV4_OPTIONS = 20;
/** Header length without options. */
export const IPV4_MIN_HEADER_LEN = 20;
/** Header length with the most options (IHL 15). */
export const IPV4_MAX_HEADER_LEN = 60;
/** Largest datagram (the total length field is 16 bits); a fragment may not reach past it. */
export const IPV4_MAX_LEN = 65535;

/** Flag bits in the 16-bit flags/fragment word. */
export const IPV4_FLAG_RESERVED = 0x8000;
/** Don't Fragment. */
export const IPV4_FLAG_DF = 0x4000;
/** More Fragments. */
export const IPV4_FLAG_MF = 0x2000;

/** IPv4 option types (IANA "IP Option Numbers"), copy flag and class included. */
export const Ipv4OptionType = {
  EOL: 0,
  NOP: 1,
  RECORD_ROUTE: 7,
  TIMESTAMP: 68,
  SECURITY: 130,
  LSRR: 131,
  STREAM_ID: 136,
  SSRR: 137,
  ROUTER_ALERT: 148,
} as const;

/** A decoded IPv4 header. */
export interface Ipv4Repr {
  /** Source address, dotted quad. */
  readonly src: string;
  /** Destination address, dotted quad. */
  readonly dst: string;
  /** Protocol of the payload (see `IpProtocol`). */
  readonly protocol: number;
  /** Time to live. */
  readonly ttl: number;
  /** Differentiated Services Code Point, 0..63. */
  readonly dscp: number;
  /** ECN bits, 0..3. */
  readonly ecn: number;
  /** Identification. */
  readonly ident: number;
  /** The reserved ("evil") flag bit; must be 0 on the wire, kept so parse → emit is exact. */
  readonly reservedFlag: boolean;
  /** Don't Fragment. */
  readonly dontFrag: boolean;
  /** More Fragments: this is not the last fragment. */
  readonly moreFrags: boolean;
  /** Fragment offset in bytes (a multiple of 8). Non-zero means no L4 header in this packet. */
  readonly fragOffset: number;
  /** Raw option bytes including padding, a multiple of 4, at most 40 (see {@link parseIpv4Options}). */
  readonly options: Uint8Array;
  /** Payload length: total length minus header length. */
  readonly payloadLen: number;
}

/** One IPv4 option: EOL and NOP have empty data; others their bytes after type and length. */
export interface Ipv4Option {
  /** Option type byte. */
  readonly type: number;
  /** Option data (after the type and length bytes). */
  readonly data: Uint8Array;
}

/** Frozen faults the IPv4 view can report. */
export const Ipv4Faults = {
  truncated: fault('truncated', 'ipv4', 'fewer than 20 bytes for the IPv4 header'),
  version: fault('malformed', 'ipv4', 'version field is not 4'),
  ihl: fault('malformed', 'ipv4', 'IHL below 5 (the header is at least 20 bytes)'),
  headerTruncated: fault('truncated', 'ipv4', 'IHL says the header (with options) is longer than the bytes available'),
  totalLenShort: fault('malformed', 'ipv4', 'total length is smaller than the header length'),
  totalLenLong: fault('truncated', 'ipv4', 'total length is larger than the bytes available (capture cut short, or a bad length)'),
  option: fault('malformed', 'ipv4', 'option with a length below 2 or running past the header'),
  fragTooLong: fault('malformed', 'ipv4', 'fragment offset + length reaches past 65535 bytes (a "ping of death" fragment)'),
  checksum: fault('bad_checksum', 'ipv4', 'header checksum does not verify'),
} as const;

/**
 * Walks the IPv4 option TLVs in `b[start, end)` without allocating. Returns -1 when well formed,
 * else the offset of the bad option. Bytes after an EOL are padding and not walked.
 */
export function walkIpv4Options(b: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const t = b[i]!;
    if (t === Ipv4OptionType.EOL) return -1;
    if (t === Ipv4OptionType.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return i;
    const len = b[i + 1]!;
    if (len < 2 || i + len > end) return i;
    i += len;
  }
  return -1;
}

/**
 * A zero-allocation view over an IPv4 header at `off`; `end` bounds the bytes available (the
 * frame's end), while `packetEnd` is where the total length says the packet ends.
 */
export class Ipv4Packet extends HeaderView {

  /** Validates version, lengths and options (not the checksum: see {@link checksumOk}). */
  check(): WireFault | null {
    const b = this.buf;
    const o = this.off;
    const avail = this.end - o;
    this.faultAt = o;
    if (avail < IPV4_MIN_HEADER_LEN) return Ipv4Faults.truncated;
    const vi = b[o]!;
    if (vi >>> 4 !== 4) return Ipv4Faults.version;
    const hl = (vi & 0x0f) * 4;
    if (hl < IPV4_MIN_HEADER_LEN) return Ipv4Faults.ihl;
    if (hl > avail) return Ipv4Faults.headerTruncated;
    const tl = rd16(b, o + IPV4_TOTAL_LEN);
    this.faultAt = o + IPV4_TOTAL_LEN;
    if (tl < hl) return Ipv4Faults.totalLenShort;
    if (tl > avail) return Ipv4Faults.totalLenLong;
    const bad = walkIpv4Options(b, o + IPV4_OPTIONS, o + hl);
    if (bad >= 0) {
      this.faultAt = bad;
      return Ipv4Faults.option;
    }
    if (this.fragOffset + tl - hl > IPV4_MAX_LEN) {
      this.faultAt = o + IPV4_FLAGS_FRAG;
      return Ipv4Faults.fragTooLong;
    }
    return null;
  }

  /** Version nibble. */
  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  /** Header length in bytes (IHL × 4). */
  get headerLen(): number {
    return (this.buf[this.off]! & 0x0f) * 4;
  }
  /** Sets version 4 and the IHL from a header length in bytes. */
  set headerLen(v: number) {
    this.buf[this.off] = 0x40 | (v >>> 2);
  }
  /** DSCP. */
  get dscp(): number {
    return this.buf[this.off + IPV4_DSCP_ECN]! >>> 2;
  }
  /** ECN. */
  get ecn(): number {
    return this.buf[this.off + IPV4_DSCP_ECN]! & 3;
  }
  /** The DSCP/ECN byte. */
  get tos(): number {
    return this.buf[this.off + IPV4_DSCP_ECN]!;
  }
  set tos(v: number) {
    this.buf[this.off + IPV4_DSCP_ECN] = v;
  }
  /** Total length. */
  get totalLen(): number {
    return rd16(this.buf, this.off + IPV4_TOTAL_LEN);
  }
  set totalLen(v: number) {
    wr16(this.buf, this.off + IPV4_TOTAL_LEN, v);
  }
  /** Identification. */
  get ident(): number {
    return rd16(this.buf, this.off + IPV4_IDENT);
  }
  set ident(v: number) {
    wr16(this.buf, this.off + IPV4_IDENT, v);
  }
  /** The flags/fragment-offset word. */
  get flagsFrag(): number {
    return rd16(this.buf, this.off + IPV4_FLAGS_FRAG);
  }
  set flagsFrag(v: number) {
    wr16(this.buf, this.off + IPV4_FLAGS_FRAG, v);
  }
  /** Don't Fragment. */
  get dontFrag(): boolean {
    return (this.flagsFrag & IPV4_FLAG_DF) !== 0;
  }
  /** More Fragments. */
  get moreFrags(): boolean {
    return (this.flagsFrag & IPV4_FLAG_MF) !== 0;
  }
  /** Fragment offset in bytes. */
  get fragOffset(): number {
    return (this.flagsFrag & 0x1fff) * 8;
  }
  /** Whether this is any fragment (first, middle or last). */
  get isFragment(): boolean {
    return (this.flagsFrag & (IPV4_FLAG_MF | 0x1fff)) !== 0;
  }
  /** TTL. */
  get ttl(): number {
    return this.buf[this.off + IPV4_TTL]!;
  }
  set ttl(v: number) {
    this.buf[this.off + IPV4_TTL] = v;
  }
  /** Protocol. */
  get protocol(): number {
    return this.buf[this.off + IPV4_PROTOCOL]!;
  }
  set protocol(v: number) {
    this.buf[this.off + IPV4_PROTOCOL] = v;
  }
  /** Header checksum field. */
  get checksum(): number {
    return rd16(this.buf, this.off + IPV4_CHECKSUM);
  }
  set checksum(v: number) {
    wr16(this.buf, this.off + IPV4_CHECKSUM, v);
  }
  /** Source address as a u32 (no allocation). */
  get src(): number {
    return rd32(this.buf, this.off + IPV4_SRC);
  }
  set src(v: number) {
    wr32(this.buf, this.off + IPV4_SRC, v);
  }
  /** Destination address as a u32. */
  get dst(): number {
    return rd32(this.buf, this.off + IPV4_DST);
  }
  set dst(v: number) {
    wr32(this.buf, this.off + IPV4_DST, v);
  }
  /** Offset of the payload. */
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  /** End (exclusive) of the packet per its total length. */
  get packetEnd(): number {
    return this.off + this.totalLen;
  }
  /** Whether the header checksum verifies. */
  checksumOk(): boolean {
    return internetChecksum(this.buf, this.off, this.headerLen) === 0;
  }
  /** Recomputes and stores the header checksum. */
  fillChecksum(): void {
    wr16(this.buf, this.off + IPV4_CHECKSUM, 0);
    wr16(this.buf, this.off + IPV4_CHECKSUM, internetChecksum(this.buf, this.off, this.headerLen));
  }
  /** Pseudo-header sum for an upper layer of `upperLen` bytes (TCP, UDP) from this header's addresses. */
  pseudoSum(protocol: number, upperLen: number): number {
    return pseudoHeaderSum(this.buf, this.off + IPV4_SRC, this.buf, this.off + IPV4_DST, 4, protocol, upperLen);
  }
}

const view = new Ipv4Packet();

/** Options for {@link parseIpv4}. */
export interface Ipv4ParseOptions {
  /** Verify the header checksum (default true); a mismatch is a `bad_checksum` error. */
  readonly verifyChecksum?: boolean;
}

/** Parses an IPv4 header at `offset`; `end` bounds the bytes available. */
export function parseIpv4(buf: Uint8Array, offset = 0, end = buf.length, opts: Ipv4ParseOptions = {}): Result<Ipv4Repr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) {
    const detail =
      f === Ipv4Faults.totalLenLong || f === Ipv4Faults.totalLenShort ? `total length ${v.totalLen}, header ${v.headerLen}, available ${end - offset}`
      : f === Ipv4Faults.version ? `version ${v.version}`
      : f === Ipv4Faults.headerTruncated ? `header ${v.headerLen}, available ${end - offset}`
      : undefined;
    return err(wireError(f, v.faultAt, detail));
  }
  if (opts.verifyChecksum !== false && !v.checksumOk()) {
    return err(wireError(Ipv4Faults.checksum, offset + IPV4_CHECKSUM, `field 0x${v.checksum.toString(16).padStart(4, '0')}`));
  }
  const hl = v.headerLen;
  const ff = v.flagsFrag;
  return ok({
    src: formatIpv4Addr(buf, offset + IPV4_SRC),
    dst: formatIpv4Addr(buf, offset + IPV4_DST),
    protocol: v.protocol,
    ttl: v.ttl,
    dscp: v.dscp,
    ecn: v.ecn,
    ident: v.ident,
    reservedFlag: (ff & IPV4_FLAG_RESERVED) !== 0,
    dontFrag: (ff & IPV4_FLAG_DF) !== 0,
    moreFrags: (ff & IPV4_FLAG_MF) !== 0,
    fragOffset: (ff & 0x1fff) * 8,
    options: copyBytes(buf, offset + IPV4_OPTIONS, offset + hl),
    payloadLen: v.totalLen - hl,
  });
}

/** Header length of a repr: 20 plus the option bytes. */
export function ipv4HeaderLen(repr: Pick<Ipv4Repr, 'options'>): number {
  return IPV4_MIN_HEADER_LEN + repr.options.length;
}

/**
 * Writes the header at `offset` with a fresh checksum; returns the header length. The payload is
 * not touched. Throws RangeError on a caller bug (no room, options not a multiple of 4 or over
 * 40 bytes, a field out of range).
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, offset = 0): number {
  const hl = ipv4HeaderLen(repr);
  if (repr.options.length % 4 !== 0 || hl > IPV4_MAX_HEADER_LEN) {
    throw new RangeError(`emit ipv4: options must be padded to a multiple of 4 and at most 40 bytes, got ${repr.options.length}; use encodeIpv4Options`);
  }
  assertRoom(buf, offset, hl, 'ipv4');
  assertField(repr.payloadLen, IPV4_MAX_LEN - hl, 'ipv4 payloadLen');
  assertField(repr.fragOffset / 8, 0x1fff, 'ipv4 fragOffset/8');
  assertField(repr.dscp, 63, 'ipv4 dscp');
  assertField(repr.ecn, 3, 'ipv4 ecn');
  assertField(repr.ttl, 255, 'ipv4 ttl');
  assertField(repr.protocol, 255, 'ipv4 protocol');
  assertField(repr.ident, 0xffff, 'ipv4 ident');
  const v = view.reset(buf, offset, buf.length);
  v.headerLen = hl;
  v.tos = (repr.dscp << 2) | repr.ecn;
  v.totalLen = hl + repr.payloadLen;
  v.ident = repr.ident;
  v.flagsFrag = (repr.reservedFlag ? IPV4_FLAG_RESERVED : 0) | (repr.dontFrag ? IPV4_FLAG_DF : 0) | (repr.moreFrags ? IPV4_FLAG_MF : 0) | (repr.fragOffset / 8);
  v.ttl = repr.ttl;
  v.protocol = repr.protocol;
  buf.set(ipv4Bytes(repr.src), offset + IPV4_SRC);
  buf.set(ipv4Bytes(repr.dst), offset + IPV4_DST);
  buf.set(repr.options, offset + IPV4_OPTIONS);
  v.fillChecksum();
  return hl;
}

/** Parses option bytes (e.g. `Ipv4Repr.options`) into a list; stops at EOL (the rest is padding). */
export function parseIpv4Options(bytes: Uint8Array): Result<Ipv4Option[], WireError> {
  const bad = walkIpv4Options(bytes, 0, bytes.length);
  if (bad >= 0) return err(wireError(Ipv4Faults.option, bad));
  const out: Ipv4Option[] = [];
  for (let i = 0; i < bytes.length; ) {
    const t = bytes[i]!;
    if (t === Ipv4OptionType.EOL || t === Ipv4OptionType.NOP) {
      out.push({ type: t, data: new Uint8Array(0) });
      if (t === Ipv4OptionType.EOL) break;
      i++;
      continue;
    }
    const len = bytes[i + 1]!;
    out.push({ type: t, data: copyBytes(bytes, i + 2, i + len) });
    i += len;
  }
  return ok(out);
}

/** Encodes options and pads them with zero (EOL) bytes to a multiple of 4. Throws RangeError past 40 bytes. */
export function encodeIpv4Options(options: readonly Ipv4Option[]): Uint8Array {
  let n = 0;
  for (const o of options) n += o.type <= 1 ? 1 : 2 + o.data.length;
  const out = new Uint8Array((n + 3) & ~3);
  if (out.length > IPV4_MAX_HEADER_LEN - IPV4_MIN_HEADER_LEN) throw new RangeError(`IPv4 options take ${out.length} bytes, at most 40 fit`);
  let i = 0;
  for (const o of options) {
    out[i++] = o.type;
    if (o.type <= 1) continue;
    out[i++] = 2 + o.data.length;
    out.set(o.data, i);
    i += o.data.length;
  }
  return out;
}

