/**
 * compileServer: the Acme example's desired state as a golden file, the naming and allocation
 * rules, route selection (priority groups, weights, tunnels marked down), and errors as values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileServer, tenantNetns, tunnelDev, tenantLinkNames, type DesiredServer } from './server.ts';
import { acmeConfig, acmeDoc, acmeDoc6, manyTenants, mustConfig } from '../agent/fixtures.ts';
import { marksWith } from '../kernel/marks.ts';
import { checkGolden } from '../testkit/golden.ts';

const marks = marksWith({ prefix: 'ae' });
const TESTDATA = new URL('./testdata/', import.meta.url).pathname;

function must(r: ReturnType<typeof compileServer>): DesiredServer {
  if (!r.ok) assert.fail(`compile failed: ${r.error.path}: ${r.error.message}`);
  return r.value;
}

test('golden: the Acme example on ams/s1', () => {
  const d = must(compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks }));
  checkGolden(`${TESTDATA}acme-ams-s1.golden.json`, JSON.stringify(d, null, 1) + '\n');
});

test('pure: the same input gives the same output; tenant order in the file does not matter', () => {
  const a = must(compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks }));
  const doc = acmeDoc();
  const reversed = mustConfig({ ...doc, tenants: Object.fromEntries(Object.entries(doc.tenants).reverse()) });
  const b = must(compileServer(reversed, { dc: 'ams', server: 's1' }, { marks }));
  assert.deepEqual(b, a);
});

test('names fit 15 characters; long ids are hashed, with a separator ids cannot contain', () => {
  const long = 'a-very-long-tenant-id-0123456789';
  assert.equal(tenantNetns(marks, 'acme'), 'ae-acme');
  const h = tenantNetns(marks, long);
  assert.match(h, /^ae_[0-9a-f]+$/);
  assert.ok(h.length <= 15);
  assert.notEqual(tenantNetns(marks, long), tenantNetns(marks, `${long.slice(0, -1)}8`));
  assert.ok(tunnelDev(marksWith({ prefix: 'q1abcs' }), 'gre-to-frankfurt').length <= 15);
  const n = tenantLinkNames(marksWith({ prefix: 'q1abcs' }), long);
  for (const x of [n.wireServer, n.wireTenant, n.outer('gre1')]) assert.ok(x.length <= 15 && x.startsWith('q1abcs'), x);
});

test('100 tenants: unique ifindexes, MACs and stats slots; one unnumbered wire pair for all; nothing in the main table of the server', () => {
  const d = must(compileServer(manyTenants(100), { dc: 'ams', server: 's1' }, { marks, linkPool: '192.0.2.0/24' }));
  const idx = d.veths.flatMap((v) => [v.spec.a.ifindex, v.spec.b.ifindex]);
  assert.equal(new Set(idx).size, idx.length);
  const macs = d.veths.flatMap((v) => [v.spec.a.mac, v.spec.b.mac]).filter((m) => m !== undefined);
  assert.equal(new Set(macs).size, macs.length);
  assert.equal(new Set(d.encap.map((e) => e.entry.statsIdx)).size, 100);
  const server = d.addrs.filter((a) => a.ns === null);
  assert.equal(new Set(server.map((a) => a.link)).size, 100, 'an address on every server-side wire end');
  assert.deepEqual([...new Set(server.map((a) => a.cidr))], ['192.0.2.1/32'], 'the same server-end address on each');
  assert.deepEqual([...new Set(d.addrs.filter((a) => a.path.endsWith('/wire') && a.ns !== null).map((a) => a.cidr))], ['192.0.2.2/32']);
  assert.ok(d.routes.filter((r) => r.ns === null).every((r) => r.spec.table === d.transitTable));
  // Only the tenant prefixes are in transit, each through its own wire device: no per-wire link
  // route, which would collide across wires in the one table.
  const transit = d.routes.filter((r) => r.ns === null);
  assert.equal(transit.length, 100);
  assert.ok(transit.every((r) => r.path.endsWith('/prefixes/p') && r.spec.nexthops.length === 1 && r.spec.nexthops[0]?.via === '192.0.2.2' && r.spec.nexthops[0].onlink === true));
  assert.equal(new Set(transit.map((r) => r.spec.nexthops[0]?.dev)).size, 100);
  assert.equal(d.nft.filter((t) => t.ns === null && t.table.name.endsWith('transit')).length, 1, 'one transit table, not one per tenant');
});

test('a /31 link pool serves any number of tenants: the wires are unnumbered', () => {
  const d = must(compileServer(manyTenants(3), { dc: 'ams', server: 's1' }, { marks, linkPool: '192.0.2.128/31' }));
  assert.deepEqual([...new Set(d.addrs.filter((a) => a.path.endsWith('/wire')).map((a) => `${a.ns === null ? 's' : 't'} ${a.cidr}`))].sort(), ['s 192.0.2.128/32', 't 192.0.2.129/32']);
  const bad = compileServer(manyTenants(3), { dc: 'ams', server: 's1' }, { marks, linkPool: '192.0.2.128/32' });
  assert.deepEqual(bad.ok ? null : [bad.error.code, bad.error.path], ['invalid', 'options/linkPool']);
  const v6 = compileServer(manyTenants(3), { dc: 'ams', server: 's1' }, { marks, linkPool: '2001:db8::/64' });
  assert.deepEqual(v6.ok ? null : [v6.error.code, v6.error.path], ['invalid', 'options/linkPool']);
});

test('an unknown server is an error value with its path', () => {
  const r = compileServer(acmeConfig(), { dc: 'ams', server: 's9' }, { marks });
  assert.deepEqual(r.ok ? null : [r.error.code, r.error.path], ['not_found', 'dcs/ams/servers/s9']);
});

test('routes: best priority group wins, weights kept; tunnels marked down are left out', () => {
  const doc = acmeDoc();
  const acme = doc.tenants.acme as Record<string, unknown>;
  acme.tunnels = {
    gre1: { customerEndpoint: '198.51.100.200' },
    gre2: { customerEndpoint: '198.51.100.202' },
    gre3: { customerEndpoint: '198.51.100.203' },
  };
  acme.routes = { r1: { prefix: '203.0.113.0/25', via: [{ tunnel: 'gre1', weight: 3 }, { tunnel: 'gre2', weight: 1 }, { tunnel: 'gre3', priority: 200 }] } };
  const cfg = mustConfig(doc);
  const route = (down: string[]) => {
    const d = must(compileServer(cfg, { dc: 'ams', server: 's1' }, { marks, down: new Set(down) }));
    return d.routes.find((r) => r.path === 'tenants/acme/routes/r1')?.spec ?? null;
  };
  assert.deepEqual(route([]), { table: 254, dst: '203.0.113.0/25', metric: 100, nexthops: [{ dev: 'ae-gre1', weight: 3 }, { dev: 'ae-gre2', weight: 1 }] });
  assert.deepEqual(route(['tenants/acme/tunnels/gre1']), { table: 254, dst: '203.0.113.0/25', metric: 100, nexthops: [{ dev: 'ae-gre2', weight: 1 }] });
  assert.deepEqual(route(['tenants/acme/tunnels/gre1', 'tenants/acme/tunnels/gre2']), { table: 254, dst: '203.0.113.0/25', metric: 200, nexthops: [{ dev: 'ae-gre3', weight: 1 }] });
  const d = must(compileServer(cfg, { dc: 'ams', server: 's1' }, { marks, down: new Set(['tenants/acme/tunnels/gre1', 'tenants/acme/tunnels/gre2', 'tenants/acme/tunnels/gre3']) }));
  assert.equal(route(['tenants/acme/tunnels/gre1', 'tenants/acme/tunnels/gre2', 'tenants/acme/tunnels/gre3']), null);
  assert.ok(d.warnings.some((w) => w.includes('tenants/acme/routes/r1')));
  // Down tunnels keep their devices and map entries: only routes change.
  assert.equal(d.encap.length, 4);
});

test('the customer firewall goes to the tenant namespace, with the wire as uplink and the tunnel devices', () => {
  const d = must(compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks }));
  const fw = d.nft.find((t) => t.path === 'tenants/acme/firewall');
  assert.equal(fw?.ns, 'ae-acme');
  assert.ok(JSON.stringify(fw?.batch).includes('"concat":["aeup","ae-gre1"]'));
  assert.equal(d.nft.find((t) => t.path === 'tenants/globex/firewall'), undefined, 'no firewall configured: no table');
});

test('a link pool overlapping a tenant prefix is refused', () => {
  const r = compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks, linkPool: '203.0.113.0/24' });
  assert.deepEqual(r.ok ? null : [r.error.code, r.error.path], ['invalid', 'tenants/acme/prefixes/p1']);
});

test('wire addresses never take a tunnel\'s inner addresses', () => {
  // A /29 pool: the network address is skipped, and the example's inner 192.0.2.252/31 (of the
  // pool 192.0.2.248/29) is avoided, wherever it is.
  const doc = acmeDoc();
  const one = mustConfig({ ...doc, tenants: { acme: doc.tenants.acme } });
  const wire = (linkPool: string) => must(compileServer(one, { dc: 'ams', server: 's1' }, { marks, linkPool })).addrs.filter((a) => a.path === 'tenants/acme/wire').map((a) => a.cidr);
  assert.deepEqual(wire('192.0.2.248/29'), ['192.0.2.249/32', '192.0.2.250/32']);
  assert.deepEqual(wire('192.0.2.252/30'), ['192.0.2.254/32', '192.0.2.255/32']);
  const full = compileServer(one, { dc: 'ams', server: 's1' }, { marks, linkPool: '192.0.2.252/31' });
  assert.deepEqual(full.ok ? null : [full.error.code, full.error.path], ['exhausted', 'tenants/acme/wire']);
});

test('wire routes name the device: transit via the tenant end onlink, the tenant default via the server end onlink', () => {
  const doc = acmeDoc();
  const d = must(compileServer(mustConfig({ ...doc, tenants: { acme: doc.tenants.acme } }), { dc: 'ams', server: 's1' }, { marks, linkPool: '192.0.2.64/30' }));
  assert.deepEqual(d.addrs.filter((a) => a.path === 'tenants/acme/wire').map((a) => [a.ns, a.link, a.cidr]), [
    [null, 'aew822b33ad', '192.0.2.65/32'],
    ['ae-acme', 'aeup', '192.0.2.66/32'],
  ]);
  assert.deepEqual(d.routes.filter((r) => r.path === 'tenants/acme/wire' || r.path === 'tenants/acme/prefixes/p1').map((r) => [r.ns, r.spec.table, r.spec.dst, r.spec.nexthops]), [
    ['ae-acme', 254, '0.0.0.0/0', [{ dev: 'aeup', via: '192.0.2.65', onlink: true }]],
    [null, 100, '203.0.113.0/25', [{ dev: 'aew822b33ad', via: '192.0.2.66', onlink: true }]],
  ]);
});

test('every server of every data center compiles the same tunnel map entries: GRE handling is stateless', () => {
  // With the programs' output a function of packet and entries (src/kernel/bpf/gre.test.ts runs
  // two loaded copies side by side), equal entries mean any server treats a packet alike.
  const servers = [
    ['ams', 's1'],
    ['ams', 's2'],
    ['chi', 's1'],
  ] as const;
  const [first, ...rest] = servers.map(([dc, server]) => must(compileServer(acmeConfig(), { dc, server }, { marks })));
  assert.ok(first!.encap.length > 0 && first!.decap.length > 0);
  for (const d of rest) {
    assert.deepEqual(d.encap, first!.encap);
    assert.deepEqual(d.decap, first!.decap);
    assert.deepEqual(d.tunnels, first!.tunnels);
  }
});

type End = [ns: string | null, cidr: string];

test('IPv6 tenant prefixes: the pool pair and link-local ends on the wire, transit routes, marking, a family-6 rule and tunnel routes', () => {
  const d = must(compileServer(mustConfig(acmeDoc6()), { dc: 'ams', server: 's1' }, { marks }));
  assert.deepEqual(d.warnings, []);
  const wire = d.addrs.filter((a) => a.path === 'tenants/acme/wire' && a.cidr.includes(':'));
  assert.deepEqual(wire.map((a) => [a.ns, a.cidr]) as End[], [
    [null, '2001:db8:ffff::1/128'],
    [null, 'fe80::1/128'],
    ['ae-acme', '2001:db8:ffff::2/128'],
    ['ae-acme', 'fe80::2/128'],
  ]);
  const globex = d.addrs.filter((a) => a.path === 'tenants/globex/wire' && a.cidr.includes(':')).map((a) => a.cidr);
  assert.deepEqual(globex, wire.map((a) => a.cidr), 'every wire has the same addresses');
  const routes = (path: string) => d.routes.filter((r) => r.path === path).map((r) => [r.ns, r.spec.table, r.spec.dst, r.spec.nexthops.map((h) => `${h.dev} ${h.via ?? '-'}`).join(',')]);
  assert.deepEqual(routes('tenants/acme/prefixes/p6'), [[null, 100, '2001:db8:a::/48', 'aew822b33ad fe80::2']]);
  assert.deepEqual(routes('tenants/acme/routes/r6'), [['ae-acme', 254, '2001:db8:a::/48', 'ae-gre1 fe80::1']]);
  assert.ok(routes('tenants/acme/wire').some((r) => r[0] === 'ae-acme' && r[2] === '::/0' && r[3] === 'aeup fe80::1'));
  assert.ok(!routes('tenants/acme/wire').some((r) => r[0] === null), 'no per-wire route in transit');
  // Nothing in the server's main tables, either family.
  assert.ok(d.routes.filter((r) => r.ns === null).every((r) => r.spec.table === d.transitTable));
  assert.deepEqual(d.rules.map((r) => [r.spec.family, r.spec.fwmark, r.spec.table]), [
    [4, 0xae, 100],
    [6, 0xae, 100],
  ]);
  const sysctl = (ns: string | null) => d.sysctls.filter((x) => x.ns === ns).map((x) => `${x.key}=${x.value}`);
  assert.ok(sysctl(null).includes('net.ipv6.conf.all.forwarding=1'));
  assert.ok(sysctl('ae-acme').includes('net.ipv6.conf.all.forwarding=1'));
  assert.ok(!sysctl('ae-acme').some((x) => x.includes('disable_ipv6')), 'tunnel devices of an IPv6 tenant keep IPv6');
  const nft = JSON.stringify(d.nft.find((t) => t.path === 'server/transit/nft')?.batch);
  assert.ok(nft.includes('"name":"tenant6","type":"ipv6_addr","flags":["interval"],"elem":[{"prefix":{"addr":"2001:db8:a::","len":48}},{"prefix":{"addr":"2001:db8:b::","len":48}}]'), nft);
  assert.ok(nft.includes('{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"@tenant6"}},{"counter":"cross_tenant"},{"drop":null}'), nft);
  assert.ok(nft.includes('{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"daddr"}},"right":"@tenant6"}},{"mangle":{"key":{"meta":{"key":"mark"}},"value":174}}'), nft);
});

test('IPv6: IPv4-only tenants keep IPv6 off on their tunnel devices and get no IPv6 wire; no family-6 rule without IPv6 tenants', () => {
  const d = must(compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks }));
  assert.ok(d.sysctls.some((x) => x.key === 'net.ipv6.conf.ae-gre1.disable_ipv6' && x.value === '1'));
  assert.ok(!d.addrs.some((a) => a.cidr.includes(':')));
  assert.deepEqual(d.rules.map((r) => r.spec.family), [4]);
});

test('IPv6: ECMP across tunnels uses gateway next hops (the kernel refuses device-only IPv6 multipath)', () => {
  const doc = acmeDoc6();
  const acme = doc.tenants.acme as Record<string, unknown>;
  acme.tunnels = { gre1: { customerEndpoint: '198.51.100.200' }, gre2: { customerEndpoint: '198.51.100.202' } };
  acme.routes = { r6: { prefix: '2001:db8:a::/48', via: [{ tunnel: 'gre1', weight: 3 }, { tunnel: 'gre2' }] } };
  const d = must(compileServer(mustConfig(doc), { dc: 'ams', server: 's1' }, { marks }));
  assert.deepEqual(d.routes.find((r) => r.path === 'tenants/acme/routes/r6')?.spec.nexthops, [
    { dev: 'ae-gre1', via: 'fe80::1', weight: 3 },
    { dev: 'ae-gre2', via: 'fe80::1', weight: 1 },
  ]);
});

test('IPv6: an IPv6 link pool overlapping a tenant prefix, or not IPv6, is refused', () => {
  const cfg = mustConfig(acmeDoc6());
  const r = compileServer(cfg, { dc: 'ams', server: 's1' }, { marks, linkPool6: '2001:db8::/32' });
  assert.deepEqual(r.ok ? null : [r.error.code, r.error.path], ['invalid', 'tenants/acme/prefixes/p6']);
  const v4 = compileServer(cfg, { dc: 'ams', server: 's1' }, { marks, linkPool6: '192.0.2.0/24' });
  assert.deepEqual(v4.ok ? null : [v4.error.code, v4.error.path], ['invalid', 'options/linkPool6']);
  const small = must(compileServer(cfg, { dc: 'ams', server: 's1' }, { marks, linkPool6: '2001:db8:ffff::/127' }));
  assert.deepEqual(small.addrs.filter((a) => a.cidr.startsWith('2001:db8:ffff')).map((a) => a.cidr), ['2001:db8:ffff::/128', '2001:db8:ffff::1/128', '2001:db8:ffff::/128', '2001:db8:ffff::1/128'], 'a /127 serves every tenant');
  const tiny = compileServer(cfg, { dc: 'ams', server: 's1' }, { marks, linkPool6: '2001:db8:ffff::/128' });
  assert.deepEqual(tiny.ok ? null : [tiny.error.code, tiny.error.path], ['invalid', 'options/linkPool6']);
});
