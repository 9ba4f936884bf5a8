import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RateLimiter, rateLimitProblem } from './rate-limit.ts';

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('a caller spends its burst, then waits for the refill; callers do not share buckets', () => {
  const c = clock();
  const l = new RateLimiter({ perSecond: 2, burst: 3 }, c.now);
  for (let i = 0; i < 3; i++) assert.deepEqual(l.take('a'), { ok: true });
  assert.deepEqual(l.take('a'), { ok: false, retryAfterSeconds: 1 });
  assert.deepEqual(l.take('b'), { ok: true }, 'another caller has its own bucket');
  c.advance(499);
  assert.equal(l.take('a').ok, false, 'not yet a whole request back');
  c.advance(1);
  assert.equal(l.take('a').ok, true, 'one request back after half a second at 2/s');
  assert.equal(l.take('a').ok, false);
  c.advance(60_000);
  for (let i = 0; i < 3; i++) assert.equal(l.take('a').ok, true, 'the refill stops at the burst');
  assert.equal(l.take('a').ok, false);
});

test('Retry-After is whole seconds until one request is back, at least 1', () => {
  const c = clock();
  const l = new RateLimiter({ perSecond: 0.1, burst: 1 }, c.now);
  assert.equal(l.take('a').ok, true);
  assert.deepEqual(l.take('a'), { ok: false, retryAfterSeconds: 10 });
  c.advance(9_000);
  assert.deepEqual(l.take('a'), { ok: false, retryAfterSeconds: 1 });
});

test('a clock stepping back neither refills nor drains', () => {
  const c = clock();
  const l = new RateLimiter({ perSecond: 1, burst: 1 }, c.now);
  assert.equal(l.take('a').ok, true);
  c.advance(-10_000);
  assert.equal(l.take('a').ok, false);
  c.advance(11_000);
  assert.equal(l.take('a').ok, true);
});

test('the table stays bounded: full buckets are dropped first, then the oldest', () => {
  const c = clock();
  const l = new RateLimiter({ perSecond: 1, burst: 2 }, c.now, 100);
  for (let i = 0; i < 100; i++) l.take(`k${i}`);
  c.advance(2_000);
  l.take('new');
  assert.equal(l.size, 1, 'all refilled buckets were dropped');
  for (let i = 0; i < 200; i++) l.take(`busy${i}`);
  assert.ok(l.size <= 100, `size ${l.size}`);
});

test('bad limits are named', () => {
  assert.match(rateLimitProblem({ perSecond: 0, burst: 1 })!, /positive/);
  assert.match(rateLimitProblem({ perSecond: Number.NaN, burst: 1 })!, /positive/);
  assert.match(rateLimitProblem({ perSecond: 1, burst: 0.5 })!, /whole number/);
  assert.equal(rateLimitProblem({ perSecond: 0.5, burst: 1 }), undefined);
  assert.throws(() => new RateLimiter({ perSecond: -1, burst: 1 }, Date.now), /positive/);
});
