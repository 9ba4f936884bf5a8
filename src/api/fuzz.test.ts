/**
 * Fuzzing every route of the table (seeded: a failure prints the seed, FUZZ_SEED=<n> replays it)
 * with invalid JSON, wrong types, huge and deeply nested bodies, and hostile strings in path
 * segments, query strings, headers, field names and field values. For every response: no 5xx,
 * and every error in the one error shape. After each route's rounds, the store is scanned: every
 * key is a valid config key (ids `[a-z0-9-]{1,32}`), hostile text sits only in free-text fields
 * (names, descriptions), and the config still compiles for every server to nft JSON and link
 * names the kernel accepts — or fails cleanly, as a value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../testkit/random.ts';
import { entriesToConfig, parseKey } from '../model/keyspace.ts';
import { isId } from '../model/id.ts';
import { compileServer } from '../compile/server.ts';
import { marksWith } from '../kernel/index.ts';
import { ROUTES } from './routes/index.ts';
import type { RouteSpec } from './route.ts';
import { apiHarness, type ApiHarness } from './harness.ts';
import { addSpares, sampleBody, samplePath } from './samples.ts';
import { DETECT_ROOT } from '../model/detection.ts';
import { generateToken } from './tokens.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_301);
/** Requests per route: ~50 routes × this stays within a few seconds per core. */
const ROUNDS = Number(process.env.FUZZ_ROUNDS ?? 60);
const BODY_LIMIT = 64 * 1024;

/** Strings that must never reach a shell or nft unescaped, nor become an id. */
const HOSTILE = [
  'x"; flush ruleset',
  '$(reboot)',
  '`reboot`',
  '; rm -rf /',
  '-rf',
  '--help',
  '../..',
  '../../etc/passwd',
  'a\u0000b',
  '\u0000',
  'ünïcödé',
  '☃\u202e',
  '\uFEFF',
  'x'.repeat(10_000),
  ' ',
  '',
  '|',
  'a && b',
  '\n',
  "' OR 1=1 --",
  '%00',
  '%2e%2e%2f',
  '{{7*7}}',
  '<script>alert(1)</script>',
  'constructor',
  '__proto__',
  'toString',
  'a'.repeat(33),
  'ACME',
  '-a',
  'a/b',
  'NaN',
];

/** Substrings that would be dangerous anywhere but free text; markers of the list above. */
const MARKERS = ['flush', 'reboot', 'rm -rf', '../', '\u0000', '&&', '<script', '{{', "' OR", '--help', '☃', 'ünï', '\u202e'];

/** Fields that are free text for people, never sent to the kernel (model/id.ts). */
const FREE_TEXT = new Set(['name', 'description', 'location']);

const WRONG_TYPES: unknown[] = [null, true, 0, -1, 1.5, 1e308, '', 'x', [], [null], {}, { a: 1 }, Number.MAX_SAFE_INTEGER + 2];

type Pick = <T>(xs: readonly T[]) => T;

function mutateLeaf(value: unknown, next: () => number, pick: Pick, replacement: unknown): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || next() < 0.2) return [...value, replacement];
    const i = Math.floor(next() * value.length);
    return value.map((v, j) => (j === i ? mutateLeaf(v, next, pick, replacement) : v));
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value);
    if (keys.length === 0 || next() < 0.15) return { ...value, [typeof replacement === 'string' ? replacement.slice(0, 100) : 'extra']: replacement };
    const k = pick(keys);
    return { ...value, [k]: mutateLeaf((value as Record<string, unknown>)[k], next, pick, replacement) };
  }
  return replacement;
}

const headerSafe = (s: string): boolean => /^[\x20-\x7e]*$/.test(s);

interface Case {
  readonly what: string;
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

function makeCase(spec: RouteSpec, h: ApiHarness, next: () => number): Case {
  const pick: Pick = (xs) => xs[Math.floor(next() * xs.length)]!;
  const hostile = (): string => pick(HOSTILE);
  const sample = sampleBody(spec);
  const tokens = [h.operator, h.operator, h.operator, h.tenants.acme!, h.tenants.globex!, generateToken().token, 'ae_' + 'A'.repeat(43)];
  const headers: Record<string, string> = { authorization: `Bearer ${pick(tokens)}` };
  let path = samplePath(spec);
  let body: string | undefined = sample === undefined ? undefined : JSON.stringify(sample);
  if (body !== undefined) headers['content-type'] = 'application/json';
  let what: string;
  const kind = Math.floor(next() * 11);
  switch (kind) {
    case 0: {
      const names = Object.keys(spec.params ?? {});
      const name = names.length ? pick(names) : undefined;
      const h2 = hostile();
      path = name ? samplePath(spec, { [name]: h2 }) : `${path}/${encodeURIComponent(h2)}`;
      what = `hostile path segment ${name ?? '(extra)'}=${JSON.stringify(h2.slice(0, 40))}`;
      break;
    }
    case 1: {
      const k = next() < 0.5 ? 'before' : hostile();
      const v = hostile();
      path += `?${encodeURIComponent(k)}=${encodeURIComponent(v)}`;
      what = `hostile query ${JSON.stringify(k.slice(0, 20))}=${JSON.stringify(v.slice(0, 20))}`;
      break;
    }
    case 2: {
      const v = pick(HOSTILE.filter(headerSafe));
      const header = pick(['if-match', 'content-type', 'authorization', 'x-forwarded-for', 'accept', 'x-' + 'h'.repeat(5)]);
      headers[header] = header === 'authorization' ? `Bearer ${v}` : v;
      what = `hostile header ${header}: ${JSON.stringify(v.slice(0, 30))}`;
      break;
    }
    case 3: {
      const text = JSON.stringify(sample ?? { a: 1 });
      const cut = Math.floor(next() * text.length);
      body = pick([text.slice(0, cut), text.slice(cut), text + '}', '\uFEFF' + text, text.replace(/"/g, "'"), '{"a":1,}', '\u0000', 'null null']);
      headers['content-type'] = 'application/json';
      what = `invalid JSON ${JSON.stringify(body.slice(0, 40))}`;
      break;
    }
    case 4: {
      const wrong = pick(WRONG_TYPES);
      body = JSON.stringify(next() < 0.3 ? wrong : mutateLeaf(sample ?? {}, next, pick, wrong));
      headers['content-type'] = 'application/json';
      what = `wrong type ${JSON.stringify(wrong)}`;
      break;
    }
    case 5: {
      body = JSON.stringify({ ...((sample as object) ?? {}), description: 'z'.repeat(BODY_LIMIT + Math.floor(next() * BODY_LIMIT)) });
      headers['content-type'] = 'application/json';
      what = 'huge body';
      break;
    }
    case 6: {
      const depth = pick([65, 1000, 20_000]);
      body = pick(['[', '{"a":']).repeat(depth) + '1' + pick([']', '}']).repeat(depth);
      headers['content-type'] = 'application/json';
      what = `nesting ${depth}`;
      break;
    }
    case 7: {
      const v = hostile();
      body = JSON.stringify(mutateLeaf(sample ?? {}, next, pick, v));
      headers['content-type'] = 'application/json';
      what = `hostile value ${JSON.stringify(v.slice(0, 40))}`;
      break;
    }
    case 8: {
      const k = hostile();
      const base = (sample !== null && typeof sample === 'object' ? sample : {}) as Record<string, unknown>;
      body = JSON.stringify({ ...base, [k]: hostile() });
      headers['content-type'] = 'application/json';
      what = `hostile field name ${JSON.stringify(k.slice(0, 40))}`;
      break;
    }
    case 9: {
      // Valid requests with hostile free text: these should be accepted and stored.
      const base = (sample !== null && typeof sample === 'object' && !Array.isArray(sample) ? sample : undefined) as Record<string, unknown> | undefined;
      if (base && ('description' in base || 'name' in base || spec.body === 'Prefix' || spec.body === 'Route' || spec.body === 'DosRule' || spec.body === 'EgressPool' || spec.body === 'FirewallRule'))
        body = JSON.stringify({ ...base, ...('name' in base ? { name: hostile().slice(0, 128) || 'x' } : { description: hostile().slice(0, 256) }) });
      what = 'hostile free text';
      break;
    }
    default: {
      headers['content-type'] = pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml']);
      body = body ?? 'a=b';
      what = `content type ${headers['content-type']}`;
    }
  }
  // Fetch's Request cannot carry a GET body; bodies on GET are covered by request.test.ts.
  if (spec.method === 'GET') body = undefined;
  return { what, method: spec.method, path, headers, ...(body !== undefined ? { body } : {}) };
}

function assertErrorShape(body: unknown, where: string): void {
  const e = (body as { error?: Record<string, unknown> } | null)?.error;
  assert.ok(e && typeof e.code === 'string' && typeof e.message === 'string', `${where}: not the error shape: ${JSON.stringify(body).slice(0, 300)}`);
  if (e.issues !== undefined) {
    assert.ok(Array.isArray(e.issues), where);
    for (const i of e.issues as Record<string, unknown>[])
      assert.ok(typeof i.path === 'string' && typeof i.field === 'string' && typeof i.code === 'string' && typeof i.message === 'string', `${where}: issue ${JSON.stringify(i)}`);
  }
}

/** Every string in a value with the field it sits in. */
function* strings(v: unknown, field = ''): Generator<[string, string]> {
  if (typeof v === 'string') yield [field, v];
  else if (Array.isArray(v)) for (const x of v) yield* strings(x, field);
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) yield* strings(x, k);
}

const LINK_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const NS_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;

async function scan(h: ApiHarness, where: string): Promise<void> {
  const all = await h.store.list('/');
  assert.ok(all.ok);
  const entries = new Map<string, unknown>();
  for (const e of all.value.entries) {
    // Detection events and proposals (model/detection.ts) are agent reports, not config; they are
    // still scanned for hostile text.
    const report = e.key.startsWith(DETECT_ROOT);
    const key = report ? null : parseKey(e.key);
    assert.ok(report || key?.ok, `${where}: a stored key is not a config key: ${JSON.stringify(e.key)}`);
    for (const [field, s] of strings(e.value)) {
      if (FREE_TEXT.has(field)) continue;
      for (const m of MARKERS) assert.ok(!s.includes(m), `${where}: hostile ${JSON.stringify(m)} stored in ${e.key} field ${field}: ${JSON.stringify(s.slice(0, 80))}`);
    }
    if (!report) entries.set(e.key, e.value);
  }
  const config = entriesToConfig(entries);
  assert.ok(config.ok, `${where}: the stored config does not validate: ${JSON.stringify(!config.ok && config.error.slice(0, 3))}`);
  const ids = [...Object.keys(config.value.tenants), ...Object.keys(config.value.dcs), ...Object.keys(config.value.dos.rules), ...Object.keys(config.value.egress.pools)];
  for (const t of Object.values(config.value.tenants)) ids.push(...Object.keys(t.prefixes), ...Object.keys(t.tunnels), ...Object.keys(t.routes), ...(t.firewall?.rules.map((r) => r.id) ?? []));
  for (const id of ids) assert.ok(isId(id) && /^[a-z0-9-]{1,32}$/.test(id), `${where}: id ${JSON.stringify(id)}`);
  const marks = marksWith({ prefix: 'ae' });
  for (const [dc, d] of Object.entries(config.value.dcs))
    for (const server of Object.keys(d.servers)) {
      let compiled: ReturnType<typeof compileServer>;
      try {
        compiled = compileServer(config.value, { dc, server }, { marks });
      } catch (e) {
        assert.fail(`${where}: compileServer threw for ${dc}/${server}: ${(e as Error).stack}`);
      }
      if (!compiled.ok) {
        assert.equal(typeof compiled.error.message, 'string');
        continue;
      }
      const v = compiled.value;
      for (const n of v.netns) assert.match(n.name, NS_NAME, where);
      for (const x of v.veths) for (const end of [x.spec.a, x.spec.b]) assert.match(end.name, LINK_NAME, `${where}: link name`);
      for (const a of v.addrs) assert.match(a.link, LINK_NAME, where);
      for (const a of v.attach) assert.match(a.dev, LINK_NAME, where);
      for (const n of v.nft) {
        assert.equal(typeof n.batch, 'object', 'nft gets JSON, not text');
        const json = JSON.stringify(n.batch);
        for (const m of MARKERS) assert.ok(!json.includes(m), `${where}: ${JSON.stringify(m)} reached the nft batch of ${n.table.name}`);
      }
    }
}

test(`fuzz every route (seed ${SEED}, ${ROUNDS} rounds each)`, async (t) => {
  const next = rng(SEED);
  let requests = 0;
  let accepted = 0;
  const statuses = new Map<number, number>();
  for (const spec of ROUTES) {
    await t.test(`${spec.method} ${spec.path}`, async () => {
      const h = await apiHarness({ api: { bodyLimitBytes: BODY_LIMIT } });
      try {
        await addSpares(h);
        for (let i = 0; i < ROUNDS; i++) {
          const c = makeCase(spec, h, next);
          const where = `seed ${SEED}, ${c.method} ${c.path.slice(0, 120)} (${c.what})`;
          const res = await h.app.request(c.path, { method: c.method, headers: c.headers, ...(c.body !== undefined ? { body: c.body } : {}) });
          const text = await res.text();
          requests++;
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          assert.ok(res.status < 500, `${where}: ${res.status} ${text.slice(0, 300)}`);
          let body: unknown;
          if (c.method !== 'HEAD') {
            try {
              body = JSON.parse(text);
            } catch {
              assert.fail(`${where}: the reply is not JSON: ${text.slice(0, 200)}`);
            }
          }
          if (res.status >= 400) assertErrorShape(body, where);
          else accepted++;
        }
        await scan(h, `seed ${SEED}, after ${spec.method} ${spec.path}`);
      } finally {
        await h.cleanup();
      }
    });
  }
  t.diagnostic(`${requests} requests, ${accepted} accepted; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  assert.ok(accepted > 0 && accepted < requests, 'the fuzz reaches both accepted and refused requests');
});
