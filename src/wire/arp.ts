/**
 * ARP (RFC 826) for Ethernet and IPv4, the only combination an edge server sees. Other hardware
 * or protocol types are reported `unsupported` rather than guessed at.
 * ```
 *  0     2     4  5  6     8         14     18        24     28
 *  |htype|ptype|hl|pl|oper |sha      |spa   |tha      |tpa   |
 * ```
 */
import { type Result, ok, err } from '../lib/result.ts';
import { formatIpv4Addr, formatMac, ipv4Bytes, macBytes } from './addr.ts';
import { assertField, assertRoom, rd16, rd32, wr16 } from './bytes.ts';
import { EtherType } from './ethernet.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';
import { HeaderView } from './view.ts';

/** Byte offset of the hardware type. */
export const ARP_HTYPE = 0;
/** Byte offset of the protocol type. */
export const ARP_PTYPE = 2;
/** Byte offset of the hardware address length. */
export const ARP_HLEN = 4;
/** Byte offset of the protocol address length. */
export const ARP_PLEN = 5;
/** Byte offset of the operation. */
export const ARP_OPER = 6;
/** Byte offset of the sender hardware address. */
export const ARP_SHA = 8;
/** Byte offset of the sender protocol address. */
export const ARP_SPA = 14;
/** Byte offset of the target hardware address. */
export const ARP_THA = 18;
/** Byte offset of the target protocol address. */
export const ARP_TPA = 24;
/** Length of an Ethernet/IPv4 ARP packet. */
export const ARP_LEN = 28;
/** Hardware type for Ethernet. */
export const ARP_HTYPE_ETHERNET = 1;

/** ARP operations. */
export const ArpOp = { REQUEST: 1, REPLY: 2 } as const;

/** A decoded Ethernet/IPv4 ARP packet. */
export interface ArpRepr {
  /** Operation: 1 request, 2 reply (others kept as numbers). */
  readonly op: number;
  /** Sender MAC. */
  readonly senderMac: string;
  /** Sender IPv4 address. */
  readonly senderIp: string;
  /** Target MAC (all zeros in a request). */
  readonly targetMac: string;
  /** Target IPv4 address. */
  readonly targetIp: string;
}

/** Frozen faults the ARP view can report. */
export const ArpFaults = {
  truncated: fault('truncated', 'arp', 'packet shorter than the 28-byte Ethernet/IPv4 ARP packet'),
  unsupported: fault('unsupported', 'arp', 'only ARP for Ethernet (htype 1, hlen 6) and IPv4 (ptype 0x0800, plen 4) is decoded'),
} as const;

/** A zero-allocation view over an ARP packet. */
export class ArpPacket extends HeaderView {
  /** Validates length and that this is Ethernet/IPv4 ARP. */
  check(): WireFault | null {
    const b = this.buf;
    const o = this.off;
    // The fixed part (up to plen) must be there before we can tell the address sizes.
    if (this.end - o < ARP_OPER + 2) {
      this.faultAt = o;
      return ArpFaults.truncated;
    }
    if (rd16(b, o + ARP_HTYPE) !== ARP_HTYPE_ETHERNET || rd16(b, o + ARP_PTYPE) !== EtherType.IPV4 || b[o + ARP_HLEN] !== 6 || b[o + ARP_PLEN] !== 4) {
      this.faultAt = o;
      return ArpFaults.unsupported;
    }
    if (this.end - o < ARP_LEN) {
      this.faultAt = o;
      return ArpFaults.truncated;
    }
    return null;
  }
  /** Operation. */
  get op(): number {
    return rd16(this.buf, this.off + ARP_OPER);
  }
  set op(v: number) {
    wr16(this.buf, this.off + ARP_OPER, v);
  }
  /** Sender IPv4 address as a u32. */
  get senderIp(): number {
    return rd32(this.buf, this.off + ARP_SPA);
  }
  /** Target IPv4 address as a u32. */
  get targetIp(): number {
    return rd32(this.buf, this.off + ARP_TPA);
  }
}

const view = new ArpPacket();

/** Parses an Ethernet/IPv4 ARP packet at `offset`. */
export function parseArp(buf: Uint8Array, offset = 0, end = buf.length): Result<ArpRepr, WireError> {
  const v = view.reset(buf, offset, end);
  const f = v.check();
  if (f) return err(wireError(f, v.faultAt));
  return ok({
    op: v.op,
    senderMac: formatMac(buf, offset + ARP_SHA),
    senderIp: formatIpv4Addr(buf, offset + ARP_SPA),
    targetMac: formatMac(buf, offset + ARP_THA),
    targetIp: formatIpv4Addr(buf, offset + ARP_TPA),
  });
}

/** Packet length: always 28. */
export function arpHeaderLen(_repr?: ArpRepr): number {
  return ARP_LEN;
}

/** Writes an Ethernet/IPv4 ARP packet at `offset`; returns the bytes written. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, offset = 0): number {
  assertRoom(buf, offset, ARP_LEN, 'arp');
  assertField(repr.op, 0xffff, 'arp op');
  wr16(buf, offset + ARP_HTYPE, ARP_HTYPE_ETHERNET);
  wr16(buf, offset + ARP_PTYPE, EtherType.IPV4);
  buf[offset + ARP_HLEN] = 6;
  buf[offset + ARP_PLEN] = 4;
  wr16(buf, offset + ARP_OPER, repr.op);
  buf.set(macBytes(repr.senderMac), offset + ARP_SHA);
  buf.set(ipv4Bytes(repr.senderIp), offset + ARP_SPA);
  buf.set(macBytes(repr.targetMac), offset + ARP_THA);
  buf.set(ipv4Bytes(repr.targetIp), offset + ARP_TPA);
  return ARP_LEN;
}
