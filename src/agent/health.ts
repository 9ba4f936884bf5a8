/**
 * Tunnel health: probes sent through each tunnel, and the up/down state they imply.
 *
 * A probe is an ICMP echo from our inner tunnel address to the customer router's, sent out of
 * the tunnel device in the tenant's namespace: it is encapsulated like customer traffic, and the
 * answer comes back through the anycast endpoint and the decapsulator like customer traffic, so
 * a passing probe shows the whole round trip works. The customer's router answers it as any
 * router answers a ping to its tunnel interface; nothing is needed on its side.
 *
 * State per tunnel: `unknown` until the first verdict (routes treat it as usable, as they would
 * a static route), `down` after `downThreshold` failures in a row, `up` after `upThreshold`
 * successes in a row. The monitor reports each change with its time, and keeps the last probe's
 * round-trip time and error for `status`.
 */
import type { HealthCheck } from '../model/tunnel.ts';
import { formatIpv4Addr, formatIpv6Addr, parseIpv4Addr, parseIpv6Addr } from '../wire/addr.ts';

export type TunnelState = 'unknown' | 'up' | 'down';

/** Where and how to probe one tunnel. */
export interface ProbeTarget {
  /** `tenants/<t>/tunnels/<n>`: the tunnel's object path. */
  readonly path: string;
  /** Namespace the tunnel device lives in. */
  readonly netns: string;
  /** The tunnel device. */
  readonly device: string;
  /** Our inner address (probe source). */
  readonly source: string;
  /** The customer router's inner address (probe destination). */
  readonly peer: string;
}

export interface ProbeResult {
  readonly ok: boolean;
  readonly rttMs?: number;
  /** Why it failed, for status output. */
  readonly error?: string;
}

/** Sends one probe and waits at most `timeoutMs` for its answer. */
export interface Prober {
  probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult>;
}

/** What `status` reports for one tunnel. */
export interface TunnelHealth {
  readonly path: string;
  readonly state: TunnelState;
  /** When the state last changed (ms since the epoch), or when monitoring began. */
  readonly since: number;
  readonly consecutiveOk: number;
  readonly consecutiveFailed: number;
  readonly probes: number;
  readonly lastProbeAt: number | null;
  readonly lastRttMs: number | null;
  readonly lastError: string | null;
}

/** A state change, for logs, metrics and the route selection. */
export interface HealthChange {
  readonly path: string;
  readonly from: TunnelState;
  readonly to: TunnelState;
  readonly at: number;
}

interface Entry {
  target: ProbeTarget;
  check: HealthCheck;
  health: TunnelHealth;
  nextAt: number;
  inFlight: boolean;
}

/**
 * Peer address inside a point-to-point tunnel subnet: the other address of a /31 (or /127), the
 * other host of a /30 (or /126). Other prefix lengths name no single peer: null.
 */
export function tunnelPeer(inner: string): string | null {
  const [addr, lenText] = inner.split('/');
  const len = Number(lenText);
  if (addr === undefined) return null;
  const v6 = addr.includes(':');
  const parsed = v6 ? parseIpv6Addr(addr) : parseIpv4Addr(addr);
  if (!parsed.ok) return null;
  const bytes = Uint8Array.from(parsed.value);
  const bits = v6 ? 128 : 32;
  const lastIdx = bytes.length - 1;
  const last = bytes[lastIdx]!;
  if (len === bits - 1) bytes[lastIdx] = last ^ 1;
  else if (len === bits - 2) {
    const host = last & 3;
    if (host !== 1 && host !== 2) return null; // the subnet's network or broadcast address
    bytes[lastIdx] = (last & ~3) | (host === 1 ? 2 : 1);
  } else return null;
  return v6 ? formatIpv6Addr(bytes) : formatIpv4Addr(bytes);
}

/**
 * Probes every tunnel it is given on its own schedule and keeps their state. Time comes from
 * `now()`, and `tick()` runs the probes that are due, so tests drive it with a fake clock; `start`
 * ticks on a timer.
 */
export class HealthMonitor {
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly prober: Prober,
    private readonly onChange: (c: HealthChange) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Sets the tunnels to watch. New ones start `unknown` and are probed at once; removed ones are
   * forgotten; kept ones keep their state (a changed target or setting does not reset it).
   */
  setTargets(targets: ReadonlyArray<{ target: ProbeTarget; check: HealthCheck }>): void {
    const keep = new Set<string>();
    const t = this.now();
    for (const { target, check } of targets) {
      if (!check.enabled) continue;
      keep.add(target.path);
      const e = this.entries.get(target.path);
      if (e) {
        e.target = target;
        e.check = check;
        continue;
      }
      this.entries.set(target.path, {
        target,
        check,
        nextAt: t,
        inFlight: false,
        health: { path: target.path, state: 'unknown', since: t, consecutiveOk: 0, consecutiveFailed: 0, probes: 0, lastProbeAt: null, lastRttMs: null, lastError: null },
      });
    }
    for (const path of [...this.entries.keys()]) if (!keep.has(path)) this.entries.delete(path);
  }

  /** Health of every watched tunnel, sorted by path. */
  status(): TunnelHealth[] {
    return [...this.entries.values()].map((e) => e.health).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Paths of tunnels currently `down`: what route selection leaves out. */
  down(): Set<string> {
    return new Set([...this.entries.values()].filter((e) => e.health.state === 'down').map((e) => e.health.path));
  }

  /** Probes every tunnel that is due and not already being probed; resolves when they answered. */
  async tick(): Promise<void> {
    const t = this.now();
    const due = [...this.entries.values()].filter((e) => !e.inFlight && e.nextAt <= t);
    await Promise.all(due.map((e) => this.probeOne(e)));
  }

  /** Ticks every `periodMs` until `stop`. */
  start(periodMs = 100): void {
    if (this.timer) return;
    const loop = (): void => {
      this.tick()
        .catch(() => {})
        .finally(() => {
          if (this.timer) this.timer = setTimeout(loop, periodMs);
        });
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async probeOne(e: Entry): Promise<void> {
    e.inFlight = true;
    const started = this.now();
    e.nextAt = started + e.check.intervalMs;
    let r: ProbeResult;
    try {
      r = await this.prober.probe(e.target, e.check.timeoutMs);
    } catch (err) {
      r = { ok: false, error: (err as Error).message };
    }
    e.inFlight = false;
    // The tunnel may have been removed while its probe was out.
    if (this.entries.get(e.target.path) !== e) return;
    const h = e.health;
    const at = this.now();
    const consecutiveOk = r.ok ? h.consecutiveOk + 1 : 0;
    const consecutiveFailed = r.ok ? 0 : h.consecutiveFailed + 1;
    let state = h.state;
    if (r.ok && state !== 'up' && consecutiveOk >= e.check.upThreshold) state = 'up';
    if (!r.ok && state !== 'down' && consecutiveFailed >= e.check.downThreshold) state = 'down';
    e.health = {
      ...h,
      state,
      since: state === h.state ? h.since : at,
      consecutiveOk,
      consecutiveFailed,
      probes: h.probes + 1,
      lastProbeAt: started,
      lastRttMs: r.ok ? (r.rttMs ?? null) : h.lastRttMs,
      lastError: r.ok ? null : (r.error ?? 'no answer'),
    };
    if (state !== h.state) this.onChange({ path: h.path, from: h.state, to: state, at });
  }
}
