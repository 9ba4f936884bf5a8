/**
 * IEEE 802.1Q VLAN tag, also stacked (802.1ad QinQ).
 *
 * The tag's TPID (0x8100, 0x88a8, 0x9100) sits where the outer header's EtherType is, so a
 * `vlan` layer here is the 4 bytes after it: the TCI and the EtherType of what follows.
 * ```
 *  0               2               4
 *  |PCP|D|  VID    | EtherType     |
 * ```
 */
import { type Result, ok, err } from '../lib/result.ts';
import { assertField, assertRoom, rd16, wr16 } from './bytes.ts';
import { EtherType } from './ethernet.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the Tag Control Information (PCP, DEI, VID). */
export const VLAN_TCI = 0;
/** Byte offset of the inner EtherType. */
export const VLAN_TYPE = 2;
/** Length of one tag after its TPID. */
export const VLAN_TAG_LEN = 4;
/**
 * Most tags we walk. Real networks stack two (QinQ), rarely three; eight leaves room for labs
 * while stopping a frame of repeated 0x8100 from costing a long walk.
 */
export const MAX_VLAN_TAGS = 8;

/** Whether an EtherType is a VLAN TPID (802.1Q, 802.1ad or legacy QinQ). */
export function isVlanTpid(etherType: number): boolean {
  return etherType === EtherType.VLAN || etherType === EtherType.QINQ || etherType === EtherType.QINQ_LEGACY;
}

/** A decoded VLAN tag. */
export interface VlanRepr {
  /** Priority Code Point, 0..7. */
  readonly pcp: number;
  /** Drop Eligible Indicator. */
  readonly dei: boolean;
  /** VLAN id, 0..4095 (0 = priority tag only; 4095 reserved). */
  readonly vid: number;
  /** EtherType of what follows the tag. */
  readonly etherType: number;
}

/** Frozen faults the VLAN view can report. */
export const VlanFaults = {
  truncated: fault('truncated', 'vlan', 'frame ends inside an 802.1Q tag (4 bytes after the TPID)'),
  tooMany: fault('limit_exceeded', 'vlan', `more than ${MAX_VLAN_TAGS} stacked VLAN tags`),
} as const;

/** A zero-allocation view over a VLAN tag (the 4 bytes after a TPID). */
export class VlanTag extends HeaderView {
  /** Validates the tag fits. */
  check(): WireFault | null {
    if (this.end - this.off < VLAN_TAG_LEN) {
      this.faultAt = this.off;
      return VlanFaults.truncated;
    }
    return null;
  }
  /** The whole 16-bit TCI. */
  get tci(): number {
    return rd16(this.buf, this.off + VLAN_TCI);
  }
  set tci(v: number) {
    wr16(this.buf, this.off + VLAN_TCI, v);
  }
  /** Priority Code Point. */
  get pcp(): number {
    return this.buf[this.off + VLAN_TCI]! >>> 5;
  }
  /** Drop Eligible Indicator. */
  get dei(): boolean {
    return (this.buf[this.off + VLAN_TCI]! & 0x10) !== 0;
  }
  /** VLAN id. */
  get vid(): number {
    return this.tci & 0x0fff;
  }
  /** EtherType of what follows. */
  get etherType(): number {
    return rd16(this.buf, this.off + VLAN_TYPE);
  }
  set etherType(v: number) {
    wr16(this.buf, this.off + VLAN_TYPE, v);
  }
}

const view = new VlanTag();

/** Parses a VLAN tag (the 4 bytes after a TPID) at `offset`. */
export function parseVlan(buf: Uint8Array, offset = 0, end = buf.length): Result<VlanRepr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt));
  return ok({ pcp: v.pcp, dei: v.dei, vid: v.vid, etherType: v.etherType });
}

/** Tag length: always 4. */
export function vlanHeaderLen(_repr?: VlanRepr): number {
  return VLAN_TAG_LEN;
}

/** Writes a tag at `offset` (the TPID belongs to the header before); returns the bytes written. */
export function emitVlan(repr: VlanRepr, buf: Uint8Array, offset = 0): number {
  assertRoom(buf, offset, VLAN_TAG_LEN, 'vlan');
  assertField(repr.pcp, 7, 'vlan pcp');
  assertField(repr.vid, 0xfff, 'vlan vid');
  assertField(repr.etherType, 0xffff, 'vlan etherType');
  wr16(buf, offset + VLAN_TCI, (repr.pcp << 13) | (repr.dei ? 0x1000 : 0) | repr.vid);
  wr16(buf, offset + VLAN_TYPE, repr.etherType);
  return VLAN_TAG_LEN;
}
