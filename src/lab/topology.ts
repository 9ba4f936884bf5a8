/**
 * The lab's topology plan: pure, the same id and sizes give the same plan. From {dcs, servers,
 * cities} it computes every namespace, bridge, veth, address, route and sysctl, the AS numbers,
 * the BIRD configurations, the agents and the config document for the store. `lab up` builds
 * exactly this; `formatPlan` prints it for golden tests and people.
 *
 * ```
 *  eyeball ── city router ──┐                         ┌── DC router ══ lan0 bridge ══ servers (agents)
 *  (per city, /30)          ├── exchange LAN (br0) ───┤   (per DC, BIRD, ECMP L4 hash)
 *  customer router ─(/32)───┤   one bridge, eBGP      └── …        ║
 *    └── customer host      │                                      ║ bb0
 *  Internet host (inet) ────┘                         backbone LAN (bb:br0), every DC router
 *  (web + echo, BGP for the egress ranges)
 * ```
 *
 * The backbone is private (no BGP): each DC router has a static route to every other DC's server
 * LAN through that DC's backbone address, so a server can send an encapsulated packet straight
 * to a server of another DC (XDP steering forwards egress replies to their owner that way). The
 * Internet host stands for the destinations of proxied egress: it learns the anycast and egress
 * ranges from every DC by eBGP (DC d prepends d times, so it prefers the first DC) and serves
 * HTTP and TCP echo on its exchange address; tshark captures there.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';
import { allocate, eyeballSubnet, hostAddr, hostIp, subnetCidr, type Subnet } from './addressing.ts';
import { cityBirdConfig, dcBirdConfig } from './bird.ts';
import { LAB_ANYCAST, LAB_CUSTOMERS, LAB_PROXY_SERVICES, labConfigDoc, type LabCustomer, type LabDocOptions } from './config-doc.ts';
import { agentPrefix, LAB_CITIES, LAB_CITY_COUNTRIES, LAB_DC_NAMES, LAB_DCS, labPrefix, MAX_SERVERS_TOTAL, nodeNs } from './names.ts';

/** Sizes of a lab. */
export interface LabSize {
  readonly dcs: number;
  readonly servers: number;
  readonly cities: number;
}

/** Default sizes: 3 data centers of 3 servers, one city per data center. */
export const DEFAULT_SIZE: LabSize = { dcs: 3, servers: 3, cities: 3 };

/** The AS all data centers announce from (an anycast network is one AS). */
export const PLATFORM_AS = 64512;
/** City c is AS CITY_AS_BASE + c. */
export const CITY_AS_BASE = 64601;
/** The Internet host's AS. */
export const INTERNET_AS = 64700;
/** The Internet host's HTTP service (answers with the client address and port it saw). */
export const INTERNET_HTTP_PORT = 80;
/** The Internet host's TCP echo service (for long-lived connections). */
export const INTERNET_ECHO_PORT = 7;

/** GUE encapsulation of a steered packet (bpf/steer.h STEER_ENCAP_LEN). */
export const STEER_ENCAP_BYTES = 36;
/**
 * MTU of the data centers' own links (server LANs and backbone): the Internet's 1500 plus the
 * steering encapsulation, so a full-size packet from an eyeball or the Internet still fits once a
 * server forwards it to its owner. Operators raise the MTU inside their network (the Internet's
 * they cannot lower). Not jumbo: a veth running XDP takes at most about one page per frame.
 */
export const FABRIC_MTU = 1500 + STEER_ENCAP_BYTES;

/** Proxy k of a server serves its metrics on 127.0.0.1:(this + k), in the server's namespace. */
export const PROXY_METRICS_PORT_BASE = 9475;

/** What a node is. */
export type NodeRole = 'exchange' | 'backbone' | 'dc-router' | 'server' | 'city-router' | 'eyeball' | 'customer-router' | 'customer-host' | 'internet';

/** A network namespace of the lab. */
export interface LabNode {
  /** Short name, e.g. `ams-s1`; `lab exec` takes it. */
  readonly name: string;
  /** Full netns name, `ael<id>-<name>`. */
  readonly ns: string;
  readonly role: NodeRole;
}

/** A bridge inside a node. */
export interface LabBridge {
  readonly node: string;
  readonly dev: string;
  readonly addrs: readonly string[];
  /** Set explicitly (a bridge otherwise follows its smallest port). */
  readonly mtu?: number;
}

/** One end of a veth pair. */
export interface LabLinkEnd {
  readonly node: string;
  readonly dev: string;
  readonly addrs: readonly string[];
  /** Bridge port of this bridge. */
  readonly master?: string;
  /** Turn TX checksum offload off: packets made here cross XDP, which cannot finish a partial checksum. */
  readonly txOff?: boolean;
  readonly mtu?: number;
  /**
   * Attach xdp_pass here: this end's peer sends frames by XDP_TX / bpf_redirect (a server's
   * uplink steering a packet to its owner), and a veth delivers those only to a peer that runs an
   * XDP program itself (without one they are dropped, counted nowhere).
   */
  readonly xdpPass?: boolean;
}

/** A veth pair. */
export interface LabLink {
  readonly a: LabLinkEnd;
  readonly b: LabLinkEnd;
}

/** A static route in a node (BGP routes come from BIRD). */
export interface LabRoute {
  readonly node: string;
  readonly dst: string;
  readonly via?: string;
  readonly dev?: string;
  readonly onlink?: boolean;
}

/** An address on a node's loopback (the anycast service addresses on every server). */
export interface LabLocalAddr {
  readonly node: string;
  readonly addr: string;
}

/** One egress proxy process: a service of one class on one server. */
export interface LabProxy {
  readonly dc: string;
  readonly server: string;
  readonly node: string;
  readonly ns: string;
  /** `--listen`: the service address and port. */
  readonly ip: string;
  readonly port: number;
  readonly class: 'trusted' | 'untrusted';
  /** `--metrics`: the proxy's Prometheus listener, on the server's own loopback. */
  readonly metrics: string;
}

/** A sysctl in a node. */
export interface LabSysctl {
  readonly node: string;
  readonly key: string;
  readonly value: string;
}

/** A BIRD instance. */
export interface LabBird {
  readonly node: string;
  readonly kind: 'dc' | 'city' | 'internet';
  readonly as: number;
  /** Its BGP protocols, by name (the neighbor's id). */
  readonly sessions: readonly string[];
  readonly config: string;
}

/** The agent of one server. */
export interface LabAgent {
  readonly dc: string;
  readonly server: string;
  readonly node: string;
  readonly ns: string;
  /** `--prefix`: unique per server. */
  readonly prefix: string;
  /** `--bpf`: its pin directory under /sys/fs/bpf. */
  readonly bpf: string;
}

/** A data center. */
export interface LabDc {
  readonly id: string;
  readonly router: string;
  readonly ixIp: string;
  /** The DC router's address on the backbone LAN. */
  readonly backboneIp: string;
  readonly lan: string;
  /** Its servers, with their uplink address (address/length). */
  readonly servers: ReadonlyArray<{ readonly id: string; readonly node: string; readonly address: string }>;
}

/** A city. */
export interface LabCity {
  readonly id: string;
  readonly as: number;
  readonly router: string;
  readonly ixIp: string;
  readonly eyeball: string;
  readonly eyeballIp: string;
  /** The eyeballs' country (ISO 3166-1 alpha-2). */
  readonly country: string;
  /** Data centers by BGP preference (AS-path length): the first is where its traffic lands. */
  readonly prefers: readonly string[];
}

/** A customer site. */
export interface LabSite extends LabCustomer {
  readonly city: string;
  readonly router: string;
  readonly host: string;
  readonly hostIp: string;
  /** The city router's address the customer router routes to (on-link). */
  readonly gateway: string;
  /** Its own copy of the edge programs (no GRE module needed), pinned here under /sys/fs/bpf. */
  readonly bpf: string;
}

/** The Internet host: the destination of proxied egress. */
export interface LabInternet {
  readonly node: string;
  readonly ip: string;
  readonly as: number;
  readonly httpPort: number;
  readonly echoPort: number;
  /** Its interface on the exchange, where tshark captures. */
  readonly dev: string;
  /** Data centers by BGP preference for the anycast and egress ranges. */
  readonly prefers: readonly string[];
}

/** The whole plan. */
export interface LabPlan {
  readonly id: string;
  readonly prefix: string;
  readonly size: LabSize;
  readonly nodes: readonly LabNode[];
  readonly bridges: readonly LabBridge[];
  readonly links: readonly LabLink[];
  readonly routes: readonly LabRoute[];
  readonly sysctls: readonly LabSysctl[];
  readonly localAddrs: readonly LabLocalAddr[];
  readonly bird: readonly LabBird[];
  readonly agents: readonly LabAgent[];
  readonly proxies: readonly LabProxy[];
  readonly dcs: readonly LabDc[];
  readonly cities: readonly LabCity[];
  readonly sites: readonly LabSite[];
  readonly internet: LabInternet;
  /** The backbone LAN (CIDR). */
  readonly backbone: string;
  /** The config document for the store. */
  readonly config: Record<string, unknown>;
}

function checkSize(size: LabSize): LabError | null {
  const bad = (path: keyof LabSize, min: number, max: number): LabError | null =>
    Number.isInteger(size[path]) && size[path] >= min && size[path] <= max
      ? null
      : { code: 'invalid', path, message: `--${path} ${size[path]}: use a whole number from ${min} to ${max}` };
  const first = bad('dcs', 1, LAB_DCS.length) ?? bad('servers', 1, 13) ?? bad('cities', 2, LAB_CITIES.length);
  if (first) return first;
  if (size.dcs * size.servers > MAX_SERVERS_TOTAL)
    return { code: 'invalid', path: 'servers', message: `--dcs ${size.dcs} × --servers ${size.servers} = ${size.dcs * size.servers} servers; a lab has at most ${MAX_SERVERS_TOTAL} (one agent prefix character each)` };
  return null;
}

/** Plans lab `id` (already checked) at `size`. */
export function planLab(id: string, size: LabSize, doc: LabDocOptions = {}): Result<LabPlan, LabError> {
  const bad = checkSize(size);
  if (bad) return err(bad);
  const prefix = labPrefix(id);
  const dcIds = LAB_DCS.slice(0, size.dcs);
  const cityIds = LAB_CITIES.slice(0, size.cities);

  const subnets = allocate(
    [
      { path: 'exchange', hosts: size.dcs + size.cities + 1 },
      ...dcIds.map((d) => ({ path: `dcs/${d}/lan`, hosts: size.servers + 1 })),
      { path: 'backbone', hosts: size.dcs },
    ],
    'servers',
  );
  if (!subnets.ok) return subnets;
  const net = (path: string): Subnet => subnets.value.get(path) as Subnet;
  const ix = net('exchange');
  const bb = net('backbone');

  const nodes: LabNode[] = [];
  const bridges: LabBridge[] = [];
  const links: LabLink[] = [];
  const routes: LabRoute[] = [];
  const sysctls: LabSysctl[] = [];
  const bird: LabBird[] = [];
  const agents: LabAgent[] = [];
  const proxies: LabProxy[] = [];
  const localAddrs: LabLocalAddr[] = [];
  const dcs: LabDc[] = [];
  const cities: LabCity[] = [];
  const sites: LabSite[] = [];
  const node = (name: string, role: NodeRole): void => void nodes.push({ name, ns: nodeNs(prefix, name), role });

  node('ix', 'exchange');
  bridges.push({ node: 'ix', dev: 'br0', addrs: [] });
  node('bb', 'backbone');
  bridges.push({ node: 'bb', dev: 'br0', addrs: [], mtu: FABRIC_MTU });

  dcIds.forEach((dc, d) => {
    const lan = net(`dcs/${dc}/lan`);
    const ixIp = hostIp(ix, 1 + d);
    node(dc, 'dc-router');
    links.push({ a: { node: dc, dev: 'ix0', addrs: [hostAddr(ix, 1 + d)] }, b: { node: 'ix', dev: dc, addrs: [], master: 'br0' } });
    links.push({ a: { node: dc, dev: 'bb0', addrs: [hostAddr(bb, 1 + d)], mtu: FABRIC_MTU }, b: { node: 'bb', dev: dc, addrs: [], master: 'br0', mtu: FABRIC_MTU } });
    bridges.push({ node: dc, dev: 'lan0', addrs: [hostAddr(lan, 1)], mtu: FABRIC_MTU });
    // L4 hash: the flows of one eyeball spread over the servers, each flow stays on one.
    sysctls.push({ node: dc, key: 'net.ipv4.fib_multipath_hash_policy', value: '1' });
    // A server that stops answering ARP leaves the multipath route's choices (the others keep theirs).
    sysctls.push({ node: dc, key: 'net.ipv4.fib_multipath_use_neigh', value: '1' });
    sysctls.push({ node: dc, key: 'net.ipv4.conf.all.send_redirects', value: '0' });
    const servers: Array<{ id: string; node: string; address: string }> = [];
    for (let s = 0; s < size.servers; s++) {
      const sid = `s${s + 1}`;
      const name = `${dc}-${sid}`;
      node(name, 'server');
      const address = hostAddr(lan, 2 + s);
      // The server's XDP steering sends forwarded packets back out of eth0 by XDP_TX: the bridge
      // port at the other end runs xdp_pass to take them.
      links.push({ a: { node: name, dev: 'eth0', addrs: [address], mtu: FABRIC_MTU }, b: { node: dc, dev: sid, addrs: [], master: 'lan0', mtu: FABRIC_MTU, xdpPass: true } });
      routes.push({ node: name, dst: 'default', via: hostIp(lan, 1) });
      sysctls.push({ node: name, key: 'net.ipv4.conf.all.send_redirects', value: '0' });
      // The XDP steering hands a forwarded packet whose next hop is not resolved yet to the kernel,
      // already encapsulated with this server's own address as source: without accept_local the
      // kernel drops it as a martian, so no neighbour entry is ever made and every forward to
      // that server is lost (bpf/steer.h STEER_VIA_STACK).
      sysctls.push({ node: name, key: 'net.ipv4.conf.all.accept_local', value: '1' });
      servers.push({ id: sid, node: name, address });
      agents.push({ dc, server: sid, node: name, ns: nodeNs(prefix, name), prefix: agentPrefix(prefix, d * size.servers + s), bpf: nodeNs(prefix, name) });
      // Every server runs every service: the anycast service addresses are its own (on lo, which
      // the agent leaves alone outside the egress ranges), and a proxy listens on each.
      for (const svc of LAB_PROXY_SERVICES) {
        localAddrs.push({ node: name, addr: `${svc.ip}/32` });
        proxies.push({ dc, server: sid, node: name, ns: nodeNs(prefix, name), ip: svc.ip, port: svc.port, class: svc.class, metrics: `127.0.0.1:${PROXY_METRICS_PORT_BASE + LAB_PROXY_SERVICES.indexOf(svc)}` });
      }
    }
    dcs.push({ id: dc, router: dc, ixIp, backboneIp: hostIp(bb, 1 + d), lan: subnetCidr(lan), servers });
  });
  // The backbone: every DC router reaches every other DC's servers through that DC's router.
  for (const from of dcs) for (const to of dcs) if (from !== to) routes.push({ node: from.router, dst: to.lan, via: to.backboneIp });

  cityIds.forEach((city, c) => {
    const eye = eyeballSubnet(c);
    const ixIp = hostIp(ix, 1 + size.dcs + c);
    node(city, 'city-router');
    node(`${city}-e1`, 'eyeball');
    links.push({ a: { node: city, dev: 'ix0', addrs: [hostAddr(ix, 1 + size.dcs + c)] }, b: { node: 'ix', dev: city, addrs: [], master: 'br0' } });
    links.push({ a: { node: city, dev: 'e1', addrs: [hostAddr(eye, 1)] }, b: { node: `${city}-e1`, dev: 'eth0', addrs: [hostAddr(eye, 2)], txOff: true } });
    routes.push({ node: `${city}-e1`, dst: 'default', via: hostIp(eye, 1) });
    // City c prefers DC c (mod the DC count), then the next ones in turn.
    const prefers = dcIds.map((_, k) => dcIds[(c + k) % size.dcs] as string);
    cities.push({ id: city, as: CITY_AS_BASE + c, router: city, ixIp, eyeball: `${city}-e1`, eyeballIp: hostIp(eye, 2), country: LAB_CITY_COUNTRIES[city], prefers });
  });

  // The Internet host, last on the exchange.
  const inetIp = hostIp(ix, 1 + size.dcs + size.cities);
  node('inet', 'internet');
  links.push({ a: { node: 'inet', dev: 'ix0', addrs: [hostAddr(ix, 1 + size.dcs + size.cities)], txOff: true }, b: { node: 'ix', dev: 'inet', addrs: [], master: 'br0' } });
  const internet: LabInternet = { node: 'inet', ip: inetIp, as: INTERNET_AS, httpPort: INTERNET_HTTP_PORT, echoPort: INTERNET_ECHO_PORT, dev: 'ix0', prefers: [...dcIds] };

  // Acme behind the first city, Globex behind the last.
  LAB_CUSTOMERS.forEach((cust, k) => {
    const city = cities[k === 0 ? 0 : cities.length - 1] as LabCity;
    const router = cust.tenant;
    const host = `${cust.tenant}-h`;
    node(router, 'customer-router');
    node(host, 'customer-host');
    // Unnumbered: the customer's /32 on its uplink, on-link routes both ways.
    links.push({ a: { node: city.router, dev: cust.tenant, addrs: [] }, b: { node: router, dev: 'wan0', addrs: [`${cust.routerIp}/32`] } });
    links.push({ a: { node: router, dev: 'lan0', addrs: [cust.lanGateway] }, b: { node: host, dev: 'eth0', addrs: [cust.host], txOff: true } });
    routes.push({ node: city.router, dst: `${cust.routerIp}/32`, dev: cust.tenant });
    for (const r of LAB_ANYCAST.ranges) routes.push({ node: router, dst: r, via: city.ixIp, dev: 'wan0', onlink: true });
    // Everything else of the customer goes through its anycast GRE tunnel (ctun0, made with the
    // tunnel by lab up).
    routes.push({ node: router, dst: 'default', dev: 'ctun0' });
    routes.push({ node: host, dst: 'default', via: cust.lanGateway.split('/')[0] as string });
    sysctls.push({ node: router, key: 'net.ipv4.conf.all.send_redirects', value: '0' });
    sites.push({ ...cust, city: city.id, router, host, hostIp: cust.host.split('/')[0] as string, gateway: city.ixIp, bpf: nodeNs(prefix, router) });
  });

  const anycast = [...LAB_CUSTOMERS.map((c) => c.prefix), ...LAB_ANYCAST.ranges, ...LAB_ANYCAST.egressRanges];
  dcs.forEach((dc, d) => {
    const neighbors = [
      ...cities.map((city, c) => ({ name: city.id, ip: city.ixIp, as: city.as, prepend: (((d - c) % size.dcs) + size.dcs) % size.dcs })),
      { name: internet.node, ip: internet.ip, as: internet.as, prepend: d },
    ];
    bird.push({
      node: dc.router, kind: 'dc', as: PLATFORM_AS, sessions: neighbors.map((n) => n.name),
      config: dcBirdConfig({ dc: dc.id, labPrefix: prefix, routerId: dc.ixIp, as: PLATFORM_AS, localIp: dc.ixIp, anycast, lan: dc.lan, servers: dc.servers.map((s) => s.address.split('/')[0] as string), neighbors }),
    });
  });
  cities.forEach((city, c) => {
    const announce = [subnetCidr(eyeballSubnet(c)), ...sites.filter((s) => s.city === city.id).map((s) => `${s.routerIp}/32`)];
    const neighbors = dcs.map((dc) => ({ name: dc.id, ip: dc.ixIp, as: PLATFORM_AS }));
    bird.push({
      node: city.router, kind: 'city', as: CITY_AS_BASE + c, sessions: neighbors.map((n) => n.name),
      config: cityBirdConfig({ city: city.id, labPrefix: prefix, routerId: city.ixIp, as: CITY_AS_BASE + c, localIp: city.ixIp, announce, neighbors }),
    });
  });
  {
    // It originates nothing: its address is on the exchange, which every DC router is on.
    const neighbors = dcs.map((dc) => ({ name: dc.id, ip: dc.ixIp, as: PLATFORM_AS }));
    bird.push({
      node: internet.node, kind: 'internet', as: internet.as, sessions: neighbors.map((n) => n.name),
      config: cityBirdConfig({ city: internet.node, what: 'the Internet host', labPrefix: prefix, routerId: internet.ip, as: internet.as, localIp: internet.ip, announce: [], neighbors }),
    });
  }

  const config = labConfigDoc(dcs.map((dc) => ({
    id: dc.id,
    name: LAB_DC_NAMES[dc.id] ?? dc.id,
    backbone: [`${dc.backboneIp}/${bb.len}`, `${dc.ixIp}/${ix.len}`],
    servers: dc.servers.map((s) => ({ id: s.id, address: s.address })),
  })), doc);
  return ok({ id, prefix, size, nodes, bridges, links, routes, sysctls, localAddrs, bird, agents, proxies, dcs, cities, sites, internet, backbone: subnetCidr(bb), config });
}

/** The node of a short name or full netns name, if the plan has it. */
export function findNode(plan: LabPlan, name: string): LabNode | undefined {
  return plan.nodes.find((n) => n.name === name || n.ns === name);
}
