/**
 * The route table's types. Every route is one `RouteSpec`: its method and path, who may call it,
 * the ids in its path, its body and reply schemas (names of components in schemas.ts) and its
 * handler. `app.ts` registers the table with hono and runs the common steps (authentication, rate
 * limit, id checks, authorization, body limit and parsing) before a handler runs; `openapi.ts`
 * describes the same table, so the document and the server cannot disagree.
 */
import type { Result } from '../lib/result.ts';
import type { ConfigStore } from '../store/types.ts';
import type { ApiError } from './errors.ts';
import type { Viewer } from './conflicts.ts';
import type { Authenticator } from './auth.ts';

/** Who may call a route: anyone; the operator or the tenant the URL names; only the operator. */
export type Scope = 'public' | 'tenant' | 'operator';

/** HTTP methods the API uses. */
export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** A successful reply: a JSON body with 200 or 201. */
export interface Reply {
  readonly status: 200 | 201;
  readonly body: unknown;
}

/** What a handler gets, after the common checks passed. */
export interface RouteContext {
  readonly store: ConfigStore;
  /** The caller (public routes: the operator view, since they show nothing tenant-specific). */
  readonly viewer: Viewer;
  /** Path parameters, each already a valid id. */
  readonly params: Readonly<Record<string, string>>;
  /** Query parameters the route declares, each already checked. */
  readonly query: Readonly<Record<string, string>>;
  /** The If-Match revision (0 = must not exist), when the route takes one and it was given. */
  readonly ifMatch: number | undefined;
  /** The JSON body (routes with a body only). */
  readonly body: unknown;
  readonly now: () => number;
  readonly auth: Authenticator;
}

/** One route. */
export interface RouteSpec {
  readonly method: Method;
  /** OpenAPI path template, e.g. `/v1/tenants/{t}/prefixes/{id}`. */
  readonly path: string;
  readonly scope: Scope;
  /** Unique, for the OpenAPI document and for test output. */
  readonly operationId: string;
  readonly summary: string;
  /** Path parameter → what kind of id it is (`tenant id`): checked with model/id.ts. */
  readonly params?: Readonly<Record<string, string>>;
  /** Query parameter → what kind of id it is; any other query parameter is refused. */
  readonly query?: Readonly<Record<string, string>>;
  /** Whether the route honours If-Match (writes). */
  readonly ifMatch?: boolean;
  /** Component name of the JSON body, for routes that take one. */
  readonly body?: string;
  /** Success status and the component name of its body. */
  readonly reply: { readonly status: 200 | 201; readonly schema: string };
  readonly handle: (ctx: RouteContext) => Promise<Result<Reply, ApiError>>;
}

/** Hono's form of a path template: `{t}` → `:t`. */
export function honoPath(path: string): string {
  return path.replace(/\{([A-Za-z]+)\}/g, ':$1');
}
