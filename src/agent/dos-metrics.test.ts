import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerDosMetrics } from './dos-metrics.ts';
import { apply } from './reconcile.ts';
import { lastDosTables, planDos } from './dos-reconcile.ts';
import { fakeServer } from './daemon-fixtures.ts';
import { fakeDosMaps } from '../kernel/bpf/dos-fake.ts';
import { configWithRules } from '../compile/dos/fixtures.ts';
import { AgentMetrics } from './metrics.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const drop = (match: Record<string, unknown>) => ({ match, action: 'drop' });

async function install(dos: ReturnType<typeof fakeDosMaps>, rules: Record<string, unknown>): Promise<void> {
  const s = await planDos(dos, { config: configWithRules(rules), dc: 'ams', now: NOW });
  if (!s.ok) assert.fail(s.error.message);
  assert.equal((await apply([...s.value.adds, ...s.value.dels])).failed, undefined);
}

const series = (text: string, name: string) =>
  Object.fromEntries(text.split('\n').filter((l) => l.startsWith(`${name}{`)).map((l) => [/rule="([^"]+)"/.exec(l)![1]!, Number(l.split(' ').pop())]));

test('per-rule packets, bytes and drops by rule id; a rule keeps counting across an unrelated change', async () => {
  const server = await fakeServer();
  const dos = fakeDosMaps();
  const registry = new Registry();
  registerDosMetrics(registry, () => ({ ...server.env, dos }));
  assert.deepEqual(series(await registry.metrics(), 'anyedge_dos_rule_packets_total'), {}, 'nothing planned yet: no series');
  await install(dos, { chargen: drop({ protocol: 'udp', sport: 19 }), web: drop({ protocol: 'tcp', dport: 80 }) });
  const slot = (id: string) => lastDosTables(dos)!.rules.find((r) => r.id === id)!.slot;
  dos.count(slot('chargen'), { packets: 5, bytes: 500, dropped: 5 });
  let text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_dos_rule_packets_total'), { chargen: 5, web: 0 });
  assert.deepEqual(series(text, 'anyedge_dos_rule_bytes_total'), { chargen: 500, web: 0 });
  assert.deepEqual(series(text, 'anyedge_dos_rule_dropped_total'), { chargen: 5, web: 0 });
  await install(dos, { chargen: drop({ protocol: 'udp', sport: 19 }), dns: drop({ protocol: 'udp', dport: 53 }) });
  dos.count(slot('chargen'), { packets: 1, bytes: 100, dropped: 1 });
  text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_dos_rule_packets_total'), { chargen: 6, dns: 0 });
});

test('the agent registry serves the DoS series', async () => {
  const server = await fakeServer();
  const dos = fakeDosMaps();
  const env = { ...server.env, dos };
  await install(dos, { chargen: drop({ protocol: 'udp', sport: 19 }) });
  dos.count(0, { packets: 2, bytes: 56, dropped: 2 });
  const m = new AgentMetrics({ env, desired: () => undefined, status: () => { throw new Error('no status in this test'); } });
  const text = await m.registry.metrics();
  assert.match(text, /anyedge_dos_rule_dropped_total\{rule="chargen"\} 2/);
});
