/**
 * The egress addresses one server may use, each with its own port range: the proxy binds to
 * `ip` and lets the kernel pick a port, and the server's SNAT (nft.ts) keeps that port inside
 * `portLo..portHi`. Slice rules: slices.ts.
 */
import type { Config } from '../../model/config.ts';
import type { EgressClass } from '../../model/egress.ts';
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import type { EgressError } from './error.ts';
import { egressError } from './error.ts';
import { assignedAddresses, dcSlices, slicePorts, V6_PORTS } from './slices.ts';

/** An egress address of one server. */
export interface EgressAddress {
  readonly ip: string;
  readonly family: 4 | 6;
  readonly pool: string;
  readonly class: EgressClass;
  readonly country: string;
  /** This server's ports of it: its slice (IPv6: 1024–65535). */
  readonly portLo: number;
  readonly portHi: number;
  /** null for IPv6 (no slices). */
  readonly sliceSize: number | null;
}

/**
 * The egress addresses this server may use, each with its own port range: IPv4 first, numeric
 * order. A `down` server still gets its addresses (it keeps its slice; whether it runs is the
 * agent's business).
 */
export function serverEgress(config: Config, dc: string, server: string): Result<EgressAddress[], EgressError> {
  if (!Object.hasOwn(config.dcs, dc)) return err(egressError('not_found', `dcs/${dc}`, `no data center ${JSON.stringify(dc)}; known: ${Object.keys(config.dcs).join(', ') || 'none'}`));
  if (!Object.hasOwn(config.dcs[dc]!.servers, server))
    return err(egressError('not_found', `dcs/${dc}/servers/${server}`, `data center ${dc} has no server ${JSON.stringify(server)}; known: ${Object.keys(config.dcs[dc]!.servers).join(', ') || 'none'}`));
  const all = assignedAddresses(config);
  if (!all.ok) return all;
  const sliced = dcSlices(config, dc, all.value);
  if (!sliced.ok) return err(sliced.error);
  const out: EgressAddress[] = [];
  for (const s of sliced.value) {
    const mine = s.slices.find((x) => x.server === server);
    if (!mine) continue;
    const ports = slicePorts(mine.slice, s.sliceSize);
    const { pool, poolId, ip } = s.address;
    out.push({ ip, family: 4, pool: poolId, class: pool.tags.class, country: pool.tags.country, portLo: ports.lo, portHi: ports.hi, sliceSize: s.sliceSize });
  }
  for (const a of all.value)
    if (a.family === 6 && a.dc === dc && a.server === server)
      out.push({ ip: a.ip, family: 6, pool: a.poolId, class: a.pool.tags.class, country: a.pool.tags.country, portLo: V6_PORTS.lo, portHi: V6_PORTS.hi, sliceSize: null });
  return ok(out);
}
