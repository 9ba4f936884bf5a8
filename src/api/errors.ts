/**
 * The API's error values and their one wire shape:
 * `{ "error": { "code", "message", "issues"?: [{ "path", "field", "code", "message" }] } }`.
 * Handlers return an `ApiError` (errors are values); only `app.ts` turns one into a response, so
 * every failure, including the framework's own (unknown route, body too large), looks the same.
 */
import type { Issue } from '../model/issue.ts';
import type { StoreError } from '../store/types.ts';

/** HTTP statuses the API answers errors with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503;

/** Machine-readable error codes, one per distinct thing a client may want to react to. */
export type ApiErrorCode =
  /** A field or object is invalid; `issues` lists every problem (400). */
  | 'invalid'
  /** The body is not parseable JSON, or nested too deep (400). */
  | 'invalid_json'
  /** A URL path segment, query parameter or header is malformed; `issues` names it (400). */
  | 'invalid_request'
  /** No token, or a token nobody issued (401). */
  | 'unauthorized'
  /** An operator-only route called with a tenant token (403). */
  | 'forbidden'
  /** No such object, or one the caller may not see (404). */
  | 'not_found'
  /** The path exists but not with this method; `Allow` lists the methods (405). */
  | 'method_not_allowed'
  /** The write conflicts with other objects (overlap, missing reference…); `issues` says which (409). */
  | 'conflict'
  /** An If-Match or plan expectation did not hold; `key` and `currentRevision` say what is there now (409). */
  | 'cas_failed'
  /** The body exceeds the limit (413). */
  | 'payload_too_large'
  /** A body that is not `application/json` (415). */
  | 'unsupported_media_type'
  /** Too many requests for this token or address; retry after `Retry-After` seconds (429). */
  | 'rate_limited'
  /** The config store cannot serve the request now; retry later (503). */
  | 'unavailable'
  /** A bug in the API; the message says nothing more, the server log would (500). */
  | 'internal';

/** An issue as sent: object path and field path joined, e.g. `tenants/acme/routes/r1` and `via.0.tunnel`. */
export interface WireIssue {
  readonly path: string;
  readonly field: string;
  readonly code: string;
  readonly message: string;
}

/** An API failure, as a value. */
export interface ApiError {
  readonly status: ErrorStatus;
  readonly code: ApiErrorCode;
  readonly message: string;
  readonly issues?: readonly WireIssue[];
  /** With `cas_failed`: the key whose condition failed. */
  readonly key?: string;
  /** With `cas_failed`: that key's modRevision now (0 = absent). */
  readonly currentRevision?: number;
  /** With `rate_limited`: whole seconds until a retry can succeed (the `Retry-After` header). */
  readonly retryAfter?: number;
  /** With `method_not_allowed`: the methods the path has (the `Allow` header). */
  readonly allow?: readonly string[];
}

/** Builds an error value. */
export function apiError(status: ErrorStatus, code: ApiErrorCode, message: string, extra: Partial<Omit<ApiError, 'status' | 'code' | 'message'>> = {}): ApiError {
  return { status, code, message, ...extra };
}

/** The wire form of a model issue. */
export function toWireIssue(issue: Issue): WireIssue {
  return { path: issue.path.join('/'), field: issue.field.join('.'), code: issue.code, message: issue.message };
}

/**
 * A 400 naming one malformed part of the request: a path segment (`url`, `t`), a query parameter,
 * a header or the body. The issue's `code` is `invalid_id` for ids, `invalid_request` otherwise.
 */
export function badRequestPart(where: 'url' | 'query' | 'header' | 'body', name: string, message: string, code = 'invalid_request'): ApiError {
  const label = where === 'url' ? `path segment {${name}}` : where === 'query' ? `query parameter ${name}` : where === 'header' ? `header ${name}` : 'body';
  return apiError(400, 'invalid_request', `${label}: ${message}`, { issues: [{ path: where, field: name, code, message }] });
}

/** The JSON body of an error response. */
export function errorBody(e: ApiError): { error: Record<string, unknown> } {
  const { status: _status, retryAfter: _retry, allow: _allow, ...rest } = e;
  return { error: rest };
}

/** The response headers an error carries besides its body. */
export function errorHeaders(e: ApiError): Record<string, string> {
  const h: Record<string, string> = {};
  if (e.status === 401) h['WWW-Authenticate'] = 'Bearer realm="anyedge"';
  if (e.retryAfter !== undefined) h['Retry-After'] = String(e.retryAfter);
  if (e.allow !== undefined) h['Allow'] = e.allow.join(', ');
  return h;
}

/**
 * Maps a store failure: a lost compare-and-set, a store that is down, a request the store
 * refused. Writes map `invalid` with conflicts.ts's `refusal` instead, which knows who is asking
 * and what was written; here it only appears for reads, which never validate.
 */
export function fromStoreError(e: StoreError): ApiError {
  switch (e.code) {
    case 'invalid':
      return apiError(400, 'invalid', e.message, { issues: e.issues.map(toWireIssue) });
    case 'cas_failed':
      return apiError(409, 'cas_failed', `${e.key} changed: it is ${e.actual.modRevision === 0 ? 'absent' : `at revision ${e.actual.modRevision}`}; read it again, and retry with If-Match: ${e.actual.modRevision}`, {
        key: e.key,
        currentRevision: e.actual.modRevision,
      });
    case 'unavailable':
    case 'compacted':
      return apiError(503, 'unavailable', `the config store is unavailable (${e.message}); retry later`);
    case 'bad_request':
      return apiError(400, 'invalid_request', `the store refused the request: ${e.message}`);
  }
}
