/**
 * The job of the steering-table worker thread (started by maglev-async.ts through
 * maglev-worker.mjs): builds one table from `workerData` (a SteeringJob) with the same
 * `buildSteeringTable` the synchronous path uses, posts it back (the two arrays transferred, not
 * copied) and ends. Any exception is the main thread's `error` event, not an answer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildSteeringTable, maglevBuilds, type MaglevError } from './maglev.ts';

/** What the main thread asks: steeringSets' sorted sets, the size and the error path. */
export interface SteeringJob {
  readonly active: readonly string[];
  readonly withDraining: readonly string[];
  readonly size: number;
  readonly path: string;
}

/** What the worker answers; `builds` is its Maglev fill count, added to the main thread's. */
export type SteeringAnswer =
  | { readonly ok: true; readonly first: Int32Array; readonly second: Int32Array; readonly builds: number }
  | { readonly ok: false; readonly error: MaglevError; readonly builds: number };

if (!parentPort) throw new Error('maglev-worker.ts runs as a worker thread (see maglev-async.ts), not as a script');
const job = workerData as SteeringJob;
const t = buildSteeringTable(job.active, job.withDraining, job.size, job.path);
const answer: SteeringAnswer = t.ok ? { ok: true, first: t.value.first, second: t.value.second, builds: maglevBuilds() } : { ok: false, error: t.error, builds: maglevBuilds() };
parentPort.postMessage(answer, t.ok ? [t.value.first.buffer as ArrayBuffer, t.value.second.buffer as ArrayBuffer] : []);
