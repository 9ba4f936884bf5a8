/**
 * Server status: reports from `/status/<dc>/<server>` joined with the configured servers, lag
 * and staleness computed against the API's clock, and an unparseable report shown as null with
 * the reason instead of failing the listing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerStatus } from '../model/status.ts';
import { statusKey } from '../model/status.ts';
import { apiHarness } from './harness.ts';
import { report, STALE_AFTER_S } from './routes/status.ts';

const NOW = Date.parse('2030-01-01T00:10:00Z');

function status(over: Partial<ServerStatus> = {}): ServerStatus {
  return {
    appliedRevision: 7,
    seenRevision: 9,
    pendingSince: '2030-01-01T00:09:30Z',
    store: { connected: true, since: '2030-01-01T00:00:00Z' },
    tunnels: [{ tenant: 'acme', tunnel: 'gre1', state: 'up', since: '2030-01-01T00:01:00Z' }],
    startedAt: '2030-01-01T00:00:00Z',
    updatedAt: '2030-01-01T00:09:55Z',
    version: '0.1.0',
    ...over,
  };
}

test('lag is received-but-unapplied revisions and the seconds they have waited; stale after 60 s', () => {
  const r = report('ams', 's1', status(), true, 12, NOW);
  assert.deepEqual(r.lag, { revisions: 2, seconds: 30 });
  assert.equal(r.stale, false);
  assert.equal(r.storeRevision, 12);
  const inSync = report('ams', 's1', status({ seenRevision: 7, pendingSince: undefined }), true, 12, NOW);
  assert.deepEqual(inSync.lag, { revisions: 0, seconds: 0 });
  const old = report('ams', 's1', status({ updatedAt: new Date(NOW - (STALE_AFTER_S + 1) * 1000).toISOString() }), true, 12, NOW);
  assert.equal(old.stale, true);
  const never = report('ams', 's2', undefined, true, 12, NOW);
  assert.deepEqual({ status: never.status, stale: never.stale }, { status: null, stale: true });
});

test('a report that does not parse is null with the reason, never an error of the listing', () => {
  for (const raw of [null, 'x', [], { appliedRevision: -1 }, { ...status(), extra: '$(reboot)' }]) {
    const r = report('ams', 's1', raw as never, true, 3, NOW);
    assert.equal(r.status, null);
    assert.equal(r.stale, true);
    assert.match(r.error ?? '', /does not parse/);
  }
});

test('GET /v1/servers joins the configured servers with the reports; GET one server', async () => {
  const h = await apiHarness({ api: { now: () => NOW } });
  try {
    assert.ok((await h.store.put(statusKey('ams', 's1'), status())).ok);
    assert.ok((await h.store.put(statusKey('ams', 's10'), status())).ok, 'a server reporting that the config no longer has');
    assert.ok((await h.store.put(statusKey('chi', 's1'), { broken: true })).ok);
    const r = await h.call('GET', '/v1/servers');
    assert.equal(r.status, 200);
    const items = (r.body as { items: { dc: string; server: string; configured: boolean; status: unknown; stale: boolean; error?: string; storeRevision: number }[] }).items;
    assert.deepEqual(items.map((i) => `${i.dc}/${i.server}:${i.configured}`), ['ams/s1:true', 'ams/s10:false', 'ams/s2:true', 'chi/s1:true', 'chi/s2:true']);
    const s1 = items[0]!;
    assert.deepEqual(s1.status, status());
    assert.equal(s1.stale, false);
    assert.equal(s1.storeRevision, 4);
    assert.equal(items[3]!.status, null);
    assert.match(items[3]!.error!, /does not parse/);

    const one = await h.call('GET', '/v1/servers/ams/s1');
    assert.equal(one.status, 200);
    assert.deepEqual((one.body as { lag: unknown }).lag, { revisions: 2, seconds: 30 });
    assert.equal((await h.call('GET', '/v1/servers/ams/s2')).status, 200, 'configured, never reported');
    assert.equal((await h.call('GET', '/v1/servers/ams/s3')).status, 404);
    assert.equal((await h.call('GET', '/v1/servers/ams/s1', { token: h.tenants.acme! })).status, 403);
  } finally {
    await h.cleanup();
  }
});
