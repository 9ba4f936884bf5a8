/**
 * Backend-neutral checks of what callers hand to a `ConfigStore`: keys, prefixes, values and
 * transactions. Every backend runs them before touching storage, so a malformed request fails the
 * same way (`bad_request`) on LMDB and etcd, and never after half a write.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { Condition, Expect, JsonValue, Op, StoreError, TxnRequest } from './types.ts';

/**
 * Longest key in UTF-8 bytes. LMDB's default page size caps keys at 1978 bytes including
 * lmdb-js's encoding overhead; 1024 leaves room and is far above any path in DESIGN.md §3.
 */
export const MAX_KEY_BYTES = 1024;

/**
 * Largest value in bytes of JSON text. etcd refuses requests above 1.5 MiB by default; 1 MiB per
 * value keeps a multi-key transaction under that and keeps LMDB overflow pages bounded.
 */
export const MAX_VALUE_BYTES = 1 << 20;

// A key is one or more `/segment`s; segments are non-empty and free of control characters, so
// keys print cleanly and `//` or a trailing `/` (which would make prefix listings ambiguous) never
// appear. NUL is also the one character lmdb-js cannot store in a string key.
// eslint-disable-next-line no-control-regex
const KEY_RE = /^(?:\/[^/\u0000-\u001f\u007f]+)+$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

function badRequest(message: string, key?: string): { readonly ok: false; readonly error: StoreError } {
  return err(key === undefined ? { code: 'bad_request', message } : { code: 'bad_request', key, message });
}

/** Checks a key: `/a/b/c`, no empty segment or control character, at most {@link MAX_KEY_BYTES}. */
export function checkKey(op: string, key: unknown): Result<string, StoreError> {
  if (typeof key !== 'string') return badRequest(`${op}: key must be a string, got ${typeof key}`);
  if (!KEY_RE.test(key)) {
    return badRequest(
      `${op} ${JSON.stringify(key)}: a key is one or more "/segment" parts with no empty segment, ` +
        'no trailing "/" and no control character, e.g. /tenants/acme/prefixes/p0',
      key,
    );
  }
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
    return badRequest(`${op} ${key.slice(0, 40)}…: key is longer than ${MAX_KEY_BYTES} bytes`, key);
  }
  return ok(key);
}

/**
 * Checks a listing/watch prefix: `''` (everything) or a string starting with `/`. A prefix is a
 * plain byte prefix, so `/tenants/a` also matches `/tenants/ab`: end it with `/` for a subtree.
 */
export function checkPrefix(op: string, prefix: unknown): Result<string, StoreError> {
  if (typeof prefix !== 'string') return badRequest(`${op}: prefix must be a string, got ${typeof prefix}`);
  if (prefix !== '' && !prefix.startsWith('/')) {
    return badRequest(`${op} ${JSON.stringify(prefix)}: a prefix is empty or starts with "/"`, prefix);
  }
  if (CONTROL_RE.test(prefix)) return badRequest(`${op} ${JSON.stringify(prefix)}: prefix has a control character`, prefix);
  if (Buffer.byteLength(prefix) > MAX_KEY_BYTES) return badRequest(`${op}: prefix is longer than ${MAX_KEY_BYTES} bytes`, prefix);
  return ok(prefix);
}

/**
 * Turns a caller's value into the JSON value the store will hand back, and its JSON text. Going
 * through JSON here (rather than storing JS objects) makes every backend return exactly what
 * `JSON.parse(JSON.stringify(value))` gives (`undefined` fields dropped, dates as strings), which is
 * what etcd's byte values would give too.
 */
export function normalizeValue(op: string, key: string, value: unknown): Result<{ value: JsonValue; json: string }, StoreError> {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (cause) {
    // Cycles and BigInt throw; both are caller mistakes, not store failures.
    return badRequest(`${op} ${key}: value is not JSON-serialisable (${(cause as Error).message})`, key);
  }
  if (json === undefined) return badRequest(`${op} ${key}: value ${typeof value} has no JSON form; store null to mean "no value"`, key);
  if (Buffer.byteLength(json) > MAX_VALUE_BYTES) {
    return badRequest(`${op} ${key}: value is ${Buffer.byteLength(json)} bytes of JSON, more than ${MAX_VALUE_BYTES}; split the object`, key);
  }
  return ok({ value: JSON.parse(json) as JsonValue, json });
}

/** A transaction after checking: keys validated, values normalised. */
export interface CheckedTxn {
  readonly conditions: readonly Condition[];
  readonly ops: readonly CheckedOp[];
}

/** An op after checking; puts carry their normalised value. */
export type CheckedOp =
  | { readonly op: 'put'; readonly key: string; readonly value: JsonValue; readonly json: string }
  | { readonly op: 'delete'; readonly key: string }
  | { readonly op: 'deletePrefix'; readonly prefix: string };

function checkExpect(op: string, c: Condition): Result<Condition, StoreError> {
  const n = 'modRevision' in c ? c.modRevision : 'version' in c ? c.version : undefined;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    return badRequest(`${op} ${c.key}: a condition is { modRevision: n } or { version: n } with n a whole number ≥ 0 (0 = absent)`, c.key);
  }
  return ok(c);
}

/**
 * Checks a transaction: keys, values and conditions well formed, at least one op, and no two ops
 * on the same key (a put or delete inside a deleted prefix, or overlapping prefixes, count too).
 * etcd refuses the same ("duplicate key given in txn request"), and forbidding it means the result
 * never depends on the order of ops.
 */
export function checkTxn(request: TxnRequest, op = 'txn'): Result<CheckedTxn, StoreError> {
  // Messages name the caller's operation: "put /a: …" for put(), "txn put /a: …" for txn().
  const name = (kind: string): string => (op === 'txn' ? `txn ${kind}` : op);
  if (typeof request !== 'object' || request === null || !Array.isArray(request.then)) {
    return badRequest(`${op}: request must be { if?: Condition[], then: Op[] }`);
  }
  const conditions: Condition[] = [];
  for (const c of request.if ?? []) {
    const key = checkKey(name('condition'), (c as { key?: unknown } | null)?.key);
    if (!key.ok) return key;
    const checked = checkExpect(name('condition'), c);
    if (!checked.ok) return checked;
    conditions.push(checked.value);
  }
  const ops: CheckedOp[] = [];
  const keys = new Set<string>();
  const prefixes: string[] = [];
  for (const o of request.then as readonly Op[]) {
    switch (o?.op) {
      case 'put': {
        const key = checkKey(name('put'), o.key);
        if (!key.ok) return key;
        const v = normalizeValue(name('put'), o.key, o.value);
        if (!v.ok) return v;
        ops.push({ op: 'put', key: o.key, value: v.value.value, json: v.value.json });
        keys.add(o.key);
        break;
      }
      case 'delete': {
        const key = checkKey(name('delete'), o.key);
        if (!key.ok) return key;
        ops.push({ op: 'delete', key: o.key });
        keys.add(o.key);
        break;
      }
      case 'deletePrefix': {
        const p = checkPrefix(name('deletePrefix'), o.prefix);
        if (!p.ok) return p;
        // An empty prefix would wipe the store: make the caller say '/' on purpose.
        if (o.prefix === '') return badRequest(`${name('deletePrefix')}: prefix must start with "/" (use "/" to delete everything)`);
        ops.push({ op: 'deletePrefix', prefix: o.prefix });
        prefixes.push(o.prefix);
        break;
      }
      default:
        return badRequest(`txn: unknown op ${JSON.stringify((o as { op?: unknown } | null)?.op)}; use put, delete or deletePrefix`);
    }
    // Count after pushing so a repeated key is caught at its second op.
    if (keys.size + prefixes.length !== ops.length) {
      const dup = 'key' in o ? o.key : '';
      return badRequest(`txn: key ${dup} appears in more than one op; merge them into one`, dup);
    }
  }
  for (let i = 0; i < prefixes.length; i++) {
    const p = prefixes[i]!;
    for (let j = 0; j < prefixes.length; j++) {
      if (i !== j && prefixes[j]!.startsWith(p)) {
        return badRequest(`txn: deletePrefix ${p} overlaps deletePrefix ${prefixes[j]}; keep only ${p}`, p);
      }
    }
    for (const k of keys) {
      if (k.startsWith(p)) return badRequest(`txn: ${k} is written and also inside deletePrefix ${p}; split the transaction`, k);
    }
  }
  return ok({ conditions, ops });
}

/** The revision argument of watch/compact: a whole number ≥ 0. */
export function checkRevision(op: string, revision: unknown): Result<number, StoreError> {
  if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
    return badRequest(`${op}: revision must be a whole number ≥ 0, got ${String(revision)}`);
  }
  return ok(revision);
}

/**
 * Orders keys by their UTF-8 bytes, the order LMDB and etcd keep them in. Plain `<` compares
 * UTF-16 code units, which puts characters above U+FFFF before U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** The transaction of `put(key, value, expect)`: every backend's put is one. */
export function putTxn(key: string, value: unknown, expect?: Expect): TxnRequest {
  return { if: expect ? [{ ...expect, key }] : [], then: [{ op: 'put', key, value }] };
}

/** The transaction of `delete(key, expect)`. */
export function deleteTxn(key: string, expect?: Expect): TxnRequest {
  return { if: expect ? [{ ...expect, key }] : [], then: [{ op: 'delete', key }] };
}
