/**
 * The config document the lab writes to its store: its data centers and servers, the platform's
 * anycast ranges, soft-unicast egress (four pools: two countries, GB and US — the countries of
 * the first two cities' eyeballs — times both classes, each with one address per data center),
 * and two tenants as in examples/acme.yaml — Acme (203.0.113.0/25, FTP open on
 * 203.0.113.100, a tunnel with inner addresses) and Globex
 * (203.0.113.128/25, a keyed tunnel) — each with its tunnel to its customer router.
 */
import { intToIpv4, ipv4ToInt } from './addressing.ts';

/** One data center of the lab, as the config needs it. */
export interface LabDcDoc {
  readonly id: string;
  readonly name: string;
  /** The DC router's addresses on the backbone and on the exchange LAN, with their lengths. */
  readonly backbone: readonly string[];
  /** Server id → uplink address with length. */
  readonly servers: ReadonlyArray<{ readonly id: string; readonly address: string }>;
}

/** The customers of the lab: tenant id, prefix, router, tunnel details, the host and its service. */
export interface LabCustomer {
  readonly tenant: string;
  readonly name: string;
  readonly prefix: string;
  /** The customer router's public address (the tunnel's customer endpoint). */
  readonly routerIp: string;
  /** The customer router's address on its LAN (the host's gateway), with length. */
  readonly lanGateway: string;
  /** The host inside, with length. */
  readonly host: string;
  /** Port of the host's TCP echo service. */
  readonly port: number;
  /** Ports the tenant's `ftp` rule opens to the host (the seed's Acme rule: TCP 20–21). */
  readonly openPorts: string;
  readonly key?: number;
  /** Our inner address of the tunnel (with length), and the customer's. */
  readonly inner?: { readonly ours: string; readonly theirs: string };
}

/** The platform's anycast addressing (DESIGN §4). */
export const LAB_ANYCAST = {
  ranges: ['198.51.100.0/28'],
  greEndpoints: ['198.51.100.1'],
  services: ['198.51.100.2', '198.51.100.3'],
  egressRanges: ['198.51.100.64/26'],
} as const;

/**
 * The proxy services: one per anycast service address, each of one egress class (the proxy's
 * `--class`), on every server.
 */
export const LAB_PROXY_SERVICES = [
  { ip: '198.51.100.2', port: 3128, class: 'trusted' },
  { ip: '198.51.100.3', port: 3128, class: 'untrusted' },
] as const;

/**
 * The egress pools: 198.51.100.64/26 (DESIGN §4) cut into four /28s, one per country × class.
 * Addresses 1 + d and, while the pool has room (up to 7 DCs), 1 + D + d of every pool belong to
 * data center d of D: every DC serves every tag from two addresses, so one of them can move to
 * another DC (a test does) and the DC still has the tag. The rest stay unassigned.
 */
export const LAB_EGRESS_POOLS = [
  { id: 'gb-trusted', cidr: '198.51.100.64/28', class: 'trusted', country: 'GB' },
  { id: 'gb-untrusted', cidr: '198.51.100.80/28', class: 'untrusted', country: 'GB' },
  { id: 'us-trusted', cidr: '198.51.100.96/28', class: 'trusted', country: 'US' },
  { id: 'us-untrusted', cidr: '198.51.100.112/28', class: 'untrusted', country: 'US' },
] as const;

/** The `k`-th (0 or 1) egress address of `pool` that data center `d` of `dcs` owns, or null when the pool has no room for it. */
export function labEgressIp(pool: (typeof LAB_EGRESS_POOLS)[number], d: number, dcs: number, k: 0 | 1 = 0): string | null {
  // Not the pool's first or last address: some tools treat them as network and broadcast.
  const offset = 1 + k * dcs + d;
  return offset <= 14 ? intToIpv4(ipv4ToInt(pool.cidr.split('/')[0] as string) + offset) : null;
}

/** Acme and Globex, as in examples/acme.yaml. */
export const LAB_CUSTOMERS: readonly LabCustomer[] = [
  {
    tenant: 'acme', name: 'Acme Corp', prefix: '203.0.113.0/25', routerIp: '198.51.100.200', lanGateway: '203.0.113.1/25', host: '203.0.113.100/25', port: 21, openPorts: '20-21',
    inner: { ours: '192.0.2.252/31', theirs: '192.0.2.253/31' },
  },
  { tenant: 'globex', name: 'Globex', prefix: '203.0.113.128/25', routerIp: '198.51.100.201', lanGateway: '203.0.113.129/25', host: '203.0.113.130/25', port: 21, openPorts: '21', key: 42 },
];

/** A customer's firewall rules as the seed has them: its TCP service open, ping rate-limited. */
export function labRules(c: LabCustomer): Array<Record<string, unknown>> {
  const host = c.host.split('/')[0] as string;
  return [
    { id: 'ftp', description: `the TCP service on ${host}`, direction: 'ingress', dst: [host], protocol: 'tcp', dport: [c.openPorts], action: 'accept' },
    { id: 'ping', direction: 'ingress', protocol: 'icmp', icmp: { type: 'echo-request' }, action: 'rate-limit', rateLimit: { pps: 100 } },
  ];
}

/** One seed rule, `tenant/ruleId`, or undefined when the seed has none of that name. */
export function labRule(ref: string): Record<string, unknown> | undefined {
  const [tenant, id] = ref.split('/');
  const c = LAB_CUSTOMERS.find((x) => x.tenant === tenant);
  return c ? labRules(c).find((r) => r.id === id) : undefined;
}

/** Options of {@link labConfigDoc}. */
export interface LabDocOptions {
  /**
   * Seed rules left out, as `tenant/ruleId` (e.g. `acme/ftp`): `lab demo` brings the platform up
   * without them and adds them through the API.
   */
  readonly withoutRules?: readonly string[];
}

/** The whole document (the shape of examples/acme.yaml), ready for parseConfig. */
export function labConfigDoc(dcs: readonly LabDcDoc[], opts: LabDocOptions = {}): Record<string, unknown> {
  const held = new Set(opts.withoutRules ?? []);
  const dcDocs: Record<string, unknown> = {};
  for (const dc of dcs) {
    dcDocs[dc.id] = {
      name: dc.name,
      location: 'anyedge lab',
      backbone: [...dc.backbone],
      servers: Object.fromEntries(dc.servers.map((s) => [s.id, { uplink: 'eth0', addresses: [s.address] }])),
    };
  }
  const tenants: Record<string, unknown> = {};
  for (const c of LAB_CUSTOMERS) {
    tenants[c.tenant] = {
      name: c.name,
      prefixes: { p1: { cidr: c.prefix } },
      tunnels: {
        gre1: {
          customerEndpoint: c.routerIp,
          ...(c.key !== undefined ? { key: c.key } : {}),
          ...(c.inner ? { inner: [c.inner.ours] } : {}),
          // Off in the lab: a probe's reply comes back by anycast and lands on whichever server
          // the customer's DC and ECMP pick, usually not the one whose ping socket waits for it,
          // so probes fail and the tunnel would be taken out of every server's routes.
          healthCheck: { enabled: false },
        },
      },
      routes: { r1: { prefix: c.prefix, via: [{ tunnel: 'gre1' }] } },
      firewall: {
        default: { ingress: 'drop', egress: 'accept' },
        rules: labRules(c).filter((r) => !held.has(`${c.tenant}/${String(r.id)}`)),
      },
    };
  }
  return {
    dcs: dcDocs,
    anycast: { ranges: [...LAB_ANYCAST.ranges], greEndpoints: [...LAB_ANYCAST.greEndpoints], services: [...LAB_ANYCAST.services], egressRanges: [...LAB_ANYCAST.egressRanges] },
    tenants,
    dos: { rules: { chargen: { description: 'chargen reflection; nobody needs UDP from port 19', match: { protocol: 'udp', sport: [19] }, action: 'drop' } } },
    egress: {
      pools: Object.fromEntries(LAB_EGRESS_POOLS.map((p) => [p.id, { cidrs: [p.cidr], tags: { class: p.class, country: p.country }, sliceSize: 2048 }])),
      assign: Object.fromEntries(
        LAB_EGRESS_POOLS.flatMap((p) => ([0, 1] as const).flatMap((k) => dcs.flatMap((dc, d) => {
          const ip = labEgressIp(p, d, dcs.length, k);
          return ip === null ? [] : [[ip, { dc: dc.id }]];
        }))),
      ),
    },
  };
}
