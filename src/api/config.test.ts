/**
 * Whole-config routes: GET /v1/config, POST /v1/config/diff and PUT /v1/config — one document in,
 * one transaction out, conditioned on every changed key, and with `expect` refused when anything
 * changed since the plan. Status keys and token hashes are never touched by a document.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { apiHarness, acmeDocument, type ApiHarness } from './harness.ts';

type Change = { action: string; key: string; before?: unknown; after?: unknown; modRevision: number };
type Changes = { revision: number; changes: Change[] };
type Doc = Record<string, Record<string, Record<string, Record<string, unknown>>>>;

async function withApi(fn: (h: ApiHarness) => Promise<void>): Promise<void> {
  const h = await apiHarness();
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

async function snapshot(h: ApiHarness): Promise<string> {
  const r = await h.store.list('/');
  assert.ok(r.ok);
  return JSON.stringify(r.value);
}

test('GET /v1/config is the stored config as a document: it parses to the seed, without token hashes', () =>
  withApi(async (h) => {
    const r = await h.call('GET', '/v1/config');
    assert.equal(r.status, 200);
    const { revision, config } = r.body as { revision: number; config: unknown };
    assert.equal(revision, 1);
    assert.ok(!JSON.stringify(config).includes('tokenHash'));
    const read = parseConfig(config);
    const seed = parseConfig(acmeDocument());
    assert.ok(read.ok && seed.ok);
    assert.deepEqual(configToEntries(read.value), configToEntries(seed.value));
  }));

test('diff: nothing for the document as read back; every kind of change, sorted by key, with modRevisions', () =>
  withApi(async (h) => {
    const current = ((await h.call('GET', '/v1/config')).body as { config: Doc }).config;
    const none = await h.call('POST', '/v1/config/diff', { body: { config: current } });
    assert.equal(none.status, 200, JSON.stringify(none.body));
    assert.deepEqual((none.body as Changes).changes, [], 'a document read back is no change (token hashes are kept, not removed)');

    const doc = acmeDocument() as Doc;
    doc.tenants!.acme!.prefixes = { ...doc.tenants!.acme!.prefixes, p2: { cidr: '203.0.113.0/26' } };
    doc.tenants!.acme!.name = 'Acme Inc' as never;
    delete doc.dos!.rules!.chargen;
    const before = await snapshot(h);
    const r = await h.call('POST', '/v1/config/diff', { body: { config: doc } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(await snapshot(h), before, 'a diff writes nothing');
    const changes = (r.body as Changes).changes;
    assert.deepEqual(
      changes.map((c) => [c.action, c.key, c.modRevision]),
      [
        ['delete', '/dos/rules/chargen', 1],
        ['update', '/tenants/acme', 1],
        ['create', '/tenants/acme/prefixes/p2', 0],
      ],
    );
    assert.deepEqual(changes[1]!.before, { name: 'Acme Corp', status: 'active' }, 'no token hash in before');
    assert.deepEqual(changes[1]!.after, { name: 'Acme Inc', status: 'active' });
    assert.ok(!('after' in changes[0]!) && !('before' in changes[2]!));
  }));

test('apply: one transaction, one revision; the tenant tokens survive; status keys are not config', () =>
  withApi(async (h) => {
    const status = await h.store.put('/status/ams/s1', { anything: true });
    assert.ok(status.ok);
    const doc = acmeDocument() as Doc;
    doc.tenants!.globex!.prefixes = { p0: { cidr: '203.0.113.128/26' } };
    doc.tenants!.globex!.routes = { r0: { prefix: '203.0.113.128/26', via: [{ tunnel: 'gre1' }] } };
    const st = await h.store.status();
    assert.ok(st.ok);
    const rev = st.value.revision;
    const r = await h.call('PUT', '/v1/config', { body: { config: doc } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const body = r.body as Changes;
    assert.equal(body.revision, rev + 1, 'the whole change is one revision');
    assert.deepEqual(body.changes.map((c) => c.key), ['/tenants/globex/prefixes/p0', '/tenants/globex/routes/r0']);
    assert.equal((await h.call('GET', '/v1/tenants/globex/prefixes/p0', { token: h.tenants.globex! })).status, 200, "globex's token still works");
    const s = await h.store.get('/status/ams/s1');
    assert.ok(s.ok && s.value, 'the status key is untouched');
    const again = await h.call('PUT', '/v1/config', { body: { config: doc } });
    assert.deepEqual((again.body as Changes).changes, [], 'applying twice changes nothing the second time');
    assert.equal((again.body as Changes).revision, rev + 1);
  }));

test('apply with expect: exactly the reviewed plan, or 409 and nothing written', () =>
  withApi(async (h) => {
    const doc = acmeDocument() as Doc;
    doc.tenants!.acme!.prefixes = { ...doc.tenants!.acme!.prefixes, p2: { cidr: '203.0.113.0/26' } };
    const plan = (await h.call('POST', '/v1/config/diff', { body: { config: doc } })).body as Changes;
    const expect = Object.fromEntries(plan.changes.map((c) => [c.key, c.modRevision]));

    // Somebody else changes a key the plan touches: the reviewed plan is stale.
    assert.equal((await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: '203.0.113.64/26' } })).status, 200);
    let before = await snapshot(h);
    const stale = await h.call('PUT', '/v1/config', { body: { config: doc, expect } });
    assert.equal(stale.status, 409, JSON.stringify(stale.body));
    const e = (stale.body as { error: { code: string; key: string; message: string } }).error;
    assert.equal(e.code, 'cas_failed');
    assert.equal(e.key, '/tenants/acme/prefixes/p2');
    assert.match(e.message, /changed since your plan/);
    assert.equal(await snapshot(h), before);

    // A change the plan did not include is refused too, even if the key is not in expect.
    const plan2 = (await h.call('POST', '/v1/config/diff', { body: { config: doc } })).body as Changes;
    const expect2 = Object.fromEntries(plan2.changes.map((c) => [c.key, c.modRevision]));
    assert.equal((await h.call('PUT', '/v1/dos/rules/extra', { body: { match: { protocol: 'udp', sport: [17] }, action: 'drop' } })).status, 200);
    before = await snapshot(h);
    const extra = await h.call('PUT', '/v1/config', { body: { config: doc, expect: expect2 } });
    assert.equal(extra.status, 409);
    assert.equal((extra.body as { error: { key: string } }).error.key, '/dos/rules/extra');
    assert.equal(await snapshot(h), before);

    // The fresh plan applies.
    const plan3 = (await h.call('POST', '/v1/config/diff', { body: { config: doc } })).body as Changes;
    const ok = await h.call('PUT', '/v1/config', { body: { config: doc, expect: Object.fromEntries(plan3.changes.map((c) => [c.key, c.modRevision])) } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual((ok.body as Changes).changes.map((c) => c.key), ['/dos/rules/extra', '/tenants/acme/prefixes/p2']);
  }));

test('an invalid document: 400 with every issue at its place in the document, nothing written', () =>
  withApi(async (h) => {
    const doc = acmeDocument() as Doc;
    doc.tenants!.globex!.prefixes = { p0: { cidr: '203.0.113.0/25' } };
    (doc.tenants!.acme!.tunnels!.gre1 as Record<string, unknown>).mtu = 100;
    (doc as Record<string, unknown>).extras = {};
    const before = await snapshot(h);
    for (const method of ['POST', 'PUT'] as const) {
      const r = await h.call(method, method === 'POST' ? '/v1/config/diff' : '/v1/config', { body: { config: doc } });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      const issues = (r.body as { error: { issues: { path: string; field: string; code: string }[] } }).error.issues;
      const at = issues.map((i) => `${i.path}${i.field ? '.' + i.field : ''}:${i.code}`).sort();
      assert.ok(at.includes('extras:unknown_field'), at.join(' '));
      assert.ok(at.includes('tenants/acme/tunnels/gre1.mtu:too_small'), at.join(' '));
      assert.ok(at.some((a) => a.endsWith(':duplicate') || a.endsWith(':overlap')), at.join(' '));
    }
    assert.equal(await snapshot(h), before);
    const envelope = await h.call('PUT', '/v1/config', { body: { cfg: {}, expect: { '/status/x': 1, '/tenants/acme': -1 } } });
    assert.equal(envelope.status, 400);
    const fields = (envelope.body as { error: { issues: { field: string }[] } }).error.issues.map((i) => i.field).sort();
    assert.deepEqual(fields, ['cfg', 'config', 'expect./status/x', 'expect./tenants/acme']);
    assert.equal(await snapshot(h), before);
  }));

test('an empty document deletes the whole config but not agent status', () =>
  withApi(async (h) => {
    assert.ok((await h.store.put('/status/ams/s1', { x: 1 })).ok);
    const r = await h.call('PUT', '/v1/config', { body: { config: {} } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok((r.body as Changes).changes.every((c) => c.action === 'delete'));
    const left = await h.store.list('/');
    assert.ok(left.ok);
    assert.deepEqual(left.value.entries.map((e) => e.key), ['/status/ams/s1']);
  }));
