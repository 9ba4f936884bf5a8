/**
 * The nftables table of the server's default namespace: one set lookup marks every packet for a
 * tenant prefix, so `ip rule fwmark … lookup transit` sends it to the tenant's veth; nothing of
 * the tenants is added to the main table.
 *
 * ```
 * table inet <P>transit
 *   set tenant4 { type ipv4_addr; flags interval; elements = { 203.0.113.0/25, … } }
 *   set tenant6 { type ipv6_addr; flags interval; elements = { 2001:db8:a::/48, … } }
 *   set wires   { type ifname; elements = { "<P>w…", … } }
 *   counter cross_tenant
 *   chain prerouting { type filter hook prerouting priority mangle; policy accept;
 *                      iifname @wires ip daddr @tenant4 counter name "cross_tenant" drop
 *                      iifname @wires ip6 daddr @tenant6 counter name "cross_tenant" drop
 *                      ip daddr @tenant4 meta mark set <mark>
 *                      ip6 daddr @tenant6 meta mark set <mark> }
 * ```
 *
 * The first rule is the isolation between tenants: a packet leaving one tenant's namespace (e.g.
 * sent by a customer through its tunnel) toward any tenant prefix is dropped and counted here,
 * before it could be marked into another tenant's namespace. (A tenant's own prefixes never
 * leave its namespace by the wire: its routes send them into its tunnels.) Both families share the
 * counter and the mark; the IPv6 set is there (empty) even when no tenant has IPv6, so the
 * table's shape does not depend on the config.
 */
import type { NftJson, Json } from '../firewall/nft.ts';
import { match, meta, namedCounter, payload, prefix, verdict } from '../firewall/nft.ts';

/** Names inside the transit table (fixed, so tests and operators can read them). */
export const TRANSIT_NAMES = { set4: 'tenant4', set6: 'tenant6', wires: 'wires', cross: 'cross_tenant', chain: 'prerouting' } as const;

/** The atomic-replace batch of the transit table (same pattern as the firewall, see compile.ts). */
export function compileTransitNft(table: string, mark: number, prefixes4: readonly string[], prefixes6: readonly string[], wires: readonly string[]): NftJson {
  const base = { family: 'inet', table } as const;
  const tableObj = { family: 'inet', name: table } as const;
  const elems = (cidrs: readonly string[]): Json[] =>
    [...cidrs].sort().map((c) => {
      const [addr, len] = c.split('/') as [string, string];
      return prefix(addr, Number(len));
    });
  const elems4 = elems(prefixes4);
  const elems6 = elems(prefixes6);
  const cross = (proto: 'ip' | 'ip6', set: string): Json => ({
    add: { rule: { ...base, chain: TRANSIT_NAMES.chain, expr: [match(meta('iifname'), `@${TRANSIT_NAMES.wires}`), match(payload(proto, 'daddr'), `@${set}`), namedCounter(TRANSIT_NAMES.cross), verdict('drop')] } },
  });
  const mark1 = (proto: 'ip' | 'ip6', set: string): Json => ({
    add: { rule: { ...base, chain: TRANSIT_NAMES.chain, expr: [match(payload(proto, 'daddr'), `@${set}`), { mangle: { key: meta('mark'), value: mark } }] } },
  });
  const cmds: Json[] = [
    { add: { table: tableObj } },
    { delete: { table: tableObj } },
    { add: { table: tableObj } },
    { add: { set: { ...base, name: TRANSIT_NAMES.set4, type: 'ipv4_addr', flags: ['interval'], ...(elems4.length ? { elem: elems4 } : {}) } } },
    { add: { set: { ...base, name: TRANSIT_NAMES.set6, type: 'ipv6_addr', flags: ['interval'], ...(elems6.length ? { elem: elems6 } : {}) } } },
    { add: { set: { ...base, name: TRANSIT_NAMES.wires, type: 'ifname', ...(wires.length ? { elem: [...wires].sort() } : {}) } } },
    { add: { counter: { ...base, name: TRANSIT_NAMES.cross } } },
    { add: { chain: { ...base, name: TRANSIT_NAMES.chain, type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' } } },
    cross('ip', TRANSIT_NAMES.set4),
    cross('ip6', TRANSIT_NAMES.set6),
    mark1('ip', TRANSIT_NAMES.set4),
    mark1('ip6', TRANSIT_NAMES.set6),
  ];
  return { nftables: cmds as NftJson['nftables'] };
}
