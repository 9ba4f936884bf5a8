/**
 * Cross-object checks: the rules no single object can check on its own. Every object has already
 * passed its own schema (objects that did not are listed in `broken` and left out of the config),
 * so this file only compares objects with each other. It returns every issue it finds, in a
 * deterministic order, because the store compares issue lists before and after a write.
 *
 * Everything that can grow with the number of tenants is indexed or sorted, never compared
 * pairwise: 100k prefixes cost one sort (`findOverlaps`) and one hash probe per prefix length.
 */
import type { Config } from './config.ts';
import type { Issue } from './issue.ts';
import type { Segments } from './schema.ts';
import type { Cidr } from './net.ts';
import { familyOf, formatIp, hostCidr, mustCidr, mustIfAddr, mustIp, cidrContains } from './net.ts';
import { CidrIndex, findOverlaps } from './overlap.ts';
import { SLICE_MAX, SLICE_MIN, slicesPerAddress } from './egress.ts';
import { didYouMean, plural } from './text.ts';

/** Options of `validate`. */
export interface ValidateOptions {
  /**
   * Object paths (`tenants/acme/tunnels/gre1`) that failed their own schema and are missing from
   * the config. A reference to one of them is not reported as dangling: the object is there, it
   * is only wrong, and its own issues already say how.
   */
  readonly broken?: ReadonlySet<string>;
}

/** A prefix or address somebody claims, with where the claim is written. */
interface Claim {
  readonly path: Segments;
  readonly field: Segments;
  readonly text: string;
  /** Who owns it: `tenant:<id>`, `anycast:ranges`, `anycast:egressRanges` or `pool:<id>`. */
  readonly owner: string;
}

/** `tenants/globex/prefixes/p0` or `anycast.ranges.0`: how a message points at another object. */
function ref(c: { readonly path: Segments; readonly field: Segments }): string {
  return c.path.join('/') + (c.field.length ? '.' + c.field.join('.') : '');
}

function issue(code: string, at: { readonly path: Segments; readonly field?: Segments }, message: string): Issue {
  return { code, path: at.path, field: at.field ?? [], message };
}

/** Checks a whole config across objects. Returns every issue; an empty list means valid. */
export function validate(config: Config, opts: ValidateOptions = {}): Issue[] {
  const broken = opts.broken ?? new Set<string>();
  const out: Issue[] = [];
  const platform = platformClaims(config);
  checkPrefixOverlaps(config, platform, out);
  checkAddresses(config, out);
  checkTunnels(config, platform, broken, out);
  checkRoutes(config, broken, out);
  checkEgress(config, broken, out);
  checkDos(config, broken, out);
  return out;
}

function platformClaims(config: Config): Claim[] {
  const out: Claim[] = [];
  for (const field of ['ranges', 'egressRanges'] as const)
    for (const [i, text] of config.anycast[field].entries()) out.push({ path: ['anycast'], field: [field, i], text, owner: `anycast:${field}` });
  return out;
}

/**
 * No address may belong to two tenants, or to a tenant and the platform: the prefix decides which
 * namespace a packet is steered into. A tenant may list nested prefixes of its own (a /24 and a
 * more specific /25 for traffic engineering), but not the same prefix twice. Anycast ranges and
 * egress ranges must be disjoint too, since egress addresses are owned per data center and GRE
 * endpoints are not.
 */
function checkPrefixOverlaps(config: Config, platform: readonly Claim[], out: Issue[]): void {
  const claims: { cidr: Cidr; value: Claim }[] = platform.map((c) => ({ cidr: mustCidr(c.text), value: c }));
  for (const [t, tenant] of Object.entries(config.tenants))
    for (const [p, prefix] of Object.entries(tenant.prefixes))
      claims.push({ cidr: mustCidr(prefix.cidr), value: { path: ['tenants', t, 'prefixes', p], field: [], text: prefix.cidr, owner: `tenant:${t}` } });

  const conflicts = (a: Claim, b: Claim): boolean => a.owner !== b.owner || a.text === b.text;
  for (const [outer, inner] of findOverlaps(claims, conflicts)) {
    const outerTenant = outer.owner.startsWith('tenant:');
    const innerTenant = inner.owner.startsWith('tenant:');
    if (outer.owner === inner.owner) {
      // Same owner, same prefix: the later one is the redundant copy.
      out.push(issue('duplicate', inner, `${inner.text} is already listed as ${ref(outer)}; list each prefix once`));
    } else if (outerTenant && innerTenant) {
      // Reported on the enclosing prefix, naming the one inside it (one issue per pair).
      out.push(issue('overlap', outer, `${outer.text} overlaps ${ref(inner)} (${inner.text})`));
    } else if (outerTenant || innerTenant) {
      // A tenant prefix against a platform range: the tenant's prefix is what must change.
      const [mine, theirs] = outerTenant ? [outer, inner] : [inner, outer];
      out.push(issue('overlap', mine, `${mine.text} overlaps ${ref(theirs)} (${theirs.text}), which the platform announces for itself; use a prefix outside the platform's ranges`));
    } else {
      const [egress, any] = outer.owner === 'anycast:egressRanges' ? [outer, inner] : [inner, outer];
      out.push(issue('overlap', egress, `${egress.text} overlaps ${ref(any)} (${any.text}); egress ranges and anycast ranges must be disjoint (egress addresses are owned by one data center, anycast ones by all)`));
    }
  }
}

/**
 * Backbone and server addresses are unique across the platform: two servers answering for one
 * address would split its traffic at random.
 */
function checkAddresses(config: Config, out: Issue[]): void {
  const seen = new Map<string, string>();
  const claim = (text: string, at: { path: Segments; field: Segments }): void => {
    const ip = formatIp(mustIfAddr(text).ip);
    const first = seen.get(ip);
    if (first !== undefined) out.push(issue('duplicate', at, `${ip} is already used by ${first}; every address belongs to one router or server`));
    else seen.set(ip, ref(at));
  };
  for (const [d, dc] of Object.entries(config.dcs)) {
    for (const [i, a] of dc.backbone.entries()) claim(a, { path: ['dcs', d], field: ['backbone', i] });
    for (const [s, server] of Object.entries(dc.servers))
      for (const [i, a] of server.addresses.entries()) claim(a, { path: ['dcs', d, 'servers', s], field: ['addresses', i] });
  }
}

/**
 * Tunnels: the customer endpoint must be reachable over the Internet without coming back to us,
 * the anycast endpoint must be one we announce, and every tunnel must be distinguishable on
 * receive, since any server decapsulates for every tenant.
 */
function checkTunnels(config: Config, platform: readonly Claim[], broken: ReadonlySet<string>, out: Issue[]): void {
  if (!Object.values(config.tenants).some((t) => Object.keys(t.tunnels).length)) return;
  const announced = new CidrIndex<Claim>();
  for (const c of platform) announced.add(mustCidr(c.text), c);
  for (const [t, tenant] of Object.entries(config.tenants))
    for (const [p, prefix] of Object.entries(tenant.prefixes))
      announced.add(mustCidr(prefix.cidr), { path: ['tenants', t, 'prefixes', p], field: [], text: prefix.cidr, owner: `tenant:${t}` });

  const greEndpoints = config.anycast.greEndpoints;
  const anycastBroken = broken.has('anycast');
  const receivers = new Map<string, string>();
  for (const [t, tenant] of Object.entries(config.tenants)) {
    for (const [n, tunnel] of Object.entries(tenant.tunnels)) {
      const path = ['tenants', t, 'tunnels', n];
      const hit = announced.containing(hostCidr(mustIp(tunnel.customerEndpoint)))[0];
      if (hit)
        out.push(
          issue(
            'endpoint_announced',
            { path, field: ['customerEndpoint'] },
            `${tunnel.customerEndpoint} is inside ${ref(hit)} (${hit.text}), which we announce: GRE packets to it would come straight back to us; use the customer router's own public address`,
          ),
        );

      let local = tunnel.anycastEndpoint;
      const family = familyOf(tunnel.customerEndpoint);
      if (local !== undefined && !greEndpoints.includes(local) && !anycastBroken) {
        out.push(
          issue(
            'unknown_endpoint',
            { path, field: ['anycastEndpoint'] },
            `${local} is not an anycast GRE endpoint; use one of anycast.greEndpoints (${greEndpoints.join(', ') || 'none yet'})`,
          ),
        );
      } else if (local === undefined) {
        local = greEndpoints.find((e) => familyOf(e) === family);
        if (local === undefined && !anycastBroken)
          out.push(
            issue(
              'no_endpoint',
              { path, field: ['anycastEndpoint'] },
              `no IPv${family} address in anycast.greEndpoints to send to ${tunnel.customerEndpoint} from; add one there, or set anycastEndpoint`,
            ),
          );
      }
      if (local === undefined) continue;
      // What a receiving server sees of a tunnel: outer source, outer destination, key.
      const id = `${tunnel.customerEndpoint}|${local}|${tunnel.key ?? '-'}`;
      const first = receivers.get(id);
      if (first !== undefined)
        out.push(
          issue(
            'duplicate',
            { path, field: ['customerEndpoint'] },
            `${first} already carries GRE from ${tunnel.customerEndpoint} to ${local} ${tunnel.key === undefined ? 'without a key' : `with key ${tunnel.key}`}; ` +
              'a receiving server could not tell the two tunnels apart: give them different keys',
          ),
        );
      else receivers.set(id, path.join('/'));
    }
  }
}

/**
 * Routes: each next hop names a tunnel of the same tenant, the prefix lies inside the tenant's own
 * prefixes (nothing else is ever steered into its namespace), and no two routes have one prefix.
 */
function checkRoutes(config: Config, broken: ReadonlySet<string>, out: Issue[]): void {
  // Tenants with a prefix that failed its schema: a route may lie inside it, so "outside every
  // prefix" cannot be decided for them.
  const brokenPrefixOwners = new Set<string>();
  const brokenTunnels = new Map<string, string[]>();
  for (const b of broken) {
    const m = /^tenants\/([^/]+)\/(prefixes|tunnels)\/([^/]+)$/.exec(b);
    if (!m) continue;
    if (m[2] === 'prefixes') brokenPrefixOwners.add(m[1]!);
    else brokenTunnels.set(m[1]!, [...(brokenTunnels.get(m[1]!) ?? []), m[3]!]);
  }
  for (const [t, tenant] of Object.entries(config.tenants)) {
    // Most tenants of a large config are checked here for nothing; skip the index for them.
    if (Object.keys(tenant.routes).length === 0) continue;
    const own = new CidrIndex<string>();
    for (const prefix of Object.values(tenant.prefixes)) own.add(mustCidr(prefix.cidr), prefix.cidr);
    const prefixesBroken = brokenPrefixOwners.has(t);
    // Tunnels that failed their schema still exist and are still names the user knows.
    const tunnels = [...Object.keys(tenant.tunnels), ...(brokenTunnels.get(t) ?? [])];
    const byPrefix = new Map<string, string>();
    for (const [r, route] of Object.entries(tenant.routes)) {
      const path = ['tenants', t, 'routes', r];
      for (const [i, hop] of route.via.entries()) {
        if (Object.hasOwn(tenant.tunnels, hop.tunnel) || broken.has(`tenants/${t}/tunnels/${hop.tunnel}`)) continue;
        out.push(
          issue(
            'unknown_tunnel',
            { path, field: ['via', i, 'tunnel'] },
            `tenant ${t} has no tunnel ${JSON.stringify(hop.tunnel)}${didYouMean(hop.tunnel, tunnels)}; ` +
              (tunnels.length ? `its tunnels: ${tunnels.join(', ')}` : `add it under tenants/${t}/tunnels`),
          ),
        );
      }
      if (!prefixesBroken && own.containing(mustCidr(route.prefix)).length === 0) {
        const list = Object.values(tenant.prefixes).map((p) => p.cidr);
        out.push(
          issue(
            'outside_prefixes',
            { path, field: ['prefix'] },
            `${route.prefix} is not inside any prefix of tenant ${t} (${list.join(', ') || 'it has none'}); ` +
              'traffic for it never reaches the tenant, so the route would never be used',
          ),
        );
      }
      const first = byPrefix.get(route.prefix);
      if (first !== undefined)
        out.push(issue('duplicate', { path, field: ['prefix'] }, `${route.prefix} already has route ${first}; put all next hops of a prefix in one route's via`));
      else byPrefix.set(route.prefix, r);
    }
  }
}

/**
 * Egress: pools are carved from the announced egress ranges and do not share addresses; each
 * assignment names an address of a pool and an existing data center whose servers all fit in the
 * pool's port slices.
 */
function checkEgress(config: Config, broken: ReadonlySet<string>, out: Issue[]): void {
  const ranges = config.anycast.egressRanges.map(mustCidr);
  const pools = new CidrIndex<string>();
  const claims: { cidr: Cidr; value: Claim }[] = [];
  for (const [p, pool] of Object.entries(config.egress.pools)) {
    for (const [i, text] of pool.cidrs.entries()) {
      const cidr = mustCidr(text);
      pools.add(cidr, p);
      const at = { path: ['egress', 'pools', p], field: ['cidrs', i], text, owner: `pool:${p}` };
      claims.push({ cidr, value: at });
      if (!broken.has('anycast') && !ranges.some((r) => cidrContains(r, cidr)))
        out.push(
          issue(
            'outside_ranges',
            at,
            `${text} is not inside any of anycast.egressRanges (${config.anycast.egressRanges.join(', ') || 'none'}); ` +
              'egress addresses must be announced: add the range there or pick addresses inside one',
          ),
        );
    }
  }
  for (const [outer, inner] of findOverlaps(claims, () => true))
    out.push(issue(outer.owner === inner.owner ? 'duplicate' : 'overlap', inner, `${inner.text} overlaps ${ref(outer)} (${outer.text}); an address belongs to one pool`));

  const poolBroken = [...broken].some((b) => b.startsWith('egress/pools/'));
  // IPv4 addresses per (data center, tag group): their slices must hold all its servers.
  const groups = new Map<string, { dc: string; pool: string; sliceSize: number; tag: string; first: string; count: number }>();
  for (const [ip, assignment] of Object.entries(config.egress.assign)) {
    const path = ['egress', 'assign', ip];
    const family = familyOf(ip);
    // A pool may list nested prefixes of its own; count it once.
    const poolIds = [...new Set(pools.containing(hostCidr(mustIp(ip))))];
    if (poolIds.length === 0 && !poolBroken)
      out.push(issue('outside_pools', { path }, `${ip} is not in any egress pool; only pool addresses can be assigned to a data center`));
    if (!Object.hasOwn(config.dcs, assignment.dc)) {
      if (!broken.has(`dcs/${assignment.dc}`))
        out.push(issue('unknown_dc', { path, field: ['dc'] }, `no data center ${JSON.stringify(assignment.dc)}${didYouMean(assignment.dc, Object.keys(config.dcs))}; known: ${Object.keys(config.dcs).join(', ') || 'none'}`));
      continue;
    }
    const dcServers = Object.keys(config.dcs[assignment.dc]!.servers);
    if (family === 6) {
      // IPv6 addresses are plentiful: one per server, no slices.
      if (assignment.server === undefined)
        out.push(issue('missing_server', { path, field: ['server'] }, `${ip} is an IPv6 egress address, which belongs to one server: name one of ${assignment.dc}'s servers (${dcServers.join(', ') || 'none'})`));
      else if (!dcServers.includes(assignment.server) && !broken.has(`dcs/${assignment.dc}/servers/${assignment.server}`))
        out.push(issue('unknown_server', { path, field: ['server'] }, `data center ${assignment.dc} has no server ${JSON.stringify(assignment.server)}${didYouMean(assignment.server, dcServers)}; known: ${dcServers.join(', ') || 'none'}`));
      continue;
    }
    if (assignment.server !== undefined)
      out.push(issue('unexpected_server', { path, field: ['server'] }, `${ip} is an IPv4 egress address, shared by all of ${assignment.dc}'s servers through port slices; remove server`));
    for (const p of poolIds) {
      const pool = config.egress.pools[p]!;
      const tag = `${pool.tags.class}/${pool.tags.country}`;
      const key = `${assignment.dc} ${tag} ${pool.sliceSize}`;
      const g = groups.get(key);
      if (g) g.count++;
      else groups.set(key, { dc: assignment.dc, pool: p, sliceSize: pool.sliceSize, tag, first: ip, count: 1 });
    }
  }
  for (const g of groups.values()) {
    const servers = Object.keys(config.dcs[g.dc]!.servers).length;
    const slices = slicesPerAddress(g.sliceSize);
    const needed = Math.ceil(servers / slices);
    if (g.count >= needed) continue;
    const more = needed - g.count;
    const smaller = slicesPerAddress(SLICE_MIN) * g.count >= servers ? ` or lower sliceSize of egress/pools/${g.pool} to ${largestSliceFor(Math.ceil(servers / g.count))}` : '';
    out.push(
      issue(
        'too_many_servers',
        { path: ['egress', 'assign', g.first], field: ['dc'] },
        `data center ${g.dc} has ${plural(servers, 'server')} but its ${plural(g.count, 'egress address', 'egress addresses')} tagged ${g.tag} (sliceSize ${g.sliceSize}, ${plural(slices, 'port slice')} each) hold only ${g.count * slices}; ` +
          `assign ${plural(more, 'more address', 'more addresses')} of that tag to ${g.dc}${smaller}`,
      ),
    );
  }
}

/** The largest power-of-two slice size leaving one slice per server (slice 0 is reserved). */
function largestSliceFor(servers: number): number {
  let size = SLICE_MAX;
  while (size > SLICE_MIN && slicesPerAddress(size) < servers) size /= 2;
  return size;
}

/** DoS rules: the data centers and tenant of a scope must exist. */
function checkDos(config: Config, broken: ReadonlySet<string>, out: Issue[]): void {
  const dcs = Object.keys(config.dcs);
  for (const [id, rule] of Object.entries(config.dos.rules)) {
    const path = ['dos', 'rules', id];
    for (const [i, dc] of (rule.scope.dcs ?? []).entries())
      if (!Object.hasOwn(config.dcs, dc) && !broken.has(`dcs/${dc}`))
        out.push(issue('unknown_dc', { path, field: ['scope', 'dcs', i] }, `no data center ${JSON.stringify(dc)}${didYouMean(dc, dcs)}; known: ${dcs.join(', ') || 'none'}`));
    const t = rule.scope.tenant;
    if (t !== undefined && !Object.hasOwn(config.tenants, t) && !broken.has(`tenants/${t}`))
      out.push(issue('unknown_tenant', { path, field: ['scope', 'tenant'] }, `no tenant ${JSON.stringify(t)}${didYouMean(t, Object.keys(config.tenants))}`));
  }
}
