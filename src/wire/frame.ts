/**
 * Whole-frame decoding into readable layers, and a one-line printer. Tests, the eBPF fixture
 * harness (which prints both packets decoded on a mismatch) and tools use these; per-packet
 * loops use {@link FrameDecoder} directly.
 *
 * ```ts
 * import { decodeFrame, findLayer, formatFrame, formatWireError } from '../wire/index.ts';
 * const f = decodeFrame(bytes);                 // Ethernet by default; decodeFrame(bytes, LinkType.RAW) for raw IP
 * if (f.error) console.log(formatWireError(f.error)); // `ipv4 truncated at byte 18: …`; layers before it are kept
 * const gre = findLayer(f, 'gre');              // typed: gre?.repr.key, gre?.checksum ('good' | 'bad' | 'absent' | …)
 * const inner = findLayer(f, 'ipv4', 1);        // the second IPv4 header (inside the tunnel)
 * f.checksumErrors;                             // one typed error per header whose checksum is wrong
 * formatFrame(f);                               // `eth … | ipv4 … | gre proto ipv4 key 42 | ipv4 … | tcp 40000 > 443 [S] … | payload 0`
 * ```
 * `decodeFrame` never throws on any bytes: a failure is `frame.error` (code, layer, offset,
 * message), and checksum mismatches do not stop decoding. Build frames with `buildFrame`
 * (build.ts), read and write captures with pcap.ts.
 */
import { type ArpRepr, parseArp } from './arp.ts';
import { copyBytes, toHex } from './bytes.ts';
import { CkStatus, FrameDecoder, LayerKind, LinkType, MAX_ENCAP_DEPTH } from './decoder.ts';
import { type EthernetRepr, EtherType, parseEthernet } from './ethernet.ts';
import { type WireError, type WireFault, wireError, formatWireError } from './error.ts';
import { type GreRepr, GreFaults, GRE_OPTIONAL, parseGre } from './gre.ts';
import { type IcmpRepr, IcmpFaults, ICMP_CHECKSUM, parseIcmp } from './icmp.ts';
import { type Icmpv6Repr, Icmpv6Faults, ICMPV6_CHECKSUM, parseIcmpv6 } from './icmpv6.ts';
import { ipProtocolName } from './ip.ts';
import { type Ipv4Repr, Ipv4Faults, IPV4_CHECKSUM, parseIpv4, parseIpv4Options } from './ipv4.ts';
import { type Ipv6Repr, parseIpv6 } from './ipv6.ts';
import { type Ipv6ExtRepr, parseIpv6Ext } from './ipv6ext.ts';
import { type TcpOption, type TcpRepr, TcpFaults, TCP_CHECKSUM, formatTcpFlags, parseTcp } from './tcp.ts';
import { type UdpRepr, UdpFaults, UDP_CHECKSUM, parseUdp } from './udp.ts';
import { type VlanRepr, parseVlan } from './vlan.ts';
import { type Result } from '../lib/result.ts';

/** Checksum status of a layer. */
export type ChecksumStatus = 'good' | 'bad' | 'unverified' | 'absent';
/** Fragment state of an IP layer: `later` fragments carry no L4 header and are not decoded further. */
export type FragmentState = 'none' | 'first' | 'later';

interface LayerBase {
  /** Offset of the header in the frame. */
  readonly offset: number;
  /** Header length. */
  readonly headerLen: number;
  /** End (exclusive) of what the layer covers: the packet for IP, the segment for L4, the frame for Ethernet. */
  readonly end: number;
}

/** One decoded layer, outermost first in {@link Frame.layers}. */
export type Layer =
  | (LayerBase & { readonly kind: 'ethernet'; readonly repr: EthernetRepr })
  | (LayerBase & { readonly kind: 'vlan'; readonly tpid: number; readonly repr: VlanRepr })
  | (LayerBase & { readonly kind: 'arp'; readonly repr: ArpRepr })
  | (LayerBase & { readonly kind: 'ipv4'; readonly repr: Ipv4Repr; readonly checksum: ChecksumStatus; readonly fragment: FragmentState })
  | (LayerBase & { readonly kind: 'ipv6'; readonly repr: Ipv6Repr; readonly fragment: FragmentState })
  | (LayerBase & { readonly kind: 'ipv6ext'; readonly repr: Ipv6ExtRepr })
  | (LayerBase & { readonly kind: 'tcp'; readonly repr: TcpRepr; readonly checksum: ChecksumStatus })
  | (LayerBase & { readonly kind: 'udp'; readonly repr: UdpRepr; readonly checksum: ChecksumStatus })
  | (LayerBase & { readonly kind: 'icmp'; readonly repr: IcmpRepr; readonly checksum: ChecksumStatus })
  | (LayerBase & { readonly kind: 'icmpv6'; readonly repr: Icmpv6Repr; readonly checksum: ChecksumStatus })
  | (LayerBase & { readonly kind: 'gre'; readonly repr: GreRepr; readonly checksum: ChecksumStatus });

/** The layer kinds. */
export type LayerName = Layer['kind'];

/** A decoded frame. */
export interface Frame {
  /** Link type it was decoded as. */
  readonly linkType: number;
  /** Frame length in bytes. */
  readonly length: number;
  /** Layers decoded, outermost first (those before an error included). */
  readonly layers: readonly Layer[];
  /** Offset of the bytes after the last decoded header (application data, or what could not be decoded). */
  readonly payloadOffset: number;
  /** A copy of those bytes (up to the innermost layer's end). */
  readonly payload: Uint8Array;
  /** A copy of the bytes after the outermost IP packet: Ethernet padding, or junk. */
  readonly trailer: Uint8Array;
  /** Why decoding stopped before the payload, or null. Checksum mismatches are not here. */
  readonly error: WireError | null;
  /** One error per header whose checksum does not verify (decoding goes on past them). */
  readonly checksumErrors: readonly WireError[];
}

/** Options for {@link decodeFrame}. */
export interface DecodeOptions {
  /** Verify checksums (default true). */
  readonly verifyChecksums?: boolean;
  /** Encapsulation bound (default {@link MAX_ENCAP_DEPTH}). */
  readonly maxEncapDepth?: number;
}

const dec = new FrameDecoder();
const CK_NAMES: readonly ChecksumStatus[] = ['absent', 'good', 'bad', 'unverified', 'absent'];
const FRAG_NAMES: readonly FragmentState[] = ['none', 'first', 'later'];

/** Unwraps a Repr parse of a row the decoder already validated; a failure here is a bug in one of the two. */
function must<T>(r: Result<T, WireError>, what: string): T {
  if (!r.ok) throw new Error(`wire: decoder accepted a ${what} its parser rejects: ${formatWireError(r.error)}`);
  return r.value;
}

/**
 * Decodes a whole frame: Ethernet (or raw IP) → VLAN tags → ARP | IPv4/IPv6 with extension
 * headers → TCP/UDP/ICMP/ICMPv6/GRE → inner packets, to {@link MAX_ENCAP_DEPTH}. Never throws on
 * any input: a failure is `frame.error`, with the layers before it kept.
 */
export function decodeFrame(buf: Uint8Array, linkType: number = LinkType.ETHERNET, opts: DecodeOptions = {}): Frame {
  dec.verifyChecksums = opts.verifyChecksums ?? true;
  dec.maxEncapDepth = opts.maxEncapDepth ?? MAX_ENCAP_DEPTH;
  dec.decode(buf, linkType);
  const layers: Layer[] = [];
  const checksumErrors: WireError[] = [];
  for (let i = 0; i < dec.count; i++) {
    const offset = dec.offsets[i]!;
    const headerLen = dec.headerLens[i]!;
    const end = dec.ends[i]!;
    const ckCode = dec.checksums[i]!;
    const checksum = CK_NAMES[ckCode]!;
    const base = { offset, headerLen, end };
    const bad = (f: WireFault, at: number) => {
      if (ckCode === CkStatus.BAD) checksumErrors.push(wireError(f, at));
    };
    switch (dec.kinds[i]) {
      case LayerKind.ETHERNET:
        layers.push({ kind: 'ethernet', ...base, repr: must(parseEthernet(buf, offset, end), 'ethernet header') });
        break;
      case LayerKind.VLAN:
        layers.push({ kind: 'vlan', ...base, tpid: dec.aux[i]!, repr: must(parseVlan(buf, offset, end), 'vlan tag') });
        break;
      case LayerKind.ARP:
        layers.push({ kind: 'arp', ...base, repr: must(parseArp(buf, offset, end), 'arp packet') });
        break;
      case LayerKind.IPV4:
        layers.push({ kind: 'ipv4', ...base, checksum, fragment: FRAG_NAMES[dec.aux[i]!]!, repr: must(parseIpv4(buf, offset, end, { verifyChecksum: false }), 'ipv4 header') });
        bad(Ipv4Faults.checksum, offset + IPV4_CHECKSUM);
        break;
      case LayerKind.IPV6:
        layers.push({ kind: 'ipv6', ...base, fragment: FRAG_NAMES[dec.aux[i]!]!, repr: must(parseIpv6(buf, offset, end), 'ipv6 header') });
        break;
      case LayerKind.IPV6_EXT:
        layers.push({ kind: 'ipv6ext', ...base, repr: must(parseIpv6Ext(buf, offset, end, dec.aux[i]!), 'ipv6 extension header') });
        break;
      case LayerKind.TCP:
        layers.push({ kind: 'tcp', ...base, checksum, repr: must(parseTcp(buf, offset, end), 'tcp header') });
        bad(TcpFaults.checksum, offset + TCP_CHECKSUM);
        break;
      case LayerKind.UDP: {
        // `fragment: true` because the decoder already held the length field to the IP payload
        // where that applies; for a first fragment `end` is the fragment's end, not the length's.
        const repr = must(parseUdp(buf, offset, end, { fragment: true }), 'udp header');
        layers.push({ kind: 'udp', ...base, checksum, repr });
        bad(repr.zeroChecksum ? UdpFaults.zeroOverIpv6 : UdpFaults.checksum, offset + UDP_CHECKSUM);
        break;
      }
      case LayerKind.ICMP:
        layers.push({ kind: 'icmp', ...base, checksum, repr: must(parseIcmp(buf, offset, end, { verifyChecksum: false }), 'icmp message') });
        bad(IcmpFaults.checksum, offset + ICMP_CHECKSUM);
        break;
      case LayerKind.ICMPV6:
        layers.push({ kind: 'icmpv6', ...base, checksum, repr: must(parseIcmpv6(buf, offset, end), 'icmpv6 message') });
        bad(Icmpv6Faults.checksum, offset + ICMPV6_CHECKSUM);
        break;
      case LayerKind.GRE:
        layers.push({ kind: 'gre', ...base, checksum, repr: must(parseGre(buf, offset, end, { verifyChecksum: false }), 'gre header') });
        bad(GreFaults.checksum, offset + GRE_OPTIONAL);
        break;
      default:
        throw new Error(`wire: decoder produced unknown layer kind ${dec.kinds[i]}`);
    }
  }
  return {
    linkType,
    length: buf.length,
    layers,
    payloadOffset: dec.payloadOffset,
    payload: copyBytes(buf, dec.payloadOffset, dec.payloadEnd),
    trailer: copyBytes(buf, dec.trailerOffset, dec.frameEnd),
    error: dec.fault ? wireError(dec.fault, dec.faultAt) : null,
    checksumErrors,
  };
}

/** The `nth` (0-based) layer of `kind` in a frame, typed; undefined when there is none. */
export function findLayer<K extends LayerName>(frame: Frame, kind: K, nth = 0): Extract<Layer, { kind: K }> | undefined {
  let n = 0;
  for (const l of frame.layers) {
    if (l.kind === kind && n++ === nth) return l as Extract<Layer, { kind: K }>;
  }
  return undefined;
}

function hex(n: number, width: number): string {
  return '0x' + n.toString(16).padStart(width, '0');
}

function etherName(t: number): string {
  switch (t) {
    case EtherType.IPV4: return 'ipv4';
    case EtherType.IPV6: return 'ipv6';
    case EtherType.ARP: return 'arp';
    case EtherType.VLAN: return '802.1q';
    case EtherType.QINQ: return '802.1ad';
    case EtherType.QINQ_LEGACY: return 'qinq-9100';
    case EtherType.TEB: return 'teb';
    default: return hex(t, 4);
  }
}

function ck(status: ChecksumStatus): string {
  return status === 'bad' ? ' cksum BAD' : status === 'unverified' ? ' cksum ?' : '';
}

function tcpOption(o: TcpOption): string {
  switch (o.kind) {
    case 'eol': return 'eol';
    case 'nop': return 'nop';
    case 'mss': return `mss ${o.value}`;
    case 'window_scale': return `wscale ${o.shift}`;
    case 'sack_permitted': return 'sackOK';
    case 'sack': return `sack ${o.blocks.map((b) => `${b.left}:${b.right}`).join(' ')}`;
    case 'timestamps': return `TS val ${o.tsval} ecr ${o.tsecr}`;
    case 'unknown': return `opt-${o.type}${o.data.length ? ' ' + toHex(o.data) : ''}`;
  }
}

function icmpWhat(r: IcmpRepr): string {
  switch (r.kind) {
    case 'echo_request':
    case 'echo_reply':
      return `${r.kind.replace('_', ' ')} id ${r.ident} seq ${r.seq}`;
    case 'dest_unreachable':
      return `unreachable code ${r.code}${r.code === 4 ? ` mtu ${r.nextHopMtu}` : ''}`;
    case 'time_exceeded':
      return `time exceeded code ${r.code}`;
    case 'other':
      return `type ${r.type} code ${r.code}`;
  }
}

function icmpv6What(r: Icmpv6Repr): string {
  switch (r.kind) {
    case 'echo_request':
    case 'echo_reply':
      return `${r.kind.replace('_', ' ')} id ${r.ident} seq ${r.seq}`;
    case 'packet_too_big':
      return `packet too big mtu ${r.mtu}`;
    case 'dest_unreachable':
      return `unreachable code ${r.code}`;
    case 'time_exceeded':
      return `time exceeded code ${r.code}`;
    case 'other':
      return `type ${r.type} code ${r.code}`;
  }
}

/** One layer as text, e.g. `ipv4 192.0.2.1 > 198.51.100.1 ttl 64 id 0x0001 DF proto gre len 84`. */
export function formatLayer(l: Layer): string {
  switch (l.kind) {
    case 'ethernet':
      return `eth ${l.repr.src} > ${l.repr.dst} type ${etherName(l.repr.etherType)}`;
    case 'vlan':
      return `vlan ${l.repr.vid}${l.repr.pcp ? ` pcp ${l.repr.pcp}` : ''}${l.repr.dei ? ' dei' : ''}${l.tpid !== EtherType.VLAN ? ` tpid ${hex(l.tpid, 4)}` : ''}`;
    case 'arp': {
      const r = l.repr;
      return r.op === 1 ? `arp who-has ${r.targetIp} tell ${r.senderIp} (${r.senderMac})` : r.op === 2 ? `arp reply ${r.senderIp} is-at ${r.senderMac}` : `arp op ${r.op} ${r.senderIp} > ${r.targetIp}`;
    }
    case 'ipv4': {
      const r = l.repr;
      const flags = `${r.dontFrag ? ' DF' : ''}${r.moreFrags ? ' MF' : ''}${r.fragOffset ? ` frag@${r.fragOffset}` : ''}${r.reservedFlag ? ' RB' : ''}`;
      const opts = r.options.length ? ` opts[${(() => { const p = parseIpv4Options(r.options); return p.ok ? p.value.map((o) => o.type).join(',') : '?'; })()}]` : '';
      return `ipv4 ${r.src} > ${r.dst} ttl ${r.ttl} id ${hex(r.ident, 4)}${flags}${r.dscp || r.ecn ? ` tos ${hex((r.dscp << 2) | r.ecn, 2)}` : ''}${opts} proto ${ipProtocolName(r.protocol)} len ${r.payloadLen + 20 + r.options.length}${ck(l.checksum)}`;
    }
    case 'ipv6': {
      const r = l.repr;
      return `ipv6 ${r.src} > ${r.dst} hlim ${r.hopLimit}${r.trafficClass ? ` tc ${hex(r.trafficClass, 2)}` : ''}${r.flowLabel ? ` flow ${hex(r.flowLabel, 5)}` : ''} next ${ipProtocolName(r.nextHeader)} plen ${r.payloadLen}`;
    }
    case 'ipv6ext': {
      const r = l.repr;
      switch (r.kind) {
        case 'hop_by_hop': return `hbh len ${l.headerLen} next ${ipProtocolName(r.nextHeader)}`;
        case 'dest_options': return `dstopts len ${l.headerLen} next ${ipProtocolName(r.nextHeader)}`;
        case 'routing': return `rh type ${r.routingType} left ${r.segmentsLeft} len ${l.headerLen} next ${ipProtocolName(r.nextHeader)}`;
        case 'fragment': return `frag id ${hex(r.ident, 8)} off ${r.fragOffset}${r.moreFrags ? ' MF' : ''} next ${ipProtocolName(r.nextHeader)}`;
        case 'auth': return `ah spi ${hex(r.spi, 8)} seq ${r.seq} next ${ipProtocolName(r.nextHeader)}`;
      }
      break;
    }
    case 'tcp': {
      const r = l.repr;
      const opts = r.options.length ? ` <${r.options.map(tcpOption).join(',')}>` : '';
      return `tcp ${r.srcPort} > ${r.dstPort} [${formatTcpFlags(r.flags)}] seq ${r.seq}${r.flags & 0x10 ? ` ack ${r.ack}` : ''} win ${r.window}${opts} len ${l.end - l.offset - l.headerLen}${ck(l.checksum)}`;
    }
    case 'udp':
      return `udp ${l.repr.srcPort} > ${l.repr.dstPort} len ${l.end - l.offset - l.headerLen}${l.repr.zeroChecksum ? ' no-cksum' : ''}${ck(l.checksum)}`;
    case 'icmp':
      return `icmp ${icmpWhat(l.repr)} len ${l.repr.data.length + 8}${ck(l.checksum)}`;
    case 'icmpv6':
      return `icmpv6 ${icmpv6What(l.repr)} len ${l.repr.data.length + 8}${ck(l.checksum)}`;
    case 'gre': {
      const r = l.repr;
      return `gre proto ${etherName(r.protocol)}${r.key !== null ? ` key ${r.key}` : ''}${r.seq !== null ? ` seq ${r.seq}` : ''}${r.checksum ? ' csum' : ''}${ck(l.checksum)}`;
    }
  }
  return l satisfies never;
}

/**
 * The frame on one line, layers separated by ` | `, then the payload length, the trailer and
 * any error: e.g. `eth … | ipv4 … | gre key 42 | ipv4 … | tcp 40000 > 80 [S] … | payload 0`.
 */
export function formatFrame(frame: Frame): string {
  const parts = frame.layers.map(formatLayer);
  parts.push(`payload ${frame.payload.length}`);
  if (frame.trailer.length) parts.push(`trailer ${frame.trailer.length}`);
  if (frame.error) parts.push(`!! ${formatWireError(frame.error)}`);
  return parts.join(' | ');
}

/** Decodes and formats in one call (for error messages on a mismatch). */
export function describeFrame(buf: Uint8Array, linkType: number = LinkType.ETHERNET): string {
  return formatFrame(decodeFrame(buf, linkType));
}
