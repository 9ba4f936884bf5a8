/**
 * The agent daemon on fake servers and a real LMDB store: first start, changes, bursts, restarts
 * from the replica, a store that is down or lost, a config the compiler refuses, a kernel that
 * fails half-way, tunnel health moving routes, and the status it writes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, packageVersion, type AgentOptions, type ReconcileOutcome } from './daemon.ts';
import { acmeConfig, acmeDoc, mustConfig } from './fixtures.ts';
import { assertExactlyOnce, EventLog, fakeServer, mustDelete, mustPut, recordingOpener, referenceDump, testCompile, waitFor, writeConfig, type FakeServer } from './daemon-fixtures.ts';
import type { Prober, ProbeTarget } from './health.ts';
import { err } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { serverStatusSchema, statusKey } from '../model/status.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openLmdbStore, type LmdbConfigStore } from '../store/lmdb.ts';
import { mustOpen } from '../store/lmdb-harness.ts';
import { kernelError } from '../kernel/errors.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Lab {
  /** A handle of the test's own, for writing config. */
  readonly writer: LmdbConfigStore;
  readonly stateDir: string;
  /** Every handle the agents opened, newest last. */
  readonly opened: LmdbConfigStore[];
  open(): Promise<ReturnType<typeof openLmdbStore>>;
}

async function lab(): Promise<Lab> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-agent-'));
  const path = join(dir, 'store');
  const opened: LmdbConfigStore[] = [];
  const writer = mustOpen({ path, validation: CONFIG_VALIDATION, pollIntervalMs: 5, noSync: true });
  cleanups.push(async () => {
    for (const s of [writer, ...opened]) await s.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    writer,
    stateDir: join(dir, 'state'),
    opened,
    open: async () => {
      const r = openLmdbStore({ path, validation: CONFIG_VALIDATION, pollIntervalMs: 5, noSync: true });
      if (r.ok) opened.push(r.value);
      return r;
    },
  };
}

interface Running {
  readonly agent: Agent;
  readonly log: EventLog;
  readonly outcomes: ReconcileOutcome[];
}

async function startAgent(l: Lab, server: FakeServer, extra: Partial<AgentOptions> = {}): Promise<Running> {
  const log = new EventLog();
  const agent = new Agent({
    where: { dc: 'ams', server: 's1' },
    openStore: () => l.open(),
    stateDir: l.stateDir,
    env: server.env,
    compile: testCompile,
    backoff: { initialMs: 20, maxMs: 200 },
    heartbeatMs: 60_000,
    log: log.sink,
    ...extra,
  });
  const outcomes: ReconcileOutcome[] = [];
  agent.onReconcile((_s, o) => void outcomes.push(o));
  cleanups.push(() => agent.stop());
  const started = await agent.start();
  if (!started.ok) assert.fail(started.error.message);
  return { agent, log, outcomes };
}

/** Waits until the agent reports `revision` applied. */
const applied = (r: Running, revision: number, ms = 5000) =>
  waitFor(`applied revision ${revision} (log:\n${r.log.text()})`, () => r.agent.snapshot().appliedRevision >= revision, ms);

function acmeWith(edit: (doc: ReturnType<typeof acmeDoc>) => void): Config {
  const doc = acmeDoc();
  edit(doc);
  return mustConfig(doc);
}

/** Acme with its FTP rule opening `port` instead of 20-21. */
const acmeFtpPort = (port: number) =>
  acmeWith((doc) => {
    ((doc.tenants.acme as { firewall: { rules: { dport: unknown[] }[] } }).firewall.rules[0] as { dport: unknown[] }).dport = [port];
  });

const firewallOf = (c: Config) => configToEntries(c).get('/tenants/acme/firewall');

test('first start: an empty replica waits for the store, then the config is applied and the status written', async () => {
  const l = await lab();
  const rev = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  const r = await startAgent(l, server);
  await applied(r, rev);
  assert.equal(await server.dump(), await referenceDump(acmeConfig()));
  assert.deepEqual(r.log.of('resync').map((e) => e.mode), ['list'], 'an empty replica lists the store');
  assert.deepEqual(r.outcomes, ['ok']);

  await waitFor('the status key', async () => {
    const s = await l.writer.get(statusKey('ams', 's1'));
    return s.ok && s.value !== undefined && (s.value.value as { appliedRevision: number }).appliedRevision >= rev;
  });
  const got = await l.writer.get(statusKey('ams', 's1'));
  assert.ok(got.ok && got.value);
  const status = serverStatusSchema.safeParse(got.value.value);
  assert.ok(status.success, JSON.stringify(status.error?.issues));
  assert.equal(status.data.store.connected, true);
  assert.equal(status.data.store.error, undefined);
  assert.equal(status.data.lastError, undefined);
  assert.equal(status.data.pendingSince, undefined);
  assert.equal(status.data.version, packageVersion());
  assert.ok(status.data.seenRevision >= status.data.appliedRevision);
  assert.ok(status.data.appliedAt && status.data.appliedAt >= status.data.startedAt);
});

test('a change is applied; a burst of 100 writes costs at most 3 applies and ends in the last state', async () => {
  const l = await lab();
  await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  const r = await startAgent(l, server);
  await applied(r, 1);

  const one = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  await applied(r, one);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2121)));

  const before = r.outcomes.length;
  let last = 0;
  // 5 ms apart: each would be its own reconcile without the coalescing window (50 ms quiet, 1 s at most).
  for (let i = 0; i < 100; i++) {
    last = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(3000 + i)));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await applied(r, last);
  const during = r.outcomes.slice(before);
  assert.ok(during.length >= 1 && during.length <= 3, `100 writes gave ${during.length} reconciles: ${during.join(', ')}`);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(3099)));
  // Every write was received once, in order.
  const changes = r.log.changeRevisions().filter((x) => x > one);
  assert.equal(changes.length, 100);
  assert.deepEqual(changes, [...changes].sort((a, b) => a - b));
  assert.equal(changes.at(-1), last);
});

test('restart: resumes after the persisted revision; only the newer change is received and applied', async () => {
  const l = await lab();
  const rev1 = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  const a = await startAgent(l, server);
  await applied(a, rev1);
  await a.agent.stop();
  const stoppedAt = a.agent.snapshot().seenRevision;

  // While the agent is away: one config change (and the store moves on).
  const rev2 = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  const delivered: number[] = [];
  const b = await startAgent(l, server, { openStore: recordingOpener(() => l.open(), delivered) });
  // The start-up pass from the replica found the kernel as the first agent left it.
  assert.equal(b.outcomes[0], 'noop');
  await applied(b, rev2);
  assert.deepEqual(b.outcomes, ['noop', 'ok']);
  assert.deepEqual(b.log.changeRevisions(), [rev2], 'only the change made while away is received');
  const resync = b.log.of('resync');
  assert.equal(resync.length, 1);
  assert.equal(resync[0]!.mode, 'history');
  assert.equal(resync[0]!.fromRevision, stoppedAt);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2121)));
  const start = b.log.of('start')[0]!;
  assert.ok(start.replicaRevision >= rev1 && start.appliedRevision >= rev1, JSON.stringify(start));
  // The store delivered every revision after the replica's, once, and nothing before.
  assert.equal(delivered[0], start.replicaRevision + 1);
  assertExactlyOnce(delivered, true, 'restarted agent');
});

test('store down at start: a rebooted server gets its last config from the replica; reconnects back off', async () => {
  const l = await lab();
  const rev = await writeConfig(l.writer, acmeConfig());
  const a = await startAgent(l, await fakeServer());
  await applied(a, rev);
  await a.agent.stop();

  const rebooted = await fakeServer();
  let attempts = 0;
  const log = new EventLog();
  const agent = new Agent({
    where: { dc: 'ams', server: 's1' },
    openStore: async () => (attempts++, err({ code: 'unavailable', message: 'etcd 127.0.0.1:1 did not answer (test)' })),
    stateDir: l.stateDir,
    env: rebooted.env,
    compile: testCompile,
    backoff: { initialMs: 10, maxMs: 80, random: () => 0.999 },
    log: log.sink,
  });
  cleanups.push(() => agent.stop());
  assert.ok((await agent.start()).ok);
  // start() resolves after the pass from the replica: the kernel is already back.
  assert.equal(await rebooted.dump(), await referenceDump(acmeConfig()));
  await waitFor('five connection attempts', () => attempts >= 5);
  const snap = agent.snapshot();
  assert.equal(snap.store.connected, false);
  assert.match(snap.store.error ?? '', /did not answer \(test\)/);
  assert.equal(snap.appliedRevision, a.agent.snapshot().appliedRevision);
  const waits = log.of('disconnected').map((e) => e.retryInMs);
  assert.deepEqual(waits.slice(0, 5), [10, 20, 40, 80, 80]);
  await agent.stop();
  const n = attempts;
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(attempts, n, 'no attempt after stop');
});

test('store lost mid-run: the kernel stays, the loss is reported, the watch resumes without missing or repeating', async () => {
  const l = await lab();
  const rev = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  const delivered: number[] = [];
  const r = await startAgent(l, server, { openStore: recordingOpener(() => l.open(), delivered) });
  await applied(r, rev);
  const dump = await server.dump();

  // Take the agent's store away, and change the config while it is gone.
  const lost = l.opened.at(-1)!;
  await lost.close();
  const during = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  await waitFor('a disconnected event', () => r.log.of('disconnected').length > 0);
  assert.equal(await server.dump(), dump, 'nothing in the kernel changed while the store was lost');
  await applied(r, during);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2121)));
  const after = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2222)));
  await applied(r, after);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2222)));
  assert.deepEqual(r.log.changeRevisions(), [during, after]);
  // Across the reconnect: every revision after the first listing delivered once, none skipped.
  assert.equal(delivered[0], r.log.of('resync')[0]!.toRevision + 1);
  assertExactlyOnce(delivered, true, 'agent across a lost store');
  assert.ok(delivered.includes(during) && delivered.includes(after));
  assert.equal(r.agent.snapshot().store.connected, true);
  assert.match(r.log.of('disconnected')[0]!.reason, /closed/);
});

test('restart after the history was compacted past the replica: lists the store instead, and converges', async () => {
  const l = await lab();
  const rev1 = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  const a = await startAgent(l, server);
  await applied(a, rev1);
  await a.agent.stop();

  const rev2 = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  const rev3 = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2222)));
  const compacted = await l.writer.compact(rev3);
  assert.ok(compacted.ok);
  const b = await startAgent(l, server);
  await applied(b, rev3);
  const resync = b.log.of('resync');
  assert.deepEqual(resync.map((e) => e.mode), ['list']);
  assert.match(resync[0]!.reason, /history starts at revision/);
  assert.deepEqual(b.log.changeRevisions(), [], 'nothing is replayed from history');
  assert.ok(rev2 < rev3);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2222)));
});

test('a watch that reports compacted mid-run is replaced by a listing; later changes still arrive once each', async () => {
  const l = await lab();
  const rev1 = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  // The first watch the agent opens fails at once with `compacted`, as if history had just gone.
  let failFirst = true;
  const open = async () => {
    const r = await l.open();
    if (!r.ok) return r;
    const store = r.value;
    const proxy = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop !== 'watch' || !failFirst) {
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? v.bind(target) : v;
        }
        return (prefix: string, afterRevision: number) => {
          failFirst = false;
          const inner = target.watch(prefix, afterRevision);
          return {
            close: () => inner.close(),
            async *[Symbol.asyncIterator]() {
              yield { ok: false as const, error: { code: 'compacted' as const, compactRevision: afterRevision + 5, message: `watch / after revision ${afterRevision}: history compacted (test)` } };
            },
          };
        };
      },
    });
    return { ok: true as const, value: proxy };
  };
  const r = await startAgent(l, server, { openStore: open });
  await applied(r, rev1);
  const resync = r.log.of('resync');
  assert.deepEqual(resync.map((e) => e.mode), ['list', 'list']);
  assert.match(resync[1]!.reason, /history compacted \(test\)/);
  const rev2 = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  await applied(r, rev2);
  assert.deepEqual(r.log.changeRevisions(), [rev2]);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2121)));
  assert.equal(r.log.of('disconnected').length, 0, 'compaction is not a lost store');
});

test('a replica from another store (ahead of it) is replaced by that store\'s config', async () => {
  const first = await lab();
  let last = await writeConfig(first.writer, acmeConfig());
  for (let i = 0; i < 5; i++) last = await mustPut(first.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(4000 + i)));
  const server = await fakeServer();
  const a = await startAgent(first, server);
  await applied(a, last);
  await a.agent.stop();

  // Another store, at a lower revision: the replica's revisions mean nothing there.
  const other = await lab();
  const rev = await writeConfig(other.writer, acmeFtpPort(2121));
  assert.ok(rev < last);
  const b = await startAgent(other, server, { stateDir: first.stateDir });
  await waitFor(`the listing of the other store\n${b.log.text()}`, () => b.log.of('resync').length > 0);
  assert.match(b.log.of('resync')[0]!.reason, /behind the replica's/);
  await waitFor('the other store\'s config in the kernel', async () => (await server.dump()) === (await referenceDump(acmeFtpPort(2121))));
  assert.ok(b.agent.snapshot().appliedRevision >= rev);
});

test('a config the compiler refuses keeps the kernel, reports lastError and retries; fixing it recovers', async () => {
  const l = await lab();
  const rev = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  const r = await startAgent(l, server);
  await applied(r, rev);
  const dump = await server.dump();
  const serverValue = configToEntries(acmeConfig()).get('/dcs/ams/servers/s1');

  // Removing this server from the config: the compiler has nothing to compile for it.
  const gone = await mustDelete(l.writer, '/dcs/ams/servers/s1');
  await waitFor('two failed attempts', () => r.log.of('error').filter((e) => e.stage === 'compile').length >= 2);
  assert.equal(await server.dump(), dump, 'the kernel keeps the last applied config');
  const snap = r.agent.snapshot();
  assert.match(snap.lastError?.message ?? '', /dcs\/ams\/servers\/s1: no server s1 in data center ams/);
  assert.equal(snap.appliedRevision < gone, true);
  assert.equal(snap.seenRevision >= gone, true);
  assert.ok(snap.pendingSince, 'the received config is reported pending');
  assert.ok(r.outcomes.includes('error'));
  await waitFor('the status key reporting the error', async () => {
    const s = await l.writer.get(statusKey('ams', 's1'));
    return s.ok && s.value !== undefined && serverStatusSchema.parse(s.value.value).lastError !== undefined;
  });

  const back = await mustPut(l.writer, '/dcs/ams/servers/s1', serverValue);
  await applied(r, back);
  const fixed = r.agent.snapshot();
  assert.equal(fixed.lastError, undefined);
  assert.equal(fixed.pendingSince, undefined);
  assert.equal(await server.dump(), dump);
});

test('a firewall-only change is one nft transaction without reading the kernel; the periodic full pass repairs drift', async () => {
  const l = await lab();
  await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  // Counts the kernel reads a full plan does (every namespace's links): the fast path does none.
  let linkReads = 0;
  const list = server.kernel.links.list.bind(server.kernel.links);
  const kernel = new Proxy(server.kernel, {
    get: (target, prop, receiver) =>
      prop === 'links' ? { ...target.links, list: (...a: Parameters<typeof list>) => (linkReads++, list(...a)) } : (Reflect.get(target, prop, receiver) as unknown),
  });
  const r = await startAgent(l, server, { env: { ...server.env, kernel }, driftCheckMs: 300 });
  await applied(r, 1);

  const reads = linkReads;
  const rev = await mustPut(l.writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  await applied(r, rev);
  assert.equal(await server.dump(), await referenceDump(acmeFtpPort(2121)));
  const fast = r.log.of('applied').at(-1);
  assert.equal(fast?.steps, 1, r.log.text());
  assert.equal(linkReads, reads, 'the firewall change read no links');

  // Drift a firewall change would not see: a wire removed by hand. The full pass puts it back.
  const ns = 'ae-acme';
  const wire = (await server.kernel.links.list(ns));
  assert.ok(wire.ok);
  const up = wire.value.find((x) => x.name === 'aeup');
  assert.ok(up, `the tenant end of the wire in ${ns}: ${wire.value.map((x) => x.name).join(' ')}`);
  assert.ok((await server.kernel.links.delete(ns, 'aeup')).ok);
  assert.notEqual(await server.dump(), await referenceDump(acmeFtpPort(2121)));
  await waitFor(`the drift pass to repair the wire (log:\n${r.log.text()})`, async () => (await server.dump()) === (await referenceDump(acmeFtpPort(2121))), 5000);
  assert.ok(r.log.of('applied').some((e) => e.trigger === 'drift' && e.steps > 0), r.log.text());
});

test('drift checks take at most a tenth of the time: a slow full pass spaces them out', async () => {
  const l = await lab();
  await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  // A kernel whose whole read takes ≥ 60 ms (a big server): with drift checks asked every 20 ms,
  // they must come no more often than every 600 ms.
  const list = server.kernel.links.list.bind(server.kernel.links);
  let firstRead = true;
  const kernel = new Proxy(server.kernel, {
    get: (target, prop, receiver) =>
      prop === 'links'
        ? { ...target.links, list: async (...a: Parameters<typeof list>) => (firstRead && ((firstRead = false), await new Promise((r) => setTimeout(r, 60))), list(...a)) }
        : (Reflect.get(target, prop, receiver) as unknown),
  });
  const r = await startAgent(l, server, { env: { ...server.env, kernel }, driftCheckMs: 20 });
  await applied(r, 1);
  // Every full pass pays the 60 ms once (the proxy re-arms below), so each spaces the next.
  const rearm = setInterval(() => (firstRead = true), 5);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1500));
  } finally {
    clearInterval(rearm);
  }
  const drifts = r.outcomes.length - 1;
  assert.ok(drifts >= 1, `a drift pass ran at all (log:\n${r.log.text()})`);
  assert.ok(drifts <= 3, `${drifts} drift passes in 1.5 s with full passes of ≥ 60 ms`);
});

test('a kernel failure half-way through an apply is repaired by the retry', async () => {
  const l = await lab();
  const rev = await writeConfig(l.writer, acmeConfig());
  const server = await fakeServer();
  // The first nft transaction fails, as a kernel refusing a batch would.
  let failures = 1;
  const nft = server.kernel.nft;
  const flaky = {
    ...server.env,
    kernel: {
      ...server.kernel,
      nft: {
        ...nft,
        apply: async (...args: Parameters<typeof nft.apply>) => {
          if (failures > 0) {
            failures--;
            return err(kernelError('failed', 'nft -j -f', args[0], 'Operation not permitted (injected)'));
          }
          return nft.apply(...args);
        },
      },
    },
  };
  const r = await startAgent(l, server, { env: flaky });
  await applied(r, rev);
  const errors = r.log.of('error');
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.stage, 'apply');
  // Half-way: steps before the nft table went in, the rest did not.
  assert.match(errors[0]!.message, /: [1-9]\d* of \d+ steps done, failed at \S+ \(nft -j -f/);
  assert.match(errors[0]!.message, /injected/);
  assert.deepEqual(r.outcomes, ['error', 'ok']);
  assert.equal(r.agent.snapshot().lastError, undefined);
  assert.equal(await server.dump(), await referenceDump(acmeConfig()));
});

test('a tunnel going down moves its routes to the backup and is reported; coming back moves them back', async () => {
  const l = await lab();
  const fast = { intervalMs: 100, timeoutMs: 50, upThreshold: 1, downThreshold: 1 };
  const config = acmeWith((doc) => {
    const acme = doc.tenants.acme as Record<string, Record<string, unknown>>;
    acme.tunnels = {
      gre1: { customerEndpoint: '198.51.100.200', inner: ['192.0.2.252/31'], healthCheck: fast },
      gre2: { customerEndpoint: '198.51.100.202', inner: ['192.0.2.250/31'], healthCheck: fast },
    };
    acme.routes = { r1: { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1', priority: 1 }, { tunnel: 'gre2', priority: 2 }] } };
  });
  const rev = await writeConfig(l.writer, config);
  const failing = new Set<string>();
  const prober: Prober = {
    probe: async (t: ProbeTarget) => (failing.has(t.path) ? { ok: false, error: 'no answer (test)' } : { ok: true, rttMs: 1.5 }),
  };
  const server = await fakeServer();
  const r = await startAgent(l, server, { prober, healthTickMs: 10 });
  await applied(r, rev);
  await waitFor('both tunnels up', () => r.agent.snapshot().tunnels.filter((t) => t.state === 'up').length === 2);
  assert.equal(await server.dump(), await referenceDump(config));

  failing.add('tenants/acme/tunnels/gre1');
  const down = new Set(['tenants/acme/tunnels/gre1']);
  const expectDown = await referenceDump(config, down);
  assert.notEqual(expectDown, await referenceDump(config), 'the down set changes the routes');
  await waitFor('routes moved to gre2', async () => (await server.dump()) === expectDown);
  assert.deepEqual(r.log.of('health').map((e) => [e.path, e.to]), [['tenants/acme/tunnels/gre1', 'up'], ['tenants/acme/tunnels/gre2', 'up'], ['tenants/acme/tunnels/gre1', 'down']]);
  const t1 = r.agent.snapshot().tunnels.find((t) => t.tunnel === 'gre1');
  assert.equal(t1?.state, 'down');
  assert.equal(t1?.tenant, 'acme');
  await waitFor('the status key reporting gre1 down', async () => {
    const s = await l.writer.get(statusKey('ams', 's1'));
    return s.ok && s.value !== undefined && serverStatusSchema.parse(s.value.value).tunnels.some((t) => t.tunnel === 'gre1' && t.state === 'down');
  });

  failing.clear();
  await waitFor('routes back on gre1', async () => (await server.dump()) === (await referenceDump(config)));
  assert.deepEqual(r.log.of('health').map((e) => e.to), ['up', 'up', 'down', 'up']);
});

test('heartbeat: the status is rewritten while nothing happens, and stop ends it', async () => {
  const l = await lab();
  await writeConfig(l.writer, acmeConfig());
  const r = await startAgent(l, await fakeServer(), { heartbeatMs: 30 });
  await applied(r, 1);
  const updatedAt = async () => {
    const s = await l.writer.get(statusKey('ams', 's1'));
    return s.ok && s.value ? serverStatusSchema.parse(s.value.value).updatedAt : '';
  };
  const first = await updatedAt();
  await waitFor('a newer heartbeat', async () => (await updatedAt()) > first);
  await r.agent.stop();
  await r.agent.stop(); // idempotent
  const last = await updatedAt();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(await updatedAt(), last, 'no status write after stop');
  assert.equal(r.log.of('stopped').length, 1);
});

test('an unusable state directory fails start with the reason', async () => {
  const l = await lab();
  await import('node:fs/promises').then((fs) => fs.writeFile(l.stateDir, 'not a directory'));
  const agent = new Agent({ where: { dc: 'ams', server: 's1' }, openStore: () => l.open(), stateDir: l.stateDir, env: (await fakeServer()).env, compile: testCompile });
  const r = await agent.start();
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.error.message, /open replica .*--state-dir/);
  await agent.stop();
});
