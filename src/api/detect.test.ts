/**
 * The detection routes: who sees which events and proposals, and what accept and reject write.
 * (Every route is also in matrix.test.ts and openapi.test.ts through the route table.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiHarness, type ApiHarness } from './harness.ts';
import { addDetectionSpares, SPARE_RULE } from './detect-samples.ts';
import { eventKey, proposalKey } from '../model/detection.ts';

async function harness(now = Date.parse('2031-06-01T12:00:00Z')): Promise<ApiHarness> {
  const h = await apiHarness({ api: { now: () => now } });
  await addDetectionSpares(h.store);
  // An event of globex, which acme must never see.
  const w = await h.store.put(eventKey('globex', '1893456000001-000001-ams.s2-000000'), { at: '2030-01-01T00:00:01.000Z', kind: 'detected', tenant: 'globex', ruleId: 'auto-globex-00000000', by: 'ams/s2' });
  assert.ok(w.ok);
  return h;
}

type Items = { items: { id: string; tenant: string; kind?: string; state?: string }[] };

test('a tenant sees its own events and proposals; another tenant gets 404; the operator sees all', async () => {
  const h = await harness();
  try {
    const own = await h.call('GET', '/v1/tenants/acme/dos/events', { token: h.tenants.acme! });
    assert.equal(own.status, 200);
    assert.deepEqual((own.body as Items).items.map((e) => [e.tenant, e.kind]), [['acme', 'proposed']]);
    const props = await h.call('GET', '/v1/tenants/acme/dos/proposals', { token: h.tenants.acme! });
    assert.deepEqual((props.body as Items).items.map((p) => [p.id, p.state]), [['spare', 'pending']]);
    const globexOwn = await h.call('GET', '/v1/tenants/globex/dos/proposals', { token: h.tenants.globex! });
    assert.deepEqual((globexOwn.body as Items).items, [], "acme's proposal is not globex's");
    for (const path of ['/v1/tenants/acme/dos/events', '/v1/tenants/acme/dos/proposals']) {
      const other = await h.call('GET', path, { token: h.tenants.globex! });
      assert.equal(other.status, 404, path);
      assert.equal((other.body as { error: { message: string } }).error.message, 'no tenant acme');
    }
    const all = await h.call('GET', '/v1/dos/events');
    assert.deepEqual((all.body as Items).items.map((e) => e.tenant), ['acme', 'globex']);
    const one = await h.call('GET', '/v1/dos/events?tenant=globex');
    assert.deepEqual((one.body as Items).items.map((e) => e.tenant), ['globex']);
    const unknown = await h.call('GET', '/v1/tenants/nobody/dos/events');
    assert.equal(unknown.status, 404);
    const tenantOnOperator = await h.call('GET', '/v1/dos/proposals', { token: h.tenants.acme! });
    assert.equal(tenantOnOperator.status, 403);
  } finally {
    await h.cleanup();
  }
});

test('accept writes the rule with its expiry counted from now, removes the proposal and records it; only the operator may', async () => {
  const now = Date.parse('2031-06-01T12:00:00Z');
  const h = await harness(now);
  try {
    const denied = await h.call('POST', '/v1/dos/proposals/spare/accept', { token: h.tenants.acme! });
    assert.equal(denied.status, 403);
    const r = await h.call('POST', '/v1/dos/proposals/spare/accept');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const expires = new Date(now + 600_000).toISOString();
    assert.deepEqual(r.body, { id: 'spare', decision: 'accepted', revision: (r.body as { revision: number }).revision, rule: { ...SPARE_RULE, expires } });
    const rule = await h.call('GET', '/v1/dos/rules/spare');
    assert.equal(rule.status, 200);
    assert.equal((rule.body as { expires: string }).expires, expires);
    const gone = await h.store.get(proposalKey('spare'));
    assert.ok(gone.ok);
    assert.equal(gone.value, undefined);
    const events = await h.call('GET', '/v1/tenants/acme/dos/events', { token: h.tenants.acme! });
    assert.deepEqual((events.body as Items).items.map((e) => e.kind), ['proposed', 'accepted']);
    const twice = await h.call('POST', '/v1/dos/proposals/spare/accept');
    assert.equal(twice.status, 404);
    assert.match((twice.body as { error: { message: string } }).error.message, /^no proposal spare; list them with GET \/v1\/dos\/proposals/);
  } finally {
    await h.cleanup();
  }
});

test('reject keeps the proposal as rejected and writes no rule', async () => {
  const h = await harness();
  try {
    const r = await h.call('POST', '/v1/dos/proposals/spare/reject');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((r.body as { decision: string }).decision, 'rejected');
    const p = await h.call('GET', '/v1/dos/proposals');
    assert.deepEqual((p.body as Items).items.map((x) => [x.id, x.state]), [['spare', 'rejected']]);
    const rule = await h.call('GET', '/v1/dos/rules/spare');
    assert.equal(rule.status, 404);
    const events = await h.call('GET', '/v1/dos/events?tenant=acme');
    assert.deepEqual((events.body as Items).items.map((e) => e.kind), ['proposed', 'rejected']);
  } finally {
    await h.cleanup();
  }
});

test('a rule the config check refuses is not written, and the proposal stays', async () => {
  const h = await harness();
  try {
    // The tenant the rule is scoped to is gone.
    const p = await h.store.get(proposalKey('spare'));
    assert.ok(p.ok && p.value);
    const orphan = { ...(p.value.value as Record<string, unknown>), rule: { ...SPARE_RULE, scope: { tenant: 'initech' } } };
    assert.ok((await h.store.put(proposalKey('spare'), orphan)).ok);
    const r = await h.call('POST', '/v1/dos/proposals/spare/accept');
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), /initech/);
    const still = await h.store.get(proposalKey('spare'));
    assert.ok(still.ok && still.value, 'the proposal is still there');
    const rule = await h.store.get('/dos/rules/spare');
    assert.ok(rule.ok);
    assert.equal(rule.value, undefined);
  } finally {
    await h.cleanup();
  }
});
