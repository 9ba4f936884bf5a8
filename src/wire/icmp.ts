/**
 * ICMP for IPv4 (RFC 792, RFC 1191 for frag-needed).
 * ```
 *  0    1    2     4                    8
 *  |type|code|cksum|rest of header (4)  |data…
 * ```
 * Echo, destination unreachable (with the next-hop MTU of "fragmentation needed", the message
 * PMTUD and our GRE MTU handling rely on) and time exceeded are typed. Anything else, and any of
 * those with bits set that we would otherwise drop (a non-zero code on echo, RFC 4884 lengths in
 * the "unused" bytes), is kept as `other` with the raw 4 bytes, so parse → emit is exact.
 */
import { type Result, ok, err } from '../lib/result.ts';
import { assertField, assertRoom, copyBytes, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the type. */
export const ICMP_TYPE = 0;
/** Byte offset of the code. */
export const ICMP_CODE = 1;
/** Byte offset of the checksum. */
export const ICMP_CHECKSUM = 2;
/** Byte offset of the 4 type-specific header bytes. */
export const ICMP_REST = 4;
/** Echo: byte offset of the identifier. */
export const ICMP_ECHO_IDENT = 4;
/** Echo: byte offset of the sequence number. */
export const ICMP_ECHO_SEQ = 6;
/** Destination unreachable, code 4: byte offset of the next-hop MTU (RFC 1191). */
export const ICMP_NEXT_HOP_MTU = 6;
/** Header length (data follows). */
export const ICMP_HEADER_LEN = 8;

/** ICMP types we name. */
export const IcmpType = {
  ECHO_REPLY: 0,
  DEST_UNREACHABLE: 3,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

/** Destination-unreachable codes we name. */
export const IcmpUnreachCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  /** Fragmentation needed and DF set: carries the next-hop MTU. */
  FRAG_NEEDED: 4,
  ADMIN_PROHIBITED: 13,
} as const;

/** A decoded ICMP message. `data` is everything after the 8-byte header. */
export type IcmpRepr =
  | { readonly kind: 'echo_request' | 'echo_reply'; readonly ident: number; readonly seq: number; readonly data: Uint8Array }
  | {
      readonly kind: 'dest_unreachable';
      readonly code: number;
      /** Next-hop MTU (meaningful for code 4, frag-needed; 0 otherwise). */
      readonly nextHopMtu: number;
      /** The invoking packet's IP header and at least 8 bytes of its payload. */
      readonly data: Uint8Array;
    }
  | { readonly kind: 'time_exceeded'; readonly code: number; readonly data: Uint8Array }
  | { readonly kind: 'other'; readonly type: number; readonly code: number; readonly rest: number; readonly data: Uint8Array };

/** Frozen faults the ICMP view can report. */
export const IcmpFaults = {
  truncated: fault('truncated', 'icmp', 'fewer than 8 bytes for the ICMP header'),
  checksum: fault('bad_checksum', 'icmp', 'checksum does not verify over the message'),
} as const;

/** A zero-allocation view over an ICMP message; `end` is the end of the IP payload. */
export class IcmpPacket extends HeaderView {
  /** Validates the header fits. */
  check(): WireFault | null {
    this.faultAt = this.off;
    return this.end - this.off < ICMP_HEADER_LEN ? IcmpFaults.truncated : null;
  }
  /** Type. */
  get type(): number {
    return this.buf[this.off + ICMP_TYPE]!;
  }
  set type(v: number) {
    this.buf[this.off + ICMP_TYPE] = v;
  }
  /** Code. */
  get code(): number {
    return this.buf[this.off + ICMP_CODE]!;
  }
  set code(v: number) {
    this.buf[this.off + ICMP_CODE] = v;
  }
  /** Checksum field. */
  get checksum(): number {
    return rd16(this.buf, this.off + ICMP_CHECKSUM);
  }
  set checksum(v: number) {
    wr16(this.buf, this.off + ICMP_CHECKSUM, v);
  }
  /** The 4 type-specific bytes as a u32. */
  get rest(): number {
    return rd32(this.buf, this.off + ICMP_REST);
  }
  set rest(v: number) {
    wr32(this.buf, this.off + ICMP_REST, v);
  }
  /** Echo identifier. */
  get ident(): number {
    return rd16(this.buf, this.off + ICMP_ECHO_IDENT);
  }
  /** Echo sequence number. */
  get seq(): number {
    return rd16(this.buf, this.off + ICMP_ECHO_SEQ);
  }
  /** Next-hop MTU of a frag-needed message. */
  get nextHopMtu(): number {
    return rd16(this.buf, this.off + ICMP_NEXT_HOP_MTU);
  }
  /** Offset of the data after the header. */
  get dataOffset(): number {
    return this.off + ICMP_HEADER_LEN;
  }
  /** Whether the checksum verifies over `[off, end)`. */
  checksumOk(): boolean {
    return internetChecksum(this.buf, this.off, this.end - this.off) === 0;
  }
  /** Recomputes and stores the checksum over `[off, end)`. */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = internetChecksum(this.buf, this.off, this.end - this.off);
  }
}

const view = new IcmpPacket();

/** Options for {@link parseIcmp}. */
export interface IcmpParseOptions {
  /** Verify the checksum (default true). */
  readonly verifyChecksum?: boolean;
}

/** Parses an ICMP message at `offset`; `end` is the end of the IP payload. */
export function parseIcmp(buf: Uint8Array, offset = 0, end = buf.length, opts: IcmpParseOptions = {}): Result<IcmpRepr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, `${end - offset} bytes`));
  if (opts.verifyChecksum !== false && !v.checksumOk()) {
    return err(wireError(IcmpFaults.checksum, offset + ICMP_CHECKSUM, `field 0x${v.checksum.toString(16).padStart(4, '0')}`));
  }
  const data = copyBytes(buf, offset + ICMP_HEADER_LEN, end);
  const { type, code, rest } = v;
  if ((type === IcmpType.ECHO_REQUEST || type === IcmpType.ECHO_REPLY) && code === 0) {
    return ok({ kind: type === IcmpType.ECHO_REQUEST ? 'echo_request' : 'echo_reply', ident: v.ident, seq: v.seq, data });
  }
  if (type === IcmpType.DEST_UNREACHABLE && rest >>> 16 === 0) return ok({ kind: 'dest_unreachable', code, nextHopMtu: rest & 0xffff, data });
  if (type === IcmpType.TIME_EXCEEDED && rest === 0) return ok({ kind: 'time_exceeded', code, data });
  return ok({ kind: 'other', type, code, rest, data });
}

/** Header length: always 8. */
export function icmpHeaderLen(_repr?: IcmpRepr): number {
  return ICMP_HEADER_LEN;
}

/** Whole message length: header plus data. */
export function icmpLen(repr: IcmpRepr): number {
  return ICMP_HEADER_LEN + repr.data.length;
}

/** Writes the whole message (header, data, checksum) at `offset`; returns its length. */
export function emitIcmp(repr: IcmpRepr, buf: Uint8Array, offset = 0): number {
  const len = icmpLen(repr);
  assertRoom(buf, offset, len, 'icmp');
  let type: number;
  let code: number;
  let rest: number;
  switch (repr.kind) {
    case 'echo_request':
    case 'echo_reply':
      assertField(repr.ident, 0xffff, 'icmp echo ident');
      assertField(repr.seq, 0xffff, 'icmp echo seq');
      type = repr.kind === 'echo_request' ? IcmpType.ECHO_REQUEST : IcmpType.ECHO_REPLY;
      code = 0;
      rest = ((repr.ident << 16) | repr.seq) >>> 0;
      break;
    case 'dest_unreachable':
      assertField(repr.nextHopMtu, 0xffff, 'icmp nextHopMtu');
      type = IcmpType.DEST_UNREACHABLE;
      code = repr.code;
      rest = repr.nextHopMtu;
      break;
    case 'time_exceeded':
      type = IcmpType.TIME_EXCEEDED;
      code = repr.code;
      rest = 0;
      break;
    case 'other':
      assertField(repr.type, 0xff, 'icmp type');
      assertField(repr.rest, 0xffffffff, 'icmp rest');
      type = repr.type;
      code = repr.code;
      rest = repr.rest;
      break;
  }
  assertField(code, 0xff, 'icmp code');
  const v = view.reset(buf, offset, offset + len);
  v.type = type;
  v.code = code;
  v.rest = rest;
  buf.set(repr.data, offset + ICMP_HEADER_LEN);
  v.fillChecksum();
  return len;
}
