import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closest, describe, plural, show } from './text.ts';

test('show: untrusted input is quoted, escaped and cut, so it cannot drive a terminal', () => {
  assert.equal(show('a\u001b[31mb'), '"a\\u001b[31mb"');
  assert.equal(show('x'.repeat(100)), '"' + 'x'.repeat(36) + '…');
  assert.equal(show(undefined), 'nothing');
  assert.equal(show(10n), '10');
  assert.equal(describe([1]), 'a list');
  assert.equal(describe({}), 'a map');
  assert.equal(describe(5), 'the number 5');
});

test('closest: typos, swapped letters and cut-short words, but not unrelated words', () => {
  assert.equal(closest('tcpp', ['tcp', 'udp']), 'tcp');
  assert.equal(closest('tpc', ['tcp', 'udp']), 'tcp'); // a swap is one edit
  assert.equal(closest('drain', ['active', 'draining', 'down']), 'draining');
  assert.equal(closest('Ingres', ['ingress', 'egress']), 'ingress');
  assert.equal(closest('http', ['tcp', 'udp']), undefined);
  assert.equal(closest('in', ['ingress', 'egress']), undefined); // too short to guess from
  assert.equal(plural(1, 'prefix', 'prefixes'), '1 prefix');
  assert.equal(plural(2, 'route'), '2 routes');
});
