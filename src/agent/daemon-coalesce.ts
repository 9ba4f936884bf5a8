/**
 * Turns a burst of triggers into one call: the call comes `delayMs` after the last trigger, but
 * never later than `maxDelayMs` after the first one of the burst, so a store that keeps changing
 * (a bulk import) is still applied at least once a `maxDelayMs`, and a single change waits only
 * `delayMs`. 50 ms is short next to a human's write and long next to a transaction batch a tool
 * writes in a loop; 1 s bounds how stale the kernel can get while changes keep coming.
 */
import type { Clock, TimerHandle } from './daemon-clock.ts';

/** Coalescing window. */
export interface CoalesceOptions {
  /** Quiet time after the last trigger before firing, ms (default 50). */
  readonly delayMs?: number;
  /** Longest wait after the first trigger of a burst, ms (default 1000). */
  readonly maxDelayMs?: number;
}

/** Debounce with a deadline. */
export class Coalescer {
  readonly delayMs: number;
  readonly maxDelayMs: number;
  #first: number | null = null;
  #timer: TimerHandle = undefined;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
    options: CoalesceOptions = {},
  ) {
    this.delayMs = options.delayMs ?? 50;
    this.maxDelayMs = options.maxDelayMs ?? 1000;
    if (!(this.delayMs >= 0) || !(this.maxDelayMs >= this.delayMs)) {
      throw new RangeError(`coalesce: need 0 ≤ delayMs (${this.delayMs}) ≤ maxDelayMs (${this.maxDelayMs})`);
    }
  }

  /** Whether a call is scheduled. */
  get pending(): boolean {
    return this.#first !== null;
  }

  /** Notes a change: schedules the call, or pushes it back within the burst's deadline. */
  trigger(): void {
    const now = this.clock.now();
    if (this.#first === null) this.#first = now;
    const at = Math.min(now + this.delayMs, this.#first + this.maxDelayMs);
    this.clock.clearTimeout(this.#timer);
    this.#timer = this.clock.setTimeout(() => this.#fire(), Math.max(0, at - now));
  }

  /** Drops a scheduled call. */
  cancel(): void {
    this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#first = null;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#first = null;
    this.fire();
  }
}
