import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenantSchema } from './tenant.ts';
import { parseAt } from './schema.ts';
import { formatIssue } from './issue.ts';
import { defaultDetectionPolicy, detectionEventSchema, proposalSchema, ttlSeconds } from './detection.ts';

const PATH = ['tenants', 'acme'];

function issues(value: unknown): string[] {
  const r = parseAt(tenantSchema, value, PATH);
  assert.ok(!r.ok, 'expected the tenant to be refused');
  return r.error.map(formatIssue);
}

test('a tenant without dos settings is stored as written; dos: {} gets every default', () => {
  const plain = parseAt(tenantSchema, { name: 'Acme' }, PATH);
  assert.ok(plain.ok);
  assert.equal('dos' in plain.value, false, 'absent stays absent: existing configs do not change');
  const empty = parseAt(tenantSchema, { name: 'Acme', dos: {} }, PATH);
  assert.ok(empty.ok);
  assert.deepEqual(empty.value.dos, { detection: defaultDetectionPolicy() });
  assert.deepEqual(defaultDetectionPolicy(), { enabled: true, thresholds: { pps: 100_000, bps: 1_000_000_000, synPps: 10_000 }, action: 'propose', ttl: '10m' });
  // Stored form parses to itself.
  const again = parseAt(tenantSchema, empty.value, PATH);
  assert.ok(again.ok);
  assert.deepEqual(again.value, empty.value);
});

test('a policy keeps what is given and defaults the rest', () => {
  const r = parseAt(tenantSchema, { name: 'Acme', dos: { detection: { thresholds: { synPps: 500 }, action: 'install', ttl: '90s' } } }, PATH);
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  assert.deepEqual(r.value.dos?.detection, { enabled: true, thresholds: { pps: 100_000, bps: 1_000_000_000, synPps: 500 }, action: 'install', ttl: '90s' });
});

test('bad policies are refused with the field and the reason', () => {
  assert.deepEqual(issues({ name: 'Acme', dos: { detection: { thresholds: { pps: 0 } } } }), ['tenants/acme.dos.detection.thresholds.pps: must be an integer 1–4294967295 packets/s; got 0']);
  assert.deepEqual(issues({ name: 'Acme', dos: { detection: { action: 'block' } } }), ['tenants/acme.dos.detection.action: must be one of propose, install; got "block"']);
  assert.match(issues({ name: 'Acme', dos: { detection: { ttl: '10 minutes' } } })[0]!, /^tenants\/acme\.dos\.detection\.ttl: "10 minutes" is not a duration; write a number and a unit/);
  assert.match(issues({ name: 'Acme', dos: { detection: { ttl: '30s' } } })[0]!, /^tenants\/acme\.dos\.detection\.ttl: "30s" is 30 s; give 1m to 7d/);
  assert.match(issues({ name: 'Acme', dos: { detection: { treshold: {} } } })[0]!, /^tenants\/acme\.dos\.detection/);
  assert.match(issues({ name: 'Acme', dos: { detection: { thresholds: { pps: 1.5 } } } })[0]!, /thresholds\.pps: must be an integer/);
});

test('ttlSeconds reads s, m, h, d and nothing else', () => {
  assert.equal(ttlSeconds('90s'), 90);
  assert.equal(ttlSeconds('10m'), 600);
  assert.equal(ttlSeconds('2h'), 7200);
  assert.equal(ttlSeconds('1d'), 86400);
  for (const bad of ['', '10', 'm', '0m', '-1m', '1.5h', '10M', '1w']) assert.equal(ttlSeconds(bad), undefined, bad);
});

test('events and proposals hold a valid DoS rule', () => {
  const rule = { match: { dst: ['203.0.113.5'], protocol: 'udp', dport: [53] }, action: 'drop', scope: { tenant: 'acme' }, expires: '2030-01-01T00:10:00Z' };
  const obs = { dst: '203.0.113.5', pps: 2e5, bps: 1e8, synPps: 0, crossed: ['pps'], sources: [], signatures: [] };
  const ev = parseAt(detectionEventSchema, { at: '2030-01-01T00:00:00.000Z', kind: 'installed', tenant: 'acme', ruleId: 'auto-acme-0123abcd', by: 'ams/s1', observation: obs, rule }, ['detect']);
  assert.ok(ev.ok, ev.ok ? '' : ev.error.map(formatIssue).join('\n'));
  assert.equal(ev.value.rule?.match.dst?.[0], '203.0.113.5/32');
  const bad = parseAt(proposalSchema, { tenant: 'acme', state: 'pending', rule: { ...rule, action: 'rate-limit' }, ttlSeconds: 600, createdAt: '2030-01-01T00:00:00Z', updatedAt: '2030-01-01T00:00:00Z', expires: '2030-01-01T00:10:00Z', seenBy: [], observation: obs }, ['detect', 'proposals', 'x']);
  assert.ok(!bad.ok);
  assert.match(bad.error.map(formatIssue).join('\n'), /rule\.rateLimit: action rate-limit needs a rate/);
});
