/**
 * Golden files: each testdata/<name>.yaml compiles to exactly <name>.golden.txt (what `anyedge
 * plan` prints of the DoS maps). `UPDATE_GOLDEN=1` rewrites them; review the diff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkGolden } from '../../testkit/golden.ts';
import { compileDos } from './compile.ts';
import { formatDos } from './format.ts';
import { TESTDATA, fixtureNames, loadFixture } from './fixtures.ts';

test('there are DoS fixtures, the seed among them', () => {
  assert.ok(fixtureNames().includes('seed'));
  assert.ok(fixtureNames().includes('features'));
});

for (const name of fixtureNames()) {
  test(`golden: ${name}`, () => {
    const fx = loadFixture(name);
    const t = compileDos(fx.config, { dc: fx.dc, now: fx.now });
    assert.ok(t.ok, t.ok ? '' : JSON.stringify(t.error));
    checkGolden(`${TESTDATA}${name}.golden.txt`, formatDos(t.value));
  });
}
