/**
 * ICMPv6 (RFC 4443). Same layout as ICMP, but the checksum covers an IPv6 pseudo-header.
 * Echo, destination unreachable, packet too big (the MTU PMTUD needs across our GRE tunnels)
 * and time exceeded are typed; everything else (neighbor discovery included) is kept raw, as is
 * a typed message with bits we would drop (non-zero unused bytes, non-zero code on echo/PTB).
 */
import { type Result, ok, err } from '../lib/result.ts';
import { assertField, assertRoom, copyBytes, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { type Endpoints, IpProtocol, endpointsPseudoSum } from './ip.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the type. */
export const ICMPV6_TYPE = 0;
/** Byte offset of the code. */
export const ICMPV6_CODE = 1;
/** Byte offset of the checksum. */
export const ICMPV6_CHECKSUM = 2;
/** Byte offset of the 4 type-specific bytes (echo id/seq, PTB MTU, parameter-problem pointer). */
export const ICMPV6_REST = 4;
/** Header length (data follows). */
export const ICMPV6_HEADER_LEN = 8;

/** ICMPv6 types we name. */
export const Icmpv6Type = {
  DEST_UNREACHABLE: 1,
  PACKET_TOO_BIG: 2,
  TIME_EXCEEDED: 3,
  PARAMETER_PROBLEM: 4,
  ECHO_REQUEST: 128,
  ECHO_REPLY: 129,
  ROUTER_SOLICIT: 133,
  ROUTER_ADVERT: 134,
  NEIGHBOR_SOLICIT: 135,
  NEIGHBOR_ADVERT: 136,
} as const;

/** A decoded ICMPv6 message. `data` is everything after the 8-byte header. */
export type Icmpv6Repr =
  | { readonly kind: 'echo_request' | 'echo_reply'; readonly ident: number; readonly seq: number; readonly data: Uint8Array }
  | { readonly kind: 'dest_unreachable'; readonly code: number; readonly data: Uint8Array }
  | { readonly kind: 'packet_too_big'; readonly mtu: number; readonly data: Uint8Array }
  | { readonly kind: 'time_exceeded'; readonly code: number; readonly data: Uint8Array }
  | { readonly kind: 'other'; readonly type: number; readonly code: number; readonly rest: number; readonly data: Uint8Array };

/** Frozen faults the ICMPv6 view can report. */
export const Icmpv6Faults = {
  truncated: fault('truncated', 'icmpv6', 'fewer than 8 bytes for the ICMPv6 header'),
  checksum: fault('bad_checksum', 'icmpv6', 'checksum does not verify over the pseudo-header and message'),
} as const;

/** A zero-allocation view over an ICMPv6 message; `end` is the end of the IPv6 payload. */
export class Icmpv6Packet extends HeaderView {
  /** Validates the header fits. */
  check(): WireFault | null {
    this.faultAt = this.off;
    return this.end - this.off < ICMPV6_HEADER_LEN ? Icmpv6Faults.truncated : null;
  }
  /** Type. */
  get type(): number {
    return this.buf[this.off + ICMPV6_TYPE]!;
  }
  set type(v: number) {
    this.buf[this.off + ICMPV6_TYPE] = v;
  }
  /** Code. */
  get code(): number {
    return this.buf[this.off + ICMPV6_CODE]!;
  }
  set code(v: number) {
    this.buf[this.off + ICMPV6_CODE] = v;
  }
  /** Checksum field. */
  get checksum(): number {
    return rd16(this.buf, this.off + ICMPV6_CHECKSUM);
  }
  set checksum(v: number) {
    wr16(this.buf, this.off + ICMPV6_CHECKSUM, v);
  }
  /** The 4 type-specific bytes as a u32 (the MTU of packet-too-big). */
  get rest(): number {
    return rd32(this.buf, this.off + ICMPV6_REST);
  }
  set rest(v: number) {
    wr32(this.buf, this.off + ICMPV6_REST, v);
  }
  /** Whether the checksum verifies; `pseudoSum` must be for `end - off` bytes. */
  checksumOk(pseudoSum: number): boolean {
    return internetChecksum(this.buf, this.off, this.end - this.off, pseudoSum) === 0;
  }
  /** Recomputes and stores the checksum over `[off, end)`. */
  fillChecksum(pseudoSum: number): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.end - this.off, pseudoSum);
  }
}

const view = new Icmpv6Packet();

/** Options for {@link parseIcmpv6}. */
export interface Icmpv6ParseOptions {
  /** When given, verify the checksum with these IPv6 addresses. */
  readonly verifyWith?: Endpoints;
}

/** Parses an ICMPv6 message at `offset`; `end` is the end of the IPv6 payload. */
export function parseIcmpv6(buf: Uint8Array, offset = 0, end = buf.length, opts: Icmpv6ParseOptions = {}): Result<Icmpv6Repr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, `${end - offset} bytes`));
  if (opts.verifyWith && !v.checksumOk(endpointsPseudoSum(opts.verifyWith, IpProtocol.ICMPV6, end - offset))) {
    return err(wireError(Icmpv6Faults.checksum, offset + ICMPV6_CHECKSUM, `field 0x${v.checksum.toString(16).padStart(4, '0')}`));
  }
  const data = copyBytes(buf, offset + ICMPV6_HEADER_LEN, end);
  const { type, code, rest } = v;
  if ((type === Icmpv6Type.ECHO_REQUEST || type === Icmpv6Type.ECHO_REPLY) && code === 0) {
    return ok({ kind: type === Icmpv6Type.ECHO_REQUEST ? 'echo_request' : 'echo_reply', ident: rest >>> 16, seq: rest & 0xffff, data });
  }
  if (type === Icmpv6Type.DEST_UNREACHABLE && rest === 0) return ok({ kind: 'dest_unreachable', code, data });
  if (type === Icmpv6Type.PACKET_TOO_BIG && code === 0) return ok({ kind: 'packet_too_big', mtu: rest, data });
  if (type === Icmpv6Type.TIME_EXCEEDED && rest === 0) return ok({ kind: 'time_exceeded', code, data });
  return ok({ kind: 'other', type, code, rest, data });
}

/** Header length: always 8. */
export function icmpv6HeaderLen(_repr?: Icmpv6Repr): number {
  return ICMPV6_HEADER_LEN;
}

/** Whole message length: header plus data. */
export function icmpv6Len(repr: Icmpv6Repr): number {
  return ICMPV6_HEADER_LEN + repr.data.length;
}

/** Writes the whole message at `offset` with its checksum over the IPv6 pseudo-header of `ip`; returns its length. */
export function emitIcmpv6(repr: Icmpv6Repr, buf: Uint8Array, offset: number, ip: Endpoints): number {
  const len = icmpv6Len(repr);
  assertRoom(buf, offset, len, 'icmpv6');
  let type: number;
  let code = 0;
  let rest = 0;
  switch (repr.kind) {
    case 'echo_request':
    case 'echo_reply':
      assertField(repr.ident, 0xffff, 'icmpv6 echo ident');
      assertField(repr.seq, 0xffff, 'icmpv6 echo seq');
      type = repr.kind === 'echo_request' ? Icmpv6Type.ECHO_REQUEST : Icmpv6Type.ECHO_REPLY;
      rest = ((repr.ident << 16) | repr.seq) >>> 0;
      break;
    case 'dest_unreachable':
      type = Icmpv6Type.DEST_UNREACHABLE;
      code = repr.code;
      break;
    case 'packet_too_big':
      assertField(repr.mtu, 0xffffffff, 'icmpv6 mtu');
      type = Icmpv6Type.PACKET_TOO_BIG;
      rest = repr.mtu;
      break;
    case 'time_exceeded':
      type = Icmpv6Type.TIME_EXCEEDED;
      code = repr.code;
      break;
    case 'other':
      assertField(repr.type, 0xff, 'icmpv6 type');
      assertField(repr.rest, 0xffffffff, 'icmpv6 rest');
      type = repr.type;
      code = repr.code;
      rest = repr.rest;
      break;
  }
  assertField(code, 0xff, 'icmpv6 code');
  const v = view.reset(buf, offset, offset + len);
  v.type = type;
  v.code = code;
  v.rest = rest;
  buf.set(repr.data, offset + ICMPV6_HEADER_LEN);
  v.fillChecksum(endpointsPseudoSum(ip, IpProtocol.ICMPV6, len));
  return len;
}
