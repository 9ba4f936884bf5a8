/**
 * Soft-unicast egress assignments, operator only (compile/egress/ has the rules):
 *
 * - `GET /v1/egress/assign`: every assignment (`id` is the address);
 * - `POST /v1/egress/assign`: `{ set: { <ip>: {dc[, server]} | null }, expect? }` — creates,
 *   moves and deletes assignments in ONE transaction, so an allocation plan lands whole or not at
 *   all and the config check sees the final state (an address moved from one data center to
 *   another is one put). Each changed key must still have the revision read
 *   here, or `expect`'s when given (the plan the operator reviewed); without `expect` a race is
 *   read again and retried. Addresses travel in the body because an address is not an id (path
 *   parameters are).
 * - `GET /v1/egress/ownership`: who owns each assigned address — data center, and each server's
 *   slice (IPv4) or the server (IPv6) — computed from the config as the agents compute it.
 */
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import type { Issue } from '../../model/issue.ts';
import { egressAssignmentSchema, type EgressAssignment } from '../../model/egress.ts';
import { formatIp, parseIp } from '../../model/net.ts';
import { entriesToConfig } from '../../model/keyspace.ts';
import { parseAt } from '../../model/schema.ts';
import { egressOwnership } from '../../compile/egress/ownership.ts';
import { poolOf } from '../../compile/egress/slices.ts';
import type { Condition, Op } from '../../store/types.ts';
import { apiError, fromStoreError, type ApiError } from '../errors.ts';
import { invalidBody, refusal } from '../conflicts.ts';
import { listObjects, type ObjectKind } from '../objects.ts';
import type { Reply, RouteContext, RouteSpec } from '../route.ts';
import { egressAssignBatchSchema } from '../egress-schemas.ts';
import { isConfigKey } from '../config-doc.ts';

const PREFIX = '/egress/assign/';
/** A batch larger than this is refused: an allocation is a few hundred addresses at most per run. */
export const MAX_BATCH = 4096;
const ATTEMPTS = 5;

const assignKind: ObjectKind = { what: 'egress assignment', schema: egressAssignmentSchema, key: (p) => `${PREFIX}${p.ip}`, listPrefix: () => PREFIX };

interface Batch {
  readonly set: ReadonlyMap<string, EgressAssignment | null>;
  readonly expect?: ReadonlyMap<string, number>;
}

/** Checks the body: its shape, every address canonical, the size. */
function checkBatch(body: unknown): Result<Batch, ApiError> {
  const at = ['request'];
  const parsed = parseAt(egressAssignBatchSchema, body, at);
  if (!parsed.ok) return err(invalidBody(parsed.error));
  const issues: Issue[] = [];
  const addr = (ip: string, field: string): void => {
    const p = parseIp(ip);
    if (!p.ok) issues.push({ code: 'invalid_ip', path: at, field: [field, ip.slice(0, 64)], message: p.error });
    else if (formatIp(p.value) !== ip) issues.push({ code: 'not_canonical', path: at, field: [field, ip.slice(0, 64)], message: `write the address as ${formatIp(p.value)} (one spelling per address)` });
  };
  const { set, expect } = parsed.value;
  const n = Object.keys(set).length;
  if (n === 0) issues.push({ code: 'empty', path: at, field: ['set'], message: 'nothing to set; give at least one address, e.g. {"set": {"198.51.100.64": {"dc": "ams"}}}' });
  if (n > MAX_BATCH) issues.push({ code: 'too_big', path: at, field: ['set'], message: `${n} addresses in one batch; at most ${MAX_BATCH}, split it` });
  for (const ip of Object.keys(set)) addr(ip, 'set');
  for (const ip of Object.keys(expect ?? {})) {
    addr(ip, 'expect');
    if (!Object.hasOwn(set, ip)) issues.push({ code: 'unknown_field', path: at, field: ['expect', ip.slice(0, 64)], message: 'expect names an address that set does not change; remove it' });
  }
  if (issues.length) return err(invalidBody(issues));
  return ok({ set: new Map(Object.entries(set)), ...(expect ? { expect: new Map(Object.entries(expect)) } : {}) });
}

function stale(ip: string, current: number, expected: number): ApiError {
  return apiError(409, 'cas_failed', `egress/assign/${ip} changed since your plan: it is ${current === 0 ? 'absent' : `at modRevision ${current}`}, expected ${expected === 0 ? 'absent' : `modRevision ${expected}`}; plan again`, {
    key: `${PREFIX}${ip}`,
    currentRevision: current,
  });
}

const same = (a: EgressAssignment | undefined, b: EgressAssignment | null): boolean => (a === undefined ? b === null : b !== null && a.dc === b.dc && a.server === b.server);

async function writeBatch(ctx: RouteContext): Promise<Result<Reply, ApiError>> {
  const batch = checkBatch(ctx.body);
  if (!batch.ok) return batch;
  const { set, expect } = batch.value;
  for (let attempt = 1; ; attempt++) {
    const listing = await ctx.store.list(PREFIX);
    if (!listing.ok) return err(fromStoreError(listing.error));
    const current = new Map(listing.value.entries.map((e) => [e.key.slice(PREFIX.length), { value: e.value as EgressAssignment, rev: e.modRevision }]));
    const changes: { ip: string; action: 'create' | 'update' | 'delete'; before?: EgressAssignment; after?: EgressAssignment }[] = [];
    const ifs: Condition[] = [];
    const ops: Op[] = [];
    for (const [ip, want] of set) {
      const cur = current.get(ip);
      const rev = cur?.rev ?? 0;
      if (expect?.has(ip) && expect.get(ip) !== rev) return err(stale(ip, rev, expect.get(ip)!));
      if (same(cur?.value, want)) continue;
      const key = `${PREFIX}${ip}`;
      ifs.push({ key, modRevision: rev });
      if (want === null) {
        ops.push({ op: 'delete', key });
        changes.push({ ip, action: 'delete', before: cur!.value });
      } else {
        ops.push({ op: 'put', key, value: want });
        changes.push({ ip, action: cur ? 'update' : 'create', ...(cur ? { before: cur.value } : {}), after: want });
      }
    }
    if (ops.length === 0) return ok({ status: 200, body: { revision: listing.value.revision, changes: [] } });
    const w = await ctx.store.txn({ if: ifs, then: ops });
    if (w.ok) return ok({ status: 200, body: { revision: w.value.revision, changes } });
    if (w.error.code === 'cas_failed' && !expect && attempt < ATTEMPTS) continue;
    if (w.error.code === 'cas_failed') return err(stale(w.error.key.slice(PREFIX.length), w.error.actual.modRevision, expect?.get(w.error.key.slice(PREFIX.length)) ?? 0));
    return err(w.error.code === 'invalid' ? refusal(ctx.viewer, w.error.issues, ['egress', 'assign']) : fromStoreError(w.error));
  }
}

async function ownership(ctx: RouteContext): Promise<Result<Reply, ApiError>> {
  const r = await ctx.store.list('/');
  if (!r.ok) return err(fromStoreError(r.error));
  const config = entriesToConfig(new Map(r.value.entries.filter((e) => isConfigKey(e.key)).map((e) => [e.key, e.value])));
  // The store refuses invalid writes, so this is a store written around the API.
  if (!config.ok) return err(refusal(ctx.viewer, config.error, ['egress']));
  const own = egressOwnership(config.value);
  if (!own.ok) return err(apiError(409, 'conflict', `${own.error.path}: ${own.error.message}`));
  const items = own.value.map((o) => {
    const pool = poolOf(config.value, o.ip)!;
    return { ip: o.ip, dc: o.dc, pool: pool.id, class: pool.pool.tags.class, country: pool.pool.tags.country, owner: o.owner };
  });
  return ok({ status: 200, body: { revision: r.value.revision, items } });
}

/** The egress routes. */
export const egressRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/egress/assign',
    scope: 'operator',
    operationId: 'listEgressAssignments',
    summary: 'List egress assignments (id: the address)',
    reply: { status: 200, schema: 'EgressAssignmentList' },
    handle: (ctx) => listObjects(ctx, assignKind),
  },
  {
    method: 'POST',
    path: '/v1/egress/assign',
    scope: 'operator',
    operationId: 'setEgressAssignments',
    summary: 'Create, move and delete egress assignments in one transaction',
    body: 'EgressAssignBatch',
    reply: { status: 200, schema: 'EgressAssignResult' },
    handle: writeBatch,
  },
  {
    method: 'GET',
    path: '/v1/egress/ownership',
    scope: 'operator',
    operationId: 'getEgressOwnership',
    summary: 'Who owns each assigned egress address: data center, and port slices per server (IPv4) or the server (IPv6)',
    reply: { status: 200, schema: 'EgressOwnershipReply' },
    handle: ownership,
  },
];
