/**
 * Turns absolute kernel counter readings into Prometheus counters that never go backwards while
 * the agent runs.
 *
 * Kernel counters restart from zero under us: a firewall table is replaced as a whole on every
 * change of the tenant's firewall (compile/firewall/compile.ts, "Atomic replacement"), a tenant
 * namespace may be deleted and made again, the BPF maps are fresh after a reload. Prometheus'
 * `rate()` copes with a reset, but only when it sees the value drop; a table replaced between two
 * scrapes that has counted more since than before looks like growth, and a `rule` counter that
 * drops to zero and then matters again loses what it had counted. So each series keeps an
 * offset: when its object changed (its *generation*: the nft table handle, the tunnel's stats
 * slot) or its reading went down, what it had counted is carried into the offset and the new
 * reading is added on top.
 *
 * What this cannot see: traffic counted by the old object after the last scrape and before it
 * was replaced is lost (it was never read); a namespace recreated with the same table handle whose
 * new counters have already passed the old reading looks like plain growth. After an agent
 * restart every series starts again from the kernel's absolute value, as a process restart does.
 */

/** How a series continues when its object changed. */
export type NewGeneration =
  /** The new object starts from zero (a re-created nft table): all of its reading is new. */
  | 'zero'
  /**
   * The new object carries counts that are not this series' (a tunnel moved to a stats slot a
   * removed tunnel had used, which the data path does not clear): its first reading is the base.
   */
  | 'baseline';

/** One reading of one series. */
export interface Reading {
  /** Identifies the series: metric name and labels. */
  readonly key: string;
  /** Groups series read together (one nft table, the tunnel stats map): see `sweep`. */
  readonly scope: string;
  readonly value: number;
  /** Identity of the kernel object the value comes from; a different one is a new object. */
  readonly generation: string;
  readonly onNewGeneration: NewGeneration;
}

interface SeriesState {
  scope: string;
  generation: string;
  /** The last raw reading. */
  last: number;
  /** The raw reading this generation's counting starts from. */
  base: number;
  /** What earlier generations (or resets) had counted. */
  offset: number;
}

/** Per-series state across scrapes. */
export class MonotonicCounters {
  private readonly series = new Map<string, SeriesState>();

  /** Records a reading and returns the series' exposed value: never less than the last one. */
  observe(r: Reading): number {
    const s = this.series.get(r.key);
    if (!s) {
      // First sight: the kernel's absolute value, as a freshly started process would expose it.
      this.series.set(r.key, { scope: r.scope, generation: r.generation, last: r.value, base: 0, offset: 0 });
      return r.value;
    }
    const replaced = s.generation !== r.generation;
    if (replaced || r.value < s.last) {
      s.offset += s.last - s.base;
      s.base = replaced && r.onNewGeneration === 'baseline' ? r.value : 0;
      s.generation = r.generation;
    }
    s.scope = r.scope;
    s.last = r.value;
    return s.offset + (r.value - s.base);
  }

  /**
   * Forgets series that were not observed in this scrape, except those of scopes whose read
   * failed (a namespace that vanished mid-scrape): they resume where they were when it is back.
   * Without this a churn of tenants or rules would grow the state without bound.
   */
  sweep(observed: ReadonlySet<string>, failedScopes: ReadonlySet<string>): void {
    for (const [key, s] of this.series) if (!observed.has(key) && !failedScopes.has(s.scope)) this.series.delete(key);
  }

  /** Number of series with state (for tests of `sweep`). */
  get size(): number {
    return this.series.size;
  }
}
