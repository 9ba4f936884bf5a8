// Cross-object rules. Each test starts from the Acme example (which is valid, first test), breaks
// one thing and compares the printed issues in full, so a missing, extra or reworded issue fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from './config.ts';
import type { Config, TenantConfig } from './config.ts';
import { emptyAnycast } from './anycast.ts';
import { formatIssue } from './issue.ts';
import { validate } from './validate.ts';

/** The example document as plain data, fresh for each test to change. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
function acme(): Doc {
  return parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as Doc;
}

function issuesOf(doc: Doc): string[] {
  const r = parseConfig(doc);
  return r.ok ? [] : r.error.map(formatIssue);
}

test('the Acme example is valid', () => {
  const r = parseConfig(acme());
  assert.ok(r.ok, r.ok ? '' : r.error.map(formatIssue).join('\n'));
  assert.deepEqual(validate(r.value), []);
});

test('a tenant prefix may not overlap another tenant’s prefix', () => {
  const doc = acme();
  doc.tenants.globex.prefixes.p0.cidr = '203.0.113.64/26';
  doc.tenants.globex.routes.r0.prefix = '203.0.113.64/26';
  assert.deepEqual(issuesOf(doc), ['tenants/acme/prefixes/p1: 203.0.113.0/25 overlaps tenants/globex/prefixes/p0 (203.0.113.64/26)']);
});

test('identical prefixes of two tenants, and IPv6 overlaps, are found too', () => {
  const doc = acme();
  doc.tenants.acme.prefixes.v6 = { cidr: '2001:db8:ac::/48' };
  doc.tenants.globex.prefixes.v6 = { cidr: '2001:db8:ac:1::/64' };
  doc.tenants.globex.prefixes.same = { cidr: '203.0.113.0/25' };
  assert.deepEqual(issuesOf(doc), [
    'tenants/acme/prefixes/p1: 203.0.113.0/25 overlaps tenants/globex/prefixes/same (203.0.113.0/25)',
    'tenants/acme/prefixes/v6: 2001:db8:ac::/48 overlaps tenants/globex/prefixes/v6 (2001:db8:ac:1::/64)',
  ]);
});

test('a tenant may nest its own prefixes but not list one twice', () => {
  const doc = acme();
  doc.tenants.acme.prefixes.half = { cidr: '203.0.113.0/26' }; // more specific of p1: fine
  doc.tenants.acme.prefixes.again = { cidr: '203.0.113.0/25' };
  assert.deepEqual(issuesOf(doc), ['tenants/acme/prefixes/again: 203.0.113.0/25 is already listed as tenants/acme/prefixes/p1; list each prefix once']);
});

test('a tenant prefix may not overlap the platform’s anycast or egress ranges', () => {
  const doc = acme();
  doc.tenants.globex.prefixes.bad = { cidr: '198.51.100.64/28' };
  doc.tenants.globex.prefixes.worse = { cidr: '2001:db8:100:1::/64' };
  // `bad` also covers addresses of the egress pool nl-trusted; the pool lies inside the egress
  // range, so the range is the one thing reported.
  assert.deepEqual(issuesOf(doc), [
    'tenants/globex/prefixes/bad: 198.51.100.64/28 overlaps anycast.egressRanges.0 (198.51.100.64/26), which the platform announces for itself; use a prefix outside the platform\'s ranges',
    'tenants/globex/prefixes/worse: 2001:db8:100:1::/64 overlaps anycast.ranges.1 (2001:db8:100::/48), which the platform announces for itself; use a prefix outside the platform\'s ranges',
  ]);
  const both = acme();
  both.anycast.egressRanges = ['198.51.100.0/26'];
  both.egress = {};
  assert.deepEqual(issuesOf(both), [
    'anycast.egressRanges.0: 198.51.100.0/26 overlaps anycast.ranges.0 (198.51.100.0/28); egress ranges and anycast ranges must be disjoint (egress addresses are owned by one data center, anycast ones by all)',
  ]);
});

test('a route names an existing tunnel of the same tenant', () => {
  const doc = acme();
  doc.tenants.acme.tunnels.backup = { customerEndpoint: '198.51.100.210' };
  doc.tenants.globex.routes.r0.via = [{ tunnel: 'gre1' }, { tunnel: 'backup' }, { tunnel: 'gre2' }];
  assert.deepEqual(issuesOf(doc), [
    'tenants/globex/routes/r0.via.1.tunnel: tenant globex has no tunnel "backup"; its tunnels: gre1',
    'tenants/globex/routes/r0.via.2.tunnel: tenant globex has no tunnel "gre2"; did you mean "gre1"?; its tunnels: gre1',
  ]);
});

test('a route lies inside its tenant’s prefixes, once per prefix', () => {
  const doc = acme();
  doc.tenants.acme.routes.all = { prefix: '0.0.0.0/0', via: [{ tunnel: 'gre1' }] };
  doc.tenants.acme.routes.again = { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1' }] };
  doc.tenants.acme.routes.part = { prefix: '203.0.113.96/27', via: [{ tunnel: 'gre1' }] }; // inside p1: fine
  assert.deepEqual(issuesOf(doc), [
    'tenants/acme/routes/all.prefix: 0.0.0.0/0 is not inside any prefix of tenant acme (203.0.113.0/25); traffic for it never reaches the tenant, so the route would never be used',
    "tenants/acme/routes/again.prefix: 203.0.113.0/25 already has route r1; put all next hops of a prefix in one route's via",
  ]);
});

test('a tunnel endpoint may not lie inside a tenant prefix or an anycast range', () => {
  const doc = acme();
  doc.tenants.acme.tunnels.gre1.customerEndpoint = '203.0.113.200'; // globex's prefix
  doc.tenants.globex.tunnels.gre1.customerEndpoint = '198.51.100.5'; // platform anycast range
  doc.tenants.globex.tunnels.v6 = { customerEndpoint: '2001:db8:100::99' };
  doc.tenants.globex.tunnels.egress = { customerEndpoint: '198.51.100.70' }; // egress range
  assert.deepEqual(issuesOf(doc), [
    "tenants/acme/tunnels/gre1.customerEndpoint: 203.0.113.200 is inside tenants/globex/prefixes/p0 (203.0.113.128/25), which we announce: GRE packets to it would come straight back to us; use the customer router's own public address",
    "tenants/globex/tunnels/gre1.customerEndpoint: 198.51.100.5 is inside anycast.ranges.0 (198.51.100.0/28), which we announce: GRE packets to it would come straight back to us; use the customer router's own public address",
    "tenants/globex/tunnels/v6.customerEndpoint: 2001:db8:100::99 is inside anycast.ranges.1 (2001:db8:100::/48), which we announce: GRE packets to it would come straight back to us; use the customer router's own public address",
    "tenants/globex/tunnels/egress.customerEndpoint: 198.51.100.70 is inside anycast.egressRanges.0 (198.51.100.64/26), which we announce: GRE packets to it would come straight back to us; use the customer router's own public address",
  ]);
});

test('a tunnel uses an anycast GRE endpoint of its family and is distinguishable on receive', () => {
  const doc = acme();
  doc.anycast.greEndpoints = ['198.51.100.1'];
  doc.tenants.acme.tunnels.other = { customerEndpoint: '198.51.100.220', anycastEndpoint: '198.51.100.2' };
  doc.tenants.acme.tunnels.v6 = { customerEndpoint: '2001:db8:ff::1' };
  doc.tenants.globex.tunnels.same = { customerEndpoint: '198.51.100.200' }; // acme's gre1, no key
  doc.tenants.globex.tunnels.keyed = { customerEndpoint: '198.51.100.200', key: 7 }; // differs by key: fine
  assert.deepEqual(issuesOf(doc), [
    'tenants/acme/tunnels/other.anycastEndpoint: 198.51.100.2 is not an anycast GRE endpoint; use one of anycast.greEndpoints (198.51.100.1)',
    'tenants/acme/tunnels/v6.anycastEndpoint: no IPv6 address in anycast.greEndpoints to send to 2001:db8:ff::1 from; add one there, or set anycastEndpoint',
    'tenants/globex/tunnels/same.customerEndpoint: tenants/acme/tunnels/gre1 already carries GRE from 198.51.100.200 to 198.51.100.1 without a key; a receiving server could not tell the two tunnels apart: give them different keys',
  ]);
});

test('server and router addresses are unique across data centers', () => {
  const doc = acme();
  doc.dcs.chi.servers.s1.addresses = ['192.0.2.18/28'];
  doc.dcs.chi.backbone = ['192.0.2.1/30'];
  assert.deepEqual(issuesOf(doc), [
    'dcs/chi.backbone.0: 192.0.2.1 is already used by dcs/ams.backbone.0; every address belongs to one router or server',
    'dcs/chi/servers/s1.addresses.0: 192.0.2.18 is already used by dcs/ams/servers/s1.addresses.0; every address belongs to one router or server',
  ]);
});

test('egress pools lie inside egress ranges, apart; assignments name a pool address and a data center that fits', () => {
  const doc = acme();
  doc.egress.pools.outside = { cidrs: ['198.51.100.128/27'], tags: { class: 'trusted', country: 'DE' } };
  doc.egress.pools.overlap = { cidrs: ['198.51.100.64/28'], tags: { class: 'trusted', country: 'DE' } };
  doc.egress.pools['us-untrusted'].sliceSize = 32768; // one usable slice per address
  doc.egress.assign['198.51.100.96'] = { dc: 'chi' }; // chi has 2 servers
  doc.egress.assign['198.51.100.250'] = { dc: 'sin' };
  assert.deepEqual(issuesOf(doc), [
    'egress/pools/outside.cidrs.0: 198.51.100.128/27 is not inside any of anycast.egressRanges (198.51.100.64/26); egress addresses must be announced: add the range there or pick addresses inside one',
    'egress/pools/overlap.cidrs.0: 198.51.100.64/28 overlaps egress/pools/nl-trusted.cidrs.0 (198.51.100.64/27); an address belongs to one pool',
    'egress/assign/198.51.100.250: 198.51.100.250 is not in any egress pool; only pool addresses can be assigned to a data center',
    'egress/assign/198.51.100.250.dc: no data center "sin"; known: ams, chi',
    'egress/assign/198.51.100.96.dc: data center chi has 2 servers but its 1 egress address tagged untrusted/US (sliceSize 32768, 1 port slice each) hold only 1; assign 1 more address of that tag to chi or lower sliceSize of egress/pools/us-untrusted to 16384',
  ]);
});

test('DoS rule scopes name existing data centers and tenants', () => {
  const doc = acme();
  doc.dos.rules.chargen.scope = { dcs: ['ams', 'amz'], tenant: 'acmee' };
  assert.deepEqual(issuesOf(doc), [
    'dos/rules/chargen.scope.dcs.1: no data center "amz"; did you mean "ams"?; known: ams, chi',
    'dos/rules/chargen.scope.tenant: no tenant "acmee"; did you mean "acme"?',
  ]);
});

test('every issue is returned, schema and cross-object alike, not only the first', () => {
  const doc = acme();
  doc.tenants.acme.tunnels.gre1.mtu = 9001;
  doc.tenants.globex.prefixes.p0.cidr = '203.0.113.1/25';
  doc.tenants.globex.routes.r0.via = [{ tunnel: 'nope' }];
  doc.dos.rules.chargen.scope = { tenant: 'nobody' };
  const issues = issuesOf(doc);
  assert.deepEqual(issues, [
    'tenants/acme/tunnels/gre1.mtu: must be an integer 576–9000 bytes; got 9001 (GRE over a 1500-byte path fits 1476)',
    'tenants/globex/prefixes/p0.cidr: "203.0.113.1/25" is not canonical (host bits are set after /25); use 203.0.113.0/25',
    'tenants/globex/routes/r0.via.0.tunnel: tenant globex has no tunnel "nope"; its tunnels: gre1',
    'dos/rules/chargen.scope.tenant: no tenant "nobody"',
  ]);
});

test('a reference to an object that failed its own schema is not also called dangling', () => {
  const doc = acme();
  doc.tenants.acme.tunnels.gre1.mtu = 1; // gre1 is broken, but it exists
  doc.egress.pools['nl-trusted'].sliceSize = 3; // so is the pool holding 198.51.100.64
  doc.dcs.ams.backbone = []; // and the data center it is assigned to
  assert.deepEqual(issuesOf(doc), [
    'dcs/ams.backbone: needs at least one address (the DC router on the backbone), e.g. [192.0.2.6/30]',
    'tenants/acme/tunnels/gre1.mtu: must be an integer 576–9000 bytes; got 1 (GRE over a 1500-byte path fits 1476)',
    'egress/pools/nl-trusted.sliceSize: must be a power of two 64–32768 (ports per server slice); got 3 — e.g. 2048 gives 31 servers per address',
  ]);
});

test('a data center with more servers than its addresses of a tag hold is told how many more it needs', () => {
  const doc = acme();
  const servers: Record<string, unknown> = {};
  // 1024 servers: far more than the 31 slices of one 2048-port address.
  for (let i = 0; i < 1024; i++) servers[`s${i}`] = { uplink: 'eth0', addresses: [`10.${i >> 8}.${i & 255}.1/24`] };
  doc.dcs.ams.servers = servers;
  assert.deepEqual(issuesOf(doc), [
    'egress/assign/198.51.100.64.dc: data center ams has 1024 servers but its 1 egress address tagged trusted/NL (sliceSize 2048, 31 port slices each) hold only 31; assign 33 more addresses of that tag to ams',
  ]);
  // Enough addresses of the tag (17 × 63 slices of 1024 ports): server k takes a slice of address k div 63.
  doc.egress.pools['nl-trusted'].sliceSize = 1024;
  for (let i = 1; i < 17; i++) doc.egress.assign[`198.51.100.${64 + i}`] = { dc: 'ams' };
  assert.deepEqual(issuesOf(doc), []);
});

test('an IPv6 egress address names one server of its data center; an IPv4 one names none', () => {
  const doc = acme();
  doc.anycast.egressRanges.push('2001:db8:e0::/48');
  doc.egress.pools.v6 = { cidrs: ['2001:db8:e0::/64'], tags: { class: 'trusted', country: 'NL' } };
  doc.egress.assign['2001:db8:e0::1'] = { dc: 'ams', server: 's1' };
  assert.deepEqual(issuesOf(doc), []);
  doc.egress.assign['2001:db8:e0::2'] = { dc: 'ams' };
  doc.egress.assign['2001:db8:e0::3'] = { dc: 'ams', server: 's3' };
  doc.egress.assign['198.51.100.64'] = { dc: 'ams', server: 's1' };
  assert.deepEqual(issuesOf(doc), [
    "egress/assign/198.51.100.64.server: 198.51.100.64 is an IPv4 egress address, shared by all of ams's servers through port slices; remove server",
    "egress/assign/2001:db8:e0::2.server: 2001:db8:e0::2 is an IPv6 egress address, which belongs to one server: name one of ams's servers (s1, s2)",
    'egress/assign/2001:db8:e0::3.server: data center ams has no server "s3"; did you mean "s1"?; known: s1, s2',
  ]);
});

/** A config with `n` tenants of two IPv4 prefixes each, built directly (no parsing). */
function manyTenants(n: number): Config {
  const tenants: Record<string, TenantConfig> = {};
  for (let i = 0; i < n; i++) {
    // Tenant i owns 10.x.y.0/25 and 10.x.y.128/25 for x.y = i: disjoint by construction.
    const net = `10.${(i >> 8) & 255}.${i & 255}`;
    tenants[`t${i}`] = {
      name: `Tenant ${i}`,
      status: 'active',
      prefixes: { a: { cidr: `${net}.0/25` }, b: { cidr: `${net}.128/25` } },
      tunnels: {},
      routes: {},
    };
  }
  return { dcs: {}, anycast: emptyAnycast(), tenants, dos: { rules: {} }, egress: { pools: {}, assign: {} } };
}

test('overlap checking scales: 100k prefixes in well under the time a pairwise check would take', () => {
  const config = manyTenants(50_000);
  // Two planted overlaps among the 100k: a late tenant claiming an early tenant's /25 and a /16
  // that covers tenant 0's block.
  (config.tenants as Record<string, TenantConfig>)['late'] = {
    name: 'Late',
    status: 'active',
    prefixes: { x: { cidr: '10.0.7.128/26' }, y: { cidr: '10.195.0.0/16' } },
    tunnels: {},
    routes: {},
  };
  const t0 = performance.now();
  const issues = validate(config).map(formatIssue);
  const ms = performance.now() - t0;
  assert.deepEqual(issues, [
    'tenants/t7/prefixes/b: 10.0.7.128/25 overlaps tenants/late/prefixes/x (10.0.7.128/26)',
    // 10.195.0.0/16 holds tenants 49920–49999 (x.y = 195.0 … 195.79), two prefixes each.
    ...Array.from({ length: 80 }, (_, k) => {
      const i = 49920 + k;
      return [
        `tenants/late/prefixes/y: 10.195.0.0/16 overlaps tenants/t${i}/prefixes/a (10.195.${k}.0/25)`,
        `tenants/late/prefixes/y: 10.195.0.0/16 overlaps tenants/t${i}/prefixes/b (10.195.${k}.128/25)`,
      ];
    }).flat(),
  ]);
  // A pairwise check is 5·10⁹ comparisons; the sort-based one takes well under a second on a
  // laptop. The bound leaves room for slow CI machines.
  assert.ok(ms < 5000, `validate took ${ms.toFixed(0)} ms for 100k prefixes`);
});
