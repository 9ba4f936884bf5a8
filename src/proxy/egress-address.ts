/**
 * The proxy's view of one egress address of this server: `serverEgress`'s `EgressAddress`
 * (compile/egress/server.ts) — the address, its tags and this server's port slice of it — and
 * what one address can carry towards one destination.
 */
import type { EgressAddress } from '../compile/egress/server.ts';
import type { EgressClass } from '../model/egress.ts';

export type { EgressAddress } from '../compile/egress/server.ts';

/** Traffic class of an egress address (model/egress.ts `EGRESS_CLASSES`). */
export type EgressClassName = EgressClass;

/**
 * Live connections one address can hold towards ONE destination (ip, port): the NAT needs a
 * distinct source port per connection to the same destination, so the slice's port count; to
 * distinct destinations ports are reused and there is no such bound.
 */
export function capacityPerDestination(a: EgressAddress): number {
  return a.sliceSize ?? a.portHi - a.portLo + 1;
}
