/**
 * Test harness of the API: a fresh LMDB store in a temporary directory opened with the config
 * check (as every program opens it), optionally seeded with examples/acme.yaml, an operator
 * token, and tokens for the seeded tenants. `cleanup` closes the store and removes the directory.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { mustOpen } from '../store/lmdb-harness.ts';
import type { LmdbConfigStore } from '../store/lmdb.ts';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import type { ApiOptions } from './app.ts';
import { createApi } from './app.ts';
import { generateToken } from './tokens.ts';

/** examples/acme.yaml as a plain document. */
export function acmeDocument(): Record<string, unknown> {
  return parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
}

/** A running API over a throwaway store. */
export interface ApiHarness {
  readonly app: ReturnType<typeof createApi>;
  readonly store: LmdbConfigStore;
  /** The operator's token. */
  readonly operator: string;
  /** Tenant id → its token (seeded tenants only). */
  readonly tenants: Readonly<Record<string, string>>;
  /** `app.request` with JSON in and out; `token` null sends no Authorization. */
  call(method: string, path: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: unknown; headers: Headers }>;
  cleanup(): Promise<void>;
}

/** Opens a harness; `seed` loads examples/acme.yaml with tokens for acme and globex. */
export async function apiHarness(opts: { seed?: boolean; api?: Partial<Omit<ApiOptions, 'store' | 'operatorTokenHashes'>> } = {}): Promise<ApiHarness> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-api-'));
  let store: LmdbConfigStore;
  try {
    store = mustOpen({ path: dir, validation: CONFIG_VALIDATION, noSync: true });
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const operator = generateToken();
  const tenants: Record<string, string> = {};
  if (opts.seed ?? true) {
    const doc = acmeDocument() as { tenants: Record<string, Record<string, unknown>> };
    for (const t of Object.keys(doc.tenants)) {
      const tok = generateToken();
      tenants[t] = tok.token;
      doc.tenants[t]!.tokenHash = tok.hash;
    }
    const config = parseConfig(doc);
    if (!config.ok) throw new Error(`harness: examples/acme.yaml does not parse: ${JSON.stringify(config.error.slice(0, 3))}`);
    const w = await store.txn({ then: [...configToEntries(config.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    if (!w.ok) throw new Error(`harness: seeding failed: ${w.error.message}`);
  }
  // High limits unless a test sets its own: the matrix and fuzz tests send thousands of requests.
  const app = createApi({ store, operatorTokenHashes: [operator.hash], rateLimit: { perSecond: 1e6, burst: 1e6 }, ...opts.api });
  return {
    app,
    store,
    operator: operator.token,
    tenants,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}), ...o.headers };
      const token = o.token === undefined ? operator.token : o.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      const res = await app.request(path, { method, headers, ...(o.body !== undefined ? { body: typeof o.body === 'string' ? o.body : JSON.stringify(o.body) } : {}) });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // Left as text: the caller's assertion on the shape will show it.
      }
      return { status: res.status, body, headers: res.headers };
    },
    async cleanup() {
      try {
        await store.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
