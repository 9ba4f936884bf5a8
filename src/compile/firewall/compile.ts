/**
 * Compiles a tenant's firewall (`model/firewall.ts`) into one nftables batch for `nft -j -f -`
 * inside the tenant's namespace. Pure and deterministic: the same input gives byte-identical
 * JSON. Nothing here builds nft text: every value from the config is a JSON string or number,
 * and the only config strings that reach the batch at all are ids and interface names, which are
 * checked against small alphabets first. Free-text descriptions are never sent to the kernel
 * (nft prints comments back unescaped, so `nft list ruleset > f; nft -f f` would run them).
 *
 * ## Table layout (one table per tenant namespace, family inet: one rule set serves IPv4 and IPv6)
 *
 * ```
 * table inet aefw
 *   counter rule_<id> …, over_<id> (rate-limit drops), default_ingress, default_egress, no_direction
 *   map directions  { type ifname . ifname : verdict
 *                     "<uplink>" . "<tunnel>" : jump ingress,   "<tunnel>" . "<uplink>" : jump egress }
 *   chain forward   { type filter hook forward priority filter; policy drop;
 *                     [stateful only: ct state established,related accept; ct state invalid drop]
 *                     iifname . oifname vmap @directions
 *                     counter name "no_direction" drop }
 *   chain ingress   { meta l4proto vmap { tcp : goto ingress_tcp, … }   (if any rule names a protocol)
 *                     <ingress rules without a protocol, in order>
 *                     counter name "default_ingress" <default.ingress> }
 *   chain ingress_tcp { <ingress rules with protocol tcp or none, in order>
 *                     counter name "default_ingress" <default.ingress> }
 *   chain egress …, egress_<proto> …   (the same for customer → Internet)
 *   chain rate_<id> { limit rate over <rate> counter name "over_<id>" drop; accept }
 * ```
 *
 * Why this shape:
 * - **Direction** is the pair (input interface, output interface): the uplink veth faces the
 *   server (the Internet), the tunnel devices face the customer. One lookup in a concatenated
 *   verdict map picks the chain, whatever the number of tunnels. Pairs not in the map (uplink back
 *   to uplink: an address of the tenant with no route to a tunnel would bounce until its TTL
 *   runs out; tunnel to tunnel; any other interface) have no direction in the model and are
 *   dropped and counted.
 * - **Protocol dispatch**: a packet of protocol P can only match rules with protocol P or none, so
 *   each direction gets one chain per protocol named in its rules, holding exactly those rules in
 *   their original order, reached by a `meta l4proto` verdict map. First-match order is kept
 *   (every chain is a sub-sequence of the rule list) and a TCP packet never walks the UDP rules.
 *   `goto` is used so that a protocol chain that ends without a verdict does not return into the
 *   protocol-less rules of its parent; that is why each protocol chain ends with the default.
 * - **Sets**: address and port lists are merged (overlaps and neighbours joined) and become one
 *   lookup: a single value, an anonymous set, or, from `namedSetMin` elements on, a named set
 *   (`src4_<id>`, `dst6_<id>`, `dport_<id>` …) that `nft list set` shows by name. Sets with only
 *   single addresses or ports are hash (or bitmap) sets, O(1); sets with prefixes or ranges need
 *   `flags interval` (a tree in the kernel, O(log n)), still one lookup instead of n rules.
 *   A rule whose addresses are of both families becomes one nft rule per family, because an nft
 *   set holds one address type.
 * - **Counters** are named objects, `rule_<id>` per tenant rule (the id is unique and stable,
 *   unlike the index), so a rule that appears in several chains (protocol-less rules, both
 *   families) still has one count, and `nft -j list counters` reads them all back at once. The
 *   `_` separator is outside the id alphabet, so a generated name never equals another.
 * - **Rate limits** jump to a two-rule chain: over the rate → counted drop, else accept; the match
 *   is evaluated once. bps is converted to bytes/s (nft's unit), rounded down, at least 1.
 * - **Default actions** are counted final rules, not chain policies: regular chains have no
 *   policy, and a counted rule says how much traffic the default took.
 * - **Stateless by default.** ECMP and anycast send the two directions of one flow to different
 *   servers (return traffic from the customer arrives as GRE on any server of any data center),
 *   so a conntrack entry exists on some servers and not others; accepting `ct state established`
 *   would make a packet's fate depend on the server it lands on, against "the same packet is
 *   handled identically by any server". Stateless also means no conntrack table for a SYN flood
 *   to fill. Return traffic is therefore the tenant's rules' business (e.g. accept TCP with the
 *   ack flag to ephemeral ports), as in Cloudflare's Magic Firewall. `stateful: true` is for
 *   single-server setups (the lab): it accepts established/related and drops invalid first.
 * - Only forwarded traffic is filtered (hook forward): packets to or from the namespace itself
 *   (tunnel health checks) are not the tenant's traffic.
 *
 * ## Atomic replacement
 *
 * The batch starts `add table` (a no-op if it exists), `delete table` (so it now surely exists to
 * delete), then adds everything again. nft sends the batch as one netlink transaction: either all
 * of it is committed or, if any command fails, none of it is, and packets see the old table or the
 * new one, never a mix and never no table. The price is that counters restart from zero on every
 * change; readers treat them as resettable counters (as Prometheus does).
 */
import type { Firewall, FirewallRule } from '../../model/firewall.ts';
import { isId } from '../../model/id.ts';
import { tcpFlagsMaskValue } from '../../model/match.ts';
import type { IcmpMatch } from '../../model/match.ts';
import type { Family, Protocol } from '../../model/net.ts';
import { cidrEnd, familyBits, familyOf, formatIp, mustCidr, mustRange, portRanges, protocolNumber } from '../../model/net.ts';
import type { Json, NftCommand, NftJson } from './nft.ts';
import { goto, jump, match, meta, namedCounter, payload, prefix, range, verdict } from './nft.ts';

/** Where the compiled firewall sits in the tenant namespace. */
export interface FirewallOptions {
  /** Interface toward the server's default namespace, i.e. the Internet side (the tenant's veth). */
  readonly uplink: string;
  /** Interfaces toward the customer (tunnel devices). Order does not matter; the output is sorted. */
  readonly tunnels: readonly string[];
  /** nft table name; default `aefw`. Must carry the agent's mark prefix (`ae`) to be applied. */
  readonly table?: string;
  /** Accept established/related and drop invalid packets before the rules; default false (see the header). */
  readonly stateful?: boolean;
  /** Lists with at least this many elements (after merging) become named sets; default 8. */
  readonly namedSetMin?: number;
}

/** Default table name: `ae` is the agent's mark prefix, so the kernel driver accepts it as ours. */
export const DEFAULT_TABLE = 'aefw';

/** Default threshold for named sets: below it an inline set reads better in `nft list`. */
export const DEFAULT_NAMED_SET_MIN = 8;

/** Linux interface names: at most 15 bytes (IFNAMSIZ 16 with the NUL); a conservative alphabet. */
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** nft object names we generate from; same alphabet as the kernel driver's table check. */
const TABLE_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

const DIRECTIONS = ['ingress', 'egress'] as const;

/** The counter names the compiler uses for a tenant rule, and for the fixed rules. */
export const counterNames = {
  rule: (id: string): string => `rule_${id}`,
  over: (id: string): string => `over_${id}`,
  default: (direction: 'ingress' | 'egress'): string => `default_${direction}`,
  noDirection: 'no_direction',
  ctEstablished: 'ct_established',
  ctInvalid: 'ct_invalid',
} as const;

/** nft's header name for the port fields of each port protocol. */
const PORT_HEADER: Readonly<Record<string, string>> = { tcp: 'tcp', udp: 'udp', sctp: 'sctp', dccp: 'dccp', udplite: 'udplite' };

/** One element of a merged address or port list. */
type Elem = Json;

/** A merged list, ready to be a match value. */
interface Lookup {
  readonly elems: readonly Elem[];
  /** Some element is a prefix or a range: a named set needs `flags interval`. */
  readonly interval: boolean;
}

/**
 * Merges prefixes of one family into the fewest intervals (overlapping and adjacent ones joined),
 * sorted. Each interval is a single address, a prefix when it is one, or a range. An nft interval
 * set refuses overlapping elements, and merging makes two spellings of one set one value.
 */
function mergeCidrs(cidrs: readonly string[], family: Family): Lookup {
  const spans = cidrs
    .map(mustCidr)
    .filter((c) => c.family === family)
    .map((c) => [c.start, cidrEnd(c)] as [bigint, bigint])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const merged: [bigint, bigint][] = [];
  for (const [lo, hi] of spans) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1n) {
      if (hi > last[1]) last[1] = hi;
    } else merged.push([lo, hi]);
  }
  const ip = (v: bigint): string => formatIp({ family, value: v });
  let interval = false;
  const elems = merged.map(([lo, hi]): Elem => {
    if (lo === hi) return ip(lo);
    interval = true;
    const size = hi - lo + 1n;
    // A prefix: the size is a power of two and the start is aligned to it.
    if ((size & (size - 1n)) === 0n && (lo & (size - 1n)) === 0n) {
      const len = familyBits(family) - (size.toString(2).length - 1);
      return prefix(ip(lo), len);
    }
    return range(ip(lo), ip(hi));
  });
  return { elems, interval };
}

/** A stored port set (already sorted and merged by the model) as set elements. */
function portLookup(set: readonly (string | number)[]): Lookup {
  let interval = false;
  const elems = portRanges(set).map(([lo, hi]): Elem => {
    if (lo === hi) return lo;
    interval = true;
    return range(lo, hi);
  });
  return { elems, interval };
}

/** Throws when a value that reaches the batch is not from its safe alphabet: a caller's bug. */
function checkInputs(tenantId: string, fw: Firewall, opts: FirewallOptions, table: string): void {
  const bug = (what: string, v: unknown): never => {
    throw new Error(`bug: compileFirewall got an invalid ${what} ${JSON.stringify(v)}; validate the config with model/ first`);
  };
  if (!isId(tenantId)) bug('tenant id', tenantId);
  if (!TABLE_RE.test(table)) bug('table name', table);
  if (!IFNAME_RE.test(opts.uplink)) bug('uplink interface name', opts.uplink);
  for (const t of opts.tunnels) {
    if (!IFNAME_RE.test(t)) bug('tunnel interface name', t);
    if (t === opts.uplink) bug('tunnel interface (same as the uplink)', t);
  }
  if (new Set(opts.tunnels).size !== opts.tunnels.length) bug('tunnel list (duplicates)', opts.tunnels);
  const seen = new Set<string>();
  for (const r of fw.rules) {
    if (!isId(r.id)) bug('rule id', r.id);
    if (seen.has(r.id)) bug('rule id (duplicate)', r.id);
    seen.add(r.id);
  }
  const min = opts.namedSetMin ?? DEFAULT_NAMED_SET_MIN;
  if (!Number.isInteger(min) || min < 1) bug('namedSetMin', min);
}

/** Chain name of a protocol dispatch target: `ingress_tcp`, `egress_p253` for unnamed numbers. */
function protocolChain(direction: string, p: Protocol): string {
  return typeof p === 'number' ? `${direction}_p${p}` : `${direction}_${p}`;
}

/** The address families a rule's nft rules are split into; undefined = family-agnostic. */
function ruleFamilies(r: FirewallRule): (Family | undefined)[] {
  const fams = (list: readonly string[] | undefined): Set<Family> | undefined => (list === undefined ? undefined : new Set(list.map(familyOf)));
  const src = fams(r.src);
  const dst = fams(r.dst);
  if (src === undefined && dst === undefined) return [undefined];
  const out = ([4, 6] as const).filter((f) => (src === undefined || src.has(f)) && (dst === undefined || dst.has(f)));
  // The model refuses rules whose src and dst share no family; reaching here means it was bypassed.
  if (out.length === 0) throw new Error(`bug: rule ${r.id} has no address family common to src and dst`);
  return out;
}

/**
 * Compiles a tenant's firewall into an nft batch that replaces the tenant's table atomically.
 * `fw` must be the output of `firewallSchema` (stored form); inputs outside the model's alphabets
 * are bugs and throw.
 */
export function compileFirewall(tenantId: string, fw: Firewall, opts: FirewallOptions): NftJson {
  const table = opts.table ?? DEFAULT_TABLE;
  checkInputs(tenantId, fw, opts, table);
  const namedSetMin = opts.namedSetMin ?? DEFAULT_NAMED_SET_MIN;
  const base = { family: 'inet', table } as const;
  const tableObj = { family: 'inet', name: table } as const;
  const add = (kind: string, obj: Json): NftCommand => ({ add: { [kind]: obj } });

  const counters: string[] = [];
  const chains: NftCommand[] = [];
  const sets: NftCommand[] = [];
  const rules: NftCommand[] = [];
  const addChain = (name: string): void => {
    chains.push(add('chain', { ...base, name }));
  };
  const addRule = (chain: string, expr: Json[], comment?: string): void => {
    rules.push(add('rule', comment === undefined ? { ...base, chain, expr } : { ...base, chain, expr, comment }));
  };
  const addSet = (name: string, type: string, l: Lookup): string => {
    sets.push(add('set', { ...base, name, type, ...(l.interval ? { flags: ['interval'] } : {}), elem: [...l.elems] }));
    return `@${name}`;
  };
  /** A lookup as a match value: one element bare, a few as an anonymous set, many as a named set. */
  const value = (l: Lookup, setName: string, type: string): Json => {
    if (l.elems.length >= namedSetMin) return addSet(setName, type, l);
    if (l.elems.length === 1) return l.elems[0]!;
    return { set: [...l.elems] };
  };

  // Base chain: stateful shortcut, then direction dispatch, then the counted catch-all drop.
  chains.push(add('chain', { ...base, name: 'forward', type: 'filter', hook: 'forward', prio: 0, policy: 'drop' }));
  if (opts.stateful) {
    counters.push(counterNames.ctEstablished, counterNames.ctInvalid);
    addRule('forward', [match({ ct: { key: 'state' } }, ['established', 'related'], 'in'), namedCounter(counterNames.ctEstablished), verdict('accept')]);
    addRule('forward', [match({ ct: { key: 'state' } }, 'invalid', 'in'), namedCounter(counterNames.ctInvalid), verdict('drop')]);
  }
  counters.push(counterNames.noDirection, counterNames.default('ingress'), counterNames.default('egress'));
  addRule('forward', [{ vmap: { key: { concat: [meta('iifname'), meta('oifname')] }, data: '@directions' } }]);
  addRule('forward', [namedCounter(counterNames.noDirection), verdict('drop')]);

  const tunnels = [...opts.tunnels].sort();
  const dirElems: Json[] = [
    ...tunnels.map((t): Json => [{ concat: [opts.uplink, t] }, jump('ingress')]),
    ...tunnels.map((t): Json => [{ concat: [t, opts.uplink] }, jump('egress')]),
  ];
  const directionsMap: Json = { ...base, name: 'directions', type: ['ifname', 'ifname'], map: 'verdict', ...(dirElems.length ? { elem: dirElems } : {}) };

  // Per-rule pieces that do not depend on the chain: counters, sets, rate chains, expressions.
  const compiled = new Map<string, Json[][]>();
  for (const r of fw.rules) {
    counters.push(counterNames.rule(r.id));
    const l4: Json[] = [];
    const proto = r.protocol;
    if (proto !== undefined && PORT_HEADER[String(proto)] !== undefined) {
      const hdr = PORT_HEADER[String(proto)]!;
      if (r.sport) l4.push(match(payload(hdr, 'sport'), value(portLookup(r.sport), `sport_${r.id}`, 'inet_service')));
      if (r.dport) l4.push(match(payload(hdr, 'dport'), value(portLookup(r.dport), `dport_${r.id}`, 'inet_service')));
    }
    if (r.tcpFlags) {
      const { mask, value: v } = tcpFlagsMaskValue(r.tcpFlags);
      l4.push(match({ '&': [payload('tcp', 'flags'), mask] }, v));
    }
    // The stored rule type is a union (with and without icmp), hence the `in` test.
    const icmp: IcmpMatch | undefined = 'icmp' in r ? r.icmp : undefined;
    if (icmp && (proto === 'icmp' || proto === 'icmpv6')) {
      l4.push(match(payload(proto, 'type'), icmp.type));
      if (icmp.code !== undefined) l4.push(match(payload(proto, 'code'), icmp.code));
    }
    // A protocol with no header field matched needs its own test; with one, nft derives it.
    // Numbers, not names: nft resolves names through /etc/protocols, which a minimal host may lack.
    const protoMatch: Json[] = proto !== undefined && l4.length === 0 ? [match(meta('l4proto'), protocolNumber(proto))] : [];
    const length: Json[] = r.length === undefined ? [] : [lengthMatch(r.length)];

    let final: Json;
    if (r.action === 'rate-limit') {
      const chain = `rate_${r.id}`;
      counters.push(counterNames.over(r.id));
      addChain(chain);
      addRule(chain, [limitExpr(r), namedCounter(counterNames.over(r.id)), verdict('drop')], r.id);
      addRule(chain, [verdict('accept')], r.id);
      final = jump(chain);
    } else final = verdict(r.action);

    const variants: Json[][] = [];
    for (const fam of ruleFamilies(r)) {
      const hdr = fam === undefined ? undefined : fam === 4 ? 'ip' : 'ip6';
      const addrs: Json[] = [];
      for (const [side, field] of [['src', 'saddr'], ['dst', 'daddr']] as const) {
        const list = r[side];
        if (list === undefined || hdr === undefined || fam === undefined) continue;
        const type = fam === 4 ? 'ipv4_addr' : 'ipv6_addr';
        addrs.push(match(payload(hdr, field), value(mergeCidrs(list, fam), `${side}${fam}_${r.id}`, type)));
      }
      variants.push([...addrs, ...protoMatch, ...l4, ...length, namedCounter(counterNames.rule(r.id)), final]);
    }
    compiled.set(r.id, variants);
  }

  for (const direction of DIRECTIONS) {
    const dirRules = fw.rules.filter((r) => r.direction === direction);
    const protocols: Protocol[] = [];
    for (const r of dirRules) if (r.protocol !== undefined && !protocols.includes(r.protocol)) protocols.push(r.protocol);
    const emit = (chain: string, include: (r: FirewallRule) => boolean): void => {
      for (const r of dirRules) if (include(r)) for (const expr of compiled.get(r.id)!) addRule(chain, expr, r.id);
      addRule(chain, [namedCounter(counterNames.default(direction)), verdict(fw.default[direction])]);
    };
    addChain(direction);
    if (protocols.length > 0) {
      const byNumber = [...protocols].sort((a, b) => protocolNumber(a) - protocolNumber(b));
      addRule(direction, [{ vmap: { key: meta('l4proto'), data: { set: byNumber.map((p): Json => [protocolNumber(p), goto(protocolChain(direction, p))]) } } }]);
    }
    emit(direction, (r) => r.protocol === undefined);
    for (const p of protocols) {
      addChain(protocolChain(direction, p));
      emit(protocolChain(direction, p), (r) => r.protocol === undefined || r.protocol === p);
    }
  }

  // Order matters to nft within the batch: objects before the rules and map elements that
  // reference them (chains before the verdict map that jumps to them).
  const nftables: NftCommand[] = [
    { metainfo: { json_schema_version: 1 } },
    add('table', tableObj),
    { delete: { table: tableObj } },
    add('table', tableObj),
    ...counters.map((name) => add('counter', { ...base, name })),
    ...sets,
    ...chains,
    add('map', directionsMap),
    ...rules,
  ];
  return { nftables };
}

/**
 * `meta length` over a stored length range: at the forward hook the skb starts at the IP header,
 * so this is the IP packet's length in both families. Caveat: a GRO-merged skb (veth with GRO on)
 * counts as one packet of the merged length.
 */
function lengthMatch(text: string | number): Json {
  const [lo, hi] = mustRange(text);
  return match(meta('length'), lo === hi ? lo : range(lo, hi));
}

/** The over-the-rate test of a rate-limit rule (`limit rate over …`). */
function limitExpr(r: FirewallRule): Json {
  const rl = r.rateLimit;
  if (rl === undefined) throw new Error(`bug: rate-limit rule ${r.id} has no rateLimit`);
  const burst = rl.burst;
  if (rl.pps !== undefined) return { limit: { rate: rl.pps, per: 'second', ...(burst === undefined ? {} : { burst }), inv: true } };
  // nft counts bytes; a rate under 8 bit/s would round to 0, which nft refuses.
  const bytes = Math.max(1, Math.floor((rl.bps ?? 0) / 8));
  return {
    limit: { rate: bytes, rate_unit: 'bytes', per: 'second', ...(burst === undefined ? {} : { burst, burst_unit: 'bytes' }), inv: true },
  };
}

/** Serialises a batch the way golden files and `nft -j -f -` get it: stable, two-space indented. */
export function stringifyNft(json: NftJson): string {
  return JSON.stringify(json, null, 2) + '\n';
}
