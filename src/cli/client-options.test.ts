// --api / --token-file / ANYEDGE_API / ANYEDGE_TOKEN: precedence, and a message naming the flag
// for each mistake, without ever echoing a token.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkToken, clientFrom, DEFAULT_API, parseApiUrl } from './client-options.ts';

const TOKEN = 'ae_' + 'abcDEF0123456789_-'.repeat(3).slice(0, 43);

function tokenFile(t: { after(fn: () => void): void }, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'anyedge-client-options-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'token');
  writeFileSync(file, text);
  return file;
}

test('--api beats ANYEDGE_API beats the default; the token comes from the file before the env', async (t) => {
  const file = tokenFile(t, TOKEN + '\n');
  const a = await clientFrom({ api: 'http://192.0.2.7:9000/', tokenFile: file }, { ANYEDGE_API: 'http://192.0.2.8:1', ANYEDGE_TOKEN: 'ignored' });
  assert.ok(a.ok);
  assert.equal(a.value.baseUrl, 'http://192.0.2.7:9000');
  const b = await clientFrom({}, { ANYEDGE_API: 'http://192.0.2.8:1', ANYEDGE_TOKEN: TOKEN });
  assert.ok(b.ok);
  assert.equal(b.value.baseUrl, 'http://192.0.2.8:1');
  const c = await clientFrom({}, { ANYEDGE_TOKEN: TOKEN });
  assert.ok(c.ok);
  assert.equal(c.value.baseUrl, DEFAULT_API);
});

test('each mistake names its flag or variable and what a good value is', async (t) => {
  const no = await clientFrom({}, {});
  assert.deepEqual(no, { ok: false, error: 'no API token: pass --token-file FILE (a file holding the token) or set ANYEDGE_TOKEN to the token' });
  const missing = await clientFrom({ tokenFile: '/nonexistent/anyedge-token' }, {});
  assert.deepEqual(missing, { ok: false, error: '--token-file /nonexistent/anyedge-token: cannot read: no such file' });
  const bad = tokenFile(t, 'hunter2-secret');
  const r = await clientFrom({ tokenFile: bad }, {});
  assert.ok(!r.ok);
  assert.match(r.error, /^--token-file .*: does not hold an anyedge API token: expected ae_ followed by 43 characters/);
  assert.doesNotMatch(r.error, /hunter2/, 'the file content is never shown');
  const env = await clientFrom({}, { ANYEDGE_TOKEN: 'ae_short' });
  assert.ok(!env.ok);
  assert.match(env.error, /^ANYEDGE_TOKEN: does not hold/);
  const api = await clientFrom({ api: 'ftp://192.0.2.1' }, { ANYEDGE_TOKEN: TOKEN });
  assert.deepEqual(api, { ok: false, error: '--api ftp://192.0.2.1: must start with http:// or https://, e.g. http://127.0.0.1:8080' });
  assert.deepEqual(parseApiUrl('localhost', 'ANYEDGE_API'), { ok: false, error: 'ANYEDGE_API "localhost": not a URL; give the API address, e.g. http://127.0.0.1:8080' });
  assert.equal(checkToken('   ', 'ANYEDGE_TOKEN').ok, false);
});
