import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from './daemon-backoff.ts';

test('delays double from the first one up to the ceiling, then stay there; reset starts over', () => {
  const top = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual(Array.from({ length: 6 }, () => top.next()), [100, 200, 400, 800, 1000, 1000]);
  assert.equal(top.attempts, 6);
  top.reset();
  assert.equal(top.next(), 100);
});

test('jitter keeps each delay within the upper half of its step', () => {
  const low = new Backoff({ initialMs: 100, maxMs: 30_000, random: () => 0 });
  assert.deepEqual(Array.from({ length: 4 }, () => low.next()), [50, 100, 200, 400]);
  const r = new Backoff({ initialMs: 100, maxMs: 30_000 });
  for (let i = 0; i < 20; i++) {
    const ceiling = Math.min(30_000, 100 * 2 ** i);
    const d = r.next();
    assert.ok(d >= ceiling / 2 && d <= ceiling, `attempt ${i}: ${d} outside [${ceiling / 2}, ${ceiling}]`);
  }
});

test('nonsense settings are refused with the numbers named', () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), /initialMs \(0\)/);
  assert.throws(() => new Backoff({ initialMs: 500, maxMs: 100 }), /maxMs \(100\)/);
});
