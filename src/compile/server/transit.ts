/**
 * The nftables table of the server's default namespace: one set lookup marks every packet for a
 * tenant prefix, so `ip rule fwmark … lookup transit` sends it to the tenant's veth; nothing of
 * the tenants is added to the main table.
 *
 * ```
 * table inet <P>transit
 *   set tenant4 { type ipv4_addr; flags interval; elements = { 203.0.113.0/25, … } }
 *   set wires   { type ifname; elements = { "<P>w…", … } }
 *   counter cross_tenant
 *   chain prerouting { type filter hook prerouting priority mangle; policy accept;
 *                      iifname @wires ip daddr @tenant4 counter name "cross_tenant" drop
 *                      ip daddr @tenant4 meta mark set <mark> }
 * ```
 *
 * The first rule is the isolation between tenants: a packet leaving one tenant's namespace (e.g.
 * sent by a customer through its tunnel) toward any tenant prefix is dropped and counted here,
 * before it could be marked into another tenant's namespace. (A tenant's own prefixes never
 * leave its namespace by the wire: its routes send them into its tunnels.)
 */
import type { NftJson, Json } from '../firewall/nft.ts';
import { match, meta, namedCounter, payload, prefix, verdict } from '../firewall/nft.ts';

/** Names inside the transit table (fixed, so tests and operators can read them). */
export const TRANSIT_NAMES = { set4: 'tenant4', wires: 'wires', cross: 'cross_tenant', chain: 'prerouting' } as const;

/** The atomic-replace batch of the transit table (same pattern as the firewall, see compile.ts). */
export function compileTransitNft(table: string, mark: number, prefixes4: readonly string[], wires: readonly string[]): NftJson {
  const base = { family: 'inet', table } as const;
  const tableObj = { family: 'inet', name: table } as const;
  const elems4: Json[] = [...prefixes4].sort().map((c) => {
    const [addr, len] = c.split('/') as [string, string];
    return prefix(addr, Number(len));
  });
  const cmds: Json[] = [
    { add: { table: tableObj } },
    { delete: { table: tableObj } },
    { add: { table: tableObj } },
    { add: { set: { ...base, name: TRANSIT_NAMES.set4, type: 'ipv4_addr', flags: ['interval'], ...(elems4.length ? { elem: elems4 } : {}) } } },
    { add: { set: { ...base, name: TRANSIT_NAMES.wires, type: 'ifname', ...(wires.length ? { elem: [...wires].sort() } : {}) } } },
    { add: { counter: { ...base, name: TRANSIT_NAMES.cross } } },
    { add: { chain: { ...base, name: TRANSIT_NAMES.chain, type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' } } },
    {
      add: {
        rule: {
          ...base,
          chain: TRANSIT_NAMES.chain,
          expr: [match(meta('iifname'), `@${TRANSIT_NAMES.wires}`), match(payload('ip', 'daddr'), `@${TRANSIT_NAMES.set4}`), namedCounter(TRANSIT_NAMES.cross), verdict('drop')],
        },
      },
    },
    {
      add: {
        rule: { ...base, chain: TRANSIT_NAMES.chain, expr: [match(payload('ip', 'daddr'), `@${TRANSIT_NAMES.set4}`), { mangle: { key: meta('mark'), value: mark } }] },
      },
    },
  ];
  return { nftables: cmds as NftJson['nftables'] };
}
