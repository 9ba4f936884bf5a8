import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConfigStore } from '../store/types.ts';
import { Authenticator, bearerToken } from './auth.ts';
import { apiHarness, type ApiHarness } from './harness.ts';
import { generateToken, hashToken } from './tokens.ts';

test('bearer header parsing', () => {
  const { token } = generateToken();
  assert.equal(bearerToken(`Bearer ${token}`), token);
  assert.equal(bearerToken(`bearer   ${token} `), token);
  for (const bad of [undefined, '', token, `Basic ${token}`, `Bearer ${token} extra`, `Bearer ${token.slice(0, -1)}`, `Bearer ${hashToken(token)}`, `Bearer\t${token}`])
    assert.equal(bearerToken(bad), undefined, String(bad));
});

/** A store that counts listings, to see what unknown tokens cost. */
function counting(store: ConfigStore): { store: ConfigStore; lists: () => number } {
  let n = 0;
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'list') return (...args: Parameters<ConfigStore['list']>) => (n++, target.list(...args));
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { store: wrapped, lists: () => n };
}

async function withAuth(fn: (h: ApiHarness, a: Authenticator, clock: { t: number }, lists: () => number) => Promise<void>): Promise<void> {
  const h = await apiHarness();
  const clock = { t: 0 };
  const c = counting(h.store);
  try {
    const op = generateToken();
    const a = new Authenticator({ store: c.store, operatorTokenHashes: [op.hash], now: () => clock.t, refreshMs: 1000 });
    assert.deepEqual(await a.authenticate(`Bearer ${op.token}`), { ok: true, value: { kind: 'operator', hash: op.hash } });
    await fn(h, a, clock, c.lists);
  } finally {
    await h.cleanup();
  }
}

test('a tenant token is found with or without the tenant in the URL', () =>
  withAuth(async (h, a, _clock, lists) => {
    const acme = h.tenants.acme!;
    const hinted = await a.authenticate(`Bearer ${acme}`, 'acme');
    assert.deepEqual(hinted, { ok: true, value: { kind: 'tenant', tenant: 'acme', hash: hashToken(acme) } });
    assert.equal(lists(), 0, 'the URL tenant is checked with one read, no listing');
    const anywhere = await a.authenticate(`Bearer ${acme}`, 'globex');
    assert.deepEqual(anywhere, { ok: true, value: { kind: 'tenant', tenant: 'acme', hash: hashToken(acme) } }, 'found as acme on globex\'s URL (the caller answers 404)');
    assert.equal(lists(), 1);
    assert.deepEqual(await a.authenticate(`Bearer ${acme}`), hinted);
    assert.equal(lists(), 1, 'the index is reused');
  }));

test('made-up tokens cost at most one listing per refresh interval', () =>
  withAuth(async (_h, a, clock, lists) => {
    for (let i = 0; i < 50; i++) assert.deepEqual(await a.authenticate(`Bearer ${generateToken().token}`), { ok: true, value: undefined });
    assert.equal(lists(), 1);
    clock.t += 1000;
    for (let i = 0; i < 50; i++) await a.authenticate(`Bearer ${generateToken().token}`);
    assert.equal(lists(), 2);
    assert.deepEqual(await a.authenticate('Bearer not-a-token'), { ok: true, value: undefined });
    assert.equal(lists(), 2, 'a malformed token is not even looked up');
  }));

test('a token written by another writer: at once on its own URL, elsewhere after the interval or an invalidate', () =>
  withAuth(async (h, a) => {
    await a.authenticate(`Bearer ${generateToken().token}`); // builds the index
    const fresh = generateToken();
    const cur = await h.store.get('/tenants/globex');
    assert.ok(cur.ok && cur.value);
    const w = await h.store.put('/tenants/globex', { ...(cur.value.value as object), tokenHash: fresh.hash });
    assert.ok(w.ok);
    assert.deepEqual(await a.authenticate(`Bearer ${fresh.token}`, 'globex'), { ok: true, value: { kind: 'tenant', tenant: 'globex', hash: fresh.hash } });
    assert.deepEqual(await a.authenticate(`Bearer ${fresh.token}`), { ok: true, value: undefined }, 'not yet in the index');
    a.invalidate();
    assert.deepEqual(await a.authenticate(`Bearer ${fresh.token}`), { ok: true, value: { kind: 'tenant', tenant: 'globex', hash: fresh.hash } });
    // The old token is refused at once, although the index may still hold it.
    assert.deepEqual(await a.authenticate(`Bearer ${h.tenants.globex!}`, 'globex'), { ok: true, value: undefined });
    assert.deepEqual(await a.authenticate(`Bearer ${h.tenants.globex!}`), { ok: true, value: undefined });
  }));

test('a store that is down is a 503, not a 401', async () => {
  const h = await apiHarness();
  const a = new Authenticator({ store: h.store, operatorTokenHashes: [], now: () => 0 });
  await h.cleanup();
  const r = await a.authenticate(`Bearer ${h.tenants.acme!}`, 'acme');
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.error.status, 503);
});
