import { test } from 'node:test';
import assert from 'node:assert/strict';
import { main } from './main.ts';
import { hashToken } from '../api/tokens.ts';

function capture(): { io: { out(t: string): void; err(t: string): void }; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { io: { out: (t) => void (out += t), err: (t) => void (err += t) }, out: () => out, err: () => err };
}

test('anyedge token new prints a fresh token and its hash, and says to keep only the hash', async () => {
  const c = capture();
  assert.equal(await main(['node', 'anyedge', 'token', 'new'], c.io), 0);
  const m = /^token {2}(ae_[A-Za-z0-9_-]{43})\nhash {3}(sha256:[0-9a-f]{64})\n$/.exec(c.out());
  assert.ok(m, c.out());
  assert.equal(m[2], hashToken(m[1]!));
  assert.match(c.err(), /shown only now/);
  const again = capture();
  await main(['node', 'anyedge', 'token', 'new'], again.io);
  assert.notEqual(again.out(), c.out(), 'a new token every time');
});

test('anyedge token new --json', async () => {
  const c = capture();
  assert.equal(await main(['node', 'anyedge', 'token', 'new', '--json'], c.io), 0);
  const { token, hash } = JSON.parse(c.out()) as { token: string; hash: string };
  assert.equal(hash, hashToken(token));
  assert.equal(c.err(), '');
});
