/**
 * The egress allocator: which pool addresses each data center (IPv4) or server (IPv6) should be
 * assigned so every server has a slice of an address of every tag. Pure: config in, plan out;
 * `anyedge egress allocate` prints the plan and writes it through the API.
 *
 * Rules:
 * - Every data center needs every tag (anycast: an eyeball of any country may land anywhere).
 *   IPv4: per tag group (class, country, sliceSize; slices.ts) a data center with N servers
 *   needs ceil(N / S) addresses, S = 65536/sliceSize − 1; `down` servers count (they keep their
 *   slices). IPv6: every server needs one address per (class, country).
 * - Stable: existing assignments are kept; only what is missing is added. Addresses beyond the
 *   need stay too (they give the servers more ports) unless `release` is asked for, which frees
 *   the highest ones.
 * - Contiguous: a data center's addresses of a tag form one run when possible, so the ownership
 *   table (dst IP → DC) and the geofeed stay short: first the free addresses right after (then
 *   right before) its existing run, else the first free run long enough, else the lowest free
 *   addresses.
 * - Not enough free addresses of a tag for a data center: an error naming the tag, the data
 *   center and how many are missing; nothing is planned (a half plan would look like success).
 */
import type { Config } from '../../model/config.ts';
import type { EgressPool } from '../../model/egress.ts';
import { slicesPerAddress } from '../../model/egress.ts';
import { cidrEnd, formatIp, mustCidr, mustIp } from '../../model/net.ts';
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import type { EgressError } from './error.ts';
import { egressError } from './error.ts';
import { serverOrder, tagText } from './slices.ts';

/** One change of the plan. */
export interface AllocationChange {
  readonly action: 'assign' | 'release';
  readonly ip: string;
  readonly dc: string;
  /** IPv6: the server. */
  readonly server?: string;
  /** `trusted/GB`. */
  readonly tag: string;
}

/** What one data center has and needs of one tag group, after the plan. */
export interface AllocationNeed {
  readonly dc: string;
  readonly tag: string;
  readonly family: 4 | 6;
  /** IPv4 only. */
  readonly sliceSize: number | null;
  readonly servers: number;
  readonly need: number;
  readonly had: number;
  readonly after: number;
}

/** The allocator's plan. */
export interface AllocationPlan {
  /** Assignments to add (and, with `release`, to delete), in address order. */
  readonly changes: readonly AllocationChange[];
  readonly needs: readonly AllocationNeed[];
}

/** Allocator options. */
export interface AllocateOptions {
  /** Free addresses beyond a data center's need. */
  readonly release?: boolean;
  /** Plan for this many servers in a data center (one about to grow); never fewer than it has. */
  readonly servers?: Readonly<Record<string, number>>;
}

/** Pools larger than this many IPv4 addresses are not enumerated (nobody has a /11 of egress). */
const MAX_GROUP4 = 1 << 20;

interface Group {
  readonly key: string;
  readonly tag: string;
  readonly family: 4 | 6;
  readonly sliceSize: number | null;
  readonly pools: { id: string; pool: EgressPool }[];
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Tag groups of the pools: IPv4 by (class, country, sliceSize), IPv6 by (class, country). */
function groupsOf(config: Config): Group[] {
  const groups = new Map<string, Group>();
  for (const [id, pool] of Object.entries(config.egress.pools)) {
    for (const family of [4, 6] as const) {
      if (!pool.cidrs.some((c) => mustCidr(c).family === family)) continue;
      const key = family === 4 ? `4 ${tagText(pool)} ${pool.sliceSize}` : `6 ${tagText(pool)}`;
      const g = groups.get(key) ?? { key, tag: tagText(pool), family, sliceSize: family === 4 ? pool.sliceSize : null, pools: [] };
      g.pools.push({ id, pool });
      groups.set(key, g);
    }
  }
  return [...groups.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The group's prefixes of its family, in address order. */
function prefixes(g: Group): { start: bigint; end: bigint }[] {
  return g.pools
    .flatMap((p) => p.pool.cidrs.map(mustCidr))
    .filter((c) => c.family === g.family)
    .map((c) => ({ start: c.start, end: cidrEnd(c) }))
    .sort((a, b) => cmp(a.start, b.start));
}

/** Computes the plan (see the file header). */
export function allocateEgress(config: Config, opts: AllocateOptions = {}): Result<AllocationPlan, EgressError> {
  const changes: AllocationChange[] = [];
  const needs: AllocationNeed[] = [];
  const dcs = Object.keys(config.dcs).sort();
  for (const [dc, n] of Object.entries(opts.servers ?? {}))
    if (!Object.hasOwn(config.dcs, dc)) return err(egressError('not_found', `dcs/${dc}`, `no data center ${JSON.stringify(dc)} to plan ${n} servers for; known: ${dcs.join(', ') || 'none'}`));
  const assigned = Object.entries(config.egress.assign).map(([ip, a]) => ({ ...mustIp(ip), dc: a.dc, server: a.server }));
  const owner4 = new Map(assigned.filter((a) => a.family === 4).map((a) => [a.value, a.dc]));

  for (const g of groupsOf(config)) {
    const ranges = prefixes(g);
    if (g.family === 4) {
      const total = ranges.reduce((s, r) => s + Number(r.end - r.start + 1n), 0);
      if (total > MAX_GROUP4)
        return err(egressError('invalid', `egress/pools/${g.pools[0]!.id}`, `the pools tagged ${g.tag} hold ${total} IPv4 addresses, more than the allocator enumerates (${MAX_GROUP4}); split them or assign by hand`));
      // Every address of the group in order, and who has it.
      const addrs: bigint[] = [];
      for (const r of ranges) for (let v = r.start; v <= r.end; v++) addrs.push(v);
      const holder: (string | null)[] = addrs.map((v) => owner4.get(v) ?? null);
      const s = slicesPerAddress(g.sliceSize!);
      for (const dc of dcs) {
        const servers = Math.max(serverOrder(config, dc).length, opts.servers?.[dc] ?? 0);
        const need = Math.ceil(servers / s);
        const mine = () => holder.flatMap((h, i) => (h === dc ? [i] : []));
        const had = mine().length;
        let deficit = need - had;
        if (deficit > 0) {
          const free = holder.filter((h) => h === null).length;
          if (free < deficit)
            return err(
              egressError(
                'short',
                `dcs/${dc}`,
                `data center ${dc} needs ${deficit} more egress address${deficit === 1 ? '' : 'es'} tagged ${g.tag} (sliceSize ${g.sliceSize}, ${servers} servers) but the pools of that tag have only ${free} free; add a prefix to egress/pools/${g.pools[0]!.id} or create another pool with these tags`,
              ),
            );
          const adjacent = (i: number, j: number) => addrs[j]! - addrs[i]! === BigInt(j - i);
          const take = (i: number) => {
            holder[i] = dc;
            deficit--;
            changes.push({ action: 'assign', ip: formatIp({ family: 4, value: addrs[i]! }), dc, tag: g.tag });
          };
          const own = mine();
          if (own.length) {
            // Grow the run: upward from its last address, then downward from its first.
            for (let i = own.at(-1)! + 1; deficit > 0 && i < addrs.length && holder[i] === null && adjacent(i - 1, i); i++) take(i);
            for (let i = own[0]! - 1; deficit > 0 && i >= 0 && holder[i] === null && adjacent(i, i + 1); i--) take(i);
          }
          // Else the first free run long enough.
          let runStart = -1;
          for (let i = 0; i < addrs.length && deficit > 0; i++) {
            if (holder[i] !== null) {
              runStart = -1;
              continue;
            }
            if (runStart === -1 || !adjacent(i - 1, i)) runStart = i;
            if (i - runStart + 1 >= deficit) for (let j = i - deficit + 1, end = i; j <= end; j++) take(j);
          }
          // Else the lowest free addresses.
          for (let i = 0; deficit > 0 && i < addrs.length; i++) if (holder[i] === null) take(i);
        } else if (deficit < 0 && opts.release) {
          const own = mine();
          for (let k = 0; k < -deficit; k++) {
            const i = own[own.length - 1 - k]!;
            holder[i] = null;
            changes.push({ action: 'release', ip: formatIp({ family: 4, value: addrs[i]! }), dc, tag: g.tag });
          }
        }
        needs.push({ dc, tag: g.tag, family: 4, sliceSize: g.sliceSize, servers, need, had, after: mine().length });
      }
    } else {
      // IPv6: one address per server, handed out from the bottom of the pools (skipping the
      // all-zero subnet-router anycast address of each prefix).
      const inGroup = assigned.filter((a) => a.family === 6 && ranges.some((r) => a.value >= r.start && a.value <= r.end));
      const used = new Set(inGroup.map((a) => a.value));
      const has = new Map<string, bigint[]>();
      for (const a of inGroup) has.set(`${a.dc}/${a.server}`, [...(has.get(`${a.dc}/${a.server}`) ?? []), a.value].sort(cmp));
      let cursor = 0;
      let next = ranges[0] ? ranges[0].start + 1n : 0n;
      const nextFree = (): bigint | null => {
        while (cursor < ranges.length) {
          const r = ranges[cursor]!;
          if (next < r.start + 1n) next = r.start + 1n;
          while (next <= r.end && used.has(next)) next++;
          if (next <= r.end) return next++;
          cursor++;
        }
        return null;
      };
      for (const dc of dcs) {
        const servers = serverOrder(config, dc);
        let had = 0;
        let after = 0;
        for (const server of servers) {
          const mineV = has.get(`${dc}/${server}`) ?? [];
          had += mineV.length;
          if (mineV.length === 0) {
            const v = nextFree();
            if (v === null)
              return err(egressError('short', `dcs/${dc}/servers/${server}`, `no free IPv6 egress address tagged ${g.tag} left for ${dc}/${server}; add a prefix to egress/pools/${g.pools[0]!.id}`));
            used.add(v);
            changes.push({ action: 'assign', ip: formatIp({ family: 6, value: v }), dc, server, tag: g.tag });
            after++;
          } else if (mineV.length > 1 && opts.release) {
            for (const v of mineV.slice(1)) changes.push({ action: 'release', ip: formatIp({ family: 6, value: v }), dc, server, tag: g.tag });
            after++;
          } else after += mineV.length;
        }
        needs.push({ dc, tag: g.tag, family: 6, sliceSize: null, servers: servers.length, need: servers.length, had, after });
      }
    }
  }
  const order = (c: AllocationChange) => mustIp(c.ip);
  changes.sort((a, b) => order(a).family - order(b).family || cmp(order(a).value, order(b).value));
  return ok({ changes, needs });
}

/** The config with the plan applied (for checking it before writing). */
export function applyAllocation(config: Config, plan: AllocationPlan): Config {
  const assign = { ...config.egress.assign };
  for (const c of plan.changes) {
    if (c.action === 'release') delete assign[c.ip];
    else assign[c.ip] = c.server !== undefined ? { dc: c.dc, server: c.server } : { dc: c.dc };
  }
  return { ...config, egress: { ...config.egress, assign } };
}
