/**
 * The whole config as one document (the shape of examples/acme.yaml) against the store's keys:
 * assembling the document from entries, and the key-by-key difference between what is stored and
 * what a document asks for. Pure functions; routes/config.ts does the reading and writing.
 */
import { configToEntries, parseEntries } from '../model/keyspace.ts';
import type { Config } from '../model/config.ts';
import type { JsonValue, KeyValue } from '../store/types.ts';
import { CONFIG_ROOTS } from '../model/keyspace.ts';

/** One key's change; `modRevision` is the stored key's (0 = absent). */
export interface Change {
  readonly action: 'create' | 'update' | 'delete';
  readonly key: string;
  readonly before?: unknown;
  readonly after?: unknown;
  readonly modRevision: number;
}

type Doc = Record<string, unknown>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A value without its `tokenHash`, which is never returned. */
export function hideToken(value: unknown): unknown {
  if (!isRecord(value) || !('tokenHash' in value)) return value;
  const { tokenHash: _hidden, ...rest } = value;
  return rest;
}

/** Whether a key is config (under CONFIG_ROOTS), not operational state such as `/status/`. */
export function isConfigKey(key: string): boolean {
  return CONFIG_ROOTS.some((r) => key.startsWith(r));
}

function at(doc: Doc, path: readonly string[]): Doc {
  let node = doc;
  for (const p of path) {
    const next = Object.hasOwn(node, p) ? node[p] : undefined;
    if (isRecord(next)) node = next;
    else node = node[p] = {};
  }
  return node;
}

/**
 * The document of the stored config, as stored (an object that no longer parses is shown as it
 * is, so a GET never hides what is there). Token hashes are left out.
 */
export function entriesToDocument(entries: readonly KeyValue[]): Doc {
  const doc: Doc = {};
  // Parents before children: a parent's fields are merged into the node its children may have made.
  const sorted = [...entries].filter((e) => isConfigKey(e.key)).sort((a, b) => a.key.split('/').length - b.key.split('/').length);
  for (const e of sorted) {
    const s = e.key.slice(1).split('/');
    const value = hideToken(e.value);
    const fields = isRecord(value) ? value : { value };
    if (s[0] === 'anycast' && s.length === 1) doc.anycast = value;
    else if (s[0] === 'dcs' && s.length === 2) Object.assign(at(doc, ['dcs', s[1]!]), fields);
    else if (s[0] === 'dcs' && s.length === 4) at(doc, ['dcs', s[1]!, 'servers'])[s[3]!] = value;
    else if (s[0] === 'tenants' && s.length === 2) Object.assign(at(doc, ['tenants', s[1]!]), fields);
    else if (s[0] === 'tenants' && s.length === 3 && s[2] === 'firewall') at(doc, ['tenants', s[1]!]).firewall = value;
    else if (s[0] === 'tenants' && s.length === 4) at(doc, ['tenants', s[1]!, s[2]!])[s[3]!] = value;
    else if ((s[0] === 'dos' || s[0] === 'egress') && s.length === 3) at(doc, [s[0], s[1]!])[s[2]!] = value;
  }
  return doc;
}

/**
 * Stored entries in normal (parsed) form, so that a value stored in another spelling (`"NL"` vs
 * `"nl"`, a default written out or not) does not show as a change. Objects that do not parse
 * are compared as stored.
 */
export function normalisedEntries(entries: readonly KeyValue[]): Map<string, unknown> {
  const raw = new Map<string, unknown>();
  for (const e of entries) if (isConfigKey(e.key)) raw.set(e.key, e.value);
  const parsed = parseEntries(raw);
  const out = new Map<string, unknown>();
  const normal = configToEntries(parsed.config);
  for (const [key, value] of raw) {
    const broken = parsed.broken.has(key.slice(1));
    out.set(key, !broken && normal.has(key) ? normal.get(key) : value);
  }
  return out;
}

/**
 * The entries a parsed document asks for. `/anycast` is left out when the document has no anycast
 * section (the model reads a missing one as empty, so writing an empty one would be a change
 * nobody asked for).
 */
export function desiredEntries(config: Config, hasAnycast: boolean): Map<string, unknown> {
  const out = configToEntries(config);
  if (!hasAnycast) out.delete('/anycast');
  return out;
}

/**
 * Tenants in `desired` without a `tokenHash` keep the stored one: tokens are issued through the
 * API (POST …/token), and a document read back from GET /v1/config has none, so applying it
 * must not lock every tenant out.
 */
export function keepTokenHashes(desired: Map<string, unknown>, stored: ReadonlyMap<string, unknown>): void {
  for (const [key, value] of desired) {
    if (!/^\/tenants\/[^/]+$/.test(key) || !isRecord(value) || value.tokenHash !== undefined) continue;
    const old = stored.get(key);
    if (isRecord(old) && typeof old.tokenHash === 'string') desired.set(key, { ...value, tokenHash: old.tokenHash });
  }
}

/** JSON text with object keys sorted, for comparing values whatever order their keys came in. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (isRecord(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v));
}

/** The changes that turn `stored` into `desired`, sorted by key; `revisions` gives modRevisions. */
export function diffEntries(stored: ReadonlyMap<string, unknown>, desired: ReadonlyMap<string, unknown>, revisions: ReadonlyMap<string, number>): Change[] {
  const keys = [...new Set([...stored.keys(), ...desired.keys()])].sort();
  const out: Change[] = [];
  for (const key of keys) {
    const modRevision = revisions.get(key) ?? 0;
    const before = stored.get(key);
    const after = desired.get(key);
    if (before === undefined && after !== undefined) out.push({ action: 'create', key, after, modRevision });
    else if (before !== undefined && after === undefined) out.push({ action: 'delete', key, before, modRevision });
    else if (before !== undefined && after !== undefined && canonical(before) !== canonical(after)) out.push({ action: 'update', key, before, after, modRevision });
  }
  return out;
}

/** A change as sent: token hashes left out of `before` and `after`. */
export function changeView(c: Change): Record<string, unknown> {
  return {
    action: c.action,
    key: c.key,
    ...(c.before !== undefined ? { before: hideToken(c.before) as JsonValue } : {}),
    ...(c.after !== undefined ? { after: hideToken(c.after) as JsonValue } : {}),
    modRevision: c.modRevision,
  };
}
