// `anyedge get` and `anyedge delete` end to end, in-process against the real API on loopback over
// a throwaway LMDB store seeded with the Acme example.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ApiLab } from './client-harness.ts';
import { startApiLab } from './client-harness.ts';
import { parseYaml } from './yaml-source.ts';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';

let lab: ApiLab;

before(async () => {
  lab = await startApiLab();
  const src = parseYaml(readFileSync('examples/acme.yaml', 'utf8'));
  assert.ok(src.ok);
  const cfg = parseConfig(src.value.value);
  assert.ok(cfg.ok);
  const w = await lab.store.txn({ then: [...configToEntries(cfg.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
  assert.ok(w.ok, JSON.stringify(w));
});

after(async () => {
  await lab.close();
});

/** Rows of a plain table: header cells and each row's cells (split on runs of 2+ spaces). */
function rows(out: string): string[][] {
  return out
    .trimEnd()
    .split('\n')
    .map((l) => l.split(/ {2,}/));
}

test('get tenants: a table of both tenants; --json the API objects', async () => {
  const r = await lab.run(['get', 'tenants']);
  assert.equal(r.code, 0, r.err);
  const t = rows(r.out);
  assert.deepEqual(t[0], ['ID', 'NAME', 'STATUS', 'REVISION']);
  assert.deepEqual(t.slice(1).map((row) => row.slice(0, 3)), [['acme', 'Acme Corp', 'active'], ['globex', 'Globex', 'active']]);
  const j = await lab.run(['get', 'tenants', '--json']);
  const items = (JSON.parse(j.out) as { items: { id: string; name: string; revision: number; tokenHash?: string }[] }).items;
  assert.deepEqual(items.map((i) => [i.id, i.name]), [['acme', 'Acme Corp'], ['globex', 'Globex']]);
  for (const i of items) {
    assert.ok(i.revision > 0);
    assert.equal(i.tokenHash, undefined);
  }
});

test('get prefixes/tunnels/routes: every tenant by default, one with --tenant, one object with an id', async () => {
  const all = await lab.run(['get', 'prefixes']);
  assert.equal(all.code, 0, all.err);
  assert.deepEqual(rows(all.out).map((r) => r.slice(0, 3)), [['TENANT', 'ID', 'CIDR'], ['acme', 'p1', '203.0.113.0/25'], ['globex', 'p0', '203.0.113.128/25']]);
  const one = await lab.run(['get', 'prefixes', '--tenant', 'globex', '--json']);
  const items = (JSON.parse(one.out) as { items: { id: string; cidr: string; tenant: string }[] }).items;
  assert.deepEqual(items.map((i) => [i.tenant, i.id, i.cidr]), [['globex', 'p0', '203.0.113.128/25']]);
  const tunnel = await lab.run(['get', 'tunnel', 'gre1', '--tenant', 'globex', '--json']);
  assert.equal(tunnel.code, 0, tunnel.err);
  const t = JSON.parse(tunnel.out) as { id: string; key: number; mtu: number; customerEndpoint: string };
  assert.deepEqual([t.id, t.key, t.mtu, t.customerEndpoint], ['gre1', 42, 1472, '198.51.100.201']);
  const routes = await lab.run(['get', 'routes', '--tenant', 'acme']);
  assert.deepEqual(rows(routes.out)[1]!.slice(0, 4), ['acme', 'r1', '203.0.113.0/25', 'gre1 (priority 100, weight 1)']);
});

test('get firewall: default actions and rules in order; a tenant without one says so; one rule by id', async () => {
  const r = await lab.run(['get', 'firewall']);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.match(lines[0]!, /^acme: 2 rules, then ingress drop, egress accept \(revision \d+\)$/);
  assert.equal(lines[1], 'globex: no firewall (traffic passes both ways)');
  const table = rows(lines.slice(2).join('\n'));
  assert.deepEqual(table[0], ['TENANT', '#', 'ID', 'DIRECTION', 'MATCH', 'ACTION', 'DESCRIPTION']);
  assert.deepEqual(table[1], ['acme', '1', 'ftp', 'ingress', 'dst=203.0.113.100/32 tcp dport=20-21', 'accept', 'FTP to Acme\'s server, as in the seed post']);
  assert.deepEqual(table[2], ['acme', '2', 'ping', 'ingress', 'icmp icmp=8', 'rate-limit pps=100']);
  const rule = await lab.run(['get', 'firewall', 'ping', '--tenant', 'acme', '--json']);
  assert.equal(rule.code, 0, rule.err);
  assert.equal((JSON.parse(rule.out) as { id: string; action: string }).action, 'rate-limit');
});

test('get dos, pools, dcs and servers', async () => {
  const dos = await lab.run(['get', 'dos']);
  assert.deepEqual(rows(dos.out)[1]!.slice(0, 4), ['chargen', 'udp sport=19', 'drop', 'everywhere']);
  const pools = await lab.run(['get', 'pools']);
  assert.deepEqual(rows(pools.out).map((r) => r.slice(0, 5)), [
    ['ID', 'CIDRS', 'CLASS', 'COUNTRY', 'SLICE SIZE'],
    ['nl-trusted', '198.51.100.64/27', 'trusted', 'NL', '2048'],
    ['us-untrusted', '198.51.100.96/27', 'untrusted', 'US', '2048'],
  ]);
  const dcs = await lab.run(['get', 'dcs']);
  assert.deepEqual(rows(dcs.out).slice(1).map((r) => r.slice(0, 2)), [['ams', 'Amsterdam'], ['chi', 'Chicago']]);
  const servers = await lab.run(['get', 'servers']);
  assert.deepEqual(rows(servers.out).slice(1).map((r) => [r[0], r[1], r[4]]), [['ams', 's1', 'active'], ['ams', 's2', 'active'], ['chi', 's1', 'active'], ['chi', 's2', 'draining']]);
  const chi = await lab.run(['get', 'servers', 'chi']);
  assert.equal(rows(chi.out).length, 3);
  const one = await lab.run(['get', 'server', 'chi/s2', '--json']);
  assert.equal((JSON.parse(one.out) as { state: string }).state, 'draining');
});

test('get: usage errors (exit 2) and not found (exit 1) say what to do', async () => {
  const noTenant = await lab.run(['get', 'prefixes', 'p1']);
  assert.equal(noTenant.code, 2);
  assert.match(noTenant.err, /^--tenant: prefix p1 belongs to a tenant; pass --tenant T/);
  const kind = await lab.run(['get', 'tunels']);
  assert.equal(kind.code, 2);
  assert.match(kind.err, /did you mean tunnels\?/);
  const missing = await lab.run(['get', 'prefixes', 'p9', '--tenant', 'acme']);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /^prefix p9 of tenant acme: not found \(.*\); anyedge get prefixes --tenant acme lists what there is$/m);
  const noSuchTenant = await lab.run(['get', 'tunnels', '--tenant', 'initech']);
  assert.equal(noSuchTenant.code, 1);
  assert.match(noSuchTenant.err, /^tenant initech: not found; anyedge get tenants lists them$/m);
});

test('a tenant token sees only its own tenant; operator-only commands say they need an operator', async () => {
  const res = await fetch(`${lab.url}/v1/tenants/acme/token`, { method: 'POST', headers: { authorization: `Bearer ${lab.token}` } });
  assert.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  const env = { ANYEDGE_TOKEN: token };
  const tenants = await lab.run(['get', 'tenants'], { env });
  assert.equal(tenants.code, 0, tenants.err);
  assert.deepEqual(rows(tenants.out).slice(1).map((r) => r[0]), ['acme']);
  const prefixes = await lab.run(['get', 'prefixes', '--json'], { env });
  assert.deepEqual((JSON.parse(prefixes.out) as { items: { tenant: string }[] }).items.map((i) => i.tenant), ['acme']);
  const other = await lab.run(['get', 'prefixes', '--tenant', 'globex'], { env });
  assert.equal(other.code, 1);
  assert.match(other.err, /^tenant globex: not found/m, 'another tenant is indistinguishable from none');
  const status = await lab.run(['status'], { env });
  assert.equal(status.code, 1);
  assert.match(status.err, /^GET \/v1\/servers: .*\(403\); this needs an operator token$/m);
});

test('delete: refuses without --yes off a TTY, asks on one, and deletes what was shown', async () => {
  const refused = await lab.run(['delete', 'dos', 'chargen']);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /^refusing to delete DoS rule chargen without confirmation: stdin is not a terminal; pass --yes to delete it$/m);
  assert.ok((await lab.store.get('/dos/rules/chargen')).ok);
  assert.notEqual(((await lab.store.get('/dos/rules/chargen')) as { value?: unknown }).value, undefined);

  const no = await lab.run(['delete', 'dos', 'chargen'], { tty: true, answers: ['N'] });
  assert.equal(no.code, 1);
  assert.deepEqual(no.asked, ['Delete DoS rule chargen? [y/N] ']);
  assert.match(no.err, /^chargen\s+udp sport=19/m, 'the object is shown before the question');

  const yes = await lab.run(['delete', 'dos', 'chargen'], { tty: true, answers: ['y'] });
  assert.equal(yes.code, 0, yes.err);
  assert.match(yes.out, /^deleted DoS rule chargen/);
  const gone = await lab.store.get('/dos/rules/chargen');
  assert.ok(gone.ok);
  assert.equal(gone.value, undefined);
});

test('delete: an object changed while the question was open is not deleted (409)', async () => {
  const before = await lab.store.get('/egress/pools/us-untrusted');
  assert.ok(before.ok && before.value);
  const r = await lab.run(['delete', 'pools', 'us-untrusted'], {
    tty: true,
    answers: ['yes'],
    whilePrompting: async () => {
      const w = await lab.store.put('/egress/pools/us-untrusted', { ...(before.value!.value as object), description: 'changed meanwhile' });
      assert.ok(w.ok, JSON.stringify(w));
    },
  });
  assert.equal(r.code, 1);
  assert.match(r.err, /^egress pool us-untrusted changed since it was read \(revision \d+\): .*; nothing deleted — run the command again/m);
  const after = await lab.store.get('/egress/pools/us-untrusted');
  assert.ok(after.ok && after.value);
});

test('delete tenants removes the tenant and everything it owns; the API refusing a delete shows why', async () => {
  const broken = await lab.run(['delete', 'prefixes', 'p1', '--tenant', 'acme', '--yes']);
  assert.equal(broken.code, 1, 'route r1 still needs the prefix');
  assert.match(broken.err, /^DELETE \/v1\/tenants\/acme\/prefixes\/p1: .* \(409 conflict\)\n {2}tenants\/acme\/routes\/r1\.prefix: 203\.0\.113\.0\/25 is not inside any prefix of tenant acme/m);
  assert.doesNotMatch(broken.err, /changed since it was read/);
  const r = await lab.run(['delete', 'tenant', 'globex', '--yes', '--json']);
  assert.equal(r.code, 0, r.err);
  assert.equal((JSON.parse(r.out) as { deleted: { id: string } }).deleted.id, 'globex');
  const left = await lab.store.list('/tenants/globex');
  assert.ok(left.ok);
  assert.deepEqual(left.value.entries.map((e) => e.key), []);
  const still = await lab.store.list('/tenants/acme');
  assert.ok(still.ok && still.value.entries.length > 0);
});
