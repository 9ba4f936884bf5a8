/**
 * The whole config, operator only: read it as one document (`GET /v1/config`), see what applying a
 * document would change (`POST /v1/config/diff`), and apply one (`PUT /v1/config`) as ONE store
 * transaction conditioned on the current revision of every key it changes. With `expect` (the
 * `{ key: modRevision }` of a diff the user reviewed) the apply also refuses when anything the
 * plan looked at has changed since, so what is applied is exactly what was reviewed.
 */
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import { parseConfig } from '../../model/config.ts';
import type { Condition, Op } from '../../store/types.ts';
import type { ApiError } from '../errors.ts';
import { apiError, fromStoreError } from '../errors.ts';
import { invalidBody, refusal } from '../conflicts.ts';
import type { Change } from '../config-doc.ts';
import { changeView, desiredEntries, diffEntries, entriesToDocument, isConfigKey, keepTokenHashes, normalisedEntries } from '../config-doc.ts';
import type { Reply, RouteContext, RouteSpec } from '../route.ts';

/** A checked whole-config request body. */
interface ConfigRequest {
  readonly config: unknown;
  readonly expect?: ReadonlyMap<string, number>;
}

/** Checks the envelope `{ config, expect? }`; the document itself is checked by parseConfig. */
function envelope(body: unknown, allowExpect: boolean): Result<ConfigRequest, ApiError> {
  const at = ['request'];
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    return err(invalidBody([{ code: 'invalid_type', path: at, field: [], message: `expected a map with config${allowExpect ? ' (and expect)' : ''}` }]));
  const issues = [];
  const known = allowExpect ? ['config', 'expect'] : ['config'];
  for (const k of Object.keys(body))
    if (!known.includes(k)) issues.push({ code: 'unknown_field', path: at, field: [k], message: `unknown field ${JSON.stringify(k).slice(0, 40)}; known fields: ${known.join(', ')}` });
  const { config, expect } = body as { config?: unknown; expect?: unknown };
  if (config === undefined) issues.push({ code: 'missing', path: at, field: ['config'], message: 'required field is missing; put the document (the shape of examples/acme.yaml) under config' });
  let map: Map<string, number> | undefined;
  if (expect !== undefined && allowExpect) {
    if (expect === null || typeof expect !== 'object' || Array.isArray(expect))
      issues.push({ code: 'invalid_type', path: at, field: ['expect'], message: 'expected a map of store key → modRevision, as a diff returned them' });
    else {
      map = new Map();
      for (const [k, v] of Object.entries(expect)) {
        if (!isConfigKey(k)) issues.push({ code: 'invalid_key', path: at, field: ['expect', k.slice(0, 64)], message: 'not a config key; expect keys are the keys of a diff, e.g. /tenants/acme' });
        else if (!Number.isSafeInteger(v) || (v as number) < 0) issues.push({ code: 'invalid_type', path: at, field: ['expect', k.slice(0, 64)], message: 'expected a modRevision (a whole number, 0 = absent)' });
        else map.set(k, v as number);
      }
    }
  }
  if (issues.length) return err(invalidBody(issues));
  return ok({ config, ...(map ? { expect: map } : {}) });
}

/** What applying the document would change, against one snapshot of the store. */
interface Plan {
  readonly revision: number;
  readonly changes: Change[];
  readonly revisions: ReadonlyMap<string, number>;
}

async function plan(ctx: RouteContext, doc: unknown): Promise<Result<Plan, ApiError>> {
  const parsed = parseConfig(doc);
  if (!parsed.ok) return err(invalidBody(parsed.error));
  const listing = await ctx.store.list('/');
  if (!listing.ok) return err(fromStoreError(listing.error));
  const entries = listing.value.entries.filter((e) => isConfigKey(e.key));
  const revisions = new Map(entries.map((e) => [e.key, e.modRevision]));
  const stored = normalisedEntries(entries);
  const hasAnycast = doc !== null && typeof doc === 'object' && (doc as { anycast?: unknown }).anycast != null;
  const desired = desiredEntries(parsed.value, hasAnycast);
  keepTokenHashes(desired, new Map(entries.map((e) => [e.key, e.value])));
  return ok({ revision: listing.value.revision, changes: diffEntries(stored, desired, revisions), revisions });
}

/** The plan's condition that failed an `expect`, as a 409. */
function stale(key: string, current: number, expected: number | undefined): ApiError {
  const why = expected === undefined ? 'it is not in expect (your plan did not include this change)' : `expected modRevision ${expected}`;
  return apiError(409, 'cas_failed', `changed since your plan: ${key} is ${current === 0 ? 'absent' : `at modRevision ${current}`}, ${why}; diff again, review, and apply the new plan`, {
    key,
    currentRevision: current,
  });
}

const ATTEMPTS = 5;

async function apply(ctx: RouteContext, req: ConfigRequest): Promise<Result<Reply, ApiError>> {
  for (let attempt = 1; ; attempt++) {
    const p = await plan(ctx, req.config);
    if (!p.ok) return p;
    const { changes, revisions } = p.value;
    if (req.expect) {
      for (const c of changes) if (req.expect.get(c.key) !== c.modRevision) return err(stale(c.key, c.modRevision, req.expect.get(c.key)));
      for (const [key, rev] of req.expect) if ((revisions.get(key) ?? 0) !== rev) return err(stale(key, revisions.get(key) ?? 0, rev));
    }
    if (changes.length === 0) return ok({ status: 200, body: { revision: p.value.revision, changes: [] } });
    const conditions = new Map<string, number>();
    for (const c of changes) conditions.set(c.key, c.modRevision);
    for (const [key, rev] of req.expect ?? []) conditions.set(key, rev);
    const ops: Op[] = changes.map((c) => (c.action === 'delete' ? { op: 'delete', key: c.key } : { op: 'put', key: c.key, value: c.after }));
    const ifs: Condition[] = [...conditions].map(([key, modRevision]) => ({ key, modRevision }));
    const w = await ctx.store.txn({ if: ifs, then: ops });
    ctx.auth.invalidate();
    if (w.ok) return ok({ status: 200, body: { revision: w.value.revision, changes: changes.map(changeView) } });
    // Without expect the caller asked for "make it so": a race with another writer is planned again.
    if (w.error.code === 'cas_failed' && !req.expect && attempt < ATTEMPTS) continue;
    if (w.error.code === 'cas_failed') return err(stale(w.error.key, w.error.actual.modRevision, req.expect?.get(w.error.key)));
    return err(w.error.code === 'invalid' ? refusal(ctx.viewer, w.error.issues, []) : fromStoreError(w.error));
  }
}

/** The whole-config routes. */
export const configRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/config',
    scope: 'operator',
    operationId: 'getConfig',
    summary: 'The whole config as one document (token hashes left out) and the revision it was read at',
    reply: { status: 200, schema: 'ConfigReply' },
    handle: async (ctx) => {
      const r = await ctx.store.list('/');
      if (!r.ok) return err(fromStoreError(r.error));
      return ok({ status: 200, body: { revision: r.value.revision, config: entriesToDocument(r.value.entries) } });
    },
  },
  {
    method: 'POST',
    path: '/v1/config/diff',
    scope: 'operator',
    operationId: 'diffConfig',
    summary: 'What applying a whole document would change, key by key (read-only)',
    body: 'ConfigDiffRequest',
    reply: { status: 200, schema: 'ConfigChanges' },
    handle: async (ctx) => {
      const req = envelope(ctx.body, false);
      if (!req.ok) return req;
      const p = await plan(ctx, req.value.config);
      if (!p.ok) return p;
      return ok({ status: 200, body: { revision: p.value.revision, changes: p.value.changes.map(changeView) } });
    },
  },
  {
    method: 'PUT',
    path: '/v1/config',
    scope: 'operator',
    operationId: 'applyConfig',
    summary: 'Apply a whole document in one transaction; with expect, only if nothing changed since the plan',
    body: 'ConfigApplyRequest',
    reply: { status: 200, schema: 'ConfigChanges' },
    handle: async (ctx) => {
      const req = envelope(ctx.body, true);
      if (!req.ok) return req;
      return apply(ctx, req.value);
    },
  },
];
