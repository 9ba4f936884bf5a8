/**
 * Attack detection through the API: the events the agents write and the rules they propose
 * (model/detection.ts), and the operator's decision on a proposal.
 *
 * - `GET /v1/tenants/{t}/dos/events`, `GET /v1/tenants/{t}/dos/proposals`: a tenant sees what was
 *   detected on its addresses (another tenant's answer 404, like every tenant URL);
 * - `GET /v1/dos/events[?tenant=]`, `GET /v1/dos/proposals`: the operator sees everything;
 * - `POST /v1/dos/proposals/{id}/accept`: writes the proposed rule to `/dos/rules/<id>` with its
 *   expiry counted from now, removes the proposal and records `accepted`, in one transaction
 *   that holds only if the proposal is still as read (an agent refreshing it in between makes it
 *   retry once with the fresh copy); the config check applies to the rule as to any write;
 * - `POST /v1/dos/proposals/{id}/reject`: marks it rejected (agents do not propose it again until
 *   it expires) and records `rejected`.
 * Events and proposals are agent reports: one that does not parse is left out of a listing, never
 * a failure of the listing.
 */
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import { keyOf } from '../../model/keyspace.ts';
import { detectionEventSchema, eventKey, eventsPrefix, newEventId, PROPOSALS_PREFIX, proposalKey, proposalSchema, type DetectionEvent, type Proposal } from '../../model/detection.ts';
import type { ConfigStore } from '../../store/types.ts';
import { apiError, fromStoreError, type ApiError } from '../errors.ts';
import { notFound } from '../objects.ts';
import type { Reply, RouteContext, RouteSpec } from '../route.ts';

const T = { t: 'tenant id' } as const;
const ID = { id: 'proposal id' } as const;

async function tenantExists(ctx: RouteContext, t: string): Promise<Result<void, ApiError>> {
  const r = await ctx.store.get(`/tenants/${t}`);
  if (!r.ok) return err(fromStoreError(r.error));
  return r.value ? ok(undefined) : err(notFound(`tenant ${t}`));
}

async function events(store: ConfigStore, tenant?: string): Promise<Result<Reply, ApiError>> {
  const r = await store.list(eventsPrefix(tenant));
  if (!r.ok) return err(fromStoreError(r.error));
  const items: (DetectionEvent & { id: string })[] = [];
  for (const e of r.value.entries) {
    const p = detectionEventSchema.safeParse(e.value);
    if (p.success) items.push({ id: e.key.split('/').pop()!, ...p.data });
  }
  return ok({ status: 200, body: { items } });
}

async function proposals(store: ConfigStore, tenant?: string): Promise<Result<Reply, ApiError>> {
  const r = await store.list(PROPOSALS_PREFIX);
  if (!r.ok) return err(fromStoreError(r.error));
  const items: (Proposal & { id: string; revision: number })[] = [];
  for (const e of r.value.entries) {
    const p = proposalSchema.safeParse(e.value);
    if (p.success && (tenant === undefined || p.data.tenant === tenant)) items.push({ id: e.key.slice(PROPOSALS_PREFIX.length), revision: e.modRevision, ...p.data });
  }
  return ok({ status: 200, body: { items } });
}

/** Reads a proposal for a decision: 404 when absent, 409 when it does not parse (delete it). */
async function readProposal(ctx: RouteContext, id: string): Promise<Result<{ proposal: Proposal; modRevision: number }, ApiError>> {
  const r = await ctx.store.get(proposalKey(id));
  if (!r.ok) return err(fromStoreError(r.error));
  if (!r.value) return err(notFound(`proposal ${id}`, '; list them with GET /v1/dos/proposals (an accepted or expired proposal is gone)'));
  const p = proposalSchema.safeParse(r.value.value);
  if (!p.success)
    return err(apiError(409, 'conflict', `proposal ${id} does not parse (${p.error.issues[0]?.message ?? 'invalid'}); it cannot be decided on: delete ${proposalKey(id)} in the store`));
  return ok({ proposal: p.data, modRevision: r.value.modRevision });
}

function event(kind: 'accepted' | 'rejected', id: string, p: Proposal, now: number, rule: unknown): { op: 'put'; key: string; value: unknown } {
  const value = { at: new Date(now).toISOString(), kind, tenant: p.tenant, ruleId: id, by: 'operator', observation: p.observation, rule };
  return { op: 'put', key: eventKey(p.tenant, newEventId(now, 'operator')), value };
}

/** Runs a decision, retrying once when an agent refreshed the proposal between read and write. */
async function decide(ctx: RouteContext, write: (p: Proposal, modRevision: number) => Promise<Result<Reply, ApiError>>): Promise<Result<Reply, ApiError>> {
  const id = ctx.params.id!;
  for (let attempt = 0; ; attempt++) {
    const read = await readProposal(ctx, id);
    if (!read.ok) return read;
    const r = await write(read.value.proposal, read.value.modRevision);
    if (r.ok || attempt > 0 || r.error.code !== 'cas_failed') return r;
  }
}

/** The detection routes. */
export const detectRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/tenants/{t}/dos/events',
    scope: 'tenant',
    operationId: 'listTenantDosEvents',
    summary: "Attack detection events on the tenant's addresses, oldest first (the newest 200 are kept)",
    params: T,
    reply: { status: 200, schema: 'DetectionEventList' },
    handle: async (ctx) => {
      const t = await tenantExists(ctx, ctx.params.t!);
      return t.ok ? events(ctx.store, ctx.params.t!) : t;
    },
  },
  {
    method: 'GET',
    path: '/v1/tenants/{t}/dos/proposals',
    scope: 'tenant',
    operationId: 'listTenantDosProposals',
    summary: "Mitigation rules proposed for the tenant's addresses, waiting for the operator (or rejected)",
    params: T,
    reply: { status: 200, schema: 'ProposalList' },
    handle: async (ctx) => {
      const t = await tenantExists(ctx, ctx.params.t!);
      return t.ok ? proposals(ctx.store, ctx.params.t!) : t;
    },
  },
  {
    method: 'GET',
    path: '/v1/dos/events',
    scope: 'operator',
    operationId: 'listDosEvents',
    summary: 'Attack detection events of every tenant (or of ?tenant=), by tenant, oldest first',
    query: { tenant: 'tenant id' },
    reply: { status: 200, schema: 'DetectionEventList' },
    handle: (ctx) => events(ctx.store, ctx.query.tenant),
  },
  {
    method: 'GET',
    path: '/v1/dos/proposals',
    scope: 'operator',
    operationId: 'listDosProposals',
    summary: 'Mitigation rules proposed by detection, pending or rejected',
    reply: { status: 200, schema: 'ProposalList' },
    handle: (ctx) => proposals(ctx.store),
  },
  {
    method: 'POST',
    path: '/v1/dos/proposals/{id}/accept',
    scope: 'operator',
    operationId: 'acceptDosProposal',
    summary: "Accept a proposal: its rule is written to /dos/rules/{id}, expiring the tenant's ttl from now",
    params: ID,
    reply: { status: 200, schema: 'ProposalDecision' },
    handle: (ctx) =>
      decide(ctx, async (p, modRevision) => {
        const id = ctx.params.id!;
        const now = ctx.now();
        const rule = { ...p.rule, expires: new Date(now + p.ttlSeconds * 1000).toISOString() };
        const key = proposalKey(id);
        const w = await ctx.store.txn({
          if: [{ key, modRevision }],
          then: [{ op: 'put', key: keyOf({ kind: 'dos', id }), value: rule }, { op: 'delete', key }, event('accepted', id, p, now, rule)],
        });
        if (!w.ok) return err(fromStoreError(w.error));
        return ok({ status: 200, body: { id, decision: 'accepted', revision: w.value.revision, rule } });
      }),
  },
  {
    method: 'POST',
    path: '/v1/dos/proposals/{id}/reject',
    scope: 'operator',
    operationId: 'rejectDosProposal',
    summary: 'Reject a proposal: no rule is written, and agents do not propose it again until it expires',
    params: ID,
    reply: { status: 200, schema: 'ProposalDecision' },
    handle: (ctx) =>
      decide(ctx, async (p, modRevision) => {
        const id = ctx.params.id!;
        const now = ctx.now();
        const key = proposalKey(id);
        const w = await ctx.store.txn({ if: [{ key, modRevision }], then: [{ op: 'put', key, value: { ...p, state: 'rejected' } }, event('rejected', id, p, now, p.rule)] });
        if (!w.ok) return err(fromStoreError(w.error));
        return ok({ status: 200, body: { id, decision: 'rejected', revision: w.value.revision } });
      }),
  },
];
