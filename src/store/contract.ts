/**
 * The `ConfigStore` contract suite, run by every backend (Hono's `common.case.test.ts` pattern):
 * `lmdb.test.ts` calls `storeContract('lmdb', factory)` and `etcd.test.ts` calls it with a factory
 * of namespaces on a real etcd. A backend that cannot meet a case lists it in `gaps` with the reason, so the gap is
 * visible in the test output instead of hidden.
 *
 * Tests compare revisions relative to the store's revision at the start of each test, so a
 * backend whose fresh store does not start at 0 still passes. They do assume that nothing else
 * writes to the backend during a test, so that a test's writes take consecutive revisions: etcd's
 * revisions are global to a cluster, hence `etcd.test.ts` gives the suite a cluster of its own
 * (tests run one at a time) rather than listing the revision checks as gaps.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { describe, it, type TestContext } from 'node:test';
import type { Issue } from '../model/issue.ts';
import type { Result } from '../lib/result.ts';
import type { ChildArgs, ResumerLine, WatcherReport } from './contract-child.ts';
import {
  ABSENT,
  type ConfigStore,
  type JsonValue,
  type KeyValue,
  type StoreError,
  type ValidationOptions,
  type Watch,
  type WatchBatch,
  type WatchEvent,
} from './types.ts';
import type { KeyspaceValidator } from './validator.ts';

/** Options for a store the suite asks a backend for. */
export interface HarnessOptions {
  readonly validation?: ValidationOptions;
}

/** One store under test, with its data, as a backend's factory provides it. */
export interface StoreHarness {
  /** A store on an empty keyspace, opened with the requested options. */
  readonly store: ConfigStore;
  /** Opens another handle on the same data, as a restarted or second process would. */
  reopen(options?: HarnessOptions): Promise<ConfigStore>;
  /**
   * How a child process opens the same data: `module` is the absolute path of a module exporting
   * `openForChild(spec): Promise<ConfigStore>`, `spec` its JSON argument.
   */
  readonly child: { readonly module: string; readonly spec: JsonValue };
  /** Closes every store the harness opened and removes the data. Called even after a failure. */
  cleanup(): Promise<void>;
}

/** Makes a fresh harness per test. */
export type StoreFactory = (options: HarnessOptions) => Promise<StoreHarness>;

/** Backend-specific adjustments of the suite. */
export interface ContractOptions {
  /** Test name → reason: cases this backend does not meet yet; they are skipped with the reason. */
  readonly gaps?: Readonly<Record<string, string>>;
  /** Scales the multi-process test's writes per writer (default 500). */
  readonly processWrites?: number;
}

const CHILD = fileURLToPath(new URL('./contract-child.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Unwraps an ok result, failing the test with the error otherwise. */
function must<T>(r: Result<T, StoreError>, what: string): T {
  if (!r.ok) assert.fail(`${what}: expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

/** Asserts a failed result with `code` and returns its error. */
function mustFail<T, C extends StoreError['code']>(r: Result<T, StoreError>, code: C, what: string): Extract<StoreError, { code: C }> {
  if (r.ok) assert.fail(`${what}: expected ${code}, got ok ${JSON.stringify(r.value)}`);
  assert.equal(r.error.code, code, `${what}: ${r.error.message}`);
  return r.error as Extract<StoreError, { code: C }>;
}

async function rev(store: ConfigStore): Promise<number> {
  return must(await store.status(), 'status').revision;
}

/**
 * Reads a watch with deadlines, keeping one pending pull across calls (a timed-out pull is not
 * lost: the next call awaits it), so a test can take some batches, write, and take more.
 */
class Reader {
  readonly #it: AsyncIterator<Result<WatchBatch, StoreError>>;
  #pending: Promise<IteratorResult<Result<WatchBatch, StoreError>>> | undefined;
  readonly batches: WatchBatch[] = [];
  error: StoreError | undefined;
  ended = false;

  constructor(readonly watch: Watch) {
    this.#it = watch[Symbol.asyncIterator]();
  }

  /** Next item, or 'timeout' after `ms`. */
  async #next(ms: number): Promise<IteratorResult<Result<WatchBatch, StoreError>> | 'timeout'> {
    this.#pending ??= this.#it.next();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), ms)));
    try {
      const r = await Promise.race([this.#pending, timeout]);
      if (r !== 'timeout') this.#pending = undefined;
      return r;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Pulls until `done(batches so far)` holds, the watch ends, or `ms` passes (a failure). */
  async until(done: (b: readonly WatchBatch[]) => boolean, ms = 5000, what = 'watch'): Promise<WatchBatch[]> {
    const deadline = Date.now() + ms;
    while (!done(this.batches)) {
      if (this.ended) assert.fail(`${what}: watch ended early (${this.error?.message ?? 'no error'}) after ${this.describe()}`);
      const left = deadline - Date.now();
      const r = left > 0 ? await this.#next(left) : 'timeout';
      if (r === 'timeout') assert.fail(`${what}: timed out after ${ms} ms with ${this.describe()}`);
      if (r.done) this.ended = true;
      else if (!r.value.ok) {
        this.error = r.value.error;
        this.ended = true;
      } else this.batches.push(r.value.value);
    }
    return this.batches;
  }

  /** Pulls until a batch with revision ≥ `revision` arrived. */
  untilRevision(revision: number, ms?: number): Promise<WatchBatch[]> {
    return this.until((b) => (b.at(-1)?.revision ?? -1) >= revision, ms, `watch until revision ${revision}`);
  }

  /** Waits for the watch to end (with an error or not). */
  async end(ms = 5000): Promise<StoreError | undefined> {
    const deadline = Date.now() + ms;
    while (!this.ended) {
      const r = await this.#next(Math.max(1, deadline - Date.now()));
      if (r === 'timeout') assert.fail(`watch did not end within ${ms} ms; ${this.describe()}`);
      if (r.done) this.ended = true;
      else if (!r.value.ok) {
        this.error = r.value.error;
        this.ended = true;
      } else this.batches.push(r.value.value);
    }
    return this.error;
  }

  /** Asserts nothing arrives for `ms`. */
  async quiet(ms: number): Promise<void> {
    const r = await this.#next(ms);
    if (r !== 'timeout') assert.fail(`watch: expected nothing, got ${JSON.stringify(r)}`);
  }

  describe(): string {
    return `${this.batches.length} batches: revisions ${this.batches.map((b) => b.revision).join(',')}`;
  }
}

/** Events without their revision, to compare to an expectation. */
function shape(e: WatchEvent): string {
  return e.type === 'put' ? `put ${e.key}=${JSON.stringify(e.value)} v${e.version}` : `delete ${e.key}`;
}

/** A small keyspace validator for the tests: items need a number `n ≥ 0` and an existing `ref`. */
function itemValidator(seen?: ReadonlyMap<string, unknown>[]): KeyspaceValidator {
  return (entries) => {
    seen?.push(new Map(entries));
    const issues: Issue[] = [];
    for (const [key, value] of entries) {
      if (!key.startsWith('/v/items/')) continue;
      const path = key.split('/').slice(1);
      const obj = (typeof value === 'object' && value !== null ? value : {}) as { n?: unknown; ref?: unknown };
      if (typeof obj.n !== 'number') issues.push({ code: 'invalid_type', path, field: ['n'], message: 'n must be a number' });
      else if (obj.n < 0) issues.push({ code: 'too_small', path, field: ['n'], message: 'n must be ≥ 0' });
      if (obj.ref !== undefined && (typeof obj.ref !== 'string' || !entries.has(obj.ref))) {
        issues.push({ code: 'dangling', path, field: ['ref'], message: `${String(obj.ref)} does not exist; create it first` });
      }
    }
    return issues;
  };
}

/**
 * Registers the contract suite for one backend under `describe(name)`.
 * @param name backend name shown in the test output
 * @param factory makes a fresh harness (store + data) per test
 */
export function storeContract(name: string, factory: StoreFactory, options: ContractOptions = {}): void {
  const gaps = options.gaps ?? {};

  /** Defines a test that gets a fresh harness and always cleans it up. */
  function test(title: string, body: (h: StoreHarness, t: TestContext) => Promise<void>, opts: { timeout?: number; harness?: HarnessOptions } = {}): void {
    const gap = gaps[title];
    void it(title, { timeout: opts.timeout ?? 15_000, ...(gap ? { skip: `known gap: ${gap}` } : {}) }, async (t) => {
      const h = await factory(opts.harness ?? {});
      try {
        await body(h, t);
      } finally {
        await h.cleanup();
      }
    });
  }

  void describe(`ConfigStore contract: ${name}`, () => {
    test('put and get carry etcd-style revisions', async ({ store }) => {
      const r0 = await rev(store);
      assert.equal(must(await store.get('/a/x'), 'get missing'), undefined);
      const w1 = must(await store.put('/a/x', { n: 1 }), 'put');
      assert.deepEqual(w1, { revision: r0 + 1, changed: 1 });
      assert.deepEqual(must(await store.get('/a/x'), 'get'), { key: '/a/x', value: { n: 1 }, createRevision: r0 + 1, modRevision: r0 + 1, version: 1 });
      must(await store.put('/a/y', 'other'), 'put y');
      const w3 = must(await store.put('/a/x', { n: 2 }), 'put again');
      assert.equal(w3.revision, r0 + 3);
      assert.deepEqual(must(await store.get('/a/x'), 'get'), { key: '/a/x', value: { n: 2 }, createRevision: r0 + 1, modRevision: r0 + 3, version: 2 });
      // Writing the same value again is still a write (etcd does the same).
      assert.equal(must(await store.put('/a/x', { n: 2 }), 'same value').revision, r0 + 4);
      assert.equal(await rev(store), r0 + 4);
    });

    test('list returns the entries under a byte prefix, in key order, at one revision', async ({ store }) => {
      const keys = ['/a', '/a/z', '/a/b/c', '/a/é', '/a/\u{1F600}', '/a/\uE000', '/ab', '/b/1'];
      for (const k of keys) must(await store.put(k, k), 'put ' + k);
      const l = must(await store.list('/a/'), 'list /a/');
      // UTF-8 byte order: U+E000 (EE 80 80) sorts before U+1F600 (F0 9F 98 80).
      assert.deepEqual(
        l.entries.map((e) => e.key),
        ['/a/b/c', '/a/z', '/a/é', '/a/\uE000', '/a/\u{1F600}'],
      );
      assert.equal(l.revision, await rev(store));
      assert.deepEqual(
        must(await store.list('/a'), 'list /a').entries.map((e) => e.key),
        ['/a', '/a/b/c', '/a/z', '/a/é', '/a/\uE000', '/a/\u{1F600}', '/ab'],
      );
      assert.equal(must(await store.list(''), 'list all').entries.length, keys.length);
      assert.equal(must(await store.list('/'), 'list /').entries.length, keys.length);
      assert.deepEqual(must(await store.list('/nothing/'), 'list empty').entries, []);
      const e = must(await store.list('/b/'), 'list /b/').entries[0];
      assert.deepEqual(e, must(await store.get('/b/1'), 'get'));
    });

    test('delete and deletePrefix: one revision each, none for a no-op; re-creation restarts version', async ({ store }) => {
      const r0 = await rev(store);
      for (const k of ['/t/a/1', '/t/a/2', '/t/a/3', '/t/ab', '/t/b']) must(await store.put(k, 1), 'put');
      const d = must(await store.delete('/t/b'), 'delete');
      assert.deepEqual(d, { revision: r0 + 6, changed: 1 });
      assert.equal(must(await store.get('/t/b'), 'get deleted'), undefined);
      // Deleting what is not there changes nothing and uses no revision.
      assert.deepEqual(must(await store.delete('/t/b'), 'delete again'), { revision: r0 + 6, changed: 0 });
      assert.deepEqual(must(await store.deletePrefix('/t/a/'), 'deletePrefix'), { revision: r0 + 7, changed: 3 });
      assert.deepEqual(must(await store.list('/t/'), 'list').entries.map((e) => e.key), ['/t/ab']);
      assert.deepEqual(must(await store.deletePrefix('/t/a/'), 'deletePrefix again'), { revision: r0 + 7, changed: 0 });
      must(await store.put('/t/b', 2), 're-create');
      assert.deepEqual(must(await store.get('/t/b'), 'get'), { key: '/t/b', value: 2, createRevision: r0 + 8, modRevision: r0 + 8, version: 1 });
      mustFail(await store.deletePrefix(''), 'bad_request', 'deletePrefix of everything needs "/"');
    });

    test('values round-trip as JSON; bad keys and non-JSON values are bad_request and change nothing', async ({ store }) => {
      const value = { s: 'x', n: 1.5, b: true, z: null, a: [1, { k: 'v' }], u: undefined, d: new Date(0) };
      must(await store.put('/j/1', value), 'put');
      assert.deepEqual(must(await store.get('/j/1'), 'get')?.value, { s: 'x', n: 1.5, b: true, z: null, a: [1, { k: 'v' }], d: '1970-01-01T00:00:00.000Z' });
      const before = must(await store.list(''), 'list');
      const cyclic: { self?: unknown } = {};
      cyclic.self = cyclic;
      for (const [k, v] of [
        ['/j/2', undefined],
        ['/j/2', () => 1],
        ['/j/2', 10n],
        ['/j/2', cyclic],
        ['j/2', 1],
        ['/j//2', 1],
        ['/j/2/', 1],
        ['/', 1],
        ['/j/\u0000', 1],
        ['/j/' + 'x'.repeat(2000), 1],
      ] as const) {
        const e = mustFail(await store.put(k, v), 'bad_request', `put ${JSON.stringify(k).slice(0, 30)}`);
        assert.match(e.message, /put/);
      }
      mustFail(await store.get('no-slash'), 'bad_request', 'get bad key');
      mustFail(await store.list('no-slash'), 'bad_request', 'list bad prefix');
      assert.deepEqual(must(await store.list(''), 'list'), before);
    });

    test('compare-and-set on version and modRevision, "absent" included', async ({ store }) => {
      const r0 = await rev(store);
      must(await store.put('/c/k', 1, ABSENT), 'create-only on a new key');
      const e1 = mustFail(await store.put('/c/k', 2, ABSENT), 'cas_failed', 'create-only on an existing key');
      assert.equal(e1.key, '/c/k');
      assert.deepEqual(e1.actual, { modRevision: r0 + 1, version: 1 });
      must(await store.put('/c/k', 2, { modRevision: r0 + 1 }), 'put at the current modRevision');
      const e2 = mustFail(await store.put('/c/k', 3, { modRevision: r0 + 1 }), 'cas_failed', 'stale modRevision');
      assert.deepEqual(e2.expected, { modRevision: r0 + 1 });
      must(await store.put('/c/k', 3, { version: 2 }), 'put at the current version');
      mustFail(await store.delete('/c/k', { version: 2 }), 'cas_failed', 'delete at a stale version');
      assert.equal(must(await store.get('/c/k'), 'get')?.value, 3);
      must(await store.delete('/c/k', { modRevision: r0 + 3 }), 'delete at the current modRevision');
      mustFail(await store.put('/c/k', 4, { modRevision: r0 + 3 }), 'cas_failed', 'put on a deleted key at its old modRevision');
      must(await store.put('/c/k', 4, { modRevision: 0 }), 'modRevision 0 also means absent');
      assert.equal(await rev(store), r0 + 5, 'failed CAS writes use no revision');
    });

    test('txn is all or nothing: a failing condition writes nothing', async ({ store }) => {
      must(await store.put('/x/a', 1), 'put a');
      must(await store.put('/x/gone', 1), 'put gone');
      const r1 = await rev(store);
      const a = must(await store.get('/x/a'), 'get a')!;
      const before = must(await store.list(''), 'list');
      const e = mustFail(
        await store.txn({
          if: [{ key: '/x/a', modRevision: a.modRevision }, { key: '/x/b', ...ABSENT }, { key: '/x/gone', ...ABSENT }],
          then: [
            { op: 'put', key: '/x/a', value: 2 },
            { op: 'put', key: '/x/b', value: 2 },
            { op: 'delete', key: '/x/gone' },
          ],
        }),
        'cas_failed',
        'txn with one false condition',
      );
      assert.equal(e.key, '/x/gone');
      assert.deepEqual(must(await store.list(''), 'list'), before);
      const ok = must(
        await store.txn({
          if: [{ key: '/x/a', modRevision: a.modRevision }, { key: '/x/b', ...ABSENT }],
          then: [
            { op: 'put', key: '/x/a', value: 2 },
            { op: 'put', key: '/x/b', value: 2 },
            { op: 'delete', key: '/x/gone' },
          ],
        }),
        'txn with true conditions',
      );
      assert.deepEqual(ok, { revision: r1 + 1, changed: 3 });
      const l = must(await store.list('/x/'), 'list');
      assert.deepEqual(
        l.entries.map((x) => [x.key, x.value, x.modRevision]),
        [
          ['/x/a', 2, r1 + 1],
          ['/x/b', 2, r1 + 1],
        ],
      );
      // Two ops on one key, or a put inside a deleted prefix, is a malformed request.
      mustFail(await store.txn({ then: [{ op: 'put', key: '/x/a', value: 1 }, { op: 'delete', key: '/x/a' }] }), 'bad_request', 'duplicate key');
      mustFail(await store.txn({ then: [{ op: 'deletePrefix', prefix: '/x/' }, { op: 'put', key: '/x/c', value: 1 }] }), 'bad_request', 'put under deletePrefix');
      mustFail(await store.txn({ then: [{ op: 'put', key: '/x/c', value: 1 }, { op: 'put', key: 'bad', value: 1 }] }), 'bad_request', 'one bad key');
      assert.equal(must(await store.get('/x/c'), 'get c'), undefined);
      assert.equal(await rev(store), r1 + 1);
    });

    test('validation refuses a write with every issue and leaves the store unchanged', async ({ store }) => {
      must(await store.put('/v/items/base', { n: 1 }), 'valid put');
      must(await store.put('/v/items/user', { n: 2, ref: '/v/items/base' }), 'valid reference');
      must(await store.put('/other/free-form', 'not validated'), 'outside the roots');
      const before = must(await store.list(''), 'list');
      const bad = await store.txn({
        then: [
          { op: 'put', key: '/v/items/a', value: { n: 'one' } },
          { op: 'put', key: '/v/items/b', value: { n: -1 } },
          { op: 'put', key: '/v/items/c', value: { n: 1, ref: '/v/items/nope' } },
        ],
      });
      const e = mustFail(bad, 'invalid', 'three bad items');
      assert.deepEqual(
        e.issues.map((i) => `${i.path.join('/')}.${i.field.join('.')}:${i.code}`).sort(),
        ['v/items/a.n:invalid_type', 'v/items/b.n:too_small', 'v/items/c.ref:dangling'],
      );
      assert.match(e.message, /3 issue/);
      // Cross-object: the validator sees the keyspace after the write, so a delete can be refused.
      const e2 = mustFail(await store.delete('/v/items/base'), 'invalid', 'deleting a referenced item');
      assert.deepEqual(e2.issues.map((i) => i.code), ['dangling']);
      mustFail(await store.deletePrefix('/v/items/b'), 'invalid', 'deletePrefix is validated too (removes base, not user)');
      assert.deepEqual(must(await store.list(''), 'list after'), before, 'listing and revision unchanged');
      // Writes outside the roots are not validated.
      must(await store.put('/other/x', { n: 'anything' }), 'outside the roots');
    }, { harness: { validation: { validator: itemValidator(), roots: ['/v/'] } } });

    test('the validator sees exactly the validated keys, after the write', async (h) => {
      const seen: ReadonlyMap<string, unknown>[] = [];
      const store = await h.reopen({ validation: { validator: itemValidator(seen), roots: ['/v/'] } });
      must(await store.put('/v/items/a', { n: 1 }), 'put a');
      must(await store.put('/v/items/b', { n: 2 }), 'put b');
      must(await store.put('/other/x', 1), 'put outside');
      must(await store.delete('/v/items/a'), 'delete a');
      assert.deepEqual(
        seen.map((m) => [...m.keys()]),
        [['/v/items/a'], ['/v/items/a', '/v/items/b'], ['/v/items/b']],
        'one call per validated write, outside keys never passed',
      );
      assert.deepEqual(seen[1]?.get('/v/items/b'), { n: 2 });
    });

    test('validation refuses only issues a write introduces, so old bad data can be repaired', async (h) => {
      // Written without a validator, e.g. before a stricter rule shipped.
      must(await h.store.put('/v/items/old1', { n: -1 }), 'old bad 1');
      must(await h.store.put('/v/items/old2', { n: -2 }), 'old bad 2');
      const store = await h.reopen({ validation: { validator: itemValidator(), roots: ['/v/'] } });
      must(await store.put('/v/items/fine', { n: 1 }), 'unrelated valid write');
      const e = mustFail(await store.put('/v/items/new', { n: -3 }), 'invalid', 'new bad item');
      assert.deepEqual(e.issues.map((i) => i.path.join('/')), ['v/items/new'], 'only the new issue is reported');
      must(await store.put('/v/items/old1', { n: 1 }), 'repairing one of two old problems');
      must(await store.put('/v/items/old2', { n: 2 }), 'repairing the other');
    });

    test('validation sees the writes of other handles, and a refused write leaves no trace', async (h) => {
      const store = await h.reopen({ validation: { validator: itemValidator(), roots: ['/v/'] } });
      must(await store.put('/v/items/a', { n: 1 }), 'first validated write');
      // Another writer (no validator; another process would be the same) changes the keyspace.
      must(await h.store.put('/v/items/base', { n: 1 }), 'base, written elsewhere');
      must(await store.put('/v/items/user', { n: 1, ref: '/v/items/base' }), 'a reference to what the other handle wrote');
      must(await h.store.delete('/v/items/other-gone'), 'a no-op elsewhere');
      must(await h.store.delete('/v/items/base'), 'base deleted elsewhere (unvalidated: leaves user dangling)');
      const e = mustFail(await store.put('/v/items/user2', { n: 1, ref: '/v/items/base' }), 'invalid', 'reference to what the other handle deleted');
      assert.deepEqual(e.issues.map((i) => `${i.path.join('/')}:${i.code}`), ['v/items/user2:dangling'], 'only the new issue: user was already dangling');
      assert.match(e.message, /user2/);
      // A refused write must not linger in any state the next validation uses.
      mustFail(await store.txn({ then: [{ op: 'put', key: '/v/items/ghost', value: { n: -1 } }] }), 'invalid', 'bad ghost');
      mustFail(await store.put('/v/items/x', { n: 1, ref: '/v/items/ghost' }), 'invalid', 'the refused ghost does not exist');
      // A commit that validation let through must be visible to the next one.
      must(await store.put('/v/items/base', { n: 2 }), 'base again');
      must(await store.put('/v/items/x', { n: 1, ref: '/v/items/base' }), 'reference to it');
      // Compacting away the history this handle last saw still leaves it validating the present.
      must(await h.store.delete('/v/items/x'), 'x deleted elsewhere');
      must(await h.store.put('/v/items/y', { n: 1 }), 'y elsewhere');
      must(await h.store.compact(await rev(h.store)), 'compact everything');
      mustFail(await store.put('/v/items/z', { n: 1, ref: '/v/items/x' }), 'invalid', 'x is gone');
      must(await store.put('/v/items/z', { n: 1, ref: '/v/items/y' }), 'y exists');
      assert.deepEqual(
        must(await store.list('/v/'), 'list').entries.map((x) => x.key),
        ['/v/items/a', '/v/items/base', '/v/items/user', '/v/items/y', '/v/items/z'],
      );
    });

    test('watch delivers every transaction once, in revision order, its events together', async ({ store }) => {
      const r0 = await rev(store);
      const w = new Reader(store.watch('', r0));
      // Concurrent writers of every kind: the watch must still see a gap-free sequence.
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        writes.push(store.put(`/w/k${i % 7}`, i));
        if (i % 5 === 0) {
          writes.push(
            store.txn({
              then: [
                { op: 'put', key: `/w/t${i}/a`, value: i },
                { op: 'put', key: `/w/t${i}/b`, value: i },
                { op: 'put', key: `/w/t${i}/c`, value: i },
              ],
            }),
          );
        }
        if (i % 9 === 0) writes.push(store.delete(`/w/k${(i + 3) % 7}`));
      }
      await Promise.all(writes);
      writes.length = 0;
      writes.push(store.deletePrefix('/w/t1'));
      await Promise.all(writes);
      const final = await rev(store);
      const got = await w.untilRevision(final);
      w.watch.close();
      assert.deepEqual(
        got.map((b) => b.revision),
        Array.from({ length: final - r0 }, (_, i) => r0 + 1 + i),
        'every revision exactly once, in order',
      );
      for (const b of got) {
        assert.ok(b.events.length > 0, 'no empty batches');
        for (const e of b.events) assert.equal(e.revision, b.revision, 'events carry their batch revision');
        const tx = b.events.filter((e) => /^\/w\/t\d+\/[abc]$/.test(e.key) && e.type === 'put');
        if (tx.length) assert.equal(tx.length, 3, `the three puts of a txn arrive together at ${b.revision}`);
      }
      const prefixDelete = got.at(-1)!;
      assert.deepEqual(prefixDelete.events.map(shape), ['delete /w/t10/a', 'delete /w/t10/b', 'delete /w/t10/c', 'delete /w/t15/a', 'delete /w/t15/b', 'delete /w/t15/c']);
      // Replaying the events from an empty keyspace gives exactly the final listing.
      const state = new Map<string, KeyValue>();
      for (const b of got) {
        for (const e of b.events) {
          if (e.type === 'delete') state.delete(e.key);
          else state.set(e.key, { key: e.key, value: e.value, createRevision: e.createRevision, modRevision: e.revision, version: e.version });
        }
      }
      const listing = must(await store.list(''), 'list');
      assert.deepEqual([...state.values()].sort((a, b) => (a.key < b.key ? -1 : 1)), listing.entries);
    });

    test('watch replays history after a revision, then goes live', async ({ store }) => {
      const r0 = await rev(store);
      for (let i = 1; i <= 5; i++) must(await store.put('/h/k', i), 'put');
      const w = new Reader(store.watch('/h/', r0 + 2));
      const history = await w.untilRevision(r0 + 5);
      assert.deepEqual(history.map((b) => b.events.map(shape)), [['put /h/k=3 v3'], ['put /h/k=4 v4'], ['put /h/k=5 v5']]);
      await w.quiet(50);
      must(await store.put('/h/k', 6), 'live put');
      must(await store.delete('/h/k'), 'live delete');
      const all = await w.untilRevision(r0 + 7);
      assert.deepEqual(all.slice(3).map((b) => [b.revision, b.events.map(shape)]), [
        [r0 + 6, ['put /h/k=6 v6']],
        [r0 + 7, ['delete /h/k']],
      ]);
      w.watch.close();
      assert.equal(await w.end(), undefined, 'close ends the watch without an error');
    });

    test('watch filters by prefix and skips transactions with nothing under it', async ({ store }) => {
      const r0 = await rev(store);
      const w = new Reader(store.watch('/p/in/', r0));
      must(await store.put('/p/out', 1), 'outside');
      must(await store.put('/p/inx', 1), 'same bytes but not under /p/in/');
      must(
        await store.txn({
          then: [
            { op: 'put', key: '/p/in/a', value: 1 },
            { op: 'put', key: '/p/zz', value: 1 },
          ],
        }),
        'mixed txn',
      );
      must(await store.put('/p/out', 2), 'outside again');
      must(await store.delete('/p/in/a'), 'delete inside');
      const got = await w.untilRevision(r0 + 5);
      assert.deepEqual(got.map((b) => [b.revision, b.events.map(shape)]), [
        [r0 + 3, ['put /p/in/a=1 v1']],
        [r0 + 5, ['delete /p/in/a']],
      ]);
      w.watch.close();
    });

    test('compaction: watching from before it fails with compacted; later revisions still replay', async ({ store }) => {
      const r0 = await rev(store);
      for (let i = 1; i <= 6; i++) must(await store.put(`/k/${i}`, i), 'put');
      const st = must(await store.compact(r0 + 4), 'compact');
      assert.deepEqual(st, { revision: r0 + 6, compactRevision: r0 + 4 });
      assert.equal(must(await store.list('/k/'), 'list').entries.length, 6, 'current values survive compaction');
      const old = new Reader(store.watch('/k/', r0 + 2));
      const e = await old.end();
      assert.equal(e?.code, 'compacted', `watch from a compacted revision: ${e?.message}`);
      assert.equal(e?.code === 'compacted' && e.compactRevision, r0 + 4);
      assert.match(e?.message ?? '', /list/, 'the error tells the caller to relist');
      const ok = new Reader(store.watch('/k/', r0 + 3));
      assert.deepEqual((await ok.untilRevision(r0 + 6)).map((b) => b.revision), [r0 + 4, r0 + 5, r0 + 6]);
      ok.watch.close();
      assert.deepEqual(must(await store.compact(r0 + 2), 'compact below'), { revision: r0 + 6, compactRevision: r0 + 4 }, 'compacting lower does nothing');
      mustFail(await store.compact(r0 + 7), 'bad_request', 'compact a future revision');
    });

    test('a watcher restarted from its saved revision sees every later change exactly once', async (h) => {
      const r0 = await rev(h.store);
      for (let i = 0; i < 5; i++) must(await h.store.put(`/r/k${i}`, i), 'before');
      // First life: apply up to some revision, persist it, stop.
      const first = new Reader(h.store.watch('/r/', r0));
      const saved = (await first.untilRevision(r0 + 3)).at(-1)!.revision;
      first.watch.close();
      // While it is down another writer (a second handle) makes N changes of every kind.
      const writer = await h.reopen();
      const expected: string[] = [];
      for (let i = 0; i < 30; i++) {
        const r = must(await writer.put(`/r/k${i % 8}`, { i }), 'put');
        expected.push(`${r.revision} put /r/k${i % 8}`);
        if (i % 10 === 9) {
          const d = must(await writer.delete(`/r/k${i % 8}`), 'delete');
          expected.push(`${d.revision} delete /r/k${i % 8}`);
        }
      }
      const final = await rev(writer);
      // Second life, as a restarted process: a new handle, watching after the saved revision.
      const restarted = await h.reopen();
      const second = new Reader(restarted.watch('/r/', saved));
      const got = (await second.untilRevision(final)).flatMap((b) => b.events.map((e) => `${e.revision} ${e.type} ${e.key}`));
      second.watch.close();
      const beforeRestart = [r0 + 4, r0 + 5].map((r) => `${r} put /r/k${r - r0 - 1}`);
      assert.deepEqual(got, [...beforeRestart, ...expected], 'exactly the changes after the saved revision, once each, in order');
      assert.equal(new Set(got).size, got.length, 'no duplicates');
    });

    test('close ends watches; a closed store answers unavailable', async (h) => {
      const store = await h.reopen();
      const r0 = await rev(store);
      const closedByUser = new Reader(store.watch('/', r0));
      const pending = closedByUser.end(2000);
      closedByUser.watch.close();
      assert.equal(await pending, undefined, 'watch.close() ends a pending pull without error');
      const live = new Reader(store.watch('/', r0));
      const ended = live.end(2000);
      await store.close();
      assert.equal((await ended)?.code, 'unavailable', 'closing the store ends its watches with unavailable');
      mustFail(await store.get('/a'), 'unavailable', 'get after close');
      mustFail(await store.put('/a', 1), 'unavailable', 'put after close');
      mustFail(await store.list('/'), 'unavailable', 'list after close');
      mustFail(await store.status(), 'unavailable', 'status after close');
      // The data and other handles are unaffected.
      must(await h.store.put('/a', 1), 'other handle still works');
    });

    test('two writer processes lose nothing; a watcher process sees every revision once', async (h, t) => {
      const perWriter = options.processWrites ?? 500;
      const r0 = await rev(h.store);
      const children = new Children(h);
      try {
        const watcher = children.start({ role: 'watcher', after: r0 });
        assert.deepEqual(await watcher.next(), { ready: true });
        const writers = [0, 1].map((id) => children.start({ role: 'writer', id, count: perWriter }));
        for (const w of writers) assert.deepEqual(await w.next(), { ready: true });
        for (const w of writers) w.send('go');
        const done = await Promise.all(writers.map((w) => w.next()));
        for (const d of done) assert.equal(d.done, true);
        t.diagnostic(`CAS retries per writer: ${done.map((d) => d.retries).join(', ')}`);

        const final = await rev(h.store);
        assert.equal(final, r0 + 4 * perWriter, 'one revision per successful write');
        const written = done.flatMap((d) => d.revisions as number[]).sort((a, b) => a - b);
        assert.deepEqual(written, range(r0 + 1, final), 'the writers got every revision once between them: unique and contiguous');
        assert.equal(must(await h.store.get('/mp/counter'), 'counter')?.value, 2 * perWriter, 'no increment lost');
        const keys = must(await h.store.list('/mp/w'), 'list').entries.map((e) => e.key);
        assert.equal(keys.length, 2 * perWriter, 'every distinct key present');

        watcher.send({ until: final });
        const { report } = (await watcher.next()) as { report: WatcherReport };
        assert.deepEqual(report.revisions, range(r0 + 1, final), 'every revision once, in order');
        assert.deepEqual(report.counterValues, range(1, 2 * perWriter), 'each counter value once, in order');
        assert.deepEqual([...report.keys].sort(), [...keys].sort(), 'each distinct key once');
        assert.deepEqual(await Promise.all([watcher.exited, ...writers.map((w) => w.exited)]), [0, 0, 0]);
      } finally {
        await children.killAll();
      }
    }, { timeout: 120_000 });

    test('a watcher process killed mid-stream and restarted from its saved revision sees every change exactly once', async (h, t) => {
      const r0 = await rev(h.store);
      const dir = await mkdtemp(join(tmpdir(), 'anyedge-resume-'));
      const file = join(dir, 'progress.jsonl');
      const children = new Children(h);
      // `${revision} ${type} ${key}` of every change, in revision order, from the write results.
      const expected: string[] = [];
      let n = 0;
      /** Writes `count` changes of every kind (put, 2-key txn, delete) and records them. */
      const writeSome = async (count: number): Promise<void> => {
        for (let end = n + count; n < end; n++) {
          const key = `/rs/k${n % 13}`;
          if (n % 7 === 3) {
            const keys = [`/rs/t${n}/a`, `/rs/t${n}/b`];
            const r = must(await h.store.txn({ then: keys.map((k) => ({ op: 'put' as const, key: k, value: n })) }), 'txn');
            for (const k of keys) expected.push(`${r.revision} put ${k}`);
          } else if (n % 11 === 5) {
            const r = must(await h.store.delete(key), 'delete');
            if (r.changed) expected.push(`${r.revision} delete ${key}`);
          } else {
            const r = must(await h.store.put(key, { n }), 'put');
            expected.push(`${r.revision} put ${key}`);
          }
        }
      };
      let writing: Promise<void> | undefined;
      try {
        // First life: 150 changes of history, then 150 more while it consumes. Each batch takes
        // it 5 ms to apply, so when it has saved revision r0+60 at least 90 batches are still
        // unread: it is killed (SIGKILL: no clean-up, no last flush) mid-stream.
        await writeSome(150);
        const first = children.start({ role: 'resumer', file, prefix: '/rs/', after: r0, applyMs: 5 });
        assert.deepEqual(await first.next(), { ready: true, after: r0 });
        writing = writeSome(150);
        let seen = r0;
        while (seen < r0 + 60) seen = (await first.next()).rev as number;
        first.kill();
        const atKill = await rev(h.store);
        assert.equal(await first.exited, null, 'killed by the signal, not exited on its own');
        await writing;
        // While it is down: more changes, which it must get from history.
        await writeSome(100);

        // Second life: resumes after the last revision the file holds.
        const second = children.start({ role: 'resumer', file, prefix: '/rs/', after: r0 });
        const { after } = (await second.next()) as { after: number };
        t.diagnostic(`first life reported ${seen}, saved up to ${after}; store at ${atKill} when killed`);
        assert.ok(after >= seen, `resumes at or after the last revision reported saved (${after} ≥ ${seen})`);
        assert.ok(after < atKill, `it was killed with changes still unread (saved ${after} < store ${atKill})`);
        // Then live changes.
        await writeSome(100);
        const final = await rev(h.store);
        second.send({ until: final });
        while (!('done' in (await second.next())));
        assert.equal(await second.exited, 0);

        const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ResumerLine);
        const revisions = lines.map((l) => l.r);
        assert.equal(new Set(revisions).size, revisions.length, 'no revision saved twice');
        assert.deepEqual(revisions, range(r0 + 1, final), 'every revision after the start, in order, no gap (every write here is under /rs/)');
        assert.deepEqual(lines.flatMap((l) => l.e.map((e) => `${l.r} ${e}`)), expected, 'exactly the changes made, once each');
      } finally {
        // Let a writer loop a failed assertion left running end before the harness closes the store.
        await writing?.catch(() => undefined);
        await children.killAll();
        await rm(dir, { recursive: true, force: true });
      }
    }, { timeout: 120_000 });
  });
}

/** 'from'..'to' inclusive. */
function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** A child process of the suite (`contract-child.ts`) and its line protocol. */
interface Child {
  /** Next JSON line; fails the test with the child's stderr if it exits or reports an error. */
  next(): Promise<Record<string, unknown>>;
  send(obj: unknown): void;
  /** SIGKILL, as a crash or `kill -9` would. */
  kill(): void;
  /** Exit code, null when killed by a signal. */
  readonly exited: Promise<number | null>;
}

/** The children one test starts, all killed (and awaited) at its end, also on failure. */
class Children {
  readonly #all: { proc: ChildProcess; exited: Promise<number | null> }[] = [];
  constructor(readonly harness: StoreHarness) {}

  start(args: Omit<ChildArgs, 'module' | 'spec'>): Child {
    const full: ChildArgs = { ...args, module: this.harness.child.module, spec: this.harness.child.spec };
    const c = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(full)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => c.on('exit', (code) => resolve(code)));
    this.#all.push({ proc: c, exited });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // A child killed while the parent writes to it must not crash the parent with EPIPE.
    c.stdin.on('error', () => {});
    const lines = createInterface({ input: c.stdout })[Symbol.asyncIterator]();
    return {
      next: async () => {
        const l = await lines.next();
        if (l.done) assert.fail(`${args.role} exited (${await exited}) without answering; stderr:\n${stderr}`);
        const msg = JSON.parse(l.value) as Record<string, unknown>;
        if ('error' in msg) assert.fail(`${args.role} failed: ${String(msg.error)}\n${stderr}`);
        return msg;
      },
      send: (obj) => void c.stdin.write(JSON.stringify(obj) + '\n'),
      kill: () => void c.kill('SIGKILL'),
      exited,
    };
  }

  async killAll(): Promise<void> {
    for (const { proc } of this.#all) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await Promise.all(this.#all.map((c) => c.exited));
  }
}
