// What `status` flags and how it shows it: each kind of trouble on its own server, then all at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerItem } from './client.ts';
import type { ServerStatus } from '../model/status.ts';
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
