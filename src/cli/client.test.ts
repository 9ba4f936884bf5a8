// The HTTP client against a scripted server on loopback: what it sends, how each kind of failure
// comes back as a value, and how failures are worded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { createClient, formatApiError } from './client.ts';

const TOKEN = 'ae_' + 'A'.repeat(43);

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let base: string;
const seen: Seen[] = [];
/** What the scripted server answers next. */
let reply: (res: ServerResponse) => void = (res) => res.end();

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      reply(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function json(status: number, value: unknown, headers: Record<string, string> = {}): (res: ServerResponse) => void {
  return (res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(value));
  };
}

test('sends the bearer token, JSON body, If-Match and query; parses the answer with its schema', async () => {
  reply = json(200, { id: 'p1', revision: 8, cidr: '203.0.113.0/25' });
  const c = createClient({ baseUrl: base + '/', token: TOKEN });
  const r = await c.request('PUT', '/v1/tenants/acme/prefixes/p1', z.object({ id: z.string(), revision: z.number() }), {
    body: { cidr: '203.0.113.0/25' },
    ifMatch: 0,
    query: { before: 'ftp' },
  });
  assert.deepEqual(r, { ok: true, value: { id: 'p1', revision: 8 } });
  const s = seen.at(-1)!;
  assert.equal(s.method, 'PUT');
  assert.equal(s.url, '/v1/tenants/acme/prefixes/p1?before=ftp');
  assert.equal(s.headers.authorization, `Bearer ${TOKEN}`);
  assert.equal(s.headers['content-type'], 'application/json');
  assert.equal(s.headers['if-match'], '0');
  assert.deepEqual(JSON.parse(s.body), { cidr: '203.0.113.0/25' });
});

test('an API error keeps status, code, message and field issues', async () => {
  const issues = [{ path: 'tenants/acme/prefixes/p1', field: 'cidr', code: 'not_canonical', message: 'use 203.0.113.0/25' }];
  reply = json(400, { error: { code: 'invalid', message: 'the config is invalid', issues } });
  const r = await createClient({ baseUrl: base, token: TOKEN }).diffConfig({});
  assert.ok(!r.ok);
  assert.equal(r.error.status, 400);
  assert.equal(r.error.code, 'invalid');
  assert.deepEqual(r.error.issues, issues);
  assert.equal(
    formatApiError(r.error),
    'POST /v1/config/diff: the config is invalid (400 invalid)\n  tenants/acme/prefixes/p1.cidr: use 203.0.113.0/25\n',
  );
});

test('401, 403 and 429 say what to do', async () => {
  const c = createClient({ baseUrl: base, token: TOKEN, sleep: async () => {} });
  reply = json(401, { error: { code: 'unauthorized', message: 'unknown token' } });
  const a = await c.servers();
  assert.ok(!a.ok);
  assert.match(formatApiError(a.error), /^GET \/v1\/servers: unknown token \(401\); pass a valid token with --token-file FILE or ANYEDGE_TOKEN\n$/);
  reply = json(403, { error: { code: 'forbidden', message: 'operators only' } });
  const b = await c.servers();
  assert.ok(!b.ok);
  assert.match(formatApiError(b.error), /this needs an operator token/);
  reply = json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '3' });
  const d = await c.servers();
  assert.ok(!d.ok);
  assert.equal(d.error.retryAfterSeconds, 3);
  assert.match(formatApiError(d.error), /try again in 3 s/);
});

test('a 429 asking for a short wait is waited out and retried; a long one is returned', async () => {
  const slept: number[] = [];
  const c = createClient({ baseUrl: base, token: TOKEN, sleep: async (ms) => void slept.push(ms) });
  let n = 0;
  reply = (res) => {
    n++;
    if (n <= 2) json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': String(n) })(res);
    else json(200, { items: [] })(res);
  };
  const r = await c.servers();
  assert.deepEqual(r, { ok: true, value: [] });
  assert.equal(n, 3);
  assert.deepEqual(slept, [1000, 2000]);

  n = 0;
  slept.length = 0;
  reply = (res) => {
    n++;
    json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '60' })(res);
  };
  const long = await c.servers();
  assert.ok(!long.ok);
  assert.equal(long.error.status, 429);
  assert.equal(n, 1, 'not retried: the caller decides about a minute');
  assert.deepEqual(slept, []);

  n = 0;
  reply = (res) => {
    n++;
    json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '1' })(res);
  };
  const persistent = await c.servers();
  assert.ok(!persistent.ok);
  assert.equal(n, 4, 'the first try and three retries');
});

test('an answer that is not the API\'s shape is an error naming where it differs', async () => {
  const c = createClient({ baseUrl: base, token: TOKEN });
  reply = json(200, { items: [{ dc: 'ams', server: 's1', status: null, storeRevision: 'x', lag: { revisions: 0, seconds: 0 }, stale: false }] });
  const r = await c.servers();
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'bad_response');
  assert.match(r.error.message, /at items\.0\.storeRevision/);
  reply = (res) => {
    res.writeHead(502, { 'content-type': 'text/html' });
    res.end('<h1>Bad gateway</h1>');
  };
  const p = await c.servers();
  assert.ok(!p.ok);
  assert.equal(p.error.status, 502);
  assert.equal(p.error.code, 'http_error');
  assert.match(p.error.message, /^HTTP 502 Bad Gateway: <h1>Bad gateway<\/h1>$/);
});

test('nobody listening: status 0, and the message names the URL and how to start the API', async () => {
  // A port that was just free: bind, note it, close.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const r = await createClient({ baseUrl: `http://127.0.0.1:${port}`, token: TOKEN }).servers();
  assert.ok(!r.ok);
  assert.equal(r.error.status, 0);
  assert.equal(r.error.code, 'unreachable');
  assert.equal(
    formatApiError(r.error),
    `cannot reach the anyedge API at http://127.0.0.1:${port} (connection refused); start it with \`anyedge api\`, or point to it with --api URL (or ANYEDGE_API)\n`,
  );
});

test('no answer in time: a timeout error, not a hang', async () => {
  reply = () => {}; // never answers
  const r = await createClient({ baseUrl: base, token: TOKEN, timeoutMs: 200 }).servers();
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'timeout');
  assert.equal(r.error.status, 0);
  server.closeAllConnections();
});
