/**
 * IPv6 fixed header (RFC 8200 §3). Extension headers are separate layers: see `ipv6ext.ts`.
 * ```
 *  0       1       2       3       4       6   7   8               24              40
 *  |ver|traffic class|flow label   |payload len|nh|hl|source (16)  |destination (16)|
 * ```
 */
import { type Result, ok, err } from '../lib/result.ts';
import { formatIpv6Addr, ipv6Bytes } from './addr.ts';
import { assertField, assertRoom, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { pseudoHeaderSum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { IpProtocol } from './ip.ts';
import { HeaderView } from './view.ts';

/** Byte offset of version (4 bits), traffic class (8) and flow label (20). */
export const IPV6_VER_TC_FLOW = 0;
/** Byte offset of the payload length (everything after the fixed header, extension headers included). */
export const IPV6_PAYLOAD_LEN = 4;
/** Byte offset of the next header. */
export const IPV6_NEXT_HEADER = 6;
/** Byte offset of the hop limit. */
export const IPV6_HOP_LIMIT = 7;
/** Byte offset of the source address. */
export const IPV6_SRC = 8;
/** Byte offset of the destination address. */
export const IPV6_DST = 24;
/** Length of the fixed header. */
export const IPV6_HEADER_LEN = 40;
/** Minimum link MTU every IPv6 link must carry (RFC 8200 §5). */
export const IPV6_MIN_MTU = 1280;

/** A decoded IPv6 fixed header. */
export interface Ipv6Repr {
  /** Source address, RFC 5952 text. */
  readonly src: string;
  /** Destination address, RFC 5952 text. */
  readonly dst: string;
  /** Next header (an extension header or the upper-layer protocol). */
  readonly nextHeader: number;
  /** Hop limit. */
  readonly hopLimit: number;
  /** Traffic class (DSCP << 2 | ECN). */
  readonly trafficClass: number;
  /** Flow label, 20 bits. */
  readonly flowLabel: number;
  /** Payload length: extension headers plus upper layer. */
  readonly payloadLen: number;
}

/** Frozen faults the IPv6 view can report. */
export const Ipv6Faults = {
  truncated: fault('truncated', 'ipv6', 'fewer than 40 bytes for the IPv6 header'),
  version: fault('malformed', 'ipv6', 'version field is not 6'),
  jumbo: fault('unsupported', 'ipv6', 'payload length 0 with a hop-by-hop header: a jumbogram (RFC 2675), not decoded'),
  payloadLong: fault('truncated', 'ipv6', 'payload length is larger than the bytes available (capture cut short, or a bad length)'),
} as const;

/** A zero-allocation view over an IPv6 fixed header. */
export class Ipv6Packet extends HeaderView {
  /** Validates version and lengths. */
  check(): WireFault | null {
    const o = this.off;
    const avail = this.end - o;
    this.faultAt = o;
    if (avail < IPV6_HEADER_LEN) return Ipv6Faults.truncated;
    if (this.buf[o]! >>> 4 !== 6) return Ipv6Faults.version;
    const pl = this.payloadLen;
    this.faultAt = o + IPV6_PAYLOAD_LEN;
    if (pl === 0 && this.nextHeader === IpProtocol.HOPOPT) return Ipv6Faults.jumbo;
    if (IPV6_HEADER_LEN + pl > avail) return Ipv6Faults.payloadLong;
    return null;
  }
  /** Version nibble. */
  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  /** The first 32-bit word: version, traffic class, flow label. */
  get verTcFlow(): number {
    return rd32(this.buf, this.off);
  }
  set verTcFlow(v: number) {
    wr32(this.buf, this.off, v);
  }
  /** Traffic class. */
  get trafficClass(): number {
    return (this.verTcFlow >>> 20) & 0xff;
  }
  /** Flow label. */
  get flowLabel(): number {
    return this.verTcFlow & 0xfffff;
  }
  /** Payload length. */
  get payloadLen(): number {
    return rd16(this.buf, this.off + IPV6_PAYLOAD_LEN);
  }
  set payloadLen(v: number) {
    wr16(this.buf, this.off + IPV6_PAYLOAD_LEN, v);
  }
  /** Next header. */
  get nextHeader(): number {
    return this.buf[this.off + IPV6_NEXT_HEADER]!;
  }
  set nextHeader(v: number) {
    this.buf[this.off + IPV6_NEXT_HEADER] = v;
  }
  /** Hop limit. */
  get hopLimit(): number {
    return this.buf[this.off + IPV6_HOP_LIMIT]!;
  }
  set hopLimit(v: number) {
    this.buf[this.off + IPV6_HOP_LIMIT] = v;
  }
  /** Absolute offset of the 16-byte source address. */
  get srcOffset(): number {
    return this.off + IPV6_SRC;
  }
  /** Absolute offset of the 16-byte destination address. */
  get dstOffset(): number {
    return this.off + IPV6_DST;
  }
  /** End (exclusive) of the packet per its payload length. */
  get packetEnd(): number {
    return this.off + IPV6_HEADER_LEN + this.payloadLen;
  }
  /**
   * Pseudo-header sum for an upper layer of `upperLen` bytes. `dstOffset` overrides the
   * destination: with a routing header the final destination is used (RFC 8200 §8.1).
   */
  pseudoSum(nextHeader: number, upperLen: number, dstOffset = this.off + IPV6_DST): number {
    return pseudoHeaderSum(this.buf, this.off + IPV6_SRC, this.buf, dstOffset, 16, nextHeader, upperLen);
  }
}

const view = new Ipv6Packet();

/** Parses an IPv6 fixed header at `offset`; `end` bounds the bytes available. */
export function parseIpv6(buf: Uint8Array, offset = 0, end = buf.length): Result<Ipv6Repr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) {
    const detail = f === Ipv6Faults.payloadLong ? `payload length ${v.payloadLen}, available ${end - offset - IPV6_HEADER_LEN}` : f === Ipv6Faults.version ? `version ${v.version}` : undefined;
    return err(wireError(f, v.faultAt, detail));
  }
  return ok({
    src: formatIpv6Addr(buf, offset + IPV6_SRC),
    dst: formatIpv6Addr(buf, offset + IPV6_DST),
    nextHeader: v.nextHeader,
    hopLimit: v.hopLimit,
    trafficClass: v.trafficClass,
    flowLabel: v.flowLabel,
    payloadLen: v.payloadLen,
  });
}

/** Header length: always 40 (extension headers are their own layers). */
export function ipv6HeaderLen(_repr?: Ipv6Repr): number {
  return IPV6_HEADER_LEN;
}

/** Writes the fixed header at `offset`; returns 40. Throws RangeError on a caller bug. */
export function emitIpv6(repr: Ipv6Repr, buf: Uint8Array, offset = 0): number {
  assertRoom(buf, offset, IPV6_HEADER_LEN, 'ipv6');
  assertField(repr.trafficClass, 0xff, 'ipv6 trafficClass');
  assertField(repr.flowLabel, 0xfffff, 'ipv6 flowLabel');
  assertField(repr.payloadLen, 0xffff, 'ipv6 payloadLen');
  assertField(repr.nextHeader, 0xff, 'ipv6 nextHeader');
  assertField(repr.hopLimit, 0xff, 'ipv6 hopLimit');
  const v = view.reset(buf, offset, buf.length);
  v.verTcFlow = ((6 << 28) | (repr.trafficClass << 20) | repr.flowLabel) >>> 0;
  v.payloadLen = repr.payloadLen;
  v.nextHeader = repr.nextHeader;
  v.hopLimit = repr.hopLimit;
  buf.set(ipv6Bytes(repr.src), offset + IPV6_SRC);
  buf.set(ipv6Bytes(repr.dst), offset + IPV6_DST);
  return IPV6_HEADER_LEN;
}
