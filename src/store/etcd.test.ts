/**
 * Runs the ConfigStore contract against the etcd backend on a real one-member etcd, then what
 * only a cluster shows, on a real three-member cluster on loopback:
 * - a member killed (not the one the watcher streams from): writes still succeed and the watcher
 *   sees every one of them; the member restarted catches up;
 * - the member the watcher streams from killed: the watch fails over to another member and the
 *   events it delivers are exactly the writes' revisions, none missing, none twice;
 * - every member down: reads, writes and watches end with `unavailable` naming the endpoints,
 *   within the timeout, never a hang or an unhandled rejection.
 * Each cluster is started in `before` and stopped (processes killed, data removed) in `after`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Result } from '../lib/result.ts';
import { needs, hasTool } from '../testkit/needs.ts';
import { storeContract } from './contract.ts';
import { EtcdCluster, etcdFactory, mustOpenEtcd } from './etcd-harness.ts';
import { openEtcdStore, type EtcdConfigStore, type EtcdWatch } from './etcd.ts';
import type { StoreError, Watch, WatchBatch } from './types.ts';
import type { KeyspaceValidator } from './validator.ts';

const haveEtcd = hasTool('etcd');

void describe('etcd backend: contract on a one-member cluster', () => {
  let cluster: EtcdCluster | undefined;
  before(async () => {
    if (haveEtcd) cluster = await EtcdCluster.start(1);
  });
  after(async () => {
    await cluster?.stop();
  });
  if (haveEtcd) {
    storeContract(
      'etcd',
      etcdFactory(() => cluster!),
      // 2 × 150 × 2 contended writes through a real cluster: enough contention to prove no lost
      // update (hundreds of CAS retries) while keeping this file well under a minute.
      { processWrites: 150 },
    );
  } else {
    void it('ConfigStore contract: etcd', (t) => void needs(t, { tools: ['etcd'] }));
  }

  void it('compaction: another handle finds the compaction point, and no watch starts where a delete may be gone', async (t) => {
    if (!needs(t, { tools: ['etcd'] }) || !cluster) return;
    const prefix = `/anyedge-test/compact-${process.pid}`;
    const a = await mustOpenEtcd({ endpoints: cluster.endpoints, prefix });
    const b = await mustOpenEtcd({ endpoints: cluster.endpoints, prefix });
    try {
      const put = await a.put('/t/a', 1);
      const del = await a.delete('/t/a');
      assert.ok(put.ok && del.ok, `${JSON.stringify(put)} ${JSON.stringify(del)}`);
      const d = del.value.revision;
      assert.ok((await a.put('/u/other', 1)).ok, 'revision d + 1, outside the watched prefix');
      // compact(d + 1) compacts etcd at d, the delete's own revision, where etcd drops the
      // tombstone: the history is complete from d + 1 on, and that is what the store reports.
      const st = await a.compact(d + 1);
      assert.ok(st.ok, JSON.stringify(st));
      assert.equal(st.value.compactRevision, d + 1);
      const seen = await b.status();
      assert.ok(seen.ok && seen.value.compactRevision === d + 1, `a second handle finds it too: ${JSON.stringify(seen)}`);
      const refused = await first(b.watch('/t/', d - 1));
      assert.ok(!refused.ok && refused.error.code === 'compacted' && refused.error.compactRevision === d + 1, JSON.stringify(refused));
      assert.ok((await a.put('/t/b', 2)).ok);
      const fine = await first(b.watch('/t/', d));
      assert.ok(fine.ok && fine.value.events[0]?.key === '/t/b', `watching after ${d} works: ${JSON.stringify(fine)}`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  void it('concurrent validated writers on two handles never together make the keyspace invalid', async (t) => {
    if (!needs(t, { tools: ['etcd'] }) || !cluster) return;
    // Each write alone is valid (the first /v/leader/ key); any two together are not. Without
    // the meta-key guard both handles validate against a keyspace without the other's key and
    // several commit.
    const oneLeader: KeyspaceValidator = (entries) => {
      const leaders = [...entries.keys()].filter((k) => k.startsWith('/v/leader/'));
      return leaders.length > 1 ? leaders.map((k) => ({ code: 'conflict', path: k.split('/').slice(1), field: [], message: 'only one leader' })) : [];
    };
    const prefix = `/anyedge-test/validated-${process.pid}`;
    const validation = { validator: oneLeader, roots: ['/v/'] };
    const [a, b] = [await mustOpenEtcd({ endpoints: cluster.endpoints, prefix, validation }), await mustOpenEtcd({ endpoints: cluster.endpoints, prefix, validation })];
    try {
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).put(`/v/leader/r${round}n${i}`, i)));
        const won = results.filter((r) => r.ok).length;
        assert.equal(won, 1, `round ${round}: exactly one of the racing writes commits`);
        for (const r of results) if (!r.ok) assert.equal(r.error.code, 'invalid', r.error.message);
        const listed = await a.list('/v/leader/');
        assert.ok(listed.ok && listed.value.entries.length === 1, 'and the keyspace holds exactly one leader');
        assert.ok((await a.deletePrefix('/v/leader/')).ok);
      }
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** The first item of a watch (within 5 s), then closes it. */
async function first(w: Watch): Promise<Result<WatchBatch, StoreError>> {
  const it = w[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([it.next(), new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 5000)))]);
    if (r === 'timeout' || r.done) assert.fail(`watch: ${r === 'timeout' ? 'nothing within 5 s' : 'ended without an item'}`);
    return r.value;
  } finally {
    clearTimeout(timer);
    w.close();
  }
}

/** Reads a watch into `batches` in the background, with a way to wait for a revision. */
class Collector {
  readonly batches: WatchBatch[] = [];
  error: StoreError | undefined;
  ended = false;
  readonly #done: Promise<void>;
  #notify: (() => void) | undefined;

  constructor(readonly watch: EtcdWatch) {
    this.#done = (async () => {
      for await (const item of watch as AsyncIterable<Result<WatchBatch, StoreError>>) {
        if (item.ok) this.batches.push(item.value);
        else this.error = item.error;
        this.#notify?.();
      }
      this.ended = true;
      this.#notify?.();
    })();
  }

  /** Waits until a batch at or after `revision` arrived, failing after `ms`. */
  async until(revision: number, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while ((this.batches.at(-1)?.revision ?? 0) < revision) {
      if (this.ended) assert.fail(`watch ended (${this.error?.message ?? 'no error'}) before revision ${revision}`);
      const left = deadline - Date.now();
      if (left <= 0) assert.fail(`watch: revision ${revision} not seen within ${ms} ms; last ${this.batches.at(-1)?.revision}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#notify = () => (clearTimeout(t), resolve());
      });
    }
  }

  async stop(): Promise<void> {
    this.watch.close();
    await this.#done;
  }

  /** `revision key` of every event, in arrival order. */
  events(): string[] {
    return this.batches.flatMap((b) => b.events.map((e) => `${e.revision} ${e.key}`));
  }
}

void describe('etcd backend: three-member cluster', { timeout: 60_000 }, () => {
  let cluster: EtcdCluster | undefined;
  const stores: EtcdConfigStore[] = [];
  const collectors: Collector[] = [];
  let ns = 0;
  before(async () => {
    if (haveEtcd) cluster = await EtcdCluster.start(3);
  });
  after(async () => {
    for (const c of collectors) await c.stop();
    for (const s of stores) await s.close();
    await cluster?.stop();
  });
  const open = async (endpoints: string[], prefix: string, timeoutMs?: number): Promise<EtcdConfigStore> => {
    const s = await mustOpenEtcd({ endpoints, prefix, ...(timeoutMs ? { timeoutMs } : {}) });
    stores.push(s);
    return s;
  };
  /** Writes `count` puts one after another; returns `revision key` of each, from the write results. */
  const writeSome = async (store: EtcdConfigStore, tag: string, count: number): Promise<string[]> => {
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = `/f/${tag}/k${i % 5}`;
      const r = await store.put(key, { tag, i });
      assert.ok(r.ok, `put ${key}: ${r.ok ? '' : r.error.message}`);
      out.push(`${r.value.revision} ${key}`);
    }
    return out;
  };
  /** The cluster with all members up, or undefined when the test was skipped for want of etcd. */
  const ready = async (t: TestContext): Promise<EtcdCluster | undefined> => {
    if (!needs(t, { tools: ['etcd'] }) || !cluster) return undefined;
    await cluster.restartStopped();
    return cluster;
  };

  void it('a killed member (not the watcher’s) does not stop writes; the watcher sees them all; it rejoins', async (t) => {
    const c = await ready(t);
    if (!c) return;
    const prefix = `/anyedge-test/cluster-${ns++}`;
    const leader = await c.leader(0);
    // The watcher streams from its first endpoint; the victim is a follower other than that one.
    const watched = (leader + 1) % 3;
    const victim = (leader + 2) % 3;
    const order = [watched, leader, victim].map((i) => c.endpoints[i]!);
    const writer = await open(c.endpoints, prefix);
    const watcherStore = await open(order, prefix);
    const st = await writer.status();
    assert.ok(st.ok);
    const w = watcherStore.watch('/', st.value.revision) as EtcdWatch;
    const col = new Collector(w);
    collectors.push(col);
    const expected = await writeSome(writer, 'before', 20);
    await col.until(Number(expected.at(-1)!.split(' ')[0]));

    await c.kill(victim);
    const t0 = performance.now();
    expected.push(...(await writeSome(writer, 'during', 30)));
    t.diagnostic(`30 writes with member m${victim} down: ${(performance.now() - t0).toFixed(0)} ms`);
    await col.until(Number(expected.at(-1)!.split(' ')[0]));
    assert.equal(w.endpoint, c.endpoints[watched], 'the watcher never left its member');

    await c.restart(victim);
    expected.push(...(await writeSome(writer, 'after', 10)));
    const last = Number(expected.at(-1)!.split(' ')[0]);
    await col.until(last);
    assert.deepEqual(col.events(), expected, 'every write seen once, in order');
    // The restarted member caught up: a store using only it reads the last write.
    const onlyVictim = await open([c.endpoints[victim]!], prefix);
    const got = await onlyVictim.get('/f/after/k4');
    assert.ok(got.ok && got.value?.modRevision === last, `restarted member serves revision ${last}: ${JSON.stringify(got)}`);
  });

  void it('killing the member a watcher streams from: it fails over, no event missed or repeated', async (t) => {
    const c = await ready(t);
    if (!c) return;
    const prefix = `/anyedge-test/cluster-${ns++}`;
    const leader = await c.leader(0);
    // Killing a follower keeps a quorum and the leader, so every write gets a definite answer;
    // what is under test is the watch moving to another member.
    const victim = c.members.findIndex((_, i) => i !== leader && c.isRunning(i));
    const order = [victim, ...[0, 1, 2].filter((i) => i !== victim)].map((i) => c.endpoints[i]!);
    const writer = await open(c.endpoints.filter((_, i) => i !== victim), prefix);
    const watcherStore = await open(order, prefix);
    const st = await writer.status();
    assert.ok(st.ok);
    const w = watcherStore.watch('/f/', st.value.revision) as EtcdWatch;
    const col = new Collector(w);
    collectors.push(col);
    // Writes keep going while the member dies, so the watch's stream breaks mid-flow.
    const expected: string[] = [];
    let stop = false;
    const writing = (async () => {
      for (let round = 0; !stop; round++) expected.push(...(await writeSome(writer, `r${round}`, 5)));
    })();
    try {
      const seenBefore = 30;
      while (col.batches.length < seenBefore) await col.until((col.batches.at(-1)?.revision ?? st.value.revision) + 1);
      assert.equal(w.endpoint, c.endpoints[victim], 'the watch streams from the victim before the kill');
      await c.kill(victim);
      const t0 = performance.now();
      // Wait for the watch to be on another member and delivering again.
      while (w.connections.length < 2) await col.until((col.batches.at(-1)?.revision ?? 0) + 1);
      t.diagnostic(`watch failed over from m${victim} to ${w.endpoint} in ${(performance.now() - t0).toFixed(0)} ms; connections ${w.connections.join(',')}`);
      await col.until((col.batches.at(-1)?.revision ?? 0) + 10);
    } finally {
      stop = true;
      await writing;
    }
    const last = Number(expected.at(-1)!.split(' ')[0]);
    await col.until(last);
    assert.notEqual(w.endpoint, c.endpoints[victim], 'the watch moved off the killed member');
    const got = col.events();
    assert.equal(new Set(got).size, got.length, 'no event delivered twice');
    assert.deepEqual(got, expected, 'exactly the writes, by revision, none missing');
    const revs = col.batches.map((b) => b.revision);
    assert.deepEqual(revs, [...revs].sort((a, b) => a - b), 'revisions strictly increasing');
    await c.restart(victim);
  });

  void it('killing the leader a watcher streams from: after the election the watch resumes on another member', async (t) => {
    const c = await ready(t);
    if (!c) return;
    const prefix = `/anyedge-test/cluster-${ns++}`;
    const victim = await c.leader(0);
    const order = [victim, ...[0, 1, 2].filter((i) => i !== victim)].map((i) => c.endpoints[i]!);
    const writer = await open(c.endpoints, prefix);
    const watcherStore = await open(order, prefix);
    const st = await writer.status();
    assert.ok(st.ok);
    const w = watcherStore.watch('/f/', st.value.revision) as EtcdWatch;
    const col = new Collector(w);
    collectors.push(col);
    const expected = await writeSome(writer, 'before', 20);
    await col.until(Number(expected.at(-1)!.split(' ')[0]));
    assert.equal(w.endpoint, c.endpoints[victim]);
    // Writes pause over the kill: a write in flight when the leader dies has no definite outcome
    // (it may still commit), which would blur what this test proves about the watch.
    await c.kill(victim);
    const t0 = performance.now();
    const rest = [0, 1, 2].filter((i) => i !== victim);
    await c.waitHealthy(rest);
    t.diagnostic(`new leader m${await c.leader(rest[0]!)} elected ${(performance.now() - t0).toFixed(0)} ms after killing m${victim}`);
    expected.push(...(await writeSome(writer, 'after', 20)));
    await col.until(Number(expected.at(-1)!.split(' ')[0]));
    assert.notEqual(w.endpoint, c.endpoints[victim], 'the watch moved off the dead leader');
    assert.deepEqual(col.events(), expected, 'exactly the writes, once each, in revision order');
    await c.restart(victim);
  });

  void it('every member down: unavailable errors naming the endpoints, within the timeout, no hang', async (t) => {
    const c = await ready(t);
    if (!c) return;
    const prefix = `/anyedge-test/cluster-${ns++}`;
    const store = await open(c.endpoints, prefix, 1000);
    const put = await store.put('/d/a', 1);
    assert.ok(put.ok);
    const col = new Collector(store.watch('/d/', put.value.revision - 1) as EtcdWatch);
    collectors.push(col);
    await col.until(put.value.revision);
    for (let i = 0; i < 3; i++) await c.kill(i);
    const t0 = performance.now();
    for (const r of [await store.get('/d/a'), await store.put('/d/b', 2), await store.list('/d/'), await store.status()]) {
      assert.ok(!r.ok, 'fails');
      assert.equal(r.error.code, 'unavailable', r.error.message);
      for (const e of c.endpoints) assert.ok(r.error.message.includes(e), `message names ${e}: ${r.error.message}`);
      assert.ok(r.error.code === 'unavailable' && r.error.cause !== undefined, 'keeps the cause');
    }
    t.diagnostic(`four failed calls took ${(performance.now() - t0).toFixed(0)} ms`);
    const deadline = Date.now() + 10_000;
    while (!col.ended && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(col.ended, 'the watch ended');
    assert.equal(col.error?.code, 'unavailable', col.error?.message);
    assert.match(col.error?.message ?? '', /no member/);
    // Opening a store on a dead cluster is an error value too.
    const t1 = performance.now();
    const r = await openEtcdStore({ endpoints: c.endpoints, prefix, timeoutMs: 1000 });
    assert.ok(!r.ok && r.error.code === 'unavailable', 'open fails with unavailable');
    assert.ok(performance.now() - t1 < 5000, 'and quickly');
  });
});
