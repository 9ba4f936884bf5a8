/**
 * TCP header (RFC 9293 §3.1) with options.
 * ```
 *  0     2     4         8         12  13  14     16     18     20
 *  |sport|dport|seq      |ack      |off|flg|window|cksum |urgent|options…
 * ```
 * Options: EOL, NOP, MSS, window scale, SACK-permitted, SACK, timestamps are typed; anything else
 * (or a known kind with the wrong length, which Linux ignores too) is kept raw. The checksum
 * covers a pseudo-header from the IP layer, so emitting and verifying need the IP addresses.
 */
import { type Result, ok, err } from '../lib/result.ts';
import { assertField, assertRoom, copyBytes, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { type Endpoints, IpProtocol, endpointsPseudoSum } from './ip.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the source port. */
export const TCP_SRC_PORT = 0;
/** Byte offset of the destination port. */
export const TCP_DST_PORT = 2;
/** Byte offset of the sequence number. */
export const TCP_SEQ = 4;
/** Byte offset of the acknowledgment number. */
export const TCP_ACK = 8;
/** Byte offset of data offset (high nibble), reserved bits and the AE flag. */
export const TCP_DATA_OFF = 12;
/** Byte offset of the 8 classic flag bits. */
export const TCP_FLAGS = 13;
/** Byte offset of the window. */
export const TCP_WINDOW = 14;
/** Byte offset of the checksum. */
export const TCP_CHECKSUM = 16;
/** Byte offset of the urgent pointer. */
export const TCP_URGENT = 18;
/** Byte offset of the options. */
export const TCP_OPTIONS = 20;
/** Header length without options. */
export const TCP_MIN_HEADER_LEN = 20;
/** Header length with the most options (data offset 15). */
export const TCP_MAX_HEADER_LEN = 60;

/** Flag bits of `TcpRepr.flags` (the low 12 bits of bytes 12–13). */
export const TcpFlag = {
  FIN: 0x001,
  SYN: 0x002,
  RST: 0x004,
  PSH: 0x008,
  ACK: 0x010,
  URG: 0x020,
  ECE: 0x040,
  CWR: 0x080,
  /** Accurate ECN (RFC 9768; was NS, RFC 3540). */
  AE: 0x100,
} as const;

/** TCP option kinds we type. */
export const TcpOptionKind = {
  EOL: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** One TCP option. */
export type TcpOption =
  | { readonly kind: 'eol' }
  | { readonly kind: 'nop' }
  | { readonly kind: 'mss'; readonly value: number }
  | { readonly kind: 'window_scale'; readonly shift: number }
  | { readonly kind: 'sack_permitted' }
  | { readonly kind: 'sack'; readonly blocks: readonly { readonly left: number; readonly right: number }[] }
  | { readonly kind: 'timestamps'; readonly tsval: number; readonly tsecr: number }
  /** Any other option, or a known kind with a length we do not accept; `data` excludes kind and length. */
  | { readonly kind: 'unknown'; readonly type: number; readonly data: Uint8Array };

/** A decoded TCP header. */
export interface TcpRepr {
  /** Source port. */
  readonly srcPort: number;
  /** Destination port. */
  readonly dstPort: number;
  /** Sequence number. */
  readonly seq: number;
  /** Acknowledgment number (kept even without ACK so parse → emit is exact). */
  readonly ack: number;
  /** Flags and the 3 reserved bits: the low 12 bits of bytes 12–13 (see {@link TcpFlag}). */
  readonly flags: number;
  /** Window (unscaled). */
  readonly window: number;
  /** Urgent pointer. */
  readonly urgent: number;
  /** Options in wire order; emit pads them with zero bytes to a multiple of 4. */
  readonly options: readonly TcpOption[];
}

/** Frozen faults the TCP view can report. */
export const TcpFaults = {
  truncated: fault('truncated', 'tcp', 'fewer than 20 bytes for the TCP header'),
  dataOffset: fault('malformed', 'tcp', 'data offset below 5 (the header is at least 20 bytes)'),
  headerTruncated: fault('truncated', 'tcp', 'data offset says the header is longer than the segment'),
  option: fault('malformed', 'tcp', 'option without a length byte, with a length below 2, or running past the header'),
  checksum: fault('bad_checksum', 'tcp', 'checksum does not verify over the pseudo-header and segment'),
} as const;

/**
 * Walks option TLVs in `b[start,end)` without allocating; -1 when well formed, else the offset
 * of the bad option. After an EOL the rest is padding.
 */
export function walkTcpOptions(b: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end) {
    const k = b[i]!;
    if (k === TcpOptionKind.EOL) return -1;
    if (k === TcpOptionKind.NOP) {
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
 * Finds the first option of `kind` with length `len` in a well-formed options area; returns the
 * absolute offset of its kind byte or -1. Zero-allocation: the MSS clamp uses it.
 */
export function findTcpOption(b: Uint8Array, start: number, end: number, kind: number, len: number): number {
  let i = start;
  while (i < end) {
    const k = b[i]!;
    if (k === TcpOptionKind.EOL) return -1;
    if (k === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= end) return -1;
    const l = b[i + 1]!;
    if (l < 2 || i + l > end) return -1;
    if (k === kind && l === len) return i;
    i += l;
  }
  return -1;
}

/** A zero-allocation view over a TCP segment; `end` is the end of the segment (the IP payload). */
export class TcpSegment extends HeaderView {
  /** Validates the header length and options (not the checksum: it needs the IP layer). */
  check(): WireFault | null {
    const o = this.off;
    this.faultAt = o;
    if (this.end - o < TCP_MIN_HEADER_LEN) return TcpFaults.truncated;
    const hl = this.headerLen;
    this.faultAt = o + TCP_DATA_OFF;
    if (hl < TCP_MIN_HEADER_LEN) return TcpFaults.dataOffset;
    if (hl > this.end - o) return TcpFaults.headerTruncated;
    const bad = walkTcpOptions(this.buf, o + TCP_OPTIONS, o + hl);
    if (bad >= 0) {
      this.faultAt = bad;
      return TcpFaults.option;
    }
    return null;
  }
  /** Source port. */
  get srcPort(): number {
    return rd16(this.buf, this.off + TCP_SRC_PORT);
  }
  set srcPort(v: number) {
    wr16(this.buf, this.off + TCP_SRC_PORT, v);
  }
  /** Destination port. */
  get dstPort(): number {
    return rd16(this.buf, this.off + TCP_DST_PORT);
  }
  set dstPort(v: number) {
    wr16(this.buf, this.off + TCP_DST_PORT, v);
  }
  /** Sequence number. */
  get seq(): number {
    return rd32(this.buf, this.off + TCP_SEQ);
  }
  set seq(v: number) {
    wr32(this.buf, this.off + TCP_SEQ, v);
  }
  /** Acknowledgment number. */
  get ack(): number {
    return rd32(this.buf, this.off + TCP_ACK);
  }
  set ack(v: number) {
    wr32(this.buf, this.off + TCP_ACK, v);
  }
  /** Header length in bytes (data offset × 4). */
  get headerLen(): number {
    return (this.buf[this.off + TCP_DATA_OFF]! >>> 4) * 4;
  }
  /** Flags with the reserved bits (12 bits). */
  get flags(): number {
    return rd16(this.buf, this.off + TCP_DATA_OFF) & 0x0fff;
  }
  /** Sets data offset (from a header length in bytes) and the 12 flag bits in one write. */
  setHeaderLenAndFlags(headerLen: number, flags: number): void {
    wr16(this.buf, this.off + TCP_DATA_OFF, ((headerLen >>> 2) << 12) | (flags & 0x0fff));
  }
  /** Window. */
  get window(): number {
    return rd16(this.buf, this.off + TCP_WINDOW);
  }
  set window(v: number) {
    wr16(this.buf, this.off + TCP_WINDOW, v);
  }
  /** Checksum field. */
  get checksum(): number {
    return rd16(this.buf, this.off + TCP_CHECKSUM);
  }
  set checksum(v: number) {
    wr16(this.buf, this.off + TCP_CHECKSUM, v);
  }
  /** Urgent pointer. */
  get urgent(): number {
    return rd16(this.buf, this.off + TCP_URGENT);
  }
  set urgent(v: number) {
    wr16(this.buf, this.off + TCP_URGENT, v);
  }
  /** Offset of the payload. */
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  /** Absolute offset of the first option of `kind`/`len`, or -1 (see {@link findTcpOption}). */
  findOption(kind: number, len: number): number {
    return findTcpOption(this.buf, this.off + TCP_OPTIONS, this.off + this.headerLen, kind, len);
  }
  /** Whether the checksum verifies; `pseudoSum` must be for `end - off` bytes. */
  checksumOk(pseudoSum: number): boolean {
    return internetChecksum(this.buf, this.off, this.end - this.off, pseudoSum) === 0;
  }
  /** Recomputes and stores the checksum over the segment `[off, end)`. */
  fillChecksum(pseudoSum: number): void {
    wr16(this.buf, this.off + TCP_CHECKSUM, 0);
    wr16(this.buf, this.off + TCP_CHECKSUM, internetChecksum(this.buf, this.off, this.end - this.off, pseudoSum));
  }
}

const view = new TcpSegment();

/** Options for {@link parseTcp}. */
export interface TcpParseOptions {
  /** When given, verify the checksum with these IP addresses; a mismatch is `bad_checksum`. */
  readonly verifyWith?: Endpoints;
}

/** Parses a TCP header at `offset`; `end` is the end of the segment (IP payload end). */
export function parseTcp(buf: Uint8Array, offset = 0, end = buf.length, opts: TcpParseOptions = {}): Result<TcpRepr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, f === TcpFaults.headerTruncated || f === TcpFaults.dataOffset ? `header ${v.headerLen}, segment ${end - offset}` : undefined));
  if (opts.verifyWith && !v.checksumOk(endpointsPseudoSum(opts.verifyWith, IpProtocol.TCP, end - offset))) {
    return err(wireError(TcpFaults.checksum, offset + TCP_CHECKSUM, `field 0x${v.checksum.toString(16).padStart(4, '0')}`));
  }
  const options = parseTcpOptions(buf, offset + TCP_OPTIONS, offset + v.headerLen);
  if (!options.ok) return options;
  return ok({
    srcPort: v.srcPort,
    dstPort: v.dstPort,
    seq: v.seq,
    ack: v.ack,
    flags: v.flags,
    window: v.window,
    urgent: v.urgent,
    options: options.value,
  });
}

/** Parses the options area `buf[start,end)` into typed options; stops after EOL (the rest is padding). */
export function parseTcpOptions(buf: Uint8Array, start: number, end: number): Result<TcpOption[], WireError> {
  const bad = walkTcpOptions(buf, start, end);
  if (bad >= 0) return err(wireError(TcpFaults.option, bad));
  const out: TcpOption[] = [];
  let i = start;
  while (i < end) {
    const k = buf[i]!;
    if (k === TcpOptionKind.EOL) {
      out.push({ kind: 'eol' });
      break;
    }
    if (k === TcpOptionKind.NOP) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    const len = buf[i + 1]!;
    if (k === TcpOptionKind.MSS && len === 4) out.push({ kind: 'mss', value: rd16(buf, i + 2) });
    else if (k === TcpOptionKind.WINDOW_SCALE && len === 3) out.push({ kind: 'window_scale', shift: buf[i + 2]! });
    else if (k === TcpOptionKind.SACK_PERMITTED && len === 2) out.push({ kind: 'sack_permitted' });
    else if (k === TcpOptionKind.TIMESTAMPS && len === 10) out.push({ kind: 'timestamps', tsval: rd32(buf, i + 2), tsecr: rd32(buf, i + 6) });
    else if (k === TcpOptionKind.SACK && len >= 10 && (len - 2) % 8 === 0) {
      const blocks: { left: number; right: number }[] = [];
      for (let j = i + 2; j < i + len; j += 8) blocks.push({ left: rd32(buf, j), right: rd32(buf, j + 4) });
      out.push({ kind: 'sack', blocks });
    } else out.push({ kind: 'unknown', type: k, data: copyBytes(buf, i + 2, i + len) });
    i += len;
  }
  return ok(out);
}

function optionLen(o: TcpOption): number {
  switch (o.kind) {
    case 'eol':
    case 'nop':
      return 1;
    case 'mss':
      return 4;
    case 'window_scale':
      return 3;
    case 'sack_permitted':
      return 2;
    case 'sack':
      return 2 + 8 * o.blocks.length;
    case 'timestamps':
      return 10;
    case 'unknown':
      return 2 + o.data.length;
  }
}

/** Bytes the options take before padding. */
export function tcpOptionsLen(options: readonly TcpOption[]): number {
  let n = 0;
  for (const o of options) n += optionLen(o);
  return n;
}

/** Header length of a repr: 20 plus the options padded to a multiple of 4. */
export function tcpHeaderLen(repr: Pick<TcpRepr, 'options'>): number {
  return TCP_MIN_HEADER_LEN + ((tcpOptionsLen(repr.options) + 3) & ~3);
}

/** Writes options at `off` and zero-pads them to `padTo` bytes; returns the bytes written. */
function writeTcpOptions(options: readonly TcpOption[], buf: Uint8Array, off: number, padTo: number): number {
  let i = off;
  for (const o of options) {
    switch (o.kind) {
      case 'eol':
        buf[i++] = TcpOptionKind.EOL;
        break;
      case 'nop':
        buf[i++] = TcpOptionKind.NOP;
        break;
      case 'mss':
        assertField(o.value, 0xffff, 'tcp mss');
        buf[i] = TcpOptionKind.MSS;
        buf[i + 1] = 4;
        wr16(buf, i + 2, o.value);
        i += 4;
        break;
      case 'window_scale':
        assertField(o.shift, 0xff, 'tcp window scale shift');
        buf[i] = TcpOptionKind.WINDOW_SCALE;
        buf[i + 1] = 3;
        buf[i + 2] = o.shift;
        i += 3;
        break;
      case 'sack_permitted':
        buf[i] = TcpOptionKind.SACK_PERMITTED;
        buf[i + 1] = 2;
        i += 2;
        break;
      case 'sack':
        buf[i] = TcpOptionKind.SACK;
        buf[i + 1] = 2 + 8 * o.blocks.length;
        i += 2;
        for (const blk of o.blocks) {
          wr32(buf, i, blk.left);
          wr32(buf, i + 4, blk.right);
          i += 8;
        }
        break;
      case 'timestamps':
        buf[i] = TcpOptionKind.TIMESTAMPS;
        buf[i + 1] = 10;
        wr32(buf, i + 2, o.tsval);
        wr32(buf, i + 6, o.tsecr);
        i += 10;
        break;
      case 'unknown':
        assertField(o.type, 0xff, 'tcp option type');
        buf[i] = o.type;
        buf[i + 1] = 2 + o.data.length;
        buf.set(o.data, i + 2);
        i += 2 + o.data.length;
        break;
    }
  }
  // Pad with zeros (EOL): what Linux sends after the last option (RFC 9293 §3.1).
  buf.fill(0, i, off + padTo);
  return padTo;
}

/** Encodes options padded to a multiple of 4 (e.g. to craft raw option bytes in tests). */
export function encodeTcpOptions(options: readonly TcpOption[]): Uint8Array {
  const len = (tcpOptionsLen(options) + 3) & ~3;
  const out = new Uint8Array(len);
  writeTcpOptions(options, out, 0, len);
  return out;
}

/**
 * Writes the header at `offset` and fills the checksum over the header and the `payloadLen`
 * bytes after it, which must already be in place; `ip` gives the pseudo-header addresses (an
 * `Ipv4Repr`/`Ipv6Repr` fits). Returns the header length. Throws RangeError on a caller bug.
 */
export function emitTcp(repr: TcpRepr, buf: Uint8Array, offset: number, payloadLen: number, ip: Endpoints): number {
  const hl = tcpHeaderLen(repr);
  if (hl > TCP_MAX_HEADER_LEN) throw new RangeError(`emit tcp: options take ${hl - TCP_MIN_HEADER_LEN} bytes, at most 40 fit`);
  assertRoom(buf, offset, hl + payloadLen, 'tcp');
  for (const [v, max, name] of [[repr.srcPort, 0xffff, 'srcPort'], [repr.dstPort, 0xffff, 'dstPort'], [repr.seq, 0xffffffff, 'seq'], [repr.ack, 0xffffffff, 'ack'], [repr.flags, 0xfff, 'flags'], [repr.window, 0xffff, 'window'], [repr.urgent, 0xffff, 'urgent']] as const) {
    assertField(v, max, `tcp ${name}`);
  }
  const v = view.reset(buf, offset, offset + hl + payloadLen);
  v.srcPort = repr.srcPort;
  v.dstPort = repr.dstPort;
  v.seq = repr.seq;
  v.ack = repr.ack;
  v.setHeaderLenAndFlags(hl, repr.flags);
  v.window = repr.window;
  v.urgent = repr.urgent;
  writeTcpOptions(repr.options, buf, offset + TCP_OPTIONS, hl - TCP_MIN_HEADER_LEN);
  v.fillChecksum(endpointsPseudoSum(ip, IpProtocol.TCP, hl + payloadLen));
  return hl;
}

/** tcpdump-style flag letters: S F R P U E W and `.` for ACK. */
export function formatTcpFlags(flags: number): string {
  let s = '';
  if (flags & TcpFlag.SYN) s += 'S';
  if (flags & TcpFlag.FIN) s += 'F';
  if (flags & TcpFlag.RST) s += 'R';
  if (flags & TcpFlag.PSH) s += 'P';
  if (flags & TcpFlag.URG) s += 'U';
  if (flags & TcpFlag.ECE) s += 'E';
  if (flags & TcpFlag.CWR) s += 'W';
  if (flags & TcpFlag.AE) s += 'A';
  if (flags & TcpFlag.ACK) s += '.';
  return s || 'none';
}
