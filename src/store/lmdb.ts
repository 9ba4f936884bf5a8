/**
 * The embedded `ConfigStore`: one LMDB environment (the engine Quicksilver is built on) shared by
 * every process on the machine that opens the same path.
 *
 * Layout, three named databases in one environment so one LMDB transaction covers all of them:
 * - `kv`   key → {@link StoredEntry} (value plus etcd's createRevision/modRevision/version)
 * - `log`  revision → the events of that transaction ({@link LoggedEvent}[]); the watch history
 * - `meta` `revision` (last committed), `compactRevision` (oldest kept log entry), `format`
 *
 * Writes run in `transactionSync`, i.e. under LMDB's single write lock, which is a robust mutex
 * shared across processes: the revision is read, bumped and written back inside the same
 * transaction as the data and the log entry, so two writer processes can never take the same
 * revision or lose an update, and the log has exactly one entry per revision with no holes.
 *
 * Watches read the log. lmdb-js has no cross-process change notification, so a waiting watcher
 * polls `meta.revision` every `pollIntervalMs` (a read-transaction renew and one get, a few µs);
 * writes made through any store in this process wake it at once.
 *
 * Validation runs inside the write transaction, on a decoded copy of the validated keys that each
 * handle keeps in memory and brings up to date from the log (see `#validate`): a validated write
 * decodes only what changed since the handle's last write, not the whole store.
 */
import { resolve as resolvePath } from 'node:path';
import { ABORT, open, type Database, type RootDatabase, type Transaction } from 'lmdb';
import type { Issue } from '../model/issue.ts';
import { err, ok, type Result } from '../lib/result.ts';
import { checkKey, checkPrefix, checkRevision, checkTxn, compareKeys, deleteTxn, putTxn, type CheckedOp, type CheckedTxn } from './request.ts';
import type {
  ConfigStore,
  Expect,
  JsonValue,
  KeyValue,
  Listing,
  StoreError,
  StoreStatus,
  TxnRequest,
  ValidationOptions,
  Watch,
  WatchBatch,
  WatchEvent,
  WriteResult,
} from './types.ts';
import { casFailed, deepFreeze, refused, unavailable, ValidatorThrew } from './errors.ts';
import { introducedIssues, opTouchesRoots, resolveValidation, underRoots, type ResolvedValidation } from './validate.ts';

/** Options of {@link openLmdbStore}. */
export interface LmdbStoreOptions {
  /** Directory of the LMDB environment; created if missing. Every process uses the same path. */
  readonly path: string;
  /** Keyspace validation run inside each write that touches a validated key. */
  readonly validation?: ValidationOptions;
  /**
   * How often a waiting watcher checks for writes made by other processes, in ms (default 10).
   * Cross-process delivery latency is about half of this on average; in-process writes wake
   * watchers immediately. Polling runs only while some watcher waits.
   */
  readonly pollIntervalMs?: number;
  /**
   * Never fsync (LMDB `noSync`): only for throwaway stores (tests, labs); a machine crash can lose
   * or corrupt data. By default a write returns only after LMDB has flushed it to disk, so an
   * acknowledged write survives power loss.
   */
  readonly noSync?: boolean;
}

/** An entry as stored in `kv`. */
interface StoredEntry {
  readonly value: JsonValue;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
}

/** An event as stored in `log` (the revision is the log key). */
type LoggedEvent =
  | { readonly type: 'put'; readonly key: string; readonly value: JsonValue; readonly createRevision: number; readonly version: number }
  | { readonly type: 'delete'; readonly key: string };

/** The validated keys, decoded, as of `revision` (see `LmdbConfigStore#validate`). */
interface ValidationCache {
  revision: number;
  readonly entries: Map<string, unknown>;
}

/** On-disk layout version, bumped on any incompatible change to the three databases. */
const FORMAT = 1;

/** Revisions read from the log per pull of a watch: bounds the work and memory of one step. */
const HISTORY_PAGE = 256;

const DEFAULT_POLL_MS = 10;

/**
 * Stores of this process by environment path, so a write through one handle wakes the watchers
 * of every other handle on the same path without waiting for their poll.
 */
const localStores = new Map<string, Set<LmdbConfigStore>>();

/**
 * Opens (or creates) the store at `options.path`. Fails with `unavailable` when LMDB cannot open
 * it, or when the directory holds a layout this build does not read.
 */
export function openLmdbStore(options: LmdbStoreOptions): Result<LmdbConfigStore, StoreError> {
  const path = resolvePath(options.path);
  let root: RootDatabase;
  try {
    root = open({
      path,
      // Values are JSON, never msgpack: what a backend hands back must equal what etcd's bytes
      // would decode to, and JSON needs no shared-structure records synchronised across processes.
      encoding: 'json',
      maxDbs: 8,
      noSync: options.noSync ?? false,
    });
  } catch (cause) {
    return err(unavailable(`open store at ${path}: ${(cause as Error).message}; check the directory exists and is writable`, cause));
  }
  const dbs = {
    kv: root.openDB<StoredEntry, string>({ name: 'kv', encoding: 'json' }),
    log: root.openDB<LoggedEvent[], number>({ name: 'log', encoding: 'json' }),
    meta: root.openDB<number, string>({ name: 'meta', encoding: 'json' }),
  };
  const format = dbs.meta.get('format');
  if (format === undefined) {
    root.transactionSync(() => {
      if (dbs.meta.get('format') === undefined) dbs.meta.putSync('format', FORMAT);
    });
  } else if (format !== FORMAT) {
    void root.close();
    return err(unavailable(`open store at ${path}: on-disk format ${format}, this build reads format ${FORMAT}; use a matching anyedge version`));
  }
  return ok(new LmdbConfigStore(path, root, dbs, options));
}

interface Waiter {
  readonly next: number;
  readonly wake: () => void;
}

/** A page of history read from one snapshot. */
interface HistoryPage {
  readonly batches: readonly WatchBatch[];
  /** First revision not yet read. */
  readonly next: number;
  /** Store revision of the snapshot. */
  readonly revision: number;
}

/** The LMDB backend of {@link ConfigStore}. Create it with {@link openLmdbStore}. */
export class LmdbConfigStore implements ConfigStore {
  /** Absolute path of the environment directory. */
  readonly path: string;
  readonly #root: RootDatabase;
  readonly #kv: Database<StoredEntry, string>;
  readonly #log: Database<LoggedEvent[], number>;
  readonly #meta: Database<number, string>;
  readonly #validation: ResolvedValidation | undefined;
  readonly #pollMs: number;
  readonly #waiters = new Set<Waiter>();
  /** Decoded validated keys at a revision, see {@link #validate}; built on the first validated write. */
  #cache: ValidationCache | undefined;
  /** Undoes the current write's changes to {@link #cache} if its transaction does not commit. */
  #pendingCache: (() => void) | undefined;
  #cacheRebuilds = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** @internal Use {@link openLmdbStore}. */
  constructor(
    path: string,
    root: RootDatabase,
    dbs: { kv: Database<StoredEntry, string>; log: Database<LoggedEvent[], number>; meta: Database<number, string> },
    options: LmdbStoreOptions,
  ) {
    this.path = path;
    this.#root = root;
    this.#kv = dbs.kv;
    this.#log = dbs.log;
    this.#meta = dbs.meta;
    this.#validation = resolveValidation(options.validation);
    this.#pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
    let set = localStores.get(path);
    if (!set) localStores.set(path, (set = new Set()));
    set.add(this);
  }

  // ---- reads -------------------------------------------------------------------------------

  /**
   * Runs `fn` on a fresh read snapshot. lmdb-js keeps reusing one read transaction for a whole
   * event-loop turn, which can be older than another process's last commit; resetting first makes
   * every call see the latest commit, and one explicit transaction makes multi-read calls (list +
   * revision) consistent.
   */
  #read<T>(op: string, fn: (txn: Transaction) => Result<T, StoreError>): Result<T, StoreError> {
    if (this.#closed) return err(unavailable(`${op}: store ${this.path} is closed`));
    let txn: Transaction | undefined;
    try {
      this.#root.resetReadTxn();
      txn = this.#root.useReadTransaction();
      return fn(txn);
    } catch (cause) {
      return err(unavailable(`${op}: reading store ${this.path} failed: ${(cause as Error).message}`, cause));
    } finally {
      txn?.done();
    }
  }

  #revisionIn(txn?: Transaction): number {
    return this.#meta.get('revision', txn ? { transaction: txn } : undefined) ?? 0;
  }

  #compactRevisionIn(txn?: Transaction): number {
    return this.#meta.get('compactRevision', txn ? { transaction: txn } : undefined) ?? 0;
  }

  /** {@inheritDoc ConfigStore.get} */
  async get(key: string): Promise<Result<KeyValue | undefined, StoreError>> {
    const k = checkKey('get', key);
    if (!k.ok) return k;
    return this.#read('get ' + key, (transaction) => {
      const e = this.#kv.get(key, { transaction });
      return ok(e && { key, ...e });
    });
  }

  /** {@inheritDoc ConfigStore.list} */
  async list(prefix: string): Promise<Result<Listing, StoreError>> {
    const p = checkPrefix('list', prefix);
    if (!p.ok) return p;
    return this.#read('list ' + prefix, (transaction) => {
      const entries: KeyValue[] = [];
      // Keys are ordered by their UTF-8 bytes, so the keys with a given prefix are one contiguous
      // run starting at the prefix itself: stop at the first key outside it.
      for (const { key, value } of this.#kv.getRange({ start: prefix || '/', transaction })) {
        if (!key.startsWith(prefix)) break;
        entries.push({ key, ...value });
      }
      return ok({ revision: this.#revisionIn(transaction), entries });
    });
  }

  /** {@inheritDoc ConfigStore.status} */
  async status(): Promise<Result<StoreStatus, StoreError>> {
    return this.#read('status', (txn) => ok({ revision: this.#revisionIn(txn), compactRevision: this.#compactRevisionIn(txn) }));
  }

  // ---- writes ------------------------------------------------------------------------------

  /** {@inheritDoc ConfigStore.put} */
  async put(key: string, value: unknown, expect?: Expect): Promise<Result<WriteResult, StoreError>> {
    return this.#write('put', putTxn(key, value, expect));
  }

  /** {@inheritDoc ConfigStore.delete} */
  async delete(key: string, expect?: Expect): Promise<Result<WriteResult, StoreError>> {
    return this.#write('delete', deleteTxn(key, expect));
  }

  /** {@inheritDoc ConfigStore.deletePrefix} */
  async deletePrefix(prefix: string): Promise<Result<WriteResult, StoreError>> {
    return this.#write('deletePrefix', { then: [{ op: 'deletePrefix', prefix }] });
  }

  /** {@inheritDoc ConfigStore.txn} */
  async txn(request: TxnRequest): Promise<Result<WriteResult, StoreError>> {
    return this.#write('txn', request);
  }

  /** Every write is a transaction; `op` names the caller's operation in messages. */
  async #write(op: 'put' | 'delete' | 'deletePrefix' | 'txn', request: TxnRequest): Promise<Result<WriteResult, StoreError>> {
    const checked = checkTxn(request, op);
    if (!checked.ok) return checked;
    if (this.#closed) return err(unavailable(`${op}: store ${this.path} is closed`));
    // `as`: TypeScript cannot see the assignment inside the callback and would narrow to `err`.
    let outcome = err(unavailable(`${op}: transaction did not run`)) as Result<WriteResult, StoreError>;
    let committed = false;
    try {
      // transactionSync holds the cross-process write lock for the body and returns after the
      // commit is flushed to disk (lmdb-js's default flags). It blocks this thread meanwhile (about
      // half a millisecond on an SSD, see bench/store.bench.ts), acceptable for config writes.
      this.#root.transactionSync(() => {
        outcome = this.#applyInTxn(op, checked.value);
        // Abort refusals and no-ops: nothing of them may reach disk, not even an empty commit.
        return outcome.ok && outcome.value.changed > 0 ? undefined : ABORT;
      });
      committed = true;
    } catch (cause) {
      if (cause instanceof ValidatorThrew) throw cause.cause;
      return err(unavailable(`${op}: write to store ${this.path} failed: ${(cause as Error).message}`, cause));
    } finally {
      this.#settleCache(committed && outcome.ok && outcome.value.changed > 0 ? outcome.value.revision : undefined);
    }
    const result = outcome;
    if (result.ok && result.value.changed > 0) {
      // Wake this process's watchers now (other processes find the write by polling).
      for (const s of localStores.get(this.path) ?? []) s.#onRevision(result.value.revision);
    }
    return result;
  }

  /**
   * After a write transaction: on commit at `revision`, the validation cache (which holds the
   * write's changes, or needed none because the write touched no validated key) moves to it; on
   * abort or failure the write's changes are taken out of the cache again.
   */
  #settleCache(revision: number | undefined): void {
    const rollback = this.#pendingCache;
    this.#pendingCache = undefined;
    const cache = this.#cache;
    if (!cache) return;
    if (revision === undefined) rollback?.();
    else if (cache.revision === revision - 1) cache.revision = revision;
  }

  /**
   * The body of every write, inside LMDB's write transaction: check conditions, work out the
   * changes, validate, then write data, log entry and revision together. Returns the outcome; the
   * caller aborts the transaction unless it changed something.
   */
  #applyInTxn(op: string, txn: CheckedTxn): Result<WriteResult, StoreError> {
    const current = this.#revisionIn();
    for (const c of txn.conditions) {
      const failed = casFailed(op, c, this.#kv.get(c.key));
      if (failed) return err(failed);
    }

    const revision = current + 1;
    // key → new entry, or null for a delete. Built before writing anything so validation sees
    // the whole change and a refusal leaves nothing to undo.
    const changes = new Map<string, StoredEntry | null>();
    for (const o of txn.ops) {
      if (o.op === 'put') {
        const prev = this.#kv.get(o.key);
        changes.set(o.key, {
          value: o.value,
          createRevision: prev ? prev.createRevision : revision,
          modRevision: revision,
          version: prev ? prev.version + 1 : 1,
        });
      } else if (o.op === 'delete') {
        if (this.#kv.doesExist(o.key)) changes.set(o.key, null);
      } else {
        for (const key of this.#kv.getKeys({ start: o.prefix })) {
          if (!key.startsWith(o.prefix)) break;
          changes.set(key, null);
        }
      }
    }
    if (changes.size === 0) return ok({ revision: current, changed: 0 });

    const refused = this.#validate(op, current, txn.ops, changes);
    if (refused) return err(refused);

    const keys = [...changes.keys()].sort(compareKeys);
    const events: LoggedEvent[] = [];
    for (const key of keys) {
      const entry = changes.get(key);
      if (entry) {
        this.#kv.putSync(key, entry);
        events.push({ type: 'put', key, value: entry.value, createRevision: entry.createRevision, version: entry.version });
      } else {
        this.#kv.removeSync(key);
        events.push({ type: 'delete', key });
      }
    }
    this.#log.putSync(revision, events);
    this.#meta.putSync('revision', revision);
    return ok({ revision, changed: changes.size });
  }

  /**
   * Runs the validator on the keyspace as it would be after `changes`; returns the refusal or
   * undefined. On success the changes stay applied to the validation cache and
   * {@link #pendingCache} says how to undo them if the commit then fails.
   *
   * Cost: the validator sees a decoded copy of the validated keys kept in memory between writes
   * ({@link #cache}), brought up to date from the log, so a write decodes only the values changed
   * since this handle's last write (by any process), never the whole store; the first validated
   * write of a handle reads every key under the roots once. What remains per write is the
   * validator's own cost (a whole-keyspace check is O(keys) or worse), and, only when it finds
   * issues, a second run on the keyspace before the write to tell new issues from old ones.
   */
  #validate(op: string, current: number, ops: readonly CheckedOp[], changes: ReadonlyMap<string, StoredEntry | null>): StoreError | undefined {
    const v = this.#validation;
    if (!v || !ops.some((o) => opTouchesRoots(o, v.roots))) return undefined;
    const cache = this.#syncCache(v, current);
    // Apply the write to the cache in place (no copy of the keyspace), remembering how to undo it.
    const undo = new Map<string, { readonly had: boolean; readonly value: unknown }>();
    for (const key of changes.keys()) {
      if (!underRoots(key, v.roots)) continue;
      undo.set(key, { had: cache.entries.has(key), value: cache.entries.get(key) });
    }
    const apply = (): void => {
      for (const key of undo.keys()) {
        const entry = changes.get(key);
        if (entry) cache.entries.set(key, deepFreeze(entry.value));
        else cache.entries.delete(key);
      }
    };
    const rollback = (): void => {
      for (const [key, u] of undo) {
        if (u.had) cache.entries.set(key, u.value);
        else cache.entries.delete(key);
      }
    };
    apply();
    let issues: readonly Issue[];
    try {
      issues = v.validator(cache.entries);
      if (issues.length) {
        // Only when the result is bad: find which issues this write introduced (see validate.ts).
        rollback();
        issues = introducedIssues(v.validator(cache.entries), issues);
        if (issues.length === 0) apply();
      }
    } catch (cause) {
      rollback();
      throw new ValidatorThrew(cause);
    }
    if (issues.length === 0) {
      this.#pendingCache = rollback;
      return undefined;
    }
    return refused(op, ops, issues);
  }

  /**
   * Brings the validation cache to `current` inside the write transaction: replays the log
   * entries written since the cache's revision (by other handles or processes), or, when there is
   * no cache yet or the log no longer reaches back to it (compaction), reads every key under the
   * roots.
   */
  #syncCache(v: ResolvedValidation, current: number): ValidationCache {
    const cache = this.#cache;
    if (cache && cache.revision <= current && cache.revision + 1 >= this.#compactRevisionIn()) {
      let rev = cache.revision + 1;
      for (; rev <= current; rev++) {
        const logged = this.#log.get(rev);
        if (!logged) break;
        for (const e of logged) {
          if (!underRoots(e.key, v.roots)) continue;
          if (e.type === 'put') cache.entries.set(e.key, deepFreeze(e.value));
          else cache.entries.delete(e.key);
        }
      }
      cache.revision = rev - 1;
      if (rev > current) return cache;
    }
    const entries = new Map<string, unknown>();
    for (const root of v.roots) {
      for (const { key, value } of this.#kv.getRange({ start: root })) {
        if (!key.startsWith(root)) break;
        entries.set(key, deepFreeze(value.value));
      }
    }
    this.#cacheRebuilds++;
    return (this.#cache = { revision: current, entries });
  }

  /** @internal How often the validation cache was read in full (for tests: once per handle). */
  get cacheRebuilds(): number {
    return this.#cacheRebuilds;
  }

  /** {@inheritDoc ConfigStore.compact} */
  async compact(revision: number): Promise<Result<StoreStatus, StoreError>> {
    const r = checkRevision('compact', revision);
    if (!r.ok) return r;
    if (this.#closed) return err(unavailable(`compact: store ${this.path} is closed`));
    let outcome = err(unavailable('compact: transaction did not run')) as Result<StoreStatus, StoreError>;
    try {
      this.#root.transactionSync(() => {
        const current = this.#revisionIn();
        const compacted = this.#compactRevisionIn();
        if (revision > current) {
          outcome = err({ code: 'bad_request', message: `compact ${revision}: the store is only at revision ${current}; compact to ${current} or less` });
          return ABORT;
        }
        if (revision <= compacted) {
          outcome = ok({ revision: current, compactRevision: compacted });
          return ABORT;
        }
        // Collect first: deleting under a live cursor would skip keys.
        const old = [...this.#log.getKeys({ start: compacted, end: revision })];
        for (const k of old) this.#log.removeSync(k);
        this.#meta.putSync('compactRevision', revision);
        outcome = ok({ revision: current, compactRevision: revision });
        return undefined;
      });
    } catch (cause) {
      return err(unavailable(`compact ${revision}: write to store ${this.path} failed: ${(cause as Error).message}`, cause));
    }
    return outcome;
  }

  // ---- watch -------------------------------------------------------------------------------

  /** {@inheritDoc ConfigStore.watch} */
  watch(prefix: string, afterRevision: number): Watch {
    return new LmdbWatch(this, prefix, afterRevision);
  }

  /** @internal Whether the cross-process poll timer runs (for tests: it must stop when idle). */
  get polling(): boolean {
    return this.#timer !== undefined;
  }

  /** @internal Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * @internal Reads up to {@link HISTORY_PAGE} revisions of history from `from` on, keeping the
   * events under `prefix`, from one snapshot (so revision, compaction point and log agree).
   */
  readHistory(prefix: string, from: number): Result<HistoryPage, StoreError> {
    return this.#read(`watch ${prefix}`, (transaction) => {
      const revision = this.#revisionIn(transaction);
      const compactRevision = this.#compactRevisionIn(transaction);
      if (from < compactRevision) {
        return err({
          code: 'compacted',
          compactRevision,
          message:
            `watch ${prefix || '/'} after revision ${from - 1}: history before revision ${compactRevision} was compacted; ` +
            `list ${prefix || '/'} again and watch after the listing's revision`,
        });
      }
      if (from > revision) return ok({ batches: [], next: from, revision });
      const to = Math.min(revision, from + HISTORY_PAGE - 1);
      const batches: WatchBatch[] = [];
      let expected = from;
      for (const { key: rev, value: logged } of this.#log.getRange({ start: from, end: to + 1, transaction })) {
        // One log entry per revision is an invariant of the write path; a hole would silently
        // drop changes for every watcher, so report it instead of skipping.
        if (rev !== expected) break;
        const events: WatchEvent[] = [];
        for (const e of logged) {
          if (!e.key.startsWith(prefix)) continue;
          events.push(e.type === 'put' ? { ...e, revision: rev } : { type: 'delete', key: e.key, revision: rev });
        }
        if (events.length) batches.push({ revision: rev, events });
        expected++;
      }
      if (expected !== to + 1) {
        return err(unavailable(`watch ${prefix || '/'}: history of store ${this.path} has no entry for revision ${expected}; the store is damaged`));
      }
      return ok({ batches, next: to + 1, revision });
    });
  }

  /**
   * @internal Resolves once the store revision reaches `next`, the store closes, or the returned
   * cancel function is called.
   */
  waitFor(next: number): { done: Promise<void>; cancel: () => void } {
    let waiter!: Waiter;
    const done = new Promise<void>((resolve) => {
      waiter = {
        next,
        wake: () => {
          this.#waiters.delete(waiter);
          if (this.#waiters.size === 0) this.#stopPolling();
          resolve();
        },
      };
    });
    if (this.#closed) waiter.wake();
    else {
      this.#waiters.add(waiter);
      this.#startPolling();
    }
    return { done, cancel: () => waiter.wake() };
  }

  #onRevision(revision: number): void {
    for (const w of [...this.#waiters]) if (revision >= w.next) w.wake();
  }

  #startPolling(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => {
      // Read the revision outside #read: no Result needed, and a failure (the environment went
      // away) is left for the watcher's next readHistory to report.
      try {
        this.#root.resetReadTxn();
        this.#onRevision(this.#revisionIn());
      } catch {
        for (const w of [...this.#waiters]) w.wake();
      }
    }, this.#pollMs);
  }

  #stopPolling(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** {@inheritDoc ConfigStore.close} */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
    // Waking the watchers makes each see the closed store and end with `unavailable`.
    for (const w of [...this.#waiters]) w.wake();
    const set = localStores.get(this.path);
    set?.delete(this);
    if (set?.size === 0) localStores.delete(this.path);
    await this.#root.close();
  }
}

/** A watch on an {@link LmdbConfigStore}: pulls history pages, waits for new revisions. */
class LmdbWatch implements Watch {
  readonly #store: LmdbConfigStore;
  readonly #iterator: AsyncGenerator<Result<WatchBatch, StoreError>, void, undefined>;
  #closed = false;
  #cancelWait: (() => void) | undefined;

  constructor(store: LmdbConfigStore, prefix: string, afterRevision: number) {
    this.#store = store;
    this.#iterator = this.#run(prefix, afterRevision);
  }

  [Symbol.asyncIterator](): AsyncIterator<Result<WatchBatch, StoreError>> {
    return this.#iterator;
  }

  close(): void {
    this.#closed = true;
    this.#cancelWait?.();
  }

  async *#run(prefix: string, afterRevision: number): AsyncGenerator<Result<WatchBatch, StoreError>, void, undefined> {
    try {
      const p = checkPrefix('watch', prefix);
      if (!p.ok) return yield p;
      const a = checkRevision('watch', afterRevision);
      if (!a.ok) return yield a;
      let next = afterRevision + 1;
      while (!this.#closed) {
        if (this.#store.closed) {
          yield err(unavailable(`watch ${prefix || '/'}: store ${this.#store.path} was closed`));
          return;
        }
        const page = this.#store.readHistory(prefix, next);
        if (!page.ok) return yield page;
        for (const batch of page.value.batches) {
          yield ok(batch);
          if (this.#closed) return;
        }
        next = page.value.next;
        // Wait only when this page was empty: after yielding, the page's revision may be stale
        // (writes made while the consumer held a batch woke nobody), so read again first.
        if (page.value.batches.length === 0 && next > page.value.revision) {
          const wait = this.#store.waitFor(next);
          this.#cancelWait = wait.cancel;
          await wait.done;
          this.#cancelWait = undefined;
        }
      }
    } finally {
      // Ended by break/return while waiting: release the waiter so polling can stop.
      this.#cancelWait?.();
    }
  }
}
