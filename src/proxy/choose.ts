/**
 * Which egress address a tunnel leaves from. Eligible: this server's addresses of the service's
 * class, the destination's family and the eyeball's country — or, when this server has no such
 * address, the configured fallback country (said in the result, so the reply and the log can tell
 * the eyeball it leaves from elsewhere). Among the eligible, the one with the most free capacity
 * towards this destination goes first (ties: the less loaded address, then address order, so the
 * choice is deterministic). An address whose slice already holds as many connections to this
 * exact destination as it has ports (live ones, and closed ones whose port the NAT still holds,
 * see ledger.ts) is full for it; when every eligible address is full the
 * answer is an error naming the tags, the destination and how many slices were tried.
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { capacityPerDestination, type EgressAddress, type EgressClassName } from './egress-address.ts';
import type { Destination, SliceLedger } from './ledger.ts';

/** What a tunnel needs. */
export interface ChoiceRequest {
  readonly class: EgressClassName;
  /** The eyeball's country (GeoIP). */
  readonly country: string;
  readonly family: 4 | 6;
  readonly destination: Destination;
}

/** Eligible addresses, and the country they carry. */
export interface Eligible {
  readonly addresses: readonly EgressAddress[];
  readonly country: string;
  /** Set when the eyeball's country had no address and the fallback country is used: why. */
  readonly fallback: string | null;
}

/** Why no address can be used. */
export interface ChoiceError {
  readonly code: 'no_egress' | 'exhausted';
  /** What was asked, e.g. `class=trusted country=NL IPv4 → 203.0.113.10:443`. */
  readonly path: string;
  readonly message: string;
}

function describe(r: ChoiceRequest, country = r.country): string {
  const dst = r.family === 6 ? `[${r.destination.ip}]:${r.destination.port}` : `${r.destination.ip}:${r.destination.port}`;
  return `class=${r.class} country=${country} IPv${r.family} → ${dst}`;
}

/**
 * The addresses a request may use (before looking at capacity). An error when this server has no
 * address of the class and family at all, or none in the eyeball's country nor the fallback one.
 */
export function eligible(all: readonly EgressAddress[], r: ChoiceRequest, fallbackCountry: string | null): Result<Eligible, ChoiceError> {
  const usable = all.filter((a) => a.class === r.class && a.family === r.family);
  if (usable.length === 0)
    return err({
      code: 'no_egress',
      path: describe(r),
      message: `no ${r.class} IPv${r.family} egress address is assigned to this server (it has ${all.length} egress address${all.length === 1 ? '' : 'es'} in all); add a ${r.class} pool with IPv${r.family} prefixes and assign its addresses to this data center`,
    });
  const mine = usable.filter((a) => a.country === r.country);
  if (mine.length > 0) return ok({ addresses: mine, country: r.country, fallback: null });
  const countries = [...new Set(usable.map((a) => a.country))].sort().join(', ');
  if (fallbackCountry !== null && fallbackCountry !== r.country) {
    const fb = usable.filter((a) => a.country === fallbackCountry);
    if (fb.length > 0) return ok({ addresses: fb, country: fallbackCountry, fallback: `no ${r.class} IPv${r.family} egress address in ${r.country} on this server; leaving from the fallback country ${fallbackCountry}` });
  }
  return err({
    code: 'no_egress',
    path: describe(r),
    message: `no ${r.class} IPv${r.family} egress address in ${r.country}${fallbackCountry !== null && fallbackCountry !== r.country ? ` nor in the fallback country ${fallbackCountry}` : ''} on this server (it has ${r.class} addresses in ${countries}); add a pool tagged ${r.class}/${r.country}, or start the proxy with --fallback-country set to one of ${countries}`,
  });
}

/** An address and its room towards one destination. */
export interface Ranked {
  readonly address: EgressAddress;
  /** Connections to the destination it can still take (0: full). */
  readonly free: number;
  readonly live: number;
}

/** Every eligible address with its free capacity towards the destination, best first. */
export function rank(addresses: readonly EgressAddress[], ledger: SliceLedger, destination: Destination): Ranked[] {
  return addresses
    .map((address) => ({ address, free: Math.max(0, capacityPerDestination(address) - ledger.heldTo(address.ip, destination)), live: ledger.live(address.ip) }))
    .sort((a, b) => b.free - a.free || a.live - b.live || (a.address.ip < b.address.ip ? -1 : a.address.ip > b.address.ip ? 1 : 0));
}

/** One address that could not be used, and why (for the error text and the log). */
export interface Tried {
  readonly ip: string;
  readonly why: string;
}

/**
 * The best address not yet tried that has room towards the destination, or null when none is
 * left. `tried` holds the addresses the kernel already refused for this request.
 */
export function nextAddress(addresses: readonly EgressAddress[], ledger: SliceLedger, destination: Destination, tried: ReadonlySet<string>): Ranked | null {
  return rank(addresses, ledger, destination).find((x) => x.free > 0 && !tried.has(x.address.ip)) ?? null;
}

/** The error when every eligible slice is full (by our count or the kernel's refusal). */
export function exhausted(r: ChoiceRequest, e: Eligible, ledger: SliceLedger, refused: readonly Tried[]): ChoiceError {
  const why = new Map(refused.map((t) => [t.ip, t.why]));
  const slices = e.addresses.map((a) => {
    const held = ledger.heldTo(a.ip, r.destination);
    const lingering = ledger.lingeringTo(a.ip, r.destination);
    const cap = capacityPerDestination(a);
    const state = why.get(a.ip) ?? (lingering === 0 ? `${held}/${cap} live to it` : `${held}/${cap} taken to it (${held - lingering} live, ${lingering} closed less than ${ledger.lingerMs >= 1000 ? `${Math.round(ledger.lingerMs / 1000)} s` : `${ledger.lingerMs} ms`} ago, their ports held in TIME_WAIT)`);
    return `${a.ip} ports ${a.portLo}–${a.portHi}: ${state}`;
  });
  return {
    code: 'exhausted',
    path: describe(r, e.country),
    message: `every eligible egress slice is full for ${describe(r, e.country)}: ${e.addresses.length} slice${e.addresses.length === 1 ? '' : 's'} tried (${slices.join('; ')}); retry when connections to this destination close, or add addresses to a ${r.class}/${e.country} pool`,
  };
}
