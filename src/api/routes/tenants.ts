/**
 * Tenants: `/v1/tenants`, `/v1/tenants/{t}` and the token of a tenant. A tenant token sees only
 * its own tenant; creating, changing and deleting tenants and issuing their tokens is the
 * operator's. The token hash is never returned, and a PUT without `tokenHash` keeps the current
 * one, so editing a tenant's name cannot lock it out.
 */
import { err, ok } from '../../lib/result.ts';
import { tenantSchema } from '../../model/tenant.ts';
import type { JsonValue } from '../../store/types.ts';
import { fromStoreError } from '../errors.ts';
import { children, deleteObject, getObject, notFound, parseBody, readModifyWrite, segmentsOf, stripEcho, view, viewOf, type ObjectKind } from '../objects.ts';
import type { RouteSpec } from '../route.ts';
import { generateToken } from '../tokens.ts';

const T = { t: 'tenant id' } as const;

/** Tenants as objects; deleting one deletes everything below it. */
export const tenantKind: ObjectKind = {
  what: 'tenant',
  schema: tenantSchema,
  key: (p) => `/tenants/${p.t}`,
  listPrefix: () => '/tenants/',
  cascade: true,
};

/** The tenant routes. */
export const tenantRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/tenants',
    scope: 'tenant',
    operationId: 'listTenants',
    summary: 'List tenants (a tenant token lists only its own tenant)',
    reply: { status: 200, schema: 'TenantList' },
    handle: async (ctx) => {
      const r = await ctx.store.list('/tenants/');
      if (!r.ok) return err(fromStoreError(r.error));
      const mine = (key: string): boolean => ctx.viewer.kind === 'operator' || key === `/tenants/${ctx.viewer.tenant}`;
      return ok({ status: 200, body: { items: children(r.value.entries, '/tenants/').filter((e) => mine(e.key)).map(viewOf) } });
    },
  },
  {
    method: 'GET',
    path: '/v1/tenants/{t}',
    scope: 'tenant',
    operationId: 'getTenant',
    summary: 'Get a tenant',
    params: T,
    reply: { status: 200, schema: 'TenantObject' },
    handle: (ctx) => getObject(ctx, tenantKind),
  },
  {
    method: 'PUT',
    path: '/v1/tenants/{t}',
    scope: 'operator',
    operationId: 'putTenant',
    summary: 'Create or replace a tenant (without tokenHash, the current token stays valid)',
    params: T,
    ifMatch: true,
    body: 'Tenant',
    reply: { status: 200, schema: 'TenantObject' },
    handle: async (ctx) => {
      const key = tenantKind.key(ctx.params);
      const at = segmentsOf(key);
      const body = stripEcho(ctx.body, ctx.params.t!, at);
      if (!body.ok) return body;
      const value = parseBody(tenantSchema, body.value, at);
      if (!value.ok) return value;
      const r = await readModifyWrite(ctx, key, at, (cur) => {
        const old = cur?.value as { tokenHash?: unknown } | undefined;
        const keep = value.value.tokenHash === undefined && typeof old?.tokenHash === 'string' ? { tokenHash: old.tokenHash } : {};
        const next = { ...value.value, ...keep };
        return ok({ ops: [{ op: 'put', key, value: next }], reply: { status: 200, body: view(ctx.params.t!, 0, next as JsonValue) } });
      });
      ctx.auth.invalidate();
      return r;
    },
  },
  {
    method: 'DELETE',
    path: '/v1/tenants/{t}',
    scope: 'operator',
    operationId: 'deleteTenant',
    summary: 'Delete a tenant with all its prefixes, tunnels, routes and firewall, in one transaction',
    params: T,
    ifMatch: true,
    reply: { status: 200, schema: 'TenantObject' },
    handle: async (ctx) => {
      const r = await deleteObject(ctx, tenantKind);
      ctx.auth.invalidate();
      return r;
    },
  },
  {
    method: 'POST',
    path: '/v1/tenants/{t}/token',
    scope: 'operator',
    operationId: 'newTenantToken',
    summary: 'Issue a new token for a tenant, replacing its old one; the token is shown only in this reply',
    params: T,
    ifMatch: true,
    reply: { status: 200, schema: 'Token' },
    handle: async (ctx) => {
      const key = tenantKind.key(ctx.params);
      const { token, hash } = generateToken();
      const r = await readModifyWrite(ctx, key, segmentsOf(key), (cur) => {
        if (!cur) return err(notFound(`tenant ${ctx.params.t}`, '; create it first'));
        const next = { ...(cur.value as Record<string, JsonValue>), tokenHash: hash };
        return ok({ ops: [{ op: 'put', key, value: next }], reply: { status: 200, body: { token } } });
      });
      ctx.auth.invalidate();
      return r;
    },
  },
];
