/** What `lab fail` takes down for each kind of target, and unknown targets named with the known ones. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failTargets } from './fail.ts';
import { planLab } from './topology.ts';

test('servers, DCs and exchange links map to the switch-side ports; unknown targets list the known', () => {
  const p = planLab('t1', { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) assert.fail(p.error.message);
  const plan = p.value;
  assert.deepEqual(failTargets(plan, 'server', 'chi-s2'), { ok: true, value: [{ node: 'chi', dev: 's2' }] });
  assert.deepEqual(failTargets(plan, 'server', 'chi/s2'), { ok: true, value: [{ node: 'chi', dev: 's2' }] });
  assert.deepEqual(failTargets(plan, 'dc', 'ams'), { ok: true, value: [{ node: 'ams', dev: 's1' }, { node: 'ams', dev: 's2' }] });
  assert.deepEqual(failTargets(plan, 'link', 'lon'), { ok: true, value: [{ node: 'ix', dev: 'lon' }] });
  assert.deepEqual(failTargets(plan, 'link', 'chi'), { ok: true, value: [{ node: 'ix', dev: 'chi' }] });
  for (const [kind, target, known] of [['server', 'ams-s9', /ams-s1, ams-s2, chi-s1, chi-s2/], ['dc', 'fra', /ams, chi/], ['link', 'acme', /ams, chi, lon, nyc/]] as const) {
    const r = failTargets(plan, kind, target);
    assert.ok(!r.ok);
    assert.equal(r.error.path, 'target');
    assert.match(r.error.message, known);
  }
});
