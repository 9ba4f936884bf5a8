/**
 * `lab trace` without a kernel: the target's parsing, and the hops built from a flow's counter
 * deltas — which DC (the city's route), which server and rule (ingress counters), into the
 * tunnel, the customer router, the server that took the replies back (egress counters there),
 * and the outcome.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot, ServerCounters } from './evidence.ts';
import { parseTarget, traceHops } from './trace.ts';
import { planLab } from './topology.ts';

test('parseTarget takes IPv4:port and refuses the rest naming --to', () => {
  assert.deepEqual(parseTarget('203.0.113.100:21'), { ok: true, value: { host: '203.0.113.100', port: 21 } });
  for (const bad of ['203.0.113.100', '203.0.113.100:0', '203.0.113.100:70000', '203.0.113.300:21', 'acme-h:21', '[2001:db8::1]:21', '']) {
    const r = parseTarget(bad);
    assert.ok(!r.ok, bad);
    assert.equal(r.error.path, 'to');
    assert.match(r.error.message, /give an IPv4 address and a port, e\.g\. 203\.0\.113\.100:21/);
  }
});

const srv = (node: string, greOut: number, greIn: number, counters: Record<string, number>): ServerCounters => {
  const [dc, server] = node.split('-') as [string, string];
  return { dc, server, node, accepted: 0, dropped: 0, greOut, greIn, counters };
};

test('hops of an accepted flow from nyc: chi-s2 by rule ftp into the tunnel, back through ams-s1', () => {
  const p = planLab('t1', { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) assert.fail(p.error.message);
  const plan = p.value;
  const nyc = plan.cities[1]!;
  const acme = plan.sites[0]!;
  const d: Snapshot = {
    servers: [srv('ams-s1', 0, 4, { default_egress: 4, rule_ftp: 0 }), srv('ams-s2', 0, 0, {}), srv('chi-s1', 0, 0, { rule_ftp: 0 }), srv('chi-s2', 6, 0, { rule_ftp: 6, default_ingress: 0 })],
    customer: { greIn: 6, greOut: 4 },
  };
  const r = traceHops(plan, nyc, acme, 'chi', { host: '203.0.113.100', port: 21 }, { payload: 'x', localPort: 40000, outcome: 'echoed', ms: 9 }, d);
  assert.equal(r.landedIn, 'chi');
  assert.deepEqual(r.servers, ['chi-s2']);
  assert.equal(r.decidedBy, 'rule ftp');
  assert.deepEqual(r.returnServers, ['ams-s1']);
  assert.deepEqual(r.hops.map((h) => [h.node, h.evidence]), [
    ['nyc-e1', {}],
    ['nyc', {}],
    ['chi-s2', { rule_ftp: 6, greOut: 6 }],
    ['acme', { greIn: 6, greOut: 4 }],
    ['ams-s1', { greIn: 4, default_egress: 4 }],
    ['nyc-e1', {}],
  ]);
  assert.match(r.hops[1]!.what, /BGP best path to 203\.0\.113\.0\/25: chi \(192\.0\.2\.\d+\); preference chi > ams/);
  assert.match(r.hops[2]!.what, /rule ftp accepted; into acme's GRE tunnel toward 198\.51\.100\.200/);
  assert.match(r.hops[5]!.what, /the payload came back \(9 ms\)/);
});

test('hops of a dropped flow: the default ingress decided, nothing entered the tunnel', () => {
  const p = planLab('t1', { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) assert.fail(p.error.message);
  const lon = p.value.cities[0]!;
  const d: Snapshot = { servers: [srv('ams-s1', 0, 0, { default_ingress: 2 }), srv('ams-s2', 0, 0, {})], customer: { greIn: 0, greOut: 0 } };
  const r = traceHops(p.value, lon, p.value.sites[0]!, 'ams', { host: '203.0.113.100', port: 22 }, { payload: 'x', localPort: null, outcome: 'timeout', ms: 2001 }, d);
  assert.equal(r.decidedBy, 'default ingress');
  assert.deepEqual(r.servers, ['ams-s1']);
  assert.deepEqual(r.returnServers, []);
  assert.deepEqual(r.hops.map((h) => h.node), ['lon-e1', 'lon', 'ams-s1', 'lon-e1']);
  assert.match(r.hops[0]!.what, /never connected/);
  assert.match(r.hops[2]!.what, /the default ingress action \(drop\) took it/);
  assert.match(r.hops[3]!.what, /timeout after 2001 ms/);
});

test('no route and no counters: the hops say so', () => {
  const p = planLab('t1', { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) assert.fail(p.error.message);
  const r = traceHops(p.value, p.value.cities[0]!, p.value.sites[0]!, null, { host: '203.0.113.100', port: 21 }, { payload: 'x', localPort: null, outcome: 'unreachable', code: 'EHOSTUNREACH', ms: 3 }, { servers: [], customer: { greIn: 0, greOut: 0 } });
  assert.equal(r.decidedBy, null);
  assert.match(r.hops[1]!.what, /no route to 203\.0\.113\.0\/25: no DC announces it to lon/);
  assert.match(r.hops[2]!.what, /unreachable \(EHOSTUNREACH\)/);
});
