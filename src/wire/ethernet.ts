/**
 * Ethernet II header (IEEE 802.3 clause 3.2.6 with an EtherType, not a length).
 *
 * ```
 *  0                   6                   12      14
 *  | destination MAC   | source MAC        | type  |
 * ```
 * Minimum-size frames carry padding after the network packet; the IP layer's length, not the
 * frame's, says where the packet ends (the decoder reports the rest as trailer).
 */
import { type Result, ok, err } from '../lib/result.ts';
import { formatMac, macBytes } from './addr.ts';
import { assertField, assertRoom, rd16, wr16 } from './bytes.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the destination MAC. */
export const ETH_DST = 0;
/** Byte offset of the source MAC. */
export const ETH_SRC = 6;
/** Byte offset of the EtherType. */
export const ETH_TYPE = 12;
/** Length of the Ethernet II header (without 802.1Q tags). */
export const ETH_HEADER_LEN = 14;
/** Shortest frame on the wire without FCS; shorter frames are padded to it. */
export const ETH_MIN_FRAME = 60;

/** EtherTypes we decode (IEEE registry). */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  /** 802.1Q customer tag (C-tag). */
  VLAN: 0x8100,
  /** 802.1ad service tag (S-tag), the outer tag of QinQ. */
  QINQ: 0x88a8,
  /** Pre-802.1ad QinQ tag still sent by some switches. */
  QINQ_LEGACY: 0x9100,
  IPV6: 0x86dd,
  /** Transparent Ethernet Bridging: an Ethernet frame inside GRE. */
  TEB: 0x6558,
} as const;

/** Values up to 1500 in the type field are 802.3 lengths (LLC frames), not EtherTypes. */
export const ETH_MAX_8023_LENGTH = 1500;

/** A decoded Ethernet II header. */
export interface EthernetRepr {
  /** Destination MAC, canonical lowercase text. */
  readonly dst: string;
  /** Source MAC, canonical lowercase text. */
  readonly src: string;
  /** EtherType of what follows (a VLAN TPID when tagged). */
  readonly etherType: number;
}

/** Frozen faults the Ethernet view can report. */
export const EthernetFaults = {
  truncated: fault('truncated', 'ethernet', 'frame shorter than the 14-byte Ethernet header'),
} as const;

/**
 * A zero-allocation view over an Ethernet header at `off` in `buf`; `end` bounds the frame.
 * Reuse one view per loop with `reset`.
 */
export class EthernetFrame extends HeaderView {

  /** Validates the header fits; returns null or a frozen fault (its offset in `faultAt`). */
  check(): WireFault | null {
    if (this.end - this.off < ETH_HEADER_LEN) {
      this.faultAt = this.off;
      return EthernetFaults.truncated;
    }
    return null;
  }

  /** EtherType field. */
  get etherType(): number {
    return rd16(this.buf, this.off + ETH_TYPE);
  }
  set etherType(v: number) {
    wr16(this.buf, this.off + ETH_TYPE, v);
  }
  /** Absolute offset of the destination MAC (6 bytes), for copying without allocation. */
  get dstOffset(): number {
    return this.off + ETH_DST;
  }
  /** Absolute offset of the source MAC (6 bytes). */
  get srcOffset(): number {
    return this.off + ETH_SRC;
  }
  /** Offset of the payload (first byte after the header). */
  get payloadOffset(): number {
    return this.off + ETH_HEADER_LEN;
  }
}

const view = new EthernetFrame();

/** Parses an Ethernet II header at `offset`; `end` bounds the frame (default: the buffer's end). */
export function parseEthernet(buf: Uint8Array, offset = 0, end = buf.length): Result<EthernetRepr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt, `${end - offset} bytes`));
  return ok({ dst: formatMac(buf, offset + ETH_DST), src: formatMac(buf, offset + ETH_SRC), etherType: v.etherType });
}

/** Header length for a repr: always 14 (tags are separate `vlan` layers). */
export function ethernetHeaderLen(_repr?: EthernetRepr): number {
  return ETH_HEADER_LEN;
}

/** Writes the header at `offset`; returns the bytes written. Throws RangeError on a caller bug (no room, bad MAC). */
export function emitEthernet(repr: EthernetRepr, buf: Uint8Array, offset = 0): number {
  assertRoom(buf, offset, ETH_HEADER_LEN, 'ethernet');
  assertField(repr.etherType, 0xffff, 'ethernet etherType');
  buf.set(macBytes(repr.dst), offset + ETH_DST);
  buf.set(macBytes(repr.src), offset + ETH_SRC);
  wr16(buf, offset + ETH_TYPE, repr.etherType);
  return ETH_HEADER_LEN;
}
