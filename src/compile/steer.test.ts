/**
 * compileSteer: the Acme example's steering maps as golden files (every map exact: the table as
 * owner pairs plus a digest of its bytes), the draining server as second choice, egress slices,
 * and errors as values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { bucketAt, compileSteer, formatSteer, STEER_PORT, type DesiredSteer } from './steer.ts';
import { NO_SERVER } from './maglev.ts';
import { acmeConfig, acmeDoc, mustConfig } from '../agent/fixtures.ts';
import { encodeBucket } from '../kernel/bpf/steer-layout.ts';
import { checkGolden } from '../testkit/golden.ts';

const TESTDATA = new URL('./testdata/', import.meta.url).pathname;

function must(r: ReturnType<typeof compileSteer>): DesiredSteer {
  if (!r.ok) assert.fail(`compile failed: ${r.error.path}: ${r.error.message}`);
  return r.value;
}

/** formatSteer plus the digest of steer_table's bytes, so the golden pins every bucket. */
function goldenText(d: DesiredSteer): string {
  const h = createHash('sha256');
  for (let i = 0; i < d.first.length; i++) h.update(encodeBucket(bucketAt(d, i)));
  return formatSteer(d) + `  table sha256 ${h.digest('hex')}\n`;
}

test('golden: the Acme example on ams/s1 and on chi/s1 (chi/s2 draining)', () => {
  checkGolden(`${TESTDATA}steer-acme-ams-s1.golden.txt`, goldenText(must(compileSteer(acmeConfig(), { dc: 'ams', server: 's1' }))));
  checkGolden(`${TESTDATA}steer-acme-chi-s1.golden.txt`, goldenText(must(compileSteer(acmeConfig(), { dc: 'chi', server: 's1' }))));
});

test('every server of a DC gets the same maps but its own self address', () => {
  const a = must(compileSteer(acmeConfig(), { dc: 'ams', server: 's1' }));
  const b = must(compileSteer(acmeConfig(), { dc: 'ams', server: 's2' }));
  assert.equal(a.cfg.self, '192.0.2.18');
  assert.equal(b.cfg.self, '192.0.2.19');
  assert.deepEqual({ ...b, cfg: a.cfg, server: a.server }, a);
  assert.equal(a.cfg.port, STEER_PORT);
  assert.ok(a.cfg.enabled);
  assert.deepEqual(a.services, ['198.51.100.2', '198.51.100.3']);
  assert.deepEqual(a.peers, ['192.0.2.18', '192.0.2.19', '192.0.2.34', '192.0.2.35']);
  // Two active servers: every bucket has a first owner and the other one as second choice (where
  // the bucket's flows were before its owner was added).
  const firsts = new Set(a.first);
  assert.deepEqual([...firsts].sort(), [0, 1]);
  assert.ok(a.second.every((x, i) => x === 1 - (a.first[i] as number)));
});

test("a draining server owns no bucket and is the second choice of the ones it had", () => {
  const d = must(compileSteer(acmeConfig(), { dc: 'chi', server: 's1' }));
  assert.deepEqual(d.owners.map((o) => o.id), ['chi/s1', 'chi/s2']);
  assert.ok(d.first.every((x) => x === 0), 'chi/s1 is the only active server');
  const seconds = d.second.filter((x) => x === 1).length;
  // s2 had about half of the buckets when both were active.
  assert.ok(seconds > 0.45 * d.first.length && seconds < 0.55 * d.first.length, `${seconds} second choices`);
  assert.deepEqual(bucketAt(d, d.second.indexOf(1)), { first: '192.0.2.34', second: '192.0.2.35' });
});

test('egress: slices owned by servers (slice 0 never), in this DC and the other, by address', () => {
  const d = must(compileSteer(acmeConfig(), { dc: 'ams', server: 's1' }));
  assert.deepEqual(d.egress.map((e) => [e.ip, e.entry]), [
    ['198.51.100.64', { kind: 'slices', sliceSize: 2048 }],
    ['198.51.100.96', { kind: 'slices', sliceSize: 2048 }],
  ]);
  assert.ok(!d.slices.some((s) => s.slice === 0));
  const ams = d.slices.filter((s) => s.ip === '198.51.100.64');
  const chi = d.slices.filter((s) => s.ip === '198.51.100.96');
  assert.deepEqual(new Set(ams.map((s) => s.server)), new Set(['192.0.2.18', '192.0.2.19']));
  assert.ok(chi.every((s) => s.owner.startsWith('chi/')), 'the other DC owns its address; we forward there');
  const ipv6 = must(
    compileSteer(acmeConfig(), { dc: 'ams', server: 's1' }, { egress: [{ ip: '2001:db8:100::40', dc: 'ams', owner: { kind: 'server', server: 's2' } }] }),
  );
  assert.deepEqual(ipv6.egress, [{ ip: '2001:db8:100::40', entry: { kind: 'server', server: '192.0.2.19' } }]);
  assert.deepEqual(ipv6.slices, []);
});

test('nothing to steer: the stage is disabled; every server draining: no table, a warning', () => {
  const doc = acmeDoc();
  const none = mustConfig({ ...doc, anycast: { ...(doc.anycast as object), services: [] }, egress: { pools: {}, assign: {} } });
  const d = must(compileSteer(none, { dc: 'ams', server: 's1' }));
  assert.equal(d.cfg.enabled, false);
  const dcs = doc.dcs as Record<string, { servers: Record<string, Record<string, unknown>> }>;
  const drained = mustConfig({
    ...doc,
    dcs: { ...dcs, ams: { ...dcs.ams, servers: { s1: { ...dcs.ams!.servers.s1, state: 'draining' }, s2: { ...dcs.ams!.servers.s2, state: 'down' } } } },
  });
  const w = must(compileSteer(drained, { dc: 'ams', server: 's1' }));
  assert.ok(w.first.every((x) => x === NO_SERVER));
  assert.match(w.warnings.join('\n'), /dcs\/ams: no active server .*set at least one server's state to active/);
});

test('tenant prefixes are steered exactly while their SYN-flood protection (either mode) is on; alone they enable the stage and build the table', () => {
  const doc = acmeDoc();
  assert.deepEqual(must(compileSteer(mustConfig(doc), { dc: 'ams', server: 's1' })).tenants, [], 'protection is off by default');
  const quiet = { ...doc, anycast: { ...(doc.anycast as object), services: [] }, egress: { pools: {}, assign: {} } };
  for (const protection of ['xdp', 'synproxy'] as const) {
    const on = { ...quiet, tenants: { ...doc.tenants, acme: { ...doc.tenants.acme, synFlood: { protection } } } };
    const d = must(compileSteer(mustConfig(on), { dc: 'ams', server: 's1' }));
    const acme = Object.values(doc.tenants.acme!.prefixes as Record<string, { cidr: string }>).map((p) => p.cidr);
    assert.deepEqual(d.tenants, [...acme].sort(), protection);
    assert.ok(d.cfg.enabled, 'steering on for the tenant alone');
    assert.ok(d.first.every((x) => x !== NO_SERVER), 'the table is built without services');
    assert.match(formatSteer(d), new RegExp(`\\n  tenant ${acme[0]!.replace(/\./g, '\\.')}\\n`));
  }
  const off = { ...quiet, tenants: { ...doc.tenants, acme: { ...doc.tenants.acme, synFlood: { protection: 'off' } } } };
  const d = must(compileSteer(mustConfig(off), { dc: 'ams', server: 's1' }));
  assert.deepEqual(d.tenants, []);
  assert.equal(d.cfg.enabled, false);
});

test('errors name the object and what to do', () => {
  const r = compileSteer(acmeConfig(), { dc: 'ams', server: 's9' });
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'not_found');
  assert.equal(r.error.path, 'dcs/ams/servers/s9');
  const doc = acmeDoc();
  const dcs = doc.dcs as Record<string, { servers: Record<string, Record<string, unknown>> }>;
  const v6only = mustConfig({ ...doc, dcs: { ...dcs, ams: { ...dcs.ams, servers: { ...dcs.ams!.servers, s1: { uplink: 'eth0', addresses: ['2001:db8:0:10::18/64'] } } } } });
  const e = compileSteer(v6only, { dc: 'ams', server: 's1' });
  assert.ok(!e.ok);
  assert.equal(e.error.path, 'dcs/ams/servers/s1.addresses');
  assert.match(e.error.message, /no IPv4 address.*add the uplink IPv4 address/);
});
