/**
 * Routes of one table in one namespace, IPv4 and IPv6, single or multipath. Ours carry protocol
 * ROUTE_PROTO (marks.ts); we replace and delete only those. Tables are plain ids (`transit` is an
 * id the agent picks from its range); names in /etc/iproute2/rt_tables play no part, and `ip -N`
 * keeps iproute2 from printing them.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, nsLabel, type KernelError } from './errors.ts';
import { ip, ipJson, voidOf } from './iproute.ts';
import { compareCidrText, formatCidr, formatIp, parseCidr, type Family } from './ipaddr.ts';
import type { Marks } from './marks.ts';
import { checkNetnsName, type NsRef } from './netns.ts';
import { checkLinkName, checkMetric, checkTable, checkWeight, firstInvalid, parseGateway, parseRouteDst } from './validate.ts';

/** One next hop of a route as listed. */
export interface Nexthop {
  readonly dev: string;
  /** Gateway address, absent for a directly connected destination. */
  readonly via?: string;
  /** 1–256; a single-nexthop route always reads back 1 (the kernel keeps no weight for it). */
  readonly weight: number;
  /** The kernel marked it unusable (its link went down); the route stays while others live. */
  readonly dead: boolean;
  /** Installed `onlink`: the gateway is taken as on the link without a subnet covering it. */
  readonly onlink?: true;
}

/** A route as listed. */
export interface Route {
  readonly family: Family;
  readonly table: number;
  /** `net/len` in canonical text; a default route is `0.0.0.0/0` or `::/0`. */
  readonly dst: string;
  /** The route priority; IPv4 defaults to 0, IPv6 to 1024 (the kernel's defaults). */
  readonly metric: number;
  readonly protocol: number;
  /** `unicast`, `blackhole`, `local` … */
  readonly type: string;
  /** Sorted by dev, then gateway. Empty for types without next hops (blackhole …). */
  readonly nexthops: readonly Nexthop[];
  /** Protocol is our mark. */
  readonly owned: boolean;
}

/** A next hop to install. */
export interface NexthopSpec {
  readonly dev: string;
  readonly via?: string;
  /** Multipath weight, default 1. */
  readonly weight?: number;
  /**
   * Take the gateway as directly on `dev` (`onlink`), with no subnet of the link covering it:
   * how unnumbered links (the same /32 pair on every wire) are routed. Needs `via`.
   */
  readonly onlink?: boolean;
}

/** A unicast route to install. */
export interface RouteSpec {
  readonly table: number;
  readonly dst: string;
  readonly metric?: number;
  /** One for a plain route, several for ECMP. */
  readonly nexthops: readonly NexthopSpec[];
}

/** What identifies a route in its table (the kernel's key without TOS). */
export interface RouteKey {
  readonly table: number;
  readonly dst: string;
  readonly metric?: number;
}

/** Route operations. */
export interface RoutesApi {
  /** Every route of table `table`, ours or not, both families, sorted by family, dst, metric. */
  list(ns: NsRef, table: number): Promise<Result<Route[], KernelError>>;
  /**
   * Installs or replaces our route (idempotent: twice is once). `exists` if a route with the
   * same key belongs to someone else; `not_found` if a link is missing; `invalid` if a link is
   * down or a gateway is not on one of its subnets.
   */
  replace(ns: NsRef, spec: RouteSpec): Promise<Result<void, KernelError>>;
  /** Deletes our route with this key; one already gone (or never ours) is success. */
  delete(ns: NsRef, key: RouteKey): Promise<Result<void, KernelError>>;
  /** Deletes our routes of `table` whose key is not in `keep`; returns the deleted keys. */
  prune(ns: NsRef, table: number, keep: readonly RouteKey[]): Promise<Result<Route[], KernelError>>;
}

/** A validated, canonical route spec. */
export interface NormalRoute {
  readonly family: Family;
  readonly table: number;
  readonly dst: string;
  readonly metric: number;
  readonly nexthops: readonly { readonly dev: string; readonly via?: string; readonly weight: number; readonly onlink?: true }[];
}

/** The kernel's default metric: IPv6 turns 0 into 1024 (IP6_RT_PRIO_USER). */
export function defaultMetric(family: Family, metric: number | undefined): number {
  if (family === 6 && (metric === undefined || metric === 0)) return 1024;
  return metric ?? 0;
}

/** `route replace 203.0.113.0/25 table 100` for messages. */
export function routeOp(verb: string, key: RouteKey): string {
  return `route ${verb} ${key.dst} table ${key.table}${key.metric !== undefined ? ` metric ${key.metric}` : ''}`;
}

/** Route paths: `<ns>/route/<table>/<dst>`. */
export function routePath(ns: NsRef, key: RouteKey): string {
  return `${nsLabel(ns)}/route/${key.table}/${key.dst}`;
}

/** Validates and canonicalises a key; shared by the drivers. */
export function normalizeKey(op: string, ns: NsRef, key: RouteKey): { family: Family; table: number; dst: string; metric: number } | KernelError {
  const dst = parseRouteDst(key.dst);
  const bad = firstInvalid(op, ns, routePath(ns, key), ns === null ? null : checkNetnsName(ns), checkTable(key.table), typeof dst === 'string' ? dst : null, key.metric === undefined ? null : checkMetric(key.metric));
  if (bad) return bad;
  const d = dst as Exclude<typeof dst, string>;
  return { family: d.family, table: key.table, dst: formatCidr(d), metric: defaultMetric(d.family, key.metric) };
}

/** Validates and canonicalises a spec; shared by the drivers so both refuse the same things. */
export function normalizeRoute(op: string, ns: NsRef, spec: RouteSpec): NormalRoute | KernelError {
  const key = normalizeKey(op, ns, spec);
  if ('code' in key) return key;
  const path = routePath(ns, spec);
  if (spec.nexthops.length === 0) return firstInvalid(op, ns, path, 'a route needs at least one nexthop') as KernelError;
  const hops: { dev: string; via?: string; weight: number; onlink?: true }[] = [];
  for (const h of spec.nexthops) {
    const gw = h.via === undefined ? undefined : parseGateway(h.via, key.family);
    const bad = firstInvalid(op, ns, path, checkLinkName(h.dev), typeof gw === 'string' ? gw : null, h.weight === undefined ? null : checkWeight(h.weight), h.onlink === true && h.via === undefined ? 'onlink needs a gateway (via)' : null);
    if (bad) return bad;
    const via = gw === undefined || typeof gw === 'string' ? undefined : formatIp(gw);
    hops.push({ dev: h.dev, ...(via !== undefined ? { via } : {}), weight: spec.nexthops.length === 1 ? 1 : (h.weight ?? 1), ...(h.onlink === true ? { onlink: true as const } : {}) });
  }
  const seen = new Set(hops.map((h) => `${h.dev} ${h.via ?? ''}`));
  if (seen.size !== hops.length) return firstInvalid(op, ns, path, 'the same nexthop is listed twice') as KernelError;
  // The kernel refuses these with "Device only routes can not be added for IPv6 using the
  // multipath API": IPv6 ECMP siblings are gateway routes.
  if (key.family === 6 && hops.length > 1 && hops.some((h) => h.via === undefined))
    return firstInvalid(op, ns, path, 'an IPv6 multipath route needs a gateway (via) on every nexthop') as KernelError;
  return { ...key, nexthops: hops.sort(compareHops) };
}

/** Nexthop order in lists: by dev, then gateway. */
export function compareHops(a: { dev: string; via?: string }, b: { dev: string; via?: string }): number {
  if (a.dev !== b.dev) return a.dev < b.dev ? -1 : 1;
  return compareCidrText(a.via ?? '', b.via ?? '');
}

/** Route order in lists: family, destination, metric. */
export function compareRoutes(a: Route, b: Route): number {
  return a.family - b.family || compareCidrText(a.dst, b.dst) || a.metric - b.metric;
}

/** The error for a key held by someone else's route. */
export function foreignRoute(op: string, ns: NsRef, path: string, proto: number): KernelError {
  return kernelError('exists', op, ns, `a route with this destination and metric exists with protocol ${proto}, not ours`, {
    path,
    remedy: 'anyedge does not replace routes it did not make; remove that route by hand or give ours another metric',
  });
}

const RTN_TYPES = ['unspec', 'unicast', 'local', 'broadcast', 'anycast', 'multicast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'nat', 'xresolve'];

interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  metric?: number;
  flags?: string[];
  nexthops?: Array<{ gateway?: string; dev: string; weight?: number; flags?: string[] }>;
}

function onlinkOf(flags: readonly string[] | undefined): { onlink?: true } {
  return (flags ?? []).includes('onlink') ? { onlink: true } : {};
}

/** Parses one `ip -N -d -j route` entry. */
function parseRoute(r: IpRoute, family: Family, table: number, m: Marks): Route | null {
  const dst = r.dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : r.dst;
  const c = parseCidr(dst);
  if (!c) return null;
  const protocol = Number(r.protocol ?? 0);
  const type = r.type === undefined ? 'unicast' : /^\d+$/.test(r.type) ? (RTN_TYPES[Number(r.type)] ?? r.type) : r.type;
  const hops: Nexthop[] = r.nexthops
    ? r.nexthops.map((h) => ({ dev: h.dev, ...(h.gateway ? { via: h.gateway } : {}), weight: h.weight ?? 1, dead: (h.flags ?? []).includes('dead'), ...onlinkOf(h.flags) }))
    : r.dev !== undefined
      ? [{ dev: r.dev, ...(r.gateway ? { via: r.gateway } : {}), weight: 1, dead: (r.flags ?? []).includes('dead'), ...onlinkOf(r.flags) }]
      : [];
  return {
    family,
    table,
    dst: formatCidr(c),
    metric: r.metric ?? 0,
    protocol,
    type,
    nexthops: hops.sort(compareHops),
    owned: protocol === m.routeProto,
  };
}

/** The Linux driver: `ip -N -d -j route show table N`, `ip route replace|del … proto 174`. */
export function linuxRoutes(m: Marks): RoutesApi {
  async function listFamily(ns: NsRef, family: Family, table: number): Promise<Result<Route[], KernelError>> {
    const op = `route show table ${table}`;
    const res = await ipJson<IpRoute>(ns, [`-${family}`, '-N', '-d', 'route', 'show', 'table', String(table)], op);
    if (!res.ok) {
      // A table nobody has put a route in does not exist yet: that is an empty table.
      if (/FIB table does not exist/.test(res.error.cause && 'stderr' in res.error.cause ? res.error.cause.stderr : '')) return ok([]);
      return res;
    }
    return ok(res.value.map((r) => parseRoute(r, family, table, m)).filter((r): r is Route => r !== null));
  }

  const api: RoutesApi = {
    async list(ns, table) {
      const bad = firstInvalid(`route show table ${table}`, ns, undefined, ns === null ? null : checkNetnsName(ns), checkTable(table));
      if (bad) return err(bad);
      const v4 = await listFamily(ns, 4, table);
      if (!v4.ok) return v4;
      const v6 = await listFamily(ns, 6, table);
      if (!v6.ok) return v6;
      return ok([...v4.value, ...v6.value].sort(compareRoutes));
    },

    async replace(ns, spec) {
      const op = routeOp('replace', spec);
      const r = normalizeRoute(op, ns, spec);
      if ('code' in r) return err(r);
      const path = routePath(ns, spec);
      const cur = await listFamily(ns, r.family, r.table);
      if (!cur.ok) return cur;
      const clash = cur.value.find((x) => x.dst === r.dst && x.metric === r.metric && !x.owned);
      if (clash) return err(foreignRoute(op, ns, path, clash.protocol));
      const hops =
        r.nexthops.length === 1
          ? hopArgs(r.nexthops[0] as NormalRoute['nexthops'][number])
          : r.nexthops.flatMap((h) => ['nexthop', ...hopArgs(h), 'weight', String(h.weight)]);
      const args = [`-${r.family}`, 'route', 'replace', r.dst, 'table', String(r.table), 'proto', String(m.routeProto), 'metric', String(r.metric), ...hops];
      return voidOf(await ip(ns, args), op, ns, { path, remedy: 'bring the link up, and make sure each gateway is on a subnet of its link' });
    },

    async delete(ns, key) {
      const op = routeOp('delete', key);
      const k = normalizeKey(op, ns, key);
      if ('code' in k) return err(k);
      // Look first: for IPv4 the kernel reads metric 0 as "any metric", so deleting a metric-0
      // route that is gone could take another of ours with the same destination.
      const cur = await listFamily(ns, k.family, k.table);
      if (!cur.ok) return cur;
      if (!cur.value.some((x) => x.dst === k.dst && x.metric === k.metric && x.owned)) return ok(undefined);
      const args = [`-${k.family}`, 'route', 'del', k.dst, 'table', String(k.table), 'proto', String(m.routeProto), 'metric', String(k.metric)];
      const res = voidOf(await ip(ns, args), op, ns, { path: routePath(ns, key) });
      return !res.ok && res.error.code === 'not_found' ? ok(undefined) : res;
    },

    async prune(ns, table, keep) {
      return pruneRoutes(api, ns, table, keep);
    },
  };
  return api;
}

function hopArgs(h: { dev: string; via?: string; onlink?: true }): string[] {
  return [...(h.via !== undefined ? ['via', h.via] : []), 'dev', h.dev, ...(h.onlink ? ['onlink'] : [])];
}

/** Prune over any RoutesApi. */
export async function pruneRoutes(api: RoutesApi, ns: NsRef, table: number, keep: readonly RouteKey[]): Promise<Result<Route[], KernelError>> {
  const keys = new Set<string>();
  for (const k of keep) {
    if (k.table !== table) continue;
    const n = normalizeKey(routeOp('prune', k), ns, k);
    if ('code' in n) return err(n);
    keys.add(`${n.dst} ${n.metric}`);
  }
  const all = await api.list(ns, table);
  if (!all.ok) return all;
  const gone: Route[] = [];
  for (const r of all.value) {
    if (!r.owned || keys.has(`${r.dst} ${r.metric}`)) continue;
    const res = await api.delete(ns, { table, dst: r.dst, metric: r.metric });
    if (!res.ok) return res;
    gone.push(r);
  }
  return ok(gone);
}
