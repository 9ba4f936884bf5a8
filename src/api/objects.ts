/**
 * The generic object routes: list, get, put and delete of one store key per object, shared by
 * every resource family. Each write is ONE store transaction, conditioned on the revision of the
 * key it read (or on the client's If-Match), so nothing partial is ever written and a concurrent
 * change is either retried (no If-Match: the write was unconditional for the client) or reported
 * as a lost compare-and-set (If-Match given).
 */
import type { z } from 'zod';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import type { Segments } from '../model/schema.ts';
import { parseAt } from '../model/schema.ts';
import type { KeyValue, Op, StoreError, JsonValue } from '../store/types.ts';
import type { ApiError } from './errors.ts';
import { apiError, fromStoreError } from './errors.ts';
import { invalidBody, refusal } from './conflicts.ts';
import type { Reply, RouteContext } from './route.ts';

/** Object path segments of a key: `/tenants/acme` → `['tenants', 'acme']`. */
export function segmentsOf(key: string): string[] {
  return key.slice(1).split('/');
}

/** The id of the object at `key`: its last segment. */
export function idOf(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `{ id, revision, ...fields }`, without `tokenHash` (never returned). */
export function view(id: string, revision: number, value: unknown): Record<string, unknown> {
  if (!isRecord(value)) return { id, revision, value };
  const { tokenHash: _hidden, ...fields } = value;
  return { id, revision, ...fields };
}

/** The view of a stored entry. */
export function viewOf(kv: KeyValue): Record<string, unknown> {
  return view(idOf(kv.key), kv.modRevision, kv.value);
}

/** The API error of a failed write of the object at `at`, as `viewer` may see it. */
export function writeFailure(ctx: RouteContext, e: StoreError, at: Segments): ApiError {
  return e.code === 'invalid' ? refusal(ctx.viewer, e.issues, at) : fromStoreError(e);
}

/**
 * A body as GET returns it may be sent back: `id` (which must name this object) and `revision`
 * (informational; concurrency goes through If-Match) are taken off before the schema sees it.
 */
export function stripEcho(body: unknown, id: string, at: Segments): Result<unknown, ApiError> {
  if (!isRecord(body)) return ok(body);
  const { id: echoed, revision, ...rest } = body;
  const problems = [];
  if (echoed !== undefined && echoed !== id)
    problems.push({ code: 'id_mismatch', path: at, field: ['id'], message: `${JSON.stringify(echoed)} is not this object's id ${id}; remove id, or send it to the URL of ${JSON.stringify(echoed)}` });
  if (revision !== undefined && !(Number.isSafeInteger(revision) && (revision as number) >= 0))
    problems.push({ code: 'invalid_type', path: at, field: ['revision'], message: 'must be a revision number as GET returned it; to make the write conditional, send If-Match' });
  return problems.length ? err(invalidBody(problems)) : ok(rest);
}

/** Parses a body with a model schema at `at`: every field error, or the stored (normalised) value. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, at: Segments): Result<z.output<S>, ApiError> {
  const r = parseAt(schema, body, at);
  return r.ok ? r : err(invalidBody(r.error));
}

/** What a read-modify-write step decided. */
export interface WritePlan {
  readonly ops: readonly Op[];
  readonly reply: Reply;
  /**
   * The revision the key must still have; default: the client's If-Match, else what was read.
   * Members of a shared key (firewall rules) set it themselves.
   */
  readonly expect?: number;
  /**
   * Whether a lost race is retried on a fresh read; default: when the client gave no If-Match
   * (its write was unconditional, so only our read is stale).
   */
  readonly retry?: boolean;
}

/**
 * Attempts of a write without If-Match that keeps losing to concurrent writers. Each round lets
 * at least one writer of a key through, so this many writers of one key at once always all land;
 * beyond that the client gets the 409 and may retry.
 */
const ATTEMPTS = 16;

/** A short random pause before attempt `n`, so writers that just collided do not collide again in step. */
function backoff(n: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * n * 2));
}

/**
 * Reads `key`, lets `build` decide the write from what is there, and commits it on the condition
 * that `key` has not changed since (or has the client's If-Match). Without If-Match a lost race is
 * retried on a fresh read; with one it is the client's 409. `at` locates issues.
 */
export async function readModifyWrite(
  ctx: RouteContext,
  key: string,
  at: Segments,
  build: (current: KeyValue | undefined) => Result<WritePlan, ApiError> | Promise<Result<WritePlan, ApiError>>,
): Promise<Result<Reply, ApiError>> {
  for (let attempt = 1; ; attempt++) {
    const cur = await ctx.store.get(key);
    if (!cur.ok) return err(fromStoreError(cur.error));
    const plan = await build(cur.value);
    if (!plan.ok) return plan;
    const expect = plan.value.expect ?? ctx.ifMatch ?? cur.value?.modRevision ?? 0;
    const w = await ctx.store.txn({ if: [{ key, modRevision: expect }], then: plan.value.ops });
    if (w.ok) {
      const body = plan.value.reply.body;
      return ok({ status: plan.value.reply.status, body: isRecord(body) && 'revision' in body ? { ...body, revision: w.value.revision } : body });
    }
    const retry = w.error.code === 'cas_failed' && w.error.key === key && (plan.value.retry ?? ctx.ifMatch === undefined) && attempt < ATTEMPTS;
    if (!retry) return err(writeFailure(ctx, w.error, at));
    await backoff(attempt);
  }
}

/** A 404 that says what is missing. */
export function notFound(what: string, hint = ''): ApiError {
  return apiError(404, 'not_found', `no ${what}${hint}`);
}

/** One kind of object stored at one key per object. */
export interface ObjectKind {
  /** What it is called in messages: `prefix`. */
  readonly what: string;
  readonly schema: z.ZodType;
  /** Its key, from the route's path parameters. */
  key(params: Readonly<Record<string, string>>): string;
  /** The key prefix its siblings are listed under (with the trailing slash). */
  listPrefix(params: Readonly<Record<string, string>>): string;
  /** The parent object that must exist (its key and name), if any. */
  parent?(params: Readonly<Record<string, string>>): { readonly key: string; readonly what: string };
  /** Delete the keys below the object with it (a data center's servers). */
  readonly cascade?: boolean;
}

/** Entries of `prefix` that are objects of the kind: exactly one segment below the prefix. */
export function children(entries: readonly KeyValue[], prefix: string): KeyValue[] {
  return entries.filter((e) => e.key.length > prefix.length && !e.key.includes('/', prefix.length));
}

/** GET the list: `{ items: [...] }`, 404 when the parent does not exist. */
export async function listObjects(ctx: RouteContext, kind: ObjectKind): Promise<Result<Reply, ApiError>> {
  const prefix = kind.listPrefix(ctx.params);
  const parent = kind.parent?.(ctx.params);
  if (parent) {
    const p = await ctx.store.get(parent.key);
    if (!p.ok) return err(fromStoreError(p.error));
    if (!p.value) return err(notFound(parent.what));
  }
  const r = await ctx.store.list(prefix);
  if (!r.ok) return err(fromStoreError(r.error));
  return ok({ status: 200, body: { items: children(r.value.entries, prefix).map(viewOf) } });
}

/** GET one object. */
export async function getObject(ctx: RouteContext, kind: ObjectKind): Promise<Result<Reply, ApiError>> {
  const key = kind.key(ctx.params);
  const r = await ctx.store.get(key);
  if (!r.ok) return err(fromStoreError(r.error));
  if (!r.value) return err(notFound(`${kind.what} ${segmentsOf(key).join('/')}`));
  return ok({ status: 200, body: viewOf(r.value) });
}

/** PUT one object: create or replace it with the body, which must pass the kind's schema. */
export async function putObject(ctx: RouteContext, kind: ObjectKind): Promise<Result<Reply, ApiError>> {
  const key = kind.key(ctx.params);
  const at = segmentsOf(key);
  const body = stripEcho(ctx.body, idOf(key), at);
  if (!body.ok) return body;
  const value = parseBody(kind.schema, body.value, at);
  if (!value.ok) return value;
  const parent = kind.parent?.(ctx.params);
  if (parent) {
    const p = await ctx.store.get(parent.key);
    if (!p.ok) return err(fromStoreError(p.error));
    if (!p.value) return err(notFound(parent.what, `; create it first`));
  }
  return readModifyWrite(ctx, key, at, () =>
    ok({ ops: [{ op: 'put', key, value: value.value }], reply: { status: 200, body: view(idOf(key), 0, value.value as JsonValue) } }),
  );
}

/** DELETE one object (and, for cascading kinds, everything below it) in one transaction. */
export async function deleteObject(ctx: RouteContext, kind: ObjectKind): Promise<Result<Reply, ApiError>> {
  const key = kind.key(ctx.params);
  const at = segmentsOf(key);
  return readModifyWrite(ctx, key, at, (cur) => {
    if (!cur) return err(notFound(`${kind.what} ${at.join('/')}`));
    const ops: Op[] = [{ op: 'delete', key }];
    if (kind.cascade) ops.push({ op: 'deletePrefix', prefix: key + '/' });
    return ok({ ops, reply: { status: 200, body: viewOf(cur) } });
  });
}
