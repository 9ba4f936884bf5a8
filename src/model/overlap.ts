/**
 * Fast questions over many prefixes: which pairs overlap (sort and sweep, O(n log n) plus the
 * pairs reported) and which prefixes contain a given address or prefix (one hash lookup per
 * prefix length in use). Prefixes either nest or are disjoint, which both algorithms rely on.
 */
import type { Cidr, Family } from './net.ts';
import { cidrEnd, familyBits } from './net.ts';

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An item of `findOverlaps`: a prefix and what it stands for. */
export interface Claimed<T> {
  readonly cidr: Cidr;
  readonly value: T;
}

/**
 * Finds overlapping prefixes. Items are sorted by family, start address and length (shorter
 * first), then swept with a stack of the prefixes enclosing the current one: after popping those
 * that end before it starts, everything left on the stack contains it. Each item is paired with
 * its nearest enclosing item that `conflicts` with it, so every item inside a conflicting one is
 * reported once and a chain A ⊃ B ⊃ C gives (A,B), (B,C) rather than every pair; n identical
 * prefixes give n-1 pairs, not n². Returns [outer, inner] pairs in address order.
 */
export function findOverlaps<T>(items: readonly Claimed<T>[], conflicts: (outer: T, inner: T) => boolean): [outer: T, inner: T][] {
  const sorted = items
    .map((it, i) => ({ it, i, end: cidrEnd(it.cidr) }))
    .sort((a, b) => a.it.cidr.family - b.it.cidr.family || cmp(a.it.cidr.start, b.it.cidr.start) || a.it.cidr.len - b.it.cidr.len || a.i - b.i);
  const out: [T, T][] = [];
  const stack: typeof sorted = [];
  for (const cur of sorted) {
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.it.cidr.family === cur.it.cidr.family && top.end >= cur.it.cidr.start) break;
      stack.pop();
    }
    for (let k = stack.length - 1; k >= 0; k--) {
      const outer = stack[k]!.it.value;
      if (conflicts(outer, cur.it.value)) {
        out.push([outer, cur.it.value]);
        break;
      }
    }
    stack.push(cur);
  }
  return out;
}

/**
 * A set of prefixes answering "which of them contain this prefix/address" and "does any of them
 * overlap this prefix". Lookups cost one map probe per distinct prefix length in the index, at
 * most 33 for IPv4 and 129 for IPv6, whatever the number of prefixes.
 */
export class CidrIndex<T> {
  private readonly byLen = new Map<string, Map<bigint, T[]>>();
  private readonly lens: Record<Family, Set<number>> = { 4: new Set(), 6: new Set() };
  private readonly starts: Record<Family, bigint[]> = { 4: [], 6: [] };
  private sorted = true;

  /** Adds a prefix with its value. */
  add(cidr: Cidr, value: T): void {
    const key = `${cidr.family}/${cidr.len}`;
    let m = this.byLen.get(key);
    if (!m) this.byLen.set(key, (m = new Map()));
    const list = m.get(cidr.start);
    if (list) list.push(value);
    else m.set(cidr.start, [value]);
    this.lens[cidr.family].add(cidr.len);
    this.starts[cidr.family].push(cidr.start);
    this.sorted = false;
  }

  /** Values of every prefix containing `cidr` (equal included), longest prefix first. */
  containing(cidr: Cidr): T[] {
    const out: T[] = [];
    const bits = familyBits(cidr.family);
    const lens = [...this.lens[cidr.family]].filter((l) => l <= cidr.len).sort((a, b) => b - a);
    for (const len of lens) {
      const start = cidr.start & ~((1n << BigInt(bits - len)) - 1n);
      const hit = this.byLen.get(`${cidr.family}/${len}`)?.get(start);
      if (hit) out.push(...hit);
    }
    return out;
  }

  /** Whether any prefix of the index shares an address with `cidr`. */
  overlaps(cidr: Cidr): boolean {
    if (this.containing(cidr).length) return true;
    // Otherwise only a prefix inside `cidr` can overlap it: one whose start lies in its range.
    if (!this.sorted) {
      this.starts[4].sort(cmp);
      this.starts[6].sort(cmp);
      this.sorted = true;
    }
    const starts = this.starts[cidr.family];
    let lo = 0;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! < cidr.start) lo = mid + 1;
      else hi = mid;
    }
    return lo < starts.length && starts[lo]! <= cidrEnd(cidr);
  }
}
