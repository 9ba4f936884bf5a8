/**
 * The REST API as a hono app. Every route of the table (routes/index.ts) passes the same steps,
 * in this order, so no route can skip one:
 *
 * 1. authentication (tenant routes look the tenant in the URL up first) — 401 when no known token;
 * 2. rate limit: per token, or per remote address without one — 429 with Retry-After;
 * 3. body limit, before anything reads the body — 413;
 * 4. path ids (model/id.ts) — 400 naming the segment;
 * 5. authorization: operator-only routes — 403 for tenants; another tenant's URL — 404, exactly
 *    as if it did not exist;
 * 6. query parameters and If-Match — 400;
 * 7. the body: JSON only — 415, parseable and not absurdly nested — 400;
 * 8. the handler, whose failures are `ApiError` values.
 *
 * Authentication comes before everything else that costs: an unknown caller gets its 401 without
 * the API reading its body or touching the store beyond one key.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { bodyLimit } from 'hono/body-limit';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { ConfigStore } from '../store/types.ts';
import type { ApiError } from './errors.ts';
import { apiError, errorBody, errorHeaders } from './errors.ts';
import type { Principal } from './auth.ts';
import { Authenticator } from './auth.ts';
import type { RateLimit } from './rate-limit.ts';
import { RateLimiter } from './rate-limit.ts';
import { isTokenHash } from './tokens.ts';
import type { RouteSpec } from './route.ts';
import { honoPath } from './route.ts';
import { ROUTES } from './routes/index.ts';
import { checkParams, checkQuery, parseIfMatch, parseJsonBody, refuseBody } from './request.ts';
import type { Viewer } from './conflicts.ts';

/** Options of {@link createApi}. */
export interface ApiOptions {
  /** The config store, opened with CONFIG_VALIDATION (store/open.ts). */
  readonly store: ConfigStore;
  /** `sha256:<hex>` hashes of the operator tokens. */
  readonly operatorTokenHashes: readonly string[];
  /** Largest request body in bytes (default {@link DEFAULT_BODY_LIMIT}). */
  readonly bodyLimitBytes?: number;
  /** Per-caller rate limit (default {@link DEFAULT_RATE_LIMIT}). */
  readonly rateLimit?: RateLimit;
  /** Clock in milliseconds (default Date.now): rate limits and status staleness. */
  readonly now?: () => number;
}

/** 1 MiB: a whole config of a few thousand objects; anything larger is split or a mistake. */
export const DEFAULT_BODY_LIMIT = 1 << 20;

/**
 * 20 requests/s with bursts of 40 per token or address: far above what people and the CLI's
 * apply loops need, low enough that one caller cannot keep the store's writer busy.
 */
export const DEFAULT_RATE_LIMIT: RateLimit = { perSecond: 20, burst: 40 };

type Env = { Variables: { principal: Principal | undefined } };

/** The remote address of a request served by @hono/node-server; `local` for in-process requests (tests). */
function remoteAddress(c: Context<Env>): string {
  const env = c.env as { incoming?: unknown; server?: unknown } | undefined;
  if (env === undefined || (env.incoming === undefined && env.server === undefined)) return 'local';
  return getConnInfo(c).remote.address ?? 'unknown';
}

function send(c: Context<Env>, e: ApiError): Response {
  return c.json(errorBody(e), e.status, errorHeaders(e));
}

/** The route table's paths, each with the methods it has. */
function methodsByPath(routes: readonly RouteSpec[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of routes) out.set(r.path, [...(out.get(r.path) ?? []), r.method]);
  return out;
}

/** The API. The returned app serves `fetch`; see serve.ts to put it on a socket. */
export function createApi(options: ApiOptions): Hono<Env> {
  const bad = options.operatorTokenHashes.filter((h) => !isTokenHash(h));
  // A caller bug, not a request failure: the CLI checks the hash file before it gets here.
  if (bad.length) throw new TypeError(`createApi: operatorTokenHashes must be "sha256:<64 hex>" hashes; ${bad.length} are not`);
  const now = options.now ?? Date.now;
  const store = options.store;
  const auth = new Authenticator({ store, operatorTokenHashes: options.operatorTokenHashes, now });
  const limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT, now);
  const maxBody = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT;
  const limitBody = bodyLimit({ maxSize: maxBody, onError: (c) => send(c as Context<Env>, apiError(413, 'payload_too_large', `the body is larger than ${maxBody} bytes; send less (split a large config into several applies)`)) });

  const app = new Hono<Env>();
  app.onError((e, c) => {
    // A bug: logged with its stack (never a token: none is kept past hashing), answered generically.
    console.error(`anyedge api: ${c.req.method} ${new URL(c.req.url).pathname}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    return send(c, apiError(500, 'internal', 'internal error; the API log has the details'));
  });
  app.notFound((c) => send(c, apiError(404, 'not_found', `no route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 200)}; the routes are listed in /openapi.json`)));

  for (const spec of ROUTES) {
    const gate = async (c: Context<Env>, next: () => Promise<void>): Promise<Response | void> => {
      let principal: Principal | undefined;
      if (spec.scope !== 'public') {
        const a = await auth.authenticate(c.req.header('authorization'), spec.params?.t ? c.req.param('t') : undefined);
        if (!a.ok) return send(c, a.error);
        principal = a.value;
      }
      const taken = limiter.take(principal ? `token:${principal.hash}` : `addr:${remoteAddress(c)}`);
      if (!taken.ok) return send(c, apiError(429, 'rate_limited', `too many requests; retry in ${taken.retryAfterSeconds} s`, { retryAfter: taken.retryAfterSeconds }));
      if (spec.scope !== 'public' && principal === undefined)
        return send(c, apiError(401, 'unauthorized', 'send Authorization: Bearer <token> with an operator or tenant token (tenant tokens come from POST /v1/tenants/{t}/token)'));
      c.set('principal', principal);
      await next();
    };

    const handler = async (c: Context<Env>): Promise<Response> => {
      const principal = c.get('principal');
      const viewer: Viewer = principal?.kind === 'tenant' ? { kind: 'tenant', tenant: principal.tenant } : { kind: 'operator' };
      const params = checkParams(spec.params, (name) => c.req.param(name));
      if (!params.ok) return send(c, params.error);
      if (principal?.kind === 'tenant') {
        if (spec.scope === 'operator') return send(c, apiError(403, 'forbidden', `${spec.method} ${spec.path} is for the operator; a tenant token cannot use it`));
        const t = params.value.t;
        if (t !== undefined && t !== principal.tenant) return send(c, apiError(404, 'not_found', `no tenant ${t}`));
      }
      const query = checkQuery(spec.query, c.req.queries());
      if (!query.ok) return send(c, query.error);
      const ifMatch = parseIfMatch(c.req.header('if-match'), spec.ifMatch === true);
      if (!ifMatch.ok) return send(c, ifMatch.error);
      const text = c.req.raw.body ? await c.req.text() : '';
      let body: unknown;
      if (spec.body) {
        const b = parseJsonBody(c.req.header('content-type'), text);
        if (!b.ok) return send(c, b.error);
        body = b.value;
      } else {
        const none = refuseBody(text);
        if (!none.ok) return send(c, none.error);
      }
      const r = await spec.handle({ store, viewer, params: params.value, query: query.value, ifMatch: ifMatch.value, body, now, auth });
      if (!r.ok) return send(c, r.error);
      return c.json(r.value.body as object, r.value.status as ContentfulStatusCode);
    };

    app.on(spec.method, honoPath(spec.path), gate, limitBody, handler);
  }

  // A path the table has, with a method it does not: 405 with the methods it does have.
  for (const [path, methods] of methodsByPath(ROUTES)) {
    const allow = methods.includes('GET') ? [...methods, 'HEAD'] : methods;
    app.all(honoPath(path), (c) => send(c, apiError(405, 'method_not_allowed', `${path} takes ${allow.join(', ')}, not ${c.req.method}`, { allow })));
  }
  return app;
}
