/**
 * A frame builder for tests and packet fixtures: a list of layers, outermost first, in; the
 * frame's bytes, with every length, next-protocol field and checksum filled in, out.
 *
 * ```ts
 * import { buildFrame } from '../wire/build.ts';
 * const syn = buildFrame([
 *   { kind: 'eth' },                                                   // MACs default to 02:00:00:00:00:01 > :02
 *   { kind: 'ipv4', src: '192.0.2.10', dst: '198.51.100.1' },           // outer: eyeball → anycast GRE endpoint
 *   { kind: 'gre', key: 42, seq: 7, checksum: true },                    // RFC 2784/2890 fields are optional
 *   { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5' },
 *   { kind: 'tcp', srcPort: 40000, dstPort: 443, flags: 'S', mss: 1460 },
 * ], 'optional payload: a string (UTF-8) or bytes');
 * ```
 * Layer kinds: `eth`, `vlan`, `arp`, `ipv4`, `ipv6`, `ipv6ext`, `gre`, `tcp`, `udp`, `icmp`,
 * `icmpv6` (see {@link LayerSpec}; every field but addresses and ports has a default); `eth`
 * comes first or right after `gre` (Ethernet over GRE). The type
 * of what follows (EtherType, VLAN inner type, IP protocol / next header, GRE protocol) is taken
 * from the next layer unless set; the payload goes after the last layer. A list that does not
 * start with `eth` builds a raw IP packet (pcap link type 101, `LinkType.RAW`).
 *
 * `badChecksum: true` on a layer flips one bit of its checksum after it is computed, so a test
 * can hand a receiver a packet with exactly one wrong checksum (outer checksums are computed
 * after, over the corrupted bytes, as a real sender would).
 *
 * Throws RangeError on a list that makes no sense (TCP straight after Ethernet, an address of
 * the wrong family): the list is code, not input. Not for per-packet loops: it allocates; those
 * rewrite a template through the views (see `FrameDecoder`).
 */
import { formatIpv6Addr } from './addr.ts';
import { type ArpRepr, ArpOp, emitArp, ARP_LEN } from './arp.ts';
import { rd16, wr16 } from './bytes.ts';
import { emitEthernet, EtherType, ETH_HEADER_LEN, ETH_MIN_FRAME } from './ethernet.ts';
import { emitGre, greHeaderLen, GreProtocol, GRE_OPTIONAL } from './gre.ts';
import { type IcmpRepr, emitIcmp, ICMP_CHECKSUM, ICMP_HEADER_LEN } from './icmp.ts';
import { type Icmpv6Repr, emitIcmpv6, ICMPV6_CHECKSUM, ICMPV6_HEADER_LEN } from './icmpv6.ts';
import { type Endpoints, IpProtocol } from './ip.ts';
import { type Ipv4Option, emitIpv4, encodeIpv4Options, IPV4_CHECKSUM, IPV4_MIN_HEADER_LEN } from './ipv4.ts';
import { emitIpv6, IPV6_HEADER_LEN } from './ipv6.ts';
import { type Ipv6ExtRepr, emitIpv6Ext, ipv6ExtHeaderLen, ipv6ExtProtocol, RH_FIRST_ADDR, RH_TYPE_MIP6, RH_TYPE_SRH } from './ipv6ext.ts';
import { type TcpOption, emitTcp, tcpHeaderLen, TcpFlag, TCP_CHECKSUM } from './tcp.ts';
import { emitUdp, UDP_CHECKSUM, UDP_HEADER_LEN } from './udp.ts';
import { emitVlan, VLAN_TAG_LEN } from './vlan.ts';

/** `Omit` applied to each member of a union (plain `Omit` would merge the members). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Ethernet II header. */
export interface EthSpec {
  readonly kind: 'eth';
  /** Source MAC (default 02:00:00:00:00:01). */
  readonly src?: string;
  /** Destination MAC (default 02:00:00:00:00:02). */
  readonly dst?: string;
  /** EtherType; default from the next layer (required when `eth` is the last layer). */
  readonly etherType?: number;
  /** Pad the frame with zeros to 60 bytes, as a NIC does for short frames (default false). */
  readonly pad?: boolean;
}

/** One 802.1Q / 802.1ad tag. */
export interface VlanSpec {
  readonly kind: 'vlan';
  /** VLAN id 0..4095. */
  readonly vid: number;
  /** Priority 0..7 (default 0). */
  readonly pcp?: number;
  /** Drop eligible (default false). */
  readonly dei?: boolean;
  /** The TPID written into the previous header's type field (default 0x8100; 0x88a8 for an S-tag). */
  readonly tpid?: number;
  /** Inner EtherType; default from the next layer. */
  readonly etherType?: number;
}

/** Ethernet/IPv4 ARP. */
export interface ArpSpec extends Partial<ArpRepr> {
  readonly kind: 'arp';
}

/** IPv4 header. */
export interface Ipv4Spec {
  readonly kind: 'ipv4';
  readonly src: string;
  readonly dst: string;
  /** Default 64. */
  readonly ttl?: number;
  readonly dscp?: number;
  readonly ecn?: number;
  /** Identification (default 0). */
  readonly ident?: number;
  /** Don't Fragment (default false). */
  readonly df?: boolean;
  /** More Fragments (default false). */
  readonly mf?: boolean;
  /** Fragment offset in bytes, a multiple of 8 (default 0). */
  readonly fragOffset?: number;
  /** The reserved flag bit (default false). */
  readonly reservedFlag?: boolean;
  /** Options as a list (encoded and padded) or raw padded bytes. */
  readonly options?: readonly Ipv4Option[] | Uint8Array;
  /** Protocol; default from the next layer. */
  readonly protocol?: number;
  /** Flip a bit of the computed header checksum. */
  readonly badChecksum?: boolean;
}

/** IPv6 fixed header. */
export interface Ipv6Spec {
  readonly kind: 'ipv6';
  readonly src: string;
  readonly dst: string;
  /** Default 64. */
  readonly hopLimit?: number;
  readonly trafficClass?: number;
  readonly flowLabel?: number;
  /** Next header; default from the next layer. */
  readonly nextHeader?: number;
}

/** One IPv6 extension header; its `nextHeader` comes from the next layer unless set. */
export interface Ipv6ExtSpec {
  readonly kind: 'ipv6ext';
  readonly ext: DistributiveOmit<Ipv6ExtRepr, 'nextHeader'> & { readonly nextHeader?: number };
}

/** GRE header (RFC 2784 / RFC 2890). */
export interface GreSpec {
  readonly kind: 'gre';
  /** Key, when present (K bit). */
  readonly key?: number;
  /** Sequence number, when present (S bit). */
  readonly seq?: number;
  /** Send a checksum (C bit; default false). */
  readonly checksum?: boolean;
  /** Protocol type; default from the next layer (IPv4, IPv6, or `eth`: 0x6558, Transparent Ethernet Bridging). */
  readonly protocol?: number;
  /** Flip a bit of the computed checksum (needs `checksum: true`). */
  readonly badChecksum?: boolean;
}

/** TCP header. */
export interface TcpSpec {
  readonly kind: 'tcp';
  readonly srcPort: number;
  readonly dstPort: number;
  /**
   * Flags as a number ({@link TcpFlag}) or letters, scapy's way: F S R P A U E C N (A is ACK, C
   * is CWR, N is AE, formerly NS), e.g. `'SA'`. Default `'S'`.
   */
  readonly flags?: number | string;
  /** Default 1. */
  readonly seq?: number;
  /** Default 0. */
  readonly ack?: number;
  /** Default 65535. */
  readonly window?: number;
  /** Default 0. */
  readonly urgent?: number;
  /** An MSS option, written first. */
  readonly mss?: number;
  /** Further options, after the MSS (padded with EOL to a multiple of 4). */
  readonly options?: readonly TcpOption[];
  /** Flip a bit of the computed checksum. */
  readonly badChecksum?: boolean;
}

/** UDP header. */
export interface UdpSpec {
  readonly kind: 'udp';
  readonly srcPort: number;
  readonly dstPort: number;
  /** Send checksum 0 ("none", IPv4 only; default false). */
  readonly zeroChecksum?: boolean;
  /** Flip a bit of the computed checksum. */
  readonly badChecksum?: boolean;
}

/** ICMP message; its data is the payload. Default an echo request, id 0, seq 0. */
export interface IcmpSpec {
  readonly kind: 'icmp';
  readonly message?: DistributiveOmit<IcmpRepr, 'data'>;
  /** Flip a bit of the computed checksum. */
  readonly badChecksum?: boolean;
}

/** ICMPv6 message; its data is the payload. Default an echo request, id 0, seq 0. */
export interface Icmpv6Spec {
  readonly kind: 'icmpv6';
  readonly message?: DistributiveOmit<Icmpv6Repr, 'data'>;
  /** Flip a bit of the computed checksum. */
  readonly badChecksum?: boolean;
}

/** One layer of a frame to build. */
export type LayerSpec = EthSpec | VlanSpec | ArpSpec | Ipv4Spec | Ipv6Spec | Ipv6ExtSpec | GreSpec | TcpSpec | UdpSpec | IcmpSpec | Icmpv6Spec;

const FLAG_LETTERS: Readonly<Record<string, number>> = {
  F: TcpFlag.FIN, S: TcpFlag.SYN, R: TcpFlag.RST, P: TcpFlag.PSH, A: TcpFlag.ACK, U: TcpFlag.URG, E: TcpFlag.ECE, C: TcpFlag.CWR, N: TcpFlag.AE,
};

/** Parses scapy-style flag letters (`'SA'`) or passes a number through. */
export function tcpFlags(flags: number | string): number {
  if (typeof flags === 'number') return flags;
  let v = 0;
  for (const ch of flags) {
    const bit = FLAG_LETTERS[ch];
    if (bit === undefined) throw new RangeError(`tcp flags "${flags}": "${ch}" is not one of F S R P A U E C N`);
    v |= bit;
  }
  return v;
}

function tcpOptionsOf(s: TcpSpec): TcpOption[] {
  return [...(s.mss !== undefined ? [{ kind: 'mss', value: s.mss } as const] : []), ...(s.options ?? [])];
}

function ipv4OptionBytes(s: Ipv4Spec): Uint8Array {
  if (s.options === undefined) return new Uint8Array(0);
  return s.options instanceof Uint8Array ? s.options : encodeIpv4Options(s.options);
}

function headerLen(l: LayerSpec): number {
  switch (l.kind) {
    case 'eth': return ETH_HEADER_LEN;
    case 'vlan': return VLAN_TAG_LEN;
    case 'arp': return ARP_LEN;
    case 'ipv4': return IPV4_MIN_HEADER_LEN + ipv4OptionBytes(l).length;
    case 'ipv6': return IPV6_HEADER_LEN;
    case 'ipv6ext': return ipv6ExtHeaderLen({ ...l.ext, nextHeader: 0 } as Ipv6ExtRepr);
    case 'gre': return greHeaderLen({ checksum: l.checksum === true, key: l.key ?? null, seq: l.seq ?? null });
    case 'tcp': return tcpHeaderLen({ options: tcpOptionsOf(l) });
    case 'udp': return UDP_HEADER_LEN;
    case 'icmp': return ICMP_HEADER_LEN;
    case 'icmpv6': return ICMPV6_HEADER_LEN;
  }
}

function where(i: number, l: LayerSpec): string {
  return `buildFrame layer ${i} (${l.kind})`;
}

/** The EtherType announcing `next` (for eth, vlan), or throws. */
function etherTypeFor(next: LayerSpec | undefined, i: number, l: LayerSpec): number {
  switch (next?.kind) {
    case 'vlan': return next.tpid ?? EtherType.VLAN;
    case 'ipv4': return EtherType.IPV4;
    case 'ipv6': return EtherType.IPV6;
    case 'arp': return EtherType.ARP;
    default: throw new RangeError(`${where(i, l)}: cannot follow it with ${next?.kind ?? 'nothing'}; set etherType or add an ipv4/ipv6/arp/vlan layer`);
  }
}

/** The IP protocol / next-header number announcing `next`, or throws. */
function protocolFor(next: LayerSpec | undefined, i: number, l: LayerSpec): number {
  switch (next?.kind) {
    case 'tcp': return IpProtocol.TCP;
    case 'udp': return IpProtocol.UDP;
    case 'icmp': return IpProtocol.ICMP;
    case 'icmpv6': return IpProtocol.ICMPV6;
    case 'gre': return IpProtocol.GRE;
    case 'ipv4': return IpProtocol.IPIP;
    case 'ipv6': return IpProtocol.IPV6;
    case 'ipv6ext': return ipv6ExtProtocol(next.ext.kind);
    default:
      // Nothing after an IP layer: "no next header" is the honest value for IPv6, and for IPv4 too.
      if (next === undefined) return IpProtocol.NONE;
      throw new RangeError(`${where(i, l)}: cannot follow it with ${next.kind}; set protocol/nextHeader`);
  }
}

/** Flips the lowest bit of the 16-bit checksum at `off`: never turns a checksum into its one's-complement twin (0 ↔ 0xffff). */
function corrupt(buf: Uint8Array, off: number, udp = false): void {
  let v = rd16(buf, off) ^ 1;
  if (udp && v === 0) v = 2; // 0 would read as "no checksum", not as a wrong one
  wr16(buf, off, v);
}

/**
 * The pseudo-header endpoints for layer `i`: the nearest IP layer before it, with the final
 * destination of an IPv6 routing header (RFC 8200 §8.1), as the decoder uses.
 */
function endpointsFor(layers: readonly LayerSpec[], i: number): Endpoints {
  let finalDst: string | null = null;
  for (let j = i - 1; j >= 0; j--) {
    const l = layers[j]!;
    if (l.kind === 'ipv6ext' && l.ext.kind === 'routing' && l.ext.segmentsLeft > 0 && (l.ext.routingType === RH_TYPE_MIP6 || l.ext.routingType === RH_TYPE_SRH) && l.ext.data.length >= RH_FIRST_ADDR - 4 + 16) {
      // The header's first address sits 4 bytes into `data` (data starts after byte 4 of the header).
      finalDst = formatIpv6Addr(l.ext.data, RH_FIRST_ADDR - 4);
    }
    if (l.kind === 'ipv4') return { src: l.src, dst: l.dst };
    if (l.kind === 'ipv6') return { src: l.src, dst: finalDst ?? l.dst };
  }
  throw new RangeError(`${where(i, layers[i]!)}: needs an ipv4 or ipv6 layer before it for its checksum`);
}

/**
 * Builds a frame from `layers` (outermost first) and `payload` (bytes, or a string sent as
 * UTF-8). See the module comment for the conventions.
 */
export function buildFrame(layers: readonly LayerSpec[], payload: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const data = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const offsets: number[] = [];
  let off = 0;
  for (const l of layers) {
    offsets.push(off);
    off += headerLen(l);
  }
  const end = off + data.length;
  const first = layers[0];
  const padded = first?.kind === 'eth' && first.pad === true ? Math.max(end, ETH_MIN_FRAME) : end;
  const buf = new Uint8Array(padded);
  buf.set(data, off);
  // Innermost first: every checksum covers the layers inside it, which must be final by then.
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i]!;
    const o = offsets[i]!;
    const hl = headerLen(l);
    const rest = end - o - hl;
    const next = layers[i + 1];
    switch (l.kind) {
      case 'eth':
        if (i !== 0 && layers[i - 1]!.kind !== 'gre') throw new RangeError(`${where(i, l)}: eth may only come first or right after gre (TEB)`);
        emitEthernet({ src: l.src ?? '02:00:00:00:00:01', dst: l.dst ?? '02:00:00:00:00:02', etherType: l.etherType ?? etherTypeFor(next, i, l) }, buf, o);
        break;
      case 'vlan':
        emitVlan({ vid: l.vid, pcp: l.pcp ?? 0, dei: l.dei ?? false, etherType: l.etherType ?? etherTypeFor(next, i, l) }, buf, o);
        break;
      case 'arp':
        emitArp({
          op: l.op ?? ArpOp.REQUEST,
          senderMac: l.senderMac ?? '02:00:00:00:00:01',
          senderIp: l.senderIp ?? '192.0.2.1',
          targetMac: l.targetMac ?? '00:00:00:00:00:00',
          targetIp: l.targetIp ?? '192.0.2.2',
        }, buf, o);
        break;
      case 'ipv4':
        emitIpv4({
          src: l.src, dst: l.dst, protocol: l.protocol ?? protocolFor(next, i, l), ttl: l.ttl ?? 64, dscp: l.dscp ?? 0, ecn: l.ecn ?? 0,
          ident: l.ident ?? 0, reservedFlag: l.reservedFlag ?? false, dontFrag: l.df ?? false, moreFrags: l.mf ?? false,
          fragOffset: l.fragOffset ?? 0, options: ipv4OptionBytes(l), payloadLen: rest,
        }, buf, o);
        if (l.badChecksum) corrupt(buf, o + IPV4_CHECKSUM);
        break;
      case 'ipv6':
        emitIpv6({
          src: l.src, dst: l.dst, nextHeader: l.nextHeader ?? protocolFor(next, i, l), hopLimit: l.hopLimit ?? 64,
          trafficClass: l.trafficClass ?? 0, flowLabel: l.flowLabel ?? 0, payloadLen: rest,
        }, buf, o);
        break;
      case 'ipv6ext':
        emitIpv6Ext({ ...l.ext, nextHeader: l.ext.nextHeader ?? protocolFor(next, i, l) } as Ipv6ExtRepr, buf, o);
        break;
      case 'gre': {
        let protocol = l.protocol;
        if (protocol === undefined) {
          if (next?.kind === 'ipv4') protocol = GreProtocol.IPV4;
          else if (next?.kind === 'ipv6') protocol = GreProtocol.IPV6;
          else if (next?.kind === 'eth') protocol = GreProtocol.TEB;
          else throw new RangeError(`${where(i, l)}: set protocol (the next layer is ${next?.kind ?? 'nothing'})`);
        }
        emitGre({ protocol, checksum: l.checksum === true, key: l.key ?? null, seq: l.seq ?? null, reserved0: 0, reserved1: 0 }, buf, o, rest);
        if (l.badChecksum) {
          if (l.checksum !== true) throw new RangeError(`${where(i, l)}: badChecksum needs checksum: true`);
          corrupt(buf, o + GRE_OPTIONAL);
        }
        break;
      }
      case 'tcp':
        emitTcp({
          srcPort: l.srcPort, dstPort: l.dstPort, seq: l.seq ?? 1, ack: l.ack ?? 0, flags: tcpFlags(l.flags ?? 'S'),
          window: l.window ?? 65535, urgent: l.urgent ?? 0, options: tcpOptionsOf(l),
        }, buf, o, rest, endpointsFor(layers, i));
        if (l.badChecksum) corrupt(buf, o + TCP_CHECKSUM);
        break;
      case 'udp':
        emitUdp({ srcPort: l.srcPort, dstPort: l.dstPort, zeroChecksum: l.zeroChecksum ?? false }, buf, o, rest, endpointsFor(layers, i));
        if (l.badChecksum) corrupt(buf, o + UDP_CHECKSUM, true);
        break;
      case 'icmp':
        emitIcmp({ ...(l.message ?? { kind: 'echo_request', ident: 0, seq: 0 }), data: buf.slice(o + hl, end) } as IcmpRepr, buf, o);
        if (l.badChecksum) corrupt(buf, o + ICMP_CHECKSUM);
        break;
      case 'icmpv6':
        emitIcmpv6({ ...(l.message ?? { kind: 'echo_request', ident: 0, seq: 0 }), data: buf.slice(o + hl, end) } as Icmpv6Repr, buf, o, endpointsFor(layers, i));
        if (l.badChecksum) corrupt(buf, o + ICMPV6_CHECKSUM);
        break;
    }
  }
  return buf;
}

/** The pcap link type of a frame built from `layers`: 1 (Ethernet) or 101 (raw IP). */
export function builtLinkType(layers: readonly LayerSpec[]): number {
  return layers[0]?.kind === 'eth' ? 1 : 101;
}
