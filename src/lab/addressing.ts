/**
 * The lab's IPv4 plan inside 192.0.2.0/24 (DESIGN §4), which is small, so every subnet is sized
 * to what it holds and aligned (a buddy split: largest blocks first, so none wastes a gap):
 *
 * - the Internet exchange LAN: every DC router, every city router and the Internet host on one
 *   bridge;
 * - one server LAN per data center: its router (.1) and its servers (.2, .3, …);
 * - the backbone LAN: every DC router, so a server reaches the servers of the other DCs.
 *
 * The eyeballs are not allocated but fixed: city c's /30 is 192.0.2.(192 + 4c)/30 at every lab
 * size (router .1, eyeball .2), so a GeoIP table can map each city's eyeball to its country
 * (EYEBALL_BLOCK, `eyeballSubnet`). Allocation therefore ends at 192.0.2.192;
 * 192.0.2.224–247 is free.
 *
 * 192.0.2.248/29 is never handed out: the agents' server↔tenant link pool (192.0.2.248/30, the
 * same on every server, since each server is its own namespace) and the tunnels' inner
 * addresses (192.0.2.252/31, as in examples/acme.yaml) live there.
 *
 * Customer routers are attached unnumbered: their public /32 (198.51.100.200+) on the uplink,
 * and an on-link route to the city router's address on each side, as compile/server.ts does for
 * its wires; that costs no subnet.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';

/** Base of the lab's IPv4 space. */
const BASE = ipv4ToInt('192.0.2.0');
/** First address not handed out: the fixed eyeball block starts here (and 192.0.2.248/29 is reserved, see above). */
const LIMIT = 192;

/** The eyeballs' fixed block: eight /30s, one per city in LAB_CITIES order. */
export const EYEBALL_BLOCK = '192.0.2.192/27';

/** City c's eyeball /30 (c from 0, at most 7): the same at every lab size. */
export function eyeballSubnet(c: number): Subnet {
  if (!Number.isInteger(c) || c < 0 || c > 7) throw new Error(`city index ${c}: the lab has at most 8 cities (checked by the plan first)`);
  return { path: `cities/${c}/eyeballs`, base: BASE + LIMIT + 4 * c, len: 30 };
}

/** The agents' link pool (netns-local on every server). */
export const LINK_POOL = '192.0.2.248/30';

/** A subnet asked for: who it is for and how many hosts it needs. */
export interface SubnetRequest {
  /** Path of what it is for, e.g. `ix`, `dcs/ams/lan`, `cities/lon/eyeball`. */
  readonly path: string;
  readonly hosts: number;
}

/** An allocated subnet. */
export interface Subnet {
  readonly path: string;
  /** Network address as an integer. */
  readonly base: number;
  readonly len: number;
}

/** The n-th host address of a subnet (1 = first usable) with its length, e.g. `192.0.2.33/28`. */
export function hostAddr(s: Subnet, n: number): string {
  return `${intToIpv4(s.base + n)}/${s.len}`;
}

/** The n-th host address alone. */
export function hostIp(s: Subnet, n: number): string {
  return intToIpv4(s.base + n);
}

/** The subnet as a CIDR. */
export function subnetCidr(s: Subnet): string {
  return `${intToIpv4(s.base)}/${s.len}`;
}

/** Smallest prefix length whose subnet holds `hosts` addresses besides network and broadcast. */
export function lenFor(hosts: number): number {
  let len = 30;
  while (len > 24 && 2 ** (32 - len) - 2 < hosts) len--;
  return len;
}

/**
 * Allocates every request in 192.0.2.0–192.0.2.191, largest first, each aligned to its size.
 * Fails naming the request that did not fit and the sizes to lower.
 */
export function allocate(requests: readonly SubnetRequest[], blame: string): Result<Map<string, Subnet>, LabError> {
  const sized = requests.map((r, i) => ({ ...r, i, len: lenFor(r.hosts) }));
  // Largest first; ties in request order, so the plan is stable.
  sized.sort((a, b) => a.len - b.len || a.i - b.i);
  const out = new Map<string, Subnet>();
  let next = 0;
  for (const r of sized) {
    const size = 2 ** (32 - r.len);
    if (2 ** (32 - r.len) - 2 < r.hosts) return err({ code: 'invalid', path: blame, message: `${r.path} needs ${r.hosts} addresses, more than a /24 holds; use a smaller lab` });
    next = Math.ceil(next / size) * size;
    if (next + size > LIMIT)
      return err({ code: 'invalid', path: blame, message: `${r.path} (/${r.len}) does not fit in 192.0.2.0–192.0.2.191 (above it: the eyeballs and the reserved 192.0.2.248/29); use fewer data centers, servers or cities` });
    out.set(r.path, { path: r.path, base: BASE + next, len: r.len });
    next += size;
  }
  return ok(out);
}

/** Dotted quad → integer. */
export function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** Integer → dotted quad. */
export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
