import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthMonitor, tunnelPeer, type HealthChange, type ProbeResult, type ProbeTarget } from './health.ts';
import type { HealthCheck } from '../model/tunnel.ts';

const check: HealthCheck = { enabled: true, intervalMs: 1000, timeoutMs: 200, upThreshold: 2, downThreshold: 3 };

function target(path: string): ProbeTarget {
  return { path, netns: 'ae-t-acme', device: 'gre1', source: '192.0.2.252', peer: '192.0.2.253' };
}

/** A prober whose answers the test sets per tunnel, and a clock the test moves. */
function rig() {
  let now = 1_000_000;
  const answers = new Map<string, boolean>();
  const probed: string[] = [];
  const changes: HealthChange[] = [];
  const m = new HealthMonitor(
    {
      probe(t: ProbeTarget): Promise<ProbeResult> {
        probed.push(t.path);
        const ok = answers.get(t.path) ?? true;
        return Promise.resolve(ok ? { ok, rttMs: 0.5 } : { ok, error: `no answer from ${t.peer} within 200 ms` });
      },
    },
    (c) => changes.push(c),
    () => now,
  );
  return {
    m,
    answers,
    probed,
    changes,
    advance: async (ms: number) => {
      now += ms;
      await m.tick();
    },
    now: () => now,
  };
}

test('a tunnel starts unknown, goes up after upThreshold answers, down after downThreshold misses, with times', async () => {
  const r = rig();
  r.m.setTargets([{ target: target('tenants/acme/tunnels/a'), check }]);
  assert.equal(r.m.status()[0]!.state, 'unknown');
  await r.advance(0);
  assert.equal(r.m.status()[0]!.state, 'unknown', 'one answer is not enough');
  await r.advance(1000);
  const up = r.m.status()[0]!;
  assert.equal(up.state, 'up');
  assert.equal(up.since, r.now());
  assert.equal(up.lastRttMs, 0.5);
  r.answers.set('tenants/acme/tunnels/a', false);
  await r.advance(1000);
  await r.advance(1000);
  assert.equal(r.m.status()[0]!.state, 'up', 'two misses are not enough');
  assert.equal(r.m.status()[0]!.consecutiveFailed, 2);
  await r.advance(1000);
  const down = r.m.status()[0]!;
  assert.equal(down.state, 'down');
  assert.equal(down.lastError, 'no answer from 192.0.2.253 within 200 ms');
  assert.deepEqual([...r.m.down()], ['tenants/acme/tunnels/a']);
  r.answers.set('tenants/acme/tunnels/a', true);
  await r.advance(1000);
  await r.advance(1000);
  assert.equal(r.m.status()[0]!.state, 'up');
  assert.deepEqual(
    r.changes.map((c) => `${c.from}->${c.to}@${c.at - 1_000_000}`),
    ['unknown->up@1000', 'up->down@4000', 'down->up@6000'],
  );
  assert.equal(r.m.status()[0]!.probes, 7);
});

test('probes follow each tunnel’s interval; disabled and removed tunnels are not probed', async () => {
  const r = rig();
  r.m.setTargets([
    { target: target('tenants/acme/tunnels/a'), check },
    { target: target('tenants/acme/tunnels/b'), check: { ...check, intervalMs: 3000 } },
    { target: target('tenants/acme/tunnels/off'), check: { ...check, enabled: false } },
  ]);
  for (let i = 0; i < 6; i++) await r.advance(i === 0 ? 0 : 1000);
  const count = (p: string) => r.probed.filter((x) => x === p).length;
  assert.equal(count('tenants/acme/tunnels/a'), 6);
  assert.equal(count('tenants/acme/tunnels/b'), 2);
  assert.equal(count('tenants/acme/tunnels/off'), 0);
  assert.deepEqual(r.m.status().map((h) => h.path), ['tenants/acme/tunnels/a', 'tenants/acme/tunnels/b']);
  // Keeping a tunnel keeps its state; dropping it forgets it.
  const before = r.m.status()[0]!;
  r.m.setTargets([{ target: target('tenants/acme/tunnels/a'), check }]);
  assert.deepEqual(r.m.status(), [before]);
});

test('a prober that throws counts as a failed probe', async () => {
  const r = rig();
  const m = new HealthMonitor({ probe: () => Promise.reject(new Error('ip: command not found')) }, () => {}, r.now);
  m.setTargets([{ target: target('tenants/acme/tunnels/a'), check: { ...check, downThreshold: 1 } }]);
  await m.tick();
  assert.equal(m.status()[0]!.state, 'down');
  assert.equal(m.status()[0]!.lastError, 'ip: command not found');
});

test('tunnelPeer finds the other end of /31, /30, /127 and /126 tunnel subnets', () => {
  assert.equal(tunnelPeer('192.0.2.252/31'), '192.0.2.253');
  assert.equal(tunnelPeer('192.0.2.253/31'), '192.0.2.252');
  assert.equal(tunnelPeer('192.0.2.5/30'), '192.0.2.6');
  assert.equal(tunnelPeer('192.0.2.6/30'), '192.0.2.5');
  assert.equal(tunnelPeer('192.0.2.4/30'), null, 'the network address has no peer');
  assert.equal(tunnelPeer('192.0.2.1/24'), null);
  assert.equal(tunnelPeer('2001:db8::a/127'), '2001:db8::b');
  assert.equal(tunnelPeer('2001:db8::1/126'), '2001:db8::2');
  assert.equal(tunnelPeer('nonsense/31'), null);
});
