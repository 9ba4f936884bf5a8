/**
 * Compiles the config into one server's desired kernel state (`DesiredServer`): pure, the same
 * config and options give the same value. The reconciler (agent/reconcile.ts) makes the kernel
 * equal to it.
 *
 * Per tenant, with P the ownership prefix (marks.prefix):
 *
 * ```
 *  server ns (the host's default ns; a netns in tests)
 *    uplink ── XDP xdp_edge: GRE decap into the tunnel's outer end (gre_decap)
 *    P w<h(t)> ──veth── P up   (tenant ns)     unnumbered: the same two link-pool addresses on
 *                                              every wire (S/32 server end, T/32 tenant end)
 *    P x<h(t/n)> ─veth─ P -<n>  (tenant ns)    tunnel device: MTU = tunnel MTU, NOARP,
 *                                              TC egress tc_gre_encap (gre_encap[ifindex]),
 *                                              XDP xdp_pass (so the veth accepts redirected frames)
 *    table transit: <tenant prefix> via T dev P w<h(t)> onlink; ip rule fwmark M lookup transit
 *    nft P transit: ip daddr @tenant4, ip6 daddr @tenant6 → mark M (see server/transit.ts)
 *  tenant ns P-<t> (or P_<hash> when the id is too long)
 *    routes: default via S dev P up onlink; each tenant route → its best-priority
 *            group of tunnel devices (multipath with weights); nft P fw: the customer firewall
 * ```
 *
 * Why unnumbered: each tenant is its own namespace, so the tenant end's address never meets
 * another's, and the server end's address may sit on every wire at once (one local route); the
 * routes name the device, so no per-wire link route is needed (it would collide across wires in
 * the one transit table), and ARP works per device. A server's tenant count is then not bounded
 * by the size of the link pool (a /31 per tenant allowed ~128 tenants in a /24).
 *
 * IPv6 tenant prefixes take the same path inside the same IPv4-outer GRE (tc_gre.c carries and
 * xdp_edge.c decapsulates inner IPv6): a tenant with an IPv6 prefix also gets the two IPv6
 * link-pool addresses on its wire (host /128s, the same on every wire, as in IPv4) beside the
 * link-local next hops fe80::1 (server end) and fe80::2 (tenant end) that its routes go through:
 * IPv6 transit routes, an IPv6 default route and IPv6 tenant routes in its namespace, and the
 * server a family-6 fwmark rule. Its tunnel devices keep IPv6 on (`addrgenmode none`, set on
 * every veth, keeps them silent); those of IPv4-only tenants have it off.
 *
 * Why the tunnel device's other end sits in the server namespace (and not beside it in the
 * tenant's): XDP can only redirect to a device of its own namespace, and the decapsulated packet
 * must enter the tenant namespace through the tunnel device, since the customer firewall tells
 * directions by (input, output) interface. Encapsulated packets leave the same way out
 * (out_ifindex 0), into the server namespace, where the server routes them to the customer.
 * This is the recipe proven by kernel/bpf/datapath.test.ts.
 *
 * Every number that must be unique per server (ifindexes of both ends of tunnel pairs and of the
 * wire, MACs, tunnel stats slots) is allocated from a hash of the object's path (server/alloc.ts),
 * so BPF map entries are known here without reading the kernel.
 */
import type { Config, TenantConfig } from '../model/config.ts';
import type { HealthCheck } from '../model/tunnel.ts';
import { cidrOverlaps, familyOf, formatCidr, formatIp, hostCidr, ifAddrNetwork, mustCidr, mustIfAddr, type Cidr } from '../model/net.ts';
import type { Marks } from '../kernel/marks.ts';
import type { NsRef } from '../kernel/netns.ts';
import type { VethSpec } from '../kernel/links.ts';
import type { RouteSpec } from '../kernel/routes.ts';
import type { RuleSpec } from '../kernel/rules.ts';
import type { NftJson, NftTableRef } from '../kernel/nft.ts';
import type { DecapEntry, DecapKey, EncapEntry } from '../kernel/bpf/edge.ts';
import { compileFirewall } from './firewall/compile.ts';
import { compileTenantSynFlood, type DesiredSynPrefix } from './firewall/synproxy.ts';
import { macOf, shortHash, SlotAllocator } from './server/alloc.ts';
import { compileTransitNft } from './server/transit.ts';
import { compileServerEgress, type DesiredEgress } from './egress/desired.ts';

/** Where and how to compile. */
export interface ServerOptions {
  /** Ownership marks: the prefix names everything (netns, links, nft tables). */
  readonly marks: Marks;
  /** The namespace playing the server's default namespace: null in production, a netns in tests. */
  readonly serverNs?: NsRef;
  /**
   * Reserved pool the wire addresses come from, never tenant space: its first two addresses (after
   * the network address when the pool has more than two) that no tunnel's inner subnet covers,
   * the same on every wire. Default 192.0.2.128/25.
   */
  readonly linkPool?: string;
  /** The same for the IPv6 wires of tenants with IPv6 space. Default 2001:db8:ffff::/112. */
  readonly linkPool6?: string;
  /** Id of the `transit` routing table (must be in marks.tables). Default marks.tables.min. */
  readonly transitTable?: number;
  /** fwmark of packets for tenant prefixes. Default 0xae. */
  readonly fwmark?: number;
  /** Priority of the fwmark rule (must be in marks.rulePriorities). Default marks.rulePriorities.min. */
  readonly rulePriority?: number;
  /**
   * Health-check hook: tunnels (`tenants/<t>/tunnels/<n>`) currently down. They keep their
   * devices and map entries but are left out of routes, so traffic moves to the next group.
   */
  readonly down?: ReadonlySet<string>;
}

/** Name of a BPF program of the edge object (kernel/bpf/loader.ts EdgePins.progs). */
export type EdgeProg = 'xdpEdge' | 'xdpPass' | 'tcGreEncap';

/** Every desired object carries its path in the config, for plans and errors. */
interface Pathed {
  readonly path: string;
}

/** A tenant's namespace. */
export interface DesiredNetns extends Pathed {
  readonly name: string;
}
/** A veth pair: the server↔tenant wire, or a tunnel device with its outer end. */
export interface DesiredVeth extends Pathed {
  readonly spec: VethSpec;
  /** Ends that must have ARP off (tunnel devices: nothing answers ARP there). */
  readonly noarp: readonly ('a' | 'b')[];
  /**
   * Ends that must have TX checksum offload off: the tunnel device, so TCP made in the tenant
   * namespace (synproxy) leaves GRE with its checksum finished (kernel/txcsum.ts says why).
   */
  readonly txCsumOff?: readonly ('a' | 'b')[];
}
/** An address on one of our links. */
export interface DesiredAddr extends Pathed {
  readonly ns: NsRef;
  readonly link: string;
  readonly cidr: string;
}
/** A sysctl value in a namespace (per-link keys go with the link). */
export interface DesiredSysctl extends Pathed {
  readonly ns: NsRef;
  readonly key: string;
  readonly value: string;
}
/** A route of ours (protocol 174) in a namespace's table. */
export interface DesiredRoute extends Pathed {
  readonly ns: NsRef;
  readonly spec: RouteSpec;
}
/** A policy rule in the server's namespace. */
export interface DesiredRule extends Pathed {
  readonly ns: NsRef;
  readonly spec: RuleSpec;
}
/** One nftables table of ours, as an atomic-replace batch. */
export interface DesiredNft extends Pathed {
  readonly ns: NsRef;
  readonly table: NftTableRef;
  /** An atomic-replace batch (add, delete, add table, then its content). */
  readonly batch: NftJson;
}
/** A program of the loaded edge attached to a link. */
export interface DesiredAttach extends Pathed {
  readonly ns: NsRef;
  readonly dev: string;
  readonly hook: 'xdp' | 'tc-egress';
  readonly prog: EdgeProg;
}
/** A gre_encap entry, keyed by the tunnel device's ifindex. */
export interface DesiredEncap extends Pathed {
  readonly ifindex: number;
  readonly entry: EncapEntry;
}
/** A gre_decap entry. */
export interface DesiredDecap extends Pathed {
  readonly key: DecapKey;
  readonly entry: DecapEntry;
}

/** A tunnel as health checks see it: where its device is and what to probe through it. */
export interface DesiredTunnel extends Pathed {
  readonly ns: string;
  readonly dev: string;
  /** Our inner addresses (address/length). */
  readonly inner: readonly string[];
  readonly healthCheck: HealthCheck;
}

/** One server's desired kernel state. Lists are in a stable order. */
export interface DesiredServer {
  /** `dc/server`. */
  readonly server: string;
  readonly serverNs: NsRef;
  readonly marks: Marks;
  readonly transitTable: number;
  /** Namespaces to scan for our routes: (ns, table) pairs we own routes in. */
  readonly routeTables: readonly { readonly ns: NsRef; readonly table: number }[];
  readonly netns: readonly DesiredNetns[];
  readonly veths: readonly DesiredVeth[];
  readonly addrs: readonly DesiredAddr[];
  readonly sysctls: readonly DesiredSysctl[];
  readonly routes: readonly DesiredRoute[];
  readonly rules: readonly DesiredRule[];
  readonly nft: readonly DesiredNft[];
  readonly endpoints: readonly (Pathed & { readonly ip: string })[];
  readonly encap: readonly DesiredEncap[];
  readonly decap: readonly DesiredDecap[];
  readonly attach: readonly DesiredAttach[];
  /** Every tunnel with its device, for health checks (not a kernel object of its own). */
  readonly tunnels: readonly DesiredTunnel[];
  /** Prefixes whose SYNs xdp_edge answers with cookies (tenants with synFlood.protection xdp). */
  readonly syncookie?: readonly DesiredSynPrefix[];
  /** What the compiler left out and why (e.g. IPv6-outer GRE, not carried yet). */
  readonly warnings: readonly string[];
  /** Egress addresses on `lo` (compile/egress/); their SNAT table is among `nft`. */
  readonly egress?: DesiredEgress;
}

/** A compile failure: a value with a code, the object path and the cause. */
export interface CompileError {
  readonly code: 'not_found' | 'exhausted' | 'invalid';
  readonly path: string;
  readonly message: string;
  readonly cause?: unknown;
}

/** compileServer's result. */
export type CompileResult = { readonly ok: true; readonly value: DesiredServer } | { readonly ok: false; readonly error: CompileError };

const MAIN_TABLE = 254;
/**
 * The gateway of IPv6 routes into tunnel devices. The kernel builds IPv6 multipath routes only
 * from gateway next hops ("Device only routes can not be added for IPv6 using the multipath
 * API"); a link-local gateway on a NOARP device needs no neighbour answer (the neighbour entry
 * takes the device's own MAC, which the encapsulator replaces anyway), so one address serves
 * every tunnel device.
 */
const TUNNEL_GW6 = 'fe80::1';
/** Link-local addresses of the two ends of every IPv6 wire (link-local: the same on each wire). */
const WIRE_LL6 = { server: 'fe80::1', tenant: 'fe80::2' } as const;
/** Default IPv6 link pool. */
const LINK_POOL6 = '2001:db8:ffff::/112';
/** At most this many addresses of a link pool are tried for the wire pair. */
const WIRE_TRIES = 1 << 16;
/** Explicit ifindexes start high, clear of the kernel's own counter for physical devices. */
const IFINDEX_BASE = 1_000_000;
const IFINDEX_SPACE = 1 << 24;
/** tunnel_stats has MAX_TUNNELS (65536) slots; 0 is left unused. */
const STATS_SPACE = 65535;

/** The tenant's namespace name: `P-<id>` when it fits 15 characters, else `P_<hash>` (`_` is not in ids). */
export function tenantNetns(marks: Marks, tenant: string): string {
  const plain = `${marks.prefix}-${tenant}`;
  return plain.length <= 15 ? plain : `${marks.prefix}_${shortHash(tenant, Math.max(4, 15 - marks.prefix.length - 1))}`;
}

/** The tunnel device's name in the tenant namespace: `P-<tunnel>` or `P_<hash>`. */
export function tunnelDev(marks: Marks, tunnel: string): string {
  const plain = `${marks.prefix}-${tunnel}`;
  return plain.length <= 15 ? plain : `${marks.prefix}_${shortHash(tunnel, Math.max(4, 15 - marks.prefix.length - 1))}`;
}

/** Names of a tenant's links: wire ends and, per tunnel, the outer end in the server namespace. */
export function tenantLinkNames(marks: Marks, tenant: string): { wireServer: string; wireTenant: string; outer: (tunnel: string) => string } {
  const n = Math.min(8, 15 - marks.prefix.length - 1);
  return {
    wireServer: `${marks.prefix}w${shortHash(tenant, n)}`,
    wireTenant: `${marks.prefix}up`,
    outer: (tunnel) => `${marks.prefix}x${shortHash(`${tenant}/${tunnel}`, n)}`,
  };
}

/** Whether `addr` or `addr/len` is IPv6. */
function is6Addr(cidr: string): boolean {
  return familyOf(cidr.split('/')[0] as string) === 6;
}

/**
 * The wire's two addresses (server end, tenant end) in `pool`: the first two not inside `avoid`
 * (the tunnels' inner subnets, which share the tenant namespaces), skipping the network address
 * of a pool larger than two; null when there are not two.
 */
function wirePair(pool: Cidr, avoid: readonly Cidr[]): { server: string; tenant: string } | null {
  const bits = BigInt((pool.family === 4 ? 32 : 128) - pool.len);
  const size = 1n << bits;
  const first = size > 2n ? 1n : 0n;
  const found: string[] = [];
  for (let i = first; i < size && i < first + BigInt(WIRE_TRIES) && found.length < 2; i++) {
    const value = pool.start + i;
    const one = hostCidr({ family: pool.family, value });
    if (!avoid.some((c) => cidrOverlaps(c, one))) found.push(formatIp({ family: pool.family, value }));
  }
  const [server, tenant] = found;
  return server !== undefined && tenant !== undefined ? { server, tenant } : null;
}

/** Compiles one server's desired state. */
export function compileServer(config: Config, where: { dc: string; server: string }, opts: ServerOptions): CompileResult {
  const fail = (code: CompileError['code'], path: string, message: string, cause?: unknown): CompileResult => ({ ok: false, error: { code, path, message, ...(cause !== undefined ? { cause } : {}) } });
  const dc = Object.hasOwn(config.dcs, where.dc) ? config.dcs[where.dc] : undefined;
  const server = dc && Object.hasOwn(dc.servers, where.server) ? dc.servers[where.server] : undefined;
  if (!server) return fail('not_found', `dcs/${where.dc}/servers/${where.server}`, `no server ${where.server} in data center ${where.dc}; see anyedge validate for the servers the config has`);
  const marks = opts.marks;
  const P = marks.prefix;
  const serverNs = opts.serverNs ?? null;
  const transit = opts.transitTable ?? marks.tables.min;
  const fwmark = opts.fwmark ?? 0xae;
  const rulePriority = opts.rulePriority ?? marks.rulePriorities.min;
  const down = opts.down ?? new Set<string>();
  const pool = mustCidr(opts.linkPool ?? '192.0.2.128/25');
  if (pool.family !== 4 || pool.len > 31) return fail('invalid', 'options/linkPool', `link pool ${opts.linkPool} must be an IPv4 prefix of at most /31`);
  const pool6 = mustCidr(opts.linkPool6 ?? LINK_POOL6);
  if (pool6.family !== 6 || pool6.len > 127) return fail('invalid', 'options/linkPool6', `IPv6 link pool ${opts.linkPool6} must be an IPv6 prefix of at most /127`);
  const warnings: string[] = [];
  // The wires must never take tenant space: a tenant's own address on a wire would shadow it.
  for (const [tid, t] of Object.entries(config.tenants))
    for (const [pid, p] of Object.entries(t.prefixes)) {
      const [c, option] = familyOf(p.cidr.split('/')[0] as string) === 4 ? [pool, 'linkPool'] : [pool6, 'linkPool6'];
      if (cidrOverlaps(c, mustCidr(p.cidr)))
        return fail('invalid', `tenants/${tid}/prefixes/${pid}`, `${p.cidr} overlaps the link pool ${formatCidr(c)}; give the server↔tenant links a reserved pool (option ${option})`);
    }

  const ifindexes = new SlotAllocator(IFINDEX_BASE, IFINDEX_SPACE, 'ifindex');
  const macs = new SlotAllocator(1, 0xfffffffe, 'mac');
  const stats = new SlotAllocator(1, STATS_SPACE, 'stats');

  // Nor the customers' tunnel addresses (192.0.2.252/31 of the example sits in the default pool):
  // the wire and a tunnel device of one namespace must not share a subnet. Every wire has the same
  // pair, so it avoids the inner subnets of every tenant.
  const inner = Object.values(config.tenants).flatMap((t) => Object.values(t.tunnels).flatMap((tun) => tun.inner.map((a) => ifAddrNetwork(mustIfAddr(a)))));
  const wire = wirePair(pool, inner);
  const wire6 = wirePair(pool6, inner);

  const endpoints4 = config.anycast.greEndpoints.filter((e) => familyOf(e) === 4);
  const out = {
    netns: [] as DesiredNetns[],
    veths: [] as DesiredVeth[],
    addrs: [] as DesiredAddr[],
    sysctls: [] as DesiredSysctl[],
    routes: [] as DesiredRoute[],
    rules: [] as DesiredRule[],
    nft: [] as DesiredNft[],
    encap: [] as DesiredEncap[],
    decap: [] as DesiredDecap[],
    attach: [] as DesiredAttach[],
    tunnels: [] as DesiredTunnel[],
  };
  const routeTables: { ns: NsRef; table: number }[] = [{ ns: serverNs, table: transit }];
  const transitPrefixes: string[] = [];
  const transitPrefixes6: string[] = [];
  const wireNames: string[] = [];
  const decapKeys = new Map<string, string>();
  const synPrefixes: DesiredSynPrefix[] = [];

  const tenantIds = Object.keys(config.tenants).sort();
  for (const tid of tenantIds) {
    const t = config.tenants[tid] as TenantConfig;
    const tp = `tenants/${tid}`;
    if (t.status !== 'active') continue;
    const ns = tenantNetns(marks, tid);
    const names = tenantLinkNames(marks, tid);
    out.netns.push({ path: `${tp}/netns`, name: ns });
    routeTables.push({ ns, table: MAIN_TABLE });
    out.sysctls.push({ path: `${tp}/netns`, ns, key: 'net.ipv4.ip_forward', value: '1' });

    // The wire: unnumbered, the same pair of addresses on every wire.
    if (wire === null) return fail('exhausted', `${tp}/wire`, `link pool ${formatCidr(pool)} has no two addresses outside the tunnels' inner subnets; give a larger pool (option linkPool)`);
    out.veths.push({
      path: `${tp}/wire`,
      spec: {
        a: { ns: serverNs, name: names.wireServer, ifindex: ifindexes.take(`${tid}/wire/s`) ?? 0 },
        b: { ns, name: names.wireTenant, ifindex: ifindexes.take(`${tid}/wire/t`) ?? 0 },
        owner: tid,
      },
      noarp: [],
    });
    wireNames.push(names.wireServer);
    // Host addresses at both ends: a subnet would put a connected route into the server's main
    // table. Routes through the wire name its device and take the other end as on it (onlink).
    out.addrs.push({ path: `${tp}/wire`, ns: serverNs, link: names.wireServer, cidr: `${wire.server}/32` });
    out.addrs.push({ path: `${tp}/wire`, ns, link: names.wireTenant, cidr: `${wire.tenant}/32` });
    out.routes.push({ path: `${tp}/wire`, ns, spec: { table: MAIN_TABLE, dst: '0.0.0.0/0', nexthops: [{ dev: names.wireTenant, via: wire.server, onlink: true }] } });

    // The IPv6 wire, for a tenant with IPv6 space: the IPv6 pair as host addresses, and routes
    // through the link-local ends.
    const v6 = Object.values(t.prefixes).some((p) => is6Addr(p.cidr)) || Object.values(t.routes).some((r) => is6Addr(r.prefix));
    if (v6) {
      if (wire6 === null) return fail('exhausted', `${tp}/wire`, `IPv6 link pool ${formatCidr(pool6)} has no two addresses outside the tunnels' inner subnets; give a larger pool (option linkPool6)`);
      out.sysctls.push({ path: `${tp}/netns`, ns, key: 'net.ipv6.conf.all.forwarding', value: '1' });
      // The link-local addresses are the next hops, and the kernel sends neighbour solicitations
      // only from one (ndisc_send_ns); `addrgenmode none` on our veths leaves none. Host
      // addresses, so none puts a route into the server's main table (kernel/addrs.ts:
      // noprefixroute).
      out.addrs.push({ path: `${tp}/wire`, ns: serverNs, link: names.wireServer, cidr: `${wire6.server}/128` });
      out.addrs.push({ path: `${tp}/wire`, ns: serverNs, link: names.wireServer, cidr: `${WIRE_LL6.server}/128` });
      out.addrs.push({ path: `${tp}/wire`, ns, link: names.wireTenant, cidr: `${wire6.tenant}/128` });
      out.addrs.push({ path: `${tp}/wire`, ns, link: names.wireTenant, cidr: `${WIRE_LL6.tenant}/128` });
      out.routes.push({ path: `${tp}/wire`, ns, spec: { table: MAIN_TABLE, dst: '::/0', nexthops: [{ dev: names.wireTenant, via: WIRE_LL6.server }] } });
    }

    for (const [pid, p] of Object.entries(t.prefixes).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const six = is6Addr(p.cidr);
      (six ? transitPrefixes6 : transitPrefixes).push(p.cidr);
      const hop = six ? { dev: names.wireServer, via: WIRE_LL6.tenant } : { dev: names.wireServer, via: wire.tenant, onlink: true };
      out.routes.push({ path: `${tp}/prefixes/${pid}`, ns: serverNs, spec: { table: transit, dst: p.cidr, nexthops: [hop] } });
    }

    // Tunnels.
    const devOf = new Map<string, string>();
    for (const [nid, tun] of Object.entries(t.tunnels).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const np = `${tp}/tunnels/${nid}`;
      if (familyOf(tun.customerEndpoint) !== 4) {
        warnings.push(`${np}: left out: IPv6 GRE (outer) is not carried by the BPF data path yet`);
        continue;
      }
      const local = tun.anycastEndpoint ?? endpoints4[0];
      if (local === undefined) return fail('not_found', np, 'no IPv4 anycast GRE endpoint in anycast.greEndpoints for this tunnel');
      const dev = tunnelDev(marks, nid);
      const outer = names.outer(nid);
      const devIndex = ifindexes.take(`${np}/dev`);
      const outerIndex = ifindexes.take(`${np}/outer`);
      const devMac = macs.take(`${np}/dev`);
      const outerMac = macs.take(`${np}/outer`);
      const statsIdx = stats.take(np);
      if (devIndex === null || outerIndex === null || devMac === null || outerMac === null || statsIdx === null)
        return fail('exhausted', np, 'no free interface index, MAC or statistics slot left on this server');
      const dk = `${tun.customerEndpoint} ${local} ${tun.key ?? '-'}`;
      const clash = decapKeys.get(dk);
      if (clash !== undefined) return fail('invalid', np, `tunnel has the same (customer endpoint, anycast endpoint, key) as ${clash}: arriving GRE could not be told apart; give one of them a GRE key`);
      decapKeys.set(dk, np);
      devOf.set(nid, dev);
      out.veths.push({
        path: np,
        spec: { a: { ns, name: dev, ifindex: devIndex, mac: macOf(devMac), mtu: tun.mtu }, b: { ns: serverNs, name: outer, ifindex: outerIndex, mac: macOf(outerMac) }, owner: tid },
        noarp: ['a', 'b'],
        txCsumOff: ['a'],
      });
      const innerV6 = tun.inner.some((a) => familyOf(a.split('/')[0] as string) === 6);
      if (!innerV6 && !v6) out.sysctls.push({ path: np, ns, key: `net.ipv6.conf.${dev}.disable_ipv6`, value: '1' });
      for (const a of tun.inner) out.addrs.push({ path: np, ns, link: dev, cidr: a });
      out.encap.push({ path: np, ifindex: devIndex, entry: { local, remote: tun.customerEndpoint, ...(tun.key !== undefined ? { key: tun.key } : {}), outIfindex: 0, mtu: tun.mtu, ttl: 64, srcMac: macOf(devMac), dstMac: macOf(outerMac), statsIdx } });
      out.decap.push({ path: np, key: { remote: tun.customerEndpoint, local, ...(tun.key !== undefined ? { key: tun.key } : {}) }, entry: { ifindex: outerIndex, srcMac: macOf(outerMac), dstMac: macOf(devMac), statsIdx } });
      out.tunnels.push({ path: np, ns, dev, inner: tun.inner, healthCheck: tun.healthCheck });
      out.attach.push({ path: np, ns, dev, hook: 'xdp', prog: 'xdpPass' });
      out.attach.push({ path: np, ns, dev, hook: 'tc-egress', prog: 'tcGreEncap' });
    }

    // Routes: the best priority among tunnels that are up, multipath across that group.
    for (const [rid, r] of Object.entries(t.routes).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const rp = `${tp}/routes/${rid}`;
      const gw = is6Addr(r.prefix) ? { via: TUNNEL_GW6 } : {};
      const up = r.via.filter((h) => devOf.has(h.tunnel) && !down.has(`${tp}/tunnels/${h.tunnel}`));
      if (up.length === 0) {
        warnings.push(`${rp}: no tunnel up, route left out`);
        continue;
      }
      const best = Math.min(...up.map((h) => h.priority));
      const group = up.filter((h) => h.priority === best);
      out.routes.push({ path: rp, ns, spec: { table: MAIN_TABLE, dst: r.prefix, metric: best, nexthops: group.map((h) => ({ dev: devOf.get(h.tunnel) as string, ...gw, weight: h.weight })) } });
    }

    if (t.firewall) {
      const table = `${P}fw`;
      try {
        const batch = compileFirewall(tid, t.firewall, { uplink: names.wireTenant, tunnels: [...devOf.values()], table });
        out.nft.push({ path: `${tp}/firewall`, ns, table: { family: 'inet', name: table }, batch: batch as unknown as NftJson });
      } catch (e) {
        return fail('invalid', `${tp}/firewall`, `firewall does not compile: ${(e as Error).message}`, e);
      }
    }
    // SYN-flood protection (compile/firewall/synproxy.ts): its own table, and XDP map entries.
    // Its counter index is the agent's choice (agent/syncookie.ts), stable across other tenants' changes.
    const syn = compileTenantSynFlood(tid, t, { uplink: names.wireTenant, table: `${P}syn` });
    if (syn.batch) out.nft.push({ path: `${tp}/synFlood`, ns, table: { family: 'inet', name: `${P}syn` }, batch: syn.batch as unknown as NftJson });
    synPrefixes.push(...syn.prefixes);
  }

  // The server's default namespace.
  out.sysctls.push({ path: 'server/forwarding', ns: serverNs, key: 'net.ipv4.ip_forward', value: '1' });
  out.rules.push({ path: 'server/transit/rule', ns: serverNs, spec: { family: 4, priority: rulePriority, table: transit, fwmark } });
  // IPv6 forwarding and the family-6 rule only when a tenant has IPv6: forwarding=1 changes how
  // the host treats router advertisements, which an IPv4-only server need not risk.
  if (out.addrs.some((a) => a.ns === serverNs && is6Addr(a.cidr))) {
    out.sysctls.push({ path: 'server/forwarding', ns: serverNs, key: 'net.ipv6.conf.all.forwarding', value: '1' });
    out.rules.push({ path: 'server/transit/rule6', ns: serverNs, spec: { family: 6, priority: rulePriority, table: transit, fwmark } });
  }
  const transitTable = `${P}transit`;
  out.nft.push({ path: 'server/transit/nft', ns: serverNs, table: { family: 'inet', name: transitTable }, batch: compileTransitNft(transitTable, fwmark, transitPrefixes, transitPrefixes6, wireNames) as unknown as NftJson });
  out.attach.push({ path: 'server/uplink', ns: serverNs, dev: server.uplink, hook: 'xdp', prog: 'xdpEdge' });
  // XDP steering (bpf/steer.h) hands a packet it has already wrapped in GUE — source: this
  // server's own address — to the kernel when the owner's neighbour entry is not resolved yet.
  // Without accept_local the kernel drops it as a martian, no neighbour entry is ever made, and
  // every flow to that owner stays lost (found in the lab: ~0.5 % of flows, draining broken).
  out.sysctls.push({ path: 'server/uplink/steering', ns: serverNs, key: `net.ipv4.conf.${server.uplink}.accept_local`, value: '1' });
  const egress = compileServerEgress(config, where, P, serverNs);
  if (!egress.ok) return fail(egress.error.code === 'not_found' ? 'not_found' : 'invalid', egress.error.path, egress.error.message);
  if (egress.value.nft) out.nft.push(egress.value.nft);

  return {
    ok: true,
    value: {
      server: `${where.dc}/${where.server}`,
      serverNs,
      marks,
      transitTable: transit,
      routeTables,
      ...out,
      endpoints: endpoints4.map((ip) => ({ path: `anycast/greEndpoints/${ip}`, ip })),
      warnings,
      ...(synPrefixes.length ? { syncookie: synPrefixes } : {}),
      egress: egress.value.egress,
    },
  };
}
