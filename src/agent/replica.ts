/**
 * The agent's local replica of the config: an LMDB environment in its state directory holding
 * every config entry (keys under CONFIG_ROOTS, JSON values), the store revision they are as of,
 * and the last revision the agent applied to the kernel. With it an agent that restarts while
 * the store is down still knows the last config it saw and can make a rebooted kernel equal to it.
 *
 * Entries and their revision change together in one LMDB transaction, so a crash at any moment
 * leaves either the old pair or the new one, never entries of one revision labelled with another:
 * the agent resumes its watch from exactly after the revision the entries reflect.
 *
 * Layout (format 1), two named databases in `<stateDir>/replica`:
 * - `entries` key → value (JSON)
 * - `meta`    `format`, `revision` (entries as of), `appliedRevision`
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { err, ok, type Result } from '../lib/result.ts';
import { CONFIG_ROOTS } from '../model/keyspace.ts';
import type { JsonValue, WatchEvent } from '../store/types.ts';

const FORMAT = 1;

/** A failed replica operation: what was attempted on which directory, why, and what to do. */
export interface ReplicaError {
  readonly code: 'replica';
  /** The replica's directory. */
  readonly path: string;
  readonly message: string;
  readonly cause?: unknown;
}

/** What the replica holds. */
export interface ReplicaState {
  /** Store revision the entries are as of (0: never filled). */
  readonly revision: number;
  /** Last revision whose config the kernel was made equal to (0: none yet). */
  readonly appliedRevision: number;
  /** Config entries by key. */
  readonly entries: ReadonlyMap<string, JsonValue>;
}

/** Whether a store key belongs to the config (and so to the replica). */
export function isConfigKey(key: string): boolean {
  return CONFIG_ROOTS.some((root) => key.startsWith(root));
}

type Meta = Database<number, string>;

/** The replica. Open with {@link Replica.open}; close when done. */
export class Replica {
  readonly path: string;
  readonly #root: RootDatabase;
  readonly #entries: Database<JsonValue, string>;
  readonly #meta: Meta;
  #closed = false;

  private constructor(path: string, root: RootDatabase, entries: Database<JsonValue, string>, meta: Meta) {
    this.path = path;
    this.#root = root;
    this.#entries = entries;
    this.#meta = meta;
  }

  /** Opens (creating if needed) the replica under `stateDir`. */
  static open(stateDir: string): Result<Replica, ReplicaError> {
    const path = resolve(join(stateDir, 'replica'));
    const fail = (what: string, cause: unknown, remedy: string): Result<Replica, ReplicaError> =>
      err({ code: 'replica', path, message: `open replica ${path}: ${what}; ${remedy}`, cause });
    let root: RootDatabase;
    try {
      mkdirSync(path, { recursive: true });
      root = open({ path, encoding: 'json', maxDbs: 4 });
    } catch (cause) {
      return fail((cause as Error).message, cause, 'check that --state-dir exists and is writable by the agent');
    }
    try {
      const entries = root.openDB<JsonValue, string>({ name: 'entries', encoding: 'json' });
      const meta = root.openDB<number, string>({ name: 'meta', encoding: 'json' });
      const format = meta.get('format');
      if (format === undefined) {
        root.transactionSync(() => {
          if (meta.get('format') === undefined) meta.putSync('format', FORMAT);
        });
      } else if (format !== FORMAT) {
        void root.close();
        return fail(`on-disk format ${String(format)}, this build reads format ${FORMAT}`, undefined, 'use a matching anyedge version, or remove the directory (the agent then fetches the config from the store again)');
      }
      return ok(new Replica(path, root, entries, meta));
    } catch (cause) {
      void root.close();
      return fail((cause as Error).message, cause, 'remove the directory if it is damaged; the agent fetches the config from the store again');
    }
  }

  /** Everything the replica holds, read from one snapshot. */
  load(): Result<ReplicaState, ReplicaError> {
    const closed = this.#closedError('load');
    if (closed) return err(closed);
    try {
      return this.#root.transactionSync(() => {
        const entries = new Map<string, JsonValue>();
        for (const { key, value } of this.#entries.getRange()) entries.set(key, value);
        return ok({ revision: this.#meta.get('revision') ?? 0, appliedRevision: this.#meta.get('appliedRevision') ?? 0, entries });
      });
    } catch (cause) {
      return err(this.#failed('load', cause));
    }
  }

  /**
   * Applies one watch batch at `revision`: its events on config keys (others are ignored), and the
   * new revision, in one transaction. The revision must be newer than the replica's.
   */
  applyBatch(revision: number, events: readonly WatchEvent[]): Result<void, ReplicaError> {
    return this.#write(`apply batch at revision ${revision}`, revision, () => {
      for (const e of events) {
        if (!isConfigKey(e.key)) continue;
        if (e.type === 'put') this.#entries.putSync(e.key, e.value);
        else this.#entries.removeSync(e.key);
      }
    });
  }

  /** Replaces every entry with `entries` (config keys only) as of `revision`, in one transaction. */
  replace(revision: number, entries: Iterable<readonly [string, JsonValue]>): Result<void, ReplicaError> {
    return this.#write(`replace entries at revision ${revision}`, revision, () => {
      this.#entries.clearSync();
      for (const [key, value] of entries) if (isConfigKey(key)) this.#entries.putSync(key, value);
    }, true);
  }

  /**
   * Records that the kernel now matches the config as of `appliedRevision`. `asOf`, when given,
   * also moves the entries' revision forward to it: for when only non-config keys (status)
   * changed since, so the entries are still exactly the config as of `asOf`.
   */
  setApplied(appliedRevision: number, asOf?: number): Result<void, ReplicaError> {
    const closed = this.#closedError('set applied revision');
    if (closed) return err(closed);
    try {
      this.#root.transactionSync(() => {
        this.#meta.putSync('appliedRevision', appliedRevision);
        if (asOf !== undefined && asOf > (this.#meta.get('revision') ?? 0)) this.#meta.putSync('revision', asOf);
      });
      return ok(undefined);
    } catch (cause) {
      return err(this.#failed(`set applied revision ${appliedRevision}`, cause));
    }
  }

  /** Closes the environment. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#root.close();
  }

  #write(what: string, revision: number, body: () => void, allowSame = false): Result<void, ReplicaError> {
    const closed = this.#closedError(what);
    if (closed) return err(closed);
    if (!Number.isSafeInteger(revision) || revision < 0) return err({ code: 'replica', path: this.path, message: `${what}: revision must be a whole number ≥ 0` });
    try {
      return this.#root.transactionSync(() => {
        const current = this.#meta.get('revision') ?? 0;
        // A batch older than what the replica holds would roll it back: a bug in the caller.
        if (revision < current || (!allowSame && revision === current)) {
          return err({ code: 'replica', path: this.path, message: `${what}: the replica is already at revision ${current}; batches must come in increasing revision order` } satisfies ReplicaError);
        }
        body();
        this.#meta.putSync('revision', revision);
        return ok(undefined);
      });
    } catch (cause) {
      return err(this.#failed(what, cause));
    }
  }

  #closedError(what: string): ReplicaError | undefined {
    return this.#closed ? { code: 'replica', path: this.path, message: `${what}: replica ${this.path} is closed` } : undefined;
  }

  #failed(what: string, cause: unknown): ReplicaError {
    return { code: 'replica', path: this.path, message: `${what} in replica ${this.path}: ${(cause as Error)?.message ?? String(cause)}; check the disk (space, permissions)`, cause };
  }
}
