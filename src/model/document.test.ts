import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitDocPath, splitDocument } from './document.ts';
import { configStats, emptyConfig, parseConfig } from './config.ts';
import { formatIssue } from './issue.ts';

test('a document splits into store entries, children apart from their parents', () => {
  const { entries, issues } = splitDocument({
    dcs: { ams: { name: 'Amsterdam', backbone: ['192.0.2.1/30'], servers: { s1: { uplink: 'eth0' } } } },
    tenants: { acme: { name: 'Acme', prefixes: { p1: { cidr: '203.0.113.0/25' } }, firewall: { default: {} } } },
    dos: { rules: { r: { action: 'drop' } } },
    egress: { pools: { p: {} }, assign: { '198.51.100.64': { dc: 'ams' } } },
    anycast: { ranges: [] },
  });
  assert.deepEqual(issues, []);
  assert.deepEqual(Object.fromEntries(entries), {
    '/dcs/ams': { name: 'Amsterdam', backbone: ['192.0.2.1/30'] },
    '/dcs/ams/servers/s1': { uplink: 'eth0' },
    '/anycast': { ranges: [] },
    '/tenants/acme': { name: 'Acme' },
    '/tenants/acme/prefixes/p1': { cidr: '203.0.113.0/25' },
    '/tenants/acme/firewall': { default: {} },
    '/dos/rules/r': { action: 'drop' },
    '/egress/pools/p': {},
    '/egress/assign/198.51.100.64': { dc: 'ams' },
  });
});

test('empty documents and empty sections are an empty config', () => {
  for (const doc of [null, undefined, {}, { dcs: null, tenants: {}, dos: null, egress: { pools: null } }]) {
    const r = parseConfig(doc);
    assert.ok(r.ok);
    assert.deepEqual(r.value, emptyConfig());
  }
});

test('structural mistakes are issues where they are written', () => {
  const { issues } = splitDocument({
    tenant: {},
    dcs: [],
    tenants: { Acme: { prefixes: { p1: {} } }, globex: { name: 'G', tunnels: ['gre1'] } },
    dos: { rule: {} },
    egress: 'none',
  });
  assert.deepEqual(issues.map(formatIssue), [
    'tenant: unknown section "tenant"; did you mean "tenants"?; known: dcs, anycast, tenants, dos, egress',
    'dcs: expected a map (data center id → its fields), got a list',
    'tenants/Acme: "Acme" is not a valid tenant id: use 1–32 characters from a–z, 0–9 and "-", starting with a letter or digit (ids become network namespace and nftables names)',
    'tenants/globex/tunnels: expected a map (tunnel id → its fields), got a list',
    'dos/rule: unknown section "rule"; did you mean "rules"?; known: rules',
    'egress: expected a map with pools, assign, got the text "none"',
  ]);
  const top = splitDocument([1, 2]);
  assert.equal(top.issues[0]!.message, 'expected a map with the sections dcs, anycast, tenants, dos, egress, got a list');
});

test('a document path splits into the object and the field inside it', () => {
  const cases: [string, string, string][] = [
    ['tenants/acme/tunnels/gre1/mtu', 'tenants/acme/tunnels/gre1', 'mtu'],
    ['tenants/acme/firewall/rules/0/dport', 'tenants/acme/firewall', 'rules/0/dport'],
    ['tenants/acme/name', 'tenants/acme', 'name'],
    ['dcs/ams/servers/s1/uplink', 'dcs/ams/servers/s1', 'uplink'],
    ['dcs/ams/backbone/0', 'dcs/ams', 'backbone/0'],
    ['anycast/ranges/1', 'anycast', 'ranges/1'],
    ['egress/assign/198.51.100.64/dc', 'egress/assign/198.51.100.64', 'dc'],
    ['dos/rules/x', 'dos/rules/x', ''],
    ['tenants', 'tenants', ''],
  ];
  for (const [doc, path, field] of cases) {
    const r = splitDocPath(doc.split('/'));
    assert.deepEqual([r.path.join('/'), r.field.join('/')], [path, field], doc);
  }
});

test('configStats counts every kind of object', () => {
  const r = parseConfig({
    dcs: { ams: { name: 'A', backbone: ['192.0.2.1/30'], servers: { s1: { uplink: 'eth0', addresses: ['192.0.2.18/28'] } } } },
    tenants: { t: { name: 'T', prefixes: { p: { cidr: '203.0.113.0/25' } }, firewall: { default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'a', direction: 'egress', action: 'accept' }] } } },
  });
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  assert.deepEqual(configStats(r.value), {
    dcs: 1,
    servers: 1,
    tenants: 1,
    prefixes: 1,
    tunnels: 0,
    routes: 0,
    firewallRules: 1,
    dosRules: 0,
    egressPools: 0,
    egressAssignments: 0,
  });
});
