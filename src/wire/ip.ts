/**
 * IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), shared by the IPv4 protocol
 * field and the IPv6 next-header chain.
 */
import { ipv4Bytes, ipv6Bytes } from './addr.ts';
import { pseudoHeaderSum } from './checksum.ts';

/** Protocol / next-header numbers we name. */
export const IpProtocol = {
  /** IPv6 hop-by-hop options (an extension header, IPv6 only). */
  HOPOPT: 0,
  ICMP: 1,
  IGMP: 2,
  /** IPv4 in IP (RFC 2003). */
  IPIP: 4,
  TCP: 6,
  UDP: 17,
  /** IPv6 in IP (RFC 4213, 6in4). */
  IPV6: 41,
  /** IPv6 routing header. */
  ROUTING: 43,
  /** IPv6 fragment header. */
  FRAGMENT: 44,
  GRE: 47,
  ESP: 50,
  /** Authentication Header (RFC 4302). */
  AH: 51,
  ICMPV6: 58,
  /** IPv6 "no next header". */
  NONE: 59,
  /** IPv6 destination options. */
  DSTOPTS: 60,
  SCTP: 132,
} as const;

const NAMES: Readonly<Record<number, string>> = {
  0: 'hopopt', 1: 'icmp', 2: 'igmp', 4: 'ipip', 6: 'tcp', 17: 'udp', 41: 'ipv6', 43: 'routing', 44: 'fragment',
  47: 'gre', 50: 'esp', 51: 'ah', 58: 'icmpv6', 59: 'none', 60: 'dstopts', 132: 'sctp',
};

/** Short lowercase name of a protocol number, or `proto-N` when we have none. */
export function ipProtocolName(p: number): string {
  return NAMES[p] ?? `proto-${p}`;
}

/**
 * The two addresses of a pseudo-header. `Ipv4Repr` and `Ipv6Repr` both fit, so an emitter can
 * take the IP repr it is wrapped in. With an IPv6 routing header, pass the final destination.
 */
export interface Endpoints {
  /** Source address text (IPv4 or IPv6). */
  readonly src: string;
  /** Destination address text, same family as `src`. */
  readonly dst: string;
}

/** Pseudo-header sum from address text (the allocating path; views compute it from the packet). */
export function endpointsPseudoSum(ep: Endpoints, protocol: number, upperLen: number): number {
  const v6 = ep.src.includes(':');
  if (v6 !== ep.dst.includes(':')) throw new RangeError(`pseudo-header: ${ep.src} and ${ep.dst} are of different families`);
  const s = v6 ? ipv6Bytes(ep.src) : ipv4Bytes(ep.src);
  const d = v6 ? ipv6Bytes(ep.dst) : ipv4Bytes(ep.dst);
  return pseudoHeaderSum(s, 0, d, 0, v6 ? 16 : 4, protocol, upperLen);
}
