/**
 * The proxy's view of one egress address of this server, as `serverEgress` in
 * compile/egress/server.ts computes it from the config (the proxy takes them from there through
 * config-follow.ts). Kept as its own type so the choice and the accounting are testable without
 * a config.
 */

/** Traffic class of an egress address (model/egress.ts `EGRESS_CLASSES`). */
export type EgressClassName = 'trusted' | 'untrusted';

/** An egress address of this server with its port slice. */
export interface EgressAddress {
  readonly ip: string;
  readonly family: 4 | 6;
  readonly pool: string;
  readonly class: EgressClassName;
  readonly country: string;
  /** This server's ports of it: its slice (IPv6: 1024–65535). */
  readonly portLo: number;
  readonly portHi: number;
  /** Ports per slice; null for IPv6 (no slices). */
  readonly sliceSize: number | null;
}

/**
 * Live connections one address can hold towards ONE destination (ip, port): the NAT needs a
 * distinct source port per connection to the same destination, so the slice's port count; to
 * distinct destinations ports are reused and there is no such bound.
 */
export function capacityPerDestination(a: EgressAddress): number {
  return a.sliceSize ?? a.portHi - a.portLo + 1;
}
