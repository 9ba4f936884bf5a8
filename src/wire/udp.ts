/**
 * UDP header (RFC 768).
 * ```
 *  0     2     4      6      8
 *  |sport|dport|length|cksum |payload…
 * ```
 * The length field may be smaller than the IP payload (the rest is not UDP's); a zero checksum
 * means "none" over IPv4 and is invalid over IPv6 (RFC 8200 §8.1). A computed checksum of 0 is
 * sent as 0xffff so it is not read as "none".
 */
import { type Result, ok, err } from '../lib/result.ts';
import { EMPTY, assertField, assertRoom, rd16, wr16 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { type Endpoints, IpProtocol, endpointsPseudoSum } from './ip.ts';

/** Byte offset of the source port. */
export const UDP_SRC_PORT = 0;
/** Byte offset of the destination port. */
export const UDP_DST_PORT = 2;
/** Byte offset of the length (header + payload). */
export const UDP_LENGTH = 4;
/** Byte offset of the checksum. */
export const UDP_CHECKSUM = 6;
/** Header length. */
export const UDP_HEADER_LEN = 8;

/** A decoded UDP header. */
export interface UdpRepr {
  /** Source port. */
  readonly srcPort: number;
  /** Destination port. */
  readonly dstPort: number;
  /** True when the checksum field is 0: no checksum (IPv4 only). Emit then writes 0. */
  readonly zeroChecksum: boolean;
}

/** Frozen faults the UDP view can report. */
export const UdpFaults = {
  truncated: fault('truncated', 'udp', 'fewer than 8 bytes for the UDP header'),
  lengthShort: fault('malformed', 'udp', 'length field below 8'),
  lengthLong: fault('truncated', 'udp', 'length field is larger than the IP payload'),
  checksum: fault('bad_checksum', 'udp', 'checksum does not verify over the pseudo-header and datagram'),
  zeroOverIpv6: fault('bad_checksum', 'udp', 'zero checksum over IPv6 (RFC 8200 §8.1 requires one)'),
} as const;

/**
 * A zero-allocation view over a UDP datagram; `end` is the end of the IP payload. Set
 * `fragment` for the first fragment of a datagram, whose length field may exceed what is here.
 */
export class UdpDatagram {
  /** The underlying buffer. */
  buf: Uint8Array = EMPTY;
  /** Offset of the header in `buf`. */
  off = 0;
  /** End (exclusive) of the IP payload. */
  end = 0;
  /** First fragment: do not hold the length field to the bytes present. */
  fragment = false;
  /** Absolute offset of the last fault `check()` reported. */
  faultAt = 0;

  /** Points the view at a datagram. */
  reset(buf: Uint8Array, off = 0, end = buf.length, fragment = false): this {
    this.buf = buf;
    this.off = off;
    this.end = end;
    this.fragment = fragment;
    return this;
  }
  /** Validates header and length field. */
  check(): WireFault | null {
    const o = this.off;
    this.faultAt = o;
    if (this.end - o < UDP_HEADER_LEN) return UdpFaults.truncated;
    const len = this.length;
    this.faultAt = o + UDP_LENGTH;
    if (len < UDP_HEADER_LEN) return UdpFaults.lengthShort;
    if (!this.fragment && len > this.end - o) return UdpFaults.lengthLong;
    return null;
  }
  /** Source port. */
  get srcPort(): number {
    return rd16(this.buf, this.off + UDP_SRC_PORT);
  }
  set srcPort(v: number) {
    wr16(this.buf, this.off + UDP_SRC_PORT, v);
  }
  /** Destination port. */
  get dstPort(): number {
    return rd16(this.buf, this.off + UDP_DST_PORT);
  }
  set dstPort(v: number) {
    wr16(this.buf, this.off + UDP_DST_PORT, v);
  }
  /** Length field. */
  get length(): number {
    return rd16(this.buf, this.off + UDP_LENGTH);
  }
  set length(v: number) {
    wr16(this.buf, this.off + UDP_LENGTH, v);
  }
  /** Checksum field. */
  get checksum(): number {
    return rd16(this.buf, this.off + UDP_CHECKSUM);
  }
  set checksum(v: number) {
    wr16(this.buf, this.off + UDP_CHECKSUM, v);
  }
  /** Whether the checksum verifies over `length` bytes; `pseudoSum` must use the same length. */
  checksumOk(pseudoSum: number): boolean {
    return internetChecksum(this.buf, this.off, this.length, pseudoSum) === 0;
  }
  /** Recomputes the checksum over `length` bytes (0 becomes 0xffff). */
  fillChecksum(pseudoSum: number): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.length, pseudoSum) || 0xffff;
  }
}

const view = new UdpDatagram();

/** Options for {@link parseUdp}. */
export interface UdpParseOptions {
  /** When given, verify the checksum with these IP addresses (a zero checksum passes over IPv4 only). */
  readonly verifyWith?: Endpoints;
  /**
   * The datagram is the first fragment of a fragmented IP packet: its length field counts bytes
   * that are in later fragments, so it is not held to `end` (and the checksum is not checkable).
   */
  readonly fragment?: boolean;
}

/** Parses a UDP header at `offset`; `end` is the end of the IP payload. */
export function parseUdp(buf: Uint8Array, offset = 0, end = buf.length, opts: UdpParseOptions = {}): Result<UdpRepr, WireError> {
  const v = view.reset(buf, offset, end, opts.fragment === true);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, f === UdpFaults.truncated ? `${end - offset} bytes` : `length ${v.length}, available ${end - offset}`));
  const zero = v.checksum === 0;
  if (opts.verifyWith && opts.fragment !== true) {
    if (zero && opts.verifyWith.src.includes(':')) return err(wireError(UdpFaults.zeroOverIpv6, offset + UDP_CHECKSUM));
    if (!zero && !v.checksumOk(endpointsPseudoSum(opts.verifyWith, IpProtocol.UDP, v.length))) {
      return err(wireError(UdpFaults.checksum, offset + UDP_CHECKSUM, `field 0x${v.checksum.toString(16).padStart(4, '0')}`));
    }
  }
  return ok({ srcPort: v.srcPort, dstPort: v.dstPort, zeroChecksum: zero });
}

/** Header length: always 8. */
export function udpHeaderLen(_repr?: UdpRepr): number {
  return UDP_HEADER_LEN;
}

/**
 * Writes the header at `offset` with length 8 + `payloadLen` and, unless `zeroChecksum`, the
 * checksum over the payload already in place; `ip` gives the pseudo-header addresses.
 */
export function emitUdp(repr: UdpRepr, buf: Uint8Array, offset: number, payloadLen: number, ip: Endpoints): number {
  assertRoom(buf, offset, UDP_HEADER_LEN + payloadLen, 'udp');
  assertField(repr.srcPort, 0xffff, 'udp srcPort');
  assertField(repr.dstPort, 0xffff, 'udp dstPort');
  assertField(UDP_HEADER_LEN + payloadLen, 0xffff, 'udp length');
  const v = view.reset(buf, offset, offset + UDP_HEADER_LEN + payloadLen);
  v.srcPort = repr.srcPort;
  v.dstPort = repr.dstPort;
  v.length = UDP_HEADER_LEN + payloadLen;
  if (repr.zeroChecksum) v.checksum = 0;
  else v.fillChecksum(endpointsPseudoSum(ip, IpProtocol.UDP, UDP_HEADER_LEN + payloadLen));
  return UDP_HEADER_LEN;
}
