/**
 * The fake kernel: every API of the boundary, kept in memory. It refuses what Linux refuses, with
 * the same error codes (the contract suite runs the same cases on both), models the side effects
 * reconcilers meet (a link going down takes its single-path routes and IPv6 addresses along, a
 * deleted namespace takes the far ends of its veth pairs), and prints its whole state as
 * canonical, sorted `ip`/`nft` text with `dump()`, for golden files.
 *
 * What it does not model, on purpose: packets (counters only move through `count`), the local
 * table (255) and broadcast routes, the kernel's propagation between sysctls
 * (`ip_forward` → `conf.all.forwarding`), and gateways resolved through routes other than the
 * connected subnets of their link. differential.test.ts runs random programs on this and on
 * Linux and compares every result and the state read back.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, nsLabel, type KernelError } from './errors.ts';
import { checkAddrArgs, compareAddrs, defaultScope, type Addr, type AddrsApi } from './addrs.ts';
import { contains, formatCidr, formatIp, network, parseCidr, parseIp, isLinkLocal6, type Family } from './ipaddr.ts';
import { checkMove, checkVeth, notOurs, nsCheck, pruneLinks, vethOp, type Link, type LinksApi, type VethEnd } from './links.ts';
import { ALIAS_PREFIX, LINK_GROUP, linkOwner, ownerAlias, type Marks } from './marks.ts';
import { checkOurNetns, type NetnsApi, type NsRef } from './netns.ts';
import {
  checkTableRef,
  compareTables,
  countersOf,
  foreignTable,
  isObj,
  parseBatch,
  pruneTables,
  tableBatch,
  type Json,
  type NftApi,
  type NftCommand,
  type NftFamily,
  type NftJson,
  type NftTableRef,
} from './nft.ts';
import { compareHops, compareRoutes, foreignRoute, normalizeKey, normalizeRoute, pruneRoutes, routeOp, routePath, type Route, type RoutesApi } from './routes.ts';
import { compareRules, normalizeRule, pruneRules, ruleMatches, ruleText, type Rule, type RulesApi } from './rules.ts';
import { checkSysctlValue, sysctlPath, type SysctlApi } from './sysctl.ts';
import { checkLinkName, checkMtu, checkAlias, firstInvalid } from './validate.ts';

interface FLink {
  name: string;
  ifindex: number;
  kind: 'veth' | 'loopback';
  mtu: number;
  mac: string;
  /** Given at creation: printed in the dump (a generated one is not, it is not part of the config). */
  macGiven: boolean;
  indexGiven: boolean;
  up: boolean;
  alias: string | null;
  group: number;
  peer: { ns: NsRef; name: string } | null;
}

interface FAddr {
  link: string;
  family: Family;
  cidr: string;
  scope: string;
}

interface FHop {
  dev: string;
  via?: string;
  weight: number;
  dead: boolean;
  onlink?: true;
}

interface FRoute {
  family: Family;
  table: number;
  dst: string;
  metric: number;
  protocol: number;
  nexthops: FHop[];
}

interface FRule {
  family: Family;
  priority: number;
  table: number;
  fwmark?: number;
  fwmask?: number;
  /** One of the rules every namespace starts with (local, main, default). */
  builtin: boolean;
}

interface FObj {
  kind: string;
  body: { [key: string]: Json };
  handle: number;
}

interface FTable {
  family: NftFamily;
  name: string;
  handle: number;
  next: number;
  objs: FObj[];
}

interface FNs {
  links: Map<string, FLink>;
  nextIfindex: number;
  addrs: FAddr[];
  routes: FRoute[];
  rules: FRule[];
  sysctl: Map<string, string>;
  nft: Map<string, FTable>;
  nextTableHandle: number;
}

/** Objects without our marks, made the way an operator or another daemon would. For tests. */
export interface FakeForeign {
  /** A namespace, whatever its name (no prefix check). */
  netns(name: string): void;
  /** A veth pair in one namespace without our alias and group. */
  veth(ns: NsRef, a: string, b: string): Result<void, KernelError>;
  /** A route with another protocol number; its link must exist. */
  route(ns: NsRef, r: { table: number; dst: string; dev: string; protocol: number; metric?: number }): Result<void, KernelError>;
  /** A rule, whatever its priority and table. */
  rule(ns: NsRef, r: { family: Family; priority: number; table: number }): Result<void, KernelError>;
  /** An empty nft table, whatever its name. */
  nftTable(ns: NsRef, t: NftTableRef): Result<void, KernelError>;
}

/** The fake's extras beyond the kernel APIs. */
export interface FakeControl {
  /** The whole state as canonical `ip`/`nft` text, one command per line, sorted. */
  dump(): string;
  /** Makes objects that are not ours, as someone else would. */
  readonly foreign: FakeForeign;
  /**
   * Counts traffic: adds to a named counter, or to the counter statements of the rule whose
   * comment is `rule` (the fake carries no packets, so tests of counter readers say what passed).
   */
  count(ns: NsRef, table: NftTableRef, target: { counter: string } | { rule: string }, packets: number, bytes: number): Result<void, KernelError>;
}

/** The kernel APIs over one in-memory state. */
export interface FakeApis {
  readonly netns: NetnsApi;
  readonly links: LinksApi;
  readonly addrs: AddrsApi;
  readonly routes: RoutesApi;
  readonly rules: RulesApi;
  readonly sysctl: SysctlApi;
  readonly nft: NftApi;
  readonly control: FakeControl;
}

const MAIN_TABLE = 254;
const PROTO_KERNEL = 2;

/** Sysctls the fake knows, with their value in a new namespace and the range the kernel enforces. */
interface SysctlDef {
  readonly def: string;
  readonly min?: number;
  readonly max?: number;
}
const GLOBAL_SYSCTLS: Record<string, SysctlDef> = {
  'net.ipv4.ip_forward': { def: '0' },
  'net.ipv4.ip_nonlocal_bind': { def: '0' },
  'net.ipv4.fib_multipath_hash_policy': { def: '0', min: 0, max: 3 },
  'net.ipv4.fib_multipath_use_neigh': { def: '0', min: 0, max: 1 },
  'net.ipv6.fib_multipath_hash_policy': { def: '0', min: 0, max: 3 },
  'net.ipv6.ip_nonlocal_bind': { def: '0' },
};
/** Per-interface keys, under net.ipv4.conf.<if>. and net.ipv6.conf.<if>. (if: all, default, a link). */
const CONF_SYSCTLS: Record<'ipv4' | 'ipv6', Record<string, SysctlDef>> = {
  ipv4: { forwarding: { def: '0' }, rp_filter: { def: '0' }, accept_local: { def: '0' }, proxy_arp: { def: '0' }, arp_ignore: { def: '0' } },
  ipv6: { forwarding: { def: '0' }, disable_ipv6: { def: '0' }, accept_ra: { def: '1' }, keep_addr_on_down: { def: '0' } },
};

function newNs(): FNs {
  const lo: FLink = { name: 'lo', ifindex: 1, kind: 'loopback', mtu: 65536, mac: '00:00:00:00:00:00', macGiven: false, indexGiven: false, up: false, alias: null, group: 0, peer: null };
  const builtin = (family: Family, priority: number, table: number): FRule => ({ family, priority, table, builtin: true });
  return {
    links: new Map([['lo', lo]]),
    nextIfindex: 2,
    addrs: [],
    routes: [],
    rules: [builtin(4, 0, 255), builtin(4, 32766, 254), builtin(4, 32767, 253), builtin(6, 0, 255), builtin(6, 32766, 254)],
    sysctl: new Map(),
    nft: new Map(),
    nextTableHandle: 1,
  };
}

/** The fake's state and APIs. `marks` decides ownership exactly as for Linux. */
export function fakeApis(m: Marks): FakeApis {
  const host = newNs();
  const named = new Map<string, FNs>();
  let macSeq = 0;

  const get = (ns: NsRef): FNs | undefined => (ns === null ? host : named.get(ns));
  const nsMissing = (op: string, ns: NsRef): KernelError =>
    kernelError('not_found', op, null, `Cannot open network namespace ${JSON.stringify(ns)}: No such file or directory`, { path: `netns/${ns}` });
  const noDevice = (op: string, ns: NsRef, name: string): KernelError =>
    kernelError('not_found', op, ns, `Cannot find device ${JSON.stringify(name)}`, { path: `${nsLabel(ns)}/link/${name}` });
  /** The namespace, or the error Linux gives for a missing one. */
  const need = (op: string, ns: NsRef): FNs | KernelError => get(ns) ?? nsMissing(op, ns);

  const isErr = (v: unknown): v is KernelError => typeof v === 'object' && v !== null && 'code' in v && 'op' in v && 'message' in v;

  function carrier(l: FLink): boolean {
    if (!l.up) return false;
    if (l.peer === null) return true;
    return get(l.peer.ns)?.links.get(l.peer.name)?.up ?? false;
  }

  function allocIndex(s: FNs, wanted?: number): number | null {
    const used = new Set([...s.links.values()].map((l) => l.ifindex));
    if (wanted !== undefined) return used.has(wanted) ? null : wanted;
    while (used.has(s.nextIfindex)) s.nextIfindex++;
    return s.nextIfindex++;
  }

  function nextMac(): string {
    macSeq++;
    const b = [0x02, 0xae, (macSeq >> 24) & 0xff, (macSeq >> 16) & 0xff, (macSeq >> 8) & 0xff, macSeq & 0xff];
    return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
  }

  /** What the kernel does when a link goes administratively down. */
  function onDown(s: FNs, name: string): void {
    // IPv6 drops the addresses of a link that goes down (keep_addr_on_down is 0 by default).
    s.addrs = s.addrs.filter((a) => !(a.link === name && a.family === 6));
    killHops(s, name, [4, 6]);
  }

  /**
   * Single-path routes through the link go; multipath routes lose that next hop (marked dead)
   * and go when none is left. IPv4 does this on link down and also when a link loses its last
   * IPv4 address (fib_inetaddr_event → fib_disable_ip).
   */
  function killHops(s: FNs, name: string, families: readonly Family[]): void {
    s.routes = s.routes.filter((r) => {
      if (!families.includes(r.family)) return true;
      for (const h of r.nexthops) if (h.dev === name) h.dead = true;
      return !r.nexthops.every((h) => h.dead);
    });
  }

  /** Dead next hops on the link come back (link up, or IPv4 address added: fib_sync_up). */
  function reviveHops(s: FNs, name: string, families: readonly Family[]): void {
    for (const r of s.routes) if (families.includes(r.family)) for (const h of r.nexthops) if (h.dev === name) h.dead = false;
  }

  function onUp(s: FNs, l: FLink): void {
    // IPv4 revives dead next hops when the link comes up; IPv6 only once the link is also
    // ready (has carrier: addrconf_notify stops at "link is not ready" before rt6_sync_up).
    reviveHops(s, l.name, carrier(l) ? [4, 6] : [4]);
    if (l.kind === 'loopback') {
      // Bringing lo up gives it its addresses.
      for (const [cidr, family] of [
        ['127.0.0.1/8', 4],
        ['::1/128', 6],
      ] as const)
        if (!s.addrs.some((a) => a.link === 'lo' && a.cidr === cidr)) s.addrs.push({ link: 'lo', family, cidr, scope: 'host' });
    }
  }

  /** What the kernel does when a link leaves a namespace (deleted or moved away). */
  function onUnregister(s: FNs, name: string): void {
    // A link is closed before it is unregistered: an up link goes down first, which can kill a
    // multipath route whose other hops are dead already.
    if (s.links.get(name)?.up) killHops(s, name, [4, 6]);
    s.addrs = s.addrs.filter((a) => a.link !== name);
    s.routes = s.routes.filter((r) => {
      // IPv4 drops a multipath route with any next hop on the link; IPv6 keeps the siblings.
      if (r.family === 4) return !r.nexthops.some((h) => h.dev === name);
      r.nexthops = r.nexthops.filter((h) => h.dev !== name);
      return r.nexthops.length > 0;
    });
    for (const k of [...s.sysctl.keys()]) if (k.split('.')[3] === name && k.split('.')[2] === 'conf') s.sysctl.delete(k);
    s.links.delete(name);
  }

  function removeLink(ns: NsRef, name: string): void {
    const s = get(ns);
    const l = s?.links.get(name);
    if (!s || !l) return;
    onUnregister(s, name);
    if (l.peer !== null) {
      const ps = get(l.peer.ns);
      if (ps?.links.has(l.peer.name)) onUnregister(ps, l.peer.name);
    }
  }

  function toLink(ns: NsRef, l: FLink): Link {
    const owner = linkOwner(m, l.name, l.alias, l.group);
    let peer: Link['peer'] = null;
    if (l.peer !== null) {
      const p = get(l.peer.ns)?.links.get(l.peer.name);
      // A peer in the host namespace reads back as null, as on Linux: the host has no name.
      peer = { ns: l.peer.ns, ifindex: p?.ifindex ?? 0 };
    }
    return { name: l.name, ifindex: l.ifindex, kind: l.kind, mtu: l.mtu, mac: l.mac, up: l.up, carrier: carrier(l), alias: l.alias, peer, owned: owner !== null, owner };
  }

  // ---------------------------------------------------------------- netns
  const netns: NetnsApi = {
    async list() {
      return ok([...named.keys()].filter((n) => n.startsWith(m.prefix)).sort());
    },
    async exists(name) {
      const bad = firstInvalid('netns exists', null, `netns/${name}`, nsCheck(name));
      return bad ? err(bad) : ok(named.has(name));
    },
    async add(name) {
      const op = `netns add ${name}`;
      const bad = checkOurNetns(m, op, name);
      if (bad) return err(bad);
      if (named.has(name)) return err(kernelError('exists', op, null, `Cannot create namespace file "/run/netns/${name}": File exists`, { path: `netns/${name}` }));
      named.set(name, newNs());
      return ok(undefined);
    },
    async delete(name) {
      const op = `netns delete ${name}`;
      const bad = checkOurNetns(m, op, name);
      if (bad) return err(bad);
      const s = named.get(name);
      if (!s) return ok(undefined);
      for (const l of [...s.links.values()]) removeLink(name, l.name);
      named.delete(name);
      return ok(undefined);
    },
    async prune(keep) {
      const gone: string[] = [];
      for (const name of [...named.keys()].sort()) {
        if (!name.startsWith(m.prefix) || keep.includes(name)) continue;
        const res = await netns.delete(name);
        if (!res.ok) return res;
        gone.push(name);
      }
      return ok(gone);
    },
  };

  // ---------------------------------------------------------------- links
  const links: LinksApi = {
    async list(ns) {
      const op = 'link show';
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      return ok([...s.links.values()].map((l) => toLink(ns, l)).sort((a, b) => a.ifindex - b.ifindex));
    },
    async get(ns, name) {
      const res = await links.list(ns);
      return res.ok ? ok(res.value.find((l) => l.name === name) ?? null) : res;
    },
    async addVeth(spec) {
      const op = vethOp(spec);
      const bad = checkVeth(m, spec, op);
      if (bad) return err(bad);
      const { a, b } = spec;
      const sa = need(op, a.ns);
      if (isErr(sa)) return err(sa);
      const sb = get(b.ns);
      if (!sb) return err(kernelError('not_found', op, a.ns, `argument ${JSON.stringify(b.ns)} is wrong: Invalid "netns" value`, { path: `netns/${b.ns}` }));
      const exists = (what: string) => err(kernelError('exists', op, a.ns, `File exists (${what})`, { path: `${nsLabel(a.ns)}/link/${a.name}` }));
      if (sa.links.has(a.name)) return exists(`${nsLabel(a.ns)} has a link ${a.name}`);
      if (sb.links.has(b.name)) return exists(`${nsLabel(b.ns)} has a link ${b.name}`);
      if (a.ifindex !== undefined && allocIndex(sa, a.ifindex) === null) return exists(`ifindex ${a.ifindex} is taken in ${nsLabel(a.ns)}`);
      if (b.ifindex !== undefined && allocIndex(sb, b.ifindex) === null) return exists(`ifindex ${b.ifindex} is taken in ${nsLabel(b.ns)}`);
      if (sa === sb && a.ifindex !== undefined && a.ifindex === b.ifindex) return exists(`both ends want ifindex ${a.ifindex}`);
      const make = (e: VethEnd, s: FNs, peer: VethEnd): FLink => ({
        name: e.name,
        ifindex: allocIndex(s, e.ifindex) as number,
        kind: 'veth',
        mtu: e.mtu ?? 1500,
        mac: e.mac ?? nextMac(),
        macGiven: e.mac !== undefined,
        indexGiven: e.ifindex !== undefined,
        up: false,
        alias: ownerAlias(spec.owner),
        group: LINK_GROUP,
        peer: { ns: peer.ns, name: peer.name },
      });
      const la = make(a, sa, b);
      sa.links.set(a.name, la);
      sb.links.set(b.name, make(b, sb, a));
      return ok(undefined);
    },
    async setUp(ns, name, up) {
      const op = `link set ${name} ${up ? 'up' : 'down'}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), checkLinkName(name));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const l = s.links.get(name);
      if (!l) return err(noDevice(op, ns, name));
      if (l.up === up) return ok(undefined);
      const peer = l.peer === null ? undefined : get(l.peer.ns)?.links.get(l.peer.name);
      l.up = up;
      if (up) onUp(s, l);
      else onDown(s, name);
      // The peer gains carrier now: IPv6 revives its dead next hops on that event (see onUp).
      if (up && peer?.up && l.peer !== null) reviveHops(get(l.peer.ns) as FNs, peer.name, [6]);
      return ok(undefined);
    },
    async setMtu(ns, name, mtu) {
      const op = `link set ${name} mtu ${mtu}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), checkLinkName(name), checkMtu(mtu));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const l = s.links.get(name);
      if (!l) return err(noDevice(op, ns, name));
      if (l.kind === 'veth' && mtu > 65535)
        return err(kernelError('invalid', op, ns, 'mtu greater than device maximum', { path: `${nsLabel(ns)}/link/${name}`, remedy: 'the link refuses this MTU (veth allows 68–65535)' }));
      l.mtu = mtu;
      return ok(undefined);
    },
    async setAlias(ns, name, alias) {
      const op = `link set ${name} alias ${JSON.stringify(alias ?? '')}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), checkLinkName(name), alias === null ? null : checkAlias(alias));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const l = s.links.get(name);
      if (!l) return err(noDevice(op, ns, name));
      l.alias = alias === null || alias === '' ? null : alias;
      return ok(undefined);
    },
    async move(ns, name, to) {
      const op = `link set ${name} netns ${nsLabel(to)}`;
      const path = `${nsLabel(ns)}/link/${name}`;
      const bad = checkMove(op, ns, name, to);
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const l = s.links.get(name);
      if (!l) return err(kernelError('not_found', op, ns, `no link ${name}`, { path }));
      if (linkOwner(m, l.name, l.alias, l.group) === null) return err(notOurs(op, ns, path));
      const t = get(to);
      if (!t) return err(kernelError('not_found', op, ns, `argument ${JSON.stringify(to)} is wrong: Invalid "netns" value`, { path: `netns/${to}` }));
      if (t.links.has(name)) return err(kernelError('exists', op, ns, `File exists (${nsLabel(to)} has a link ${name})`, { path }));
      const moved: FLink = { ...l, up: false, ifindex: allocIndex(t, l.ifindex) ?? (allocIndex(t) as number) };
      onUnregister(s, name);
      t.links.set(name, moved);
      if (l.peer !== null) {
        const p = get(l.peer.ns)?.links.get(l.peer.name);
        if (p) p.peer = { ns: to, name };
      }
      return ok(undefined);
    },
    async delete(ns, name) {
      const op = `link delete ${name}`;
      const path = `${nsLabel(ns)}/link/${name}`;
      const bad = firstInvalid(op, ns, path, nsCheck(ns), checkLinkName(name));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const l = s.links.get(name);
      if (!l) return ok(undefined);
      if (linkOwner(m, l.name, l.alias, l.group) === null) return err(notOurs(op, ns, path));
      removeLink(ns, name);
      return ok(undefined);
    },
    async prune(ns, keep) {
      return pruneLinks(links, ns, keep);
    },
  };

  // ---------------------------------------------------------------- addrs
  const addrs: AddrsApi = {
    async list(ns, link) {
      const op = link === undefined ? 'addr show' : `addr show dev ${link}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), link === undefined ? null : checkLinkName(link));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      if (link !== undefined && !s.links.has(link)) return err(kernelError('not_found', op, ns, `Device ${JSON.stringify(link)} does not exist`, { path: `${nsLabel(ns)}/link/${link}` }));
      const out: Addr[] = s.addrs.filter((a) => link === undefined || a.link === link).map((a) => ({ link: a.link, family: a.family, cidr: a.cidr, scope: a.scope }));
      return ok(out.sort(compareAddrs));
    },
    async add(ns, link, cidr) {
      const op = `addr add ${cidr} dev ${link}`;
      const c = checkAddrArgs(op, ns, link, cidr);
      if (isErr(c)) return err(c);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      if (!s.links.has(link)) return err(noDevice(op, ns, link));
      const text = formatCidr(c);
      const path = `${nsLabel(ns)}/link/${link}/addr/${text}`;
      const same = s.addrs.find((a) => a.link === link && (c.family === 4 ? a.cidr === text : a.family === 6 && a.cidr.split('/')[0] === formatIp(c)));
      if (same) return err(kernelError('exists', op, ns, 'File exists', { path }));
      s.addrs.push({ link, family: c.family, cidr: text, scope: defaultScope(c) });
      if (c.family === 4 && s.links.get(link)?.up) reviveHops(s, link, [4]);
      return ok(undefined);
    },
    async delete(ns, link, cidr) {
      const op = `addr del ${cidr} dev ${link}`;
      const c = checkAddrArgs(op, ns, link, cidr);
      if (isErr(c)) return err(c);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      if (!s.links.has(link)) return err(kernelError('not_found', op, ns, `no link ${link}`, { path: `${nsLabel(ns)}/link/${link}/addr/${formatCidr(c)}` }));
      const text = formatCidr(c);
      const i = s.addrs.findIndex((a) => a.link === link && a.cidr === text);
      if (i < 0) return ok(undefined);
      // An IPv4 primary (the first address of its subnet on the link) takes its secondaries.
      const net = formatCidr(network(c));
      const sameNet = (a: FAddr) => a.link === link && a.family === 4 && formatCidr(network(parseCidr(a.cidr) ?? c)) === net;
      const primary = c.family === 4 && s.addrs.findIndex(sameNet) === i;
      s.addrs = s.addrs.filter((a, j) => j !== i && !(primary && sameNet(a)));
      if (c.family === 4 && !s.addrs.some((a) => a.link === link && a.family === 4)) killHops(s, link, [4]);
      return ok(undefined);
    },
  };

  // ---------------------------------------------------------------- routes
  /** The connected routes the kernel derives from addresses on up links (main table only). */
  function connected(s: FNs): FRoute[] {
    const out: FRoute[] = [];
    for (const a of s.addrs) {
      const l = s.links.get(a.link);
      const c = parseCidr(a.cidr);
      if (!l || !l.up || l.kind === 'loopback' || !c || c.len === (c.family === 4 ? 32 : 128)) continue;
      const dst = formatCidr(network(c));
      if (out.some((r) => r.dst === dst && r.nexthops[0]?.dev === a.link)) continue;
      out.push({ family: c.family, table: MAIN_TABLE, dst, metric: c.family === 4 ? 0 : 256, protocol: PROTO_KERNEL, nexthops: [{ dev: a.link, weight: 1, dead: false }] });
    }
    return out;
  }

  function toRoute(r: FRoute): Route {
    return {
      family: r.family,
      table: r.table,
      dst: r.dst,
      metric: r.metric,
      protocol: r.protocol,
      type: 'unicast',
      nexthops: r.nexthops.map((h) => ({ dev: h.dev, ...(h.via !== undefined ? { via: h.via } : {}), weight: r.nexthops.length === 1 ? 1 : h.weight, dead: h.dead, ...(h.onlink ? { onlink: true as const } : {}) })).sort(compareHops),
      owned: r.protocol === m.routeProto,
    };
  }

  /** Checks a next hop as the kernel does: the link exists and is up, the gateway is on it. */
  function checkHop(op: string, ns: NsRef, s: FNs, path: string, family: Family, h: { dev: string; via?: string; onlink?: true }, table?: number): KernelError | null {
    const l = s.links.get(h.dev);
    if (!l) return noDevice(op, ns, h.dev);
    const remedy = 'bring the link up, and make sure each gateway is on a subnet of its link';
    if (!l.up) return kernelError('invalid', op, ns, 'Device for nexthop is not up', { path, remedy });
    if (h.via === undefined) return null;
    const gw = parseIp(h.via);
    if (!gw) return null;
    if (family === 6 && isLinkLocal6(gw)) return null;
    // onlink: the kernel takes the gateway as on the link, whatever its subnets.
    if (h.onlink) return null;
    const onLink = s.addrs.some((a) => {
      const c = parseCidr(a.cidr);
      return a.link === h.dev && c !== null && c.family === family && contains(c, gw);
    });
    if (onLink) return null;
    // As the kernel does (fib_check_nh_v4_gw), a gateway is also valid when a link route of the
    // route's own table covers it on that device (a /32 peer address, no connected subnet).
    const viaTable = table !== undefined && s.routes.some((r) => {
      const c = parseCidr(r.dst);
      return r.table === table && r.family === family && r.nexthops.length === 1 && r.nexthops[0]?.dev === h.dev && r.nexthops[0].via === undefined && c !== null && contains(c, gw);
    });
    if (viaTable) return null;
    return kernelError('invalid', op, ns, family === 4 ? 'Nexthop has invalid gateway' : 'No route to host', { path, remedy });
  }

  const routes: RoutesApi = {
    async list(ns, table) {
      const op = `route show table ${table}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), Number.isInteger(table) && table >= 1 && table <= 0xffffffff ? null : `table ${table} must be an integer in 1–4294967295`);
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const mine = s.routes.filter((r) => r.table === table);
      const derived = table === MAIN_TABLE ? connected(s) : [];
      return ok([...mine, ...derived].map(toRoute).sort(compareRoutes));
    },
    async replace(ns, spec) {
      const op = routeOp('replace', spec);
      const r = normalizeRoute(op, ns, spec);
      if (isErr(r)) return err(r);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const path = routePath(ns, spec);
      // iproute2 resolves every device name before it sends anything, so a missing link wins
      // over a down one or an off-link gateway, wherever it is in the list.
      const missing = r.nexthops.find((h) => !s.links.has(h.dev));
      if (missing) return err(noDevice(op, ns, missing.dev));
      for (const h of r.nexthops) {
        const bad = checkHop(op, ns, s, path, r.family, h, r.table);
        if (bad) return err(bad);
      }
      const same = (x: FRoute) => x.family === r.family && x.table === r.table && x.dst === r.dst && x.metric === r.metric;
      const clash = [...s.routes, ...(r.table === MAIN_TABLE ? connected(s) : [])].find((x) => same(x) && x.protocol !== m.routeProto);
      if (clash) return err(foreignRoute(op, ns, path, clash.protocol));
      s.routes = s.routes.filter((x) => !same(x));
      s.routes.push({ family: r.family, table: r.table, dst: r.dst, metric: r.metric, protocol: m.routeProto, nexthops: r.nexthops.map((h) => ({ ...h, dead: false })) });
      return ok(undefined);
    },
    async delete(ns, key) {
      const op = routeOp('delete', key);
      const k = normalizeKey(op, ns, key);
      if (isErr(k)) return err(k);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      s.routes = s.routes.filter((x) => !(x.family === k.family && x.table === k.table && x.dst === k.dst && x.metric === k.metric && x.protocol === m.routeProto));
      return ok(undefined);
    },
    async prune(ns, table, keep) {
      return pruneRoutes(routes, ns, table, keep);
    },
  };

  // ---------------------------------------------------------------- rules
  const toRule = (r: FRule): Rule => ({
    family: r.family,
    priority: r.priority,
    action: 'lookup',
    table: r.table,
    ...(r.fwmark !== undefined ? { fwmark: r.fwmark, fwmask: r.fwmask ?? 0xffffffff } : {}),
    selectors: [],
    owned: !r.builtin && r.priority >= m.rulePriorities.min && r.priority <= m.rulePriorities.max && r.table >= m.tables.min && r.table <= m.tables.max,
  });

  const rules: RulesApi = {
    async list(ns) {
      const bad = firstInvalid('rule show', ns, undefined, nsCheck(ns));
      if (bad) return err(bad);
      const s = need('rule show', ns);
      if (isErr(s)) return err(s);
      return ok(s.rules.map(toRule).sort(compareRules));
    },
    async add(ns, spec) {
      const op = `rule add ${ruleText(spec)}`;
      const n = normalizeRule(m, op, ns, spec);
      if (isErr(n)) return err(n);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      if (s.rules.some((r) => ruleMatches(toRule(r), n))) return err(kernelError('exists', op, ns, 'File exists', { path: `${nsLabel(ns)}/rule/${n.family}/${n.priority}` }));
      s.rules.push({ ...n, builtin: false });
      return ok(undefined);
    },
    async delete(ns, spec) {
      const op = `rule del ${ruleText(spec)}`;
      const n = normalizeRule(m, op, ns, spec);
      if (isErr(n)) return err(n);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const i = s.rules.findIndex((r) => ruleMatches(toRule(r), n));
      if (i >= 0) s.rules.splice(i, 1);
      return ok(undefined);
    },
    async prune(ns, keep) {
      return pruneRules(m, rules, ns, keep);
    },
  };

  // ---------------------------------------------------------------- sysctl
  /** The definition of a key (dotted, from its /proc/sys path), or why it does not exist. */
  function sysctlDef(s: FNs, path: string): { key: string; def: SysctlDef } | null {
    const parts = path.replace(/^\/proc\/sys\//, '').split('/');
    const key = parts.join('.');
    const g = GLOBAL_SYSCTLS[key];
    if (g) return { key, def: g };
    const [net, fam, conf, dev, name, ...rest] = parts;
    if (net !== 'net' || (fam !== 'ipv4' && fam !== 'ipv6') || conf !== 'conf' || dev === undefined || name === undefined || rest.length > 0) return null;
    if (dev !== 'all' && dev !== 'default' && !s.links.has(dev)) return null;
    const d = CONF_SYSCTLS[fam][name];
    return d ? { key, def: d } : null;
  }

  const sysctl: SysctlApi = {
    async get(ns, key) {
      const op = `sysctl ${key}`;
      const path = sysctlPath(op, ns, key);
      if (typeof path !== 'string') return err(path);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const d = sysctlDef(s, path);
      if (!d) return err(kernelError('not_found', op, ns, `cat: ${path}: No such file or directory`, { path: `${nsLabel(ns)}/sysctl/${key}`, remedy: 'check the key name (`sysctl -a` inside the namespace lists them)' }));
      return ok(s.sysctl.get(d.key) ?? d.def.def);
    },
    async set(ns, key, value) {
      const text = String(value);
      const op = `sysctl -w ${key}=${text}`;
      const path = sysctlPath(op, ns, key);
      if (typeof path !== 'string') return err(path);
      const bad = checkSysctlValue(op, ns, key, text);
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const d = sysctlDef(s, path);
      if (!d) return err(kernelError('not_found', op, ns, `tee: ${path}: No such file or directory`, { path: `${nsLabel(ns)}/sysctl/${key}` }));
      const v = text.trim();
      const n = Number(v);
      if (!/^-?\d+$/.test(v) || (d.def.min !== undefined && n < d.def.min) || (d.def.max !== undefined && n > d.def.max))
        return err(kernelError('invalid', op, ns, `tee: ${path}: Invalid argument`, { path: `${nsLabel(ns)}/sysctl/${key}` }));
      // Only values that differ from a new namespace's are kept, so the dump shows what was changed.
      if (String(n) === d.def.def) s.sysctl.delete(d.key);
      else s.sysctl.set(d.key, String(n));
      return ok(undefined);
    },
  };

  // ---------------------------------------------------------------- nft
  const tkey = (family: string, name: string) => `${family} ${name}`;

  /** Runs a parsed batch against a copy of the tables; the copy replaces the original only if all of it worked. */
  function runBatch(op: string, ns: NsRef, s: FNs, batch: NftJson): KernelError | null {
    const cmds = parseBatch(m, op, ns, batch);
    if (isErr(cmds)) return cmds;
    const tables = structuredClone(s.nft);
    let nextTable = s.nextTableHandle;
    const path = `${nsLabel(ns)}/nft`;
    const fail = (code: 'not_found' | 'exists' | 'invalid' | 'unsupported', reason: string) =>
      kernelError(code, op, ns, reason, {
        path,
        remedy:
          code === 'not_found'
            ? 'the batch refers to a table, chain or set that does not exist (create it earlier in the same batch); nothing was applied'
            : code === 'exists'
              ? 'a `create` met an existing object (use `add`, which is idempotent); nothing was applied'
              : 'nft or the kernel refused a command; nothing was applied; check it with `nft -j -c -f`',
      });
    for (const c of cmds) {
      const k = tkey(c.family, c.table);
      const t = tables.get(k);
      const body: { [key: string]: Json } = {};
      for (const [key, v] of Object.entries(c.obj)) if (key !== 'handle' && key !== 'index' && key !== 'position') body[key] = v;
      if (c.kind === 'table') {
        if (c.verb === 'add' || c.verb === 'create') {
          if (t && c.verb === 'create') return fail('exists', 'Could not process rule: File exists');
          if (!t) tables.set(k, { family: c.family, name: c.table, handle: nextTable++, next: 1, objs: [] });
        } else if (c.verb === 'delete') {
          if (!t) return fail('not_found', 'Could not process rule: No such file or directory');
          tables.delete(k);
        } else if (c.verb === 'flush') {
          if (!t) return fail('not_found', 'Could not process rule: No such file or directory');
          t.objs = t.objs.filter((o) => o.kind !== 'rule');
        } else return fail('invalid', `${c.verb} table is not a valid command`);
        continue;
      }
      if (!t) return fail('not_found', 'Could not process rule: No such file or directory');
      const tbl = t;
      const named = (kind: string, name: Json | undefined) => tbl.objs.find((o) => o.kind === kind && o.body.name === name);
      if (c.kind === 'rule') {
        const chain = named('chain', body.chain);
        if (!chain) return fail('not_found', 'Could not process rule: No such file or directory');
        if (c.verb === 'add' || c.verb === 'insert' || c.verb === 'create') {
          const missing = missingRefs(tbl, body.expr ?? null);
          if (missing) return fail('not_found', `Could not process rule: No such file or directory (${missing})`);
          const rule: FObj = { kind: 'rule', body: { ...body, expr: normalizeExpr(body.expr ?? []) }, handle: tbl.next++ };
          if (c.verb === 'insert') {
            const first = tbl.objs.findIndex((o) => o.kind === 'rule' && o.body.chain === body.chain);
            tbl.objs.splice(first < 0 ? tbl.objs.length : first, 0, rule);
          } else tbl.objs.push(rule);
        } else if (c.verb === 'delete' || c.verb === 'replace') {
          const i = tbl.objs.findIndex((o) => o.kind === 'rule' && o.handle === c.obj.handle);
          if (i < 0) return fail('not_found', 'Could not process rule: No such file or directory');
          if (c.verb === 'delete') tbl.objs.splice(i, 1);
          else {
            const missing = missingRefs(tbl, body.expr ?? null);
            if (missing) return fail('not_found', `Could not process rule: No such file or directory (${missing})`);
            tbl.objs[i] = { kind: 'rule', body: { ...body, expr: normalizeExpr(body.expr ?? []) }, handle: c.obj.handle as number };
          }
        } else return fail('invalid', `${c.verb} rule is not a valid command`);
        continue;
      }
      if (c.kind === 'element') {
        const set = named('set', body.name) ?? named('map', body.name);
        if (!set) return fail('not_found', 'Could not process rule: No such file or directory');
        const have = Array.isArray(set.body.elem) ? (set.body.elem as readonly Json[]) : [];
        const given = Array.isArray(body.elem) ? (body.elem as readonly Json[]) : [];
        const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);
        if (c.verb === 'add' || c.verb === 'create') set.body = { ...set.body, elem: [...have, ...given.filter((g) => !have.some((h) => same(g, h)))] };
        else if (c.verb === 'delete') set.body = { ...set.body, elem: have.filter((h) => !given.some((g) => same(g, h))) };
        else return fail('invalid', `${c.verb} element is not a valid command`);
        continue;
      }
      // Chains, sets, maps and stateful objects (counter, quota …): named objects of the table.
      if (typeof body.name !== 'string') return fail('invalid', `${c.kind} needs a name`);
      const cur = named(c.kind, body.name);
      if (c.verb === 'add' || c.verb === 'create') {
        if (cur && c.verb === 'create') return fail('exists', 'Could not process rule: File exists');
        if (cur) {
          if (c.kind === 'chain' && body.policy !== undefined) cur.body = { ...cur.body, policy: body.policy };
          continue;
        }
        const fresh = c.kind === 'counter' ? { packets: 0, bytes: 0, ...body } : body;
        tbl.objs.push({ kind: c.kind, body: fresh, handle: tbl.next++ });
      } else if (c.verb === 'delete') {
        if (!cur) return fail('not_found', 'Could not process rule: No such file or directory');
        const used = c.kind === 'chain' && tbl.objs.some((o) => o.kind === 'rule' && (o.body.chain === body.name || refsOf(o.body.expr ?? null).chains.includes(body.name as string)));
        if (used) return fail('invalid', 'Could not process rule: Device or resource busy');
        tbl.objs = tbl.objs.filter((o) => o !== cur);
      } else if (c.verb === 'flush') {
        if (!cur) return fail('not_found', 'Could not process rule: No such file or directory');
        if (c.kind === 'chain') tbl.objs = tbl.objs.filter((o) => !(o.kind === 'rule' && o.body.chain === body.name));
        else cur.body = { ...cur.body, elem: [] };
      } else return fail('invalid', `${c.verb} ${c.kind} is not a valid command`);
    }
    s.nft = tables;
    s.nextTableHandle = nextTable;
    return null;
  }

  function listing(t: FTable): NftJson {
    const order = (o: FObj) => (o.kind === 'chain' ? 2 : o.kind === 'rule' ? 3 : o.kind === 'set' || o.kind === 'map' ? 1 : 0);
    const chains = t.objs.filter((o) => o.kind === 'chain').map((o) => o.body.name);
    const sorted = [...t.objs].sort((a, b) => {
      const d = order(a) - order(b);
      if (d !== 0) return d;
      if (a.kind === 'rule' && b.kind === 'rule') return chains.indexOf(a.body.chain ?? null) - chains.indexOf(b.body.chain ?? null);
      return a.kind === 'rule' ? 0 : a.handle - b.handle;
    });
    return {
      nftables: [{ table: { family: t.family, name: t.name, handle: t.handle } }, ...sorted.map((o): NftCommand => ({ [o.kind]: { family: t.family, table: t.name, ...o.body, handle: o.handle } }))],
    };
  }

  const nft: NftApi = {
    async apply(ns, batch) {
      const op = `nft -j -f (${Array.isArray(batch?.nftables) ? batch.nftables.length : 0} commands)`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns));
      if (bad) return err(bad);
      const cmds = parseBatch(m, op, ns, batch);
      if (isErr(cmds)) return err(cmds);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const e = runBatch(op, ns, s, batch);
      return e ? err(e) : ok(undefined);
    },
    async applyTable(ns, spec) {
      const op = `nft apply table ${spec.family} ${spec.name}`;
      const batch = tableBatch(m, op, ns, spec);
      if (isErr(batch)) return err(batch);
      const res = await nft.apply(ns, batch);
      return res.ok ? res : err({ ...res.error, op, message: res.error.message.replace(/^nft -j -f \(\d+ commands\)/, op) });
    },
    async counters(ns, t) {
      const res = await nft.listTable(ns, t);
      return res.ok ? ok(countersOf(res.value)) : res;
    },
    async listTable(ns, t) {
      const op = `nft list table ${t.family} ${t.name}`;
      const bad = checkTableRef(op, ns, t);
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const tbl = s.nft.get(tkey(t.family, t.name));
      if (!tbl) return err(kernelError('not_found', op, ns, 'No such file or directory', { path: `${nsLabel(ns)}/nft/${t.family}/${t.name}` }));
      return ok(structuredClone(listing(tbl)));
    },
    async listTables(ns) {
      const op = 'nft list tables';
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns));
      if (bad) return err(bad);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      return ok([...s.nft.values()].map((t) => ({ family: t.family, name: t.name, owned: t.name.startsWith(m.prefix) })).sort(compareTables));
    },
    async deleteTable(ns, t) {
      const op = `nft delete table ${t.family} ${t.name}`;
      const bad = checkTableRef(op, ns, t);
      if (bad) return err(bad);
      if (!t.name.startsWith(m.prefix)) return err(foreignTable(op, ns, t));
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      s.nft.delete(tkey(t.family, t.name));
      return ok(undefined);
    },
    async prune(ns, keep) {
      return pruneTables(nft, ns, keep);
    },
  };

  // ---------------------------------------------------------------- control
  const foreign: FakeForeign = {
    netns(name) {
      if (!named.has(name)) named.set(name, newNs());
    },
    veth(ns, a, b) {
      const s = need('link add (foreign)', ns);
      if (isErr(s)) return err(s);
      if (s.links.has(a) || s.links.has(b)) return err(kernelError('exists', 'link add (foreign)', ns, 'File exists'));
      const mk = (name: string, peer: string): FLink => ({
        name,
        ifindex: allocIndex(s) as number,
        kind: 'veth',
        mtu: 1500,
        mac: nextMac(),
        macGiven: false,
        indexGiven: false,
        up: false,
        alias: null,
        group: 0,
        peer: { ns, name: peer },
      });
      s.links.set(a, mk(a, b));
      s.links.set(b, mk(b, a));
      return ok(undefined);
    },
    route(ns, r) {
      const op = `route add ${r.dst} table ${r.table} proto ${r.protocol} (foreign)`;
      const k = normalizeKey(op, ns, r);
      if (isErr(k)) return err(k);
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const bad = checkHop(op, ns, s, routePath(ns, r), k.family, { dev: r.dev });
      if (bad) return err(bad);
      s.routes.push({ ...k, protocol: r.protocol, nexthops: [{ dev: r.dev, weight: 1, dead: false }] });
      return ok(undefined);
    },
    rule(ns, r) {
      const s = need('rule add (foreign)', ns);
      if (isErr(s)) return err(s);
      s.rules.push({ ...r, builtin: false });
      return ok(undefined);
    },
    nftTable(ns, t) {
      const s = need('nft add table (foreign)', ns);
      if (isErr(s)) return err(s);
      const k = tkey(t.family, t.name);
      if (!s.nft.has(k)) s.nft.set(k, { family: t.family, name: t.name, handle: s.nextTableHandle++, next: 1, objs: [] });
      return ok(undefined);
    },
  };

  const control: FakeControl = {
    dump: () => dumpState(host, named),
    foreign,
    count(ns, t, target, packets, bytes) {
      const op = `count ${t.family} ${t.name}`;
      const s = need(op, ns);
      if (isErr(s)) return err(s);
      const tbl = s.nft.get(tkey(t.family, t.name));
      if (!tbl) return err(kernelError('not_found', op, ns, `no table ${t.family} ${t.name}`));
      const hit = (c: { [key: string]: Json }) => ({ ...c, packets: Number(c.packets ?? 0) + packets, bytes: Number(c.bytes ?? 0) + bytes });
      let found = false;
      for (const o of tbl.objs) {
        if ('counter' in target && o.kind === 'counter' && o.body.name === target.counter) {
          o.body = hit(o.body);
          found = true;
        }
        if ('rule' in target && o.kind === 'rule' && o.body.comment === target.rule && Array.isArray(o.body.expr)) {
          o.body = { ...o.body, expr: (o.body.expr as readonly Json[]).map((x) => (isObj(x) && isObj(x.counter) ? { counter: hit(x.counter) } : x)) };
          found = true;
        }
      }
      return found ? ok(undefined) : err(kernelError('not_found', op, ns, `no counter ${JSON.stringify(target)}`));
    },
  };

  return { netns, links, addrs, routes, rules, sysctl, nft, control };
}

/** `{"counter": null}` reads back with its values, as nft lists it. */
function normalizeExpr(expr: Json): Json {
  if (!Array.isArray(expr)) return expr;
  return (expr as readonly Json[]).map((x) => (isObj(x) && 'counter' in x && x.counter === null ? { counter: { packets: 0, bytes: 0 } } : x));
}

/** The chains, named counters and sets (`@name`) a rule's expressions refer to. */
function refsOf(expr: Json): { chains: string[]; counters: string[]; sets: string[] } {
  const out = { chains: [] as string[], counters: [] as string[], sets: [] as string[] };
  const walk = (v: Json): void => {
    if (Array.isArray(v)) {
      for (const x of v as readonly Json[]) walk(x);
      return;
    }
    if (typeof v === 'string') {
      if (v.startsWith('@')) out.sets.push(v.slice(1));
      return;
    }
    if (!isObj(v)) return;
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'jump' || k === 'goto') && isObj(x) && typeof x.target === 'string') out.chains.push(x.target);
      else if (k === 'counter' && typeof x === 'string') out.counters.push(x);
      else walk(x);
    }
  };
  walk(expr);
  return out;
}

function missingRefs(t: FTable, expr: Json): string | null {
  const r = refsOf(expr);
  const has = (kinds: string[], name: string) => t.objs.some((o) => kinds.includes(o.kind) && o.body.name === name);
  for (const c of r.chains) if (!has(['chain'], c)) return `chain ${c}`;
  for (const c of r.counters) if (!has(['counter'], c)) return `counter ${c}`;
  for (const s of r.sets) if (!has(['set', 'map'], s)) return `set ${s}`;
  return null;
}

/** JSON with object keys sorted, so equal objects print equal. */
function stableJson(v: Json): string {
  if (Array.isArray(v)) return `[${(v as readonly Json[]).map(stableJson).join(',')}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(v[k] ?? null)}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** Counter values change on their own; the dump leaves them out. */
function withoutCounts(v: Json): Json {
  if (Array.isArray(v)) return (v as readonly Json[]).map(withoutCounts);
  if (!isObj(v)) return v;
  const out: { [key: string]: Json } = {};
  for (const [k, x] of Object.entries(v)) if (k !== 'packets' && k !== 'bytes') out[k] = withoutCounts(x);
  return out;
}

function dumpState(host: FNs, named: Map<string, FNs>): string {
  const names = [...named.keys()].sort();
  const lines: string[] = names.map((n) => `netns add ${n}`);
  const order: [NsRef, FNs][] = [[null, host], ...names.map((n): [NsRef, FNs] => [n, named.get(n) as FNs])];
  const rank = (ns: NsRef) => (ns === null ? -1 : names.indexOf(ns));
  const ipp = (ns: NsRef) => (ns === null ? 'ip' : `ip -n ${ns}`);
  const exec = (ns: NsRef, cmd: string) => (ns === null ? cmd : `ip netns exec ${ns} ${cmd}`);
  const sorted = (xs: string[]) => xs.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [ns, s] of order) {
    const linkLines: string[] = [];
    const setLines: string[] = [];
    for (const l of [...s.links.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (l.kind === 'veth' && l.peer !== null) {
        const p = named.get(l.peer.ns ?? '') ?? (l.peer.ns === null ? host : undefined);
        const pl = p?.links.get(l.peer.name);
        // Each pair once, from the end that comes first (host first, then by namespace, then name).
        const first = rank(ns) < rank(l.peer.ns) || (ns === l.peer.ns && l.name < l.peer.name);
        if (first && pl) {
          const end = (x: FLink) =>
            [x.name, x.indexGiven ? `index ${x.ifindex}` : '', x.macGiven ? `address ${x.mac}` : '', x.mtu !== 1500 ? `mtu ${x.mtu}` : '', x.group !== 0 ? `group ${x.group}` : '']
              .filter((w) => w !== '')
              .join(' ');
          const where = l.peer.ns === ns ? '' : ` netns ${l.peer.ns ?? 'host'}`;
          linkLines.push(`${ipp(ns)} link add ${end(l)} type veth peer name ${end(pl)}${where}`);
        }
      } else if (l.kind === 'loopback' && l.mtu !== 65536) setLines.push(`${ipp(ns)} link set ${l.name} mtu ${l.mtu}`);
      if (l.alias !== null) setLines.push(`${ipp(ns)} link set ${l.name} alias ${l.alias.startsWith(ALIAS_PREFIX) ? l.alias : JSON.stringify(l.alias)}`);
      if (l.up) setLines.push(`${ipp(ns)} link set ${l.name} up`);
    }
    lines.push(...sorted(linkLines), ...sorted(setLines));
    const loAddr = (a: FAddr) => a.link === 'lo' && (a.cidr === '127.0.0.1/8' || a.cidr === '::1/128');
    lines.push(...[...s.addrs].filter((a) => !loAddr(a)).sort(compareAddrs).map((a) => `${ipp(ns)} addr add ${a.cidr} dev ${a.link}`));
    const routeLines = [...s.routes]
      .sort((a, b) => a.table - b.table || compareRoutes({ ...a, type: '', owned: false, nexthops: [] }, { ...b, type: '', owned: false, nexthops: [] }))
      .map((r) => {
        const hops = [...r.nexthops].sort(compareHops);
        const hopText = (h: FHop) => `${h.via !== undefined ? `via ${h.via} ` : ''}dev ${h.dev}${h.onlink ? ' onlink' : ''}`;
        const path = hops.length === 1 ? hopText(hops[0] as FHop) : hops.map((h) => `nexthop ${hopText(h)} weight ${h.weight}${h.dead ? ' dead' : ''}`).join(' ');
        return `${ipp(ns)} -${r.family} route add ${r.dst} ${path} table ${r.table} proto ${r.protocol} metric ${r.metric}`;
      });
    lines.push(...routeLines);
    lines.push(
      ...s.rules
        .filter((r) => !r.builtin)
        .map((r) => ({ ...r, action: 'lookup', selectors: [], owned: false }) as Rule & FRule)
        .sort(compareRules)
        .map((r) => `${ipp(ns)} -${r.family} rule add ${ruleText(r)}`),
    );
    lines.push(...sorted([...s.sysctl.entries()].map(([k, v]) => exec(ns, `sysctl -w ${k}=${v}`))));
    for (const t of [...s.nft.values()].sort(compareTables)) {
      lines.push(exec(ns, `nft -j add ${stableJson({ table: { family: t.family, name: t.name } })}`));
      const objs = t.objs.map((o) => ({ [o.kind]: { family: t.family, table: t.name, ...o.body } }) as Json);
      // In listing order, so that each object comes after what it refers to.
      const ordered = [...objs.filter((o) => !isObj(o) || !('chain' in o || 'rule' in o)), ...objs.filter((o) => isObj(o) && 'chain' in o), ...objs.filter((o) => isObj(o) && 'rule' in o)];
      lines.push(...ordered.map((o) => exec(ns, `nft -j add ${stableJson(withoutCounts(o))}`)));
    }
  }
  return lines.join('\n') + (lines.length > 0 ? '\n' : '');
}
