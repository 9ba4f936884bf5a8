/**
 * `anyedge lab` flags, without building anything: bad flags are usage errors (exit 2) naming the
 * flag; `--dry-run` prints the plan; status, exec and fail on a lab that is not there say so (exit 1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.ts';

async function lab(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'anyedge', 'lab', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

test('lab up: bad sizes, store and id are usage errors naming the flag', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['up', '--dcs', 'two'], /--dcs two: give a whole number/],
    [['up', '--dcs', '9', '--dry-run'], /lab up: --dcs 9: use a whole number from 1 to 8/],
    [['up', '--servers', '0', '--dry-run'], /lab up: --servers 0: use a whole number from 1 to 13/],
    [['up', '--cities', '1', '--dry-run'], /lab up: --cities 1: use a whole number from 2 to 8/],
    [['up', '--store', 'redis'], /--store redis: use etcd .* or lmdb/],
    [['up', '--id', 'toolong'], /--id: lab id "toolong": use exactly 2 characters/],
    [['down', '--id', 'A!'], /--id: lab id "A!"/],
    [['fail', 'rack', 'ams'], /lab fail: "rack": use one of dc, server, link/],
    [['heal', 'dc', 'ams', '--timeout', 'soon'], /--timeout soon: give a whole number/],
  ];
  for (const [args, message] of cases) {
    const r = await lab(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }
});

test('lab up --dry-run prints the plan and builds nothing', async () => {
  const r = await lab('up', '--dry-run', '--id', 'k7', '--dcs', '2', '--servers', '3');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^lab aelk7: 2 data center\(s\) × 3 server\(s\), 2 cities/);
  assert.match(r.out, /netns aelk7-chi-s3 server/);
  assert.match(r.out, /city nyc AS 64602 eyeball \S+ \(US\): prefers chi > ams/);
});

test('status and exec of a lab that is not up fail with what to do', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-labcli-'));
  try {
    const s = await lab('status', '--id', 'k8', '--run-dir', dir);
    assert.equal(s.code, 1);
    assert.match(s.err, /no lab state here; is the lab up\?/);
    const e = await lab('exec', '--id', 'k8', '--run-dir', dir, 'lon-e1', '--', 'true');
    assert.equal(e.code, 1);
    assert.match(e.err, /no lab state here/);
    const f = await lab('fail', '--id', 'k8', '--run-dir', dir, 'dc', 'ams');
    assert.equal(f.code, 1);
    assert.match(f.err, /no lab state here/);
    const noCmd = await lab('exec', '--id', 'k8', '--run-dir', dir, 'lon-e1');
    assert.equal(noCmd.code, 2);
    assert.match(noCmd.err, /give a command after the node/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lab demo: sizes too small for its failures, bad store and id are usage errors, before anything is built', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['demo', '--dcs', '1'], /--dcs 1 --servers 3: the demo needs at least 2 DCs .* of 2 servers/],
    [['demo', '--servers', '1'], /--dcs 3 --servers 1: the demo needs at least 2 DCs/],
    [['demo', '--dcs', '9'], /lab demo: --dcs 9: use a whole number from 1 to 8/],
    [['demo', '--servers', 'lots'], /--servers lots: give a whole number/],
    [['demo', '--store', 'redis'], /--store redis: use etcd .* or lmdb/],
    [['demo', '--id', 'toolong'], /--id: lab id "toolong": use exactly 2 characters/],
  ];
  for (const [args, message] of cases) {
    const r = await lab(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
    assert.equal(r.out, '', 'nothing ran');
  }
});

test('lab trace: missing or bad --from/--to are usage errors; a lab that is not there says so', async () => {
  const runDir = await mkdtemp(join(tmpdir(), 'anyedge-lab-trace-'));
  try {
    const cases: Array<[string[], number, RegExp]> = [
      [['trace', '--to', '203.0.113.100:21'], 2, /give --from EYEBALL and --to HOST:PORT/],
      [['trace', '--from', 'lon-e1'], 2, /give --from EYEBALL and --to HOST:PORT/],
      [['trace', '--from', 'lon-e1', '--to', '203.0.113.100'], 2, /--to: "203\.0\.113\.100": give an IPv4 address and a port/],
      [['trace', '--from', 'lon-e1', '--to', '203.0.113.100:21', '--id', 'q9', '--run-dir', runDir], 1, /lab trace: .*aelq9\/state.json: no lab state here; is the lab up\?/],
    ];
    for (const [args, code, message] of cases) {
      const r = await lab(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
    }
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
});
