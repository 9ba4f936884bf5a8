/**
 * The detection loop end to end over a real LMDB store opened with the config check (as every
 * program opens it) and fake sample sources: a synthetic attack becomes one rule (install) or
 * one proposal (propose) whichever server sees it first, is renewed while it lasts, expires after,
 * and leaves its events; events are trimmed; a missing store costs only the writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { mustOpen } from '../store/lmdb-harness.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import type { ConfigStore, JsonValue } from '../store/types.ts';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { eventKey, eventsPrefix, EVENTS_PER_TENANT, PROPOSALS_PREFIX, type DetectionEvent, type Proposal } from '../model/detection.ts';
import { fakeSampleSource, type FakeSampleSource, type Sample } from '../kernel/bpf/sample.ts';
import { DetectionLoop } from './detect-loop.ts';
import { detectTenants } from './detect-tenants.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');

async function withStore(fn: (store: ConfigStore) => Promise<void>, acmeDetection?: unknown): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-detect-'));
  const store = mustOpen({ path: dir, validation: CONFIG_VALIDATION, noSync: true });
  try {
    const doc = parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as { tenants: Record<string, Record<string, unknown>> };
    if (acmeDetection !== undefined) doc.tenants.acme!.dos = { detection: acmeDetection };
    const config = parseConfig(doc);
    assert.ok(config.ok, config.ok ? '' : JSON.stringify(config.error));
    const w = await store.txn({ then: [...configToEntries(config.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    assert.ok(w.ok);
    await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function configOf(store: ConfigStore): Promise<Map<string, JsonValue>> {
  const l = await store.list('/tenants/');
  assert.ok(l.ok);
  return new Map(l.value.entries.map((e) => [e.key, e.value]));
}

interface Server {
  readonly loop: DetectionLoop;
  readonly source: FakeSampleSource;
}

function server(store: ConfigStore | null, name: string, clock: { now: number }, realStore: ConfigStore): Server {
  const source = fakeSampleSource(10);
  const loop = new DetectionLoop({ where: { dc: 'ams', server: name }, source, every: 10, config: () => configOf(realStore), store: () => store, now: () => clock.now, sweepEvery: 1_000_000 });
  return { loop, source };
}

/** A UDP flood on 203.0.113.100:53 with a fixed payload from sources in three /24s: n samples. */
function flood(n: number): Sample[] {
  const nets = ['192.0.2', '198.51.100', '203.0.113'];
  return Array.from({ length: n }, (_, i) => ({
    family: 4 as const,
    proto: 17,
    src: `${nets[i % 3]}.${200 + (i % 50)}`,
    dst: '203.0.113.100',
    sport: 1024 + i,
    dport: 53,
    len: 80,
    ttl: 50,
    tcpFlags: 0,
    payload: 'deadbeef00010000',
  }));
}

async function listValues<T>(store: ConfigStore, prefix: string): Promise<T[]> {
  const l = await store.list(prefix);
  assert.ok(l.ok);
  return l.value.entries.map((e) => e.value as T);
}

test('policy install: two servers see one attack and converge on one rule, renewed while it lasts, expired after', async () => {
  await withStore(
    async (store) => {
      const clock = { now: T0 };
      const a = server(store, 's1', clock, store);
      const b = server(store, 's2', clock, store);
      // 300 samples × 10 = 3000 pps over the 1000 pps threshold, on both servers.
      a.source.push(...flood(300));
      b.source.push(...flood(250));
      clock.now += 1000;
      const ra = await a.loop.tick();
      const rb = await b.loop.tick();
      assert.deepEqual([...ra.errors, ...rb.errors], []);
      assert.equal(ra.window.attacks.length, 1);
      const ruleId = ra.window.attacks[0]!.ruleId;
      assert.equal(rb.window.attacks[0]?.ruleId, ruleId, 'both servers build the same rule id');
      const rules = await store.list('/dos/rules/auto-');
      assert.ok(rules.ok);
      assert.deepEqual(rules.value.entries.map((e) => e.key), [`/dos/rules/${ruleId}`], 'exactly one detected rule (examples/acme.yaml has its own chargen rule)');
      const rule = rules.value.entries[0]!.value as { match: unknown; action: string; scope: unknown; expires: string };
      assert.deepEqual(rule.match, { dst: ['203.0.113.100/32'], protocol: 'udp', dport: [53], payload: { offset: 0, bytes: 'deadbeef00010000' } });
      assert.equal(rule.action, 'drop');
      assert.deepEqual(rule.scope, { tenant: 'acme' });
      assert.equal(rule.expires, new Date(T0 + 1000 + 600_000).toISOString());
      assert.deepEqual(ra.events.map((e) => e.kind), ['detected', 'installed']);
      assert.deepEqual(rb.events.map((e) => e.kind), ['detected'], 'the second server finds the rule installed');
      assert.deepEqual(await listValues(store, PROPOSALS_PREFIX), [], 'install writes no proposal');

      // Still attacking 6 minutes later (past half the 10 m ttl): renewed once, by whoever is first.
      // (A quiet read first: rates are per window since the previous read.)
      clock.now += 359_000;
      await a.loop.tick();
      await b.loop.tick();
      clock.now += 1000;
      a.source.push(...flood(300));
      b.source.push(...flood(300));
      const again = [await a.loop.tick(), await b.loop.tick()];
      // Six quiet minutes end an episode, so both say `detected` again; the rule is renewed once.
      assert.deepEqual(again.map((r) => r.events.map((e) => e.kind)), [['detected', 'renewed'], ['detected']]);
      clock.now += 1000;
      a.source.push(...flood(300));
      b.source.push(...flood(300));
      const same = [await a.loop.tick(), await b.loop.tick()];
      assert.deepEqual(same.flatMap((r) => r.events), [], 'within an episode and a fresh expiry: nothing to write');
      const renewed = await store.get(`/dos/rules/${ruleId}`);
      assert.ok(renewed.ok);
      assert.equal((renewed.value?.value as { expires: string }).expires, new Date(clock.now - 1000 + 600_000).toISOString());

      // The attack stops; after the expiry the sweep deletes the rule and says so.
      clock.now += 600_001;
      const events: DetectionEvent[] = [];
      await a.loop.sweep(store, clock.now, events);
      assert.deepEqual(events.map((e) => [e.kind, e.ruleId]), [['expired', ruleId]]);
      const gone = await store.get(`/dos/rules/${ruleId}`);
      assert.ok(gone.ok);
      assert.equal(gone.value, undefined);
      const stored = await listValues<DetectionEvent>(store, eventsPrefix('acme'));
      assert.deepEqual(stored.map((e) => `${e.kind} ${e.by}`), ['detected ams/s1', 'installed ams/s1', 'detected ams/s2', 'detected ams/s1', 'renewed ams/s1', 'detected ams/s2', 'expired ams/s1']);
      assert.ok(stored.every((e) => e.ruleId === ruleId && e.tenant === 'acme'));
      assert.deepEqual(stored[1]!.observation?.crossed, ['pps']);
    },
    { action: 'install', thresholds: { pps: 1000 } },
  );
});

test('policy propose (the default): one proposal, refreshed by the servers that see it; no rule until accepted', async () => {
  await withStore(async (store) => {
    const clock = { now: T0 };
    const a = server(store, 's1', clock, store);
    const b = server(store, 's2', clock, store);
    // Default thresholds: 100 000 pps, so 12 000 samples × 10.
    a.source.push(...flood(12_000));
    b.source.push(...flood(12_000));
    clock.now += 1000;
    const ra = await a.loop.tick();
    const rb = await b.loop.tick();
    assert.deepEqual(ra.events.map((e) => e.kind), ['detected', 'proposed']);
    assert.deepEqual(rb.events.map((e) => e.kind), ['detected']);
    const proposals = await listValues<Proposal>(store, PROPOSALS_PREFIX);
    assert.equal(proposals.length, 1);
    assert.equal(proposals[0]!.state, 'pending');
    assert.equal(proposals[0]!.tenant, 'acme');
    assert.deepEqual(proposals[0]!.seenBy, ['ams/s1', 'ams/s2']);
    assert.equal(proposals[0]!.ttlSeconds, 600);
    const rules = await store.list('/dos/rules/auto-');
    assert.ok(rules.ok);
    assert.equal(rules.value.entries.length, 0);
    // Past its expiry without being seen again: the sweep removes it.
    clock.now += 600_001;
    const events: DetectionEvent[] = [];
    await a.loop.sweep(store, clock.now, events);
    assert.deepEqual(events.map((e) => e.kind), ['expired']);
    assert.deepEqual(await listValues(store, PROPOSALS_PREFIX), []);
  });
});

test('a rejected proposal is not proposed again while it lasts', async () => {
  await withStore(
    async (store) => {
      const clock = { now: T0 };
      const a = server(store, 's1', clock, store);
      a.source.push(...flood(300));
      clock.now += 1000;
      const r = await a.loop.tick();
      const id = r.window.attacks[0]!.ruleId;
      const key = `${PROPOSALS_PREFIX}${id}`;
      const p = await store.get(key);
      assert.ok(p.ok && p.value);
      assert.ok((await store.put(key, { ...(p.value.value as object), state: 'rejected' })).ok);
      clock.now += 20_000;
      a.source.push(...flood(300));
      const again = await a.loop.tick();
      assert.deepEqual(again.events, []);
      const still = await store.get(key);
      assert.ok(still.ok);
      assert.equal((still.value?.value as Proposal).state, 'rejected');
    },
    { thresholds: { pps: 1000 } },
  );
});

test('events are trimmed to the newest per tenant', async () => {
  await withStore(async (store) => {
    const clock = { now: T0 };
    const a = server(store, 's1', clock, store);
    const then = Array.from({ length: EVENTS_PER_TENANT + 5 }, (_, i) => ({
      op: 'put' as const,
      key: eventKey('acme', `${String(T0 + i).padStart(13, '0')}-ams.s1-000000`),
      value: { at: new Date(T0 + i).toISOString(), kind: 'detected', tenant: 'acme', ruleId: 'auto-acme-00000000', by: 'ams/s1' },
    }));
    assert.ok((await store.txn({ then })).ok);
    const errors: string[] = [];
    await a.loop.sweep(store, clock.now, [], errors);
    assert.deepEqual(errors, []);
    const left = await store.list(eventsPrefix('acme'));
    assert.ok(left.ok);
    assert.equal(left.value.entries.length, EVENTS_PER_TENANT);
    assert.equal(left.value.entries[0]!.key, then[5]!.key, 'the five oldest went');
  });
});

test('without a store the loop still judges and reports, and writes nothing', async () => {
  await withStore(
    async (store) => {
      const clock = { now: T0 };
      const a = server(null, 's1', clock, store);
      const before = await store.status();
      a.source.push(...flood(300));
      clock.now += 1000;
      const r = await a.loop.tick();
      assert.equal(r.window.attacks.length, 1);
      assert.deepEqual(r.events, []);
      const after = await store.status();
      assert.ok(before.ok && after.ok);
      assert.equal(after.value.revision, before.value.revision);
    },
    { action: 'install', thresholds: { pps: 1000 } },
  );
});

test('detectTenants: active tenants with prefixes, their policy or the defaults; broken entries cost only themselves', () => {
  const entries = new Map<string, JsonValue>([
    ['/tenants/acme', { name: 'Acme', dos: { detection: { action: 'install' } } }],
    ['/tenants/acme/prefixes/p1', { cidr: '203.0.113.0/25' }],
    ['/tenants/acme/prefixes/bad', { cidr: 'nope' }],
    ['/tenants/globex', { name: 'Globex', status: 'suspended' }],
    ['/tenants/globex/prefixes/p0', { cidr: '203.0.113.128/25' }],
    ['/tenants/broken', { name: 7 }],
    ['/tenants/broken/prefixes/p0', { cidr: '192.0.2.0/24' }],
    ['/tenants/empty', { name: 'No prefixes' }],
  ]);
  const t = detectTenants(entries);
  assert.deepEqual(t.map((x) => [x.id, x.prefixes.length, x.policy.action]), [['acme', 1, 'install']]);
});
