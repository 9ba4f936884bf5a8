/**
 * CRUD per resource family against a validated LMDB store: create, read, replace, delete; If-Match
 * (the revision read, 0 = must not exist); 409 for conflicts with other objects and for lost
 * compare-and-set; 400 with every field error; and on every failure, nothing written (the store's
 * revision and contents are unchanged).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiHarness, type ApiHarness } from './harness.ts';

type Body = Record<string, unknown> & { error?: { code: string; message: string; issues?: { path: string; field: string; code: string; message: string }[]; key?: string; currentRevision?: number } };

async function snapshot(h: ApiHarness): Promise<string> {
  const r = await h.store.list('/');
  assert.ok(r.ok);
  return JSON.stringify(r.value);
}

/** Runs `fn`, then asserts the store is exactly as before (revision and every entry). */
async function unchanged(h: ApiHarness, fn: () => Promise<void>): Promise<void> {
  const before = await snapshot(h);
  await fn();
  assert.equal(await snapshot(h), before, 'the store changed after a failed request');
}

async function withApi(fn: (h: ApiHarness) => Promise<void>): Promise<void> {
  const h = await apiHarness();
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

const b = (r: { body: unknown }): Body => r.body as Body;

/** The families stored one object per key: list path, one object, a valid body and a changed one. */
const FAMILIES = [
  { list: '/v1/tenants/acme/prefixes', id: 'p2', body: { cidr: '203.0.113.0/26' }, changed: { cidr: '203.0.113.64/26', description: 'the upper quarter' } },
  { list: '/v1/tenants/acme/tunnels', id: 'gre2', body: { customerEndpoint: '198.51.100.202' }, changed: { customerEndpoint: '198.51.100.202', key: 7 } },
  { list: '/v1/tenants/acme/routes', id: 'r2', body: { prefix: '203.0.113.0/26', via: [{ tunnel: 'gre1' }] }, changed: { prefix: '203.0.113.0/27', via: [{ tunnel: 'gre1', weight: 3 }] } },
  { list: '/v1/dcs', id: 'fra', body: { name: 'Frankfurt', backbone: ['192.0.2.9/30'] }, changed: { name: 'Frankfurt am Main', backbone: ['192.0.2.9/30'] } },
  { list: '/v1/dcs/ams/servers', id: 's3', body: { uplink: 'eth0', addresses: ['192.0.2.20/28'] }, changed: { uplink: 'eth1', addresses: ['192.0.2.20/28'], state: 'draining' } },
  { list: '/v1/dos/rules', id: 'memcached', body: { match: { protocol: 'udp', sport: [11211] }, action: 'drop' }, changed: { match: { protocol: 'udp', sport: [11211] }, action: 'rate-limit', rateLimit: { pps: 1000 } } },
  { list: '/v1/egress/pools', id: 'nl-trusted', body: { cidrs: ['198.51.100.64/27'], tags: { class: 'trusted', country: 'NL' } }, changed: { cidrs: ['198.51.100.64/27'], tags: { class: 'trusted', country: 'nl' }, sliceSize: 1024 } },
] as const;

for (const f of FAMILIES) {
  test(`CRUD ${f.list}/{id}: create, read, list, replace with If-Match, delete`, () =>
    withApi(async (h) => {
      const one = `${f.list}/${f.id}`;
      // The egress pool already exists in the seed: start from its absence to test create.
      if (f.id === 'nl-trusted') {
        await h.call('DELETE', '/v1/dcs/ams').then((r) => assert.equal(r.status, 409, 'ams is still assigned an egress address'));
        const gone = await h.call('PUT', '/v1/config', { body: { config: withoutPool((await h.call('GET', '/v1/config')).body) } });
        assert.equal(gone.status, 200, JSON.stringify(gone.body));
      }
      assert.equal((await h.call('GET', one)).status, 404);
      const created = await h.call('PUT', one, { body: f.body, headers: { 'if-match': '0' } });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      assert.equal(b(created).id, f.id);
      const rev = b(created).revision as number;
      assert.ok(rev > 0);

      const read = await h.call('GET', one);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body, created.body, 'the reply of a write is the object as read back');
      const listed = await h.call('GET', f.list);
      assert.ok((b(listed).items as { id: string }[]).some((i) => i.id === f.id));

      // If-Match 0 on an existing object, and a stale revision: 409, nothing written.
      await unchanged(h, async () => {
        const again = await h.call('PUT', one, { body: f.body, headers: { 'if-match': '0' } });
        assert.equal(again.status, 409);
        assert.equal(b(again).error!.code, 'cas_failed');
        assert.equal(b(again).error!.key, one.replace('/v1', ''));
        assert.equal(b(again).error!.currentRevision, rev);
        const stale = await h.call('PUT', one, { body: f.changed, headers: { 'if-match': String(rev - 1) } });
        assert.equal(stale.status, 409);
        assert.equal(b(stale).error!.currentRevision, rev);
      });
      const replaced = await h.call('PUT', one, { body: { ...f.changed, id: f.id, revision: rev }, headers: { 'if-match': String(rev) } });
      assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
      assert.ok((b(replaced).revision as number) > rev);
      assert.deepEqual((await h.call('GET', one)).body, replaced.body);

      await unchanged(h, async () => {
        const stale = await h.call('DELETE', one, { headers: { 'if-match': String(rev) } });
        assert.equal(stale.status, 409);
      });
      const deleted = await h.call('DELETE', one, { headers: { 'if-match': String(b(replaced).revision) } });
      assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
      assert.equal((await h.call('GET', one)).status, 404);
      assert.equal((await h.call('DELETE', one)).status, 404);
    }));
}

function withoutPool(doc: unknown): unknown {
  const d = structuredClone((doc as { config: Record<string, Record<string, Record<string, unknown>>> }).config);
  delete d.egress!.pools!['nl-trusted'];
  delete d.egress!.assign!['198.51.100.64'];
  return d;
}

test('a write normalises the object as the model stores it and answers with that', () =>
  withApi(async (h) => {
    const r = await h.call('PUT', '/v1/tenants/acme/tunnels/gre2', { body: { customerEndpoint: '198.51.100.202', key: 9 } });
    assert.equal(r.status, 200);
    assert.equal(b(r).mtu, 1472, 'the default MTU of keyed GRE over IPv4 is filled in');
    assert.equal(b(r).type, 'gre');
    const pool = await h.call('PUT', '/v1/egress/pools/us-untrusted', { body: { cidrs: ['198.51.100.96/27'], tags: { class: 'untrusted', country: 'us' } } });
    assert.equal((b(pool).tags as { country: string }).country, 'US');
  }));

test('400 lists every field error with its path and field, and writes nothing', () =>
  withApi(async (h) => {
    await unchanged(h, async () => {
      const r = await h.call('PUT', '/v1/tenants/acme/tunnels/gre2', { body: { customerEndpoint: 'nope', mtu: 99999, key: -1, colour: 'red', healthCheck: { intervalMs: 100, timeoutMs: 500 } } });
      assert.equal(r.status, 400);
      const e = b(r).error!;
      assert.equal(e.code, 'invalid');
      const fields = e.issues!.map((i) => i.field).sort();
      assert.deepEqual(fields, ['colour', 'customerEndpoint', 'healthCheck.timeoutMs', 'key', 'mtu']);
      for (const i of e.issues!) {
        assert.equal(i.path, 'tenants/acme/tunnels/gre2');
        assert.ok(i.message.length > 10, i.message);
      }
      assert.equal(e.issues!.find((i) => i.field === 'colour')!.code, 'unknown_field');
    });
    await unchanged(h, async () => {
      const r = await h.call('PUT', '/v1/tenants/acme/firewall', { body: { default: { ingress: 'maybe' }, rules: [{ id: 'x', direction: 'in', action: 'accept' }, { id: 'x', direction: 'ingress', action: 'rate-limit' }] } });
      assert.equal(r.status, 400);
      const fields = b(r).error!.issues!.map((i) => i.field).sort();
      assert.deepEqual(fields, ['default.egress', 'default.ingress', 'rules.0.direction', 'rules.1.id', 'rules.1.rateLimit']);
    });
    await unchanged(h, async () => {
      const r = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: '203.0.113.0/26', id: 'p3' } });
      assert.equal(r.status, 400);
      assert.equal(b(r).error!.issues![0]!.code, 'id_mismatch');
    });
    await unchanged(h, async () => {
      const r = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: ['203.0.113.0/26'] });
      assert.equal(r.status, 400);
    });
  }));

test('409 when two tenants claim overlapping prefixes; the tenant sees no other tenant in the answer', () =>
  withApi(async (h) => {
    await unchanged(h, async () => {
      // Inside globex's 203.0.113.128/25: the overlap is reported on globex's prefix.
      const r = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { token: h.tenants.acme!, body: { cidr: '203.0.113.192/26' } });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      const e = b(r).error!;
      assert.equal(e.code, 'conflict');
      assert.ok(e.issues!.every((i) => i.path === 'tenants/acme/prefixes/p2'), JSON.stringify(e.issues));
      assert.ok(!JSON.stringify(r.body).includes('globex'), `another tenant's name leaked: ${JSON.stringify(r.body)}`);
      // Enclosing globex's prefix: reported on acme's own prefix, with the reference blurred.
      const wide = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { token: h.tenants.acme!, body: { cidr: '203.0.113.0/24' } });
      assert.equal(wide.status, 409);
      assert.ok(!JSON.stringify(wide.body).includes('globex'), JSON.stringify(wide.body));
      assert.ok(!JSON.stringify(wide.body).includes('203.0.113.128/25'), JSON.stringify(wide.body));
    });
    // The operator sees everything.
    const op = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: '203.0.113.192/26' } });
    assert.equal(op.status, 409);
    assert.ok(JSON.stringify(op.body).includes('tenants/globex/prefixes/p0'), JSON.stringify(op.body));
  }));

test('409 for references another write could fix; the later write then succeeds', () =>
  withApi(async (h) => {
    await unchanged(h, async () => {
      const r = await h.call('PUT', '/v1/tenants/acme/routes/r2', { body: { prefix: '203.0.113.0/26', via: [{ tunnel: 'gre7' }] } });
      assert.equal(r.status, 409);
      assert.equal(b(r).error!.issues![0]!.code, 'unknown_tunnel');
      assert.equal(b(r).error!.issues![0]!.field, 'via.0.tunnel');
      const del = await h.call('DELETE', '/v1/tenants/acme/tunnels/gre1');
      assert.equal(del.status, 409, 'route r1 still uses gre1');
      const dos = await h.call('PUT', '/v1/dos/rules/x', { body: { match: { protocol: 'udp' }, action: 'drop', scope: { tenant: 'initech' } } });
      assert.equal(dos.status, 409);
      assert.equal(b(dos).error!.issues![0]!.code, 'unknown_tenant');
    });
    assert.equal((await h.call('PUT', '/v1/tenants/acme/tunnels/gre7', { body: { customerEndpoint: '198.51.100.207' } })).status, 200);
    assert.equal((await h.call('PUT', '/v1/tenants/acme/routes/r2', { body: { prefix: '203.0.113.0/26', via: [{ tunnel: 'gre7' }] } })).status, 200);
  }));

test('children of a missing parent: 404, nothing written', () =>
  withApi(async (h) => {
    await unchanged(h, async () => {
      assert.equal((await h.call('PUT', '/v1/tenants/initech/prefixes/p1', { body: { cidr: '203.0.113.0/26' } })).status, 404);
      assert.equal((await h.call('GET', '/v1/tenants/initech/prefixes')).status, 404);
      assert.equal((await h.call('PUT', '/v1/dcs/fra/servers/s1', { body: { uplink: 'eth0', addresses: ['192.0.2.40/28'] } })).status, 404);
      assert.equal((await h.call('GET', '/v1/tenants/globex/firewall')).status, 404);
      assert.equal((await h.call('POST', '/v1/tenants/globex/firewall/rules', { body: { id: 'a', direction: 'ingress', action: 'drop' } })).status, 404);
    });
  }));

test('tenants: create, the token hash survives a rename, delete takes the whole subtree in one revision', () =>
  withApi(async (h) => {
    const created = await h.call('PUT', '/v1/tenants/initech', { body: { name: 'Initech' } });
    assert.equal(created.status, 200);
    assert.deepEqual(created.body, { id: 'initech', revision: b(created).revision, name: 'Initech', status: 'active' });
    const token = (await h.call('POST', '/v1/tenants/initech/token')).body as { token: string };
    assert.equal((await h.call('GET', '/v1/tenants/initech', { token: token.token })).status, 200);
    const renamed = await h.call('PUT', '/v1/tenants/initech', { body: { name: 'Initech LLC', status: 'suspended' } });
    assert.equal(renamed.status, 200);
    assert.ok(!('tokenHash' in b(renamed)));
    assert.equal((await h.call('GET', '/v1/tenants/initech', { token: token.token })).status, 200, 'the token still works after a PUT without tokenHash');

    // The tenant builds its own objects with its token.
    const t = { token: token.token };
    assert.equal((await h.call('PUT', '/v1/tenants/initech/prefixes/p1', { ...t, body: { cidr: '2001:db8:c::/48' } })).status, 200);
    assert.equal((await h.call('PUT', '/v1/tenants/initech/tunnels/gre1', { ...t, body: { customerEndpoint: '198.51.100.220' } })).status, 200);
    assert.equal((await h.call('PUT', '/v1/tenants/initech/routes/r1', { ...t, body: { prefix: '2001:db8:c::/48', via: [{ tunnel: 'gre1' }] } })).status, 200);
    assert.equal((await h.call('PUT', '/v1/tenants/initech/firewall', { ...t, body: { default: { ingress: 'drop', egress: 'accept' } } })).status, 200);

    const before = await h.store.status();
    assert.ok(before.ok);
    const del = await h.call('DELETE', '/v1/tenants/initech');
    assert.equal(del.status, 200);
    const after = await h.store.status();
    assert.ok(after.ok);
    assert.equal(after.value.revision, before.value.revision + 1, 'one transaction');
    const left = await h.store.list('/tenants/initech');
    assert.ok(left.ok);
    assert.deepEqual(left.value.entries.map((e) => e.key), [], 'nothing of the tenant is left');
    assert.equal((await h.call('GET', '/v1/tenants', { token: token.token })).status, 401, "a deleted tenant's token is unknown");
  }));

test('a new token replaces the old one at once', () =>
  withApi(async (h) => {
    const old = h.tenants.acme!;
    assert.equal((await h.call('GET', '/v1/tenants/acme', { token: old })).status, 200);
    const r = await h.call('POST', '/v1/tenants/acme/token');
    assert.equal(r.status, 200);
    const fresh = (r.body as { token: string }).token;
    assert.match(fresh, /^ae_[A-Za-z0-9_-]{43}$/);
    assert.equal((await h.call('GET', '/v1/tenants/acme', { token: old })).status, 401);
    assert.equal((await h.call('GET', '/v1/tenants', { token: old })).status, 401);
    assert.equal((await h.call('GET', '/v1/tenants/acme', { token: fresh })).status, 200);
    assert.equal((await h.call('GET', '/v1/tenants', { token: fresh })).status, 200, 'recognised on a URL without the tenant too');
    assert.equal((await h.call('POST', '/v1/tenants/initech/token')).status, 404);
  }));

test('data centers: delete takes the servers with it; one that egress still uses is a 409', () =>
  withApi(async (h) => {
    await unchanged(h, async () => {
      const r = await h.call('DELETE', '/v1/dcs/ams');
      assert.equal(r.status, 409);
      assert.ok(b(r).error!.issues!.some((i) => i.code === 'unknown_dc'), JSON.stringify(r.body));
    });
    assert.equal((await h.call('PUT', '/v1/dcs/fra', { body: { name: 'Frankfurt', backbone: ['192.0.2.9/30'] } })).status, 200);
    assert.equal((await h.call('PUT', '/v1/dcs/fra/servers/s1', { body: { uplink: 'eth0', addresses: ['192.0.2.40/28'] } })).status, 200);
    assert.equal((await h.call('DELETE', '/v1/dcs/fra')).status, 200);
    assert.equal((await h.call('GET', '/v1/dcs/fra/servers/s1')).status, 404);
  }));

test('anycast: empty at revision 0 on a fresh store, then replaced with If-Match', async () => {
  const h = await apiHarness({ seed: false });
  try {
    const empty = await h.call('GET', '/v1/anycast');
    assert.deepEqual(empty.body, { id: 'anycast', revision: 0, ranges: [], egressRanges: [], greEndpoints: [], services: [] });
    const body = { ranges: ['198.51.100.0/28'], greEndpoints: ['198.51.100.1'] };
    const put = await h.call('PUT', '/v1/anycast', { body, headers: { 'if-match': '0' } });
    assert.equal(put.status, 200);
    await unchanged(h, async () => {
      const bad = await h.call('PUT', '/v1/anycast', { body: { ranges: ['198.51.100.0/28'], greEndpoints: ['192.0.2.1'] } });
      assert.equal(bad.status, 400);
      assert.equal(b(bad).error!.issues![0]!.field, 'greEndpoints.0');
    });
  } finally {
    await h.cleanup();
  }
});

test('firewall rules: append, insert before, replace in place, delete; each a compare-and-set on the firewall', () =>
  withApi(async (h) => {
    const ids = async (): Promise<string[]> => ((await h.call('GET', '/v1/tenants/acme/firewall/rules')).body as { items: { id: string }[] }).items.map((i) => i.id);
    assert.deepEqual(await ids(), ['ftp', 'ping']);
    const fw = await h.call('GET', '/v1/tenants/acme/firewall');
    const rev = b(fw).revision as number;

    const ssh = { id: 'ssh', direction: 'ingress', protocol: 'tcp', dport: [22], action: 'accept' };
    const appended = await h.call('POST', '/v1/tenants/acme/firewall/rules', { token: h.tenants.acme!, body: ssh, headers: { 'if-match': String(rev) } });
    assert.equal(appended.status, 201, JSON.stringify(appended.body));
    assert.deepEqual(await ids(), ['ftp', 'ping', 'ssh']);
    const rev2 = b(appended).revision as number;
    assert.ok(rev2 > rev);

    await unchanged(h, async () => {
      const stale = await h.call('POST', '/v1/tenants/acme/firewall/rules', { body: { ...ssh, id: 'ssh2' }, headers: { 'if-match': String(rev) } });
      assert.equal(stale.status, 409);
      assert.equal(b(stale).error!.code, 'cas_failed');
      assert.equal(b(stale).error!.currentRevision, rev2);
      const dup = await h.call('POST', '/v1/tenants/acme/firewall/rules', { body: ssh });
      assert.equal(dup.status, 409);
      const missing = await h.call('POST', '/v1/tenants/acme/firewall/rules?before=nope', { body: { ...ssh, id: 'ssh2' } });
      assert.equal(missing.status, 409);
      assert.equal(b(missing).error!.issues![0]!.field, 'before');
      const bad = await h.call('POST', '/v1/tenants/acme/firewall/rules?before=ping', { body: { id: 'web', direction: 'ingress', dport: [80], action: 'accept', colour: 1 } });
      assert.equal(bad.status, 400);
      assert.deepEqual(b(bad).error!.issues!.map((i) => i.field).sort(), ['rules.1.colour', 'rules.1.dport'], 'located at the place it would take');
      const exists = await h.call('PUT', '/v1/tenants/acme/firewall/rules/ssh', { body: ssh, headers: { 'if-match': '0' } });
      assert.equal(exists.status, 409);
    });

    const inserted = await h.call('POST', '/v1/tenants/acme/firewall/rules?before=ping', { body: { id: 'web', direction: 'ingress', protocol: 'tcp', dport: [80, 443], action: 'accept' } });
    assert.equal(inserted.status, 201);
    assert.deepEqual(await ids(), ['ftp', 'web', 'ping', 'ssh']);

    const replaced = await h.call('PUT', '/v1/tenants/acme/firewall/rules/ftp', { body: { direction: 'ingress', protocol: 'tcp', dport: [21], action: 'drop' } });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    assert.deepEqual(await ids(), ['ftp', 'web', 'ping', 'ssh'], 'replaced in place');
    assert.equal(b(await h.call('GET', '/v1/tenants/acme/firewall/rules/ftp')).action, 'drop');
    const created = await h.call('PUT', '/v1/tenants/acme/firewall/rules/dns', { body: { direction: 'egress', protocol: 'udp', dport: [53], action: 'accept' }, headers: { 'if-match': '0' } });
    assert.equal(created.status, 200);
    assert.deepEqual(await ids(), ['ftp', 'web', 'ping', 'ssh', 'dns'], 'a new rule goes last');

    const deleted = await h.call('DELETE', '/v1/tenants/acme/firewall/rules/web');
    assert.equal(deleted.status, 200);
    assert.equal(b(deleted).id, 'web');
    assert.deepEqual(await ids(), ['ftp', 'ping', 'ssh', 'dns']);
    assert.equal((await h.call('DELETE', '/v1/tenants/acme/firewall/rules/web')).status, 404);
    assert.equal((await h.call('GET', '/v1/tenants/acme/firewall/rules/web')).status, 404);
  }));

test('concurrent rule appends without If-Match are all kept (retried on a fresh read, never lost)', () =>
  withApi(async (h) => {
    const rules = Array.from({ length: 8 }, (_, i) => ({ id: `r${i}`, direction: 'egress', protocol: 'tcp', dport: [1000 + i], action: 'accept' }));
    const results = await Promise.all(rules.map((body) => h.call('POST', '/v1/tenants/acme/firewall/rules', { body })));
    for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
    const ids = ((await h.call('GET', '/v1/tenants/acme/firewall/rules')).body as { items: { id: string }[] }).items.map((i) => i.id);
    for (const r of rules) assert.ok(ids.includes(r.id), `${r.id} was lost`);
  }));
