/**
 * `anyedge agent` flag checking, in-process: every bad flag is refused with exit 2 and a message
 * naming it, before anything touches the kernel or the store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from './main.ts';
import { parseListen } from './agent.ts';

async function run(...args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const code = await main(['node', 'anyedge', 'agent', ...args], { out: () => {}, err: (t) => void (err += t) });
  return { code, err };
}

const good = ['--server', 'ams/s1', '--store', 'lmdb:/tmp/anyedge-never-opened', '--state-dir', '/tmp/anyedge-never-made'];
const withFlag = (flag: string, value: string) => {
  const i = good.indexOf(flag);
  return i < 0 ? [...good, flag, value] : [...good.slice(0, i), flag, value, ...good.slice(i + 2)];
};

test('each bad flag is refused with exit 2 and a message naming the flag and what to give', async () => {
  const cases: [string, string, RegExp][] = [
    ['--server', 'ams', /--server ams: give it as DC\/SERVER, e.g. ams\/s1/],
    ['--server', 'ams/S1', /--server ams\/S1: "S1" is not a valid server id/],
    ['--store', 'redis:x', /--store redis:x: unknown store kind "redis"/],
    ['--store', 'etcd:', /--store etcd:: no etcd endpoint/],
    ['--log-level', 'trace', /--log-level trace: use one of debug, info/],
    ['--metrics', '9474', /--metrics 9474: give HOST:PORT/],
    ['--metrics', '127.0.0.1:99999', /--metrics 127.0.0.1:99999: give HOST:PORT.*0–65535/],
    ['--prefix', 'Bad_Prefix', /--prefix Bad_Prefix: use 1–6 characters/],
    ['--bpf', '../etc', /--bpf \.\.\/etc: use 1–64 characters/],
    ['--link-pool', '2001:db8::/64', /--link-pool 2001:db8::\/64: must be an IPv4 prefix/],
    ['--link-pool', 'nonsense', /--link-pool nonsense: /],
  ];
  for (const [flag, value, want] of cases) {
    const r = await run(...withFlag(flag, value));
    assert.equal(r.code, 2, `${flag} ${value}: exit ${r.code}, stderr ${r.err}`);
    assert.match(r.err, want);
  }
});

test('a missing required flag is a usage error naming it', async () => {
  for (const flag of ['--server', '--store', '--state-dir']) {
    const i = good.indexOf(flag);
    const r = await run(...good.slice(0, i), ...good.slice(i + 2));
    assert.equal(r.code, 2);
    assert.match(r.err, new RegExp(`required option '${flag} `));
  }
});

test('--metrics takes HOST:PORT and [IPv6]:PORT', () => {
  assert.deepEqual(parseListen('127.0.0.1:9474'), { host: '127.0.0.1', port: 9474 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('localhost:80'), { host: 'localhost', port: 80 });
  for (const bad of ['::1:80', ':80', '127.0.0.1:', '127.0.0.1:http']) assert.equal(typeof parseListen(bad), 'string', bad);
});
