/**
 * SYN-flood protection of a tenant's addresses (`tenants/<t>.synFlood`): every prefix of the
 * tenant answers SYNs with SYN cookies instead of passing them to the customer's hosts, and opens
 * the connection to the host only once the client's ACK proves the cookie (nftables SYNPROXY in
 * the tenant namespace). Two places can answer the SYN:
 *
 * - `xdp`: the XDP program on the server uplink (bpf/syncookie.h), before the packet costs a
 *   routing decision, a trip through the tenant namespace or an nftables rule; bad ACKs are
 *   dropped there too. The ACK leg still goes through the namespace's synproxy.
 * - `synproxy`: nftables' synproxy in the tenant namespace answers both legs.
 *
 * Both keep per-connection state on the server that did the handshake (the kernel's cookie
 * secret is per host; synproxy translates sequence numbers for the connection's whole life in
 * that server's conntrack), so both need the connection's packets in both directions on that
 * server. The customer host's replies come back through its GRE tunnel to whichever server the
 * customer router's anycast route picks, so the prefixes of a protected tenant are steered
 * (compile/steer.ts steer_tenant, bpf/steer.h): the client's packets by their 5-tuple, the
 * tunnel's packets by the inner 5-tuple, with a hash that is the same in both directions, all to
 * the bucket's server of the DC's Maglev table; the SYN stage runs on that server, after
 * steering. Measured in the lab (`anyedge lab attack syn --syn-mitigation xdp|synproxy`,
 * lab/attack.linux.test.ts, 2 DCs × 2 servers): ≥ 99 % of the legitimate connections in both
 * modes; before steering covered tenants, about 5 % stalled (tcpdump: the client's ACK and the
 * proxied SYN on ams-s2, the host's SYN-ACK on ams-s1). What steering cannot do: share state
 * between DCs, so the customer's tunnel must land in the DC its clients' traffic lands in (as
 * it does when both follow the nearest DC). Protection stays opt-in (`off` by default): it adds
 * that per-server state and the forwarding (half the packets in a 2-server DC cross to the
 * other server); once on, `xdp` is what bench/synflood.bench.ts measured as better (see
 * bench/RESULTS.md).
 *
 * The tunnel devices have TX checksum offload off (kernel/txcsum.ts): before, synproxy's SYN to
 * the host left with a partial checksum, lost on the XDP decapsulation, and every protected
 * connection stalled in the lab, with any number of servers.
 */
import { z } from 'zod';
import { intIn } from './schema.ts';

/** Where SYNs to the tenant's addresses are answered. */
export const SYN_FLOOD_PROTECTIONS = ['off', 'xdp', 'synproxy'] as const;

/** A protection mode. */
export type SynFloodProtection = (typeof SYN_FLOOD_PROTECTIONS)[number];

/** The mode to pick when turning protection on: the better one measured (bench/RESULTS.md). */
export const SYN_FLOOD_RECOMMENDED: Exclude<SynFloodProtection, 'off'> = 'xdp';

/** Defaults: what an operator gets from `synFlood: { protection: xdp }`. */
export const SYN_FLOOD_DEFAULTS = { protection: 'off', mss: 1460, wscale: 7 } as const;

/** `tenants/<t>.synFlood`. */
export const synFloodSchema = z.strictObject({
  /** `off` (default), `xdp` (SYN-ACKs from XDP on the uplink) or `synproxy` (nftables only). */
  protection: z
    .enum(SYN_FLOOD_PROTECTIONS, { error: (iss) => `must be one of ${SYN_FLOOD_PROTECTIONS.join(', ')}; got ${JSON.stringify(iss.input)} (xdp is the recommended way to turn it on)` })
    .default(SYN_FLOOD_DEFAULTS.protection),
  /**
   * MSS offered to clients in the cookie SYN-ACK and to the customer host by the proxy: the
   * largest segment the path to the host carries (tunnel MTU − 40 for IPv4). Default 1460.
   */
  mss: intIn(536, 9000, 'bytes', 'the MSS the path to the customer host carries, e.g. tunnel MTU − 40').default(SYN_FLOOD_DEFAULTS.mss),
  /**
   * Window scale the proxy announces (synproxy mode, and the connection to the host in both
   * modes when the client sent timestamps). Default 7.
   */
  wscale: intIn(0, 14, '', 'RFC 7323 allows 0–14').default(SYN_FLOOD_DEFAULTS.wscale),
});

/** Stored SYN-flood setting. */
export type SynFlood = z.output<typeof synFloodSchema>;

/** The setting of a tenant, with defaults when absent. */
export function synFloodOf(tenant: { readonly synFlood?: SynFlood | undefined }): SynFlood {
  return tenant.synFlood ?? { ...SYN_FLOOD_DEFAULTS };
}
