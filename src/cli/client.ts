/**
 * A typed client for the anyedge REST API (global `fetch`). Every failure is a value: an HTTP
 * error keeps its status and the API's `{ error: { code, message, issues } }`; a request that got
 * no answer (refused, unknown host, timeout) has status 0 and says how to reach the API. Answers
 * are checked against the contract's shapes, so a command never works on a body it misread.
 */
import { z } from 'zod';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { serverStatusSchema } from '../model/status.ts';

/** One field error as the API reports it (`path` is the object, `field` the field inside it). */
export interface ApiIssue {
  readonly path: string;
  readonly field: string;
  readonly code: string;
  readonly message: string;
}

/** A failed request. */
export interface ApiError {
  /** HTTP status; 0 when no answer came (see `code`). */
  readonly status: number;
  /** The API's error code, or ours: `unreachable`, `timeout`, `bad_response`. */
  readonly code: string;
  readonly message: string;
  /** Field errors of a 400 answer. */
  readonly issues?: readonly ApiIssue[];
  /** Seconds to wait, from a 429 answer's Retry-After. */
  readonly retryAfterSeconds?: number;
  readonly method: string;
  /** The full URL requested. */
  readonly url: string;
}

/** A stored object as the API returns it: its id, the revision it was last written at, and its fields. */
export const apiObjectSchema = z.looseObject({
  id: z.string().optional(),
  revision: z.number().int().nonnegative(),
});

/** A stored object as the API returns it. */
export type ApiObject = z.output<typeof apiObjectSchema>;

/** A list answer. */
export const listSchema = z.looseObject({ items: z.array(apiObjectSchema) });

/** One change of a whole-config diff. */
export const changeSchema = z.looseObject({
  action: z.enum(['create', 'update', 'delete']),
  key: z.string().startsWith('/'),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  /** The key's current modRevision; 0 when it does not exist. */
  modRevision: z.number().int().nonnegative(),
});

/** One change of a whole-config diff. */
export type Change = z.output<typeof changeSchema>;

/** `POST /v1/config/diff` and `PUT /v1/config` answers. */
export const diffSchema = z.looseObject({ revision: z.number().int().nonnegative(), changes: z.array(changeSchema) });

/** A whole-config diff or apply answer. */
export type Diff = z.output<typeof diffSchema>;

/** One server of `GET /v1/servers`. */
export const serverItemSchema = z.looseObject({
  dc: z.string(),
  server: z.string(),
  /** Null when the server's agent has never reported, or its report does not parse (see `error`). */
  status: serverStatusSchema.nullable(),
  /** False for a server that reports but is not in the config (any more). */
  configured: z.boolean().optional(),
  /** Why a report that exists is not shown (it does not parse). */
  error: z.string().optional(),
  storeRevision: z.number().int().nonnegative(),
  lag: z.object({ revisions: z.number(), seconds: z.number() }),
  stale: z.boolean(),
});

/** One server of `GET /v1/servers`. */
export type ServerItem = z.output<typeof serverItemSchema>;

/** `GET /v1/servers`. */
export const serversSchema = z.looseObject({ items: z.array(serverItemSchema) });

/** `GET /v1/config`. */
export const configSchema = z.looseObject({ revision: z.number().int().nonnegative(), config: z.record(z.string(), z.unknown()) });

const errorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    issues: z.array(z.object({ path: z.string(), field: z.string(), code: z.string(), message: z.string() })).optional(),
  }),
});

/** How to reach the API. */
export interface ClientOptions {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** Bearer token text; absent for the routes that need none. */
  readonly token?: string;
  /** Per-request timeout (default 30 s). */
  readonly timeoutMs?: number;
  /** The fetch to use (default the global one). */
  readonly fetch?: typeof fetch;
  /** How a 429's Retry-After is waited (default a timer; tests replace it). */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * A rate-limited request is retried this many times when the API asks for at most
 * {@link MAX_RETRY_AFTER_S} seconds: listing every tenant's objects is a burst of requests, and
 * the limiter is there to spread them, not to fail them.
 */
export const RATE_LIMIT_RETRIES = 3;
/** Longest Retry-After the client waits by itself; longer ones are returned as errors. */
export const MAX_RETRY_AFTER_S = 5;

/** A 409 from a lost compare-and-set: what was read (or diffed) changed before the write. */
export function isStale(e: ApiError): boolean {
  return e.status === 409 && e.code === 'cas_failed';
}

/** One request. */
export interface RequestOptions {
  /** JSON body. */
  readonly body?: unknown;
  /** `If-Match: <revision>` (0 = must not exist). */
  readonly ifMatch?: number;
  /** Query parameters. */
  readonly query?: Readonly<Record<string, string>>;
}

/** The contract's requests, each checked against its answer's shape. */
export interface ApiClient {
  readonly baseUrl: string;
  /** Any request; the answer's body is checked with `schema`. */
  request<T>(method: string, path: string, schema: z.ZodType<T>, options?: RequestOptions): Promise<Result<T, ApiError>>;
  /** `GET path` of one object. */
  getObject(path: string): Promise<Result<ApiObject, ApiError>>;
  /** `GET path` of a list. */
  list(path: string): Promise<Result<ApiObject[], ApiError>>;
  /** `DELETE path`, optionally only if the object is still at `ifMatch`. */
  remove(path: string, ifMatch?: number): Promise<Result<unknown, ApiError>>;
  /** `POST /v1/config/diff`: what applying `config` would change. */
  diffConfig(config: unknown): Promise<Result<Diff, ApiError>>;
  /** `PUT /v1/config`: applies `config` if every changed key is still at its `expect` revision. */
  putConfig(config: unknown, expect?: Readonly<Record<string, number>>): Promise<Result<Diff, ApiError>>;
  /** `GET /v1/servers`. */
  servers(): Promise<Result<ServerItem[], ApiError>>;
}

/** Path segment encoding: ids are safe already, but a user-typed id must not change the route. */
export function seg(id: string): string {
  return encodeURIComponent(id);
}

function connectionProblem(e: unknown): { code: string; why: string } {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
  const name = (e as { name?: unknown }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return { code: 'timeout', why: 'no answer in time' };
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  const why =
    code === 'ECONNREFUSED'
      ? 'connection refused'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'unknown host'
        : code === 'ECONNRESET'
          ? 'connection reset'
          : typeof cause?.message === 'string'
            ? cause.message
            : String((e as Error).message ?? e);
  return { code: 'unreachable', why };
}

/** Makes a client. */
export function createClient(options: ClientOptions): ApiClient {
  const doFetch = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const timeoutMs = options.timeoutMs ?? 30_000;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');

  async function request<T>(method: string, path: string, schema: z.ZodType<T>, o: RequestOptions = {}): Promise<Result<T, ApiError>> {
    for (let attempt = 0; ; attempt++) {
      const r = await once(method, path, schema, o);
      const wait = !r.ok && r.error.status === 429 ? (r.error.retryAfterSeconds ?? 1) : undefined;
      if (wait === undefined || wait > MAX_RETRY_AFTER_S || attempt >= RATE_LIMIT_RETRIES) return r;
      await sleep(wait * 1000);
    }
  }

  async function once<T>(method: string, path: string, schema: z.ZodType<T>, o: RequestOptions): Promise<Result<T, ApiError>> {
    const query = o.query && Object.keys(o.query).length ? '?' + new URLSearchParams(o.query).toString() : '';
    const url = baseUrl + path + query;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    if (o.body !== undefined) headers['content-type'] = 'application/json';
    if (o.ifMatch !== undefined) headers['if-match'] = String(o.ifMatch);
    const fail = (status: number, code: string, message: string, extra: Partial<ApiError> = {}): Result<T, ApiError> =>
      err({ status, code, message, method, url, ...extra });

    let res: Response;
    let text: string;
    try {
      res = await doFetch(url, {
        method,
        headers,
        ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      const p = connectionProblem(e);
      return fail(0, p.code, p.why);
    }

    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const parsed = errorBodySchema.safeParse(body);
      const retry = Number(res.headers.get('retry-after'));
      const extra: Partial<ApiError> = Number.isFinite(retry) && retry > 0 ? { retryAfterSeconds: retry } : {};
      if (parsed.success) {
        const e = parsed.data.error;
        return fail(res.status, e.code, e.message, { ...extra, ...(e.issues ? { issues: e.issues } : {}) });
      }
      // Not our API's error shape (a proxy, another program on the port): show what came back.
      const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
      return fail(res.status, 'http_error', `HTTP ${res.status} ${res.statusText}${snippet ? `: ${snippet}` : ''}`, extra);
    }
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      const where = first && first.path.length ? ` at ${first.path.join('.')}` : '';
      return fail(res.status, 'bad_response', `the answer does not have the expected shape${where}: ${first?.message ?? 'not JSON'}; is ${baseUrl} an anyedge API of the same version?`);
    }
    return ok(parsed.data);
  }

  return {
    baseUrl,
    request,
    getObject: (path) => request('GET', path, apiObjectSchema),
    list: async (path) => {
      const r = await request('GET', path, listSchema);
      return r.ok ? ok(r.value.items) : r;
    },
    remove: (path, ifMatch) => request('DELETE', path, z.unknown(), ifMatch === undefined ? {} : { ifMatch }),
    diffConfig: (config) => request('POST', '/v1/config/diff', diffSchema, { body: { config } }),
    putConfig: (config, expect) => request('PUT', '/v1/config', diffSchema, { body: expect === undefined ? { config } : { config, expect } }),
    servers: async () => {
      const r = await request('GET', '/v1/servers', serversSchema);
      return r.ok ? ok(r.value.items) : r;
    },
  };
}

/**
 * The one way an `ApiError` is printed: what failed, why, and what to do. Field errors follow,
 * one per line, as `path.field: message`.
 */
export function formatApiError(e: ApiError): string {
  const route = `${e.method} ${new URL(e.url).pathname}`;
  const base = new URL(e.url).origin;
  let line: string;
  if (e.status === 0)
    line =
      `cannot reach the anyedge API at ${base} (${e.message}); ` +
      'start it with `anyedge api`, or point to it with --api URL (or ANYEDGE_API)';
  else if (e.status === 401) line = `${route}: ${e.message} (401); pass a valid token with --token-file FILE or ANYEDGE_TOKEN`;
  else if (e.status === 403) line = `${route}: ${e.message} (403); this needs an operator token`;
  else if (e.status === 429) line = `${route}: ${e.message} (429); try again${e.retryAfterSeconds ? ` in ${e.retryAfterSeconds} s` : ' later'}`;
  else if (e.status === 503) line = `${route}: ${e.message} (503); the API cannot use its store — try again, or check the API's store`;
  else line = `${route}: ${e.message} (${e.status} ${e.code})`;
  const issues = (e.issues ?? []).map((i) => `  ${formatApiIssue(i)}`);
  return [line, ...issues].join('\n') + '\n';
}

/** `path.field: message`, like model/issue.ts's `formatIssue`. */
export function formatApiIssue(i: ApiIssue): string {
  const where = i.path + (i.field ? `.${i.field}` : '');
  return where ? `${where}: ${i.message}` : i.message;
}
