/**
 * Checks of the request's own parts, before any handler runs: path ids, query parameters, the
 * If-Match header and the JSON body. Each failure names the part and says what a good one is.
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { idProblem } from '../model/id.ts';
import type { ApiError } from './errors.ts';
import { apiError, badRequestPart } from './errors.ts';

/** Deepest JSON nesting accepted: a config document needs about 8; the rest is an attack on parsers. */
export const MAX_JSON_DEPTH = 64;

/** The route's path ids, each checked with model/id.ts. */
export function checkParams(spec: Readonly<Record<string, string>> | undefined, get: (name: string) => string | undefined): Result<Record<string, string>, ApiError> {
  const out: Record<string, string> = {};
  for (const [name, role] of Object.entries(spec ?? {})) {
    const value = get(name);
    const problem = idProblem(value, role);
    if (problem !== undefined) return err(badRequestPart('url', name, problem, 'invalid_id'));
    out[name] = value!;
  }
  return ok(out);
}

/** The route's query parameters: each known, given once and an id; any other is refused. */
export function checkQuery(spec: Readonly<Record<string, string>> | undefined, all: Record<string, string[]>): Result<Record<string, string>, ApiError> {
  const out: Record<string, string> = {};
  const known = Object.keys(spec ?? {});
  for (const [name, values] of Object.entries(all)) {
    const role = spec && Object.hasOwn(spec, name) ? spec[name] : undefined;
    const shown = name.length > 40 ? name.slice(0, 37) + '…' : name;
    if (role === undefined) return err(badRequestPart('query', shown, `unknown query parameter; ${known.length ? `this route takes ${known.join(', ')}` : 'this route takes none'}`));
    if (values.length !== 1) return err(badRequestPart('query', name, 'given more than once; give it once'));
    const problem = idProblem(values[0], role);
    if (problem !== undefined) return err(badRequestPart('query', name, problem, 'invalid_id'));
    out[name] = values[0]!;
  }
  return ok(out);
}

/**
 * The If-Match revision: a whole number (optionally quoted, as an entity tag), 0 meaning "must
 * not exist"; undefined when absent.
 */
export function parseIfMatch(header: string | undefined, allowed: boolean): Result<number | undefined, ApiError> {
  if (header === undefined) return ok(undefined);
  if (!allowed) return err(badRequestPart('header', 'If-Match', 'this route does not write; send If-Match only with PUT, POST or DELETE'));
  const m = /^\s*(?:"(\d{1,15})"|(\d{1,15}))\s*$/.exec(header);
  if (!m) return err(badRequestPart('header', 'If-Match', `${JSON.stringify(header.slice(0, 40))} is not a revision; send the revision the object was read at (e.g. If-Match: 42), or 0 for "must not exist"`));
  return ok(Number(m[1] ?? m[2]));
}

/** Whether a Content-Type names JSON (`application/json`, or `application/<x>+json`; parameters ignored). */
export function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  return media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media);
}

/** Whether `text` nests arrays/objects deeper than `max` (strings skipped), without parsing it. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      if (++depth > max) return true;
    } else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return false;
}

/** The JSON body of a write, given its Content-Type and text. */
export function parseJsonBody(contentType: string | undefined, text: string): Result<unknown, ApiError> {
  if (!isJsonType(contentType))
    return err(apiError(415, 'unsupported_media_type', `send the body as JSON with Content-Type: application/json (got ${contentType === undefined ? 'none' : JSON.stringify(contentType.slice(0, 60))})`));
  if (text.trim() === '') return err(apiError(400, 'invalid_json', 'the body is empty; send a JSON object'));
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) return err(apiError(400, 'invalid_json', `the body nests deeper than ${MAX_JSON_DEPTH} levels; no config object needs that`));
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (e) {
    return err(apiError(400, 'invalid_json', `the body is not valid JSON: ${(e as Error).message.slice(0, 200)}`));
  }
}

/** A route without a body must not get one: a body sent there is a mistake the client should hear about. */
export function refuseBody(text: string): Result<undefined, ApiError> {
  return text.trim() === '' ? ok(undefined) : err(badRequestPart('body', 'body', 'this route takes no body; send the request without one'));
}
