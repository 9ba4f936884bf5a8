import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { generateToken, hashToken, isTokenHash, isTokenText, parseTokenHashFile } from './tokens.ts';

test('a token is ae_ and 43 base64url characters (32 random bytes); its hash is sha256 of the whole text', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const { token, hash } = generateToken();
    assert.match(token, /^ae_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token.slice(3), 'base64url').length, 32);
    assert.equal(hash, 'sha256:' + createHash('sha256').update(token).digest('hex'));
    assert.ok(isTokenText(token) && isTokenHash(hash));
    seen.add(token);
  }
  assert.equal(seen.size, 200);
});

test('hashToken is the documented function: a fixed vector', () => {
  // printf %s 'ae_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' | sha256sum
  const token = 'ae_' + 'A'.repeat(43);
  assert.equal(hashToken(token), 'sha256:2d43b5075f715a7122c185c26fe5f796d769cec487d629f32801db3b1aedbe30');
  assert.notEqual(hashToken(token), hashToken(token + ' '));
});

test('token and hash shapes are strict', () => {
  for (const bad of ['', 'ae_', 'ae_' + 'A'.repeat(42), 'ae_' + 'A'.repeat(44), 'xx_' + 'A'.repeat(43), 'ae_' + 'A'.repeat(42) + '=', 'ae_' + 'A'.repeat(42) + '\n'])
    assert.equal(isTokenText(bad), false, JSON.stringify(bad));
  for (const bad of ['sha256:', 'sha256:' + 'A'.repeat(64), 'sha1:' + 'a'.repeat(64), 'sha256:' + 'a'.repeat(63)]) assert.equal(isTokenHash(bad), false, bad);
});

test('hash file: one hash a line, comments and blanks ignored, every bad line reported with its number', () => {
  const a = generateToken();
  const b = generateToken();
  const good = parseTokenHashFile(`# operators\n${a.hash}\n\n  ${b.hash}  \n`, 'ops.txt');
  assert.deepEqual(good, { ok: true, value: [a.hash, b.hash] });
  const bad = parseTokenHashFile(`${a.hash}\n${a.token}\nsha256:xyz\n`, 'ops.txt');
  assert.equal(bad.ok, false);
  if (bad.ok) return;
  assert.equal(bad.error.length, 2);
  assert.match(bad.error[0]!, /^ops\.txt:2: this is a token, not its hash/);
  assert.ok(!bad.error[0]!.includes(a.token), 'the token itself is never echoed');
  assert.match(bad.error[1]!, /^ops\.txt:3: not a token hash/);
  const empty = parseTokenHashFile('# nobody\n', 'ops.txt');
  assert.equal(empty.ok, false);
});
