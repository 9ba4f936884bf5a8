/**
 * Runs the ConfigStore contract against the LMDB backend, then what only this backend promises:
 * in-process writes wake watchers without waiting for the poll, data and history survive a
 * reopen, a watch that falls behind a compaction stops with `compacted`, polling stops when no
 * watcher waits, validation decodes the keyspace once per handle and then only what changed, a
 * validator cannot alter the values it is shown, and a layout it does not know is refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { open } from 'lmdb';
import type { Result } from '../lib/result.ts';
import { storeContract } from './contract.ts';
import { lmdbFactory, mustOpen } from './lmdb-harness.ts';
import { openLmdbStore, type LmdbConfigStore } from './lmdb.ts';
import type { StoreError, Watch, WatchBatch } from './types.ts';

storeContract('lmdb', lmdbFactory);

/** Next item of a watch within `ms`, or 'timeout'. */
async function nextWithin(it: AsyncIterator<Result<WatchBatch, StoreError>>, ms: number): Promise<IteratorResult<Result<WatchBatch, StoreError>> | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([it.next(), new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

function batchOf(r: IteratorResult<Result<WatchBatch, StoreError>> | 'timeout'): WatchBatch {
  if (r === 'timeout') assert.fail('watch: timed out');
  if (r.done) assert.fail('watch: ended');
  if (!r.value.ok) assert.fail(`watch: ${r.value.error.message}`);
  return r.value.value;
}

void describe('LMDB backend specifics', { timeout: 20_000 }, () => {
  let dir: string;
  const opened: LmdbConfigStore[] = [];
  const watches: Watch[] = [];
  let n = 0;
  /** A store in a new subdirectory; `path` reuses one. */
  const openStore = (opts: { path?: string; pollIntervalMs?: number } = {}): LmdbConfigStore => {
    const s = mustOpen({ path: opts.path ?? join(dir, `s${n++}`), pollIntervalMs: opts.pollIntervalMs ?? 60_000 });
    opened.push(s);
    return s;
  };
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anyedge-store-'));
  });
  after(async () => {
    for (const w of watches) w.close();
    for (const s of opened) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  void it('in-process writes wake watchers at once, through any handle on the path', async () => {
    // A one-minute poll: only the in-process wake-up can deliver within the deadline.
    const a = openStore();
    const b = openStore({ path: a.path });
    const w = a.watch('/', 0);
    watches.push(w);
    const it = w[Symbol.asyncIterator]();
    const pending = it.next();
    await new Promise((r) => setTimeout(r, 20));
    const t0 = performance.now();
    assert.ok((await a.put('/x', 1)).ok);
    assert.equal(batchOf(await Promise.race([pending, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 1000))])).revision, 1);
    assert.ok((await b.put('/x', 2)).ok, 'write through a second handle');
    assert.equal(batchOf(await nextWithin(it, 1000)).revision, 2);
    assert.ok(performance.now() - t0 < 1000);
    w.close();
  });

  void it('data, revisions and history survive close and reopen', async () => {
    const s = openStore();
    const path = s.path;
    assert.ok((await s.put('/p/a', { v: 1 })).ok);
    assert.ok((await s.txn({ then: [{ op: 'put', key: '/p/b', value: 2 }, { op: 'delete', key: '/p/a' }] })).ok);
    await s.close();
    const again = openStore({ path });
    assert.deepEqual(await again.status(), { ok: true, value: { revision: 2, compactRevision: 0 } });
    assert.deepEqual(await again.get('/p/b'), { ok: true, value: { key: '/p/b', value: 2, createRevision: 2, modRevision: 2, version: 1 } });
    const w = again.watch('/p/', 0);
    watches.push(w);
    const it = w[Symbol.asyncIterator]();
    assert.deepEqual(batchOf(await nextWithin(it, 1000)).events.map((e) => `${e.type} ${e.key}`), ['put /p/a']);
    assert.deepEqual(batchOf(await nextWithin(it, 1000)).events.map((e) => `${e.type} ${e.key}`), ['delete /p/a', 'put /p/b']);
    w.close();
  });

  void it('a watch that falls behind a compaction ends with compacted', async () => {
    const s = openStore();
    for (let i = 1; i <= 5; i++) assert.ok((await s.put('/c', i)).ok);
    const w = s.watch('/', 0);
    watches.push(w);
    const it = w[Symbol.asyncIterator]();
    // The first pull reads a page of history (revisions 1–5) at once: those stay deliverable.
    assert.equal(batchOf(await nextWithin(it, 1000)).revision, 1);
    for (let i = 6; i <= 8; i++) assert.ok((await s.put('/c', i)).ok);
    assert.ok((await s.compact(8)).ok);
    const seen: number[] = [];
    for (;;) {
      const r = await nextWithin(it, 1000);
      assert.notEqual(r, 'timeout');
      if (r === 'timeout' || r.done) assert.fail('watch ended without an error');
      if (r.value.ok) seen.push(r.value.value.revision);
      else {
        assert.equal(r.value.error.code, 'compacted');
        break;
      }
    }
    assert.deepEqual(seen, [2, 3, 4, 5], 'the already-read page, then the error: never a silent gap');
    assert.deepEqual(await nextWithin(it, 1000), { done: true, value: undefined });
  });

  void it('polls only while a watcher waits', async () => {
    const s = openStore({ pollIntervalMs: 1000 });
    assert.equal(s.polling, false);
    const w = s.watch('/', 0);
    const it = w[Symbol.asyncIterator]();
    const pending = it.next();
    await new Promise((r) => setImmediate(r));
    assert.equal(s.polling, true, 'polling while a pull waits');
    assert.ok((await s.put('/a', 1)).ok);
    assert.equal(batchOf(await pending).revision, 1);
    assert.equal(s.polling, false, 'no polling while the consumer holds a batch');
    const again = it.next();
    await new Promise((r) => setImmediate(r));
    assert.equal(s.polling, true);
    w.close();
    assert.deepEqual(await again, { done: true, value: undefined });
    assert.equal(s.polling, false, 'no polling after close');
  });

  void it('a validator that throws is a bug: the write throws and nothing is written', async () => {
    const path = join(dir, `s${n++}`);
    const s = mustOpen({ path, validation: { validator: () => { throw new Error('validator bug'); } } });
    opened.push(s);
    await assert.rejects(s.put('/a', 1), /validator bug/);
    assert.deepEqual(await s.status(), { ok: true, value: { revision: 0, compactRevision: 0 } });
  });

  void it('validation decodes the whole keyspace once per handle, then only what changed', async () => {
    const path = join(dir, `s${n++}`);
    const seenSizes: number[] = [];
    const s = mustOpen({ path, validation: { validator: (entries) => (seenSizes.push(entries.size), []) } });
    const other = mustOpen({ path });
    opened.push(s, other);
    for (let i = 0; i < 20; i++) assert.ok((await other.put(`/k/${i}`, i)).ok);
    assert.equal(s.cacheRebuilds, 0, 'nothing read before the first validated write');
    for (let i = 0; i < 5; i++) assert.ok((await s.put(`/mine/${i}`, i)).ok);
    assert.equal(s.cacheRebuilds, 1, 'one full read, on the first validated write');
    for (let i = 20; i < 25; i++) assert.ok((await other.put(`/k/${i}`, i)).ok);
    assert.ok((await other.delete('/k/0')).ok);
    assert.ok((await s.put('/mine/x', 1)).ok);
    assert.equal(s.cacheRebuilds, 1, "other writers' changes come from the log");
    assert.deepEqual(seenSizes, [21, 22, 23, 24, 25, 30], 'the validator saw every key, the other handle’s included');
    // The cache is at revision 32; compacting to 34 drops revision 33, which it would need.
    assert.ok((await other.put('/k/late1', 1)).ok);
    assert.ok((await other.put('/k/late2', 1)).ok);
    assert.deepEqual(await other.compact(34), { ok: true, value: { revision: 34, compactRevision: 34 } });
    assert.ok((await s.put('/mine/y', 1)).ok);
    assert.equal(s.cacheRebuilds, 2, 'history compacted past the cache: read in full again');
    assert.equal(seenSizes.at(-1), 33, 'and the rebuilt copy is complete');
  });

  void it('a validator cannot change the values it is shown', async () => {
    const path = join(dir, `s${n++}`);
    const s = mustOpen({
      path,
      validation: {
        validator: (entries) => {
          (entries.get('/a') as { n: number } | undefined)!.n = 99;
          return [];
        },
      },
    });
    opened.push(s);
    await assert.rejects(s.put('/a', { n: 1 }), TypeError, 'values are frozen: writing one is a bug that throws');
    assert.deepEqual(await s.get('/a'), { ok: true, value: undefined }, 'nothing written');
  });

  void it('bad watch arguments end the watch with bad_request', async () => {
    const s = openStore();
    for (const w of [s.watch('no-slash', 0), s.watch('/', -1), s.watch('/', 1.5)]) {
      const r = await nextWithin(w[Symbol.asyncIterator](), 1000);
      assert.ok(r !== 'timeout' && !r.done && !r.value.ok && r.value.error.code === 'bad_request');
    }
  });

  void it('refuses a directory with another on-disk format', async () => {
    const path = join(dir, `s${n++}`);
    const raw = open({ path, encoding: 'json', maxDbs: 8 });
    await raw.openDB<number, string>({ name: 'meta', encoding: 'json' }).put('format', 99);
    await raw.close();
    const r = openLmdbStore({ path });
    assert.ok(!r.ok && r.error.code === 'unavailable' && /format 99/.test(r.error.message), JSON.stringify(r));
  });
});
