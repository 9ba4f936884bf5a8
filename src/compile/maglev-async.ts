/**
 * `steeringTable` off the event loop: the same table (maglev.ts `buildSteeringTable`, the same
 * memo), built in a worker thread, so an agent whose DC's server set changed keeps answering its
 * store watch, /metrics, status and health while the table is computed (seconds at ~1,000
 * servers, see bench/RESULTS.md).
 *
 * - A memoized set costs what it costs synchronously (a copy), and no thread.
 * - Small DCs build on the calling thread: below WORKER_MIN_SERVERS active servers the whole
 *   build takes less than starting a worker does (~0.3–0.5 s: the thread loads tsx and compiles
 *   the modules it needs), and blocks for at most ~100 ms.
 * - Concurrent requests for the same set share one worker.
 * - A worker that throws, exits, answers nonsense or does not answer within the timeout is an
 *   error value (`worker_failed`, with the DC's path), never an exception; it is terminated.
 *
 * One short-lived worker per build, not a resident one: builds happen only when a DC's server set
 * changes, and an idle thread would hold its heap (tens of MB) for nothing.
 */
import { Worker } from 'node:worker_threads';
import { err, ok, type Result } from '../lib/result.ts';
import { countWorkerBuilds, MAGLEV_SIZE, memoizedSteeringTable, memoizeSteeringTable, steeringSets, steeringTable, type MaglevError, type SteeringServer, type SteeringSets, type SteeringTable } from './maglev.ts';
import type { SteeringJob } from './maglev-worker.ts';

/**
 * Active servers from which the table is built in a worker. A build costs ~3.5–4 ms per active
 * server (one Maglev fill each, bench/RESULTS.md), so 32 servers block the loop ≤ ~120 ms on a
 * loaded machine, about what starting a worker costs; every DC larger than that gains.
 */
export const WORKER_MIN_SERVERS = 32;

/**
 * How long a worker may take before it is terminated: 20× the 1,000-server build on a loaded
 * 2-core machine (~6 s); a worker that is still silent by then is stuck, and the agent retries.
 */
export const WORKER_TIMEOUT_MS = 120_000;

/** The worker's entry point: JavaScript that registers tsx, then runs maglev-worker.ts. */
export const STEERING_WORKER = new URL('./maglev-worker.mjs', import.meta.url);

export interface OffThreadOptions {
  /** Active servers from which a worker builds (default WORKER_MIN_SERVERS; 1: always). */
  readonly minServers?: number;
  /** The worker's entry point (tests start broken ones). */
  readonly worker?: URL;
  readonly timeoutMs?: number;
}

/** Builds in flight, by worker and memo key: a second caller waits for the same worker. */
const inFlight = new Map<string, Promise<Result<SteeringTable, MaglevError>>>();

/** `steeringTable`, with the build in a worker thread when the DC is large (see above). */
export async function steeringTableOffThread(servers: readonly SteeringServer[], size = MAGLEV_SIZE, path = 'maglev', opts: OffThreadOptions = {}): Promise<Result<SteeringTable, MaglevError>> {
  const sets = steeringSets(servers, size, path);
  if (!sets.ok) return sets;
  const hit = memoizedSteeringTable(sets.value.key);
  if (hit) return ok(hit);
  if (sets.value.active.length < (opts.minServers ?? WORKER_MIN_SERVERS)) return steeringTable(servers, size, path);
  const url = opts.worker ?? STEERING_WORKER;
  const flight = `${url.href}\n${sets.value.key}`;
  let job = inFlight.get(flight);
  if (!job) {
    job = buildInWorker(sets.value, size, path, url, opts.timeoutMs ?? WORKER_TIMEOUT_MS).finally(() => inFlight.delete(flight));
    inFlight.set(flight, job);
  }
  const built = await job;
  if (!built.ok) return built;
  // Copies: every caller owns what it gets; the memo keeps the worker's arrays.
  return ok({ size: built.value.size, servers: built.value.servers, first: built.value.first.slice(), second: built.value.second.slice() });
}

/** One worker, one table; memoized when it is good. Never rejects. */
function buildInWorker(sets: SteeringSets, size: number, path: string, url: URL, timeoutMs: number): Promise<Result<SteeringTable, MaglevError>> {
  const failed = (why: string): Result<SteeringTable, MaglevError> =>
    err({ code: 'worker_failed', path, message: `the worker thread building the steering table of ${sets.active.length} active servers ${why}; the build is retried on the next pass` });
  return new Promise((resolve) => {
    const job: SteeringJob = { active: sets.active, withDraining: sets.withDraining, size, path };
    let worker: Worker;
    try {
      worker = new Worker(url, { workerData: job });
    } catch (e) {
      resolve(failed(`could not start (${(e as Error).message})`));
      return;
    }
    let done = false;
    const finish = (r: Result<SteeringTable, MaglevError>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (r.ok) memoizeSteeringTable(sets.key, r.value);
      resolve(r);
      // It ends by itself after answering; this stops one that is stuck or misbehaving. A failed
      // terminate has nothing left to tell: the result is settled either way.
      worker.terminate().catch(() => undefined);
    };
    const timer = setTimeout(() => finish(failed(`did not answer within ${timeoutMs} ms and was stopped`)), timeoutMs);
    worker.on('message', (m: unknown) => finish(fromAnswer(m, sets, size, failed)));
    worker.on('messageerror', (e) => finish(failed(`sent an answer that could not be read (${e.message})`)));
    worker.on('error', (e) => finish(failed(`failed: ${e.message}`)));
    worker.on('exit', (code) => finish(failed(`exited with code ${code} before answering`)));
  });
}

/** The worker's answer as a table, after checking it is one: lengths and every index in range. */
function fromAnswer(m: unknown, sets: SteeringSets, size: number, failed: (why: string) => Result<SteeringTable, MaglevError>): Result<SteeringTable, MaglevError> {
  const a = m as Record<string, unknown> | null;
  if (a === null || typeof a !== 'object' || typeof a.ok !== 'boolean' || typeof a.builds !== 'number') return failed('answered something that is not a steering table');
  countWorkerBuilds(a.builds);
  if (a.ok === false) {
    const e = a.error as Partial<MaglevError> | undefined;
    if (!e || typeof e.code !== 'string' || typeof e.path !== 'string' || typeof e.message !== 'string') return failed('answered an error without code, path and message');
    return err({ code: e.code, path: e.path, message: e.message });
  }
  const { first, second } = a;
  if (!(first instanceof Int32Array) || !(second instanceof Int32Array) || first.length !== size || second.length !== size)
    return failed(`answered tables that are not two arrays of ${size} buckets`);
  const n = sets.withDraining.length;
  for (let b = 0; b < size; b++) {
    const f = first[b] as number;
    const s = second[b] as number;
    if (f < 0 || f >= n || s < -1 || s >= n) return failed(`answered bucket ${b} with owners (${f}, ${s}) outside the ${n} servers`);
  }
  return ok({ size, servers: sets.withDraining, first, second });
}
