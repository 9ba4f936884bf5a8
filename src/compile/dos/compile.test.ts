import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileDos, dosIdHash } from './compile.ts';
import { configWithRules } from './fixtures.ts';
import { dosKeyText } from '../../kernel/bpf/dos.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const drop = (match: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ match, action: 'drop', ...extra });

test('rules of other DCs and expired rules are left out; nextExpiry is the earliest one in force', () => {
  const cfg = configWithRules({
    a: drop({ protocol: 'gre' }, { scope: { dcs: ['chi'] } }),
    b: drop({ protocol: 'gre' }, { expires: '2030-01-01T00:00:00Z' }),
    c: drop({ protocol: 'gre' }, { expires: '2030-01-01T00:00:01Z' }),
    d: drop({ protocol: 'esp' }, { expires: '2030-01-02T00:00:00Z' }),
  });
  const t = compileDos(cfg, { dc: 'ams', now: NOW });
  assert.ok(t.ok);
  assert.deepEqual(t.value.rules.map((r) => r.id), ['c', 'd']);
  assert.equal(t.value.nextExpiry, '2030-01-01T00:00:01.000Z');
  const later = compileDos(cfg, { dc: 'ams', now: Date.parse('2030-01-01T00:00:01Z') });
  assert.ok(later.ok);
  assert.deepEqual(later.value.rules.map((r) => r.id), ['d']);
  const chi = compileDos(cfg, { dc: 'chi', now: NOW });
  assert.ok(chi.ok);
  assert.deepEqual(chi.value.rules.map((r) => r.id), ['a', 'c', 'd']);
});

test('slots follow sorted ids from scratch, stay put for held rules, and new rules take slots nobody holds', () => {
  const cfg = configWithRules({ b: drop({ protocol: 'gre' }), a: drop({ protocol: 'esp' }), c: drop({ protocol: 'ah' }) });
  const first = compileDos(cfg, { dc: 'ams', now: NOW });
  assert.ok(first.ok);
  assert.deepEqual(first.value.rules.map((r) => [r.id, r.slot]), [['a', 0], ['b', 1], ['c', 2]]);
  // "a" was deleted (slot 0 still held in the kernel this pass) and "0new" added.
  const cfg2 = configWithRules({ b: drop({ protocol: 'gre' }), c: drop({ protocol: 'ah' }), '0new': drop({ protocol: 'udp' }) });
  const current = new Map([[0, dosIdHash('a')], [1, dosIdHash('b')], [2, dosIdHash('c')]]);
  const second = compileDos(cfg2, { dc: 'ams', now: NOW, current });
  assert.ok(second.ok);
  assert.deepEqual(second.value.rules.map((r) => [r.id, r.slot]), [['b', 1], ['c', 2], ['0new', 3]]);
});

test('a tenant scope intersects dst with the tenant prefixes, and gives them to a rule without dst', () => {
  const cfg = configWithRules({
    inside: drop({ dst: ['203.0.113.100', '203.0.113.128/25', '0.0.0.0/0'], protocol: 'tcp' }, { scope: { tenant: 'acme' } }),
    nodst: drop({ protocol: 'udp' }, { scope: { tenant: 'globex' } }),
  });
  const t = compileDos(cfg, { dc: 'ams', now: NOW });
  assert.ok(t.ok);
  const dsts = (slot: number) => t.value.entries.filter((e) => e.slots.includes(slot)).map((e) => e.key.dst);
  assert.deepEqual(dsts(0), ['203.0.113.0/25', '203.0.113.100/32']);
  assert.deepEqual(dsts(1), ['203.0.113.128/25']);
});

test('a rule scoped to a tenant that its dst misses is an error naming the field', () => {
  const cfg = configWithRules({ bad: drop({ dst: ['198.51.100.0/24'], protocol: 'tcp' }, { scope: { tenant: 'acme' } }) });
  const t = compileDos(cfg, { dc: 'ams', now: NOW });
  assert.ok(!t.ok);
  assert.equal(t.error[0]!.code, 'empty_scope');
  assert.equal(t.error[0]!.path, '/dos/rules/bad/match/dst');
  assert.match(t.error[0]!.message, /198\.51\.100\.0\/24.*acme.*203\.0\.113\.0\/25/);
});

test('a rule without addresses covers both families; icmp and a v6 src keep to one', () => {
  const cfg = configWithRules({ any: drop({ protocol: 'udp', sport: 19 }), v4: drop({ protocol: 'icmp' }), v6: drop({ src: ['2001:db8::/32'] }) });
  const t = compileDos(cfg, { dc: 'ams', now: NOW });
  assert.ok(t.ok);
  assert.deepEqual(t.value.entries.map((e) => `${dosKeyText(e.key)} → ${e.slots.join(',')}`), [
    'ip proto 1 src 0.0.0.0/0 dst 0.0.0.0/0 sport * dport * → 1',
    'ip proto 17 src 0.0.0.0/0 dst 0.0.0.0/0 sport 19/16 dport * → 0',
    'ip6 proto * src 2001:db8::/32 dst ::/0 sport * dport * → 2',
    'ip6 proto 17 src ::/0 dst ::/0 sport 19/16 dport * → 0',
  ]);
});

test('rules sharing a key share an entry; the eighth is an error naming the seven', () => {
  const rules: Record<string, unknown> = {};
  for (let i = 0; i < 8; i++) rules[`r${i}`] = drop({ protocol: 'udp', dport: 53, ttl: i });
  const t = compileDos(configWithRules(rules), { dc: 'ams', now: NOW });
  assert.ok(!t.ok);
  assert.equal(t.error.length, 1);
  assert.equal(t.error[0]!.code, 'key_full');
  assert.equal(t.error[0]!.path, '/dos/rules/r7/match');
  assert.match(t.error[0]!.message, /r0, r1, r2, r3, r4, r5, r6.*merge/);
  delete rules.r7;
  const seven = compileDos(configWithRules(rules), { dc: 'ams', now: NOW });
  assert.ok(seven.ok);
  assert.deepEqual(seven.value.entries.map((e) => e.slots), [[0, 1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6]]);
});

test('more than 32 masks is an error naming the rule that went over and how to merge', () => {
  const rules: Record<string, unknown> = {};
  // Destination prefix lengths /1 … /33 (v4 up to /32, then one v6): 33 masks.
  for (let len = 1; len <= 32; len++) rules[`m${String(len).padStart(2, '0')}`] = drop({ dst: [`0.0.0.0/${len}`] });
  rules.m33 = drop({ dst: ['2001:db8::/32'] });
  const t = compileDos(configWithRules(rules), { dc: 'ams', now: NOW });
  assert.ok(!t.ok);
  assert.equal(t.error[0]!.code, 'too_many_masks');
  assert.equal(t.error[0]!.path, '/dos/rules/m33/match');
  assert.match(t.error[0]!.message, /32 are in use.*merge rules onto the same prefix lengths/);
});

test('a payload is stored masked, with a full mask when none is given', () => {
  const t = compileDos(configWithRules({ p: drop({ protocol: 'udp', payload: { offset: 0, bytes: 'ff ff 17' , mask: '0f f0 ff' } }), q: drop({ protocol: 'tcp', payload: { offset: 4, bytes: '1234' } }) }), { dc: 'ams', now: NOW });
  assert.ok(t.ok);
  assert.deepEqual(t.value.rules.map((r) => r.value.payload), [{ offset: 0, bytes: '0ff017', mask: '0ff0ff' }, { offset: 4, bytes: '1234', mask: 'ffff' }]);
});

test('a changed rate changes the bucket generation; the id hash stays', () => {
  const rl = (pps: number) => configWithRules({ r: { match: { protocol: 'udp' }, action: 'rate-limit', rateLimit: { pps } } });
  const a = compileDos(rl(10), { dc: 'ams', now: NOW });
  const b = compileDos(rl(20), { dc: 'ams', now: NOW });
  assert.ok(a.ok && b.ok);
  assert.notEqual(a.value.rules[0]!.value.gen, b.value.rules[0]!.value.gen);
  assert.equal(a.value.rules[0]!.value.idHash, b.value.rules[0]!.value.idHash);
});
