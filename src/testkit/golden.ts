/**
 * Golden-file comparison: `UPDATE_GOLDEN=1` rewrites the file (review the diff); otherwise a
 * missing or different file fails the test.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/** Compares `actual` with the golden file at `path`. */
export function checkGolden(path: string, actual: string): void {
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `${path} is missing; run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(actual, readFileSync(path, 'utf8'), `${path} differs; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff`);
}
