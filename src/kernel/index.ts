/**
 * The kernel boundary as one value: every API the agent, the lab and the tests use to change
 * Linux networking, with a Linux implementation (argv arrays for `ip`, JSON for `nft -j`) and an
 * in-memory fake that refuses the same things and prints its state as canonical text.
 *
 * ```ts
 * const k = fakeKernel(marksWith({ prefix: 'ae' }));
 * await k.netns.add('ae-t-acme');
 * k.dump(); // "netns add ae-t-acme\n"
 * ```
 */
import { fakeApis, type FakeForeign } from './fake.ts';
import { linuxAddrs, type AddrsApi } from './addrs.ts';
import { linuxLinks, type LinksApi } from './links.ts';
import type { Marks } from './marks.ts';
import { linuxNetns, type NetnsApi } from './netns.ts';
import { linuxNft, type NftApi, type NftTableRef } from './nft.ts';
import { linuxRoutes, type RoutesApi } from './routes.ts';
import { linuxRules, type RulesApi } from './rules.ts';
import { linuxSysctl, type SysctlApi } from './sysctl.ts';
import type { KernelError } from './errors.ts';
import type { NsRef } from './netns.ts';
import type { Result } from '../lib/result.ts';

export type { KernelError, KernelErrorCode } from './errors.ts';
export type { Marks } from './marks.ts';
export { DEFAULT_MARKS, marksWith } from './marks.ts';
export type { NsRef, NetnsApi } from './netns.ts';
export type { Link, LinksApi, VethEnd, VethPeer, VethSpec } from './links.ts';
export type { Addr, AddrsApi } from './addrs.ts';
export type { Nexthop, NexthopSpec, Route, RouteKey, RouteSpec, RoutesApi } from './routes.ts';
export type { Rule, RuleSpec, RulesApi } from './rules.ts';
export type { SysctlApi } from './sysctl.ts';
export type { NftApi, NftCounter, NftJson, NftObject, NftTableInfo, NftTableRef, NftTableSpec } from './nft.ts';
export { stableListing } from './nft.ts';
export type { FakeForeign } from './fake.ts';

/** Every kernel API, bound to one set of ownership marks. */
export interface Kernel {
  /** What makes an object ours (prefix, route protocol, rule band, tables). */
  readonly marks: Marks;
  /** Network namespaces (`ip netns`). */
  readonly netns: NetnsApi;
  /** Links: veth pairs across namespaces, up/down, MTU, alias, move (`ip link`). */
  readonly links: LinksApi;
  /** Interface addresses (`ip addr`). */
  readonly addrs: AddrsApi;
  /** Routes by table id, multipath with weights, protocol 174 (`ip route`). */
  readonly routes: RoutesApi;
  /** Policy rules with fwmark/mask (`ip rule`). */
  readonly rules: RulesApi;
  /** Per-namespace `net.*` sysctls. */
  readonly sysctl: SysctlApi;
  /** nftables tables as one-transaction JSON batches (`nft -j`). */
  readonly nft: NftApi;
}

/** The fake kernel: a Kernel kept in memory, plus what tests need to look at and poke it. */
export interface FakeKernel extends Kernel {
  /** The whole state as canonical, sorted `ip`/`nft` text, one command per line. */
  dump(): string;
  /** Makes objects without our marks, as an operator or another daemon would. */
  readonly foreign: FakeForeign;
  /** Adds traffic to a named counter or to the counter of the rule with that comment. */
  count(ns: NsRef, table: NftTableRef, target: { counter: string } | { rule: string }, packets: number, bytes: number): Result<void, KernelError>;
}

/** The real kernel, through iproute2 and nft. Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN for netns). */
export function linuxKernel(marks: Marks): Kernel {
  return {
    marks,
    netns: linuxNetns(marks),
    links: linuxLinks(marks),
    addrs: linuxAddrs(),
    routes: linuxRoutes(marks),
    rules: linuxRules(marks),
    sysctl: linuxSysctl(),
    nft: linuxNft(marks),
  };
}

/** A fresh in-memory kernel: no named namespaces, a host namespace with only `lo` (down). */
export function fakeKernel(marks: Marks): FakeKernel {
  const f = fakeApis(marks);
  return {
    marks,
    netns: f.netns,
    links: f.links,
    addrs: f.addrs,
    routes: f.routes,
    rules: f.rules,
    sysctl: f.sysctl,
    nft: f.nft,
    dump: f.control.dump,
    foreign: f.control.foreign,
    count: f.control.count,
  };
}
