/**
 * The agent's detection loop: once a second it reads the XDP samples, judges them (detect.ts)
 * against the tenants' policies, and writes what it finds to the store:
 *
 * - policy `install`: the rule at `/dos/rules/<id>`, created only if absent (compare-and-set), so
 *   of several servers detecting the same attack one creates it and the others find it;
 * - policy `propose`: a proposal at `/detect/proposals/<id>`, created the same way, for an
 *   operator to accept (the API writes the rule) or reject;
 * - while the attack lasts, the rule's (or pending proposal's) `expires` is pushed forward by
 *   whoever sees it, once half its lifetime has passed (so a fleet renews it a few times per
 *   ttl, not every second); a rejected proposal is left alone until it expires;
 * - every `sweepEvery` ticks: detected rules and proposals past their expiry are deleted
 *   (compare-and-set on the revision read, so a renewal in between wins), and each tenant's
 *   events are trimmed to the newest EVENTS_PER_TENANT;
 * - events (`/detect/events/<tenant>/<time-server-random>`): `detected` once per attack episode
 *   per server, `proposed`/`installed` by the server whose create won, `renewed`, `expired`.
 *
 * Nothing here touches the kernel: the DoS stage compiles `/dos/rules/` into its maps like any
 * other rule. A store that is away only costs this tick's writes; samples keep being judged and
 * reported to metrics.
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import type { SampleSource } from '../kernel/bpf/sample.ts';
import type { ConfigStore, JsonValue, Op } from '../store/types.ts';
import { keyOf } from '../model/keyspace.ts';
import {
  EVENTS_PER_TENANT,
  eventKey,
  eventsPrefix,
  newEventId,
  PROPOSALS_PREFIX,
  proposalKey,
  proposalSchema,
  ttlSeconds,
  type DetectionEvent,
  type DetectionEventKind,
  type Proposal,
} from '../model/detection.ts';
import { analyseWindow, isDetectedRuleId, TenantIndex, type Attack, type WindowReport } from './detect.ts';
import { detectTenants } from './detect-tenants.ts';

/** Default sampling: 1 packet in 100. */
export const DEFAULT_SAMPLE_EVERY = 100;
/** A server that has not seen an attack for this long starts a new episode (a new `detected` event). */
export const EPISODE_GAP_MS = 60_000;
/** A pending proposal is refreshed at most this often by one server. */
const PROPOSAL_REFRESH_MS = 10_000;
/** Servers listed in a proposal's seenBy. */
const SEEN_BY_MAX = 16;

/** What the loop tells its log. */
export type DetectionLogEvent =
  | { readonly level: 'info'; readonly event: 'dos'; readonly kind: DetectionEventKind; readonly tenant: string; readonly ruleId: string }
  | { readonly level: 'error'; readonly event: 'error'; readonly stage: 'detect'; readonly message: string };

/** One tick's outcome, for metrics and tests. */
export interface TickReport {
  readonly window: WindowReport;
  readonly samples: number;
  readonly lost: number;
  readonly every: number;
  /** Events this server wrote. */
  readonly events: readonly DetectionEvent[];
  /** Store or kernel failures of this tick (also logged). */
  readonly errors: readonly string[];
}

/** Options of a {@link DetectionLoop}. */
export interface DetectionLoopOptions {
  readonly where: { readonly dc: string; readonly server: string };
  readonly source: SampleSource;
  /** Sample 1 packet in `every` (default 100). */
  readonly every?: number;
  /** The config entries (the agent's replica): tenants, prefixes and policies are read from it. */
  readonly config: () => ReadonlyMap<string, JsonValue> | Promise<ReadonlyMap<string, JsonValue>>;
  /** The connected store, or null while there is none (writes are skipped). */
  readonly store: () => ConfigStore | null;
  readonly now?: () => number;
  /** Tick interval, ms (default 1000). */
  readonly intervalMs?: number;
  /** Expiry sweep and event trimming every this many ticks (default 10). */
  readonly sweepEvery?: number;
  readonly log?: (e: DetectionLogEvent) => void;
  /** Called after every tick (metrics). */
  readonly onReport?: (r: TickReport) => void;
}

/** The loop; `start()` then `stop()`, or drive `tick()` by hand (tests). */
export class DetectionLoop {
  readonly #o: DetectionLoopOptions;
  readonly #by: string;
  readonly #now: () => number;
  readonly #episodes = new Map<string, number>();
  readonly #listeners = new Set<(r: TickReport) => void>();
  #lastRead: number | undefined;
  #ticks = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<unknown> | null = null;
  #stopped = false;

  constructor(o: DetectionLoopOptions) {
    this.#o = o;
    this.#by = `${o.where.dc}/${o.where.server}`;
    this.#now = o.now ?? Date.now;
  }

  /** Calls `cb` after every tick, like `onReport` (metrics added after the loop was made). */
  onTick(cb: (r: TickReport) => void): void {
    this.#listeners.add(cb);
  }

  /** Sets the sampling rate and starts ticking. Fails when the rate cannot be set (maps not loaded). */
  async start(): Promise<Result<void, string>> {
    const every = this.#o.every ?? DEFAULT_SAMPLE_EVERY;
    const r = await this.#o.source.setRate(every);
    if (!r.ok) return err(`detection: set sampling to 1 in ${every}: ${r.error.op}: ${r.error.message}`);
    // The first read only notes where the rings are (kernel/bpf/sample.ts).
    await this.#o.source.read();
    this.#lastRead = this.#now();
    this.#schedule();
    return ok(undefined);
  }

  /** Stops ticking (sampling stays on: the next agent start takes over). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.tick().finally(() => this.#schedule());
    }, this.#o.intervalMs ?? 1000);
    this.#timer.unref?.();
  }

  /** One pass: read, judge, write, and now and then sweep. */
  async tick(): Promise<TickReport> {
    const now = this.#now();
    const errors: string[] = [];
    const events: DetectionEvent[] = [];
    const seconds = this.#lastRead === undefined ? 1 : Math.max(0.001, (now - this.#lastRead) / 1000);
    this.#lastRead = now;
    const read = await this.#o.source.read();
    const batch = read.ok ? read.value : { samples: [], lost: 0, every: this.#o.every ?? DEFAULT_SAMPLE_EVERY };
    if (!read.ok) errors.push(`read samples: ${read.error.op}: ${read.error.message}; check that the edge programs are loaded and bpftool runs as root`);
    const tenants = detectTenants(await this.#o.config());
    const window = analyseWindow({ ...batch, seconds }, new TenantIndex(tenants), now);
    const store = this.#o.store();
    for (const a of window.attacks) {
      const fresh = now - (this.#episodes.get(a.ruleId) ?? -Infinity) > EPISODE_GAP_MS;
      this.#episodes.set(a.ruleId, now);
      if (!store) continue;
      if (fresh) await this.#event(store, events, errors, 'detected', a, now);
      await this.#act(store, a, now, events, errors);
    }
    for (const [id, seen] of this.#episodes) if (now - seen > EPISODE_GAP_MS) this.#episodes.delete(id);
    this.#ticks++;
    if (store && this.#ticks % (this.#o.sweepEvery ?? 10) === 0) await this.sweep(store, now, events, errors);
    for (const e of errors) this.#o.log?.({ level: 'error', event: 'error', stage: 'detect', message: e });
    const report: TickReport = { window, samples: batch.samples.length, lost: batch.lost, every: batch.every, events, errors };
    this.#o.onReport?.(report);
    for (const cb of this.#listeners) cb(report);
    return report;
  }

  async #act(store: ConfigStore, a: Attack, now: number, events: DetectionEvent[], errors: string[]): Promise<void> {
    const ttlMs = (ttlSeconds(a.policy.ttl) ?? 600) * 1000;
    const ruleKey = keyOf({ kind: 'dos', id: a.ruleId });
    const cur = await store.get(ruleKey);
    if (!cur.ok) return void errors.push(`read ${ruleKey}: ${cur.error.message}`);
    if (cur.value) {
      // Installed (by policy, or an accepted proposal): keep it alive while the attack lasts.
      const value = cur.value.value as { expires?: unknown };
      const expires = typeof value.expires === 'string' ? Date.parse(value.expires) : NaN;
      if (!Number.isFinite(expires) || expires - now >= ttlMs / 2) return;
      const renewed = { ...(value as Record<string, JsonValue>), expires: new Date(now + ttlMs).toISOString() };
      const ev = this.#eventOp(a, 'renewed', now, { rule: renewed });
      const w = await store.txn({ if: [{ key: ruleKey, modRevision: cur.value.modRevision }], then: [{ op: 'put', key: ruleKey, value: renewed }, ev.op] });
      if (w.ok) this.#wrote(events, ev.event);
      else if (w.error.code !== 'cas_failed') errors.push(`renew ${ruleKey}: ${w.error.message}`);
      return;
    }
    if (a.policy.action === 'install') {
      const ev = this.#eventOp(a, 'installed', now);
      const w = await store.txn({ if: [{ key: ruleKey, version: 0 }], then: [{ op: 'put', key: ruleKey, value: a.rule }, ev.op] });
      if (w.ok) this.#wrote(events, ev.event);
      // cas_failed: another server installed it first (it is renewed through the branch above).
      else if (w.error.code !== 'cas_failed') errors.push(`install ${ruleKey}: ${w.error.message}`);
      return;
    }
    const pk = proposalKey(a.ruleId);
    const p = await store.get(pk);
    if (!p.ok) return void errors.push(`read ${pk}: ${p.error.message}`);
    const iso = new Date(now).toISOString();
    const expires = new Date(now + ttlMs).toISOString();
    if (!p.value) {
      const proposal: Proposal = { tenant: a.tenant, state: 'pending', rule: a.rule, ttlSeconds: ttlMs / 1000, createdAt: iso, updatedAt: iso, expires, seenBy: [this.#by], observation: a.observation };
      const ev = this.#eventOp(a, 'proposed', now);
      const w = await store.txn({ if: [{ key: pk, version: 0 }], then: [{ op: 'put', key: pk, value: proposal }, ev.op] });
      if (w.ok) this.#wrote(events, ev.event);
      else if (w.error.code !== 'cas_failed') errors.push(`propose ${pk}: ${w.error.message}`);
      return;
    }
    const old = proposalSchema.safeParse(p.value.value);
    if (!old.success) return void errors.push(`${pk} does not parse (${old.error.issues[0]?.message ?? 'invalid'}); an operator should reject or delete it`);
    if (old.data.state !== 'pending') return; // rejected: not proposed again until it expires
    const known = old.data.seenBy.includes(this.#by);
    if (known && now - Date.parse(old.data.updatedAt) < PROPOSAL_REFRESH_MS) return;
    const seenBy = known ? old.data.seenBy : [...old.data.seenBy, this.#by].slice(-SEEN_BY_MAX);
    const next: Proposal = { ...old.data, updatedAt: iso, expires, seenBy, observation: a.observation, rule: { ...old.data.rule, expires: a.rule.expires } };
    const w = await store.put(pk, next, { modRevision: p.value.modRevision });
    if (!w.ok && w.error.code !== 'cas_failed') errors.push(`refresh ${pk}: ${w.error.message}`);
  }

  /** Deletes expired detected rules and proposals, and trims each tenant's events. */
  async sweep(store: ConfigStore, now: number, events: DetectionEvent[] = [], errors: string[] = []): Promise<void> {
    const rules = await store.list(keyOf({ kind: 'dos', id: 'x' }).slice(0, -1));
    if (!rules.ok) errors.push(`list DoS rules: ${rules.error.message}`);
    else
      for (const e of rules.value.entries) {
        const id = e.key.split('/').pop()!;
        const v = e.value as { expires?: unknown; scope?: { tenant?: unknown } };
        if (!isDetectedRuleId(id) || typeof v.expires !== 'string' || Date.parse(v.expires) > now) continue;
        const tenant = typeof v.scope?.tenant === 'string' ? v.scope.tenant : undefined;
        if (tenant === undefined) continue;
        const ev = this.#eventOpFor(tenant, id, 'expired', now, { rule: e.value });
        const w = await store.txn({ if: [{ key: e.key, modRevision: e.modRevision }], then: [{ op: 'delete', key: e.key }, ev.op] });
        if (w.ok) this.#wrote(events, ev.event);
        else if (w.error.code !== 'cas_failed') errors.push(`expire ${e.key}: ${w.error.message}`);
      }
    const proposals = await store.list(PROPOSALS_PREFIX);
    if (!proposals.ok) errors.push(`list proposals: ${proposals.error.message}`);
    else
      for (const e of proposals.value.entries) {
        const p = proposalSchema.safeParse(e.value);
        if (p.success && Date.parse(p.data.expires) > now) continue;
        const id = e.key.slice(PROPOSALS_PREFIX.length);
        const then: Op[] = [{ op: 'delete', key: e.key }];
        let event: DetectionEvent | undefined;
        // A proposal that does not parse cannot name its tenant: it is removed without an event.
        if (p.success && isDetectedRuleId(id)) {
          const ev = this.#eventOpFor(p.data.tenant, id, 'expired', now, { rule: p.data.rule });
          then.push(ev.op);
          event = ev.event;
        }
        const w = await store.txn({ if: [{ key: e.key, modRevision: e.modRevision }], then });
        if (w.ok && event) this.#wrote(events, event);
        else if (!w.ok && w.error.code !== 'cas_failed') errors.push(`expire ${e.key}: ${w.error.message}`);
      }
    const all = await store.list(eventsPrefix());
    if (!all.ok) return void errors.push(`list events: ${all.error.message}`);
    const byTenant = new Map<string, string[]>();
    for (const e of all.value.entries) {
      const tenant = e.key.slice(eventsPrefix().length).split('/')[0]!;
      const list = byTenant.get(tenant) ?? [];
      list.push(e.key);
      byTenant.set(tenant, list);
    }
    for (const [tenant, keys] of byTenant) {
      if (keys.length <= EVENTS_PER_TENANT) continue;
      // Keys sort by time: the first ones are the oldest.
      const w = await store.txn({ then: keys.slice(0, keys.length - EVENTS_PER_TENANT).map((key) => ({ op: 'delete' as const, key })) });
      if (!w.ok) errors.push(`trim events of ${tenant}: ${w.error.message}`);
    }
  }

  async #event(store: ConfigStore, events: DetectionEvent[], errors: string[], kind: DetectionEventKind, a: Attack, now: number): Promise<void> {
    const ev = this.#eventOp(a, kind, now);
    const w = await store.put(ev.op.key, ev.event);
    if (w.ok) this.#wrote(events, ev.event);
    else errors.push(`write event ${ev.op.key}: ${w.error.message}`);
  }

  #eventOp(a: Attack, kind: DetectionEventKind, now: number, extra: { rule?: unknown } = {}) {
    const ev = this.#eventOpFor(a.tenant, a.ruleId, kind, now, { rule: extra.rule ?? a.rule });
    const event: DetectionEvent = { ...ev.event, observation: a.observation };
    return { event, op: { ...ev.op, value: event } };
  }

  #eventOpFor(tenant: string, ruleId: string, kind: DetectionEventKind, now: number, extra: { rule?: unknown }) {
    const event = { at: new Date(now).toISOString(), kind, tenant, ruleId, by: this.#by, ...(extra.rule !== undefined ? { rule: extra.rule } : {}) } as DetectionEvent;
    return { event, op: { op: 'put' as const, key: eventKey(tenant, newEventId(now, this.#by)), value: event as unknown } };
  }

  #wrote(events: DetectionEvent[], e: DetectionEvent): void {
    events.push(e);
    this.#o.log?.({ level: 'info', event: 'dos', kind: e.kind, tenant: e.tenant, ruleId: e.ruleId });
  }
}
