import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenantSchema } from './tenant.ts';
import { parseAt } from './schema.ts';
import { formatIssue } from './issue.ts';
import { SYN_FLOOD_DEFAULTS, SYN_FLOOD_RECOMMENDED, synFloodOf } from './synflood.ts';

const PATH = ['tenants', 'acme'];

function issues(value: unknown): string[] {
  const r = parseAt(tenantSchema, value, PATH);
  assert.ok(!r.ok, 'expected the tenant to be refused');
  return r.error.map(formatIssue);
}

test('a tenant without synFlood is stored as written and is not protected', () => {
  const plain = parseAt(tenantSchema, { name: 'Acme' }, PATH);
  assert.ok(plain.ok);
  assert.equal('synFlood' in plain.value, false, 'absent stays absent: existing configs do not change');
  assert.deepEqual(synFloodOf(plain.value), { protection: 'off', mss: 1460, wscale: 7 });
});

test('synFlood: { protection: xdp } gets the other defaults; the stored form parses to itself', () => {
  const r = parseAt(tenantSchema, { name: 'Acme', synFlood: { protection: 'xdp' } }, PATH);
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  assert.deepEqual(r.value.synFlood, { protection: 'xdp', mss: 1460, wscale: 7 });
  const again = parseAt(tenantSchema, r.value, PATH);
  assert.ok(again.ok);
  assert.deepEqual(again.value, r.value);
  const empty = parseAt(tenantSchema, { name: 'Acme', synFlood: {} }, PATH);
  assert.ok(empty.ok);
  assert.deepEqual(empty.value.synFlood, { ...SYN_FLOOD_DEFAULTS }, 'an empty block is off: turning it on is a choice');
  assert.equal(SYN_FLOOD_RECOMMENDED, 'xdp');
});

test('bad synFlood settings are refused with the field and the reason', () => {
  assert.deepEqual(issues({ name: 'Acme', synFlood: { protection: 'on' } }), ['tenants/acme.synFlood.protection: must be one of off, xdp, synproxy; got "on" (xdp is the recommended way to turn it on)']);
  assert.deepEqual(issues({ name: 'Acme', synFlood: { protection: 'xdp', mss: 100 } }), [
    'tenants/acme.synFlood.mss: must be an integer 536–9000 bytes; got 100 (the MSS the path to the customer host carries, e.g. tunnel MTU − 40)',
  ]);
  assert.deepEqual(issues({ name: 'Acme', synFlood: { wscale: 15 } }), ['tenants/acme.synFlood.wscale: must be an integer 0–14; got 15 (RFC 7323 allows 0–14)']);
  assert.match(issues({ name: 'Acme', synFlood: { protecton: 'xdp' } })[0]!, /^tenants\/acme\.synFlood/);
});
