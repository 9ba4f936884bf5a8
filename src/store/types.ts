/**
 * The `ConfigStore` contract: a replicated key → JSON store with a global revision and a watchable
 * history, modelled on etcd's KV/Txn/Watch API so the embedded LMDB backend and a later etcd
 * backend are interchangeable and run the same suite (`contract.ts`).
 *
 * Revisions: every committed write that changes at least one key takes the next global revision
 * (one per transaction, however many keys it touches). Each entry carries etcd's three counters:
 * `createRevision` (revision that created it), `modRevision` (revision of its last change) and
 * `version` (number of changes since creation; a deleted key is gone, a re-created one starts at 1).
 */
import type { Issue } from '../model/issue.ts';
import type { Result } from '../lib/result.ts';
import type { KeyspaceValidator } from './validator.ts';

/** A decoded JSON value as the store hands it out (values are stored as JSON text). */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** One stored entry. */
export interface KeyValue {
  /** Full key, e.g. `/tenants/acme/prefixes/p0`. */
  readonly key: string;
  /** The value, as JSON gives it back (`JSON.parse(JSON.stringify(written))`). */
  readonly value: JsonValue;
  /** Revision of the write that created this key (since its last deletion). */
  readonly createRevision: number;
  /** Revision of the last write to this key. */
  readonly modRevision: number;
  /** Writes since creation: 1 after the create, +1 per later put. */
  readonly version: number;
}

/** All entries under a prefix, read from one snapshot, and the revision of that snapshot. */
export interface Listing {
  /** Store revision the listing was read at: watch with `afterRevision = revision` to follow it. */
  readonly revision: number;
  /** Entries sorted by key (byte order of the UTF-8 key). */
  readonly entries: readonly KeyValue[];
}

/** The store's counters. */
export interface StoreStatus {
  /** Revision of the last committed change (0 for an empty, never written store). */
  readonly revision: number;
  /** Oldest revision the history still holds: watching needs `afterRevision >= compactRevision - 1`. */
  readonly compactRevision: number;
}

/**
 * Expectation on a key's current state, compared for equality. A key that does not exist has
 * `modRevision` 0 and `version` 0, so `{ version: 0 }` means "must not exist" (see {@link ABSENT}).
 */
export type Expect = { readonly modRevision: number } | { readonly version: number };

/** An {@link Expect} bound to a key: one condition of a transaction. */
export type Condition = Expect & { readonly key: string };

/** "The key must not exist": create-only puts, `{ key, ...ABSENT }` in a transaction. */
export const ABSENT: Expect = Object.freeze({ version: 0 });

/** One write of a transaction. */
export type Op =
  | { readonly op: 'put'; readonly key: string; readonly value: unknown }
  | { readonly op: 'delete'; readonly key: string }
  /** Deletes every key starting with `prefix` (byte prefix: `/a/` does not cover `/ab`). */
  | { readonly op: 'deletePrefix'; readonly prefix: string };

/**
 * A transaction: if every condition holds, all ops are applied at one new revision; otherwise
 * nothing is written (`cas_failed`). No two ops may touch the same key (a put under a deleted
 * prefix counts), as in etcd, so the outcome never depends on op order.
 */
export interface TxnRequest {
  /** Conditions, all of which must hold. Empty or absent: unconditional. */
  readonly if?: readonly Condition[];
  /** The writes. */
  readonly then: readonly Op[];
}

/** Outcome of a committed write. */
export interface WriteResult {
  /**
   * The write's revision, or the unchanged current revision when `changed` is 0 (e.g. deleting a
   * key that does not exist): a write that changes nothing does not use up a revision, as in etcd.
   */
  readonly revision: number;
  /** Number of keys put or deleted. */
  readonly changed: number;
}

/** A change seen by a watcher. Put events carry the entry as written. */
export type WatchEvent =
  | {
      readonly type: 'put';
      readonly key: string;
      readonly value: JsonValue;
      /** Revision of the transaction (= the entry's modRevision). */
      readonly revision: number;
      readonly createRevision: number;
      readonly version: number;
    }
  | { readonly type: 'delete'; readonly key: string; readonly revision: number };

/** The events of one transaction that match the watched prefix, delivered together. */
export interface WatchBatch {
  /** The transaction's revision; strictly increasing along a watch. */
  readonly revision: number;
  /** Its matching events in key order, never empty. */
  readonly events: readonly WatchEvent[];
}

/**
 * A running watch: an async iterable of batches, one per transaction that touched the prefix,
 * first the history after the start revision, then live changes, in revision order, with none
 * missing or repeated. Iterate it once.
 *
 * Failures arrive as values: an `{ ok: false }` item (`compacted`, `unavailable`, `bad_request`)
 * is the last one; the iteration then ends. Iteration also ends, without an error item, after
 * {@link Watch.close}. A slow consumer is never dropped: batches are read from the history as it
 * pulls them, so it only falls behind (and may meet `compacted` if history is compacted past it).
 *
 * @example
 * for await (const item of store.watch('/tenants/', saved)) {
 *   if (!item.ok) { relist(); break; }
 *   apply(item.value.events);
 *   saved = item.value.revision; // persist: restart with watch('/tenants/', saved)
 * }
 */
export interface Watch extends AsyncIterable<Result<WatchBatch, StoreError>> {
  /** Stops the watch: a pending or later pull ends the iteration. Idempotent. */
  close(): void;
}

/**
 * Expected failures of store operations. Every variant has a `message` that names the operation
 * and the key and says what to do.
 */
export type StoreError =
  /** A condition did not hold; nothing was written. Re-read the key and retry. */
  | {
      readonly code: 'cas_failed';
      readonly key: string;
      /** What the condition expected (0 = absent). */
      readonly expected: Expect;
      /** The key's actual state (0 = absent). */
      readonly actual: { readonly modRevision: number; readonly version: number };
      readonly message: string;
    }
  /** The validator refused the keyspace the write would produce; nothing was written. */
  | { readonly code: 'invalid'; readonly issues: readonly Issue[]; readonly key?: string; readonly message: string }
  /** The caller's request is malformed (bad key, non-JSON value, duplicate keys in a txn, future revision). */
  | { readonly code: 'bad_request'; readonly key?: string; readonly message: string }
  /** History before `compactRevision` is gone: list again and watch from the listing's revision. */
  | { readonly code: 'compacted'; readonly compactRevision: number; readonly key?: string; readonly message: string }
  /** The store cannot serve the request (closed, disk or backend failure); may succeed later. */
  | { readonly code: 'unavailable'; readonly key?: string; readonly message: string; readonly cause?: unknown };

/** The `code` of a {@link StoreError}. */
export type StoreErrorCode = StoreError['code'];

/**
 * Keyspace validation run inside every write that touches a validated key: the validator sees
 * every key under `roots` as it would be after the write, and the write commits only if it adds no
 * issue. Issues already present before the write (data written before a stricter validator was
 * deployed) do not block it, so such data can be repaired one write at a time.
 */
export interface ValidationOptions {
  /** The keyspace check, e.g. `validateKeyspace` from `model/keyspace.ts`. */
  readonly validator: KeyspaceValidator;
  /**
   * Key prefixes the validator owns (default `['/']`, everything). Writes touching no key under
   * them skip validation (e.g. agent status keys), and only these keys are passed to it.
   */
  readonly roots?: readonly string[];
}

/**
 * A replicated configuration store. All operations are asynchronous so that a networked backend
 * (etcd) fits; failures that callers must handle are `Result` errors, never exceptions.
 */
export interface ConfigStore {
  /** The entry at `key`, or undefined when it does not exist. */
  get(key: string): Promise<Result<KeyValue | undefined, StoreError>>;
  /** Every entry whose key starts with `prefix` (`''` or `'/'`: all), from one snapshot. */
  list(prefix: string): Promise<Result<Listing, StoreError>>;
  /** Current revision and compaction point. */
  status(): Promise<Result<StoreStatus, StoreError>>;
  /** Writes `value` (any JSON-serialisable value) at `key`, if `expect` holds (see {@link ABSENT}). */
  put(key: string, value: unknown, expect?: Expect): Promise<Result<WriteResult, StoreError>>;
  /** Deletes `key` if `expect` holds; deleting a missing key succeeds with `changed: 0`. */
  delete(key: string, expect?: Expect): Promise<Result<WriteResult, StoreError>>;
  /** Deletes every key starting with `prefix` (must start with `/`) at one revision. */
  deletePrefix(prefix: string): Promise<Result<WriteResult, StoreError>>;
  /** Applies `request.then` atomically if every condition in `request.if` holds. */
  txn(request: TxnRequest): Promise<Result<WriteResult, StoreError>>;
  /**
   * Watches keys starting with `prefix` for changes with revision greater than `afterRevision`:
   * pass a listing's `revision`, or the last revision you applied, to resume exactly after it.
   * `afterRevision` 0 replays the whole history (if not compacted).
   */
  watch(prefix: string, afterRevision: number): Watch;
  /**
   * Drops history older than `revision` (it must not exceed the current revision): watches
   * needing an earlier revision then get `compacted`. Current values are kept. Compacting to or
   * below the present compaction point does nothing.
   */
  compact(revision: number): Promise<Result<StoreStatus, StoreError>>;
  /** Closes the store: running watches end with `unavailable`, later calls return `unavailable`. */
  close(): Promise<void>;
}
