/**
 * GRE (RFC 2784) with the key and sequence number extensions (RFC 2890): what customer routers
 * speak to our anycast endpoint.
 * ```
 *  0               2               4               8            12           16
 *  |C|R|K|S|s|Rec|flags|Ver| Protocol type | [cksum|reserved1] | [key] | [seq] |
 * ```
 * Bits R (routing) and s (strict source route) belong to RFC 1701 and must be 0 (RFC 2784 §2.1:
 * a receiver discards the packet otherwise), so they are `unsupported`, as is any version other
 * than 0 (version 1 is PPTP's enhanced GRE). The recursion-control and flag bits are ignored by
 * receivers but kept (`reserved0`) so parse → emit is exact. The checksum, when present, covers
 * the GRE header and payload.
 */
import { type Result, ok, err } from '../lib/result.ts';
import { assertField, assertRoom, rd16, rd32, wr16, wr32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the flags/version word. */
export const GRE_FLAGS = 0;
/** Byte offset of the protocol type (an EtherType). */
export const GRE_PROTOCOL = 2;
/** Byte offset of the optional fields (checksum+reserved1, then key, then sequence). */
export const GRE_OPTIONAL = 4;
/** Header length without optional fields. */
export const GRE_MIN_HEADER_LEN = 4;
/** Header length with checksum, key and sequence number. */
export const GRE_MAX_HEADER_LEN = 16;

/** Checksum present. */
export const GRE_FLAG_C = 0x8000;
/** Routing present (RFC 1701; unsupported). */
export const GRE_FLAG_R = 0x4000;
/** Key present (RFC 2890). */
export const GRE_FLAG_K = 0x2000;
/** Sequence number present (RFC 2890). */
export const GRE_FLAG_S = 0x1000;
/** Strict source route (RFC 1701; unsupported). */
export const GRE_FLAG_STRICT = 0x0800;
/** Recursion control and flags: reserved0 bits a receiver ignores. */
export const GRE_RESERVED0_MASK = 0x07f8;
/** Version bits. */
export const GRE_VERSION_MASK = 0x0007;

/** GRE protocol types we decode (EtherTypes). */
export const GreProtocol = {
  IPV4: 0x0800,
  IPV6: 0x86dd,
  /** Transparent Ethernet Bridging: an Ethernet frame inside. */
  TEB: 0x6558,
} as const;

/** A decoded GRE header. */
export interface GreRepr {
  /** Protocol type of the payload (an EtherType, see {@link GreProtocol}). */
  readonly protocol: number;
  /** Whether the checksum field is present (emit computes it). */
  readonly checksum: boolean;
  /** Key (RFC 2890), or null when absent. */
  readonly key: number | null;
  /** Sequence number (RFC 2890), or null when absent. */
  readonly seq: number | null;
  /** Recursion-control and flag bits (mask 0x07f8 of the first word): ignored by receivers, kept for exactness. */
  readonly reserved0: number;
  /** The 16 bits after the checksum (0 unless a sender set them; 0 when no checksum). */
  readonly reserved1: number;
}

/** Frozen faults the GRE view can report. */
export const GreFaults = {
  truncated: fault('truncated', 'gre', 'fewer bytes than the GRE header its flags announce'),
  routing: fault('unsupported', 'gre', 'routing or strict-source-route bit set (RFC 1701 GRE); RFC 2784 receivers discard it'),
  version: fault('unsupported', 'gre', 'version is not 0 (version 1 is PPTP enhanced GRE)'),
  checksum: fault('bad_checksum', 'gre', 'checksum does not verify over the GRE header and payload'),
} as const;

/** A zero-allocation view over a GRE header; `end` is the end of the GRE packet (the IP payload). */
export class GrePacket extends HeaderView {
  /** Validates flags, version and that the announced optional fields fit. */
  check(): WireFault | null {
    this.faultAt = this.off;
    if (this.end - this.off < GRE_MIN_HEADER_LEN) return GreFaults.truncated;
    const fl = this.flags;
    if (fl & (GRE_FLAG_R | GRE_FLAG_STRICT)) return GreFaults.routing;
    if (fl & GRE_VERSION_MASK) return GreFaults.version;
    if (this.headerLen > this.end - this.off) return GreFaults.truncated;
    return null;
  }
  /** The flags/version word. */
  get flags(): number {
    return rd16(this.buf, this.off + GRE_FLAGS);
  }
  set flags(v: number) {
    wr16(this.buf, this.off + GRE_FLAGS, v);
  }
  /** Protocol type. */
  get protocol(): number {
    return rd16(this.buf, this.off + GRE_PROTOCOL);
  }
  set protocol(v: number) {
    wr16(this.buf, this.off + GRE_PROTOCOL, v);
  }
  /** Header length from the C, K and S bits. */
  get headerLen(): number {
    const f = this.flags;
    return GRE_MIN_HEADER_LEN + (f & GRE_FLAG_C ? 4 : 0) + (f & GRE_FLAG_K ? 4 : 0) + (f & GRE_FLAG_S ? 4 : 0);
  }
  /** Offset of the key field (valid when K is set). */
  get keyOffset(): number {
    return this.off + GRE_OPTIONAL + (this.flags & GRE_FLAG_C ? 4 : 0);
  }
  /** Offset of the sequence field (valid when S is set). */
  get seqOffset(): number {
    return this.keyOffset + (this.flags & GRE_FLAG_K ? 4 : 0);
  }
  /** Key (read only when K is set). */
  get key(): number {
    return rd32(this.buf, this.keyOffset);
  }
  set key(v: number) {
    wr32(this.buf, this.keyOffset, v);
  }
  /** Sequence number (read only when S is set). */
  get seq(): number {
    return rd32(this.buf, this.seqOffset);
  }
  set seq(v: number) {
    wr32(this.buf, this.seqOffset, v);
  }
  /** Checksum field (read only when C is set). */
  get checksum(): number {
    return rd16(this.buf, this.off + GRE_OPTIONAL);
  }
  /** reserved1 (read only when C is set). */
  get reserved1(): number {
    return rd16(this.buf, this.off + GRE_OPTIONAL + 2);
  }
  /** Offset of the payload. */
  get payloadOffset(): number {
    return this.off + this.headerLen;
  }
  /** Whether the checksum verifies over `[off, end)` (meaningful when C is set). */
  checksumOk(): boolean {
    return internetChecksum(this.buf, this.off, this.end - this.off) === 0;
  }
  /** Recomputes the checksum over `[off, end)`; C must be set. */
  fillChecksum(): void {
    wr16(this.buf, this.off + GRE_OPTIONAL, 0);
    wr16(this.buf, this.off + GRE_OPTIONAL, internetChecksum(this.buf, this.off, this.end - this.off));
  }
}

const view = new GrePacket();

/** Options for {@link parseGre}. */
export interface GreParseOptions {
  /** Verify the checksum when present (default true). */
  readonly verifyChecksum?: boolean;
}

/** Parses a GRE header at `offset`; `end` is the end of the GRE packet. */
export function parseGre(buf: Uint8Array, offset = 0, end = buf.length, opts: GreParseOptions = {}): Result<GreRepr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, `flags 0x${v.flags.toString(16).padStart(4, '0')}, ${end - offset} bytes`));
  const fl = v.flags;
  const c = (fl & GRE_FLAG_C) !== 0;
  if (c && opts.verifyChecksum !== false && !v.checksumOk()) {
    return err(wireError(GreFaults.checksum, offset + GRE_OPTIONAL, `field 0x${v.checksum.toString(16).padStart(4, '0')}`));
  }
  return ok({
    protocol: v.protocol,
    checksum: c,
    key: fl & GRE_FLAG_K ? v.key : null,
    seq: fl & GRE_FLAG_S ? v.seq : null,
    reserved0: fl & GRE_RESERVED0_MASK,
    reserved1: c ? v.reserved1 : 0,
  });
}

/** Header length of a repr: 4, plus 4 for each of checksum, key, sequence. */
export function greHeaderLen(repr: Pick<GreRepr, 'checksum' | 'key' | 'seq'>): number {
  return GRE_MIN_HEADER_LEN + (repr.checksum ? 4 : 0) + (repr.key !== null ? 4 : 0) + (repr.seq !== null ? 4 : 0);
}

/**
 * Writes the header at `offset`; with `checksum`, computes it over the header and the
 * `payloadLen` bytes after it, which must already be in place. Returns the header length.
 */
export function emitGre(repr: GreRepr, buf: Uint8Array, offset: number, payloadLen: number): number {
  const hl = greHeaderLen(repr);
  assertRoom(buf, offset, hl + payloadLen, 'gre');
  assertField(repr.protocol, 0xffff, 'gre protocol');
  assertField(repr.reserved1, 0xffff, 'gre reserved1');
  if ((repr.reserved0 & ~GRE_RESERVED0_MASK) !== 0) throw new RangeError(`gre reserved0 must fit mask 0x07f8, got 0x${repr.reserved0.toString(16)}`);
  if (repr.key !== null) assertField(repr.key, 0xffffffff, 'gre key');
  if (repr.seq !== null) assertField(repr.seq, 0xffffffff, 'gre seq');
  const v = view.reset(buf, offset, offset + hl + payloadLen);
  v.flags = (repr.checksum ? GRE_FLAG_C : 0) | (repr.key !== null ? GRE_FLAG_K : 0) | (repr.seq !== null ? GRE_FLAG_S : 0) | repr.reserved0;
  v.protocol = repr.protocol;
  if (repr.checksum) wr16(buf, offset + GRE_OPTIONAL + 2, repr.reserved1);
  if (repr.key !== null) v.key = repr.key;
  if (repr.seq !== null) v.seq = repr.seq;
  if (repr.checksum) v.fillChecksum();
  return hl;
}
