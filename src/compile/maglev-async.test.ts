/**
 * The off-thread steering table: the same bytes as the synchronous build, memoized alike (a
 * second request costs no build and no thread), the event loop free while a worker builds, and
 * every way a worker can fail an error value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSteeringTable, MAGLEV_SIZE, maglevBuilds, steeringSets, steeringTable, type SteeringServer } from './maglev.ts';
import { steeringTableOffThread } from './maglev-async.ts';

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(4, '0')}`);
const fixture = (name: string) => new URL(`./testdata/maglev-worker/${name}.mjs`, import.meta.url);

/** The largest gap between ticks of a 10 ms interval while `work` runs. */
async function maxTimerGap<T>(work: () => Promise<T>): Promise<{ value: T; gapMs: number; ticks: number }> {
  let last = performance.now();
  let gapMs = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    gapMs = Math.max(gapMs, now - last);
    last = now;
    ticks++;
  }, 10);
  try {
    // Let the interval start ticking before the work begins.
    await new Promise((r) => setTimeout(r, 30));
    last = performance.now();
    const value = await work();
    gapMs = Math.max(gapMs, performance.now() - last);
    return { value, gapMs, ticks };
  } finally {
    clearInterval(timer);
  }
}

test('the worker builds exactly the synchronous table, counts its fills, and a second request is a memo hit', async () => {
  // 60 servers, one draining: both kinds of second choice (T(S ∪ draining) and T(S \ {F})).
  const servers: SteeringServer[] = ids(60, 'exact').map((id, i) => ({ id, state: i === 7 ? 'draining' : i === 9 ? 'down' : 'active' }));
  const sets = steeringSets(servers);
  assert.ok(sets.ok);
  const before = maglevBuilds();
  const sync = buildSteeringTable(sets.value.active, sets.value.withDraining, MAGLEV_SIZE, 'maglev');
  assert.ok(sync.ok);
  const syncFills = maglevBuilds() - before;
  assert.equal(syncFills, 1 + 1 + 58, 'T(S), T(S ∪ draining) and one per active server');

  const n = maglevBuilds();
  const t = await steeringTableOffThread(servers, MAGLEV_SIZE, 'maglev', { minServers: 1 });
  assert.ok(t.ok, t.ok ? '' : t.error.message);
  assert.deepEqual(t.value, sync.value);
  assert.equal(maglevBuilds(), n + syncFills, "the worker's fills are counted in this process");

  // The same sets again, in another order: no fill, no worker (a memo hit answers at once), and
  // the synchronous path finds the worker's table too.
  const t0 = performance.now();
  const again = await steeringTableOffThread([...servers].reverse(), MAGLEV_SIZE, 'maglev', { minServers: 1, worker: fixture('throws') });
  const ms = performance.now() - t0;
  const viaSync = steeringTable(servers);
  assert.equal(maglevBuilds(), n + syncFills, 'an unchanged server set was built again');
  assert.ok(again.ok && viaSync.ok, 'a memo hit started a worker');
  assert.ok(ms < 50, `a memoized table took ${ms.toFixed(1)} ms`);
  assert.deepEqual(again.value, sync.value);
  assert.deepEqual(viaSync.value, sync.value);
  // Callers own their copies: changing one does not reach the memo.
  again.value.first.fill(0);
  const third = await steeringTableOffThread(servers, MAGLEV_SIZE, 'maglev', { minServers: 1 });
  assert.ok(third.ok);
  assert.deepEqual(third.value, sync.value);
});

test('small DCs build on the calling thread, to the same table', async () => {
  const servers: SteeringServer[] = ids(5, 'small').map((id) => ({ id, state: 'active' }));
  // A worker that would fail: the table comes back anyway, so none was started.
  const t = await steeringTableOffThread(servers, MAGLEV_SIZE, 'maglev', { worker: fixture('throws') });
  assert.ok(t.ok, t.ok ? '' : t.error.message);
  const sets = steeringSets(servers);
  assert.ok(sets.ok);
  const sync = buildSteeringTable(sets.value.active, sets.value.withDraining, MAGLEV_SIZE, 'maglev');
  assert.ok(sync.ok);
  assert.deepEqual(t.value, sync.value);
});

test('concurrent requests for one server set share one worker', async () => {
  const servers: SteeringServer[] = ids(40, 'shared').map((id) => ({ id, state: 'active' }));
  const n = maglevBuilds();
  const [a, b] = await Promise.all([steeringTableOffThread(servers), steeringTableOffThread([...servers].reverse())]);
  assert.ok(a.ok && b.ok);
  assert.equal(maglevBuilds(), n + 1 + 40, 'built twice');
  assert.deepEqual(a.value, b.value);
  assert.notEqual(a.value.first, b.value.first, 'each caller gets its own copy');
});

test('while a worker builds the table of 300 servers, a 10 ms timer keeps firing; built on the loop, it does not', async () => {
  const servers: SteeringServer[] = ids(300, 'loop').map((id) => ({ id, state: 'active' }));
  const off = await maxTimerGap(() => steeringTableOffThread(servers));
  assert.ok(off.value.ok, off.value.ok ? '' : off.value.error.message);
  assert.ok(off.ticks >= 10, `only ${off.ticks} ticks: the build was too quick to show anything`);
  // The control: the same build on the event loop (another set, so not memoized) blocks it for
  // its whole duration (~1 s idle), so the measurement can tell the difference.
  const other: SteeringServer[] = ids(300, 'block').map((id) => ({ id, state: 'active' }));
  const on = await maxTimerGap(async () => steeringTable(other));
  assert.ok(on.value.ok);
  assert.ok(on.gapMs > 300, `the synchronous build stalled the loop only ${on.gapMs.toFixed(0)} ms`);
  // Idle, the loop never waits more than ~50 ms while the worker builds (the worker, tsx's loader
  // thread and GC share 2 cores with it): 150 ms, or on a loaded machine a fifth of the control.
  const bar = Math.max(150, on.gapMs / 5);
  assert.ok(off.gapMs < bar, `the event loop stalled ${off.gapMs.toFixed(0)} ms while the worker built (bar ${bar.toFixed(0)} ms)`);
});

test('a worker that throws, exits, stays silent or answers nonsense is an error value, and the build is not memoized', async () => {
  const cases: Array<[string, RegExp, number?]> = [
    ['throws', /failed: boom in the worker/],
    ['exits', /exited with code 3 before answering/],
    ['silent', /did not answer within 300 ms and was stopped/, 300],
    ['nonsense', /answered tables that are not two arrays of 65537 buckets/],
    ['out-of-range', /answered bucket 0 with owners \(2, -1\) outside the 2 servers/],
  ];
  for (const [name, message, timeoutMs] of cases) {
    const servers: SteeringServer[] = [
      { id: `${name}-a`, state: 'active' },
      { id: `${name}-b`, state: 'active' },
    ];
    const t = await steeringTableOffThread(servers, MAGLEV_SIZE, 'dcs/ams', { minServers: 1, worker: fixture(name), ...(timeoutMs ? { timeoutMs } : {}) });
    assert.ok(!t.ok, `${name}: a broken worker gave a table`);
    assert.equal(t.error.code, 'worker_failed', name);
    assert.equal(t.error.path, 'dcs/ams', name);
    assert.match(t.error.message, message, name);
    assert.match(t.error.message, /of 2 active servers .*retried on the next pass/, name);
    // Nothing bad was memoized: the real worker builds the set afterwards.
    const good = await steeringTableOffThread(servers, MAGLEV_SIZE, 'dcs/ams', { minServers: 1 });
    assert.ok(good.ok, `${name}: ${good.ok ? '' : good.error.message}`);
  }
});

test("the build's own errors come back from the worker as they are", async () => {
  const t = await steeringTableOffThread([{ id: 'a', state: 'active' }], 65536, 'dcs/ams', { minServers: 1 });
  assert.ok(!t.ok);
  assert.equal(t.error.code, 'bad_size');
  assert.equal(t.error.path, 'dcs/ams');
  assert.match(t.error.message, /must be a prime ≥ 65537/);
  // Checked before any worker: duplicates and no active server.
  const dup = await steeringTableOffThread([{ id: 'a', state: 'active' }, { id: 'a', state: 'active' }], MAGLEV_SIZE, 'dcs/ams', { minServers: 1, worker: fixture('throws') });
  assert.ok(!dup.ok && dup.error.code === 'duplicate_server');
  const none = await steeringTableOffThread([{ id: 'a', state: 'draining' }], MAGLEV_SIZE, 'dcs/ams', { minServers: 1, worker: fixture('throws') });
  assert.ok(!none.ok && none.error.code === 'no_servers');
});
