import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from './config.ts';
import type { Config } from './config.ts';
import { formatIssue } from './issue.ts';
import { configToEntries, entriesToConfig, keyOf, parseKey, validateKeyspace } from './keyspace.ts';
import type { KeyRef } from './keyspace.ts';

function acmeConfig(): Config {
  const r = parseConfig(parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')));
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  return r.value;
}

/** What a store holds: JSON text per key, decoded again on read. */
function throughJson(entries: ReadonlyMap<string, unknown>): Map<string, unknown> {
  return new Map([...entries].map(([k, v]) => [k, JSON.parse(JSON.stringify(v)) as unknown]));
}

test('config → entries follows the DESIGN §3 layout, one key per object', () => {
  const entries = configToEntries(acmeConfig());
  assert.deepEqual([...entries.keys()].sort(), [
    '/anycast',
    '/dcs/ams',
    '/dcs/ams/servers/s1',
    '/dcs/ams/servers/s2',
    '/dcs/chi',
    '/dcs/chi/servers/s1',
    '/dcs/chi/servers/s2',
    '/dos/rules/chargen',
    '/egress/assign/198.51.100.64',
    '/egress/assign/198.51.100.96',
    '/egress/pools/nl-trusted',
    '/egress/pools/us-untrusted',
    '/tenants/acme',
    '/tenants/acme/firewall',
    '/tenants/acme/prefixes/p1',
    '/tenants/acme/routes/r1',
    '/tenants/acme/tunnels/gre1',
    '/tenants/globex',
    '/tenants/globex/prefixes/p0',
    '/tenants/globex/routes/r0',
    '/tenants/globex/tunnels/gre1',
  ]);
  // A parent's value does not repeat its children: the keys below it are the list.
  assert.deepEqual(entries.get('/dcs/ams'), { name: 'Amsterdam', location: 'Amsterdam, NL', backbone: ['192.0.2.1/30', '2001:db8:0:1::1/64'] });
  assert.deepEqual(entries.get('/tenants/acme'), { name: 'Acme Corp', status: 'active' });
  assert.deepEqual(entries.get('/egress/assign/198.51.100.64'), { dc: 'ams' });
  assert.deepEqual(entries.get('/tenants/acme/prefixes/p1'), { cidr: '203.0.113.0/25', description: "lower half of the seed's 203.0.113.0/24" });
});

test('round trip: config → entries → JSON → config gives the same config, and the same entries again', () => {
  const config = acmeConfig();
  const entries = throughJson(configToEntries(config));
  const back = entriesToConfig(entries);
  assert.ok(back.ok, back.ok ? '' : back.error.map(formatIssue).join('\n'));
  assert.deepEqual(back.value, config);
  // Stored values are already normal: parsing them changes nothing (no default drifts in).
  assert.deepEqual(throughJson(configToEntries(back.value)), entries);
});

test('every key kind maps to its key and back', () => {
  const refs: KeyRef[] = [
    { kind: 'dc', dc: 'ams' },
    { kind: 'server', dc: 'ams', server: 's1' },
    { kind: 'anycast' },
    { kind: 'tenant', tenant: 'acme' },
    { kind: 'prefix', tenant: 'acme', id: 'p1' },
    { kind: 'tunnel', tenant: 'acme', id: 'gre1' },
    { kind: 'route', tenant: 'acme', id: 'r1' },
    { kind: 'firewall', tenant: 'acme' },
    { kind: 'dos', id: 'chargen' },
    { kind: 'pool', id: 'nl' },
    { kind: 'assign', ip: '2001:db8:164::1' },
  ];
  for (const ref of refs) assert.deepEqual(parseKey(keyOf(ref)), { ok: true, value: ref });
});

test('validateKeyspace: a valid keyspace, and an empty one, have no issues', () => {
  assert.deepEqual(validateKeyspace(throughJson(configToEntries(acmeConfig()))), []);
  assert.deepEqual(validateKeyspace(new Map()), []);
});

test('validateKeyspace refuses keys outside the layout, bad ids and non-canonical addresses', () => {
  const entries = new Map<string, unknown>([
    ['/tenant/acme', {}],
    ['/tenants/acme/prefix/p1', {}],
    ['/dcs/ams/servers', {}],
    ['/anycast/x', {}],
    ['anycast', {}],
    ['/tenants/Acme', { name: 'Acme' }],
    ['/dcs/ams/servers/s_1', {}],
    ['/egress/assign/2001:DB8::1', { dc: 'ams' }],
    ['/egress/assign/198.51.100.300', { dc: 'ams' }],
  ]);
  const issues = validateKeyspace(entries);
  assert.deepEqual(
    issues.map((i) => [i.code, i.path.join('/')]),
    [
      ['unknown_key', 'tenant/acme'],
      ['unknown_key', 'tenants/acme/prefix/p1'],
      ['unknown_key', 'dcs/ams/servers'],
      ['unknown_key', 'anycast/x'],
      ['unknown_key', 'anycast'],
      ['invalid_id', 'tenants/Acme'],
      ['invalid_id', 'dcs/ams/servers/s_1'],
      ['not_canonical', 'egress/assign/2001:DB8::1'],
      ['invalid_ip', 'egress/assign/198.51.100.300'],
    ],
  );
  assert.match(issues[0]!.message, /^"\/tenant\/acme" is not a config key; did you mean "tenants"\?; keys are \/dcs\/<dc>, /);
  assert.match(issues[1]!.message, /did you mean "prefixes"\?/);
  assert.match(issues[6]!.message, /not a valid server id/);
  assert.equal(issues[7]!.message, '"2001:DB8::1" is not written canonically; use 2001:db8::1 (one address, one key)');
});

test('validateKeyspace: schema issues and cross-object issues at store paths without the slash', () => {
  const entries = throughJson(configToEntries(acmeConfig()));
  entries.set('/tenants/acme/tunnels/gre1', { customerEndpoint: '198.51.100.200', mtu: 100 });
  entries.set('/tenants/acme/routes/r2', { prefix: '203.0.113.64/26', via: [{ tunnel: 'gre7' }] });
  entries.set('/tenants/globex/prefixes/p9', { cidr: '203.0.113.96/27' });
  assert.deepEqual(validateKeyspace(entries).map(formatIssue), [
    'tenants/acme/tunnels/gre1.mtu: must be an integer 576–9000 bytes; got 100 (GRE over a 1500-byte path fits 1476)',
    'tenants/acme/prefixes/p1: 203.0.113.0/25 overlaps tenants/globex/prefixes/p9 (203.0.113.96/27)',
    // gre1 is broken but exists, so only the unknown gre7 is reported.
    'tenants/acme/routes/r2.via.0.tunnel: tenant acme has no tunnel "gre7"; did you mean "gre1"?; its tunnels: gre1',
  ]);
});

test('validateKeyspace: children need their parent', () => {
  const entries = new Map<string, unknown>([
    ['/dcs/ams/servers/s1', { uplink: 'eth0', addresses: ['192.0.2.18/28'] }],
    ['/tenants/acme/prefixes/p1', { cidr: '203.0.113.0/25' }],
    ['/tenants/acme/firewall', { default: { ingress: 'drop', egress: 'accept' } }],
  ]);
  assert.deepEqual(validateKeyspace(entries).map(formatIssue), [
    'dcs/ams/servers/s1: data center ams does not exist; create /dcs/ams first, or remove this key',
    'tenants/acme/prefixes/p1: tenant acme does not exist; create /tenants/acme first, or remove this key',
    'tenants/acme/firewall: tenant acme does not exist; create /tenants/acme first, or remove this key',
  ]);
  // A parent that exists but is itself invalid is not missing: only its own issue is reported.
  entries.set('/tenants/acme', { name: '' });
  entries.set('/dcs/ams', { name: 'Amsterdam', backbone: ['192.0.2.1/30'] });
  assert.deepEqual(validateKeyspace(entries).map(formatIssue), ['tenants/acme.name: must not be empty']);
});

test('entriesToConfig refuses an invalid keyspace with every issue', () => {
  const entries = throughJson(configToEntries(acmeConfig()));
  entries.set('/tenants/globex/tunnels/gre1', { customerEndpoint: '203.0.113.1' });
  entries.set('/nonsense', 1);
  const r = entriesToConfig(entries);
  assert.ok(!r.ok);
  assert.deepEqual(
    r.error.map((i) => i.code),
    ['unknown_key', 'endpoint_announced'],
  );
});

test('validateKeyspace caches schema results of frozen values only, per key', () => {
  // A mutable value is parsed afresh each time: fixing it in place clears its issue.
  const tunnel: Record<string, unknown> = { customerEndpoint: '198.51.100.200', mtu: 1 };
  const entries = new Map<string, unknown>([
    ['/anycast', { ranges: ['198.51.100.0/28'], greEndpoints: ['198.51.100.1'] }],
    ['/tenants/acme', { name: 'Acme' }],
    ['/tenants/acme/tunnels/gre1', tunnel],
  ]);
  assert.equal(validateKeyspace(entries).filter((i) => i.field.join('.') === 'mtu').length, 1);
  tunnel.mtu = 1400;
  assert.deepEqual(validateKeyspace(entries).map(formatIssue), []);
  // One frozen value under two keys: each issue names its own key, cache or not.
  const bad = Object.freeze({ customerEndpoint: '198.51.100.200', mtu: 1 });
  const two = new Map<string, unknown>([
    ['/tenants/acme', { name: 'Acme' }],
    ['/tenants/acme/tunnels/a', bad],
    ['/tenants/acme/tunnels/b', bad],
  ]);
  for (let i = 0; i < 2; i++) {
    const paths = validateKeyspace(two).map((x) => x.path.join('/')).sort();
    assert.deepEqual(paths, ['tenants/acme/tunnels/a', 'tenants/acme/tunnels/b']);
  }
});
