/**
 * Port slices of soft-unicast egress: which server of a data center uses which egress address
 * and which ports of it. Pure; the same config gives the same answer on every server and in the
 * XDP steering tables, which is what lets a reply that lands on the wrong server be forwarded to
 * the right one.
 *
 * Rules (IPv4):
 * - An address belongs to the pool whose CIDRs contain it and to the data center its
 *   `/egress/assign/<ip>` names. A data center's addresses are grouped by tag group: (class,
 *   country, sliceSize) of their pool; inside a group they are ordered numerically.
 * - The servers of a data center are ordered by id (code-unit order, the same in every
 *   language). `draining` and `down` servers keep their place and their slices, so taking a
 *   server out never moves anybody else's ports (their flows would break).
 * - Slice 0 (ports 0..sliceSize−1, holding the well-known ports) is never handed out, so an
 *   address has S = 65536/sliceSize − 1 usable slices.
 * - With N servers a group needs G = ceil(N / S) addresses. Server k (its index in the order)
 *   gets slice (k mod S)+1 of the (k div S)-th address of the group. Addresses beyond the first G
 *   are not wasted: address a is used like address a mod G, so server k gets the same slice of
 *   every address a with a mod G = k div S (more ports for it; the proxy moves on to the next
 *   address of the same tags when one runs short). With exactly G addresses this is the rule above.
 * - A group with fewer than G addresses is an error naming the data center, the tag and how many
 *   more addresses it needs; no server of that data center gets egress state from a half-sliced
 *   group (a server without a slice would have nowhere to go).
 *
 * IPv6: an address is one server's (`/egress/assign/<ip>` {dc, server}); no slices, the server
 * uses ports 1024–65535 of it.
 */
import type { Config } from '../../model/config.ts';
import type { EgressPool } from '../../model/egress.ts';
import { slicesPerAddress } from '../../model/egress.ts';
import type { Family } from '../../model/net.ts';
import { cidrContains, hostCidr, mustCidr, mustIp } from '../../model/net.ts';
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import type { EgressError } from './error.ts';
import { egressError } from './error.ts';

/** Ports an IPv6 egress address gives its server: everything above the well-known ports. */
export const V6_PORTS = { lo: 1024, hi: 65535 } as const;

/** An assigned egress address with its pool. */
export interface AssignedAddress {
  readonly ip: string;
  readonly value: bigint;
  readonly family: Family;
  readonly dc: string;
  /** IPv6 only: the server it is assigned to. */
  readonly server?: string;
  readonly poolId: string;
  readonly pool: EgressPool;
}

/** The ports of slice `slice` of size `sliceSize`. */
export function slicePorts(slice: number, sliceSize: number): { lo: number; hi: number } {
  return { lo: slice * sliceSize, hi: (slice + 1) * sliceSize - 1 };
}

/** Addresses a group of `servers` servers needs at `sliceSize` ports per slice. */
export function addressesNeeded(servers: number, sliceSize: number): number {
  return Math.ceil(servers / slicesPerAddress(sliceSize));
}

/** `trusted/GB`: how a tag is written in messages and group keys. */
export function tagText(pool: Pick<EgressPool, 'tags'>): string {
  return `${pool.tags.class}/${pool.tags.country}`;
}

/** The pool holding `ip`, if any (validate.ts keeps pools disjoint, so there is at most one). */
export function poolOf(config: Config, ip: string): { id: string; pool: EgressPool } | undefined {
  const host = hostCidr(mustIp(ip));
  for (const [id, pool] of Object.entries(config.egress.pools))
    if (pool.cidrs.some((c) => cidrContains(mustCidr(c), host))) return { id, pool };
  return undefined;
}

/** Every assigned address with its pool, in numeric order (IPv4 first). */
export function assignedAddresses(config: Config): Result<AssignedAddress[], EgressError> {
  const out: AssignedAddress[] = [];
  for (const [ip, a] of Object.entries(config.egress.assign)) {
    const path = `egress/assign/${ip}`;
    const found = poolOf(config, ip);
    if (!found) return err(egressError('not_found', path, `${ip} is not in any egress pool; add its prefix to a pool or delete the assignment`));
    if (!Object.hasOwn(config.dcs, a.dc)) return err(egressError('not_found', path, `data center ${JSON.stringify(a.dc)} does not exist; assign ${ip} to an existing one`));
    const addr = mustIp(ip);
    if (addr.family === 6) {
      if (a.server === undefined) return err(egressError('invalid', path, `${ip} is an IPv6 address: it is one server's, so the assignment needs a server of ${a.dc}`));
      if (!Object.hasOwn(config.dcs[a.dc]!.servers, a.server))
        return err(egressError('not_found', path, `data center ${a.dc} has no server ${JSON.stringify(a.server)}; assign ${ip} to one of ${Object.keys(config.dcs[a.dc]!.servers).join(', ') || 'none'}`));
    } else if (a.server !== undefined) {
      return err(egressError('invalid', path, `${ip} is an IPv4 address: it is shared by the port slices of all of ${a.dc}'s servers, so the assignment names no server; drop server`));
    }
    out.push({ ip, value: addr.value, family: addr.family, dc: a.dc, ...(a.server !== undefined ? { server: a.server } : {}), poolId: found.id, pool: found.pool });
  }
  out.sort((x, y) => x.family - y.family || (x.value < y.value ? -1 : x.value > y.value ? 1 : 0));
  return ok(out);
}

/** The servers of a data center in slice order. */
export function serverOrder(config: Config, dc: string): string[] {
  return Object.keys(config.dcs[dc]?.servers ?? {}).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One IPv4 address of a data center with the slice of each server that uses it. */
export interface SlicedAddress {
  readonly address: AssignedAddress;
  readonly sliceSize: number;
  /** Used slices in slice order. */
  readonly slices: ReadonlyArray<{ readonly slice: number; readonly server: string }>;
}

/**
 * The IPv4 addresses of data center `dc` with their slices (see the file header), in numeric
 * order; an error when a tag group has too few addresses for the data center's servers.
 */
export function dcSlices(config: Config, dc: string, all: readonly AssignedAddress[]): Result<SlicedAddress[], EgressError> {
  const servers = serverOrder(config, dc);
  const groups = new Map<string, AssignedAddress[]>();
  for (const a of all) {
    if (a.dc !== dc || a.family !== 4) continue;
    const key = `${tagText(a.pool)}/${a.pool.sliceSize}`;
    const g = groups.get(key);
    if (g) g.push(a);
    else groups.set(key, [a]);
  }
  const out: SlicedAddress[] = [];
  for (const group of groups.values()) {
    const { pool } = group[0]!;
    const s = slicesPerAddress(pool.sliceSize);
    const needed = addressesNeeded(servers.length, pool.sliceSize);
    if (group.length < needed) {
      const more = needed - group.length;
      return err(
        egressError(
          'short',
          `dcs/${dc}`,
          `data center ${dc} has ${servers.length} servers but only ${group.length} egress address${group.length === 1 ? '' : 'es'} tagged ${tagText(pool)} (sliceSize ${pool.sliceSize}: ${s} servers each); ` +
            `assign ${more} more address${more === 1 ? '' : 'es'} of that tag to ${dc} (anyedge egress allocate does it)`,
        ),
      );
    }
    for (const [a, address] of group.entries()) {
      const row = a % needed;
      const slices = servers.slice(row * s, (row + 1) * s).map((server, i) => ({ slice: i + 1, server }));
      out.push({ address, sliceSize: pool.sliceSize, slices });
    }
  }
  out.sort((x, y) => (x.address.value < y.address.value ? -1 : x.address.value > y.address.value ? 1 : 0));
  return ok(out);
}
