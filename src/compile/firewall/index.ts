/**
 * The customer firewall compiler: a tenant's rules → one nftables JSON batch that replaces the
 * tenant's table atomically (`compile.ts`, where the table layout is described), and its text
 * rendering for people (`format.ts`).
 */
export { compileFirewall, counterNames, stringifyNft, DEFAULT_TABLE, DEFAULT_NAMED_SET_MIN } from './compile.ts';
export type { FirewallOptions } from './compile.ts';
export { formatNft } from './format.ts';
export type { Json, NftCommand, NftJson } from './nft.ts';
