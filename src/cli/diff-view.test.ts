// How whole-config diffs read: markers, changed fields only, rules matched by id, colour on a TTY only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldChanges, renderChange, renderDiff, summarizeChanges } from './diff-view.ts';
import type { Change } from './client.ts';

test('fieldChanges: only what differs, nested paths, added and removed fields, key order ignored', () => {
  const before = { customerEndpoint: '198.51.100.200', mtu: 1476, healthCheck: { enabled: true, intervalMs: 1000 }, key: 7 };
  const after = { mtu: 1400, customerEndpoint: '198.51.100.200', healthCheck: { intervalMs: 1000, enabled: false }, inner: ['192.0.2.252/31'] };
  assert.deepEqual(fieldChanges(before, after), [
    { path: 'healthCheck.enabled', before: true, after: false },
    { path: 'inner', after: ['192.0.2.252/31'] },
    { path: 'key', before: 7 },
    { path: 'mtu', before: 1476, after: 1400 },
  ]);
  assert.deepEqual(fieldChanges({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 }), []);
});

test('fieldChanges: rules are matched by id, so an insert is one new rule and an order change', () => {
  const ftp = { id: 'ftp', direction: 'ingress', action: 'accept' };
  const ping = { id: 'ping', direction: 'ingress', action: 'rate-limit' };
  const ssh = { id: 'ssh', direction: 'ingress', action: 'accept' };
  const before = { default: { ingress: 'drop', egress: 'accept' }, rules: [ftp, ping] };
  const after = { default: { ingress: 'drop', egress: 'accept' }, rules: [ssh, { ...ftp, action: 'drop' }, ping] };
  assert.deepEqual(fieldChanges(before, after), [
    { path: 'rules[ssh]', after: ssh },
    { path: 'rules[ftp].action', before: 'accept', after: 'drop' },
  ]);
  const swapped = fieldChanges({ rules: [ftp, ping] }, { rules: [ping, ftp] });
  assert.deepEqual(swapped, [{ path: 'rules (order)', before: ['ftp', 'ping'], after: ['ping', 'ftp'] }]);
  const removed = fieldChanges({ rules: [ftp, ping] }, { rules: [ping] });
  assert.deepEqual(removed, [{ path: 'rules[ftp]', before: ftp }]);
});

test('fieldChanges: plain lists are shown whole', () => {
  assert.deepEqual(fieldChanges({ addresses: ['192.0.2.18/28'] }, { addresses: ['192.0.2.18/28', '2001:db8::1/64'] }), [
    { path: 'addresses', before: ['192.0.2.18/28'], after: ['192.0.2.18/28', '2001:db8::1/64'] },
  ]);
});

const changes: Change[] = [
  { action: 'create', key: '/tenants/acme/prefixes/p2', after: { cidr: '203.0.113.64/26' }, modRevision: 0 },
  { action: 'update', key: '/tenants/acme/tunnels/gre1', before: { mtu: 1476, inner: [] }, after: { mtu: 1400, inner: [] }, modRevision: 7 },
  { action: 'delete', key: '/dos/rules/chargen', before: { action: 'drop' }, modRevision: 5 },
];

test('renderDiff: + create with its fields, ~ update with the changed fields, - delete; summary with the revision', () => {
  assert.equal(
    renderDiff({ revision: 12, changes }, false),
    [
      '+ /tenants/acme/prefixes/p2',
      '    cidr: "203.0.113.64/26"',
      '~ /tenants/acme/tunnels/gre1',
      '    mtu: 1476 → 1400',
      '- /dos/rules/chargen',
      '3 changes (1 to create, 1 to update, 1 to delete) against store revision 12',
      '',
    ].join('\n'),
  );
  assert.equal(renderDiff({ revision: 3, changes: [] }, false), 'no changes: the store already matches this config (store revision 3)\n');
});

test('renderChange: colour only when asked (a TTY); a removed field shows (none)', () => {
  const plain = renderChange(changes[2]!, false);
  assert.equal(plain, '- /dos/rules/chargen\n');
  assert.equal(renderChange(changes[2]!, true), '\u001b[31m- /dos/rules/chargen\u001b[39m\n');
  assert.ok(!renderDiff({ revision: 1, changes }, false).includes('\u001b'));
  const removed = renderChange({ action: 'update', key: '/tenants/globex/tunnels/gre1', before: { key: 42, mtu: 1472 }, after: { mtu: 1476 }, modRevision: 4 }, false);
  assert.equal(removed, '~ /tenants/globex/tunnels/gre1\n    key: 42 → (none)\n    mtu: 1472 → 1476\n');
});

test('summarizeChanges: counts per action, to do or done', () => {
  assert.equal(summarizeChanges(changes), '3 changes (1 to create, 1 to update, 1 to delete)');
  assert.equal(summarizeChanges(changes.slice(0, 1), true), '1 change (1 created, 0 updated, 0 deleted)');
});
