/**
 * The server's egress state in its default namespace: each egress address it uses on `lo`, and
 * one nftables table that SNATs connections from an IPv4 egress address into the server's own
 * port slice of it.
 *
 * ```
 * table ip <P>egress
 *   counter snat_198_51_100_64                     (one per address: packets that got a new mapping)
 *   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *     ip saddr 198.51.100.64 meta l4proto { tcp, udp } counter name "snat_198_51_100_64" snat to 198.51.100.64:4096-6143
 *     … }
 * ```
 *
 * Why `lo`: the proxy binds `localAddress: <egress ip>`, which needs the address to be local; on
 * `lo` it is local without being announced on any link (the uplink answers no ARP for it, and
 * replies reach it through the routers' routes to the anycast egress ranges). Scope global, not
 * host: a host-scoped address is refused as the source of a packet that leaves the machine.
 *
 * Why SNAT and not `bind()` to a port of the slice: the kernel picks the port. The NAT keeps the
 * socket's port when it is inside the slice and otherwise picks one of the slice that makes the
 * whole 5-tuple unique, so one source port is reused for different destinations (conntrack
 * tuples differ by destination); only connections to ONE destination (address and port) are
 * limited to the slice's size. Only TCP and UDP are mapped (ports are what slices divide);
 * ICMP from an egress address leaves unmapped.
 *
 * IPv6 addresses are the server's own (no slices): on `lo`, no SNAT.
 *
 * Which addresses on `lo` are ours: those inside `anycast.egressRanges` (`owned`). Addresses
 * carry no mark of their own (iproute2 6.1 has no address protocol), and the egress ranges are
 * the platform's by config, so the reconciler removes an address there that the config no longer
 * gives this server, and touches nothing else on `lo`.
 */
import type { NftJson, Json } from '../firewall/nft.ts';
import { match, meta, namedCounter, payload } from '../firewall/nft.ts';
import type { EgressAddress } from './server.ts';

/** Names inside the egress table. */
export const EGRESS_NAMES = { chain: 'postrouting' } as const;

/** The named counter of an address's SNAT rule: `snat_198_51_100_64`. */
export function snatCounter(ip: string): string {
  return `snat_${ip.replace(/[.:]/g, '_')}`;
}

/** srcnat: the standard priority of source NAT in postrouting. */
const SRCNAT = 100;

/**
 * The atomic-replace batch of the egress table for a server's IPv4 egress addresses (same
 * add/delete/add pattern as the firewall and transit tables). IPv6 entries are ignored.
 */
export function compileEgressNft(table: string, addrs: readonly EgressAddress[]): NftJson {
  const base = { family: 'ip', table } as const;
  const tableObj = { family: 'ip', name: table } as const;
  const v4 = addrs.filter((a) => a.family === 4);
  const cmds: Json[] = [
    { add: { table: tableObj } },
    { delete: { table: tableObj } },
    { add: { table: tableObj } },
    ...v4.map((a): Json => ({ add: { counter: { ...base, name: snatCounter(a.ip) } } })),
    { add: { chain: { ...base, name: EGRESS_NAMES.chain, type: 'nat', hook: 'postrouting', prio: SRCNAT, policy: 'accept' } } },
    ...v4.map(
      (a): Json => ({
        add: {
          rule: {
            ...base,
            chain: EGRESS_NAMES.chain,
            expr: [
              match(payload('ip', 'saddr'), a.ip),
              match(meta('l4proto'), { set: ['tcp', 'udp'] }),
              namedCounter(snatCounter(a.ip)),
              { snat: { addr: a.ip, port: { range: [a.portLo, a.portHi] } } },
            ],
          },
        },
      }),
    ),
  ];
  return { nftables: cmds as NftJson['nftables'] };
}

/** The nft text form of the table (for people and goldens; the kernel gets the JSON). */
export function egressNftText(table: string, addrs: readonly EgressAddress[]): string {
  const v4 = addrs.filter((a) => a.family === 4);
  const lines = [`table ip ${table} {`];
  for (const a of v4) lines.push(`  counter ${snatCounter(a.ip)} {}`);
  lines.push(`  chain ${EGRESS_NAMES.chain} {`, `    type nat hook postrouting priority srcnat; policy accept;`);
  for (const a of v4) lines.push(`    ip saddr ${a.ip} meta l4proto { tcp, udp } counter name "${snatCounter(a.ip)}" snat to ${a.ip}:${a.portLo}-${a.portHi}`);
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

/** The `lo` address of an egress address: a host prefix. */
export function loCidr(a: Pick<EgressAddress, 'ip' | 'family'>): string {
  return `${a.ip}/${a.family === 4 ? 32 : 128}`;
}
