import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MonotonicCounters, type Reading } from './metrics-monotonic.ts';

const r = (value: number, generation = 'g1', onNewGeneration: Reading['onNewGeneration'] = 'zero', key = 'k', scope = 's'): Reading => ({ key, scope, value, generation, onNewGeneration });

test('first sight exposes the absolute value; growth passes through', () => {
  const m = new MonotonicCounters();
  assert.equal(m.observe(r(10)), 10);
  assert.equal(m.observe(r(15)), 15);
  assert.equal(m.observe(r(15)), 15);
});

test('a reading that went down is a reset: what was counted is kept and the new reading added', () => {
  const m = new MonotonicCounters();
  m.observe(r(10));
  assert.equal(m.observe(r(3)), 13);
  assert.equal(m.observe(r(5)), 15);
  assert.equal(m.observe(r(0)), 15);
  assert.equal(m.observe(r(1)), 16);
});

test('a new generation that starts from zero adds all of its reading, even when it is higher than the old one', () => {
  const m = new MonotonicCounters();
  m.observe(r(10, 'handle 4'));
  // The table was replaced and has already counted 12 in its new life.
  assert.equal(m.observe(r(12, 'handle 7')), 22);
  assert.equal(m.observe(r(13, 'handle 7')), 23);
});

test('a new generation with foreign history (a reused stats slot) starts from its first reading', () => {
  const m = new MonotonicCounters();
  m.observe(r(10, 'slot 5', 'baseline'));
  assert.equal(m.observe(r(1000, 'slot 9', 'baseline')), 10);
  assert.equal(m.observe(r(1004, 'slot 9', 'baseline')), 14);
  // And a reset inside that generation still never goes backwards.
  assert.equal(m.observe(r(2, 'slot 9', 'baseline')), 16);
});

test('series are independent', () => {
  const m = new MonotonicCounters();
  m.observe(r(10, 'g', 'zero', 'a'));
  m.observe(r(7, 'g', 'zero', 'b'));
  assert.equal(m.observe(r(1, 'g', 'zero', 'a')), 11);
  assert.equal(m.observe(r(8, 'g', 'zero', 'b')), 8);
});

test('sweep forgets series not seen, except those of scopes whose read failed', () => {
  const m = new MonotonicCounters();
  m.observe(r(10, 'g', 'zero', 'a', 'ns1'));
  m.observe(r(20, 'g', 'zero', 'b', 'ns2'));
  m.observe(r(30, 'g', 'zero', 'c', 'ns3'));
  m.sweep(new Set(['a']), new Set(['ns2']));
  assert.equal(m.size, 2);
  // b resumes where it was (its namespace came back with fresh counters: a reset).
  assert.equal(m.observe(r(1, 'g', 'zero', 'b', 'ns2')), 21);
  // c was forgotten: it starts again from the absolute value.
  assert.equal(m.observe(r(1, 'g', 'zero', 'c', 'ns3')), 1);
});
