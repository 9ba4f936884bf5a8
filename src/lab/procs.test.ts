/**
 * Finding the lab's processes by their mark: what counts as carrying it, and a real detached
 * process found, stopped and never confused with one of another lab.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aliveWithMark, carriesMark, cmdlineOf, findMarked, sleep, spawnDetached, stopMarked } from './procs.ts';

test('the mark is a node or pin name (ael<id>-…) or a path segment of the lab', () => {
  assert.ok(carriesMark(['ip', 'netns', 'exec', 'aelq1-ams', 'bird'], 'aelq1'));
  assert.ok(carriesMark(['bird', '-c', '/run/anyedge-lab/aelq1/bird/ams.conf'], 'aelq1'));
  assert.ok(carriesMark(['node', 'agent', '--bpf', 'aelq1-ams-s1'], 'aelq1'));
  // Another lab, or the prefix only as part of a word, is not ours.
  assert.ok(!carriesMark(['ip', 'netns', 'exec', 'aelq2-ams', 'bird'], 'aelq1'));
  assert.ok(!carriesMark(['grep', 'aelq1'], 'aelq1'));
  assert.ok(!carriesMark(['x', 'aelq1x-acme'], 'aelq1'));
});

test('a detached process with the mark is found, survives without us, and is stopped', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-procs-'));
  const mark = `aelp${(process.pid % 36).toString(36)}`;
  try {
    const pid = spawnDetached('test', [process.execPath, '-e', 'setInterval(()=>{},1000)', `${mark}-sleeper`], join(dir, 'log'));
    if (!pid.ok) assert.fail(pid.error.message);
    await sleep(100);
    assert.deepEqual(cmdlineOf(pid.value)?.slice(-1), [`${mark}-sleeper`]);
    assert.ok(findMarked(mark).includes(pid.value));
    assert.ok(aliveWithMark(pid.value, mark));
    assert.ok(!aliveWithMark(pid.value, `${mark}z`));
    assert.deepEqual(await stopMarked([pid.value], mark), [pid.value]);
    assert.ok(!aliveWithMark(pid.value, mark));
    assert.ok(!findMarked(mark).includes(pid.value));
    // A pid no longer carrying the mark is never signalled.
    assert.deepEqual(await stopMarked([process.pid], mark), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
