/**
 * Per-caller rate limiting with token buckets: each caller (a token's hash, or the remote address
 * of a request without a known token) has a bucket of `burst` requests refilled at `perSecond`.
 * A bucket is refilled lazily when it is used, so an idle caller costs nothing but its entry,
 * and entries are dropped when the table grows (a dropped bucket comes back full, which is what
 * an idle caller's bucket would be anyway).
 */

/** Requests per second and the burst a caller may spend at once. */
export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

/** The reason `r` is not a usable limit, or undefined. */
export function rateLimitProblem(r: RateLimit): string | undefined {
  if (!Number.isFinite(r.perSecond) || r.perSecond <= 0) return `rate ${r.perSecond} must be a positive number of requests per second, e.g. 20`;
  if (!Number.isInteger(r.burst) || r.burst < 1) return `burst ${r.burst} must be a whole number of requests, at least 1, e.g. 40`;
  return undefined;
}

/** Outcome of {@link RateLimiter.take}. */
export type Take = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets by caller key. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * @param limit the rate and burst of every bucket
   * @param now clock in milliseconds
   * @param maxKeys table size above which buckets are dropped, full ones first
   */
  constructor(
    private readonly limit: RateLimit,
    private readonly now: () => number,
    private readonly maxKeys = 100_000,
  ) {
    const problem = rateLimitProblem(limit);
    if (problem !== undefined) throw new TypeError(`RateLimiter: ${problem}`);
  }

  /** Spends one request of `key`'s bucket, or says how long until one is available. */
  take(key: string): Take {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.prune(t);
      b = { tokens: this.limit.burst, at: t };
      this.buckets.set(key, b);
    } else {
      // A clock that steps back must not drain the bucket: elapsed time is never negative.
      const elapsed = Math.max(0, t - b.at) / 1000;
      b.tokens = Math.min(this.limit.burst, b.tokens + elapsed * this.limit.perSecond);
      b.at = t;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.limit.perSecond)) };
  }

  /** Number of buckets held (for tests of the pruning). */
  get size(): number {
    return this.buckets.size;
  }

  private prune(t: number): void {
    for (const [k, b] of this.buckets) {
      const tokens = b.tokens + (Math.max(0, t - b.at) / 1000) * this.limit.perSecond;
      if (tokens >= this.limit.burst) this.buckets.delete(k);
    }
    // Still full of busy callers (many addresses at once): drop the oldest half.
    if (this.buckets.size >= this.maxKeys) {
      let drop = Math.ceil(this.buckets.size / 2);
      for (const k of this.buckets.keys()) {
        if (drop-- <= 0) break;
        this.buckets.delete(k);
      }
    }
  }
}
