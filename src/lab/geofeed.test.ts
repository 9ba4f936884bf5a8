/**
 * The lab's geofeed: the proxy's own parser (src/proxy/geoip.ts) reads it, every city's eyeball
 * gets the city's country, two cities are two countries, and the eyeballs keep their addresses
 * (and countries) at every lab size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GeoTable, parseGeofeed } from '../proxy/geoip.ts';
import { labGeofeed } from './geofeed.ts';
import { planLab, type LabPlan } from './topology.ts';

function must(dcs: number, servers: number, cities: number): LabPlan {
  const p = planLab('t1', { dcs, servers, cities });
  if (!p.ok) assert.fail(p.error.message);
  return p.value;
}

test('every eyeball is looked up to its city\'s country by the proxy\'s GeoIP parser; servers are in no row', () => {
  const plan = must(3, 3, 8);
  const rows = parseGeofeed(labGeofeed(plan), 'lab');
  if (!rows.ok) assert.fail(rows.error.map((e) => e.message).join('\n'));
  assert.equal(rows.value.length, 8);
  const table = new GeoTable(rows.value, null);
  for (const c of plan.cities) {
    const r = table.lookup(c.eyeballIp);
    assert.ok(r.ok, `${c.id}: ${r.ok ? '' : r.error.message}`);
    assert.equal(r.value.country, c.country, c.id);
  }
  assert.deepEqual(plan.cities.slice(0, 2).map((c) => [c.id, c.country]), [['lon', 'GB'], ['nyc', 'US']]);
  const server = plan.dcs[0]!.servers[0]!.address.split('/')[0]!;
  assert.ok(!table.lookup(server).ok, 'a server address has no country');
});

test('eyeball addresses and countries do not depend on the lab size', () => {
  const small = must(1, 1, 2);
  const big = must(4, 8, 4);
  assert.deepEqual(small.cities.map((c) => [c.eyeballIp, c.country]), big.cities.slice(0, 2).map((c) => [c.eyeballIp, c.country]));
  assert.deepEqual(small.cities.map((c) => c.eyeballIp), ['192.0.2.194', '192.0.2.198']);
});
