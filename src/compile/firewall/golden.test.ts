/**
 * Golden files: each `testdata/<name>.yaml` compiles to exactly `<name>.golden.json` (the batch
 * sent to `nft -j -f -`) and renders to exactly `<name>.golden.nft` (what `anyedge plan` shows).
 * `UPDATE_GOLDEN=1` rewrites them; review the diff. A missing golden file fails the test, so a
 * new fixture can not pass unreviewed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { compileFirewall, stringifyNft } from './compile.ts';
import { formatNft } from './format.ts';
import { TESTDATA, fixtureNames, loadFixture } from './fixtures.ts';

const update = process.env.UPDATE_GOLDEN === '1';

function checkGolden(path: string, actual: string): void {
  if (update) {
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `${path} is missing; run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(actual, readFileSync(path, 'utf8'), `${path} differs; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff`);
}

test('there are fixtures, the seed among them', () => {
  assert.ok(fixtureNames().includes('seed-ftp'));
});

for (const name of fixtureNames()) {
  test(`golden: ${name}`, () => {
    const fx = loadFixture(name);
    const json = compileFirewall(fx.tenant, fx.firewall, fx.options);
    checkGolden(`${TESTDATA}${name}.golden.json`, stringifyNft(json));
    checkGolden(`${TESTDATA}${name}.golden.nft`, formatNft(json));
  });
}
