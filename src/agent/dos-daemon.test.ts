/**
 * The DoS step inside the agent daemon: rules from the store reach the DoS maps, a rule stops
 * being enforced when it expires (a timer, no config change), and a rule that does not compile is
 * refused on its own and reported, while every other rule is still applied.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from './daemon.ts';
import { EventLog, fakeServer, mustPut, testCompile, waitFor, writeConfig } from './daemon-fixtures.ts';
import { dosPass } from './dos-daemon.ts';
import { fakeDosMaps } from '../kernel/bpf/dos-fake.ts';
import { configWithRules } from '../compile/dos/fixtures.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openLmdbStore } from '../store/lmdb.ts';
import { mustOpen } from '../store/lmdb-harness.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function started(rules: Record<string, unknown>) {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-dosagent-'));
  const path = join(dir, 'store');
  const writer = mustOpen({ path, validation: CONFIG_VALIDATION, pollIntervalMs: 5, noSync: true });
  const opened: { close(): Promise<void> }[] = [];
  cleanups.push(async () => {
    for (const s of [writer, ...opened]) await s.close();
    await rm(dir, { recursive: true, force: true });
  });
  await writeConfig(writer, configWithRules(rules));
  const server = await fakeServer();
  const dos = fakeDosMaps();
  const log = new EventLog();
  const agent = new Agent({
    where: { dc: 'ams', server: 's1' },
    openStore: async () => {
      const r = openLmdbStore({ path, validation: CONFIG_VALIDATION, pollIntervalMs: 5, noSync: true });
      if (r.ok) opened.push(r.value);
      return r;
    },
    stateDir: join(dir, 'state'),
    env: { ...server.env, dos },
    compile: testCompile,
    backoff: { initialMs: 20, maxMs: 200 },
    heartbeatMs: 60_000,
    log: log.sink,
  });
  cleanups.push(() => agent.stop());
  assert.ok((await agent.start()).ok);
  return { agent, dos, log, writer };
}

test('an expiring rule is enforced, then removed at its expiry by the timer alone', async () => {
  const expires = new Date(Date.now() + 1500).toISOString();
  const r = await started({ keep: { match: { protocol: 'gre' }, action: 'drop' }, tmp: { match: { protocol: 'icmp' }, action: 'drop', expires } });
  await waitFor('both rules in the maps', () => /ip proto 1 /.test(r.dos.dump()) && /ip proto 47 /.test(r.dos.dump()));
  const changes = r.log.of('change').length;
  await waitFor('the expired rule gone', () => !/ip proto 1 /.test(r.dos.dump()), 5000);
  assert.match(r.dos.dump(), /ip proto 47 /, 'the other rule stays');
  assert.equal(r.log.of('change').length, changes, 'no config change was needed');
  assert.ok(r.log.of('applied').some((e) => e.trigger === 'expiry' && e.steps > 0), r.log.text());
});

test('a DoS rule added in the store reaches the maps; one that does not compile is refused alone, the rest still applied', async () => {
  const r = await started({ keep: { match: { protocol: 'gre' }, action: 'drop' } });
  await waitFor('the first rule in the maps', () => /ip proto 47 /.test(r.dos.dump()));
  await mustPut(r.writer, '/dos/rules/web', { match: { protocol: 'tcp', dport: [80] }, action: 'drop' });
  await waitFor('the new rule in the maps', () => /dport 80\/16: 1/.test(r.dos.dump()));
  const before = r.dos.dump();
  await mustPut(r.writer, '/dos/rules/bad', { match: { dst: ['198.51.100.0/24'] }, action: 'drop', scope: { tenant: 'acme' } });
  await waitFor('the refusal reported', () => r.log.of('error').some((e) => e.stage === 'compile'));
  const e = r.log.of('error').find((x) => x.stage === 'compile')!;
  assert.match(e.message, /DoS rules refused, every other rule is enforced: \/dos\/rules\/bad\/match\/dst: .*acme/);
  assert.equal(r.dos.dump(), before, 'the bad rule is not in the maps, the others stay');
  assert.match(r.agent.snapshot().lastError?.message ?? '', /\/dos\/rules\/bad/, 'the status says which rule is refused');
  // A bad rule blocks nothing else: a later good rule is still enforced.
  await mustPut(r.writer, '/dos/rules/dns', { match: { protocol: 'udp', dport: [53] }, action: 'drop' });
  await waitFor('a later good rule in the maps', () => /dport 53\/16: /.test(r.dos.dump()));
});

test('dosPass: no DoS maps, no DoS step; the expiry delay is capped to what a timer can wait', async () => {
  const server = await fakeServer();
  const none = dosPass(server.env, configWithRules({}), 'ams', 0);
  assert.ok(none.ok);
  assert.deepEqual(none.value, { more: {}, key: null, refused: [] });
  const far = dosPass({ ...server.env, dos: fakeDosMaps() }, configWithRules({ r: { match: { protocol: 'gre' }, action: 'drop', expires: '2099-01-01T00:00:00Z' } }), 'ams', Date.parse('2030-01-01T00:00:00Z'));
  assert.ok(far.ok);
  assert.equal(far.value.expiryInMs, 2 ** 31 - 1);
});
