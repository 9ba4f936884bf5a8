/**
 * The API's limits and request checks end to end through the app: per-token and per-address rate
 * limits (429 with Retry-After), the body limit (413), JSON only (415), unparseable or absurd
 * bodies (400), and the error shape of the framework-level answers (404, 405).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiHarness, type ApiHarness } from './harness.ts';

type ErrBody = { error: { code: string; message: string } };

async function snapshot(h: ApiHarness): Promise<string> {
  const r = await h.store.list('/');
  assert.ok(r.ok);
  return JSON.stringify(r.value);
}

test('rate limit: per token, per address without one, 429 with Retry-After, refilled with time', async () => {
  const clock = { t: 0 };
  const h = await apiHarness({ api: { rateLimit: { perSecond: 1, burst: 2 }, now: () => clock.t } });
  try {
    const op = (): ReturnType<ApiHarness['call']> => h.call('GET', '/v1/tenants');
    assert.equal((await op()).status, 200);
    assert.equal((await op()).status, 200);
    const limited = await op();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '1');
    assert.equal((limited.body as ErrBody).error.code, 'rate_limited');

    // Another token has its own bucket; a limited write writes nothing.
    assert.equal((await h.call('GET', '/v1/tenants/acme', { token: h.tenants.acme! })).status, 200);
    const before = await snapshot(h);
    assert.equal((await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: '203.0.113.0/26' } })).status, 429);
    assert.equal(await snapshot(h), before);

    // Without a (known) token: one bucket per remote address, public routes included.
    assert.equal((await h.call('GET', '/v1/tenants', { token: null })).status, 401);
    assert.equal((await h.call('GET', '/healthz', { token: null })).status, 200);
    assert.equal((await h.call('GET', '/healthz', { token: null })).status, 429, 'the address has spent its burst');
    assert.equal((await h.call('GET', '/v1/tenants', { token: 'ae_' + 'x'.repeat(43) })).status, 429, 'an unknown token counts against the address');

    clock.t += 1000;
    assert.equal((await op()).status, 200, 'one request back after a second');
    assert.equal((await op()).status, 429);
  } finally {
    await h.cleanup();
  }
});

test('body limit: 413 above it, before parsing; at the limit the body is read', async () => {
  const h = await apiHarness({ api: { bodyLimitBytes: 1024 } });
  try {
    const before = await snapshot(h);
    const big = JSON.stringify({ cidr: '203.0.113.0/26', description: 'x'.repeat(2000) });
    const r = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: big });
    assert.equal(r.status, 413);
    assert.equal((r.body as ErrBody).error.code, 'payload_too_large');
    const junk = await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: '{'.repeat(5000) });
    assert.equal(junk.status, 413, 'the size is checked before the JSON');
    assert.equal(await snapshot(h), before);
    const fits = JSON.stringify({ cidr: '203.0.113.0/26', description: 'y'.repeat(200) });
    const padded = fits + ' '.repeat(1024 - Buffer.byteLength(fits));
    assert.equal(Buffer.byteLength(padded), 1024);
    assert.equal((await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: padded })).status, 200);
  } finally {
    await h.cleanup();
  }
});

test('the default body limit is 1 MiB', async () => {
  const h = await apiHarness();
  try {
    const r = await h.call('POST', '/v1/config/diff', { body: JSON.stringify({ config: {} }) + ' '.repeat((1 << 20) + 1) });
    assert.equal(r.status, 413);
  } finally {
    await h.cleanup();
  }
});

test('415 for a body that is not JSON; 400 for an unparseable, empty or absurdly nested one', async () => {
  const h = await apiHarness();
  try {
    const before = await snapshot(h);
    const put = (body: string, headers: Record<string, string> = {}) => h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body, headers });
    assert.equal((await put('{"cidr":"203.0.113.0/26"}', { 'content-type': 'text/plain' })).status, 415);
    assert.equal((await put('cidr=203.0.113.0/26', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
    for (const text of ['{"cidr":', '', '{"cidr":"203.0.113.0/26"}}', '\u0000', '['.repeat(100) + ']'.repeat(100)]) {
      const r = await put(text);
      assert.equal(r.status, 400, JSON.stringify(text));
      assert.equal((r.body as ErrBody).error.code, 'invalid_json');
    }
    assert.equal(await snapshot(h), before);
  } finally {
    await h.cleanup();
  }
});

test('a body, a query parameter or If-Match where the route takes none is a 400', async () => {
  const h = await apiHarness();
  try {
    const before = await snapshot(h);
    assert.equal((await h.call('DELETE', '/v1/tenants/acme/prefixes/p1', { body: { really: true } })).status, 400);
    assert.equal((await h.call('POST', '/v1/tenants/acme/token', { body: { token: 'mine' } })).status, 400);
    assert.equal((await h.call('GET', '/v1/tenants?all=1')).status, 400);
    assert.equal((await h.call('GET', '/v1/tenants', { headers: { 'if-match': '1' } })).status, 400);
    assert.equal((await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: '203.0.113.0/26' }, headers: { 'if-match': 'latest' } })).status, 400);
    assert.equal(await snapshot(h), before);
  } finally {
    await h.cleanup();
  }
});

test('unknown routes are 404 and known paths with another method 405 with Allow, in the error shape', async () => {
  const h = await apiHarness();
  try {
    const nf = await h.call('GET', '/v1/nothing');
    assert.equal(nf.status, 404);
    assert.equal((nf.body as ErrBody).error.code, 'not_found');
    const trailing = await h.call('GET', '/v1/tenants/');
    assert.equal(trailing.status, 404);
    const na = await h.call('PATCH', '/v1/tenants/acme', { body: { name: 'x' } });
    assert.equal(na.status, 405);
    assert.equal((na.body as ErrBody).error.code, 'method_not_allowed');
    assert.equal(na.headers.get('allow'), 'GET, PUT, DELETE, HEAD');
    const head = await h.app.request('/v1/tenants', { method: 'HEAD', headers: { authorization: `Bearer ${h.operator}` } });
    assert.equal(head.status, 200, 'HEAD answers as GET');
  } finally {
    await h.cleanup();
  }
});

test('prototype names in queries, fields, ids and expect are plain unknown names', async () => {
  const h = await apiHarness();
  try {
    const before = await snapshot(h);
    const cases: [string, string, string | undefined][] = [
      ['GET', '/v1/tenants?__proto__=x', undefined],
      ['GET', '/v1/tenants?constructor=x&constructor=y', undefined],
      ['PUT', '/v1/tenants/acme/prefixes/p2', '{"__proto__":{"cidr":"203.0.113.0/26"},"cidr":"203.0.113.0/26"}'],
      ['PUT', '/v1/config', '{"config":{"tenants":{"__proto__":{"name":"x"}}}}'],
      ['PUT', '/v1/config', '{"config":{},"expect":{"__proto__":1}}'],
      ['POST', '/v1/config/diff', '{"config":{},"expect":{}}'],
    ];
    for (const [method, path, body] of cases) {
      const r = await h.call(method, path, body === undefined ? {} : { body });
      assert.equal(r.status, 400, `${method} ${path} ${body}: ${JSON.stringify(r.body)}`);
      assert.equal((r.body as { error: { issues: unknown[] } }).error.issues.length, 1, JSON.stringify(r.body));
    }
    assert.equal(await snapshot(h), before);
    assert.equal(({} as Record<string, unknown>).cidr, undefined, 'nothing polluted Object.prototype');
  } finally {
    await h.cleanup();
  }
});
