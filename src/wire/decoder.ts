/**
 * The zero-allocation whole-frame walker: Ethernet → VLAN* → ARP | IPv4/IPv6 (+ extension
 * headers) → TCP/UDP/ICMP/ICMPv6/GRE → inner IP/Ethernet … with bounds on every repetition.
 *
 * A per-packet loop keeps one {@link FrameDecoder}; `decode` fills preallocated typed arrays (one
 * row per layer: kind, offset, header length, extent, checksum status) and never allocates, so
 * it can run at line rate in JavaScript without GC pauses. Its views (`dec.ipv4`, `dec.tcp` …)
 * can then be re-pointed at any row to read or rewrite fields in place. `decodeFrame` (frame.ts)
 * builds readable Reprs from the same rows, so there is one walk, not two that may disagree.
 */
import { ARP_LEN, ArpPacket } from './arp.ts';
import { onesSum } from './checksum.ts';
import { EthernetFrame, ETH_HEADER_LEN, EtherType } from './ethernet.ts';
import { type WireFault, fault } from './error.ts';
import { GRE_FLAG_C, GrePacket, GreProtocol } from './gre.ts';
import { IcmpPacket, ICMP_HEADER_LEN } from './icmp.ts';
import { Icmpv6Packet, ICMPV6_HEADER_LEN } from './icmpv6.ts';
import { IpProtocol } from './ip.ts';
import { IPV4_DST, IPV4_FLAG_MF, IPV4_SRC, Ipv4Packet } from './ipv4.ts';
import { IPV6_DST, IPV6_HEADER_LEN, IPV6_SRC, Ipv6Packet } from './ipv6.ts';
import { Ipv6ExtFaults, Ipv6ExtHeader, MAX_IPV6_EXT_HEADERS, isIpv6ExtHeader } from './ipv6ext.ts';
import { TcpSegment } from './tcp.ts';
import { UDP_HEADER_LEN, UdpDatagram } from './udp.ts';
import { MAX_VLAN_TAGS, VLAN_TAG_LEN, VlanFaults, VlanTag, isVlanTpid } from './vlan.ts';

/** pcap link types (tcpdump.org LINKTYPE_*) the decoder starts from. */
export const LinkType = {
  /** Ethernet II frames. */
  ETHERNET: 1,
  /** Raw IP: the version nibble says IPv4 or IPv6. */
  RAW: 101,
  /** Raw IPv4 only. */
  IPV4: 228,
  /** Raw IPv6 only. */
  IPV6: 229,
} as const;

/** Layer kinds in the decoder's table. */
export const LayerKind = {
  ETHERNET: 1,
  VLAN: 2,
  ARP: 3,
  IPV4: 4,
  IPV6: 5,
  IPV6_EXT: 6,
  TCP: 7,
  UDP: 8,
  ICMP: 9,
  ICMPV6: 10,
  GRE: 11,
} as const;

/** Checksum status codes in the decoder's table. */
export const CkStatus = {
  /** The header has no checksum (Ethernet, IPv6, …). */
  NONE: 0,
  GOOD: 1,
  BAD: 2,
  /** Present but not checked: verification off, or a fragment (the checksum covers the whole datagram). */
  UNVERIFIED: 3,
  /** Optional and not sent (UDP over IPv4 with 0, GRE without the C bit). */
  ABSENT: 4,
} as const;

/** Fragment state of an IP layer (the decoder's `aux` for IPv4/IPv6 rows). */
export const FragState = {
  NONE: 0,
  /** Offset 0 with more fragments: the L4 header is here, its checksum is not checkable. */
  FIRST: 1,
  /** Non-zero offset: no L4 header at all; decoding stops at the IP layer. */
  LATER: 2,
} as const;

/**
 * Most nested encapsulations (GRE, IP-in-IP) decoded. Real traffic has one (customer GRE),
 * sometimes two (GRE inside an IPsec-less overlay); four catches mistakes in labs while a
 * crafted packet of nested GRE headers costs at most a few dozen header reads.
 */
export const MAX_ENCAP_DEPTH = 4;
/** Rows in the layer table; more than the bounds above can produce. */
export const MAX_LAYERS = 128;

/** Frozen faults the decoder itself reports (each codec reports its own). */
export const DecoderFaults = {
  linkType: fault('unsupported', 'frame', 'link type not decoded (use 1 ethernet, 101 raw, 228 ipv4, 229 ipv6)'),
  empty: fault('truncated', 'frame', 'raw IP frame with no bytes'),
  rawVersion: fault('malformed', 'frame', 'raw IP frame whose version nibble is neither 4 nor 6'),
  tooDeep: fault('limit_exceeded', 'frame', `encapsulation nested deeper than the decoder's bound (default ${MAX_ENCAP_DEPTH})`),
  tooManyLayers: fault('limit_exceeded', 'frame', `more than ${MAX_LAYERS} layers`),
} as const;

const S_DONE = 0;
const S_ETH = 1;
const S_IPV4 = 2;
const S_IPV6 = 3;
const S_ARP = 4;

/**
 * Walks frames into a preallocated layer table. Not reentrant: one per loop (or per worker).
 * After `decode`, rows `0 … count-1` describe the layers outermost first; on failure `fault`
 * and `faultAt` say why and where, and the rows before it stay valid.
 */
export class FrameDecoder {
  /** Layer kind per row ({@link LayerKind}). */
  readonly kinds = new Uint8Array(MAX_LAYERS);
  /** Offset of each layer's header. */
  readonly offsets = new Int32Array(MAX_LAYERS);
  /** Header length of each layer (for IPv6, the fixed 40 bytes; extension headers are rows). */
  readonly headerLens = new Int32Array(MAX_LAYERS);
  /** End (exclusive) of each layer's extent: the frame for Ethernet/VLAN, the packet for IP, the IP payload for L4 (the UDP length for UDP). */
  readonly ends = new Int32Array(MAX_LAYERS);
  /** Checksum status per row ({@link CkStatus}). */
  readonly checksums = new Uint8Array(MAX_LAYERS);
  /** Extra per row: VLAN → the TPID; IPv6 extension → its type; IPv4/IPv6 → {@link FragState}. */
  readonly aux = new Int32Array(MAX_LAYERS);
  /** Rows filled. */
  count = 0;
  /** Where the undecoded remainder (application payload) starts. */
  payloadOffset = 0;
  /** Where it ends. */
  payloadEnd = 0;
  /** End of the outermost IP packet; bytes from here to the frame end are trailer (Ethernet padding). */
  trailerOffset = 0;
  /** End of the frame. */
  frameEnd = 0;
  /** Why decoding stopped early, or null. */
  fault: WireFault | null = null;
  /** Absolute offset the fault points at. */
  faultAt = 0;
  /** Verify checksums (default true). Off, they are reported {@link CkStatus.UNVERIFIED}. */
  verifyChecksums = true;
  /** Encapsulation bound; see {@link MAX_ENCAP_DEPTH}. */
  maxEncapDepth = MAX_ENCAP_DEPTH;

  /** Reusable views; re-point them at a row with `reset(buf, offsets[i], ends[i])`. */
  readonly eth = new EthernetFrame();
  /** VLAN view. */
  readonly vlan = new VlanTag();
  /** ARP view. */
  readonly arp = new ArpPacket();
  /** IPv4 view. */
  readonly ipv4 = new Ipv4Packet();
  /** IPv6 view. */
  readonly ipv6 = new Ipv6Packet();
  /** IPv6 extension header view. */
  readonly ext = new Ipv6ExtHeader();
  /** TCP view. */
  readonly tcp = new TcpSegment();
  /** UDP view. */
  readonly udp = new UdpDatagram();
  /** ICMP view. */
  readonly icmp = new IcmpPacket();
  /** ICMPv6 view. */
  readonly icmpv6 = new Icmpv6Packet();
  /** GRE view. */
  readonly gre = new GrePacket();

  private buf: Uint8Array = new Uint8Array(0);
  private pos = 0;
  private limit = 0;
  private depth = 0;
  private frag = 0;
  /** Sum of the current IP layer's source and destination (final destination for IPv6) words. */
  private addrSum = 0;

  /** Index of the first row of `kind` at or after `from`, or -1. */
  find(kind: number, from = 0): number {
    for (let i = from; i < this.count; i++) if (this.kinds[i] === kind) return i;
    return -1;
  }

  /**
   * Decodes `buf[off, end)` of the given link type. Returns true when every header decoded
   * (checksum mismatches are not failures: see `checksums`), false with `fault` set otherwise.
   */
  decode(buf: Uint8Array, linkType: number, off = 0, end = buf.length): boolean {
    this.buf = buf;
    this.count = 0;
    this.fault = null;
    this.faultAt = off;
    this.pos = off;
    this.limit = end;
    this.frameEnd = end;
    this.trailerOffset = -1;
    this.depth = 0;
    this.frag = FragState.NONE;
    let state: number;
    if (linkType === LinkType.ETHERNET) state = S_ETH;
    else if (linkType === LinkType.IPV4) state = S_IPV4;
    else if (linkType === LinkType.IPV6) state = S_IPV6;
    else if (linkType === LinkType.RAW) {
      if (off >= end) state = this.fail(DecoderFaults.empty, off);
      else {
        const v = buf[off]! >>> 4;
        state = v === 4 ? S_IPV4 : v === 6 ? S_IPV6 : this.fail(DecoderFaults.rawVersion, off);
      }
    } else state = this.fail(DecoderFaults.linkType, off);
    while (state !== S_DONE) {
      if (state === S_ETH) state = this.ethernet();
      else if (state === S_IPV4) state = this.ip4();
      else if (state === S_IPV6) state = this.ip6();
      else state = this.arpPacket();
    }
    if (this.trailerOffset < 0) this.trailerOffset = end;
    return this.fault === null;
  }

  private fail(f: WireFault, at: number): number {
    this.fault = f;
    this.faultAt = at;
    this.payloadOffset = this.pos;
    this.payloadEnd = this.limit;
    return S_DONE;
  }

  private finish(): number {
    this.payloadOffset = this.pos;
    this.payloadEnd = this.limit;
    return S_DONE;
  }

  private push(kind: number, off: number, hl: number, end: number, ck: number, aux: number): boolean {
    const i = this.count;
    if (i >= MAX_LAYERS) {
      this.fail(DecoderFaults.tooManyLayers, off);
      return false;
    }
    this.kinds[i] = kind;
    this.offsets[i] = off;
    this.headerLens[i] = hl;
    this.ends[i] = end;
    this.checksums[i] = ck;
    this.aux[i] = aux;
    this.count = i + 1;
    return true;
  }

  private ck(good: boolean): number {
    return good ? CkStatus.GOOD : CkStatus.BAD;
  }

  private ethernet(): number {
    const b = this.buf;
    const e = this.eth.reset(b, this.pos, this.limit);
    const f = e.check();
    if (f) return this.fail(f, e.faultAt);
    if (!this.push(LayerKind.ETHERNET, this.pos, ETH_HEADER_LEN, this.limit, CkStatus.NONE, 0)) return S_DONE;
    let et = e.etherType;
    this.pos += ETH_HEADER_LEN;
    let tags = 0;
    while (isVlanTpid(et)) {
      if (++tags > MAX_VLAN_TAGS) return this.fail(VlanFaults.tooMany, this.pos);
      const v = this.vlan.reset(b, this.pos, this.limit);
      const fv = v.check();
      if (fv) return this.fail(fv, v.faultAt);
      if (!this.push(LayerKind.VLAN, this.pos, VLAN_TAG_LEN, this.limit, CkStatus.NONE, et)) return S_DONE;
      et = v.etherType;
      this.pos += VLAN_TAG_LEN;
    }
    if (et === EtherType.IPV4) return S_IPV4;
    if (et === EtherType.IPV6) return S_IPV6;
    if (et === EtherType.ARP) return S_ARP;
    return this.finish();
  }

  private arpPacket(): number {
    const a = this.arp.reset(this.buf, this.pos, this.limit);
    const f = a.check();
    if (f) return this.fail(f, a.faultAt);
    if (!this.push(LayerKind.ARP, this.pos, ARP_LEN, this.pos + ARP_LEN, CkStatus.NONE, 0)) return S_DONE;
    this.pos += ARP_LEN;
    // ARP has no length field; what follows its 28 bytes is Ethernet padding, as after an IP packet.
    if (this.trailerOffset < 0) this.trailerOffset = this.pos;
    this.limit = this.pos;
    return this.finish();
  }

  private ip4(): number {
    const b = this.buf;
    const start = this.pos;
    const ip = this.ipv4.reset(b, start, this.limit);
    const f = ip.check();
    if (f) return this.fail(f, ip.faultAt);
    const hl = ip.headerLen;
    const pend = ip.packetEnd;
    const ff = ip.flagsFrag;
    const frag = ff & 0x1fff ? FragState.LATER : ff & IPV4_FLAG_MF ? FragState.FIRST : FragState.NONE;
    const ck = this.verifyChecksums ? this.ck(ip.checksumOk()) : CkStatus.UNVERIFIED;
    if (!this.push(LayerKind.IPV4, start, hl, pend, ck, frag)) return S_DONE;
    if (this.trailerOffset < 0) this.trailerOffset = pend;
    this.limit = pend;
    this.pos = start + hl;
    this.frag = frag;
    this.addrSum = onesSum(b, start + IPV4_SRC, 4) + onesSum(b, start + IPV4_DST, 4);
    if (frag === FragState.LATER) return this.finish();
    return this.l4(ip.protocol, 4);
  }

  private ip6(): number {
    const b = this.buf;
    const start = this.pos;
    const ip = this.ipv6.reset(b, start, this.limit);
    const f = ip.check();
    if (f) return this.fail(f, ip.faultAt);
    const pend = ip.packetEnd;
    const row = this.count;
    if (!this.push(LayerKind.IPV6, start, IPV6_HEADER_LEN, pend, CkStatus.NONE, FragState.NONE)) return S_DONE;
    if (this.trailerOffset < 0) this.trailerOffset = pend;
    this.limit = pend;
    this.pos = start + IPV6_HEADER_LEN;
    let nh = ip.nextHeader;
    let n = 0;
    let finalDst = start + IPV6_DST;
    let frag: number = FragState.NONE;
    while (isIpv6ExtHeader(nh)) {
      if (nh === IpProtocol.HOPOPT && n > 0) return this.fail(Ipv6ExtFaults.hopByHopNotFirst, this.pos);
      if (++n > MAX_IPV6_EXT_HEADERS) return this.fail(Ipv6ExtFaults.tooMany, this.pos);
      const x = this.ext.reset(b, this.pos, pend, nh);
      const fx = x.check();
      if (fx) return this.fail(fx, x.faultAt);
      const hl = x.headerLen;
      if (!this.push(LayerKind.IPV6_EXT, this.pos, hl, pend, CkStatus.NONE, nh)) return S_DONE;
      if (nh === IpProtocol.FRAGMENT) {
        // Offset 0 without M is an "atomic fragment" (RFC 6946): a whole packet, decoded as one.
        frag = x.fragOffset !== 0 ? FragState.LATER : x.moreFrags ? FragState.FIRST : FragState.NONE;
      } else if (nh === IpProtocol.ROUTING) {
        const fd = x.finalDstOffset();
        if (fd >= 0) finalDst = fd;
      }
      nh = x.nextHeader;
      this.pos += hl;
      // After a non-first fragment header the rest is fragment data, not more headers.
      if (frag === FragState.LATER) break;
    }
    this.aux[row] = frag;
    this.frag = frag;
    this.addrSum = onesSum(b, start + IPV6_SRC, 16) + onesSum(b, finalDst, 16);
    if (frag === FragState.LATER) return this.finish();
    return this.l4(nh, 6);
  }

  /** Pseudo-header sum for the current IP layer. */
  private pseudo(protocol: number, len: number): number {
    return this.addrSum + protocol + Math.floor(len / 0x10000) + (len & 0xffff);
  }

  private l4(proto: number, ipVersion: number): number {
    const b = this.buf;
    const pos = this.pos;
    const limit = this.limit;
    const fragmented = this.frag !== FragState.NONE;
    const verify = this.verifyChecksums && !fragmented;
    switch (proto) {
      case IpProtocol.TCP: {
        const t = this.tcp.reset(b, pos, limit);
        const f = t.check();
        if (f) return this.fail(f, t.faultAt);
        const ck = verify ? this.ck(t.checksumOk(this.pseudo(IpProtocol.TCP, limit - pos))) : CkStatus.UNVERIFIED;
        const hl = t.headerLen;
        if (!this.push(LayerKind.TCP, pos, hl, limit, ck, 0)) return S_DONE;
        this.pos = pos + hl;
        return this.finish();
      }
      case IpProtocol.UDP: {
        const u = this.udp.reset(b, pos, limit, this.frag === FragState.FIRST);
        const f = u.check();
        if (f) return this.fail(f, u.faultAt);
        const len = u.length;
        const end = fragmented ? limit : pos + len;
        let ck: number;
        if (u.checksum === 0) ck = ipVersion === 6 ? CkStatus.BAD : CkStatus.ABSENT;
        else ck = verify ? this.ck(u.checksumOk(this.pseudo(IpProtocol.UDP, len))) : CkStatus.UNVERIFIED;
        if (!this.push(LayerKind.UDP, pos, UDP_HEADER_LEN, end, ck, 0)) return S_DONE;
        this.pos = pos + UDP_HEADER_LEN;
        this.limit = end;
        return this.finish();
      }
      case IpProtocol.ICMP: {
        const c = this.icmp.reset(b, pos, limit);
        const f = c.check();
        if (f) return this.fail(f, c.faultAt);
        const ck = verify ? this.ck(c.checksumOk()) : CkStatus.UNVERIFIED;
        if (!this.push(LayerKind.ICMP, pos, ICMP_HEADER_LEN, limit, ck, 0)) return S_DONE;
        this.pos = pos + ICMP_HEADER_LEN;
        return this.finish();
      }
      case IpProtocol.ICMPV6: {
        const c = this.icmpv6.reset(b, pos, limit);
        const f = c.check();
        if (f) return this.fail(f, c.faultAt);
        const ck = verify ? this.ck(c.checksumOk(this.pseudo(IpProtocol.ICMPV6, limit - pos))) : CkStatus.UNVERIFIED;
        if (!this.push(LayerKind.ICMPV6, pos, ICMPV6_HEADER_LEN, limit, ck, 0)) return S_DONE;
        this.pos = pos + ICMPV6_HEADER_LEN;
        return this.finish();
      }
      case IpProtocol.GRE: {
        const g = this.gre.reset(b, pos, limit);
        const f = g.check();
        if (f) return this.fail(f, g.faultAt);
        const hl = g.headerLen;
        const ck = !(g.flags & GRE_FLAG_C) ? CkStatus.ABSENT : verify ? this.ck(g.checksumOk()) : CkStatus.UNVERIFIED;
        if (!this.push(LayerKind.GRE, pos, hl, limit, ck, 0)) return S_DONE;
        this.pos = pos + hl;
        // A fragment carries only part of the inner packet: decoding it would report bogus errors.
        if (fragmented) return this.finish();
        const p = g.protocol;
        const next = p === GreProtocol.IPV4 ? S_IPV4 : p === GreProtocol.IPV6 ? S_IPV6 : p === GreProtocol.TEB ? S_ETH : S_DONE;
        if (next === S_DONE) return this.finish();
        return this.nest(next);
      }
      case IpProtocol.IPIP:
        return fragmented ? this.finish() : this.nest(S_IPV4);
      case IpProtocol.IPV6:
        return fragmented ? this.finish() : this.nest(S_IPV6);
      default:
        return this.finish();
    }
  }

  private nest(state: number): number {
    if (++this.depth > this.maxEncapDepth) return this.fail(DecoderFaults.tooDeep, this.pos);
    this.frag = FragState.NONE;
    return state;
  }
}
