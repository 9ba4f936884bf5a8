/**
 * Compiles a tenant's SYN-flood protection (`model/synflood.ts`) into one nftables table in the
 * tenant namespace, next to the firewall table, replaced atomically the same way:
 *
 * ```
 * table inet <P>syn
 *   counter syn_notrack, syn_proxied, syn_no_synproxy
 *   chain raw   { type filter hook prerouting priority raw (-300); policy accept;
 *                 iifname "<uplink>" ip  daddr <prefixes4> tcp flags & (fin|syn|rst|ack) == syn counter notrack
 *                 iifname "<uplink>" ip6 daddr <prefixes6> …  }
 *   chain proxy { type filter hook forward priority 10; policy accept;
 *                 iifname "<uplink>" ip  daddr <prefixes4> meta l4proto tcp ct state invalid,untracked,new
 *                     counter synproxy mss M wscale W timestamp sack-perm
 *                 iifname "<uplink>" ip6 daddr …  }
 * ```
 *
 * Why this shape:
 * - **SYNs are not tracked.** A flood of SYNs must not fill the conntrack table: they are marked
 *   notrack before conntrack sees them (priority raw), and synproxy answers the untracked SYN with
 *   a cookie SYN-ACK. In `xdp` mode SYNs are answered on the uplink and never get here, except the
 *   few XDP cannot rewrite in place (IP options, IPv6 extension headers), which this answers.
 * - **The ACK opens the connection.** The client's ACK belongs to no conntrack entry: it is
 *   `invalid` with nf_conntrack_tcp_loose=0, or `new` (picked up mid-stream) with the default
 *   loose=1; both go to synproxy, which checks the cookie (the kernel's global secret, the same as
 *   the XDP helpers') and, when valid, sends the SYN to the customer host itself, then joins the
 *   two halves (sequence numbers translated by conntrack for the connection's life). An invalid
 *   cookie is dropped by synproxy. Established connections are `established` and pass untouched.
 * - **After the firewall.** The forward hook runs the firewall table at priority 0 first, so a
 *   SYN to a port the customer's rules drop is dropped, not answered: the proxy only ever opens
 *   connections the firewall lets in (accept in one base chain lets the packet on to the next
 *   base chain of the hook; drop is final).
 * - **Only from the uplink, only to the tenant's prefixes**: connections the customer opens
 *   itself (from the tunnels) are tracked normally and never proxied.
 * - `timestamp sack-perm`: synproxy encodes window scale and SACK in the timestamp of its SYN-ACK
 *   when the client offers timestamps, so they survive the cookie. The XDP stage's SYN-ACK carries
 *   only the MSS for now, so in `xdp` mode connections to the host have no window scaling.
 */
import type { SynFlood } from '../../model/synflood.ts';
import type { Family } from '../../model/net.ts';
import { cidrContains, formatIp, mustCidr } from '../../model/net.ts';
import type { Json, NftCommand, NftJson } from './nft.ts';
import { match, meta, namedCounter, payload, prefix } from './nft.ts';

/** Where the SYN-flood table sits and what it protects. */
export interface SynproxyOptions {
  /** Interface toward the server (the Internet side), as in `FirewallOptions.uplink`. */
  readonly uplink: string;
  /** The tenant's prefixes (stored CIDRs, both families allowed). */
  readonly prefixes: readonly string[];
  /** nft table name; must carry the agent's mark prefix. */
  readonly table: string;
}

/** Counter names of the SYN-flood table. */
export const synCounterNames = {
  notrack: 'syn_notrack',
  proxied: 'syn_proxied',
} as const;

/** Priority of the proxy chain: after the firewall's forward chain (0). */
export const SYNPROXY_PRIORITY = 10;
/** Priority of the notrack chain: nft's `raw`, before conntrack (-200). */
export const NOTRACK_PRIORITY = -300;

const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const TABLE_RE = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Whether this tenant's setting needs the nftables half (both `xdp` and `synproxy` do). */
export function needsSynproxy(s: SynFlood): boolean {
  return s.protection !== 'off';
}

/**
 * The table for a tenant whose protection is on. Inputs are the model's stored forms; names
 * outside the safe alphabets and a setting that is `off` are a caller's bug and throw.
 */
export function compileSynproxy(s: SynFlood, opts: SynproxyOptions): NftJson {
  if (!needsSynproxy(s)) throw new Error('bug: compileSynproxy called for a tenant whose synFlood.protection is off');
  if (!IFNAME_RE.test(opts.uplink)) throw new Error(`bug: compileSynproxy got an invalid uplink interface name ${JSON.stringify(opts.uplink)}`);
  if (!TABLE_RE.test(opts.table)) throw new Error(`bug: compileSynproxy got an invalid table name ${JSON.stringify(opts.table)}`);
  const base = { family: 'inet', table: opts.table } as const;
  const tableObj = { family: 'inet', name: opts.table } as const;
  const add = (kind: string, obj: Json): NftCommand => ({ add: { [kind]: obj } });
  const rules: NftCommand[] = [];
  const addRule = (chain: string, expr: Json[]): void => {
    rules.push(add('rule', { ...base, chain, expr }));
  };

  /** The family's prefixes, sorted, without those inside another (an nft set refuses overlaps). */
  const byFamily = (fam: Family): Json[] => {
    const cidrs = opts.prefixes
      .map(mustCidr)
      .filter((c) => c.family === fam)
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.len - b.len));
    const kept = cidrs.filter((c, i) => !cidrs.some((o, j) => j < i && cidrContains(o, c)));
    return kept.map((c) => prefix(formatIp({ family: fam, value: c.start }), c.len));
  };
  const iif = match(meta('iifname'), opts.uplink);
  const synOnly = match({ '&': [payload('tcp', 'flags'), ['fin', 'syn', 'rst', 'ack']] }, 'syn');

  for (const fam of [4, 6] as const) {
    const elems = byFamily(fam);
    if (elems.length === 0) continue;
    const dst = match(payload(fam === 4 ? 'ip' : 'ip6', 'daddr'), elems.length === 1 ? elems[0]! : { set: elems });
    addRule('raw', [iif, dst, synOnly, namedCounter(synCounterNames.notrack), { notrack: null }]);
    addRule('proxy', [
      iif,
      dst,
      match(meta('l4proto'), 6),
      match({ ct: { key: 'state' } }, ['invalid', 'untracked', 'new'], 'in'),
      namedCounter(synCounterNames.proxied),
      // The setting's MSS is for IPv4; IPv6's header is 20 bytes longer.
      { synproxy: { mss: fam === 4 ? s.mss : s.mss - 20, wscale: s.wscale, flags: ['timestamp', 'sack-perm'] } },
    ]);
  }

  const nftables: NftCommand[] = [
    { metainfo: { json_schema_version: 1 } },
    add('table', tableObj),
    { delete: { table: tableObj } },
    add('table', tableObj),
    add('counter', { ...base, name: synCounterNames.notrack }),
    add('counter', { ...base, name: synCounterNames.proxied }),
    add('chain', { ...base, name: 'raw', type: 'filter', hook: 'prerouting', prio: NOTRACK_PRIORITY, policy: 'accept' }),
    add('chain', { ...base, name: 'proxy', type: 'filter', hook: 'forward', prio: SYNPROXY_PRIORITY, policy: 'accept' }),
    ...rules,
  ];
  return { nftables };
}

/** A prefix the server's XDP stage answers SYNs for (bpf syn_v4 / syn_v6 entry). */
export interface DesiredSynPrefix {
  /** Config path: `tenants/<t>/prefixes/<p>`. */
  readonly path: string;
  /**
   * The tenant id. Not its counter index: the index (syn_tenant_cnt) is chosen by the agent from
   * what the maps already hold (agent/syncookie.ts), so that a tenant keeps it while it stays
   * protected whatever other tenants come and go — something a pure compile cannot know.
   */
  readonly tenant: string;
  readonly cidr: string;
  /** MSS of the cookie SYN-ACK for this prefix's family. */
  readonly mss: number;
  /** Window scale it offers (the namespace synproxy's): tenants/<t>.synFlood.wscale. */
  readonly wscale: number;
}

/** What one tenant's synFlood setting adds to a server. */
export interface TenantSynFlood {
  /** The SYN-flood table for the tenant namespace; absent when protection is off. */
  readonly batch?: NftJson;
  /** Prefixes for the XDP stage; empty unless protection is `xdp`. */
  readonly prefixes: readonly DesiredSynPrefix[];
}

/**
 * A tenant's SYN-flood pieces for compile/server.ts: the nftables table (both modes) and, in
 * `xdp` mode, one XDP map entry per prefix. Depends on this tenant alone, so another tenant's
 * change never changes these.
 */
export function compileTenantSynFlood(
  tid: string,
  tenant: { readonly synFlood?: SynFlood | undefined; readonly prefixes: Readonly<Record<string, { readonly cidr: string }>> },
  opts: { readonly uplink: string; readonly table: string },
): TenantSynFlood {
  const s = tenant.synFlood;
  if (!s || !needsSynproxy(s)) return { prefixes: [] };
  const entries = Object.entries(tenant.prefixes).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const batch = compileSynproxy(s, { uplink: opts.uplink, prefixes: entries.map(([, p]) => p.cidr), table: opts.table });
  if (s.protection !== 'xdp') return { batch, prefixes: [] };
  return {
    batch,
    prefixes: entries.map(([pid, p]) => ({ path: `tenants/${tid}/prefixes/${pid}`, tenant: tid, cidr: p.cidr, mss: mustCidr(p.cidr).family === 4 ? s.mss : s.mss - 20, wscale: s.wscale })),
  };
}
