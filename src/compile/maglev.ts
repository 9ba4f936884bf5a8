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
  readonly code: 'bad_size' | 'no_servers' | 'too_many_servers' | 'duplicate_server';
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
  const table = new Int32Array(size).fill(NO_SERVER);
  const pos = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = permutationOf(ids[i] as string, size);
    pos[i] = p.offset;
    skip[i] = p.skip;
  }
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      // Walk server i's permutation to its next free bucket: (offset + j·skip) mod M, j = 0, 1, …
      let c = pos[i] as number;
      while (table[c] !== NO_SERVER) c = (c + (skip[i] as number)) % size;
      table[c] = i;
      pos[i] = (c + (skip[i] as number)) % size;
      if (++filled === size) return ok(table);
    }
  }
}

/** A server as steering sees it. */
export interface SteeringServer {
  readonly id: string;
  readonly state: ServerState;
}

/**
 * A DC's steering table: per bucket the first owner (an active server) and the second choice —
 * the server that owned the bucket while the draining servers still took new flows, where that
 * differs from the first. Indexes point into `servers` (sorted ids of the active and draining
 * servers; down servers are nowhere).
 */
export interface SteeringTable {
  readonly size: number;
  readonly servers: readonly string[];
  readonly first: Int32Array;
  readonly second: Int32Array;
}

/**
 * Builds a DC's steering table. `active` servers fill the table; a `draining` server gets no
 * bucket but stays the second choice of the buckets it had, so its established flows still reach
 * it (the first owner finds no socket and passes the packet on); `down` servers appear nowhere.
 */
export function steeringTable(servers: readonly SteeringServer[], size = MAGLEV_SIZE, path = 'maglev'): Result<SteeringTable, MaglevError> {
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
  const now = maglevPopulate(active, size, path);
  if (!now.ok) return now;
  const index = new Map(withDraining.map((id, i) => [id, i]));
  const first = new Int32Array(size);
  for (let b = 0; b < size; b++) first[b] = index.get(active[now.value[b] as number] as string) as number;
  const second = new Int32Array(size).fill(NO_SERVER);
  if (withDraining.length > active.length) {
    const before = maglevPopulate(withDraining, size, path);
    if (!before.ok) return before;
    for (let b = 0; b < size; b++) if (before.value[b] !== first[b]) second[b] = before.value[b] as number;
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
