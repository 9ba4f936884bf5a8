import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Replica } from './replica.ts';
import type { JsonValue, WatchEvent } from '../store/types.ts';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-replica-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function mustOpen(dir: string): Replica {
  const r = Replica.open(dir);
  if (!r.ok) assert.fail(r.error.message);
  return r.value;
}

function state(r: Replica) {
  const s = r.load();
  if (!s.ok) assert.fail(s.error.message);
  return { revision: s.value.revision, applied: s.value.appliedRevision, entries: Object.fromEntries(s.value.entries) };
}

const put = (key: string, value: JsonValue, revision: number): WatchEvent => ({ type: 'put', key, value, revision, createRevision: revision, version: 1 });

test('a fresh replica is empty at revision 0', async () => {
  await withDir(async (dir) => {
    const r = mustOpen(dir);
    assert.deepEqual(state(r), { revision: 0, applied: 0, entries: {} });
    await r.close();
  });
});

test('batches keep config keys only, survive a reopen, and deletes remove', async () => {
  await withDir(async (dir) => {
    const r = mustOpen(dir);
    assert.ok(r.applyBatch(3, [put('/tenants/acme', { name: 'Acme' }, 3), put('/status/ams/s1', { up: true }, 3), put('/anycast', { ranges: [] }, 3)]).ok);
    assert.ok(r.applyBatch(5, [{ type: 'delete', key: '/anycast', revision: 5 }, put('/dcs/ams', { name: 'Amsterdam' }, 5)]).ok);
    assert.ok(r.setApplied(5).ok);
    await r.close();
    const again = mustOpen(dir);
    assert.deepEqual(state(again), { revision: 5, applied: 5, entries: { '/dcs/ams': { name: 'Amsterdam' }, '/tenants/acme': { name: 'Acme' } } });
    await again.close();
  });
});

test('a batch is all or nothing: a value that cannot be stored leaves entries and revision as they were', async () => {
  await withDir(async (dir) => {
    const r = mustOpen(dir);
    assert.ok(r.applyBatch(2, [put('/tenants/a', { name: 'A' }, 2)]).ok);
    // JSON cannot encode a BigInt: the second put throws inside the transaction.
    const bad = r.applyBatch(3, [put('/tenants/b', { name: 'B' }, 3), put('/tenants/c', { n: 1n } as unknown as JsonValue, 3)]);
    assert.equal(bad.ok, false);
    assert.match(bad.ok ? '' : bad.error.message, /apply batch at revision 3 in replica .*check the disk/);
    assert.deepEqual(state(r), { revision: 2, applied: 0, entries: { '/tenants/a': { name: 'A' } } });
    await r.close();
  });
});

test('revisions only move forward: an old or repeated batch is refused and changes nothing', async () => {
  await withDir(async (dir) => {
    const r = mustOpen(dir);
    assert.ok(r.applyBatch(7, [put('/tenants/a', { name: 'A' }, 7)]).ok);
    for (const rev of [7, 6]) {
      const again = r.applyBatch(rev, [put('/tenants/b', { name: 'B' }, rev)]);
      assert.equal(again.ok, false);
      assert.match(again.ok ? '' : again.error.message, /already at revision 7/);
    }
    assert.deepEqual(Object.keys(state(r).entries), ['/tenants/a']);
    await r.close();
  });
});

test('replace swaps every entry at once; setApplied may move the revision forward, never back', async () => {
  await withDir(async (dir) => {
    const r = mustOpen(dir);
    assert.ok(r.applyBatch(4, [put('/tenants/a', { name: 'A' }, 4), put('/tenants/b', { name: 'B' }, 4)]).ok);
    assert.ok(r.replace(10, [['/tenants/c', { name: 'C' }], ['/status/x/y', {}]]).ok);
    assert.deepEqual(state(r), { revision: 10, applied: 0, entries: { '/tenants/c': { name: 'C' } } });
    assert.ok(r.setApplied(10, 12).ok);
    assert.deepEqual(state(r).revision, 12);
    assert.ok(r.setApplied(12, 11).ok);
    assert.deepEqual({ ...state(r), entries: undefined }, { revision: 12, applied: 12, entries: undefined });
    await r.close();
    assert.equal(r.load().ok, false, 'a closed replica refuses reads');
  });
});

test('a replica of another format is refused with what to do', async () => {
  await withDir(async (dir) => {
    const root = open({ path: join(dir, 'replica'), encoding: 'json', maxDbs: 4 });
    const meta = root.openDB<number, string>({ name: 'meta', encoding: 'json' });
    await meta.put('format', 99);
    await root.close();
    const r = Replica.open(dir);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error.message, /format 99, this build reads format 1; .*remove the directory/);
  });
});

test('an unusable state directory is an error naming it', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'file');
    await import('node:fs/promises').then((fs) => fs.writeFile(file, 'x'));
    const r = Replica.open(file);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error.message, /--state-dir/);
  });
});
