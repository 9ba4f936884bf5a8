/**
 * A tenant's prefixes, tunnels and routes: `/v1/tenants/{t}/{prefixes|tunnels|routes}[/{id}]`,
 * open to the operator and to the tenant's own token. One key per object; a write that overlaps
 * another tenant's prefix, or names a tunnel that does not exist, is a 409 from the store's
 * cross-object check.
 */
import type { z } from 'zod';
import { prefixSchema } from '../../model/tenant.ts';
import { tunnelSchema } from '../../model/tunnel.ts';
import { routeSchema } from '../../model/route.ts';
import { deleteObject, getObject, listObjects, putObject, type ObjectKind } from '../objects.ts';
import type { RouteSpec } from '../route.ts';
import type { ModelName } from '../schemas.ts';

/** One family below a tenant: its URL/key segment, names and schema. */
interface Family {
  readonly segment: 'prefixes' | 'tunnels' | 'routes';
  readonly what: string;
  readonly model: ModelName;
  readonly schema: z.ZodType;
}

const FAMILIES: readonly Family[] = [
  { segment: 'prefixes', what: 'prefix', model: 'Prefix', schema: prefixSchema },
  { segment: 'tunnels', what: 'tunnel', model: 'Tunnel', schema: tunnelSchema },
  { segment: 'routes', what: 'route', model: 'Route', schema: routeSchema },
];

function kindOf(f: Family): ObjectKind {
  return {
    what: f.what,
    schema: f.schema,
    key: (p) => `/tenants/${p.t}/${f.segment}/${p.id}`,
    listPrefix: (p) => `/tenants/${p.t}/${f.segment}/`,
    parent: (p) => ({ key: `/tenants/${p.t}`, what: `tenant ${p.t}` }),
  };
}

function routesOf(f: Family): RouteSpec[] {
  const kind = kindOf(f);
  const list = `/v1/tenants/{t}/${f.segment}`;
  const one = `${list}/{id}`;
  const params = { t: 'tenant id', id: `${f.what} id` };
  const Name = f.model;
  return [
    { method: 'GET', path: list, scope: 'tenant', operationId: `list${f.segment[0]!.toUpperCase()}${f.segment.slice(1)}`, summary: `List a tenant's ${f.segment}`, params: { t: 'tenant id' }, reply: { status: 200, schema: `${Name}List` }, handle: (ctx) => listObjects(ctx, kind) },
    { method: 'GET', path: one, scope: 'tenant', operationId: `get${Name}`, summary: `Get a ${f.what}`, params, reply: { status: 200, schema: `${Name}Object` }, handle: (ctx) => getObject(ctx, kind) },
    { method: 'PUT', path: one, scope: 'tenant', operationId: `put${Name}`, summary: `Create or replace a ${f.what}`, params, ifMatch: true, body: Name, reply: { status: 200, schema: `${Name}Object` }, handle: (ctx) => putObject(ctx, kind) },
    { method: 'DELETE', path: one, scope: 'tenant', operationId: `delete${Name}`, summary: `Delete a ${f.what}`, params, ifMatch: true, reply: { status: 200, schema: `${Name}Object` }, handle: (ctx) => deleteObject(ctx, kind) },
  ];
}

/** The prefix, tunnel and route routes. */
export const tenantObjectRoutes: readonly RouteSpec[] = FAMILIES.flatMap(routesOf);
