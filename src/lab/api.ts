/**
 * The lab's REST API: the real API (api/app.ts) served on loopback over the lab's store, with a
 * fresh operator token that exists only in this process (its hash is all the API holds). `lab
 * demo` provisions through it exactly as an operator's `curl` would: HTTP, bearer token, JSON.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { createApi } from '../api/app.ts';
import { serveApi, type ServedApi } from '../api/serve.ts';
import { generateToken } from '../api/tokens.ts';
import { openStore, parseStoreSpec } from '../store/open.ts';
import type { ConfigStore } from '../store/types.ts';
import type { LabError } from './errors.ts';
import { sleep } from './procs.ts';

/** A running lab API. */
export interface LabApi {
  readonly url: string;
  /** A JSON request with the operator token; the status and the parsed body. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

/** Serves the API over the store `spec` on 127.0.0.1 (any free port). */
export async function startLabApi(spec: string): Promise<Result<LabApi, LabError>> {
  const parsed = parseStoreSpec(spec);
  if (!parsed.ok) return err({ code: 'invalid', path: 'store', message: parsed.error });
  const store = await openStore(parsed.value);
  if (!store.ok) return err({ code: 'failed', path: 'store', message: `${store.error.message}; is the lab's store running (anyedge lab status)?`, cause: store.error });
  const { token, hash } = generateToken();
  // The demo is the only caller: the default per-token rate limit would only slow its polling.
  const app = createApi({ store: store.value, operatorTokenHashes: [hash], rateLimit: { perSecond: 1000, burst: 1000 } });
  let served: ServedApi;
  try {
    served = await serveApi(app, { host: '127.0.0.1', port: 0 });
  } catch (e) {
    await store.value.close();
    return err({ code: 'failed', path: 'api', message: (e as Error).message, cause: e });
  }
  return ok(labApi(served, store.value, token));
}

function labApi(served: ServedApi, store: ConfigStore, token: string): LabApi {
  return {
    url: served.url,
    async call(method, path, body) {
      const res = await fetch(`${served.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON: the text itself is the best evidence.
      }
      return { status: res.status, body: parsed };
    },
    async close() {
      await served.close();
      await store.close();
    },
  };
}

interface ServerItem {
  readonly dc: string;
  readonly server: string;
  readonly status: { readonly appliedRevision: number; readonly lastError?: { readonly message: string } } | null;
}

/**
 * Polls GET /v1/servers until every server reports `revision` applied; the seconds it took, or
 * an error naming the servers still behind and their last error.
 */
export async function waitApplied(api: LabApi, revision: number, timeoutMs: number): Promise<Result<number, LabError>> {
  const started = Date.now();
  let behind: ServerItem[] = [];
  for (;;) {
    const r = await api.call('GET', '/v1/servers');
    if (r.status !== 200) return err({ code: 'failed', path: 'api', message: `GET /v1/servers answered ${r.status}: ${JSON.stringify(r.body)}` });
    const items = (r.body as { items: ServerItem[] }).items;
    behind = items.filter((s) => (s.status?.appliedRevision ?? 0) < revision);
    if (items.length > 0 && behind.length === 0) return ok((Date.now() - started) / 1000);
    if (Date.now() - started > timeoutMs) break;
    await sleep(100);
  }
  const why = behind.map((s) => `${s.dc}/${s.server} at ${s.status?.appliedRevision ?? 'no report'}${s.status?.lastError ? ` (${s.status.lastError.message})` : ''}`).join(', ');
  return err({ code: 'timeout', path: 'agents', message: `not every server applied revision ${revision} within ${timeoutMs} ms: ${why}; see the agents' logs in the lab directory` });
}
