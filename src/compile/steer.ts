/**
 * Compiles the config into one server's steering maps (bpf/steer.h): pure, the same config gives
 * the same maps on every server of a DC except `self`.
 *
 * - steer_table: the DC's Maglev table (maglev.ts) over its active servers, with second choices
 *   (the draining server, or the owner without the first); each bucket holds both addresses.
 * - steer_svc: every anycast service address (`anycast.services`), IPv4 and IPv6.
 * - steer_tenant: every prefix of every tenant whose SYN-flood protection is on (`xdp` or
 *   `synproxy`, model/synflood.ts): both keep per-connection state on one server (the kernel's
 *   cookie secret is per host; synproxy's sequence translation lives in that server's
 *   conntrack), so the flow, both directions, must always reach that server — packets from the
 *   Internet by their 5-tuple, the customer's through its GRE tunnel by the inner 5-tuple. The
 *   same Maglev table decides, with a hash that is the same in both directions.
 * - steer_peers: every server of every DC, whose GUE packets this server accepts.
 * - steer_egress / steer_slices: every assigned egress address and who owns it
 *   (`egressOwnership`, compile/egress/ownership.ts): per port slice for IPv4, the whole address
 *   for IPv6, in this DC or any other (the FIB routes the forwarded packet there).
 *
 * A server's address, as outer source and destination of forwarded packets, is its first IPv4
 * uplink address (`dcs/<dc>/servers/<s>.addresses`): forwarding is GUE over IPv4.
 *
 * What changes do to established connections:
 * - ECMP change at the DC router (a server leaves or joins the router's set, a link flaps):
 *   nothing; the table is the same, every packet still reaches the bucket's owner.
 * - a server set to `draining`: its buckets go to other servers with it as second choice; its
 *   connections keep reaching it (first owner finds no socket → second choice), new ones do not.
 *   Set `down` only once its connections are gone (anyedge's metrics: forward_second stops).
 * - a server added as `active` (or back from draining): it takes ~1/N of the buckets at once;
 *   each bucket's second choice is the owner it would have without its first owner (maglev.ts
 *   `steeringTable`), which for the new server's buckets is exactly their previous owner. So the
 *   new server, finding no socket for an established flow, hands it to the old owner, and only
 *   SYNs (new flows) stay with it. Stateless: every server derives it from the config alone.
 *   Add servers one config change at a time: with two added at once, a bucket one new server
 *   took whose owner-without-it is the other new server loses its established flows.
 * - an egress address moved to another DC (`egress/assign/<ip>`): every server's steer_slices
 *   point the address's slices at the new DC's servers at once, so replies of connections
 *   opened from the old DC are forwarded to servers that have no NAT state for them and are
 *   reset there; new connections from the new DC work. Move an address only after draining its
 *   users (the proxy stops picking it), as with any soft-unicast move.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import { familyOf, formatCidr, formatIp, mustCidr, mustIfAddr } from '../model/net.ts';
import { synFloodOf } from '../model/synflood.ts';
import type { CompileError } from './server.ts';
import { MAGLEV_SIZE, NO_SERVER, steeringTable, type SteeringServer } from './maglev.ts';
import { egressOwnership, type EgressOwnership } from './egress/ownership.ts';
import type { Bucket, EgressEntry, SteerCfg } from '../kernel/bpf/steer-layout.ts';

/** The UDP port of GUE between fleet servers (outside the ephemeral range, below 32768). */
export const STEER_PORT = 6080;

/** A server the table can point at. */
export interface SteerOwner {
  /** `dc/server`. */
  readonly id: string;
  readonly address: string;
}

/** One server's steering maps. */
export interface DesiredSteer {
  /** `dc/server`. */
  readonly server: string;
  readonly cfg: SteerCfg;
  /** Anycast service addresses, sorted. */
  readonly services: readonly string[];
  /** Prefixes of tenants with SYN-flood protection on (canonical CIDR), sorted. */
  readonly tenants: readonly string[];
  /** Addresses of every fleet server, sorted. */
  readonly peers: readonly string[];
  /** The servers the table points at (this DC's active and draining ones), by index. */
  readonly owners: readonly SteerOwner[];
  /** Per bucket, index into owners of the first owner and of the second choice (-1: none). */
  readonly first: Int32Array;
  readonly second: Int32Array;
  readonly egress: ReadonlyArray<{ readonly ip: string; readonly entry: EgressEntry }>;
  readonly slices: ReadonlyArray<{ readonly ip: string; readonly slice: number; readonly server: string; readonly owner: string }>;
  /** What was left out and why. */
  readonly warnings: readonly string[];
}

/** Options; `egress` replaces egressOwnership(config) (tests). */
export interface SteerOptions {
  readonly egress?: readonly EgressOwnership[];
}

/** The bucket as steer_table holds it (owners' addresses). */
export function bucketAt(d: DesiredSteer, i: number): Bucket {
  const a = d.first[i] as number;
  const b = d.second[i] as number;
  return { first: a === NO_SERVER ? null : (d.owners[a]?.address ?? null), second: b === NO_SERVER ? null : (d.owners[b]?.address ?? null) };
}

/** A server's first IPv4 uplink address, or null. */
function ipv4Of(addresses: readonly string[]): string | null {
  for (const a of addresses) {
    const ip = formatIp(mustIfAddr(a).ip);
    if (familyOf(ip) === 4) return ip;
  }
  return null;
}

/**
 * The prefixes whose flows are steered because their tenant's SYN-flood protection holds state
 * per server, canonical and sorted. A tenant that is not active still has its prefixes steered:
 * steering follows where state can be, and costs nothing when no packet comes.
 */
export function statefulTenantPrefixes(config: Config): string[] {
  const out = new Set<string>();
  for (const t of Object.values(config.tenants)) {
    if (synFloodOf(t).protection === 'off') continue;
    for (const p of Object.values(t.prefixes)) out.add(formatCidr(mustCidr(p.cidr)));
  }
  return [...out].sort(compareCidrText);
}

/** Addresses in numeric order within a family, IPv4 first; then by length. */
function compareCidrText(a: string, b: string): number {
  const x = mustCidr(a);
  const y = mustCidr(b);
  return x.family - y.family || (x.start < y.start ? -1 : x.start > y.start ? 1 : 0) || x.len - y.len;
}

/**
 * The servers `where`'s steering table is built over (its DC's, those with an IPv4 address) and
 * the error path, or null when no table is needed (no service, no protected tenant) or the DC
 * is unknown. compileSteer's input to steeringTable, apart so the agent can build the table off
 * its event loop first (maglev-async.ts; compileSteer then finds it memoized).
 */
export function steeringTableInput(config: Config, where: { readonly dc: string }): { readonly servers: SteeringServer[]; readonly path: string } | null {
  const dc = Object.hasOwn(config.dcs, where.dc) ? config.dcs[where.dc] : undefined;
  if (!dc || (config.anycast.services.length === 0 && statefulTenantPrefixes(config).length === 0)) return null;
  const servers = Object.entries(dc.servers)
    .filter(([, s]) => ipv4Of(s.addresses) !== null)
    .map(([sId, s]) => ({ id: sId, state: s.state }));
  return { servers, path: `dcs/${where.dc}` };
}

/** Compiles `where`'s steering maps. */
export function compileSteer(config: Config, where: { readonly dc: string; readonly server: string }, opts: SteerOptions = {}): Result<DesiredSteer, CompileError> {
  const id = `${where.dc}/${where.server}`;
  const dc = Object.hasOwn(config.dcs, where.dc) ? config.dcs[where.dc] : undefined;
  if (!dc) return err({ code: 'not_found', path: `dcs/${where.dc}`, message: `no data center ${where.dc} in the config; check --server` });
  const me = Object.hasOwn(dc.servers, where.server) ? dc.servers[where.server] : undefined;
  if (!me) return err({ code: 'not_found', path: `dcs/${where.dc}/servers/${where.server}`, message: `no server ${where.server} in data center ${where.dc}; check --server` });

  let owned: readonly EgressOwnership[];
  if (opts.egress) owned = opts.egress;
  else {
    const e = egressOwnership(config);
    if (!e.ok) return err({ code: 'invalid', path: e.error.path, message: `egress ownership: ${e.error.message}`, cause: e.error });
    owned = e.value;
  }
  const services = [...config.anycast.services].sort();
  const tenants = statefulTenantPrefixes(config);
  const warnings: string[] = [];
  const needed = services.length > 0 || owned.length > 0 || tenants.length > 0;

  // Addresses of every server of the fleet: peers, table owners and egress owners.
  const addressOf = new Map<string, string>();
  const missing: string[] = [];
  for (const [dcId, d] of Object.entries(config.dcs)) {
    for (const [sId, s] of Object.entries(d.servers)) {
      const ip = ipv4Of(s.addresses);
      if (ip) addressOf.set(`${dcId}/${sId}`, ip);
      else missing.push(`${dcId}/${sId}`);
    }
  }
  const self = addressOf.get(id) ?? null;
  if (needed && self === null)
    return err({ code: 'invalid', path: `dcs/${where.dc}/servers/${where.server}.addresses`, message: 'has no IPv4 address: steering forwards between servers in GUE over IPv4; add the uplink IPv4 address' });
  for (const m of missing) warnings.push(`dcs/${m.replace('/', '/servers/')}: no IPv4 address, so no server forwards to it or accepts its forwarded packets`);

  let owners: SteerOwner[] = [];
  let first: Int32Array = new Int32Array(MAGLEV_SIZE).fill(NO_SERVER);
  let second: Int32Array = new Int32Array(MAGLEV_SIZE).fill(NO_SERVER);
  const table = steeringTableInput(config, where);
  if (table) {
    const t = steeringTable(table.servers, MAGLEV_SIZE, table.path);
    if (t.ok) {
      owners = t.value.servers.map((s) => ({ id: `${where.dc}/${s}`, address: addressOf.get(`${where.dc}/${s}`) as string }));
      first = t.value.first;
      second = t.value.second;
    } else warnings.push(`${t.error.path}: ${t.error.message}; until then every server of ${where.dc} serves the service and protected tenant flows it receives`);
  }

  const egress: Array<{ ip: string; entry: EgressEntry }> = [];
  const slices: Array<{ ip: string; slice: number; server: string; owner: string }> = [];
  for (const o of owned) {
    if (o.owner.kind === 'server') {
      const a = addressOf.get(`${o.dc}/${o.owner.server}`);
      if (!a) {
        warnings.push(`egress/assign/${o.ip}: owner ${o.dc}/${o.owner.server} has no IPv4 address to forward to; replies are served where they land`);
        continue;
      }
      egress.push({ ip: o.ip, entry: { kind: 'server', server: a } });
      continue;
    }
    if (familyOf(o.ip) !== 4) {
      warnings.push(`egress/assign/${o.ip}: port slices are IPv4 only; not steered`);
      continue;
    }
    egress.push({ ip: o.ip, entry: { kind: 'slices', sliceSize: o.owner.sliceSize } });
    for (const s of o.owner.slices) {
      const a = addressOf.get(`${o.dc}/${s.server}`);
      if (!a || s.slice === 0) continue;
      slices.push({ ip: o.ip, slice: s.slice, server: a, owner: `${o.dc}/${s.server}` });
    }
  }
  const byIp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  egress.sort((a, b) => byIp(a.ip, b.ip));
  slices.sort((a, b) => byIp(a.ip, b.ip) || a.slice - b.slice);
  return ok({
    server: id,
    cfg: { self, port: STEER_PORT, enabled: needed && self !== null },
    services,
    tenants,
    peers: [...new Set(addressOf.values())].sort(byIp),
    owners,
    first,
    second,
    egress,
    slices,
    warnings,
  });
}

/**
 * The maps as text for people and golden files: everything except the table in full; the table
 * as buckets per (first, second) pair, which is what changes when a server is added or drained.
 */
export function formatSteer(d: DesiredSteer): string {
  const lines = [`steer ${d.server}: self ${d.cfg.self ?? '-'} port ${d.cfg.port} ${d.cfg.enabled ? 'enabled' : 'disabled'}`];
  for (const s of d.services) lines.push(`  service ${s}`);
  for (const c of d.tenants) lines.push(`  tenant ${c}`);
  for (const p of d.peers) lines.push(`  peer ${p}`);
  const pairs = new Map<string, number>();
  const name = (i: number) => (i === NO_SERVER ? '-' : `${d.owners[i]?.id} ${d.owners[i]?.address}`);
  for (let b = 0; b < d.first.length; b++) {
    const k = `first ${name(d.first[b] as number)}, second ${name(d.second[b] as number)}`;
    pairs.set(k, (pairs.get(k) ?? 0) + 1);
  }
  for (const [k, n] of [...pairs.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) lines.push(`  table ${n} buckets: ${k}`);
  for (const e of d.egress) lines.push(`  egress ${e.ip}: ${e.entry.kind === 'server' ? `server ${e.entry.server}` : `slices of ${e.entry.sliceSize} ports`}`);
  for (const s of d.slices) lines.push(`  slice ${s.ip}/${s.slice}: ${s.owner} ${s.server}`);
  for (const w of d.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}
