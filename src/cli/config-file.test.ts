// Reading a config file for apply/plan: problems at their lines before anything is sent, and the
// API's field errors placed on the same lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueFromApi, loadConfigFile, printIssuesAtLines } from './config-file.ts';

function capture(): { io: { out(s: string): void; err(s: string): void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s) => void out.push(s), err: (s) => void err.push(s) }, out, err };
}

function tempFile(t: { after(fn: () => void): void }, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'anyedge-config-file-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, text);
  return file;
}

const SMALL = `tenants:
  acme:
    name: Acme
    prefixes:
      p1: { cidr: 203.0.113.0/25 }
`;

test('a valid file loads with its document as written', async () => {
  const c = capture();
  const r = await loadConfigFile('examples/acme.yaml', c.io);
  assert.ok(r.ok);
  assert.deepEqual(c.err, []);
  assert.equal((r.value.document as { tenants: { acme: { name: string } } }).tenants.acme.name, 'Acme Corp');
});

test('invalid: every issue at its line, exit 1; unreadable or not YAML: exit 2', async (t) => {
  const bad = tempFile(t, SMALL.replace('203.0.113.0/25', '203.0.113.1/25') + 'dos: { rules: { x: { match: {}, action: drop } } }\n');
  const c = capture();
  const r = await loadConfigFile(bad, c.io);
  assert.deepEqual(r, { ok: false, error: 1 });
  assert.match(c.err[0]!, new RegExp(`^${bad}:5:19: tenants/acme/prefixes/p1\\.cidr: `));
  assert.match(c.err.at(-1)!, /invalid \(\d+ errors?\); nothing was sent/);

  const missing = capture();
  assert.deepEqual(await loadConfigFile('/nonexistent/x.yaml', missing.io), { ok: false, error: 2 });
  assert.deepEqual(missing.err, ['-f /nonexistent/x.yaml: cannot read: no such file\n']);

  const notYaml = capture();
  assert.deepEqual(await loadConfigFile(tempFile(t, 'a: [1, 2\n'), notYaml.io), { ok: false, error: 2 });
  assert.match(notYaml.err.at(-1)!, /not valid YAML .*nothing was sent/);
});

test('API issues land on the line of the field they name', async (t) => {
  const file = tempFile(t, SMALL);
  const loaded = await loadConfigFile(file, capture().io);
  assert.ok(loaded.ok);
  const issue = issueFromApi({ path: 'tenants/acme/prefixes/p1', field: 'cidr', code: 'overlap', message: 'overlaps globex/p0' });
  assert.deepEqual(issue, { code: 'overlap', path: ['tenants', 'acme', 'prefixes', 'p1'], field: ['cidr'], message: 'overlaps globex/p0' });
  const c = capture();
  printIssuesAtLines(file, loaded.value.source, [issue, issueFromApi({ path: 'tenants/acme', field: '', code: 'x', message: 'whole tenant' })], c.io);
  assert.deepEqual(c.err, [`${file}:2:3: tenants/acme: whole tenant\n`, `${file}:5:19: tenants/acme/prefixes/p1.cidr: overlaps globex/p0\n`]);
});
