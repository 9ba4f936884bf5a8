// Kinds of `get`/`delete`: names and aliases, routes, ids checked before any request, match text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KINDS, findKind, summarizeMatch } from './kinds.ts';
import { resolveTarget } from './get.ts';

function kind(name: string): (typeof KINDS)[number] {
  const k = findKind(name);
  assert.ok(k.ok, name);
  return k.value;
}

test('every kind is found by its name and aliases; an unknown one suggests the nearest', () => {
  for (const k of KINDS) for (const n of [k.name, ...k.aliases]) assert.equal(kind(n).name, k.name);
  assert.equal(kind('Prefix').name, 'prefixes');
  assert.deepEqual(findKind('tunels'), {
    ok: false,
    error: 'KIND "tunels": unknown kind (did you mean tunnels?); use one of tenants, prefixes, tunnels, routes, firewall, dos, pools, dcs, servers',
  });
});

test('routes of each kind follow the REST contract', () => {
  assert.equal(kind('tenants').itemPath('', 'acme'), '/v1/tenants/acme');
  assert.equal(kind('prefixes').listPath('acme'), '/v1/tenants/acme/prefixes');
  assert.equal(kind('tunnels').itemPath('acme', 'gre1'), '/v1/tenants/acme/tunnels/gre1');
  assert.equal(kind('routes').itemPath('acme', 'r1'), '/v1/tenants/acme/routes/r1');
  assert.equal(kind('firewall').listPath('acme'), '/v1/tenants/acme/firewall');
  assert.equal(kind('firewall').itemPath('acme', 'ftp'), '/v1/tenants/acme/firewall/rules/ftp');
  assert.equal(kind('dos').itemPath('', 'chargen'), '/v1/dos/rules/chargen');
  assert.equal(kind('pools').listPath(''), '/v1/egress/pools');
  assert.equal(kind('dcs').itemPath('', 'ams'), '/v1/dcs/ams');
  assert.equal(kind('servers').itemPath('ams', 's1'), '/v1/dcs/ams/servers/s1');
});

test('targets: tenant kinds need --tenant, servers are DC/SERVER, ids are checked', () => {
  assert.deepEqual(resolveTarget(kind('prefixes'), 'p1', 'acme'), { ok: true, value: { owner: 'acme', id: 'p1' } });
  assert.deepEqual(resolveTarget(kind('prefixes'), 'p1', undefined), {
    ok: false,
    error: '--tenant: prefix p1 belongs to a tenant; pass --tenant T (anyedge get tenants lists them)',
  });
  assert.deepEqual(resolveTarget(kind('servers'), 'ams/s1', undefined), { ok: true, value: { owner: 'ams', id: 's1' } });
  assert.equal(resolveTarget(kind('servers'), 'ams', undefined).ok, false);
  assert.deepEqual(resolveTarget(kind('dos'), 'chargen', 'acme'), { ok: false, error: '--tenant: dos do not belong to a tenant; remove --tenant' });
  const bad = resolveTarget(kind('tenants'), '../dcs', undefined);
  assert.ok(!bad.ok);
  assert.match(bad.error, /^ID "\.\.\/dcs": not a valid id/);
  assert.equal(resolveTarget(kind('tunnels'), 'gre1', 'Acme').ok, false);
});

test('summarizeMatch: a rule\'s match in one line, fixed field order, "any" when empty', () => {
  assert.equal(
    summarizeMatch({ id: 'ftp', action: 'accept', dport: ['20-21'], protocol: 'tcp', dst: ['203.0.113.100'] }, ['id', 'action']),
    'dst=203.0.113.100 tcp dport=20-21',
  );
  assert.equal(summarizeMatch({ protocol: 'icmp', icmp: { type: 8 } }), 'icmp icmp=8');
  assert.equal(summarizeMatch({ protocol: 'tcp', tcpFlags: { set: ['syn'], unset: ['ack'] } }), 'tcp flags=+syn-ack');
  assert.equal(summarizeMatch({}), 'any');
});
