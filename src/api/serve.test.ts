/**
 * The API over a real socket on 127.0.0.1 (port 0: any free port): requests through Node's
 * fetch, the body limit judged from a real Content-Length, per-address limiting of callers
 * without a token, and a clean close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { apiHarness } from './harness.ts';
import { serveApi } from './serve.ts';

test('serves the API on a free port and closes cleanly', async () => {
  const h = await apiHarness({ api: { bodyLimitBytes: 4096, rateLimit: { perSecond: 1000, burst: 1000 } } });
  const served = await serveApi(h.app, { host: '127.0.0.1', port: 0 });
  try {
    assert.ok(served.port > 0);
    assert.equal(served.url, `http://127.0.0.1:${served.port}`);
    const health = await fetch(`${served.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok', revision: 1 });

    const auth = { authorization: `Bearer ${h.tenants.acme}` };
    const put = await fetch(`${served.url}/v1/tenants/acme/prefixes/p2`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ cidr: '203.0.113.0/26' }) });
    assert.equal(put.status, 200, await put.clone().text());
    assert.equal(((await put.json()) as { id: string }).id, 'p2');
    assert.equal((await fetch(`${served.url}/v1/tenants/globex`, { headers: auth })).status, 404);

    const big = await fetch(`${served.url}/v1/tenants/acme/prefixes/p3`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ cidr: '203.0.113.64/26', description: 'x'.repeat(5000) }) });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'payload_too_large');
    assert.equal((await fetch(`${served.url}/v1/tenants/acme/prefixes/p3`, { headers: auth })).status, 404, 'nothing written');
  } finally {
    await served.close();
    await h.cleanup();
  }
  await assert.rejects(fetch(`${served.url}/healthz`), 'closed');
});

test('a chunked body without Content-Length is limited while it streams', async () => {
  const h = await apiHarness({ api: { bodyLimitBytes: 1024 } });
  const served = await serveApi(h.app, { host: '127.0.0.1', port: 0 });
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${served.url}/v1/config/diff`, { method: 'POST', headers: { authorization: `Bearer ${h.operator}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write('{"config":{}}'.padEnd(512, ' '));
      req.end();
    });
    assert.equal(status, 413);
  } finally {
    await served.close();
    await h.cleanup();
  }
});

test('callers without a token are limited by their address', async () => {
  const h = await apiHarness({ api: { rateLimit: { perSecond: 0.01, burst: 3 } } });
  const served = await serveApi(h.app, { host: '127.0.0.1', port: 0 });
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await fetch(`${served.url}/v1/tenants`)).status);
    assert.deepEqual(statuses, [401, 401, 401, 429, 429]);
    const limited = await fetch(`${served.url}/healthz`);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    assert.equal((await fetch(`${served.url}/v1/tenants`, { headers: { authorization: `Bearer ${h.operator}` } })).status, 200, 'a token has its own bucket');
  } finally {
    await served.close();
    await h.cleanup();
  }
});

test('a taken port is an error naming the address', async () => {
  const h = await apiHarness({ seed: false });
  const first = await serveApi(h.app, { host: '127.0.0.1', port: 0 });
  try {
    await assert.rejects(serveApi(h.app, { host: '127.0.0.1', port: first.port }), new RegExp(`listen on 127\\.0\\.0\\.1:${first.port}: .*EADDRINUSE`));
  } finally {
    await first.close();
    await h.cleanup();
  }
});
