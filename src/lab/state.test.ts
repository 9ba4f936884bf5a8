/** The state file: written atomically and read back; missing and damaged files are errors that say what to do. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readState, statePath, writeState, type LabState } from './state.ts';

test('write then read gives the same state; missing, non-JSON and wrong-shape files are refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-state-'));
  try {
    const missing = readState(join(dir, 'nope'));
    assert.ok(!missing.ok);
    assert.equal(missing.error.code, 'not_found');
    assert.match(missing.error.message, /lab up/);
    const s: LabState = {
      version: 1, id: 'q1', prefix: 'aelq1', dir: join(dir, 'aelq1'), size: { dcs: 1, servers: 1, cities: 2 },
      store: { kind: 'lmdb', spec: 'lmdb:/x' }, phase: 'building', startedAt: new Date(0).toISOString(),
      netns: ['aelq1-ix'], pins: ['/sys/fs/bpf/aelq1-acme'], processes: [{ role: 'bird', node: 'ams', pid: 42, log: '/x/bird.log' }],
    };
    writeState(s);
    const back = readState(s.dir);
    assert.ok(back.ok);
    assert.deepEqual(back.value, s);
    await writeFile(statePath(s.dir), '{');
    const bad = readState(s.dir);
    assert.ok(!bad.ok);
    assert.equal(bad.error.code, 'invalid');
    assert.match(bad.error.message, /lab down/);
    await writeFile(statePath(s.dir), JSON.stringify({ ...s, processes: [{ role: 'bird', pid: -1, log: '' }] }));
    const shape = readState(s.dir);
    assert.ok(!shape.ok);
    assert.match(shape.error.message, /pid/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
