/**
 * `anyedge api`: flags checked before anything starts (exit 2, naming the flag), then the API on
 * a real loopback socket over a throwaway LMDB store until told to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { main } from './main.ts';
import { runApi, type ApiCliOptions } from './api.ts';
import { generateToken } from '../api/tokens.ts';

function capture(): { io: { out(t: string): void; err(t: string): void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (t) => void (out += t), err: (t) => void (err += t) }, out: () => out, err: () => err };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-cli-api-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('serves the API until told to stop, then closes the socket and the store', () =>
  withDir(async (dir) => {
    const op = generateToken();
    const hashFile = join(dir, 'operators');
    await writeFile(hashFile, `# the operator\n${op.hash}\n`);
    const c = capture();
    let stop!: () => void;
    const until = new Promise<void>((resolve) => (stop = resolve));
    const opts: ApiCliOptions = { store: `lmdb:${join(dir, 'store')}`, listen: '127.0.0.1:0', operatorTokenHashFile: hashFile, bodyLimit: '2048', rate: '100', burst: '100' };
    const running = runApi(opts, c.io, { until });
    let url: string | undefined;
    for (let i = 0; i < 200 && !url; i++) {
      url = /^listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(c.out())?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(url, `no listening line: ${c.out()} ${c.err()}`);
    try {
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.equal((await fetch(`${url}/v1/tenants`)).status, 401);
      const put = await fetch(`${url}/v1/tenants/acme`, { method: 'PUT', headers: { authorization: `Bearer ${op.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Acme' }) });
      assert.equal(put.status, 200, await put.clone().text());
      const big = await fetch(`${url}/v1/tenants/acme`, { method: 'PUT', headers: { authorization: `Bearer ${op.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x'.repeat(4096) }) });
      assert.equal(big.status, 413, '--body-limit is applied');
    } finally {
      stop();
    }
    assert.equal(await running, 0);
    await assert.rejects(fetch(`${url}/healthz`));
    assert.ok(!c.out().includes(op.token) && !c.err().includes(op.token));
  }));

test('bad flags and hash files are usage errors naming the flag; nothing starts', () =>
  withDir(async (dir) => {
    const good = join(dir, 'ops');
    const tok = generateToken();
    await writeFile(good, tok.hash + '\n');
    const withToken = join(dir, 'with-token');
    await writeFile(withToken, tok.token + '\n');
    const base = ['node', 'anyedge', 'api', '--store', `lmdb:${join(dir, 'store')}`, '--listen', '127.0.0.1:0', '--operator-token-hash-file', good];
    const cases: [string[], RegExp][] = [
      [[...base.slice(0, 4), 'mysql:x', ...base.slice(5)], /--store mysql:x: unknown store kind/],
      [[...base.slice(0, 6), 'localhost', ...base.slice(7)], /--listen localhost: give HOST:PORT/],
      [[...base.slice(0, 6), '127.0.0.1:70000', ...base.slice(7)], /--listen 127\.0\.0\.1:70000/],
      [[...base.slice(0, 8), join(dir, 'missing')], /--operator-token-hash-file .*missing: cannot read it \(ENOENT\)/],
      [[...base.slice(0, 8), withToken], /with-token:1: this is a token, not its hash/],
      [[...base, '--body-limit', '0'], /--body-limit 0/],
      [[...base, '--body-limit', 'lots'], /--body-limit lots: not a number/],
      [[...base, '--rate', '0'], /--rate\/--burst: rate 0 must be a positive number/],
      [[...base, '--burst', '1.5'], /--rate\/--burst: burst 1\.5 must be a whole number/],
    ];
    for (const [argv, message] of cases) {
      const c = capture();
      assert.equal(await main(argv, c.io), 2, argv.join(' '));
      assert.match(c.err(), message);
      assert.ok(!c.err().includes(tok.token), 'the token is never echoed');
      assert.equal(c.out(), '');
    }
    const missing = capture();
    assert.equal(await main(['node', 'anyedge', 'api', '--listen', '127.0.0.1:0'], missing.io), 2, 'required flags');
  }));

test('an address that cannot be bound is exit 1, and the store is closed again', () =>
  withDir(async (dir) => {
    const hashFile = join(dir, 'ops');
    await writeFile(hashFile, generateToken().hash + '\n');
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const c = capture();
      const opts = { store: `lmdb:${join(dir, 'store')}`, listen: `127.0.0.1:${port}`, operatorTokenHashFile: hashFile };
      assert.equal(await runApi(opts, c.io, { until: Promise.resolve() }), 1, c.err());
      assert.match(c.err(), new RegExp(`--listen 127\\.0\\.0\\.1:${port}: listen on .*EADDRINUSE`));
      // A second run over the same store starts and stops cleanly.
      const again = capture();
      assert.equal(await runApi({ ...opts, listen: '127.0.0.1:0' }, again.io, { until: Promise.resolve() }), 0, again.err());
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  }));
