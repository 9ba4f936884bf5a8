/**
 * Ownership marks. Every object anyedge creates carries one, and every list/prune function
 * decides "ours" from the mark alone, so cleanup finds exactly what we made and never touches what
 * an operator, a distribution or another daemon put there.
 *
 * | object       | mark                                                                   |
 * |--------------|------------------------------------------------------------------------|
 * | netns        | name starts with `prefix`                                              |
 * | link         | name starts with `prefix`, and alias `anyedge:<owner>` or group 174    |
 * | route        | protocol 174                                                           |
 * | rule         | priority in `rulePriorities` and lookup table in `tables`              |
 * | nft table    | name starts with `prefix`                                              |
 */

/**
 * The route protocol number (`ip route … proto 174`) that marks our routes. 174 is 0xae ("ae" for
 * anyedge); /etc/iproute2/rt_protos and the kernel's rtnetlink.h reserve 0–4 and name 8–19, 42,
 * 99 and 186–192 for other routing daemons (zebra, bird, babel, bgp …), and nothing claims 174.
 * Deletes pass `proto 174` too, so the kernel itself refuses to match another daemon's route.
 */
export const ROUTE_PROTO = 174;

/**
 * The interface group (`ip link … group 174`) our links are created with. Unlike the alias it
 * can be given in the same `ip link add` that creates the pair (the kernel ignores IFLA_IFALIAS on
 * creation), so a link interrupted between "create" and "set alias" is still recognisable as ours.
 */
export const LINK_GROUP = 174;

/** The alias prefix of our links; the owner follows, `anyedge:acme`. */
export const ALIAS_PREFIX = 'anyedge:';

/** An inclusive range of numbers. */
export interface Range {
  readonly min: number;
  readonly max: number;
}

/** The marks one agent (or one test) uses. */
export interface Marks {
  /** Name prefix of our netns, links and nft tables. Default `ae`; tests use a random one. */
  readonly prefix: string;
  /** Route protocol number; see ROUTE_PROTO. */
  readonly routeProto: number;
  /**
   * Priorities of our `ip rule`s. 1000–1999 sits after the kernel's `local` rule (0) and well
   * before `main` (32766), and clear of the 5200–5300 band Tailscale and the 100–200 band some
   * VPN clients use, so the transit lookup wins over main without reordering anyone else.
   */
  readonly rulePriorities: Range;
  /**
   * Route table ids we own (the `transit` table among them). 100–199: above the reserved
   * 253–255 (default, main, local) concerns, below 1000 to stay readable, and away from the
   * 52 (Tailscale) and 200–252 that distributions hand out in /etc/iproute2/rt_tables.
   */
  readonly tables: Range;
}

/** The production marks. */
export const DEFAULT_MARKS: Marks = {
  prefix: 'ae',
  routeProto: ROUTE_PROTO,
  rulePriorities: { min: 1000, max: 1999 },
  tables: { min: 100, max: 199 },
};

/** Marks with some fields replaced. */
export function marksWith(over: Partial<Marks> = {}): Marks {
  return { ...DEFAULT_MARKS, ...over };
}

/** Whether a number lies in a range. */
export function inRange(r: Range, n: number): boolean {
  return n >= r.min && n <= r.max;
}

/** The alias that marks a link as made for `owner`. */
export function ownerAlias(owner: string): string {
  return ALIAS_PREFIX + owner;
}

/**
 * Who owns a link, from its name, alias and group: the owner string, `''` for a link of ours
 * whose alias is missing (creation was interrupted), or null if it is not ours.
 */
export function linkOwner(m: Marks, name: string, alias: string | null, group: number): string | null {
  if (!name.startsWith(m.prefix)) return null;
  if (alias !== null && alias.startsWith(ALIAS_PREFIX)) return alias.slice(ALIAS_PREFIX.length);
  return group === LINK_GROUP ? '' : null;
}

/** Whether an `ip rule` is ours: priority in our band and lookup in one of our tables. */
export function ruleIsOurs(m: Marks, priority: number, table: number | null): boolean {
  return inRange(m.rulePriorities, priority) && table !== null && inRange(m.tables, table);
}
