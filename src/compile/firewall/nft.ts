/**
 * The slice of the libnftables JSON schema (libnftables-json(5)) the firewall compiler emits, and
 * small builders for its expressions. The types are structurally the same as the kernel driver's
 * (`src/kernel/nft.ts`), so a compiled batch goes to `NftApi.apply` as it is, without `compile/`
 * importing `kernel/` (dependency direction: compile ← agent → kernel).
 */

/** A JSON value, as nft reads and prints it. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** One command of a batch, e.g. `{ "add": { "rule": {…} } }`, or the `metainfo` header. */
export type NftCommand = { readonly [verb: string]: Json };

/** A batch for `nft -j -f -`: nft's top-level `{ "nftables": [ … ] }`. */
export interface NftJson {
  readonly nftables: readonly NftCommand[];
}

/** A JSON object (not an array, not null). */
export type JsonObject = { readonly [key: string]: Json };

/** Whether a value is a JSON object. */
export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `left == right`; nft prints it without the operator (`tcp dport 22`). */
export function match(left: Json, right: Json, op = '=='): Json {
  return { match: { op, left, right } };
}

/** A header field, e.g. `payload('tcp', 'dport')` for `tcp dport`. */
export function payload(protocol: string, field: string): Json {
  return { payload: { protocol, field } };
}

/** A packet meta key, e.g. `meta('l4proto')`. */
export function meta(key: string): Json {
  return { meta: { key } };
}

/** An address prefix as a set element or match value. */
export function prefix(addr: string, len: number): Json {
  return { prefix: { addr, len } };
}

/** A closed range as a set element or match value. */
export function range(lo: Json, hi: Json): Json {
  return { range: [lo, hi] };
}

/** A jump to a regular chain (returns to the caller when the chain ends without a verdict). */
export function jump(target: string): Json {
  return { jump: { target } };
}

/** A goto to a regular chain (does not return to the caller). */
export function goto(target: string): Json {
  return { goto: { target } };
}

/** The `accept` or `drop` verdict statement. */
export function verdict(v: 'accept' | 'drop'): Json {
  return { [v]: null };
}

/** A reference to a named counter: `counter name "x"`. */
export function namedCounter(name: string): Json {
  return { counter: name };
}
