import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { registerSteerMetrics } from './steer-metrics.ts';
import { fakeSteerMaps } from '../kernel/bpf/steer.ts';
import { fakeKernel, marksWith } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';

test('steering outcomes are exported per outcome from the maps at scrape time', async () => {
  const kernel = fakeKernel(marksWith({ prefix: 'ae' }));
  const steer = fakeSteerMaps();
  const registry = new Registry();
  registerSteerMetrics(registry, () => ({ kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel), steer }));
  steer.count('forward', 3);
  steer.count('bad_peer', 1);
  const text = await registry.metrics();
  assert.match(text, /anyedge_steer_packets_total\{outcome="forward"\} 3/);
  assert.match(text, /anyedge_steer_packets_total\{outcome="bad_peer"\} 1/);
  assert.match(text, /anyedge_steer_packets_total\{outcome="local"\} 0/);
  steer.count('forward', 2);
  assert.match(await registry.metrics(), /anyedge_steer_packets_total\{outcome="forward"\} 5/);
  // Without steering maps the series is absent, not zero.
  const bare = new Registry();
  registerSteerMetrics(bare, () => ({ kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel) }));
  assert.doesNotMatch(await bare.metrics(), /anyedge_steer_packets_total\{/);
});
