import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from './daemon-clock.ts';
import { Coalescer } from './daemon-coalesce.ts';

function setup() {
  const clock = new ManualClock();
  const fired: number[] = [];
  const start = clock.now();
  const c = new Coalescer(clock, () => fired.push(clock.now() - start), { delayMs: 50, maxDelayMs: 1000 });
  return { clock, fired, c };
}

test('one trigger fires once, delayMs later', () => {
  const { clock, fired, c } = setup();
  c.trigger();
  assert.equal(c.pending, true);
  clock.advance(49);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, [50]);
  assert.equal(c.pending, false);
  clock.advance(5000);
  assert.deepEqual(fired, [50]);
});

test('a burst of triggers closer than delayMs fires once, after the last', () => {
  const { clock, fired, c } = setup();
  for (let i = 0; i < 10; i++) {
    c.trigger();
    clock.advance(10);
  }
  // Last trigger at t=90: fires at 140.
  clock.advance(100);
  assert.deepEqual(fired, [140]);
});

test('triggers that never stop still fire every maxDelayMs', () => {
  const { clock, fired, c } = setup();
  for (let t = 0; t < 2500; t += 20) {
    c.trigger();
    clock.advance(20);
  }
  assert.deepEqual(fired, [1000, 2000]);
});

test('cancel drops the scheduled call', () => {
  const { clock, fired, c } = setup();
  c.trigger();
  c.cancel();
  clock.advance(2000);
  assert.deepEqual(fired, []);
  assert.deepEqual(clock.pending(), []);
});
