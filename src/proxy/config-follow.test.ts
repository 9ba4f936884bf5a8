import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configOf, egressDoc } from '../compile/egress/fixtures.ts';
import { serverEgress } from '../compile/egress/server.ts';
import { configToEntries } from '../model/keyspace.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openLmdbStore } from '../store/lmdb.ts';
import type { ConfigStore } from '../store/types.ts';
import { ConfigFollower } from './config-follow.ts';
import type { ProxyEvent } from './server.ts';

/** The egress fixture with 2048-port slices, so lon keeps enough slices when one address moves. */
function doc(): ReturnType<typeof egressDoc> {
  const d = egressDoc();
  d.egress.pools['gb-trusted'].sliceSize = 2048;
  return d;
}

async function withStore(body: (open: () => ReturnType<typeof openLmdbStore> extends infer R ? Promise<R> : never, writer: ConfigStore) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ae-proxy-follow-'));
  const open = async () => openLmdbStore({ path: dir, validation: CONFIG_VALIDATION, pollIntervalMs: 5 });
  const w = await open();
  if (!w.ok) throw new Error(w.error.message);
  try {
    const put = await w.value.txn({ then: [...configToEntries(configOf(doc()))].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    assert.ok(put.ok, put.ok ? '' : put.error.message);
    await body(open, w.value);
  } finally {
    await w.value.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function changed(f: ConfigFollower): Promise<number> {
  return new Promise((resolve) => {
    const off = f.onChange((rev) => {
      off();
      resolve(rev);
    });
  });
}

test('the follower reads this server\'s egress addresses and follows an assignment moving in and out', async () => {
  await withStore(async (open, writer) => {
    const events: ProxyEvent[] = [];
    const f = new ConfigFollower({ openStore: open, dc: 'par', server: 's1', log: (e) => events.push(e) });
    const started = await f.start();
    assert.ok(started.ok, started.ok ? '' : started.error);
    try {
      const expected = serverEgress(configOf(doc()), 'par', 's1');
      assert.ok(expected.ok);
      assert.deepEqual(f.addresses(), expected.value);
      const before = f.addresses().map((a) => a.ip);
      assert.ok(!before.includes('198.51.100.65'));

      // 198.51.100.65 moves from lon to par: it appears here.
      const moved = changed(f);
      const w = await writer.put('/egress/assign/198.51.100.65', { dc: 'par' });
      assert.ok(w.ok, w.ok ? '' : w.error.message);
      assert.equal(await moved, w.value.revision);
      assert.ok(f.addresses().some((a) => a.ip === '198.51.100.65' && a.class === 'trusted' && a.country === 'GB'));

      // A status write (agents report there) is not config: no recompute, but the revision follows.
      const s = await writer.put('/status/par/s1', { any: 1 });
      assert.ok(s.ok);
      const deadline = Date.now() + 2000;
      while (f.revision() < s.value.revision && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(f.revision(), s.value.revision);

      // And back: it disappears.
      const back = changed(f);
      const b = await writer.put('/egress/assign/198.51.100.65', { dc: 'lon' });
      assert.ok(b.ok);
      await back;
      assert.deepEqual(f.addresses().map((a) => a.ip), before);
      // The first read, the move in, the move out.
      assert.equal(events.filter((e) => e.event === 'addresses').length, 3);
    } finally {
      await f.stop();
    }
  });
});

test('a server the config does not know stops the start with the reason', async () => {
  await withStore(async (open) => {
    const f = new ConfigFollower({ openStore: open, dc: 'par', server: 's9' });
    const r = await f.start();
    assert.ok(!r.ok);
    assert.match(r.error, /dcs\/par\/servers\/s9: data center par has no server "s9"; known: s1, s2/);
    await f.stop();
  });
});
