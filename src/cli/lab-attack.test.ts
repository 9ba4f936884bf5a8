/**
 * `anyedge lab attack` flags, without a lab: a wrong kind, number or id is a usage error (exit 2)
 * naming the flag; on a lab that is not there it says so and exits 1, touching nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.ts';

async function attack(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(['node', 'anyedge', 'lab', 'attack', ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

test('lab attack: bad kind, numbers and id are usage errors naming the flag', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-attack-cli-'));
  try {
    const cases: Array<[string[], RegExp]> = [
      [['icmp'], /lab attack: "icmp": use syn or udp/],
      [['syn', '--seconds', 'ten'], /--seconds ten: give a whole number/],
      [['udp', '--pps', '-5'], /--pps -5: give a whole number/],
      [['syn', '--id', 'X!'], /--id: lab id "X!"/],
      [['syn', '--syn-mitigation', 'pray'], /--syn-mitigation pray: use xdp, synproxy, rate-limit/],
      [['syn', '--seconds', '0', '--run-dir', dir], /seconds: --seconds 0: give 1 to 120/],
      [['udp', '--pps', '1000000', '--run-dir', dir], /pps: --pps 1000000: give 1 to 100000/],
    ];
    for (const [args, message] of cases) {
      const r = await attack(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
      assert.equal(r.out, '');
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('lab attack on a lab that is not there: exit 1, says so', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-attack-cli-'));
  try {
    const r = await attack('udp', '--id', 'q9', '--run-dir', dir);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /lab attack: .*aelq9/);
    assert.equal(r.out, '');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
