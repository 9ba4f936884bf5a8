/**
 * The platform's objects, operator only: the anycast block, data centers and their servers, DoS
 * rules and egress pools. Deleting a data center deletes its servers with it, in one transaction.
 */
import { ok } from '../../lib/result.ts';
import { err } from '../../lib/result.ts';
import { anycastSchema, emptyAnycast } from '../../model/anycast.ts';
import { dcSchema, serverSchema } from '../../model/dc.ts';
import { dosRuleSchema } from '../../model/dos.ts';
import { egressPoolSchema } from '../../model/egress.ts';
import { fromStoreError } from '../errors.ts';
import { deleteObject, getObject, listObjects, putObject, view, viewOf, type ObjectKind } from '../objects.ts';
import type { RouteSpec } from '../route.ts';
import type { ModelName } from '../schemas.ts';

const anycastKind: ObjectKind = { what: 'anycast block', schema: anycastSchema, key: () => '/anycast', listPrefix: () => '/' };

const dcKind: ObjectKind = { what: 'data center', schema: dcSchema, key: (p) => `/dcs/${p.dc}`, listPrefix: () => '/dcs/', cascade: true };

const serverKind: ObjectKind = {
  what: 'server',
  schema: serverSchema,
  key: (p) => `/dcs/${p.dc}/servers/${p.s}`,
  listPrefix: (p) => `/dcs/${p.dc}/servers/`,
  parent: (p) => ({ key: `/dcs/${p.dc}`, what: `data center ${p.dc}` }),
};

const dosKind: ObjectKind = { what: 'DoS rule', schema: dosRuleSchema, key: (p) => `/dos/rules/${p.id}`, listPrefix: () => '/dos/rules/' };

const poolKind: ObjectKind = { what: 'egress pool', schema: egressPoolSchema, key: (p) => `/egress/pools/${p.id}`, listPrefix: () => '/egress/pools/' };

/** list/get/put/delete routes of one operator-only kind. */
function crud(kind: ObjectKind, list: string, one: string, model: ModelName, plural: string, listParams: Record<string, string>, params: Record<string, string>): RouteSpec[] {
  return [
    { method: 'GET', path: list, scope: 'operator', operationId: `list${plural}`, summary: `List ${kind.what}s`, params: listParams, reply: { status: 200, schema: `${model}List` }, handle: (ctx) => listObjects(ctx, kind) },
    { method: 'GET', path: one, scope: 'operator', operationId: `get${model}`, summary: `Get a ${kind.what}`, params, reply: { status: 200, schema: `${model}Object` }, handle: (ctx) => getObject(ctx, kind) },
    { method: 'PUT', path: one, scope: 'operator', operationId: `put${model}`, summary: `Create or replace a ${kind.what}`, params, ifMatch: true, body: model, reply: { status: 200, schema: `${model}Object` }, handle: (ctx) => putObject(ctx, kind) },
    {
      method: 'DELETE',
      path: one,
      scope: 'operator',
      operationId: `delete${model}`,
      summary: `Delete a ${kind.what}${kind.cascade ? ' and everything below it' : ''}`,
      params,
      ifMatch: true,
      reply: { status: 200, schema: `${model}Object` },
      handle: (ctx) => deleteObject(ctx, kind),
    },
  ];
}

/** The platform routes. */
export const platformRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/anycast',
    scope: 'operator',
    operationId: 'getAnycast',
    summary: 'Get the anycast block (empty, revision 0, until one is written)',
    reply: { status: 200, schema: 'AnycastObject' },
    handle: async (ctx) => {
      const r = await ctx.store.get('/anycast');
      if (!r.ok) return err(fromStoreError(r.error));
      return ok({ status: 200, body: r.value ? viewOf(r.value) : view('anycast', 0, emptyAnycast()) });
    },
  },
  {
    method: 'PUT',
    path: '/v1/anycast',
    scope: 'operator',
    operationId: 'putAnycast',
    summary: 'Replace the anycast block',
    ifMatch: true,
    body: 'Anycast',
    reply: { status: 200, schema: 'AnycastObject' },
    handle: (ctx) => putObject(ctx, anycastKind),
  },
  ...crud(dcKind, '/v1/dcs', '/v1/dcs/{dc}', 'Dc', 'Dcs', {}, { dc: 'data center id' }),
  ...crud(serverKind, '/v1/dcs/{dc}/servers', '/v1/dcs/{dc}/servers/{s}', 'Server', 'Servers', { dc: 'data center id' }, { dc: 'data center id', s: 'server id' }),
  ...crud(dosKind, '/v1/dos/rules', '/v1/dos/rules/{id}', 'DosRule', 'DosRules', {}, { id: 'DoS rule id' }),
  ...crud(poolKind, '/v1/egress/pools', '/v1/egress/pools/{id}', 'EgressPool', 'EgressPools', {}, { id: 'egress pool id' }),
];
