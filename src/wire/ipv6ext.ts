/**
 * IPv6 extension headers (RFC 8200 §4): hop-by-hop options, routing, fragment, destination
 * options, and the Authentication Header (RFC 4302), each a layer of its own.
 *
 * Lengths differ by type, which is what makes walking them error-prone:
 * - hop-by-hop, routing, destination options: `(hdrExtLen + 1) * 8` bytes;
 * - fragment: always 8 (its second byte is reserved, not a length);
 * - AH: `(payloadLen + 2) * 4` bytes (it counts 32-bit words minus 2, RFC 4302 §2.2), and in
 *   IPv6 it must be a multiple of 8.
 * The walk is bounded by {@link MAX_IPV6_EXT_HEADERS}; hop-by-hop is valid only right after the
 * fixed header (RFC 8200 §4.3).
 */
import { type Result, ok, err } from '../lib/result.ts';
import { EMPTY, assertField, assertRoom, copyBytes, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { IpProtocol } from './ip.ts';

/** Byte offset of the next-header field (all extension headers). */
export const EXT_NEXT_HEADER = 0;
/** Byte offset of the length field (hdrExtLen; AH payload length; reserved in fragment). */
export const EXT_LEN = 1;
/** Routing header: byte offset of the routing type. */
export const RH_TYPE = 2;
/** Routing header: byte offset of segments left. */
export const RH_SEGMENTS_LEFT = 3;
/** Routing header: byte offset of the first address in types 2 and 4 (after 4 type-specific bytes). */
export const RH_FIRST_ADDR = 8;
/** Fragment header: byte offset of the offset/flags word (offset in 8-byte units << 3 | M). */
export const FRAG_OFFSET_FLAGS = 2;
/** Fragment header: byte offset of the identification. */
export const FRAG_IDENT = 4;
/** Fragment header length. */
export const FRAG_HEADER_LEN = 8;
/** AH: byte offset of the SPI. */
export const AH_SPI = 4;
/** AH: byte offset of the sequence number. */
export const AH_SEQ = 8;
/** AH: byte offset of the ICV. */
export const AH_ICV = 12;
/** Routing type 2 (Mobile IPv6 home address). */
export const RH_TYPE_MIP6 = 2;
/** Routing type 4 (Segment Routing Header, RFC 8754). */
export const RH_TYPE_SRH = 4;

/**
 * Most extension headers we walk in one packet. RFC 8200 §4.1's recommended order has at most
 * six (destination options may appear twice); eight allows a little beyond while bounding work.
 */
export const MAX_IPV6_EXT_HEADERS = 8;

/** Whether a next-header value is an extension header we walk. */
export function isIpv6ExtHeader(nh: number): boolean {
  return nh === IpProtocol.HOPOPT || nh === IpProtocol.ROUTING || nh === IpProtocol.FRAGMENT || nh === IpProtocol.DSTOPTS || nh === IpProtocol.AH;
}

/** A decoded extension header; `nextHeader` is the type of what follows it. */
export type Ipv6ExtRepr =
  | { readonly kind: 'hop_by_hop'; readonly nextHeader: number; readonly options: Uint8Array }
  | { readonly kind: 'dest_options'; readonly nextHeader: number; readonly options: Uint8Array }
  | {
      readonly kind: 'routing';
      readonly nextHeader: number;
      readonly routingType: number;
      readonly segmentsLeft: number;
      /** Type-specific bytes after the first 4 (length + 4 is a multiple of 8). */
      readonly data: Uint8Array;
    }
  | { readonly kind: 'fragment'; readonly nextHeader: number; readonly fragOffset: number; readonly moreFrags: boolean; readonly ident: number }
  | { readonly kind: 'auth'; readonly nextHeader: number; readonly spi: number; readonly seq: number; readonly icv: Uint8Array };

/** The next-header number that announces an extension header of this kind. */
export function ipv6ExtProtocol(kind: Ipv6ExtRepr['kind']): number {
  switch (kind) {
    case 'hop_by_hop': return IpProtocol.HOPOPT;
    case 'dest_options': return IpProtocol.DSTOPTS;
    case 'routing': return IpProtocol.ROUTING;
    case 'fragment': return IpProtocol.FRAGMENT;
    case 'auth': return IpProtocol.AH;
  }
}

/** One hop-by-hop / destination option TLV (Pad1 has type 0 and no data). */
export interface Ipv6Option {
  /** Option type (high bits say what to do when unknown, RFC 8200 §4.2). */
  readonly type: number;
  /** Option data. */
  readonly data: Uint8Array;
}

/** Frozen faults the extension-header view can report. */
export const Ipv6ExtFaults = {
  truncated: fault('truncated', 'ipv6ext', 'extension header runs past the IPv6 payload'),
  option: fault('malformed', 'ipv6ext', 'hop-by-hop/destination option TLV runs past its header'),
  authShort: fault('malformed', 'ipv6ext', 'AH shorter than 12 bytes (payload length field below 1)'),
  authAlign: fault('malformed', 'ipv6ext', 'AH length is not a multiple of 8 bytes, as IPv6 requires (RFC 4302 §3.3.3.2.1)'),
  hopByHopNotFirst: fault('malformed', 'ipv6ext', 'hop-by-hop options header not directly after the IPv6 header (RFC 8200 §4.3)'),
  tooMany: fault('limit_exceeded', 'ipv6ext', `more than ${MAX_IPV6_EXT_HEADERS} extension headers`),
} as const;

/** Walks option TLVs in `b[start,end)`; -1 when well formed, else the offset of the bad TLV. */
export function walkIpv6Options(b: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end) {
    if (b[i] === 0) {
      i++; // Pad1 is the one single-byte option.
      continue;
    }
    if (i + 2 > end || i + 2 + b[i + 1]! > end) return i;
    i += 2 + b[i + 1]!;
  }
  return -1;
}

/**
 * A zero-allocation view over one extension header. Its type is not in the header itself (it is
 * the previous header's next-header value), so `reset` takes it.
 */
export class Ipv6ExtHeader {
  /** The underlying buffer. */
  buf: Uint8Array = EMPTY;
  /** Offset of the header in `buf`. */
  off = 0;
  /** End (exclusive) of the IPv6 payload. */
  end = 0;
  /** Next-header value that announced this header (0, 43, 44, 51 or 60). */
  type = 0;
  /** Absolute offset of the last fault `check()` reported. */
  faultAt = 0;

  /** Points the view at a header of `type`. */
  reset(buf: Uint8Array, off: number, end: number, type: number): this {
    this.buf = buf;
    this.off = off;
    this.end = end;
    this.type = type;
    return this;
  }
  /** Validates the header's length and, for option headers, its TLVs. */
  check(): WireFault | null {
    this.faultAt = this.off;
    // Every extension header is at least 8 bytes, so the length byte is there once this passes.
    if (this.end - this.off < 8) return Ipv6ExtFaults.truncated;
    if (this.type === IpProtocol.AH) {
      const hl = this.headerLen;
      this.faultAt = this.off + EXT_LEN;
      if (hl < AH_ICV) return Ipv6ExtFaults.authShort;
      if (hl % 8 !== 0) return Ipv6ExtFaults.authAlign;
    }
    if (this.headerLen > this.end - this.off) {
      this.faultAt = this.off + EXT_LEN;
      return Ipv6ExtFaults.truncated;
    }
    if (this.type === IpProtocol.HOPOPT || this.type === IpProtocol.DSTOPTS) {
      const bad = walkIpv6Options(this.buf, this.off + 2, this.off + this.headerLen);
      if (bad >= 0) {
        this.faultAt = bad;
        return Ipv6ExtFaults.option;
      }
    }
    return null;
  }
  /** Next header after this one. */
  get nextHeader(): number {
    return this.buf[this.off + EXT_NEXT_HEADER]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off + EXT_NEXT_HEADER] = v;
  }
  /** Length of this header in bytes, per its type's rule (see the module comment). */
  get headerLen(): number {
    const l = this.buf[this.off + EXT_LEN]!;
    if (this.type === IpProtocol.FRAGMENT) return FRAG_HEADER_LEN;
    if (this.type === IpProtocol.AH) return (l + 2) * 4;
    return (l + 1) * 8;
  }
  /** Fragment header: offset in bytes. */
  get fragOffset(): number {
    return rd16(this.buf, this.off + FRAG_OFFSET_FLAGS) & 0xfff8;
  }
  /** Fragment header: more fragments follow. */
  get moreFrags(): boolean {
    return (this.buf[this.off + FRAG_OFFSET_FLAGS + 1]! & 1) !== 0;
  }
  /** Fragment header: identification. */
  get fragIdent(): number {
    return rd32(this.buf, this.off + FRAG_IDENT);
  }
  /** Routing header: routing type. */
  get routingType(): number {
    return this.buf[this.off + RH_TYPE]!;
  }
  /** Routing header: segments left. */
  get segmentsLeft(): number {
    return this.buf[this.off + RH_SEGMENTS_LEFT]!;
  }
  /**
   * Routing header: absolute offset of the final destination when it is not the IPv6 header's
   * destination, else -1. That is Segment List[0] of an SRH (RFC 8754 §4.1) or the home address
   * of type 2, when segments are left. Type 0 is deprecated (RFC 5095) and ignored.
   */
  finalDstOffset(): number {
    if (this.type !== IpProtocol.ROUTING || this.segmentsLeft === 0) return -1;
    const t = this.routingType;
    if ((t === RH_TYPE_MIP6 || t === RH_TYPE_SRH) && this.headerLen >= RH_FIRST_ADDR + 16) return this.off + RH_FIRST_ADDR;
    return -1;
  }
}

const view = new Ipv6ExtHeader();

/**
 * Parses the extension header of type `type` (the previous next-header value) at `offset`; `end`
 * is the end of the IPv6 payload.
 */
export function parseIpv6Ext(buf: Uint8Array, offset: number, end: number, type: number): Result<Ipv6ExtRepr, WireError> {
  if (!isIpv6ExtHeader(type)) {
    return err({ code: 'unsupported', layer: 'ipv6ext', offset, message: `next header ${type} is not an extension header we decode` });
  }
  const v = view.reset(buf, offset, end, type);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, `header length ${v.headerLen}, available ${end - offset}`));
  const hl = v.headerLen;
  const nh = v.nextHeader;
  switch (type) {
    case IpProtocol.HOPOPT:
      return ok({ kind: 'hop_by_hop', nextHeader: nh, options: copyBytes(buf, offset + 2, offset + hl) });
    case IpProtocol.DSTOPTS:
      return ok({ kind: 'dest_options', nextHeader: nh, options: copyBytes(buf, offset + 2, offset + hl) });
    case IpProtocol.ROUTING:
      return ok({ kind: 'routing', nextHeader: nh, routingType: v.routingType, segmentsLeft: v.segmentsLeft, data: copyBytes(buf, offset + 4, offset + hl) });
    case IpProtocol.FRAGMENT:
      return ok({ kind: 'fragment', nextHeader: nh, fragOffset: v.fragOffset, moreFrags: v.moreFrags, ident: v.fragIdent });
    default:
      return ok({ kind: 'auth', nextHeader: nh, spi: rd32(buf, offset + AH_SPI), seq: rd32(buf, offset + AH_SEQ), icv: copyBytes(buf, offset + AH_ICV, offset + hl) });
  }
}

/** Length of an extension header repr in bytes. */
export function ipv6ExtHeaderLen(repr: Ipv6ExtRepr): number {
  switch (repr.kind) {
    case 'hop_by_hop':
    case 'dest_options':
      return 2 + repr.options.length;
    case 'routing':
      return 4 + repr.data.length;
    case 'fragment':
      return FRAG_HEADER_LEN;
    case 'auth':
      return AH_ICV + repr.icv.length;
  }
}

/** Writes an extension header at `offset`; returns its length. Throws RangeError when its length is not a multiple of 8. */
export function emitIpv6Ext(repr: Ipv6ExtRepr, buf: Uint8Array, offset = 0): number {
  const hl = ipv6ExtHeaderLen(repr);
  const max = repr.kind === 'auth' ? 1028 : 2048;
  if (hl % 8 !== 0 || hl < 8 || hl > max) {
    throw new RangeError(`emit ipv6ext ${repr.kind}: length ${hl} is not a multiple of 8 in 8..${max}; pad options with padIpv6Options`);
  }
  assertRoom(buf, offset, hl, `ipv6ext ${repr.kind}`);
  assertField(repr.nextHeader, 0xff, 'ipv6ext nextHeader');
  buf[offset + EXT_NEXT_HEADER] = repr.nextHeader;
  switch (repr.kind) {
    case 'hop_by_hop':
    case 'dest_options':
      buf[offset + EXT_LEN] = hl / 8 - 1;
      buf.set(repr.options, offset + 2);
      break;
    case 'routing':
      assertField(repr.routingType, 0xff, 'routing type');
      assertField(repr.segmentsLeft, 0xff, 'routing segmentsLeft');
      buf[offset + EXT_LEN] = hl / 8 - 1;
      buf[offset + RH_TYPE] = repr.routingType;
      buf[offset + RH_SEGMENTS_LEFT] = repr.segmentsLeft;
      buf.set(repr.data, offset + 4);
      break;
    case 'fragment':
      assertField(repr.fragOffset / 8, 0x1fff, 'ipv6 fragOffset/8');
      buf[offset + EXT_LEN] = 0;
      wr16(buf, offset + FRAG_OFFSET_FLAGS, repr.fragOffset | (repr.moreFrags ? 1 : 0));
      wr32(buf, offset + FRAG_IDENT, repr.ident);
      break;
    case 'auth':
      buf[offset + EXT_LEN] = hl / 4 - 2;
      wr16(buf, offset + 2, 0);
      wr32(buf, offset + AH_SPI, repr.spi);
      wr32(buf, offset + AH_SEQ, repr.seq);
      buf.set(repr.icv, offset + AH_ICV);
      break;
  }
  return hl;
}

/**
 * Encodes option TLVs for a hop-by-hop or destination options header and pads them with Pad1 /
 * PadN so the header (2 + options) is a multiple of 8.
 */
export function padIpv6Options(options: readonly Ipv6Option[]): Uint8Array {
  let n = 0;
  for (const o of options) n += o.type === 0 ? 1 : 2 + o.data.length;
  const total = Math.ceil((2 + n) / 8) * 8 - 2;
  const out = new Uint8Array(total);
  let i = 0;
  for (const o of options) {
    out[i++] = o.type;
    if (o.type === 0) continue;
    out[i++] = o.data.length;
    out.set(o.data, i);
    i += o.data.length;
  }
  const pad = total - i;
  // One PadN covers 2+ bytes of padding; a single byte needs Pad1 (already 0 in the new array).
  if (pad >= 2) {
    out[i] = 1;
    out[i + 1] = pad - 2;
  }
  return out;
}

/** Parses hop-by-hop / destination option TLV bytes into a list (Pad1 and PadN included). */
export function parseIpv6Options(bytes: Uint8Array): Result<Ipv6Option[], WireError> {
  const bad = walkIpv6Options(bytes, 0, bytes.length);
  if (bad >= 0) return err(wireError(Ipv6ExtFaults.option, bad));
  const out: Ipv6Option[] = [];
  for (let i = 0; i < bytes.length; ) {
    if (bytes[i] === 0) {
      out.push({ type: 0, data: new Uint8Array(0) });
      i++;
      continue;
    }
    const len = bytes[i + 1]!;
    out.push({ type: bytes[i]!, data: copyBytes(bytes, i + 2, i + 2 + len) });
    i += 2 + len;
  }
  return ok(out);
}
