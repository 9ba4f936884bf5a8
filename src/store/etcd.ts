/**
 * The distributed `ConfigStore`: an etcd v3 cluster (Debian's etcd-server) through the `etcd3`
 * client, behind the same interface and contract suite as the LMDB backend.
 *
 * Layout: every key of a store lives under its namespace `prefix`, so several stores (and test
 * runs) share one cluster without seeing each other:
 * - `<prefix>/data<key>`  the entries, value = JSON text (`/tenants/acme` → `<prefix>/data/tenants/acme`)
 * - `<prefix>/meta/write` bumped by every write of every handle; validated writes compare its
 *   modRevision (see below). Never visible through the interface.
 *
 * Revisions are etcd's: global to the cluster, so on a shared cluster a store's own writes may
 * skip revisions other stores used. Each write is one etcd transaction, hence one revision, and
 * etcd's createRevision/modRevision/version are the interface's counters as they are.
 *
 * Writes come in two shapes:
 * - direct: one txn `if (conditions) then (ops + bump meta) else (read the condition keys)`. Used
 *   for unvalidated writes that put at least one key (they always change something).
 * - guarded: read at one revision (the meta key's modRevision M, which delete targets exist, and
 *   the validated keyspace), decide (no-op? issues?), then txn `if (meta.mod == M && conditions)
 *   then (ops + bump meta)`; if another write bumped the meta key meanwhile, start again
 *   (bounded). Used for validated writes and delete-only writes. Because every write bumps the
 *   meta key, nothing can change between the validation's read and the commit: two concurrent
 *   writers can never together produce a keyspace the validator would refuse, and a delete that
 *   finds nothing uses no revision (as in etcd and LMDB).
 *
 * Compaction: etcd's compaction at revision E drops a tombstone written exactly at E, so history
 * is complete only from E+1 on. The store therefore compacts etcd to `revision - 1` and reports
 * `compactRevision = E + 1`; watches are created one revision early so etcd itself refuses any
 * start that would need revision E (the extra revision's events are dropped).
 *
 * Watches use one endpoint at a time, in the order given, over their own gRPC stream; when the
 * stream fails (member killed, connection reset) the watch moves to the next endpoint and resumes
 * after the last revision it queued, so no event is missed or repeated.
 */
import { Etcd3, type IKeyValue, type IOptions, type IRequestOp, type ICompare, type IWatchResponse, type IRangeResponse } from 'etcd3';
import type { Duplex } from 'node:stream';
import type { Issue } from '../model/issue.ts';
import { err, ok, type Result } from '../lib/result.ts';
import { checkKey, checkPrefix, checkRevision, checkTxn, deleteTxn, putTxn, type CheckedOp, type CheckedTxn } from './request.ts';
import type {
  Condition,
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

/** Options of {@link openEtcdStore}. */
export interface EtcdStoreOptions {
  /** Client URLs of the members, e.g. `['http://127.0.0.1:2379']`. Watches try them in this order. */
  readonly endpoints: readonly string[];
  /**
   * Namespace of this store in etcd, e.g. `/anyedge`: every key it writes starts with it. Stores
   * sharing a cluster need prefixes of which none is a prefix of another's `<prefix>/data`.
   */
  readonly prefix: string;
  /** Keyspace validation run (atomically, see the module comment) with each write touching a validated key. */
  readonly validation?: ValidationOptions;
  /**
   * Deadline of each etcd request, and how long a watch keeps trying endpoints before it ends
   * with `unavailable`, in ms (default 5000). A member that hangs costs at most this much.
   */
  readonly timeoutMs?: number;
  /** Attempts of a guarded write when other writers keep bumping the meta key (default 50). */
  readonly maxWriteAttempts?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
const DEFAULT_WRITE_ATTEMPTS = 50;
/** Entries per range request of a listing: bounds one response (values are ≤ 1 MiB each). */
const LIST_PAGE = 500;
/** Batches queued by a watch before its stream is paused until the consumer catches up. */
const WATCH_HIGH_WATER = 1000;
/** etcd's own message for a revision below its compaction point. */
const COMPACTED_RE = /required revision has been compacted/;

function causeText(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/** The first key after every key starting with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  // All 0xff: no upper bound, which etcd spells as a single NUL byte.
  return Buffer.from([0]);
}

/**
 * Failures where the request certainly never reached etcd's state machine: no connection to the
 * member (it is down), or etcd's "no leader" refusal. Only these are retried.
 */
const NOT_SENT_RE = /No connection established|ECONNREFUSED|etcdserver: no leader/;

/**
 * The client's retry policy: try again (on another member, the pool picks one at random) only when
 * the request was never sent ({@link NOT_SENT_RE}). A deadline or a connection dropped mid-call is
 * not retried: the request may have been applied, and a second attempt of a write could apply it
 * twice (an extra revision, or a false `cas_failed`); the caller gets `unavailable` instead.
 */
function retryUnavailable(attempts: number): NonNullable<IOptions['faultHandling']>['global'] {
  const policy = {
    async execute<T>(fn: (context: unknown) => PromiseLike<T> | T): Promise<T> {
      let last: unknown;
      for (let i = 0; i < attempts; i++) {
        try {
          return await fn({ attempt: i, signal: new AbortController().signal });
        } catch (e) {
          if (!(e instanceof Error) || !NOT_SENT_RE.test(e.message)) throw e;
          last = e;
          // Short, growing pauses: a leader election on loopback takes a few hundred ms.
          await new Promise((resolve) => setTimeout(resolve, 20 * (i + 1)));
        }
      }
      throw last;
    },
  };
  return policy as unknown as NonNullable<IOptions['faultHandling']>['global'];
}

/**
 * Opens a store on the cluster at `options.endpoints` and checks that it answers; fails with
 * `unavailable` (naming the endpoints and the cause) when no member does within the timeout.
 */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<Result<EtcdConfigStore, StoreError>> {
  if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
    return err({ code: 'bad_request', message: 'open etcd store: endpoints must list at least one client URL, e.g. http://127.0.0.1:2379' });
  }
  // eslint-disable-next-line no-control-regex
  if (typeof options.prefix !== 'string' || options.prefix === '' || /[\u0000-\u001f\u007f]/.test(options.prefix)) {
    return err({ code: 'bad_request', message: `open etcd store: prefix ${JSON.stringify(options.prefix)} must be a non-empty string without control characters, e.g. /anyedge` });
  }
  const store = new EtcdConfigStore(options);
  const probe = await store.status();
  if (!probe.ok) {
    await store.close();
    return probe;
  }
  return ok(store);
}

/** The etcd backend of {@link ConfigStore}. Create it with {@link openEtcdStore}. */
export class EtcdConfigStore implements ConfigStore {
  /** The members' client URLs, in watch failover order. */
  readonly endpoints: readonly string[];
  /** The namespace prefix. */
  readonly prefix: string;
  readonly #timeoutMs: number;
  readonly #maxAttempts: number;
  readonly #validation: ResolvedValidation | undefined;
  readonly #data: Buffer;
  readonly #meta: Buffer;
  readonly #kv: Etcd3;
  /** One single-member client per endpoint for watch streams, made on first use. */
  readonly #watchClients = new Map<number, Etcd3>();
  readonly #watches = new Set<EtcdWatch>();
  /** Lower bound of etcd's compaction revision, learnt from earlier answers. */
  #knownCompact = 0;
  #closed = false;

  /** @internal Use {@link openEtcdStore}. */
  constructor(options: EtcdStoreOptions) {
    this.endpoints = [...options.endpoints];
    this.prefix = options.prefix;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxAttempts = options.maxWriteAttempts ?? DEFAULT_WRITE_ATTEMPTS;
    this.#validation = resolveValidation(options.validation);
    this.#data = Buffer.from(options.prefix + '/data');
    this.#meta = Buffer.from(options.prefix + '/meta/write');
    this.#kv = this.#client(this.endpoints);
  }

  #client(hosts: readonly string[]): Etcd3 {
    return new Etcd3({
      hosts: [...hosts],
      // Streams (watches) have no deadline; every unary call has one, so nothing hangs.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + this.#timeoutMs }),
      dialTimeout: this.#timeoutMs,
      faultHandling: { global: retryUnavailable(hosts.length + 2) },
      grpcOptions: {
        // A listing page or a validated write's read can exceed gRPC's 4 MiB default.
        'grpc.max_receive_message_length': 256 << 20,
        // Notice a member that vanished without closing the connection (cable, SIGSTOP). etcd
        // refuses pings more often than every 5 s (its --grpc-keepalive-min-time).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5000,
      },
    });
  }

  /** @internal The single-endpoint client watches use for `endpoints[i]`. */
  watchClient(i: number): Etcd3 {
    let c = this.#watchClients.get(i);
    if (!c) this.#watchClients.set(i, (c = this.#client([this.endpoints[i]!])));
    return c;
  }

  /** @internal The etcd key of a store key or prefix. */
  dataKey(key: string): Buffer {
    return Buffer.concat([this.#data, Buffer.from(key)]);
  }

  /** @internal The store key of an etcd key under the data prefix. */
  storeKey(key: Buffer): string {
    return key.subarray(this.#data.length).toString();
  }

  /** @internal The etcd range of a store prefix (`''` = everything; all store keys start with `/`). */
  dataRange(prefix: string): { key: Buffer; range_end: Buffer } {
    const key = this.dataKey(prefix === '' ? '/' : prefix);
    return { key, range_end: prefixEnd(key) };
  }

  get #where(): string {
    return `etcd ${this.endpoints.join(', ')} (prefix ${this.prefix})`;
  }

  /** An `unavailable` error for a failed etcd call, or the matching specific error. */
  #failure(op: string, cause: unknown, key?: string, write = false): StoreError {
    const text = causeText(cause);
    if (/too many operations in txn/.test(text)) {
      return { code: 'bad_request', ...(key === undefined ? {} : { key }), message: `${op}: too many operations for one etcd transaction (${text}); split it, or raise etcd's --max-txn-ops (default 128)` };
    }
    if (/request is too large/.test(text)) {
      return { code: 'bad_request', ...(key === undefined ? {} : { key }), message: `${op}: the request is larger than etcd accepts (${text}); split it, or raise etcd's --max-request-bytes` };
    }
    // A write that failed after it was sent may still commit: say so, the caller must re-read.
    const maybe = write && !NOT_SENT_RE.test(text) ? '; the write may or may not have been applied, re-read before retrying' : '';
    return unavailable(`${op}: ${this.#where} did not answer: ${text}${maybe}; check the members are running and reachable`, cause, key);
  }

  #closedError(op: string, key?: string): StoreError {
    return unavailable(`${op}: store on ${this.#where} is closed`, undefined, key);
  }

  /** Decodes an entry; a value that is not JSON was not written by a store. */
  #entry(kv: IKeyValue): Result<KeyValue, StoreError> {
    const key = this.storeKey(kv.key);
    let value: JsonValue;
    try {
      value = JSON.parse(kv.value.toString()) as JsonValue;
    } catch (cause) {
      return err(unavailable(`read ${key}: the value in ${this.#where} is not JSON (${causeText(cause)}); rewrite the key`, cause, key));
    }
    return ok({ key, value, createRevision: Number(kv.create_revision), modRevision: Number(kv.mod_revision), version: Number(kv.version) });
  }

  // ---- reads -------------------------------------------------------------------------------

  /** {@inheritDoc ConfigStore.get} */
  async get(key: string): Promise<Result<KeyValue | undefined, StoreError>> {
    const k = checkKey('get', key);
    if (!k.ok) return k;
    if (this.#closed) return err(this.#closedError('get ' + key, key));
    try {
      const res = await this.#kv.kv.range({ key: this.dataKey(key) });
      const kv = res.kvs[0];
      return kv ? this.#entry(kv) : ok(undefined);
    } catch (cause) {
      return err(this.#failure('get ' + key, cause, key));
    }
  }

  /** {@inheritDoc ConfigStore.list} */
  async list(prefix: string): Promise<Result<Listing, StoreError>> {
    const p = checkPrefix('list', prefix);
    if (!p.ok) return p;
    if (this.#closed) return err(this.#closedError('list ' + prefix));
    const range = this.dataRange(prefix);
    // Pages of one listing are all read at the first page's revision, so they form one snapshot;
    // a compaction past that revision between pages restarts the listing.
    for (let attempt = 0; ; attempt++) {
      try {
        const entries: KeyValue[] = [];
        let revision: number | undefined;
        let from = range.key;
        for (;;) {
          const res: IRangeResponse = await this.#kv.kv.range({ key: from, range_end: range.range_end, limit: LIST_PAGE, ...(revision === undefined ? {} : { revision }) });
          revision ??= Number(res.header.revision);
          for (const kv of res.kvs) {
            const e = this.#entry(kv);
            if (!e.ok) return e;
            entries.push(e.value);
          }
          const last = res.kvs.at(-1);
          if (!res.more || !last) break;
          from = Buffer.concat([last.key, Buffer.from([0])]);
        }
        return ok({ revision, entries });
      } catch (cause) {
        if (COMPACTED_RE.test(causeText(cause)) && attempt < 3) continue;
        return err(this.#failure('list ' + prefix, cause));
      }
    }
  }

  /** {@inheritDoc ConfigStore.status} */
  async status(): Promise<Result<StoreStatus, StoreError>> {
    if (this.#closed) return err(this.#closedError('status'));
    try {
      const res = await this.#kv.kv.range({ key: this.#meta, count_only: true });
      const revision = Number(res.header.revision);
      return ok({ revision, compactRevision: await this.#findCompaction(revision) });
    } catch (cause) {
      return err(this.#failure('status', cause));
    }
  }

  /** Whether etcd still serves reads at `revision` (it refuses those below its compaction point). */
  async #readableAt(revision: number): Promise<boolean> {
    try {
      await this.#kv.kv.range({ key: this.#meta, count_only: true, revision });
      return true;
    } catch (e) {
      if (COMPACTED_RE.test(causeText(e))) return false;
      throw e;
    }
  }

  /**
   * The interface's compactRevision: etcd's compaction point E plus one (0 when never compacted).
   * etcd 3.4 has no call that reports E, so find the lowest revision it still reads: one request
   * when E has not moved since this handle last looked, a binary search when it has.
   */
  async #findCompaction(current: number): Promise<number> {
    let lo = Math.max(1, this.#knownCompact);
    if (!(await this.#readableAt(lo))) {
      // lo is compacted, current is not: the answer is in (lo, current].
      let hi = current;
      while (lo + 1 < hi) {
        const mid = Math.floor((lo + hi) / 2);
        if (await this.#readableAt(mid)) hi = mid;
        else lo = mid;
      }
      lo = hi;
    }
    this.#knownCompact = Math.max(this.#knownCompact, lo);
    return lo <= 1 ? 0 : lo + 1;
  }

  /** @internal Notes a compaction point etcd reported (a watch was refused). */
  learnCompaction(etcdRevision: number): void {
    this.#knownCompact = Math.max(this.#knownCompact, etcdRevision);
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

  async #write(op: 'put' | 'delete' | 'deletePrefix' | 'txn', request: TxnRequest): Promise<Result<WriteResult, StoreError>> {
    const checked = checkTxn(request, op);
    if (!checked.ok) return checked;
    const txn = checked.value;
    const first = txn.ops[0];
    const subject = op === 'txn' ? 'txn' : `${op} ${first && first.op !== 'deletePrefix' ? first.key : first?.prefix}`;
    if (this.#closed) return err(this.#closedError(subject));
    const v = this.#validation;
    const validated = v !== undefined && txn.ops.some((o) => opTouchesRoots(o, v.roots));
    try {
      if (!validated && txn.ops.some((o) => o.op === 'put')) return await this.#writeDirect(op, txn);
      return await this.#writeGuarded(op, subject, txn, validated ? v : undefined);
    } catch (cause) {
      if (cause instanceof ValidatorThrew) throw cause.cause;
      return err(this.#failure(subject, cause, first && first.op !== 'deletePrefix' ? first.key : undefined, true));
    }
  }

  #compares(conditions: readonly Condition[]): ICompare[] {
    return conditions.map((c) =>
      'modRevision' in c
        ? { key: this.dataKey(c.key), target: 'Mod', result: 'Equal', mod_revision: c.modRevision }
        : { key: this.dataKey(c.key), target: 'Version', result: 'Equal', version: c.version },
    );
  }

  /** The ops of a write plus the meta bump. */
  #writeOps(ops: readonly CheckedOp[]): IRequestOp[] {
    const out: IRequestOp[] = ops.map((o) =>
      o.op === 'put'
        ? { request_put: { key: this.dataKey(o.key), value: Buffer.from(o.json) } }
        : o.op === 'delete'
          ? { request_delete_range: { key: this.dataKey(o.key) } }
          : { request_delete_range: this.dataRange(o.prefix) },
    );
    out.push({ request_put: { key: this.#meta, value: Buffer.alloc(0) } });
    return out;
  }

  /** The cas_failed error for the first condition the keys' current states (`kvs[i]` for `conditions[i]`) break. */
  #casFailed(op: string, conditions: readonly Condition[], states: readonly (IKeyValue | undefined)[]): StoreError | undefined {
    for (let i = 0; i < conditions.length; i++) {
      const kv = states[i];
      const failed = casFailed(op, conditions[i]!, kv && { modRevision: Number(kv.mod_revision), version: Number(kv.version) });
      if (failed) return failed;
    }
    return undefined;
  }

  async #writeDirect(op: string, txn: CheckedTxn): Promise<Result<WriteResult, StoreError>> {
    const res = await this.#kv.kv.txn({
      compare: this.#compares(txn.conditions),
      success: this.#writeOps(txn.ops),
      failure: txn.conditions.map((c) => ({ request_range: { key: this.dataKey(c.key), keys_only: true } })),
    });
    if (!res.succeeded) {
      const states = res.responses.map((r) => r.response_range.kvs[0]);
      return err(this.#casFailed(op, txn.conditions, states) ?? unavailable(`${op}: etcd refused the conditions but they hold now; retry`));
    }
    return ok({ revision: Number(res.header.revision), changed: changedCount(txn.ops, res.responses) });
  }

  async #writeGuarded(op: string, subject: string, txn: CheckedTxn, v: ResolvedValidation | undefined): Promise<Result<WriteResult, StoreError>> {
    const conditionReads: IRequestOp[] = txn.conditions.map((c) => ({ request_range: { key: this.dataKey(c.key), keys_only: true } }));
    for (let attempt = 1; ; attempt++) {
      // 1. Read, at one revision: the meta key, what the deletes would remove, the validated keys.
      const reads: IRequestOp[] = [{ request_range: { key: this.#meta, keys_only: true } }];
      for (const o of txn.ops) {
        if (o.op === 'delete') reads.push({ request_range: { key: this.dataKey(o.key), keys_only: true } });
        else if (o.op === 'deletePrefix') reads.push({ request_range: { ...this.dataRange(o.prefix), keys_only: true } });
      }
      for (const root of v?.roots ?? []) reads.push({ request_range: this.dataRange(root) });
      const read = await this.#kv.kv.txn({ compare: this.#compares(txn.conditions), success: reads, failure: conditionReads });
      if (!read.succeeded) {
        const states = read.responses.map((r) => r.response_range.kvs[0]);
        return err(this.#casFailed(op, txn.conditions, states) ?? unavailable(`${op}: etcd refused the conditions but they hold now; retry`));
      }
      const revision = Number(read.header.revision);
      const ranges = read.responses.map((r) => r.response_range);
      const metaMod = Number(ranges[0]?.kvs[0]?.mod_revision ?? 0);

      // 2. Work out the changes: key → new value, or null for a delete.
      const changes = new Map<string, JsonValue | null>();
      let r = 1;
      for (const o of txn.ops) {
        if (o.op === 'put') changes.set(o.key, o.value);
        else for (const kv of ranges[r++]?.kvs ?? []) changes.set(this.storeKey(kv.key), null);
      }
      if (changes.size === 0) return ok({ revision, changed: 0 });

      // 3. Validate the keyspace as it would be after the write.
      if (v) {
        const before = new Map<string, unknown>();
        for (const range of ranges.slice(r)) {
          for (const kv of range.kvs) {
            const e = this.#entry(kv);
            if (!e.ok) return e;
            before.set(e.value.key, deepFreeze(e.value.value));
          }
        }
        const refusal = validate(v, op, txn.ops, before, changes);
        if (refusal) return err(refusal);
      }

      // 4. Commit only if no write happened since the read (every write bumps the meta key).
      const res = await this.#kv.kv.txn({
        compare: [{ key: this.#meta, target: 'Mod', result: 'Equal', mod_revision: metaMod }, ...this.#compares(txn.conditions)],
        success: this.#writeOps(txn.ops),
        failure: [{ request_range: { key: this.#meta, keys_only: true } }, ...conditionReads],
      });
      if (res.succeeded) return ok({ revision: Number(res.header.revision), changed: changedCount(txn.ops, res.responses) });
      const [meta, ...states] = res.responses.map((x) => x.response_range.kvs[0]);
      if (Number(meta?.mod_revision ?? 0) === metaMod) {
        return err(this.#casFailed(op, txn.conditions, states) ?? unavailable(`${op}: etcd refused the conditions but they hold now; retry`));
      }
      if (attempt >= this.#maxAttempts) {
        return err(unavailable(`${subject}: ${attempt} attempts all lost to concurrent writers on ${this.#where}; retry later`));
      }
      // Someone else wrote meanwhile: back off a little (jittered, so contenders spread) and redo.
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 * attempt)));
    }
  }

  /** {@inheritDoc ConfigStore.compact} */
  async compact(revision: number): Promise<Result<StoreStatus, StoreError>> {
    const r = checkRevision('compact', revision);
    if (!r.ok) return r;
    if (this.#closed) return err(this.#closedError('compact'));
    try {
      const head = await this.#kv.kv.range({ key: this.#meta, count_only: true });
      const current = Number(head.header.revision);
      if (revision > current) {
        return err({ code: 'bad_request', message: `compact ${revision}: the store is only at revision ${current}; compact to ${current} or less` });
      }
      // See the module comment: etcd keeps complete history only after its compaction point.
      // Revision 1 is etcd's empty start, so there is nothing to drop below 3.
      const target = revision - 1;
      if (target >= 2) {
        try {
          // physical: return once the data is gone, so what status and watches report is settled.
          await this.#kv.kv.compact({ revision: target, physical: true });
          this.learnCompaction(target);
        } catch (e) {
          if (!COMPACTED_RE.test(causeText(e))) throw e; // already compacted at or past it
        }
      }
      return ok({ revision: current, compactRevision: await this.#findCompaction(current) });
    } catch (cause) {
      return err(this.#failure(`compact ${revision}`, cause));
    }
  }

  // ---- watch -------------------------------------------------------------------------------

  /** {@inheritDoc ConfigStore.watch} */
  watch(prefix: string, afterRevision: number): Watch {
    const w = new EtcdWatch(this, prefix, afterRevision, this.#timeoutMs);
    this.#watches.add(w);
    return w;
  }

  /** @internal Forgets an ended watch. */
  dropWatch(w: EtcdWatch): void {
    this.#watches.delete(w);
  }

  /** @internal Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** @internal Running watches (for tests: which endpoint each uses). */
  get watches(): readonly EtcdWatch[] {
    return [...this.#watches];
  }

  /** {@inheritDoc ConfigStore.close} */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of [...this.#watches]) w.storeClosed();
    this.#kv.close();
    for (const c of this.#watchClients.values()) c.close();
    this.#watchClients.clear();
  }
}

/** Keys a committed write changed: puts plus what its deletes removed. */
function changedCount(ops: readonly CheckedOp[], responses: ITxnResponses): number {
  let n = 0;
  ops.forEach((o, i) => {
    n += o.op === 'put' ? 1 : Number(responses[i]?.response_delete_range?.deleted ?? 0);
  });
  return n;
}

type ITxnResponses = readonly { readonly response_delete_range?: { readonly deleted: string } }[];

/** Runs the validator on the keyspace after `changes`; returns the refusal, if any (see LMDB's #validate). */
function validate(
  v: ResolvedValidation,
  op: string,
  ops: readonly CheckedOp[],
  before: ReadonlyMap<string, unknown>,
  changes: ReadonlyMap<string, JsonValue | null>,
): StoreError | undefined {
  const after = new Map(before);
  for (const [key, value] of changes) {
    if (!underRoots(key, v.roots)) continue;
    if (value === null) after.delete(key);
    else after.set(key, deepFreeze(value));
  }
  let issues: readonly Issue[];
  try {
    issues = v.validator(after);
    if (issues.length) issues = introducedIssues(v.validator(before), issues);
  } catch (cause) {
    throw new ValidatorThrew(cause);
  }
  return issues.length === 0 ? undefined : refused(op, ops, issues);
}

/** What one watch stream session ended with. */
type SessionEnd = { readonly kind: 'closed' } | { readonly kind: 'failed'; readonly cause: unknown; readonly created: boolean } | { readonly kind: 'error'; readonly error: StoreError };

/**
 * A watch on an {@link EtcdConfigStore}: one gRPC watch stream at a time, on one endpoint; batches
 * are queued as they arrive and pulled by the consumer; a failed stream is replaced by one on the
 * next endpoint, resuming after the last queued revision.
 */
export class EtcdWatch implements Watch {
  readonly #store: EtcdConfigStore;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #iterator: AsyncGenerator<Result<WatchBatch, StoreError>, void, undefined>;
  readonly #queue: WatchBatch[] = [];
  /** Wakes the consumer when a batch is queued or the session ends. */
  #wake: (() => void) | undefined;
  #end: SessionEnd | undefined;
  #stream: (Duplex & { cancel(): void }) | undefined;
  #paused = false;
  #closed = false;
  #storeClosed = false;
  /** First revision not yet queued. */
  #next: number;
  /** Index in `endpoints` of the current (or last) stream. */
  #endpoint = 0;
  /** Endpoint index of every stream that got as far as etcd's "created" answer, in order. */
  readonly connections: number[] = [];

  constructor(store: EtcdConfigStore, prefix: string, afterRevision: number, timeoutMs: number) {
    this.#store = store;
    this.#prefix = prefix;
    this.#timeoutMs = timeoutMs;
    this.#next = (Number.isSafeInteger(afterRevision) ? afterRevision : 0) + 1;
    this.#iterator = this.#run(afterRevision);
  }

  [Symbol.asyncIterator](): AsyncIterator<Result<WatchBatch, StoreError>> {
    return this.#iterator;
  }

  /** The endpoint the watch streams from now (or last did). */
  get endpoint(): string {
    return this.#store.endpoints[this.#endpoint]!;
  }

  close(): void {
    this.#closed = true;
    this.#stopStream();
    this.#wake?.();
  }

  /** @internal The store was closed: end with `unavailable`. */
  storeClosed(): void {
    this.#storeClosed = true;
    this.#stopStream();
    this.#wake?.();
  }

  #stopStream(): void {
    const s = this.#stream;
    this.#stream = undefined;
    if (s) {
      s.removeAllListeners('data');
      s.on('error', () => {}); // the cancel itself arrives as a CANCELLED error
      s.cancel();
    }
  }

  #name(): string {
    return `watch ${this.#prefix || '/'}`;
  }

  async *#run(afterRevision: number): AsyncGenerator<Result<WatchBatch, StoreError>, void, undefined> {
    try {
      const p = checkPrefix('watch', this.#prefix);
      if (!p.ok) return yield p;
      const a = checkRevision('watch', afterRevision);
      if (!a.ok) return yield a;
      const n = this.#store.endpoints.length;
      // When the endpoints have been failing since: a watch gives up after the timeout.
      let failingSince: number | undefined;
      let lastCause: unknown;
      let backoff = 0;
      while (!this.#closed) {
        if (this.#storeClosed || this.#store.closed) {
          yield err(unavailable(`${this.#name()}: the store on etcd ${this.#store.endpoints.join(', ')} was closed`));
          return;
        }
        if (!this.#stream && this.#end === undefined) {
          await this.#open();
          continue; // closed meanwhile, or the stream failed at once: the loop head decides
        }
        // Hand out what is queued, then wait for more or for the session to end.
        const batch = this.#queue.shift();
        if (batch) {
          if (this.#paused && this.#queue.length < WATCH_HIGH_WATER / 2) {
            this.#paused = false;
            this.#stream?.resume();
          }
          yield ok(batch);
          continue;
        }
        const end = this.#end;
        if (end === undefined) {
          await new Promise<void>((resolve) => (this.#wake = resolve));
          this.#wake = undefined;
          continue;
        }
        this.#end = undefined;
        if (end.kind === 'closed') continue; // loop head sees why
        if (end.kind === 'error') return yield err(end.error);
        // The stream failed: move on to the next endpoint and resume after the last queued revision.
        lastCause = end.cause;
        if (end.created) {
          failingSince = undefined;
          backoff = 0;
        }
        failingSince ??= Date.now();
        if (Date.now() - failingSince > this.#timeoutMs) {
          return yield err(
            unavailable(
              `${this.#name()} after revision ${this.#next - 1}: no member of etcd ${this.#store.endpoints.join(', ')} served the watch for ${this.#timeoutMs} ms ` +
                `(last: ${causeText(lastCause)}); check the cluster, then watch again after revision ${this.#next - 1}`,
              lastCause,
            ),
          );
        }
        this.#endpoint = (this.#endpoint + 1) % n;
        // After a full round of failures, pause before the next (a restarting cluster).
        if (this.#endpoint === 0 || !end.created) {
          backoff = Math.min(500, backoff ? backoff * 2 : 20);
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, backoff);
            this.#wake = () => (clearTimeout(t), resolve());
          });
          this.#wake = undefined;
        }
      }
    } finally {
      this.#closed = true;
      this.#stopStream();
      this.#store.dropWatch(this);
    }
  }

  #finish(end: SessionEnd): void {
    if (this.#end === undefined) this.#end = end;
    this.#stopStream();
    this.#wake?.();
  }

  /** Opens a stream on the current endpoint and asks for the history from `#next` on. */
  async #open(): Promise<void> {
    if (this.#store.closed) return; // the loop head reports it
    const i = this.#endpoint;
    const range = this.#store.dataRange(this.#prefix);
    let created = false;
    let stream: Duplex & { cancel(): void };
    try {
      stream = (await this.#store.watchClient(i).watchClient.watch()) as unknown as Duplex & { cancel(): void };
    } catch (cause) {
      this.#finish({ kind: 'failed', cause, created: false });
      return;
    }
    if (this.#closed || this.#storeClosed) {
      stream.on('error', () => {});
      stream.cancel();
      return;
    }
    this.#stream = stream;
    // A member that accepts the connection but never answers (hung, partitioned) counts as failed.
    const timer = setTimeout(() => {
      if (!created && this.#stream === stream) this.#finish({ kind: 'failed', cause: new Error(`no answer to the watch request within ${this.#timeoutMs} ms`), created });
    }, this.#timeoutMs);
    timer.unref(); // a watch closed before etcd answered must not keep the process alive
    stream.on('data', (res: IWatchResponse) => {
      if (this.#stream !== stream) return;
      if (res.created) {
        created = true;
        clearTimeout(timer);
        this.connections.push(i);
      }
      if (res.canceled) {
        clearTimeout(timer);
        const compactRevision = Number(res.compact_revision);
        if (compactRevision > 0) {
          this.#store.learnCompaction(compactRevision);
          this.#finish({
            kind: 'error',
            error: {
              code: 'compacted',
              compactRevision: compactRevision + 1,
              message:
                `${this.#name()} after revision ${this.#next - 1}: history before revision ${compactRevision + 1} was compacted; ` +
                `list ${this.#prefix || '/'} again and watch after the listing's revision`,
            },
          });
        } else {
          this.#finish({ kind: 'failed', cause: new Error(`etcd canceled the watch: ${res.cancel_reason || 'no reason given'}`), created });
        }
        return;
      }
      this.#accept(res);
    });
    stream.on('error', (cause: unknown) => {
      clearTimeout(timer);
      if (this.#stream === stream) this.#finish({ kind: 'failed', cause, created });
    });
    stream.on('end', () => {
      clearTimeout(timer);
      if (this.#stream === stream) this.#finish({ kind: 'failed', cause: new Error(`etcd ${this.endpoint} ended the watch stream`), created });
    });
    // One revision early: if etcd compacted at #next - 1 its history there may lack a delete,
    // and etcd refuses a start below its compaction point, so this makes it refuse exactly the
    // starts the store must refuse. Revision 0 would mean "from now", hence the floor of 1.
    stream.write({ create_request: { ...range, start_revision: Math.max(1, this.#next - 1) } });
  }

  /** Queues the events of a response as batches, one per revision, dropping revisions already queued. */
  #accept(res: IWatchResponse): void {
    let batch: { revision: number; events: { raw: Buffer; event: WatchEvent }[] } | undefined;
    const flush = (): void => {
      if (!batch) return;
      batch.events.sort((a, b) => Buffer.compare(a.raw, b.raw));
      this.#queue.push({ revision: batch.revision, events: batch.events.map((e) => e.event) });
      this.#next = batch.revision + 1;
      batch = undefined;
    };
    for (const ev of res.events) {
      const revision = Number(ev.kv.mod_revision);
      if (revision < this.#next) continue;
      if (batch && batch.revision !== revision) flush();
      batch ??= { revision, events: [] };
      const key = this.#store.storeKey(ev.kv.key);
      if (ev.type === 'Delete') {
        batch.events.push({ raw: ev.kv.key, event: { type: 'delete', key, revision } });
        continue;
      }
      let value: JsonValue;
      try {
        value = JSON.parse(ev.kv.value.toString()) as JsonValue;
      } catch (cause) {
        this.#finish({ kind: 'error', error: unavailable(`${this.#name()}: the value of ${key} at revision ${revision} is not JSON (${causeText(cause)})`, cause, key) });
        return;
      }
      batch.events.push({
        raw: ev.kv.key,
        event: { type: 'put', key, value, revision, createRevision: Number(ev.kv.create_revision), version: Number(ev.kv.version) },
      });
    }
    flush();
    if (this.#queue.length >= WATCH_HIGH_WATER && !this.#paused && this.#stream) {
      // A slow consumer: stop reading the stream (gRPC flow control then holds etcd back).
      this.#paused = true;
      this.#stream.pause();
    }
    this.#wake?.();
  }
}
