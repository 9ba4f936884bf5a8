/**
 * The OpenAPI document against the route table and the real API: every route is in it with its
 * method, parameters and schemas; every reference resolves; the component schemas accept the
 * Acme example's objects and refuse broken ones; and every sample request's real reply conforms
 * to the schema the document gives for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isId } from '../model/id.ts';
import { rng } from '../testkit/random.ts';
import { ROUTES } from './routes/index.ts';
import { apiHarness, acmeDocument, type ApiHarness } from './harness.ts';
import { checkSchema } from './jsonschema.ts';
import { buildOpenApi, errorStatuses, ID_PATTERN } from './openapi.ts';
import { addSpares, sampleBody, samplePath } from './samples.ts';

type Json = Record<string, unknown>;
const doc = buildOpenApi(ROUTES, 'test') as Json & { paths: Record<string, Record<string, Json>>; components: { schemas: Record<string, Json> } };

function schemaCheck(name: string, value: unknown): string[] {
  return checkSchema({ $ref: `#/components/schemas/${name}` }, value, doc);
}

test('the document is OpenAPI 3.1 and holds exactly the routes of the table', () => {
  assert.equal(doc.openapi, '3.1.0');
  const inTable = new Set(ROUTES.map((r) => `${r.method.toLowerCase()} ${r.path}`));
  const inDoc = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`)));
  assert.deepEqual([...inDoc].sort(), [...inTable].sort());
  const ids = ROUTES.map((r) => r.operationId);
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
});

test('every operation declares its parameters, body, security and responses as the table says', () => {
  for (const r of ROUTES) {
    const op = doc.paths[r.path]![r.method.toLowerCase()] as Json & { parameters?: Json[]; responses: Record<string, Json>; requestBody?: Json; security: unknown[] };
    const where = `${r.method} ${r.path}`;
    const templated = [...r.path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1]).sort();
    const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
    assert.deepEqual(declared, templated, `${where}: path parameters`);
    assert.deepEqual(Object.keys(r.params ?? {}).sort(), templated, `${where}: the table checks every path parameter`);
    assert.deepEqual((op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name).sort(), Object.keys(r.query ?? {}).sort(), `${where}: query`);
    assert.equal((op.parameters ?? []).some((p) => p.name === 'If-Match'), r.ifMatch === true, `${where}: If-Match`);
    assert.equal(op.requestBody !== undefined, r.body !== undefined, `${where}: body`);
    assert.deepEqual(op.security, r.scope === 'public' ? [] : [{ bearer: [] }], `${where}: security`);
    const statuses = Object.keys(op.responses).map(Number).sort((a, b) => a - b);
    assert.deepEqual(statuses, [r.reply.status, ...errorStatuses(r)].sort((a, b) => a - b), `${where}: responses`);
  }
});

test('every $ref in the document resolves', () => {
  const refs = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === '$ref') refs.add(x as string);
        else walk(x);
      }
  };
  walk(doc);
  assert.ok(refs.size > 20);
  for (const ref of refs) {
    assert.match(ref, /^#\/components\/schemas\/[A-Za-z]+$/);
    assert.ok(doc.components.schemas[ref.split('/').pop()!], `${ref} does not resolve`);
  }
});

test('the path id pattern agrees with the model on a corpus of ids and near-ids', () => {
  const re = new RegExp(ID_PATTERN, 'u');
  const next = rng(20301);
  const alphabet = 'abz09-_A.:/ é\u0000';
  const samples = ['a', '0', '-a', 'a-', 'a'.repeat(32), 'a'.repeat(33), 'constructor', '__proto__', ''];
  for (let i = 0; i < 5000; i++) {
    const len = Math.floor(next() * 36);
    let s = '';
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(next() * alphabet.length)];
    samples.push(s);
  }
  for (const s of samples) assert.equal(re.test(s), isId(s), JSON.stringify(s));
});

test("the component schemas accept the Acme example's objects", () => {
  const acme = acmeDocument() as Json & { tenants: Record<string, Json & { prefixes: Json; tunnels: Json; routes: Json; firewall: Json & { rules: Json[] } }>; dcs: Record<string, Json & { servers: Json }>; dos: { rules: Json }; egress: { pools: Json } };
  const { prefixes, tunnels, routes, firewall, ...tenant } = acme.tenants.acme!;
  const { servers, ...dc } = acme.dcs.ams!;
  const cases: [string, unknown][] = [
    ['ConfigDocument', acme],
    ['Tenant', tenant],
    ['Prefix', prefixes.p1],
    ['Tunnel', tunnels.gre1],
    ['Tunnel', acme.tenants.globex!.tunnels.gre1],
    ['Route', routes.r1],
    ['Firewall', firewall],
    ['FirewallRule', firewall.rules[0]],
    ['FirewallRule', firewall.rules[1]],
    ['Anycast', acme.anycast],
    ['Dc', dc],
    ['Server', servers.s1],
    ['DosRule', acme.dos.rules.chargen],
    ['EgressPool', acme.egress.pools['nl-trusted']],
    ['ConfigApplyRequest', { config: acme, expect: { '/tenants/acme': 3 } }],
  ];
  for (const [name, value] of cases) assert.deepEqual(schemaCheck(name, value), [], `${name}: ${JSON.stringify(value)}`);
});

test('and refuse broken ones, so the check above can fail', () => {
  const cases: [string, unknown][] = [
    ['Prefix', { cidr: '203.0.113.0/25', colour: 'red' }],
    ['Tunnel', { customerEndpoint: '198.51.100.200', mtu: 'big' }],
    ['Tunnel', { customerEndpoint: '198.51.100.200', mtu: 100 }],
    ['Route', { prefix: '203.0.113.0/25', via: [] }],
    ['Firewall', { rules: [] }],
    ['Tenant', { name: 'x', status: 'gone' }],
    ['Tenant', { name: 'x', tokenHash: 'ae_secret' }],
    ['ConfigDocument', { tenants: { acme: { name: 'A', prefix: {} } } }],
    ['ConfigDocument', { extras: {} }],
    ['PrefixObject', { cidr: '203.0.113.0/25' }],
    ['Error', { error: { message: 'no code' } }],
  ];
  for (const [name, value] of cases) assert.notDeepEqual(schemaCheck(name, value), [], `${name} accepted ${JSON.stringify(value)}`);
});

async function spared(): Promise<ApiHarness> {
  const h = await apiHarness();
  await addSpares(h);
  return h;
}

test('every route\'s sample request answers with a body its documented schema accepts', async () => {
  // Reads first on one store, then each write on a fresh one, so every reply is a success.
  const h = await spared();
  try {
    assert.equal(schemaCheck('ServerReport', { dc: 'ams', server: 's1', status: null, configured: true, storeRevision: 1, lag: { revisions: 0, seconds: 0 }, stale: true }).length, 0);
    assert.ok((await h.store.put('/status/ams/s1', { appliedRevision: 1, seenRevision: 1, store: { connected: true, since: '2030-01-01T00:00:00Z' }, startedAt: '2030-01-01T00:00:00Z', updatedAt: '2030-01-01T00:00:00Z', version: '0.1.0' })).ok);
    for (const r of ROUTES.filter((x) => x.method === 'GET')) {
      const res = await h.call('GET', samplePath(r));
      assert.equal(res.status, r.reply.status, `${r.path}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(schemaCheck(r.reply.schema, res.body), [], `GET ${r.path} → ${r.reply.schema}: ${JSON.stringify(res.body).slice(0, 300)}`);
    }
  } finally {
    await h.cleanup();
  }
  for (const r of ROUTES.filter((x) => x.method !== 'GET')) {
    const w = await spared();
    try {
      const body = sampleBody(r);
      const res = await w.call(r.method, samplePath(r), body === undefined ? {} : { body });
      assert.equal(res.status, r.reply.status, `${r.method} ${r.path}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(schemaCheck(r.reply.schema, res.body), [], `${r.method} ${r.path} → ${r.reply.schema}`);
      if (body !== undefined && r.body) assert.deepEqual(schemaCheck(r.body, body), [], `the sample body of ${r.method} ${r.path} is a valid ${r.body}`);
    } finally {
      await w.cleanup();
    }
  }
});

test('error replies conform to the Error schema', async () => {
  const h = await apiHarness();
  try {
    const replies = [
      await h.call('GET', '/v1/tenants', { token: null }),
      await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: 'x', y: 1 } }),
      await h.call('PUT', '/v1/tenants/acme/prefixes/p2', { body: { cidr: '203.0.113.128/26' } }),
      await h.call('PUT', '/v1/tenants/acme/prefixes/p1', { body: { cidr: '203.0.113.0/25' }, headers: { 'if-match': '0' } }),
      await h.call('GET', '/v1/tenants/%24(reboot)'),
      await h.call('PATCH', '/v1/tenants'),
    ];
    for (const r of replies) {
      assert.ok(r.status >= 400);
      assert.deepEqual(schemaCheck('Error', r.body), [], JSON.stringify(r.body));
    }
  } finally {
    await h.cleanup();
  }
});

test('GET /openapi.json serves the same document', async () => {
  const h = await apiHarness();
  try {
    const r = await h.call('GET', '/openapi.json', { token: null });
    assert.equal(r.status, 200);
    const served = r.body as Json;
    assert.deepEqual(served.paths, doc.paths);
    assert.deepEqual(served.components, doc.components);
  } finally {
    await h.cleanup();
  }
});
