/**
 * The per-server agent daemon (`anyedge agent`): follows the config store and keeps this server's
 * kernel equal to the compiled config, also while the store is away.
 *
 * ```
 *  store ──watch('/', rev)──► batch ──► replica (LMDB, entries + revision in one txn)
 *                                   └─► coalescer (50 ms quiet, ≤ 1 s) ──► compile ──► plan/apply
 *  health probes ── state change ─────────────────────────────────────────┘ (down set moves routes)
 *  status ◄── after each apply, on health/connectivity changes, every heartbeat
 * ```
 *
 * - **Start-up.** The replica is loaded and the kernel reconciled from it before the store is even
 *   contacted, so a server that reboots while the store is down comes back with its last config.
 * - **Exactly once.** The watch resumes after the last revision received (`#revision`), which the
 *   replica persists together with the entries; no batch is applied twice or skipped, across
 *   reconnects and restarts. When history is gone (`compacted`), when the replica is empty, or when
 *   the store is behind the replica (another or a restored store), the agent lists and replaces.
 * - **Failures keep the kernel.** A config that does not compile, or an apply that fails half-way,
 *   leaves the kernel as it is (every step is idempotent: the next pass repairs), is reported as
 *   `lastError`, and is retried with backoff; a lost store keeps the applied state, is reported as
 *   `store.connected = false` with the reason, and is reconnected with backoff.
 * - **Status** (`/status/<dc>/<server>`) is reporting only: a failing status write never stops
 *   the agent (but a store that refuses writes as unavailable is treated as lost).
 * - **Stop** ends the watch, timers and probes and leaves the kernel as it is: restarting the
 *   agent must not disturb traffic.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { compileServer, type DesiredServer, type ServerOptions } from '../compile/server.ts';
import { entriesToConfig } from '../model/keyspace.ts';
import { formatIssue } from '../model/issue.ts';
import { statusKey, type ServerStatus, type TunnelStatus } from '../model/status.ts';
import type { ConfigStore, JsonValue, StoreError, Watch, WatchBatch } from '../store/types.ts';
import { apply, nftOnlySteps, plan, type ReconcileEnv } from './reconcile.ts';
import { rememberSteer, steerInputOffThread, steerUnchanged } from './steer.ts';
import { dosPass } from './dos-daemon.ts';
import { formatDosErrors } from './dos-reconcile.ts';
import { HealthMonitor, type Prober, type TunnelState } from './health.ts';
import { probeTargets } from './targets.ts';
import { isConfigKey, Replica, type ReplicaError } from './replica.ts';
import { Backoff, type BackoffOptions } from './daemon-backoff.ts';
import { Coalescer, type CoalesceOptions } from './daemon-coalesce.ts';
import { systemClock, type Clock, type TimerHandle } from './daemon-clock.ts';

/** What started a reconcile. */
export type ReconcileTrigger = 'start' | 'change' | 'health' | 'retry' | 'drift' | 'expiry';

/** Outcome of one reconcile, for metrics: `noop` = the kernel already matched. */
export type ReconcileOutcome = 'ok' | 'error' | 'noop';

/** Where a failure happened. */
export type FailureStage = 'config' | 'compile' | 'apply' | 'replica' | 'status' | 'internal';

/**
 * One thing the agent did or met, for the log (one JSON line each in `anyedge agent`). `level`
 * says how loud: `debug` for the routine (each change received, a reconcile that found nothing to
 * do), `error` for failures, `info` for the rest.
 */
export type AgentEvent = { readonly level: 'debug' | 'info' | 'error' } & (
  | { readonly event: 'start'; readonly server: string; readonly replicaRevision: number; readonly appliedRevision: number }
  | { readonly event: 'connected'; readonly storeRevision: number }
  | { readonly event: 'disconnected'; readonly reason: string; readonly retryInMs: number }
  | { readonly event: 'resync'; readonly mode: 'history' | 'list'; readonly fromRevision: number; readonly toRevision: number; readonly reason: string }
  | { readonly event: 'change'; readonly revision: number; readonly keys: readonly string[] }
  | { readonly event: 'applied'; readonly revision: number; readonly steps: number; readonly ms: number; readonly trigger: ReconcileTrigger }
  | { readonly event: 'error'; readonly stage: FailureStage; readonly revision: number; readonly message: string; readonly retryInMs?: number }
  | { readonly event: 'health'; readonly path: string; readonly from: TunnelState; readonly to: TunnelState }
  | { readonly event: 'stopped' }
);

/** Options of an {@link Agent}. */
export interface AgentOptions {
  /** Which server this agent is. */
  readonly where: { readonly dc: string; readonly server: string };
  /** Opens the store; called again after every loss (tests inject their own). */
  readonly openStore: () => Promise<Result<ConfigStore, StoreError>>;
  /** Directory for the agent's own state (the replica lives in `<stateDir>/replica`). */
  readonly stateDir: string;
  /** The kernel, BPF maps and program attachments to reconcile. */
  readonly env: ReconcileEnv;
  /** How to compile this server (the down set comes from the health monitor). */
  readonly compile: Omit<ServerOptions, 'down'>;
  /** Coalescing of bursts of changes (default 50 ms after the last change, at most 1 s). */
  readonly coalesce?: CoalesceOptions;
  /** Backoff of reconnects and of retried applies (default 100 ms doubling to 30 s, jittered). */
  readonly backoff?: BackoffOptions;
  /** Status heartbeat, ms (default 10 000): a stale `updatedAt` tells readers the agent is dead. */
  readonly heartbeatMs?: number;
  /** Tunnel health probes; without one no tunnel is probed and none is ever considered down. */
  readonly prober?: Prober;
  /** How often due probes are looked for, ms (default 100; each tunnel has its own interval). */
  readonly healthTickMs?: number;
  /** plan/apply passes per reconcile (default 2: the second repairs what the first exposed). */
  readonly passes?: number;
  /**
   * How often a full pass reads the whole kernel and repairs drift, ms (default 30 000). Config
   * changes that touch only firewall tables skip the full read (reconcile.ts `nftOnlySteps`), so
   * this pass is what catches a rule, route or link changed by hand between changes.
   */
  readonly driftCheckMs?: number;
  /** Time and timers (tests: ManualClock). */
  readonly clock?: Clock;
  /** Receives every event (default: dropped). */
  readonly log?: (event: AgentEvent) => void;
  /** Reported version (default: package.json's). */
  readonly version?: string;
}

/** anyedge's version from package.json. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();
/** Status strings are bounded by the schema (2000 characters). */
const clip = (s: string): string => (s.length <= 2000 ? s : `${s.slice(0, 1997)}...`);

function sameEntries(a: ReadonlyMap<string, JsonValue>, b: ReadonlyMap<string, JsonValue>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    if (!b.has(k) || JSON.stringify(v) !== JSON.stringify(b.get(k))) return false;
  }
  return true;
}

/** The agent. `start()`, then `stop()`. */
export class Agent {
  readonly #o: AgentOptions;
  readonly #clock: Clock;
  readonly #log: (event: AgentEvent) => void;
  readonly #version: string;
  readonly #passes: number;
  readonly #coalescer: Coalescer;
  readonly #connectBackoff: Backoff;
  readonly #retryBackoff: Backoff;
  readonly #health: HealthMonitor | null;
  readonly #hooks = new Set<(seconds: number, outcome: ReconcileOutcome) => void>();

  #replica: Replica | null = null;
  #replicaStale = false;
  /** Config entries as of `#revision`. */
  #config = new Map<string, JsonValue>();
  /** Bumped by every change of `#config`; the kernel matches `#appliedGeneration`. */
  #generation = 0;
  #appliedGeneration = -1;
  /** Newest store revision received. */
  #revision = 0;
  #applied = 0;
  #appliedAt: number | undefined;
  #pendingSince: number | undefined;
  #lastError: { at: number; message: string } | undefined;
  #desired: DesiredServer | undefined;
  #startedAt = 0;

  #store: ConfigStore | null = null;
  #watch: Watch | null = null;
  #dropReason: string | null = null;
  #connected = false;
  #storeSince = 0;
  #storeError: string | undefined = 'not connected yet';

  #started = false;
  #stopped = false;
  #stopping: Promise<void> | null = null;
  #loop: Promise<void> | null = null;
  #running: Promise<void> | null = null;
  #again: ReconcileTrigger | null = null;
  #retryTimer: TimerHandle = undefined;
  #heartbeatTimer: TimerHandle = undefined;
  #driftTimer: TimerHandle = undefined;
  /** Fires at the next DoS rule expiry (agent/dos-daemon.ts). */
  #dosTimer: TimerHandle = undefined;
  /** The DoS rules in force the kernel was last made equal to (dos-daemon.ts key). */
  #kernelDos: string | null | undefined;
  /** How long the last full pass took, ms: drift checks keep to a tenth of the agent's time. */
  #lastFullPassMs = 0;
  /** What the kernel was last made equal to; unknown (undefined) after any failure. */
  #kernelDesired: DesiredServer | undefined;
  #healthTimer: TimerHandle = undefined;
  #sleep: { timer: TimerHandle; wake: () => void } | null = null;
  #statusWriting: Promise<void> | null = null;
  #statusAgain = false;

  constructor(options: AgentOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? (() => {});
    this.#version = options.version ?? packageVersion();
    this.#passes = options.passes ?? 2;
    this.#coalescer = new Coalescer(this.#clock, () => this.#requestReconcile('change'), options.coalesce);
    this.#connectBackoff = new Backoff(options.backoff);
    this.#retryBackoff = new Backoff(options.backoff);
    this.#health = options.prober
      ? new HealthMonitor(
          options.prober,
          (c) => {
            this.#emit({ level: 'info', event: 'health', path: c.path, from: c.from, to: c.to });
            // Routes follow health: recompile with the new down set, and tell readers now.
            this.#coalescer.trigger();
            this.#writeStatus();
          },
          () => this.#clock.now(),
        )
      : null;
  }

  /** `dc/server`. */
  get server(): string {
    return `${this.#o.where.dc}/${this.#o.where.server}`;
  }

  /** The last desired state that compiled (what the kernel is being made equal to), if any. */
  desired(): DesiredServer | undefined {
    return this.#desired;
  }

  /** Config entries as of the newest revision received (keys under the config roots): for side loops such as attack detection. */
  configEntries(): ReadonlyMap<string, JsonValue> {
    return this.#config;
  }

  /** The store while connected, else null: side loops write through the agent's connection. */
  connectedStore(): ConfigStore | null {
    return this.#connected ? this.#store : null;
  }

  /** Calls `cb` after every reconcile with its duration and outcome. Returns an unsubscribe. */
  onReconcile(cb: (seconds: number, outcome: ReconcileOutcome) => void): () => void {
    this.#hooks.add(cb);
    return () => this.#hooks.delete(cb);
  }

  /** The status as it would be written now. */
  snapshot(): ServerStatus {
    const now = this.#clock.now();
    const tunnels: TunnelStatus[] = (this.#health?.status() ?? []).flatMap((h) => {
      const [, tenant, , tunnel] = h.path.split('/');
      if (tenant === undefined || tunnel === undefined) return [];
      return [{ tenant, tunnel, state: h.state, since: iso(h.since), ...(h.lastRttMs !== null ? { rttMs: h.lastRttMs } : {}) }];
    });
    return {
      appliedRevision: this.#applied,
      ...(this.#appliedAt !== undefined ? { appliedAt: iso(this.#appliedAt) } : {}),
      seenRevision: this.#revision,
      ...(this.#pendingSince !== undefined ? { pendingSince: iso(this.#pendingSince) } : {}),
      store: { connected: this.#connected, since: iso(this.#storeSince || now), ...(this.#storeError !== undefined ? { error: clip(this.#storeError) } : {}) },
      ...(this.#lastError ? { lastError: { at: iso(this.#lastError.at), message: clip(this.#lastError.message) } } : {}),
      tunnels,
      startedAt: iso(this.#startedAt || now),
      updatedAt: iso(now),
      version: this.#version.slice(0, 64),
    };
  }

  /**
   * Loads the replica and reconciles from it (resolving once that first pass is done, whatever
   * its outcome), then follows the store in the background. Fails only when the state directory
   * is unusable.
   */
  async start(): Promise<Result<void, ReplicaError>> {
    if (this.#started) return ok(undefined);
    this.#started = true;
    this.#startedAt = this.#storeSince = this.#clock.now();
    const opened = Replica.open(this.#o.stateDir);
    if (!opened.ok) return opened;
    const loaded = opened.value.load();
    if (!loaded.ok) {
      await opened.value.close();
      return loaded;
    }
    this.#replica = opened.value;
    const s = loaded.value;
    this.#config = new Map(s.entries);
    this.#revision = s.revision;
    this.#applied = s.appliedRevision;
    this.#generation = 1;
    if (s.appliedRevision < s.revision) this.#pendingSince = this.#startedAt;
    this.#emit({ level: 'info', event: 'start', server: this.server, replicaRevision: s.revision, appliedRevision: s.appliedRevision });
    // An empty replica knows no config: reconciling it would remove everything of ours that a
    // previous install left. Wait for the store instead.
    if (s.revision > 0) {
      this.#requestReconcile('start');
      await this.#running;
    }
    this.#scheduleHeartbeat();
    this.#scheduleDriftCheck();
    this.#scheduleHealthTick();
    this.#loop = this.#connectLoop();
    return ok(undefined);
  }

  /** Ends the watch, timers and probes; leaves the kernel as it is. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#doStop();
    return this.#stopping;
  }

  async #doStop(): Promise<void> {
    this.#stopped = true;
    this.#coalescer.cancel();
    for (const t of [this.#retryTimer, this.#heartbeatTimer, this.#healthTimer, this.#driftTimer, this.#dosTimer]) this.#clock.clearTimeout(t);
    this.#health?.stop();
    this.#sleep?.wake();
    this.#watch?.close();
    await this.#loop;
    await this.#running;
    await this.#statusWriting;
    // Status batches seen since the last apply moved the revision without changing the config:
    // keep that, so the next start resumes from here rather than re-reading them.
    if (this.#appliedGeneration === this.#generation && !this.#replicaStale) this.#replica?.setApplied(this.#applied, this.#revision);
    await this.#replica?.close();
    this.#emit({ level: 'info', event: 'stopped' });
  }

  #emit(e: AgentEvent): void {
    try {
      this.#log(e);
    } catch {
      // A broken log sink must not take the agent down.
    }
  }

  // ---- store connection -------------------------------------------------------------------

  async #connectLoop(): Promise<void> {
    while (!this.#stopped) {
      const connectedAt = this.#clock.now();
      const reason = await this.#connectAndFollow();
      if (this.#stopped) break;
      // A connection that held for a while was a success: start the backoff over.
      if (this.#connected && this.#clock.now() - connectedAt > this.#connectBackoff.maxMs) this.#connectBackoff.reset();
      const wait = this.#connectBackoff.next();
      this.#setConnected(false, reason);
      this.#emit({ level: 'error', event: 'disconnected', reason, retryInMs: wait });
      await this.#pause(wait);
    }
  }

  /** Records connectivity; `since` moves only when it flips. A new connection reports at once. */
  #setConnected(connected: boolean, error?: string): void {
    const flipped = connected !== this.#connected;
    if (flipped) this.#storeSince = this.#clock.now();
    this.#connected = connected;
    this.#storeError = connected ? undefined : error;
    if (flipped && connected) this.#writeStatus();
  }

  /** Sleeps `ms` on the agent's clock; `stop()` wakes it. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.#clock.clearTimeout(timer);
        this.#sleep = null;
        resolve();
      };
      const timer = this.#clock.setTimeout(wake, ms);
      this.#sleep = { timer, wake };
    });
  }

  /** One connection: open, resync, follow. Resolves with the reason it ended. */
  async #connectAndFollow(): Promise<string> {
    let opened: Result<ConfigStore, StoreError>;
    try {
      opened = await this.#o.openStore();
    } catch (e) {
      opened = err({ code: 'unavailable', message: `open store: ${(e as Error).message}`, cause: e });
    }
    if (!opened.ok) return `open store: ${opened.error.message}`;
    const store = opened.value;
    if (this.#stopped) {
      await store.close();
      return 'stopped';
    }
    this.#store = store;
    this.#dropReason = null;
    try {
      const st = await store.status();
      if (!st.ok) return `store status: ${st.error.message}`;
      this.#setConnected(true);
      this.#emit({ level: 'info', event: 'connected', storeRevision: st.value.revision });
      const have = this.#revision;
      const relistWhy =
        have === 0
          ? 'the replica is empty'
          : st.value.revision < have
            ? `the store is at revision ${st.value.revision}, behind the replica's ${have} (another store, or one restored from a backup)`
            : st.value.compactRevision > have + 1
              ? `the store's history starts at revision ${st.value.compactRevision}, after the replica's ${have}`
              : null;
      if (relistWhy !== null) {
        const r = await this.#relist(store, relistWhy);
        if (!r.ok) return r.error;
      } else if (st.value.revision > have) {
        this.#emit({ level: 'info', event: 'resync', mode: 'history', fromRevision: have, toRevision: st.value.revision, reason: 'the store moved on while the agent was away' });
      }
      for (;;) {
        const watch = store.watch('/', this.#revision);
        this.#watch = watch;
        if (this.#stopped) watch.close();
        let compacted: string | null = null;
        for await (const item of watch) {
          if (this.#stopped) break;
          if (!item.ok) {
            if (item.error.code === 'compacted') {
              compacted = item.error.message;
              break;
            }
            return `watch: ${item.error.message}`;
          }
          this.#connectBackoff.reset();
          this.#onBatch(item.value);
        }
        watch.close();
        if (compacted === null) break;
        const r = await this.#relist(store, `watch: ${compacted}`);
        if (!r.ok) return r.error;
      }
      return this.#stopped ? 'stopped' : (this.#dropReason ?? 'the watch ended');
    } finally {
      this.#watch?.close();
      this.#watch = null;
      this.#store = null;
      // Status writes still in flight use this handle.
      await this.#statusWriting;
      await store.close();
    }
  }

  /** Drops the current connection (a write said the store is unavailable): the loop reconnects. */
  #dropConnection(store: ConfigStore, reason: string): void {
    if (this.#store !== store) return;
    this.#dropReason = reason;
    this.#watch?.close();
  }

  /** Replaces the config with a fresh listing. */
  async #relist(store: ConfigStore, reason: string): Promise<Result<void, string>> {
    const l = await store.list('/');
    if (!l.ok) return err(`list: ${l.error.message}`);
    const entries = new Map<string, JsonValue>();
    for (const e of l.value.entries) if (isConfigKey(e.key)) entries.set(e.key, e.value);
    this.#emit({ level: 'info', event: 'resync', mode: 'list', fromRevision: this.#revision, toRevision: l.value.revision, reason });
    const changed = !sameEntries(this.#config, entries);
    this.#config = entries;
    this.#revision = Math.max(this.#revision, l.value.revision);
    const saved = this.#replica?.replace(l.value.revision, entries);
    if (saved && !saved.ok) this.#replicaFailed(saved.error);
    else this.#replicaStale = false;
    if (changed) this.#configChanged();
    else this.#advanceIfInSync();
    return ok(undefined);
  }

  #onBatch(batch: WatchBatch): void {
    // The store promises increasing revisions; a repeat would apply a change twice.
    if (batch.revision <= this.#revision) {
      this.#emit({ level: 'error', event: 'error', stage: 'internal', revision: this.#revision, message: `the store delivered revision ${batch.revision} after ${this.#revision}; ignored (a store bug: report it)` });
      return;
    }
    this.#revision = batch.revision;
    const events = batch.events.filter((e) => isConfigKey(e.key));
    // Status writes (ours and other servers') move the revision but not the config.
    if (events.length === 0) {
      this.#advanceIfInSync();
      return;
    }
    for (const e of events) {
      if (e.type === 'put') this.#config.set(e.key, e.value);
      else this.#config.delete(e.key);
    }
    const saved = this.#replicaStale ? this.#replica?.replace(batch.revision, this.#config) : this.#replica?.applyBatch(batch.revision, events);
    if (saved && !saved.ok) this.#replicaFailed(saved.error);
    else this.#replicaStale = false;
    this.#emit({ level: 'debug', event: 'change', revision: batch.revision, keys: events.map((e) => e.key) });
    this.#configChanged();
  }

  /**
   * A replica write failed: the memory copy is right, the disk copy now lags. The next write
   * rewrites it whole, so it never resumes from a batch it did not store.
   */
  #replicaFailed(e: ReplicaError): void {
    this.#replicaStale = true;
    this.#emit({ level: 'error', event: 'error', stage: 'replica', revision: this.#revision, message: e.message });
  }

  #configChanged(): void {
    this.#generation++;
    this.#pendingSince ??= this.#clock.now();
    this.#coalescer.trigger();
  }

  /** When nothing is pending, the kernel matches the config as of the newest revision too. */
  #advanceIfInSync(): void {
    if (this.#appliedGeneration === this.#generation) this.#applied = Math.max(this.#applied, this.#revision);
  }

  // ---- reconcile --------------------------------------------------------------------------

  #requestReconcile(trigger: ReconcileTrigger): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = this.#again === 'change' ? 'change' : trigger;
      return;
    }
    this.#running = this.#reconcileLoop(trigger).finally(() => (this.#running = null));
  }

  async #reconcileLoop(first: ReconcileTrigger): Promise<void> {
    let next: ReconcileTrigger | null = first;
    while (next !== null && !this.#stopped) {
      this.#again = null;
      this.#clock.clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      await this.#reconcileOnce(next);
      next = this.#again;
    }
  }

  async #reconcileOnce(trigger: ReconcileTrigger): Promise<void> {
    // Nothing known yet (empty replica, store not reached): nothing to make true.
    if (this.#revision === 0) return;
    const t0 = performance.now();
    const generation = this.#generation;
    const revision = this.#revision;
    const fail = (stage: FailureStage, message: string): void => {
      // Half-applied or not at all: only a full pass knows the kernel again.
      this.#kernelDesired = undefined;
      const seconds = (performance.now() - t0) / 1000;
      const retryInMs = this.#retryBackoff.next();
      this.#lastError = { at: this.#clock.now(), message };
      this.#emit({ level: 'error', event: 'error', stage, revision, message, retryInMs });
      if (!this.#stopped) this.#retryTimer = this.#clock.setTimeout(() => this.#requestReconcile('retry'), retryInMs);
      this.#notify(seconds, 'error');
      this.#writeStatus();
    };
    try {
      const cfg = entriesToConfig(this.#config);
      if (!cfg.ok) {
        const shown = cfg.error.slice(0, 3).map(formatIssue).join('; ');
        return fail('config', `config as of revision ${revision} is invalid (${cfg.error.length} issue(s): ${shown}${cfg.error.length > 3 ? '; …' : ''}); the kernel keeps the last applied config; fix the config in the store`);
      }
      const d = compileServer(cfg.value, this.#o.where, { ...this.#o.compile, down: this.#health?.down() ?? new Set() });
      if (!d.ok) return fail('compile', `compile ${this.server} at revision ${revision}: ${d.error.path}: ${d.error.message}; the kernel keeps the last applied config`);
      // Off the event loop: a changed server set of a large DC takes seconds to build.
      const steer = await steerInputOffThread(this.#o.env, cfg.value, this.#o.where);
      // Stopped meanwhile: leave the kernel as it is rather than apply after stop().
      if (this.#stopped) return;
      if (!steer.ok) return fail('compile', `compile steering of ${this.server} at revision ${revision}: ${steer.error.path}: ${steer.error.message}; the kernel keeps the last applied config`);
      const dos = dosPass(this.#o.env, cfg.value, this.#o.where.dc, this.#clock.now());
      if (!dos.ok) return fail('compile', `compile DoS rules of ${this.server} at revision ${revision}: ${dos.error}; the kernel keeps the last applied config`);
      this.#desired = d.value;
      this.#health?.setTargets(probeTargets(d.value));
      let steps = 0;
      const fast = trigger === 'change' && this.#kernelDesired && steerUnchanged(this.#kernelDesired, steer.value) && dos.value.key === this.#kernelDos ? nftOnlySteps(this.#o.env, this.#kernelDesired, d.value) : null;
      if (fast) {
        const report = await apply(fast);
        steps += report.applied.length;
        if (report.failed) {
          const f = report.failed;
          return fail('apply', `apply at revision ${revision}: ${report.applied.length} of ${fast.length} firewall updates done, failed at ${f.step.path} (${f.step.what}): ${f.error.message}; the retry runs a full pass`);
        }
      }
      for (let pass = 0; !fast && pass < this.#passes; pass++) {
        const p = await plan(this.#o.env, d.value, { ...(steer.value ? { steer: steer.value } : {}), ...dos.value.more });
        if (!p.ok) return fail('apply', `plan at revision ${revision}: ${p.error.path}: ${p.error.message}`);
        if (p.value.length === 0) break;
        const report = await apply(p.value);
        steps += report.applied.length;
        if (report.failed) {
          const f = report.failed;
          return fail('apply', `apply at revision ${revision}: ${report.applied.length} of ${p.value.length} steps done, failed at ${f.step.path} (${f.step.what}): ${f.error.message}; the next pass starts from what is there now`);
        }
      }
      if (!fast) {
        this.#lastFullPassMs = performance.now() - t0;
        this.#scheduleDriftCheck();
      }
      this.#kernelDesired = d.value;
      rememberSteer(d.value, steer.value);
      this.#kernelDos = dos.value.key;
      // Re-plan when the next DoS rule expires, so it stops being enforced on time.
      this.#clock.clearTimeout(this.#dosTimer);
      const expiry = dos.value.expiryInMs;
      if (expiry !== undefined && !this.#stopped) this.#dosTimer = this.#clock.setTimeout(() => this.#requestReconcile('expiry'), expiry);
      const seconds = (performance.now() - t0) / 1000;
      this.#retryBackoff.reset();
      this.#lastError = undefined;
      if (dos.value.refused.length > 0) {
        // Applied without them: said in the status and the log until the rules are fixed or deleted.
        const message = `DoS rules refused, every other rule is enforced: ${formatDosErrors(dos.value.refused)}`;
        this.#lastError = { at: this.#clock.now(), message };
        this.#emit({ level: 'error', event: 'error', stage: 'compile', revision, message });
      }
      this.#appliedAt = this.#clock.now();
      if (this.#generation === generation) {
        // Nothing arrived meanwhile but status: the kernel matches the newest revision.
        this.#appliedGeneration = generation;
        this.#applied = Math.max(this.#applied, this.#revision);
        this.#pendingSince = undefined;
      } else this.#applied = Math.max(this.#applied, revision);
      const inSync = this.#appliedGeneration === this.#generation && !this.#replicaStale;
      const saved = this.#replica?.setApplied(this.#applied, inSync ? this.#revision : undefined);
      if (saved && !saved.ok) this.#emit({ level: 'error', event: 'error', stage: 'replica', revision, message: saved.error.message });
      this.#emit({ level: steps === 0 ? 'debug' : 'info', event: 'applied', revision: this.#applied, steps, ms: Math.round(seconds * 1000), trigger });
      this.#notify(seconds, steps === 0 ? 'noop' : 'ok');
      this.#writeStatus();
    } catch (e) {
      // A thrown exception is a bug below us; the daemon reports it and retries rather than die.
      fail('internal', `reconcile at revision ${revision} threw: ${(e as Error)?.stack ?? String(e)}`);
    }
  }

  #notify(seconds: number, outcome: ReconcileOutcome): void {
    for (const cb of this.#hooks) {
      try {
        cb(seconds, outcome);
      } catch {
        // A broken metrics hook must not take the agent down.
      }
    }
  }

  // ---- status, heartbeat, health ------------------------------------------------------------

  /** Writes the status now (or right after the write in flight). Failures are logged only. */
  #writeStatus(): void {
    if (this.#stopped || !this.#store || !this.#connected) return;
    if (this.#statusWriting) {
      this.#statusAgain = true;
      return;
    }
    this.#statusWriting = (async () => {
      do {
        this.#statusAgain = false;
        const store = this.#store;
        if (!store || !this.#connected) break;
        const { dc, server } = this.#o.where;
        const r = await store.put(statusKey(dc, server), this.snapshot());
        if (!r.ok) {
          this.#emit({ level: 'error', event: 'error', stage: 'status', revision: this.#revision, message: r.error.message });
          if (r.error.code === 'unavailable') this.#dropConnection(store, `status write: ${r.error.message}`);
          break;
        }
      } while (this.#statusAgain && !this.#stopped);
    })().finally(() => (this.#statusWriting = null));
  }

  /**
   * (Re)arms the drift check: `driftCheckMs` after now, or ten times the last full pass if that is
   * longer. Called at start and after every full pass, so a pass run for another reason counts.
   */
  #scheduleDriftCheck(): void {
    this.#clock.clearTimeout(this.#driftTimer);
    if (this.#stopped) return;
    // A server of a thousand tenants takes minutes to read whole: drift checks get at most a
    // tenth of the agent's time, so changes are not kept waiting behind them.
    const delay = Math.max(this.#o.driftCheckMs ?? 30_000, 10 * this.#lastFullPassMs);
    this.#driftTimer = this.#clock.setTimeout(() => this.#requestReconcile('drift'), delay);
  }



  #scheduleHeartbeat(): void {
    if (this.#stopped) return;
    this.#heartbeatTimer = this.#clock.setTimeout(() => {
      this.#writeStatus();
      this.#scheduleHeartbeat();
    }, this.#o.heartbeatMs ?? 10_000);
  }

  #scheduleHealthTick(): void {
    const health = this.#health;
    if (this.#stopped || !health) return;
    this.#healthTimer = this.#clock.setTimeout(() => {
      health
        .tick()
        .catch(() => {})
        .finally(() => this.#scheduleHealthTick());
    }, this.#o.healthTickMs ?? 100);
  }
}
