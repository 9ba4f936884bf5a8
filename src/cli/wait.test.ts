// `apply --wait` on a virtual clock: converging servers, a server that never does, passing API
// failures waited out, and a real failure ending the wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiError, ServerItem } from './client.ts';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { NO_TERMINAL } from './terminal.ts';
import { renderWaitOutcome, waitForServers } from './wait.ts';

const T0 = '2030-01-01T00:00:00.000Z';

function item(name: string, applied: number | null, extra: Partial<ServerItem> = {}): ServerItem {
  return {
    dc: 'ams',
    server: name,
    status:
      applied === null
        ? null
        : { appliedRevision: applied, seenRevision: applied, store: { connected: true, since: T0 }, tunnels: [], startedAt: T0, updatedAt: T0, version: '0.1.0' },
    storeRevision: 20,
    lag: { revisions: 0, seconds: 0 },
    stale: false,
    ...extra,
  };
}

/** A virtual clock: sleep advances it. */
function clock(): { now: () => number; sleep: (ms: number) => Promise<void> } {
  let t = 0;
  return { now: () => t, sleep: async (ms) => void (t += ms) };
}

function capture(): { io: { out(s: string): void; err(s: string): void }; err: string[] } {
  const errs: string[] = [];
  return { io: { out: () => {}, err: (s) => void errs.push(s) }, err: errs };
}

const apiError = (status: number, code: string): ApiError => ({ status, code, message: code, method: 'GET', url: 'http://127.0.0.1:1/v1/servers' });

test('waits until every server applied the revision, printing progress lines without a TTY', async () => {
  const polls: ServerItem[][] = [
    [item('s1', 9), item('s2', null)],
    [item('s1', 15), item('s2', 9)],
    [item('s1', 15), item('s2', 15)],
  ];
  let i = 0;
  const c = clock();
  const { io, err: lines } = capture();
  const r = await waitForServers(async () => ok(polls[Math.min(i++, polls.length - 1)]!), { revision: 15, timeoutMs: 10_000, intervalMs: 100, io, term: NO_TERMINAL, ...c });
  assert.ok(r.ok);
  assert.equal(r.value.converged, true);
  assert.equal(i, 3);
  assert.deepEqual(lines, ['waiting: 0/2 servers applied revision 15\n', 'waiting: 1/2 servers applied revision 15\n', 'waiting: 2/2 servers applied revision 15\n']);
  assert.equal(renderWaitOutcome(r.value, 15), 'all 2 servers applied revision 15\n');
});

test('times out and names each server behind with its last error', async () => {
  const c = clock();
  const failing = item('s2', 14, {
    status: { appliedRevision: 14, seenRevision: 15, store: { connected: true, since: T0 }, tunnels: [], startedAt: T0, updatedAt: T0, version: '0.1.0', lastError: { at: T0, message: 'route add 203.0.113.0/25 table transit: EEXIST' } },
  });
  let polls = 0;
  const r = await waitForServers(
    async () => {
      polls++;
      return ok([item('s1', 15), failing, item('s3', null)]);
    },
    { revision: 15, timeoutMs: 2_000, intervalMs: 500, io: capture().io, term: NO_TERMINAL, ...c },
  );
  assert.ok(r.ok);
  assert.equal(r.value.converged, false);
  assert.equal(polls, 5, 'polls at 0, 500, 1000, 1500 and 2000 ms');
  assert.deepEqual(r.value.behind.map((s) => s.server), ['s2', 's3']);
  assert.equal(
    renderWaitOutcome(r.value, 15),
    '2 of 3 servers did not apply revision 15 within 2 s:\n' +
      `  ams/s2: applied 14, seen 15 (needs 15); last error at ${T0}: route add 203.0.113.0/25 table transit: EEXIST\n` +
      '  ams/s3: no status: its agent has never reported (is anyedge agent running there?)\n',
  );
});

test('an API that is briefly unreachable is waited out; one that refuses ends the wait', async () => {
  const answers: Result<ServerItem[], ApiError>[] = [err(apiError(0, 'unreachable')), err(apiError(503, 'unavailable')), ok([item('s1', 15)])];
  let i = 0;
  const r = await waitForServers(async () => answers[i++]!, { revision: 15, timeoutMs: 10_000, io: capture().io, term: NO_TERMINAL, ...clock() });
  assert.ok(r.ok && r.value.converged);

  const refused = await waitForServers(async () => err(apiError(403, 'forbidden')), { revision: 15, timeoutMs: 10_000, io: capture().io, term: NO_TERMINAL, ...clock() });
  assert.ok(!refused.ok);
  assert.equal(refused.error.status, 403);

  const never = await waitForServers(async () => err(apiError(0, 'unreachable')), { revision: 15, timeoutMs: 1_000, io: capture().io, term: NO_TERMINAL, ...clock() });
  assert.ok(!never.ok, 'no answer at all is the API failing, not servers behind');
  assert.equal(never.error.code, 'unreachable');
});

test('a server no longer in the config is not waited for', async () => {
  const r = await waitForServers(async () => ok([item('s1', 15), item('s9', 2, { configured: false })]), {
    revision: 15,
    timeoutMs: 1_000,
    io: capture().io,
    term: NO_TERMINAL,
    ...clock(),
  });
  assert.ok(r.ok && r.value.converged);
  assert.deepEqual(r.value.items.map((s) => s.server), ['s1']);
});

test('no servers: nothing to wait for', async () => {
  const r = await waitForServers(async () => ok([]), { revision: 3, timeoutMs: 1_000, io: capture().io, term: NO_TERMINAL, ...clock() });
  assert.ok(r.ok && r.value.converged);
  assert.equal(renderWaitOutcome(r.value, 3), 'no servers to wait for\n');
});

test('on a terminal, progress is a bar on stderr (and no progress lines)', async () => {
  const { PassThrough } = await import('node:stream');
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120 });
  let drawn = '';
  stream.on('data', (c: Buffer) => (drawn += c.toString()));
  const polls: ServerItem[][] = [[item('s1', 15), item('s2', 9)], [item('s1', 15), item('s2', 15)]];
  let i = 0;
  const { io, err: lines } = capture();
  const r = await waitForServers(async () => ok(polls[i++]!), {
    revision: 15,
    timeoutMs: 10_000,
    io,
    term: { ...NO_TERMINAL, stderrIsTTY: true, progressStream: stream },
    ...clock(),
  });
  assert.ok(r.ok && r.value.converged);
  assert.deepEqual(lines, []);
  assert.match(drawn, /waiting for servers to apply revision 15 \[[█░]+\] 2\/2/);
});
