/**
 * The authorization matrix: EVERY route of the table, walked from ROUTES (a new route is covered
 * without editing this file), called with no token, an unknown token, a malformed header, tenant
 * B's token on tenant A's objects, tenant A's own token and the operator's token.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ROUTES } from './routes/index.ts';
import type { RouteSpec } from './route.ts';
import { apiHarness, type ApiHarness } from './harness.ts';
import { addSpares, samplePath, sampleBody } from './samples.ts';
import { generateToken, hashToken } from './tokens.ts';

async function spared(): Promise<ApiHarness> {
  const h = await apiHarness();
  await addSpares(h);
  return h;
}

/** Every key and value of the store, for "nothing was written" comparisons. */
async function snapshot(h: ApiHarness): Promise<string> {
  const r = await h.store.list('/');
  assert.ok(r.ok);
  return JSON.stringify(r.value);
}

function assertErrorShape(body: unknown, what: string): void {
  const e = (body as { error?: { code?: unknown; message?: unknown } }).error;
  assert.ok(e && typeof e.code === 'string' && typeof e.message === 'string', `${what}: not the error shape: ${JSON.stringify(body)}`);
}

function name(spec: RouteSpec): string {
  return `${spec.method} ${spec.path}`;
}

const call = (h: ApiHarness, spec: RouteSpec, token: string | null, headers: Record<string, string> = {}) => {
  const body = sampleBody(spec);
  return h.call(spec.method, samplePath(spec), { token, ...(body !== undefined ? { body } : {}), headers });
};

test('the table has routes of every scope, and every route has a sample request', () => {
  assert.ok(ROUTES.some((r) => r.scope === 'public') && ROUTES.some((r) => r.scope === 'tenant') && ROUTES.some((r) => r.scope === 'operator'));
  for (const spec of ROUTES) {
    samplePath(spec);
    sampleBody(spec);
  }
});

for (const spec of ROUTES.filter((r) => r.scope === 'public')) {
  test(`public: ${name(spec)} needs no token`, async () => {
    const h = await apiHarness();
    try {
      const r = await call(h, spec, null);
      assert.equal(r.status, spec.reply.status, JSON.stringify(r.body));
    } finally {
      await h.cleanup();
    }
  });
}

for (const spec of ROUTES.filter((r) => r.scope !== 'public')) {
  test(`denied and allowed: ${name(spec)}`, async () => {
    const h = await spared();
    try {
      const before = await snapshot(h);
      const denied: [string, string | null, Record<string, string>, number][] = [
        ['no token', null, {}, 401],
        ['unknown token', generateToken().token, {}, 401],
        ['the hash of a token instead of the token', hashToken(h.tenants.acme!), {}, 401],
      ];
      for (const [what, token, headers, status] of denied) {
        const r = await call(h, spec, token, headers);
        assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
        assertErrorShape(r.body, what);
        assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/, what);
      }
      const basic = await h.app.request(samplePath(spec), { method: spec.method, headers: { authorization: `Basic ${Buffer.from('operator:' + h.operator).toString('base64')}` } });
      assert.equal(basic.status, 401, 'Basic auth with the operator token as password');

      // Tenant B (globex) on tenant A's (acme's) objects.
      const other = await call(h, spec, h.tenants.globex!);
      if (spec.scope === 'operator') {
        assert.equal(other.status, 403, `tenant token on an operator route: ${JSON.stringify(other.body)}`);
        assert.equal((other.body as { error: { code: string } }).error.code, 'forbidden');
      } else if (spec.params?.t) {
        assert.equal(other.status, 404, `tenant B on tenant A's object: ${JSON.stringify(other.body)}`);
        assert.equal((other.body as { error: { message: string } }).error.message, 'no tenant acme', 'the same answer as for a tenant that does not exist');
      } else {
        assert.equal(other.status, 200, JSON.stringify(other.body));
        assert.deepEqual((other.body as { items: { id: string }[] }).items.map((i) => i.id), ['globex'], 'a tenant lists only itself');
      }
      if (other.status >= 400) assertErrorShape(other.body, 'tenant B');
      assert.equal(await snapshot(h), before, 'a denied request wrote nothing');

      // Tenant A's own token: operator routes stay closed, its own objects are open.
      const own = await call(h, spec, h.tenants.acme!);
      if (spec.scope === 'operator') assert.equal(own.status, 403, JSON.stringify(own.body));
      else assert.equal(own.status, spec.reply.status, `own tenant: ${JSON.stringify(own.body)}`);
    } finally {
      await h.cleanup();
    }
  });

  test(`operator: ${name(spec)}`, async () => {
    const h = await spared();
    try {
      const r = await call(h, spec, h.operator);
      assert.equal(r.status, spec.reply.status, JSON.stringify(r.body));
    } finally {
      await h.cleanup();
    }
  });
}

test('tokens are stored hashed: no token text anywhere in the store, the hash where it belongs', async () => {
  const h = await apiHarness();
  try {
    const issued = await h.call('POST', '/v1/tenants/globex/token');
    assert.equal(issued.status, 200);
    const fresh = (issued.body as { token: string }).token;
    const dump = await snapshot(h);
    for (const token of [h.operator, h.tenants.acme!, fresh]) assert.ok(!dump.includes(token), 'a token is in the store');
    assert.ok(!dump.includes('ae_'), 'nothing token-like is in the store');
    const globex = await h.store.get('/tenants/globex');
    assert.ok(globex.ok);
    assert.equal((globex.value?.value as { tokenHash: string }).tokenHash, hashToken(fresh));
    // And the API never hands a hash back.
    for (const path of ['/v1/tenants', '/v1/tenants/globex', '/v1/config']) {
      const r = await h.call('GET', path);
      assert.ok(!JSON.stringify(r.body).includes('sha256:'), `${path} returned a token hash`);
    }
  } finally {
    await h.cleanup();
  }
});
