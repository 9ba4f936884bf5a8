/**
 * The agent's Prometheus metrics (prom-client), served on `/metrics`:
 *
 * - **Kernel counters**, read at scrape time (metrics-read.ts): per tenant and rule the firewall's
 *   packets and bytes (with the default actions, rate-limit drops and direction-less drops), the
 *   transit table's cross-tenant drops, per tunnel the GRE encap/decap packets and bytes, MSS
 *   clamps and too-big drops, and the programs' global GRE counters and drop reasons. They are
 *   Prometheus counters even though the kernel is read absolutely; metrics-monotonic.ts keeps them
 *   from going backwards when a table is replaced or a namespace re-created.
 * - **Agent state**, from the status the agent reports (model/status.ts): applied and seen
 *   revision, config lag in revisions and seconds, store connectivity, the last error, tunnel
 *   health.
 * - **Reconcile duration**, a histogram the daemon feeds through `observeReconcile`.
 *
 * Tunnel health: `anyedge_tunnel_up` is 1 (up) or 0 (down) and is left out for a tunnel whose
 * state is still `unknown` (no probe verdict yet), so `anyedge_tunnel_up == 0` alerts only on a
 * real verdict; `anyedge_tunnel_state{state}` has one series per state (1 for the current one) for
 * those who want to see `unknown` too.
 *
 * One scrape reads the kernel once: the collectors of a scrape run together, and share one read
 * (and concurrent scrapes share it too). A read that fails — a namespace deleted mid-scrape, the
 * maps not loaded — leaves its series out, counts `anyedge_metrics_scrape_errors_total{source}`
 * and is kept in `lastScrapeErrors` for the daemon to log; the scrape itself does not fail.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DesiredServer } from '../compile/server.ts';
import type { ServerStatus } from '../model/status.ts';
import { MonotonicCounters } from './metrics-monotonic.ts';
import { serveMetrics, type MetricsListen, type MetricsServer } from './metrics-http.ts';
import { KERNEL_COUNTERS, readKernelCounters, type KernelCounterId, type ScrapeError } from './metrics-read.ts';
import type { ReconcileEnv } from './reconcile.ts';
import { DetectMetrics } from './detect-metrics.ts';
import { registerDosMetrics } from './dos-metrics.ts';
import { registerSteerMetrics } from './steer-metrics.ts';
import { registerSynMetrics } from './syn-metrics.ts';

export type { ScrapeError } from './metrics-read.ts';
export { KERNEL_COUNTERS } from './metrics-read.ts';

/** What the metrics read: the kernel the agent reconciles, and the agent's current view. */
export interface AgentMetricsSource {
  readonly env: ReconcileEnv;
  /** The last compiled desired state; undefined before the first compile. */
  desired(): DesiredServer | undefined;
  /** The status the agent reports (`/status/<dc>/<server>`). */
  status(): ServerStatus;
  /** Clock for the lag gauge, ms since the epoch; default Date.now. */
  readonly now?: () => number;
}

/** Outcome label of `anyedge_reconcile_duration_seconds`. */
export type ReconcileOutcome = 'ok' | 'error' | 'noop';

/**
 * Reconcile durations: a no-op pass on a small server reads the kernel in tens of milliseconds;
 * provisioning many tenants takes seconds (bench/RESULTS.md), a stuck pass up to nft's and
 * bpftool's 30 s command timeout.
 */
const RECONCILE_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const SCRAPE_ERROR_SOURCES: readonly ScrapeError['code'][] = ['nft', 'bpf', 'desired', 'status'];

/** One scrape's data, shared by every collector of that scrape. */
interface Scrape {
  readonly counters: ReadonlyMap<KernelCounterId, ReadonlyArray<{ labels: Readonly<Record<string, string>>; value: number }>>;
  readonly status: ServerStatus | null;
  readonly now: number;
  readonly seconds: number;
}

/** Seconds since the epoch of an ISO 8601 time, or null when it does not parse. */
function epochSeconds(iso: string | undefined): number | null {
  if (iso === undefined) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms / 1000 : null;
}

/** The agent's metrics registry, its collectors, and the HTTP endpoint that serves it. */
export class AgentMetrics {
  /** Every metric of the agent; serve it, or merge it into another registry. */
  readonly registry: Registry = new Registry();
  /** Attack detection's series; the detection loop feeds it (`detection.observe` as its onReport). */
  readonly detection: DetectMetrics = new DetectMetrics(this.registry);
  private readonly src: AgentMetricsSource;
  private readonly monotonic = new MonotonicCounters();
  private readonly reconcileDuration: Histogram<'outcome'>;
  private readonly scrapeErrors: Counter<'source'>;
  private inflight: Promise<Scrape> | null = null;
  private errors: readonly ScrapeError[] = [];

  constructor(src: AgentMetricsSource) {
    this.src = src;
    const registers = [this.registry];
    registerDosMetrics(this.registry, () => src.env);
    registerSteerMetrics(this.registry, () => src.env);
    registerSynMetrics(this.registry, () => src.env, () => src.desired());

    this.reconcileDuration = new Histogram({
      name: 'anyedge_reconcile_duration_seconds',
      help: 'Duration of reconcile passes (read the kernel, plan, apply), by outcome: ok (changes applied), noop (nothing to do), error.',
      labelNames: ['outcome'],
      buckets: RECONCILE_BUCKETS,
      registers,
    });
    this.scrapeErrors = new Counter({
      name: 'anyedge_metrics_scrape_errors_total',
      help: 'Reads that failed while collecting metrics (a namespace gone mid-scrape, maps not loaded …); their series are left out of that scrape.',
      labelNames: ['source'],
      registers,
      // Waits for the scrape, so that its own errors are counted in what this collector reports.
      collect: async () => void (await this.scrape()),
    });
    for (const source of SCRAPE_ERROR_SOURCES) this.scrapeErrors.inc({ source }, 0);

    for (const [id, spec] of Object.entries(KERNEL_COUNTERS) as [KernelCounterId, (typeof KERNEL_COUNTERS)[KernelCounterId]][]) {
      const c: Counter<string> = new Counter({
        name: spec.name,
        help: spec.help,
        labelNames: spec.labelNames,
        registers,
        collect: async () => {
          const s = await this.scrape();
          c.reset();
          for (const x of s.counters.get(id) ?? []) c.inc(x.labels, x.value);
        },
      });
    }

    const gauge = (name: string, help: string, fill: (g: Gauge<string>, s: Scrape, st: ServerStatus) => void, labelNames: readonly string[] = []) => {
      const g: Gauge<string> = new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect: async () => {
          const s = await this.scrape();
          g.reset();
          if (s.status) fill(g, s, s.status);
          else if (labelNames.length === 0) g.remove();
        },
      });
    };
    const optional = (g: Gauge<string>, v: number | null) => (v === null ? g.remove() : g.set(v));
    gauge('anyedge_applied_revision', 'Store revision the kernel was last made equal to.', (g, _s, st) => g.set(st.appliedRevision));
    gauge('anyedge_seen_revision', 'Newest store revision the agent has received.', (g, _s, st) => g.set(st.seenRevision));
    gauge('anyedge_config_lag_revisions', 'Revisions received and not yet applied (seen − applied).', (g, _s, st) => g.set(Math.max(0, st.seenRevision - st.appliedRevision)));
    gauge('anyedge_config_lag_seconds', 'How long received config has been waiting to be applied (now − pendingSince); 0 when in sync.', (g, s, st) => {
      const since = epochSeconds(st.pendingSince);
      g.set(since === null ? 0 : Math.max(0, s.now / 1000 - since));
    });
    gauge('anyedge_store_connected', '1 when the agent is connected to the config store, else 0.', (g, _s, st) => g.set(st.store.connected ? 1 : 0));
    gauge('anyedge_store_connected_changed_timestamp_seconds', 'When store connectivity last changed (seconds since the epoch).', (g, _s, st) => optional(g, epochSeconds(st.store.since)));
    gauge('anyedge_last_apply_timestamp_seconds', 'When the kernel was last made equal to the config (seconds since the epoch); absent before the first apply.', (g, _s, st) => optional(g, epochSeconds(st.appliedAt)));
    gauge('anyedge_config_error', '1 while the last compile or apply failed (see the status lastError), else 0.', (g, _s, st) => g.set(st.lastError ? 1 : 0));
    gauge('anyedge_agent_start_time_seconds', 'When the agent started (seconds since the epoch).', (g, _s, st) => optional(g, epochSeconds(st.startedAt)));
    gauge('anyedge_agent_info', 'Always 1; the agent version as a label.', (g, _s, st) => g.set({ version: st.version }, 1), ['version']);
    gauge(
      'anyedge_tunnel_up',
      'Tunnel health from probes: 1 up, 0 down; absent while the state is unknown (no verdict yet).',
      (g, _s, st) => {
        for (const t of st.tunnels) if (t.state !== 'unknown') g.set({ tenant: t.tenant, tunnel: t.tunnel }, t.state === 'up' ? 1 : 0);
      },
      ['tenant', 'tunnel'],
    );
    gauge(
      'anyedge_tunnel_state',
      'Tunnel health as a state set: 1 for the current state (unknown, up, down), 0 for the others.',
      (g, _s, st) => {
        for (const t of st.tunnels) for (const state of ['unknown', 'up', 'down'] as const) g.set({ tenant: t.tenant, tunnel: t.tunnel, state }, t.state === state ? 1 : 0);
      },
      ['tenant', 'tunnel', 'state'],
    );
    gauge(
      'anyedge_tunnel_probe_rtt_seconds',
      'Round-trip time of the last answered health probe through the tunnel.',
      (g, _s, st) => {
        for (const t of st.tunnels) if (t.rttMs !== undefined) g.set({ tenant: t.tenant, tunnel: t.tunnel }, t.rttMs / 1000);
      },
      ['tenant', 'tunnel'],
    );
    const duration: Gauge = new Gauge({
      name: 'anyedge_metrics_scrape_duration_seconds',
      help: 'How long reading the kernel counters took in this scrape.',
      registers,
      collect: async () => duration.set((await this.scrape()).seconds),
    });
  }

  /** Records one reconcile pass. `seconds` must be a finite non-negative number (a bug otherwise). */
  observeReconcile(seconds: number, outcome: ReconcileOutcome): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`observeReconcile: duration ${seconds} s is not a finite non-negative number`);
    this.reconcileDuration.observe({ outcome }, seconds);
  }

  /** The reads that failed in the last scrape, with why (empty when all went well). */
  get lastScrapeErrors(): readonly ScrapeError[] {
    return this.errors;
  }

  /** Serves `/metrics` on `listen` (port 0: any free port); rejects when it cannot listen there. */
  serve(listen: MetricsListen): Promise<MetricsServer> {
    return serveMetrics(this.registry, listen);
  }

  /** The data of the scrape in progress, or of a new one: collectors of one scrape share a read. */
  private scrape(): Promise<Scrape> {
    if (!this.inflight) {
      this.inflight = this.read().finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async read(): Promise<Scrape> {
    const started = performance.now();
    const errors: ScrapeError[] = [];
    const now = (this.src.now ?? Date.now)();
    let status: ServerStatus | null = null;
    try {
      status = this.src.status();
    } catch (e) {
      errors.push({ code: 'status', path: 'agent/status', message: `reading the agent status failed: ${(e as Error).message}; the status gauges are left out of this scrape`, cause: e as Error });
    }
    let desired: DesiredServer | undefined;
    try {
      desired = this.src.desired();
    } catch (e) {
      errors.push({ code: 'desired', path: 'agent/desired', message: `reading the desired state failed: ${(e as Error).message}; only the global GRE counters are read in this scrape`, cause: e as Error });
    }
    const reading = await readKernelCounters(this.src.env, desired);
    errors.push(...reading.errors);

    const counters = new Map<KernelCounterId, Array<{ labels: Readonly<Record<string, string>>; value: number }>>();
    const observed = new Set<string>();
    for (const x of reading.samples) {
      const key = `${x.id}${JSON.stringify(Object.entries(x.labels))}`;
      observed.add(key);
      const value = this.monotonic.observe({ key, scope: x.scope, value: x.value, generation: x.generation, onNewGeneration: x.onNewGeneration });
      let list = counters.get(x.id);
      if (!list) counters.set(x.id, (list = []));
      list.push({ labels: x.labels, value });
    }
    this.monotonic.sweep(observed, reading.failedScopes);
    for (const e of errors) this.scrapeErrors.inc({ source: e.code });
    this.errors = errors;
    return { counters, status, now, seconds: (performance.now() - started) / 1000 };
  }
}
