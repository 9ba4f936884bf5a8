/**
 * A tenant's firewall, whole (`/v1/tenants/{t}/firewall`: default actions and ordered rules) and
 * rule by rule (`…/firewall/rules[/{ruleId}]`). The rules live in the one firewall key, so every
 * rule write is a compare-and-set on that key: the rule list is read, changed and written back
 * on the condition that nobody changed it in between, and a rule's `revision` is the firewall's.
 * If-Match on a rule route is that revision too; If-Match 0 means "this rule must not exist".
 */
import { err, ok, type Result } from '../../lib/result.ts';
import type { Issue } from '../../model/issue.ts';
import { parseAt } from '../../model/schema.ts';
import { firewallRuleSchema, firewallSchema, type Firewall, type FirewallRule } from '../../model/firewall.ts';
import type { KeyValue } from '../../store/types.ts';
import type { ApiError } from '../errors.ts';
import { apiError, fromStoreError, toWireIssue } from '../errors.ts';
import { invalidBody } from '../conflicts.ts';
import { getObject, notFound, putObject, readModifyWrite, segmentsOf, view, type ObjectKind, type WritePlan } from '../objects.ts';
import type { Reply, RouteContext, RouteSpec } from '../route.ts';

/** The firewall as one object. */
const firewallKind: ObjectKind = {
  what: 'firewall',
  schema: firewallSchema,
  key: (p) => `/tenants/${p.t}/firewall`,
  listPrefix: (p) => `/tenants/${p.t}/`,
  parent: (p) => ({ key: `/tenants/${p.t}`, what: `tenant ${p.t}` }),
};

const T = { t: 'tenant id' } as const;
const TR = { t: 'tenant id', ruleId: 'rule id' } as const;

/** A rule as read: `{ id, revision (the firewall's), ...fields }`. */
function ruleView(rule: FirewallRule, revision: number): Record<string, unknown> {
  return view(rule.id, revision, rule);
}

/** The stored firewall, or the 404 of a tenant without one. */
function firewallOf(ctx: RouteContext, cur: KeyValue | undefined): Result<Firewall, ApiError> {
  if (!cur) return err(notFound(`firewall for tenant ${ctx.params.t}`, `; PUT /v1/tenants/${ctx.params.t}/firewall with its default actions first`));
  // Parsed, not cast: a firewall written before a stricter schema must not crash a rule write.
  const fw = parseAt(firewallSchema, cur.value, segmentsOf(cur.key));
  if (!fw.ok)
    return err(
      apiError(409, 'conflict', `the stored firewall of tenant ${ctx.params.t} is invalid, so its rules cannot be edited one by one; PUT the whole firewall to repair it`, {
        issues: fw.error.map(toWireIssue),
      }),
    );
  return ok(fw.value);
}

/** The rule body of a write: `id` defaults to the URL's and must match it; `revision` is dropped. */
function ruleBody(ctx: RouteContext, at: readonly (string | number)[], index: number, urlId: string | undefined): Result<FirewallRule, ApiError> {
  const body = ctx.body;
  let raw: unknown = body;
  const problems: Issue[] = [];
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    const { revision, ...rest } = body as Record<string, unknown>;
    if (revision !== undefined && !(Number.isSafeInteger(revision) && (revision as number) >= 0))
      problems.push({ code: 'invalid_type', path: at, field: ['rules', index, 'revision'], message: 'must be a revision number as GET returned it; to make the write conditional, send If-Match' });
    if (urlId !== undefined) {
      if (rest.id === undefined) rest.id = urlId;
      else if (rest.id !== urlId)
        problems.push({ code: 'id_mismatch', path: at, field: ['rules', index, 'id'], message: `${JSON.stringify(rest.id)} is not this rule's id ${urlId}; remove id, or send it to the URL of that rule` });
    }
    raw = rest;
  }
  const parsed = parseAt(firewallRuleSchema, raw, at);
  if (problems.length === 0 && parsed.ok) return ok(parsed.value);
  // The model's own messages and codes, moved to the rule's place in the firewall.
  return err(invalidBody([...problems, ...relocate(parsed.ok ? [] : parsed.error, index)]));
}

/** Issues of a lone rule moved to `rules.<index>` of the firewall. */
function relocate(issues: readonly Issue[], index: number): Issue[] {
  return issues.map((i) => ({ ...i, field: ['rules', index, ...i.field] }));
}

/**
 * A write of one rule: read the firewall, change its rule list with `change`, write it back if the
 * firewall is still at the revision read (or at the client's If-Match).
 */
async function ruleWrite(ctx: RouteContext, change: (fw: Firewall, revision: number) => Result<{ rules: FirewallRule[]; reply: Reply }, ApiError>): Promise<Result<Reply, ApiError>> {
  const key = firewallKind.key(ctx.params);
  const at = segmentsOf(key);
  return readModifyWrite(ctx, key, at, (cur): Result<WritePlan, ApiError> => {
    const fw = firewallOf(ctx, cur);
    if (!fw.ok) return fw;
    const revision = cur!.modRevision;
    if (ctx.ifMatch !== undefined && ctx.ifMatch !== 0 && ctx.ifMatch !== revision)
      return err(
        apiError(409, 'cas_failed', `${key} changed: it is at revision ${revision}; read it again, and retry with If-Match: ${revision}`, { key, currentRevision: revision }),
      );
    const c = change(fw.value, revision);
    if (!c.ok) return c;
    const next: Firewall = { ...fw.value, rules: c.value.rules };
    // If-Match 0 is about the rule (checked by `change`), so the firewall itself is held at what was read.
    const fromRead = ctx.ifMatch === undefined || ctx.ifMatch === 0;
    return ok({ ops: [{ op: 'put', key, value: next }], reply: c.value.reply, expect: fromRead ? revision : ctx.ifMatch!, retry: fromRead });
  });
}

function ruleExists(_ctx: RouteContext, key: string, id: string, revision: number): ApiError {
  return apiError(409, 'cas_failed', `rule ${id} already exists in ${key.slice(1)} (If-Match: 0 means it must not); PUT it with If-Match: ${revision} to replace it`, {
    key,
    currentRevision: revision,
  });
}

/** The firewall routes. */
export const firewallRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/tenants/{t}/firewall',
    scope: 'tenant',
    operationId: 'getFirewall',
    summary: "Get a tenant's firewall: default actions and ordered rules",
    params: T,
    reply: { status: 200, schema: 'FirewallObject' },
    handle: (ctx) => getObject(ctx, firewallKind),
  },
  {
    method: 'PUT',
    path: '/v1/tenants/{t}/firewall',
    scope: 'tenant',
    operationId: 'putFirewall',
    summary: "Replace a tenant's whole firewall",
    params: T,
    ifMatch: true,
    body: 'Firewall',
    reply: { status: 200, schema: 'FirewallObject' },
    handle: (ctx) => putObject(ctx, firewallKind),
  },
  {
    method: 'GET',
    path: '/v1/tenants/{t}/firewall/rules',
    scope: 'tenant',
    operationId: 'listFirewallRules',
    summary: "List a tenant's firewall rules in order",
    params: T,
    reply: { status: 200, schema: 'FirewallRuleList' },
    handle: async (ctx) => {
      const r = await ctx.store.get(firewallKind.key(ctx.params));
      if (!r.ok) return err(fromStoreError(r.error));
      const fw = firewallOf(ctx, r.value);
      if (!fw.ok) return fw;
      return ok({ status: 200, body: { items: fw.value.rules.map((rule) => ruleView(rule, r.value!.modRevision)) } });
    },
  },
  {
    method: 'POST',
    path: '/v1/tenants/{t}/firewall/rules',
    scope: 'tenant',
    operationId: 'addFirewallRule',
    summary: 'Add a rule at the end, or before the rule ?before=<ruleId>',
    params: T,
    query: { before: 'rule id' },
    ifMatch: true,
    body: 'FirewallRule',
    reply: { status: 201, schema: 'FirewallRuleObject' },
    handle: (ctx) => {
      const key = firewallKind.key(ctx.params);
      const at = segmentsOf(key);
      return ruleWrite(ctx, (fw, revision) => {
        const before = ctx.query.before;
        let index = fw.rules.length;
        if (before !== undefined) {
          index = fw.rules.findIndex((r) => r.id === before);
          if (index < 0)
            return err(
              apiError(409, 'conflict', `there is no rule ${before} to insert before; list the rules (GET …/firewall/rules), or leave out ?before to append`, {
                issues: [{ path: 'query', field: 'before', code: 'unknown_rule', message: `no rule ${JSON.stringify(before)} in ${at.join('/')}` }],
              }),
            );
        }
        const rule = ruleBody(ctx, at, index, undefined);
        if (!rule.ok) return rule;
        if (fw.rules.some((r) => r.id === rule.value.id))
          return err(
            ctx.ifMatch === 0
              ? ruleExists(ctx, key, rule.value.id, revision)
              : apiError(409, 'conflict', `rule ${rule.value.id} already exists; PUT /v1/tenants/${ctx.params.t}/firewall/rules/${rule.value.id} to replace it, or choose another id`, {
                  issues: [{ path: at.join('/'), field: `rules.${fw.rules.findIndex((r) => r.id === rule.value.id)}.id`, code: 'duplicate', message: `rule id ${rule.value.id} is taken` }],
                }),
          );
        const rules = [...fw.rules.slice(0, index), rule.value, ...fw.rules.slice(index)];
        return ok({ rules, reply: { status: 201, body: ruleView(rule.value, 0) } });
      });
    },
  },
  {
    method: 'GET',
    path: '/v1/tenants/{t}/firewall/rules/{ruleId}',
    scope: 'tenant',
    operationId: 'getFirewallRule',
    summary: 'Get one firewall rule',
    params: TR,
    reply: { status: 200, schema: 'FirewallRuleObject' },
    handle: async (ctx) => {
      const r = await ctx.store.get(firewallKind.key(ctx.params));
      if (!r.ok) return err(fromStoreError(r.error));
      const fw = firewallOf(ctx, r.value);
      if (!fw.ok) return fw;
      const rule = fw.value.rules.find((x) => x.id === ctx.params.ruleId);
      if (!rule) return err(notFound(`rule ${ctx.params.ruleId} in the firewall of tenant ${ctx.params.t}`));
      return ok({ status: 200, body: ruleView(rule, r.value!.modRevision) });
    },
  },
  {
    method: 'PUT',
    path: '/v1/tenants/{t}/firewall/rules/{ruleId}',
    scope: 'tenant',
    operationId: 'putFirewallRule',
    summary: 'Replace a firewall rule in place, or append it when new',
    params: TR,
    ifMatch: true,
    body: 'FirewallRule',
    reply: { status: 200, schema: 'FirewallRuleObject' },
    handle: (ctx) => {
      const key = firewallKind.key(ctx.params);
      const at = segmentsOf(key);
      const id = ctx.params.ruleId!;
      return ruleWrite(ctx, (fw, revision) => {
        const found = fw.rules.findIndex((r) => r.id === id);
        if (found >= 0 && ctx.ifMatch === 0) return err(ruleExists(ctx, key, id, revision));
        const index = found >= 0 ? found : fw.rules.length;
        const rule = ruleBody(ctx, at, index, id);
        if (!rule.ok) return rule;
        const rules = found >= 0 ? fw.rules.map((r, i) => (i === found ? rule.value : r)) : [...fw.rules, rule.value];
        return ok({ rules, reply: { status: 200, body: ruleView(rule.value, 0) } });
      });
    },
  },
  {
    method: 'DELETE',
    path: '/v1/tenants/{t}/firewall/rules/{ruleId}',
    scope: 'tenant',
    operationId: 'deleteFirewallRule',
    summary: 'Delete a firewall rule',
    params: TR,
    ifMatch: true,
    reply: { status: 200, schema: 'FirewallRuleObject' },
    handle: (ctx) => {
      const id = ctx.params.ruleId!;
      return ruleWrite(ctx, (fw, revision) => {
        const rule = fw.rules.find((r) => r.id === id);
        if (!rule) return err(notFound(`rule ${id} in the firewall of tenant ${ctx.params.t}`));
        if (ctx.ifMatch === 0) return err(ruleExists(ctx, firewallKind.key(ctx.params), id, revision));
        return ok({ rules: fw.rules.filter((r) => r !== rule), reply: { status: 200, body: ruleView(rule, 0) } });
      });
    },
  },
];
