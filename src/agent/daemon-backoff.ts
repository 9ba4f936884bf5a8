/**
 * Exponential backoff with jitter for the agent's retries (store reconnects, failed applies).
 *
 * Attempt n waits a random time in [d/2, d] with d = min(max, initial · factor^n): the upper half
 * keeps the growth (a store that is down is not hammered), the random half spreads the servers of a
 * data center that all lost the store at the same moment, so they do not come back in lockstep.
 */

/** Backoff settings; every field has a default. */
export interface BackoffOptions {
  /** First delay, ms (default 100). */
  readonly initialMs?: number;
  /** Largest delay, ms (default 30 000). */
  readonly maxMs?: number;
  /** Growth per attempt (default 2). */
  readonly factor?: number;
  /** Source of randomness in [0, 1) (default Math.random); tests pin it. */
  readonly random?: () => number;
}

/** Delays for consecutive failed attempts; `reset()` after a success. */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #factor: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 100;
    this.maxMs = options.maxMs ?? 30_000;
    this.#factor = options.factor ?? 2;
    this.#random = options.random ?? Math.random;
    if (!(this.initialMs > 0) || !(this.maxMs >= this.initialMs) || !(this.#factor >= 1)) {
      throw new RangeError(`backoff: need 0 < initialMs (${this.initialMs}) ≤ maxMs (${this.maxMs}) and factor (${this.#factor}) ≥ 1`);
    }
  }

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt; counts one more failure. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.#factor ** this.#attempt);
    this.#attempt++;
    return Math.round(ceiling / 2 + this.#random() * (ceiling / 2));
  }

  /** Back to the first delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }
}
