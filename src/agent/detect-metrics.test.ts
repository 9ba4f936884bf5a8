/**
 * Detection metrics from real tick reports: sample counts, the estimated traffic, detections by
 * tenant and kind, and top-talker gauges whose series stay bounded under a spoofed flood. The
 * series are in the agent's registry (AgentMetrics.detection).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { fakeSampleSource, type Sample } from '../kernel/bpf/sample.ts';
import { fakeKernel, marksWith } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import type { JsonValue } from '../store/types.ts';
import { DetectionLoop } from './detect-loop.ts';
import { DetectMetrics } from './detect-metrics.ts';
import { AgentMetrics } from './metrics.ts';

const CONFIG = new Map<string, JsonValue>([
  ['/tenants/acme', { name: 'Acme', dos: { detection: { thresholds: { pps: 1000 } } } }],
  ['/tenants/acme/prefixes/p1', { cidr: '2001:db8:1::/48' }],
]);

/** n samples of a UDP flood on 2001:db8:1::5 from n different /64s. */
function spoofedFlood(n: number): Sample[] {
  return Array.from({ length: n }, (_, i) => ({ family: 6 as const, proto: 17, src: `2001:db8:a:${i.toString(16)}::1`, dst: '2001:db8:1::5', sport: 1000 + (i % 5000), dport: 53, len: 100, ttl: 60, tcpFlags: 0, payload: '' }));
}

function series(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

test('a tick shows up as samples, traffic, attacks, detections and at most 3 × 5 top-talker series', async () => {
  const registry = new Registry();
  const metrics = new DetectMetrics(registry);
  const source = fakeSampleSource(10);
  let now = Date.parse('2030-01-01T00:00:00Z');
  const loop = new DetectionLoop({ where: { dc: 'ams', server: 's1' }, source, every: 10, config: () => CONFIG, store: () => null, now: () => now, onReport: (r) => metrics.observe(r) });
  source.push(...spoofedFlood(2000));
  source.lose(500);
  now += 1000;
  const r = await loop.tick();
  // Events are what the loop wrote to a store; here there is none, so feed the counter one.
  metrics.observe({ ...r, samples: 0, lost: 0, events: [{ at: '2030-01-01T00:00:01.000Z', kind: 'installed', tenant: 'acme', ruleId: 'auto-acme-00000000', by: 'ams/s1' }] });
  const text = await registry.metrics();
  assert.deepEqual(series(text, 'anyedge_dos_samples_total'), ['anyedge_dos_samples_total 2000']);
  assert.deepEqual(series(text, 'anyedge_dos_samples_lost_total'), ['anyedge_dos_samples_lost_total 500']);
  assert.deepEqual(series(text, 'anyedge_dos_sample_every'), ['anyedge_dos_sample_every 10']);
  assert.deepEqual(series(text, 'anyedge_dos_traffic_pps'), ['anyedge_dos_traffic_pps 25000']);
  assert.deepEqual(series(text, 'anyedge_dos_attacks'), ['anyedge_dos_attacks{tenant="acme"} 1']);
  assert.deepEqual(series(text, 'anyedge_dos_detections_total'), ['anyedge_dos_detections_total{tenant="acme",kind="installed"} 1']);
  const top = series(text, 'anyedge_dos_top_pps');
  assert.equal(top.length, 1 + 5 + 1, 'one destination, the top 5 of 2000 source /64s, one signature');
  assert.ok(top.includes('anyedge_dos_top_pps{list="destination",rank="1",key="2001:db8:1::5"} 25000'), top.join('\n'));
  assert.ok(top.includes('anyedge_dos_top_pps{list="signature",rank="1",key="udp dport 53"} 25000'), top.join('\n'));

  // The next second is quiet: the top lists empty out instead of keeping stale talkers.
  now += 1000;
  metrics.observe(await loop.tick());
  const quiet = await registry.metrics();
  assert.deepEqual(series(quiet, 'anyedge_dos_top_pps'), []);
  assert.deepEqual(series(quiet, 'anyedge_dos_attacks'), []);
  assert.deepEqual(series(quiet, 'anyedge_dos_samples_total'), ['anyedge_dos_samples_total 2000']);
});

test("the agent's registry carries the detection series", async () => {
  const kernel = fakeKernel(marksWith({ prefix: 'ae' }));
  const env = { kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel) };
  const status = { appliedRevision: 0, seenRevision: 0, store: { connected: true, since: '2030-01-01T00:00:00Z' }, tunnels: [], startedAt: '2030-01-01T00:00:00Z', updatedAt: '2030-01-01T00:00:00Z', version: 'test' };
  const m = new AgentMetrics({ env, desired: () => undefined, status: () => status });
  const text = await m.registry.metrics();
  for (const name of ['anyedge_dos_detections_total', 'anyedge_dos_samples_total', 'anyedge_dos_top_pps']) assert.match(text, new RegExp(`# TYPE ${name} `));
});
