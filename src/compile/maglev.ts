/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4) for one data center's servers, and
 * the two-choice table XDP steering reads (Unimog's daisy chain).
 *
 * Each server gets a permutation of the M buckets from two hashes of its id (offset, skip); the
 * servers then take turns, each claiming its next still-free preferred bucket, until every bucket
 * has an owner. M is prime, so every skip in 1..M−1 visits every bucket. The result depends only
 * on the set of ids (they are sorted first), so every server of a DC computes the same table
 * from the same config, with no coordination.
 *
 * Pure: no I/O, no clock, no randomness.
 */
import { createHash } from 'node:crypto';
import { err, ok, type Result } from '../lib/result.ts';
import type { ServerState } from '../model/dc.ts';

/**
 * The table size: the smallest prime ≥ 65,536. Maglev wants M ≫ N (the paper uses M ≥ 100·N for
 * ≤1 % imbalance); 65,537 keeps that up to ~650 servers per DC and stays within ~2 % at 1,000.
 */
export const MAGLEV_SIZE = 65537;

/** No second choice in a bucket. */
export const NO_SERVER = -1;

/** A Maglev failure: code, the object path and what to do. */
export interface MaglevError {
  /** `worker_failed`: the off-thread build (maglev-async.ts) crashed, timed out or answered nonsense. */
  readonly code: 'bad_size' | 'no_servers' | 'too_many_servers' | 'duplicate_server' | 'worker_failed';
  readonly path: string;
  readonly message: string;
}

/** Whether n is prime (trial division: table sizes are small). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** A server's place in the permutation space: offset and skip (Maglev §3.4). */
export function permutationOf(id: string, size: number): { offset: number; skip: number } {
  // SHA-256 gives two independent 32-bit hashes of the id; being a standard digest, the same on
  // every machine and every Node version, unlike a hand-rolled hash someone might "fix" later.
  const d = createHash('sha256').update(id).digest();
  return { offset: d.readUInt32BE(0) % size, skip: (d.readUInt32BE(4) % (size - 1)) + 1 };
}

function checkSize(size: number, path: string): MaglevError | null {
  if (!Number.isInteger(size) || size < MAGLEV_SIZE || !isPrime(size))
    return { code: 'bad_size', path, message: `table size ${size} must be a prime ≥ ${MAGLEV_SIZE} (e.g. ${MAGLEV_SIZE}, 131071, 262139): a prime makes every skip a full permutation` };
  return null;
}

/** Maglev fills done so far in this process (tests check that the memo saves them). */
let builds = 0;
export function maglevBuilds(): number {
  return builds;
}

/** Adds the fills a worker thread did for this process (maglev-async.ts), so the count stays whole. */
export function countWorkerBuilds(n: number): void {
  builds += n;
}

/** The permutations of `ids` (offsets and skips), hashed once and shared by every build. */
function permutations(ids: readonly string[], size: number): { offset: Int32Array; skip: Int32Array } {
  const offset = new Int32Array(ids.length);
  const skip = new Int32Array(ids.length);
  for (const [i, id] of ids.entries()) {
    const p = permutationOf(id, size);
    offset[i] = p.offset;
    skip[i] = p.skip;
  }
  return { offset, skip };
}

/**
 * The Maglev fill over precomputed permutations, optionally as if server `leaveOut` were not
 * there: the others take their turns in the same order, so the result equals a build over the
 * ids without it (indexes still point into the full list). Integer adds instead of `%`: this
 * runs once per active server when second choices are computed, so it is the compile's hot loop.
 * With `until`, it fills `until.into` and stops as soon as every bucket marked in `wanted` has an
 * owner (the rest of the table is then unfilled, NO_SERVER).
 */
function fill(offset: Int32Array, skip: Int32Array, size: number, leaveOut = -1, until?: { readonly wanted: Uint8Array; count: number; readonly into: Int32Array }): Int32Array {
  const n = offset.length;
  const table = until ? until.into.fill(NO_SERVER) : new Int32Array(size).fill(NO_SERVER);
  const pos = Int32Array.from(offset);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      if (i === leaveOut) continue;
      // Walk server i's permutation to its next free bucket: (offset + j·skip) mod M, j = 0, 1, …
      const k = skip[i] as number;
      let c = pos[i] as number;
      while (table[c] !== NO_SERVER) {
        c += k;
        if (c >= size) c -= size;
      }
      table[c] = i;
      // A claimed bucket never changes owner: once every wanted one is claimed, the rest of the
      // fill (its most expensive part, the walks over an almost full table) cannot change them.
      if (until && until.wanted[c] === 1 && --until.count === 0) return table;
      c += k;
      if (c >= size) c -= size;
      pos[i] = c;
      if (++filled === size) return table;
    }
  }
}

/**
 * Fills a Maglev table of `size` buckets with indexes into `ids` (which must be sorted and
 * distinct; `steeringTable` takes care of that). Every bucket gets an owner.
 */
export function maglevPopulate(ids: readonly string[], size = MAGLEV_SIZE, path = 'maglev'): Result<Int32Array, MaglevError> {
  const bad = checkSize(size, path);
  if (bad) return err(bad);
  const n = ids.length;
  if (n === 0) return err({ code: 'no_servers', path, message: 'no server to fill the table with: at least one server must be active' });
  if (n > size) return err({ code: 'too_many_servers', path, message: `${n} servers do not fit a table of ${size} buckets; use a larger prime size` });
  builds++;
  const p = permutations(ids, size);
  return ok(fill(p.offset, p.skip, size));
}

/** A server as steering sees it. */
export interface SteeringServer {
  readonly id: string;
  readonly state: ServerState;
}

/**
 * A DC's steering table: per bucket the first owner (an active server) and the second choice —
 * where a packet of an established flow that the first owner has no socket for goes (see
 * `steeringTable`). Indexes point into `servers` (sorted ids of the active and draining servers;
 * down servers are nowhere).
 */
export interface SteeringTable {
  readonly size: number;
  readonly servers: readonly string[];
  readonly first: Int32Array;
  readonly second: Int32Array;
}

/** Tables of the last few server sets: an agent's passes over an unchanged DC rebuild nothing. */
const memo = new Map<string, SteeringTable>();
const MEMO_ENTRIES = 8;

/** The sets a steering table depends on, and the memo key they make. */
export interface SteeringSets {
  readonly key: string;
  /** Sorted ids of the active servers (S). */
  readonly active: readonly string[];
  /** Sorted ids of the active and draining servers (S ∪ draining): the table's index space. */
  readonly withDraining: readonly string[];
}

/**
 * Checks `servers` and sorts them into the sets the table depends on (steeringTable's first
 * half, shared with the off-thread build in maglev-async.ts so both memoize under one key).
 */
export function steeringSets(servers: readonly SteeringServer[], size = MAGLEV_SIZE, path = 'maglev'): Result<SteeringSets, MaglevError> {
  const seen = new Set<string>();
  for (const s of servers) {
    if (seen.has(s.id)) return err({ code: 'duplicate_server', path, message: `server ${s.id} is listed twice; server ids are unique within a DC` });
    seen.add(s.id);
  }
  const byId = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const active = servers.filter((s) => s.state === 'active').map((s) => s.id).sort(byId);
  const withDraining = servers.filter((s) => s.state !== 'down').map((s) => s.id).sort(byId);
  if (active.length === 0)
    return err({ code: 'no_servers', path, message: `no active server (${servers.length ? servers.map((s) => `${s.id} ${s.state}`).join(', ') : 'none listed'}): set at least one server's state to active` });
  return ok({ key: JSON.stringify([size, active, withDraining]), active, withDraining });
}

/** A copy of the memoized table of `key`, marked most recently used, or undefined. */
export function memoizedSteeringTable(key: string): SteeringTable | undefined {
  const t = memo.get(key);
  if (!t) return undefined;
  memo.delete(key); // re-inserted: the map's order is least recently used first
  memo.set(key, t);
  // Copies: callers own what they get, and the memo must not change under them.
  return { size: t.size, servers: t.servers, first: t.first.slice(), second: t.second.slice() };
}

/** Keeps `t` as the table of `key` (a table built elsewhere, e.g. in a worker thread). */
export function memoizeSteeringTable(key: string, t: SteeringTable): void {
  memo.delete(key);
  if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value as string);
  memo.set(key, t);
}

/**
 * Builds a DC's steering table, statelessly: every server of the DC computes the same one from
 * the config alone. With S the active servers and T(X) the Maglev table of X:
 *
 * - first[b] = T(S)[b]. `down` servers appear nowhere.
 * - second[b], where the flows of b that F = first[b] has no socket for may live:
 *   1. T(S ∪ draining)[b] when it differs from F: the owner while the draining servers still
 *      took new flows, so a draining server keeps its established flows until it is set down;
 *   2. else T(S \ {F})[b]: the owner b would have without F. When F was just added (or came
 *      back from draining), that is exactly the owner before, so F hands the old flows back to
 *      it; when F was not just added, it costs a stray segment (no socket anywhere) one more hop.
 *   With one active server and nobody draining there is no second choice.
 *   Adding k servers at once: a bucket that one new server took from another new one's
 *   T(S \ {F}) is handed to the wrong server; add servers one config change at a time (each
 *   applied by the DC's agents) when their flows must survive.
 *
 * Cost: one Maglev fill per active server plus one or two (≈ |S| fills), memoized by the
 * (active, draining) sets; see bench/maglev.bench.ts. It blocks the calling thread for seconds
 * at ~1,000 servers: the agent builds through maglev-async.ts, off its event loop.
 */
export function steeringTable(servers: readonly SteeringServer[], size = MAGLEV_SIZE, path = 'maglev'): Result<SteeringTable, MaglevError> {
  const sets = steeringSets(servers, size, path);
  if (!sets.ok) return sets;
  const hit = memoizedSteeringTable(sets.value.key);
  if (hit) return ok(hit);
  const built = buildSteeringTable(sets.value.active, sets.value.withDraining, size, path);
  if (!built.ok) return built;
  memoizeSteeringTable(sets.value.key, built.value);
  return ok(memoizedSteeringTable(sets.value.key) as SteeringTable);
}

/**
 * The table of the sets (steeringSets' `active` and `withDraining`), built without the memo:
 * the whole cost, on the calling thread (a worker thread's job, see maglev-worker.ts).
 */
export function buildSteeringTable(active: readonly string[], withDraining: readonly string[], size: number, path: string): Result<SteeringTable, MaglevError> {
  const now = maglevPopulate(active, size, path);
  if (!now.ok) return now;
  const index = new Map(withDraining.map((id, i) => [id, i]));
  const toAll = Int32Array.from(active, (id) => index.get(id) as number);
  const first = new Int32Array(size);
  for (let b = 0; b < size; b++) first[b] = toAll[now.value[b] as number] as number;
  const second = new Int32Array(size).fill(NO_SERVER);
  if (withDraining.length > active.length) {
    const before = maglevPopulate(withDraining, size, path);
    if (!before.ok) return before;
    for (let b = 0; b < size; b++) if (before.value[b] !== first[b]) second[b] = before.value[b] as number;
  }
  if (active.length > 1) {
    // The buckets of each active server, then each server's T(S \ {F}) for its own buckets.
    const p = permutations(active, size);
    const start = new Int32Array(active.length + 1);
    for (let b = 0; b < size; b++) (start[(now.value[b] as number) + 1] as number)++;
    for (let i = 0; i < active.length; i++) start[i + 1] = (start[i + 1] as number) + (start[i] as number);
    const next = start.slice(0, active.length);
    const buckets = new Int32Array(size);
    for (let b = 0; b < size; b++) {
      const f = now.value[b] as number;
      buckets[next[f] as number] = b;
      next[f] = (next[f] as number) + 1;
    }
    const wanted = new Uint8Array(size);
    const into = new Int32Array(size);
    for (let f = 0; f < active.length; f++) {
      const mine = buckets.subarray(start[f] as number, start[f + 1] as number).filter((b) => second[b] === NO_SERVER);
      if (mine.length === 0) continue;
      for (const b of mine) wanted[b] = 1;
      builds++;
      const without = fill(p.offset, p.skip, size, f, { wanted, count: mine.length, into });
      for (const b of mine) {
        second[b] = toAll[without[b] as number] as number;
        wanted[b] = 0;
      }
    }
  }
  return ok({ size, servers: withDraining, first, second });
}

/** Buckets per server of a table of indexes (for balance checks and summaries). */
export function bucketCounts(table: Int32Array, servers: number): number[] {
  const counts = new Array<number>(servers).fill(0);
  for (const s of table) if (s >= 0) counts[s] = (counts[s] ?? 0) + 1;
  return counts;
}

/**
 * Fraction of buckets whose owner changed between two tables, comparing owners by id (the index
 * spaces of the two tables differ when the server set does).
 */
export function disruption(a: { servers: readonly string[]; first: Int32Array }, b: { servers: readonly string[]; first: Int32Array }): number {
  if (a.first.length !== b.first.length) throw new Error('disruption: tables of different sizes');
  let moved = 0;
  for (let i = 0; i < a.first.length; i++) if (a.servers[a.first[i] as number] !== b.servers[b.first[i] as number]) moved++;
  return moved / a.first.length;
}
