// The egress routes: list, one-transaction batches (create, move, delete; stale plans; every
// field error; config conflicts) and the computed ownership.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { apiHarness, type ApiHarness } from './harness.ts';

const open: ApiHarness[] = [];
after(async () => {
  for (const h of open) await h.cleanup();
});

async function harness(): Promise<ApiHarness> {
  const h = await apiHarness();
  open.push(h);
  return h;
}

type Body = { items?: { id: string; revision: number; dc: string; server?: string }[]; error?: { code: string; message: string; issues?: { path: string; field: string; code: string; message: string }[] } } & Record<string, unknown>;

test('a batch creates, moves and deletes assignments in one transaction and says what it changed', async () => {
  const h = await harness();
  const r = await h.call('POST', '/v1/egress/assign', { body: { set: { '198.51.100.65': { dc: 'ams' }, '198.51.100.96': { dc: 'ams' }, '198.51.100.64': null } } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const b = r.body as { revision: number; changes: unknown[] };
  assert.deepEqual(b.changes, [
    { ip: '198.51.100.65', action: 'create', after: { dc: 'ams' } },
    { ip: '198.51.100.96', action: 'update', before: { dc: 'chi' }, after: { dc: 'ams' } },
    { ip: '198.51.100.64', action: 'delete', before: { dc: 'ams' } },
  ]);
  const list = await h.call('GET', '/v1/egress/assign');
  assert.equal(list.status, 200);
  const items = (list.body as Body).items!;
  assert.deepEqual(
    items.map((i) => [i.id, i.dc]),
    [
      ['198.51.100.65', 'ams'],
      ['198.51.100.96', 'ams'],
    ],
  );
  assert.ok(items.every((i) => i.revision === b.revision));
  // The same batch again changes nothing.
  const again = await h.call('POST', '/v1/egress/assign', { body: { set: { '198.51.100.65': { dc: 'ams' } } } });
  assert.deepEqual((again.body as { changes: unknown[] }).changes, []);
});

test('with expect, a plan that went stale is refused whole', async () => {
  const h = await harness();
  const r = await h.call('POST', '/v1/egress/assign', { body: { set: { '198.51.100.65': { dc: 'ams' }, '198.51.100.64': { dc: 'chi' } }, expect: { '198.51.100.65': 0, '198.51.100.64': 0 } } });
  assert.equal(r.status, 409);
  assert.equal((r.body as Body).error!.code, 'cas_failed');
  assert.match((r.body as Body).error!.message, /egress\/assign\/198\.51\.100\.64 changed since your plan: it is at modRevision \d+, expected absent; plan again/);
  const list = await h.call('GET', '/v1/egress/assign');
  assert.ok(!(list.body as Body).items!.some((i) => i.id === '198.51.100.65'), 'nothing written');
});

test('every field error of a batch at once: spelling of addresses, shapes, expect without set', async () => {
  const h = await harness();
  const r = await h.call('POST', '/v1/egress/assign', { body: { set: { '2001:DB8::1': { dc: 'ams', server: 's1' }, '198.51.100.300': { dc: 'ams' } }, expect: { '198.51.100.70': 0 } } });
  assert.equal(r.status, 400);
  const issues = (r.body as Body).error!.issues!.map((i) => `${i.field}: ${i.code}`);
  assert.deepEqual(issues, ['set.2001:DB8::1: not_canonical', 'set.198.51.100.300: invalid_ip', 'expect.198.51.100.70: unknown_field']);
  const bad = await h.call('POST', '/v1/egress/assign', { body: { set: { '198.51.100.65': { dc: 'AMS' } } } });
  assert.equal(bad.status, 400);
  assert.match(JSON.stringify(bad.body), /not a valid dc id/);
  const empty = await h.call('POST', '/v1/egress/assign', { body: { set: {} } });
  assert.equal(empty.status, 400);
  assert.match(JSON.stringify(empty.body), /nothing to set/);
});

test('a batch the config check refuses writes nothing and names each problem', async () => {
  const h = await harness();
  const r = await h.call('POST', '/v1/egress/assign', { body: { set: { '198.51.100.65': { dc: 'sin' }, '198.51.100.66': { dc: 'ams', server: 's1' } } } });
  assert.equal(r.status, 409, JSON.stringify(r.body));
  const issues = (r.body as Body).error!.issues!.map((i) => `${i.path}.${i.field}`);
  assert.deepEqual(issues.sort(), ['egress/assign/198.51.100.65.dc', 'egress/assign/198.51.100.66.server']);
  const list = await h.call('GET', '/v1/egress/assign');
  assert.deepEqual((list.body as Body).items!.map((i) => i.id), ['198.51.100.64', '198.51.100.96']);
});

test('ownership: each address with its data center, tags and the slice of each server', async () => {
  const h = await harness();
  const r = await h.call('GET', '/v1/egress/ownership');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual((r.body as { items: unknown }).items, [
    { ip: '198.51.100.64', dc: 'ams', pool: 'nl-trusted', class: 'trusted', country: 'NL', owner: { kind: 'slices', sliceSize: 2048, slices: [{ slice: 1, server: 's1' }, { slice: 2, server: 's2' }] } },
    { ip: '198.51.100.96', dc: 'chi', pool: 'us-untrusted', class: 'untrusted', country: 'US', owner: { kind: 'slices', sliceSize: 2048, slices: [{ slice: 1, server: 's1' }, { slice: 2, server: 's2' }] } },
  ]);
  const tenant = await h.call('GET', '/v1/egress/ownership', { token: h.tenants.acme! });
  assert.equal(tenant.status, 403);
});

test('the egress routes are in /openapi.json with their schemas', async () => {
  const h = await harness();
  const r = await h.call('GET', '/openapi.json', { token: null });
  assert.equal(r.status, 200);
  const doc = r.body as { paths: Record<string, Record<string, { operationId: string }>>; components: { schemas: Record<string, unknown> } };
  assert.equal(doc.paths['/v1/egress/assign']?.get?.operationId, 'listEgressAssignments');
  assert.equal(doc.paths['/v1/egress/assign']?.post?.operationId, 'setEgressAssignments');
  assert.equal(doc.paths['/v1/egress/ownership']?.get?.operationId, 'getEgressOwnership');
  for (const name of ['EgressAssignment', 'EgressAssignmentList', 'EgressAssignBatch', 'EgressAssignResult', 'EgressOwnershipReply']) assert.ok(doc.components.schemas[name], name);
});
