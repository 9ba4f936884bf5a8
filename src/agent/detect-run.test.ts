/**
 * Detection inside a running agent (fake kernel, LMDB store): the loop reads the tenants from the
 * agent's config and writes through its connection; `--detect-every` is checked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from './daemon.ts';
import { acmeConfig } from './fixtures.ts';
import { fakeServer, testCompile, waitFor, writeConfig } from './daemon-fixtures.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openLmdbStore, type LmdbConfigStore } from '../store/lmdb.ts';
import { mustOpen } from '../store/lmdb-harness.ts';
import { fakeSampleSource } from '../kernel/bpf/sample.ts';
import { PROPOSALS_PREFIX } from '../model/detection.ts';
import { parseDetectEvery, startDetection } from './detect-run.ts';

test('--detect-every: a whole number of packets, 0 for off, else a usage error naming the flag', () => {
  assert.deepEqual(parseDetectEvery(undefined), { ok: true, value: 100 });
  assert.deepEqual(parseDetectEvery('0'), { ok: true, value: 0 });
  assert.deepEqual(parseDetectEvery('1000'), { ok: true, value: 1000 });
  for (const bad of ['-1', '1.5', 'often', '99999999999']) {
    const r = parseDetectEvery(bad);
    assert.ok(!r.ok, bad);
    assert.match(r.error, new RegExp(`^--detect-every ${bad.replace('.', '\\.')}: .*e\\.g\\. 100, or 0 to turn detection off$`));
  }
});

test("an agent's detection loop proposes a rule for an attack on its tenants, through the agent's store", async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-detect-run-'));
  const path = join(dir, 'store');
  const opened: LmdbConfigStore[] = [];
  const writer = mustOpen({ path, validation: CONFIG_VALIDATION, pollIntervalMs: 5, noSync: true });
  const server = await fakeServer();
  const agent = new Agent({
    where: { dc: 'ams', server: 's1' },
    openStore: async () => {
      const r = openLmdbStore({ path, validation: CONFIG_VALIDATION, pollIntervalMs: 5, noSync: true });
      if (r.ok) opened.push(r.value);
      return r;
    },
    stateDir: join(dir, 'state'),
    env: server.env,
    compile: testCompile,
    heartbeatMs: 60_000,
  });
  const source = fakeSampleSource();
  try {
    assert.deepEqual(await startDetection({ agent, where: { dc: 'ams', server: 's1' }, bpfRoot: '/nonexistent', every: 0, log: () => {} }), { ok: true, value: null });
    await writeConfig(writer, acmeConfig());
    assert.ok((await agent.start()).ok);
    await waitFor('the agent to connect and receive the config', () => agent.connectedStore() !== null && agent.configEntries().has('/tenants/acme'));
    const started = await startDetection({ agent, where: { dc: 'ams', server: 's1' }, bpfRoot: '/nonexistent', every: 10, log: () => {}, source });
    assert.ok(started.ok && started.value, started.ok ? '' : started.error);
    assert.equal(source.every, 10, 'the sampling rate was set');
    const loop = started.value;
    // 12 000 samples × 10 per second: over the default 100 000 pps.
    source.push(...Array.from({ length: 12_000 }, (_, i) => ({ family: 4 as const, proto: 17, src: `${['192.0.2', '198.51.100', '203.0.113'][i % 3]}.${i % 200}`, dst: '203.0.113.100', sport: 1024 + (i % 60000), dport: 123, len: 90, ttl: 55, tcpFlags: 0, payload: '' })));
    const r = await loop.tick();
    await loop.stop();
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.events.map((e) => e.kind), ['detected', 'proposed']);
    const proposals = await writer.list(PROPOSALS_PREFIX);
    assert.ok(proposals.ok);
    assert.equal(proposals.value.entries.length, 1);
  } finally {
    await agent.stop();
    for (const s of [writer, ...opened]) await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});
