// The sweep and the index are checked against brute force over random prefixes from a small
// address space (so nesting and duplicates are common), with a seeded generator so a failure
// reproduces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Cidr } from './net.ts';
import { cidrContains, cidrOverlaps, formatCidr, mustCidr } from './net.ts';
import { CidrIndex, findOverlaps } from './overlap.ts';
import { rng } from '../testkit/random.ts';

/** Random prefixes inside 10.0.0.0/22 (v4) or 2001:db8::/118 (v6), lengths /22–/30 or /118–/126. */
function randomPrefixes(n: number, seed: number): Cidr[] {
  const r = rng(seed);
  const out: Cidr[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = r() < 0.3;
    const len = 22 + Math.floor(r() * 9);
    const host = BigInt(Math.floor(r() * 1024));
    const bits = v6 ? 128 : 32;
    const l = v6 ? len + 96 : len;
    const base = v6 ? mustCidr('2001:db8::/32').start : mustCidr('10.0.0.0/8').start;
    const start = (base + host) & ~((1n << BigInt(bits - l)) - 1n);
    out.push({ family: v6 ? 6 : 4, start, len: l });
  }
  return out;
}

test('findOverlaps pairs each prefix with its nearest enclosing conflicting prefix, as brute force does', () => {
  for (const seed of [1, 2, 3]) {
    const cidrs = randomPrefixes(400, seed);
    const owner = (i: number): number => i % 3;
    const conflicts = (a: number, b: number): boolean => owner(a) !== owner(b);
    const got = findOverlaps(cidrs.map((cidr, i) => ({ cidr, value: i })), conflicts);

    // Sort order of findOverlaps: shorter first, then input order; "before" means earlier in it.
    const before = (y: number, x: number): boolean => cidrs[y]!.len < cidrs[x]!.len || (cidrs[y]!.len === cidrs[x]!.len && y < x);
    const want = new Map<number, number>();
    for (let x = 0; x < cidrs.length; x++) {
      let best: number | undefined;
      for (let y = 0; y < cidrs.length; y++) {
        if (y === x || !cidrContains(cidrs[y]!, cidrs[x]!) || !before(y, x) || !conflicts(y, x)) continue;
        // The nearest: the longest enclosing prefix, the latest one among equals.
        if (best === undefined || cidrs[y]!.len > cidrs[best]!.len || (cidrs[y]!.len === cidrs[best]!.len && y > best)) best = y;
      }
      if (best !== undefined) want.set(x, best);
    }
    const gotMap = new Map(got.map(([outer, inner]) => [inner, outer]));
    assert.equal(got.length, gotMap.size, 'each prefix is reported as the inner one at most once');
    assert.deepEqual(new Map([...gotMap].sort((a, b) => a[0] - b[0])), new Map([...want].sort((a, b) => a[0] - b[0])), `seed ${seed}`);
    assert.ok(want.size > 20, 'the random set has enough overlaps to mean something');
  }
});

test('CidrIndex.containing and overlaps agree with brute force', () => {
  const stored = randomPrefixes(300, 7);
  const index = new CidrIndex<number>();
  stored.forEach((c, i) => index.add(c, i));
  for (const probe of randomPrefixes(300, 8)) {
    const want = stored
      .map((c, i) => [c, i] as const)
      .filter(([c]) => cidrContains(c, probe))
      .sort((a, b) => b[0].len - a[0].len)
      .map(([, i]) => i);
    assert.deepEqual(index.containing(probe).sort((a, b) => a - b), [...want].sort((a, b) => a - b), formatCidr(probe));
    // Longest prefix first.
    const lens = index.containing(probe).map((i) => stored[i]!.len);
    assert.deepEqual(lens, [...lens].sort((a, b) => b - a));
    assert.equal(index.overlaps(probe), stored.some((c) => cidrOverlaps(c, probe)), formatCidr(probe));
  }
});
