// What `status` flags and how it shows it: each kind of trouble on its own server, then all at
// once; then end to end against the API.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ServerItem } from './client.ts';
import type { ServerStatus } from '../model/status.ts';
import { statusKey } from '../model/status.ts';
import type { ApiLab } from './client-harness.ts';
import { startApiLab } from './client-harness.ts';
import { parseYaml } from './yaml-source.ts';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { problemsOf, renderStatus, stateOf, statusJson } from './status.ts';

const T0 = '2030-01-01T00:00:00.000Z';

/** A healthy, in-sync server at revision 10, with `change` applied to its status. */
function server(name: string, change: Partial<ServerStatus> = {}, item: Partial<ServerItem> = {}): ServerItem {
  const status: ServerStatus = {
    appliedRevision: 10,
    seenRevision: 10,
    store: { connected: true, since: T0 },
    tunnels: [{ tenant: 'acme', tunnel: 'gre1', state: 'up', since: T0, rttMs: 3 }],
    startedAt: T0,
    updatedAt: T0,
    version: '0.1.0',
    ...change,
  };
  return { dc: 'ams', server: name, status, storeRevision: 12, lag: { revisions: 0, seconds: 0 }, stale: false, ...item };
}

test('a healthy in-sync server has no problems and state ok', () => {
  const s = server('s1');
  assert.deepEqual(problemsOf(s), []);
  assert.equal(stateOf(s), 'ok');
});

test('each trouble is named with what to look at', () => {
  const none = server('s0', {}, { status: null });
  assert.equal(stateOf(none), 'no status');
  assert.match(problemsOf(none)[0]!, /never reported/);

  const stale = server('s2', {}, { stale: true });
  assert.equal(stateOf(stale), 'stale');
  assert.deepEqual(problemsOf(stale), [`stale: last report at ${T0} (is its agent running?)`]);

  const lagging = server('s3', { seenRevision: 12, pendingSince: T0 }, { lag: { revisions: 2, seconds: 31.6 } });
  assert.equal(stateOf(lagging), 'lagging');
  assert.deepEqual(problemsOf(lagging), ['lagging: applied 10, seen 12 (2 revisions, 32 s behind)']);

  const failing = server('s4', { lastError: { at: T0, message: 'nft: table ae-acme: EPERM' } });
  assert.equal(stateOf(failing), 'error');
  assert.deepEqual(problemsOf(failing), [`last error at ${T0}: nft: table ae-acme: EPERM`]);

  const cut = server('s5', { store: { connected: false, since: T0, error: 'connection refused' } });
  assert.equal(stateOf(cut), 'disconnected');
  assert.deepEqual(problemsOf(cut), [`store disconnected since ${T0}: connection refused`]);

  const down = server('s6', {
    tunnels: [
      { tenant: 'acme', tunnel: 'gre1', state: 'down', since: T0 },
      { tenant: 'globex', tunnel: 'gre1', state: 'unknown', since: T0 },
    ],
  });
  assert.equal(stateOf(down), 'degraded');
  assert.deepEqual(problemsOf(down), [`tunnels down: acme/gre1 (since ${T0})`]);

  const unreadable = server('s8', {}, { status: null, error: "the agent's report does not parse: status/ams/s8.version: expected a string" });
  assert.equal(stateOf(unreadable), 'unreadable');
  assert.deepEqual(problemsOf(unreadable), ["unreadable status: the agent's report does not parse: status/ams/s8.version: expected a string"]);

  const removed = server('s9', {}, { configured: false });
  assert.equal(stateOf(removed), 'unconfigured');
  assert.match(problemsOf(removed)[0]!, /^not in the config: /);

  // Unknown is not down: a tunnel without health checks is never probed.
  assert.deepEqual(problemsOf(server('s7', { tunnels: [{ tenant: 'acme', tunnel: 'gre1', state: 'unknown', since: T0 }] })), []);
});

test('renderStatus: one row per server, the flagged ones explained, a summary', () => {
  const items = [server('s1'), server('s2', {}, { stale: true }), server('s3', { seenRevision: 12 }, { lag: { revisions: 2, seconds: 4 } })];
  const out = renderStatus(items, false);
  const lines = out.split('\n');
  assert.match(lines[0]!, /^DC\s+SERVER\s+APPLIED\s+SEEN\s+LAG\s+STORE\s+TUNNELS\s+LAST ERROR\s+STATE$/);
  assert.match(lines[1]!, /^ams\s+s1\s+10\s+10\s+0\s+connected\s+1 up, 0 down, 0 unknown\s+ok$/);
  assert.match(lines[2]!, /^ams\s+s2\s+.*stale$/);
  assert.match(lines[3]!, /^ams\s+s3\s+10\s+12\s+2 revisions, 4 s\s+.*lagging$/);
  assert.ok(out.includes(`ams/s2: stale: last report at ${T0}`));
  assert.ok(out.includes('ams/s3: lagging: applied 10, seen 12'));
  assert.ok(out.endsWith('3 servers: 1 in sync and healthy, 2 need attention (store revision 12)\n'));
  assert.ok(!out.includes('\u001b'), 'no colour without a TTY');
  assert.equal(renderStatus([server('s1')], false).split('\n').at(-2), '1 server, all in sync and healthy (store revision 12)');
  assert.equal(renderStatus([], false), 'no servers in the config\n');
});

test('statusJson: the API items unchanged, plus what needs attention', () => {
  const items = [server('s1'), server('s2', {}, { stale: true })];
  const j = statusJson(items) as { items: ServerItem[]; healthy: boolean; problems: { dc: string; server: string; problems: string[] }[] };
  assert.deepEqual(j.items, items);
  assert.equal(j.healthy, false);
  assert.deepEqual(j.problems.map((p) => p.server), ['s2']);
});

// End to end: statuses written straight into the store, as agents do, read back through the API.
describe('anyedge status against the API', () => {
  let lab: ApiLab;
  before(async () => {
    lab = await startApiLab();
    const src = parseYaml(readFileSync('examples/acme.yaml', 'utf8'));
    assert.ok(src.ok);
    const cfg = parseConfig(src.value.value);
    assert.ok(cfg.ok);
    const w = await lab.store.txn({ then: [...configToEntries(cfg.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    assert.ok(w.ok, JSON.stringify(w));
  });
  after(async () => {
    await lab.close();
  });

  const ago = (s: number): string => new Date(Date.now() - s * 1000).toISOString();
  const report = (applied: number, extra: Partial<ServerStatus> = {}): ServerStatus => ({
    appliedRevision: applied,
    seenRevision: applied,
    store: { connected: true, since: ago(3600) },
    tunnels: [
      { tenant: 'acme', tunnel: 'gre1', state: 'up', since: ago(600), rttMs: 2 },
      { tenant: 'globex', tunnel: 'gre1', state: 'unknown', since: ago(600) },
    ],
    startedAt: ago(3600),
    updatedAt: ago(5),
    version: '0.1.0',
    ...extra,
  });

  test('a lagging, a stale and a silent server are flagged (exit 1); --json carries what the agents wrote', async () => {
    const written: Record<string, ServerStatus> = {
      'ams/s1': report(1),
      'ams/s2': report(1, {
        seenRevision: 4,
        pendingSince: ago(30),
        tunnels: [{ tenant: 'acme', tunnel: 'gre1', state: 'down', since: ago(20) }],
      }),
      'chi/s1': report(1, { updatedAt: ago(600) }),
    };
    for (const [id, s] of Object.entries(written)) {
      const [dc, server] = id.split('/') as [string, string];
      assert.ok((await lab.store.put(statusKey(dc, server), s)).ok);
    }
    const r = await lab.run(['status']);
    assert.equal(r.code, 1, r.err);
    const lines = r.out.split('\n');
    assert.match(lines[1]!, /^ams\s+s1\s+1\s+1\s+0\s+connected\s+1 up, 0 down, 1 unknown\s+ok$/);
    assert.match(lines[2]!, /^ams\s+s2\s+1\s+4\s+3 revisions, 3\d s\s+connected\s+0 up, 1 down, 0 unknown\s+lagging$/);
    assert.match(lines[3]!, /^chi\s+s1\s+1\s+1\s+0\s+connected\s+.*stale$/);
    assert.match(lines[4]!, /^chi\s+s2\s+no status$/);
    assert.match(r.out, /^ams\/s2: lagging: applied 1, seen 4 \(3 revisions, 3\d s behind\)$/m);
    assert.match(r.out, /^ams\/s2: tunnels down: acme\/gre1 \(since .*\)$/m);
    assert.match(r.out, /^chi\/s1: stale: last report at .* \(is its agent running\?\)$/m);
    assert.match(r.out, /^chi\/s2: no status: its agent has never reported/m);
    assert.match(r.out, /^4 servers: 1 in sync and healthy, 3 need attention \(store revision \d+\)$/m);

    const j = await lab.run(['status', '--json']);
    assert.equal(j.code, 1);
    const parsed = JSON.parse(j.out) as { items: ServerItem[]; healthy: boolean; problems: { dc: string; server: string }[] };
    assert.equal(parsed.healthy, false);
    assert.deepEqual(parsed.items.map((i) => `${i.dc}/${i.server}`), ['ams/s1', 'ams/s2', 'chi/s1', 'chi/s2']);
    for (const i of parsed.items) assert.deepEqual(i.status, written[`${i.dc}/${i.server}`] ?? null, `${i.dc}/${i.server}`);
    assert.deepEqual(parsed.items.map((i) => i.stale), [false, false, true, true]);
    assert.equal(parsed.items[1]!.lag.revisions, 3);
    assert.deepEqual(parsed.problems.map((p) => `${p.dc}/${p.server}`), ['ams/s2', 'chi/s1', 'chi/s2']);
  });

  test('every server fresh, in sync and without trouble: exit 0', async () => {
    for (const [dc, server] of [['ams', 's1'], ['ams', 's2'], ['chi', 's1'], ['chi', 's2']] as const) assert.ok((await lab.store.put(statusKey(dc, server), report(7))).ok);
    const r = await lab.run(['status']);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^4 servers, all in sync and healthy \(store revision \d+\)$/m);
  });
});
