/**
 * One server's desired egress state (nft.ts explains the layout): its egress addresses on `lo` of
 * its default namespace, which part of `lo` is ours, and the SNAT table. compile/server.ts puts
 * the table among the server's nft tables and this under `DesiredServer.egress`;
 * agent/egress.ts reconciles the addresses.
 */
import type { Config } from '../../model/config.ts';
import type { NsRef } from '../../kernel/netns.ts';
import type { NftJson } from '../../kernel/nft.ts';
import type { Result } from '../../lib/result.ts';
import { ok } from '../../lib/result.ts';
import type { EgressError } from './error.ts';
import type { EgressAddress } from './server.ts';
import { serverEgress } from './server.ts';
import { compileEgressNft, loCidr } from './nft.ts';

/** The egress part of a `DesiredServer`. */
export interface DesiredEgress {
  /** The server's namespace (where `lo` is). */
  readonly ns: NsRef;
  /** Host prefixes on `lo`, with the assignment they come from, in address order. */
  readonly addrs: readonly { readonly path: string; readonly cidr: string }[];
  /** Prefixes inside which an address on `lo` is ours (anycast.egressRanges). */
  readonly owned: readonly string[];
  /** What the server may use, for the proxy and for people. */
  readonly addresses: readonly EgressAddress[];
}

/** The SNAT table as compile/server.ts's `DesiredNft` wants it. */
export interface EgressNft {
  readonly path: string;
  readonly ns: NsRef;
  readonly table: { readonly family: 'ip'; readonly name: string };
  readonly batch: NftJson;
}

/** Compiles a server's egress state; `nft` is null when it has no IPv4 egress address. */
export function compileServerEgress(config: Config, where: { dc: string; server: string }, prefix: string, ns: NsRef): Result<{ egress: DesiredEgress; nft: EgressNft | null }, EgressError> {
  const r = serverEgress(config, where.dc, where.server);
  if (!r.ok) return r;
  const addresses = r.value;
  const table = `${prefix}egress`;
  const nft: EgressNft | null = addresses.some((a) => a.family === 4)
    ? { path: 'server/egress/nft', ns, table: { family: 'ip', name: table }, batch: compileEgressNft(table, addresses) as unknown as NftJson }
    : null;
  return ok({
    egress: { ns, addrs: addresses.map((a) => ({ path: `egress/assign/${a.ip}`, cidr: loCidr(a) })), owned: [...config.anycast.egressRanges], addresses },
    nft,
  });
}
