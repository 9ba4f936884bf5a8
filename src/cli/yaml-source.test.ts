import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml, isKeyIssue } from './yaml-source.ts';
import type { YamlSource } from './yaml-source.ts';
import { main } from './main.ts';

function source(text: string): YamlSource {
  const r = parseYaml(text);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.error));
  return r.value;
}

const TEXT = `tenants:
  acme:
    name: Acme
    tunnels:
      gre1:
        customerEndpoint: 198.51.100.200
    firewall:
      rules:
        - id: a
          dport: [20-21, 443]
        - { id: b, dport: 80 }
`;

test('locate: scalars at their value, collections at their key, list items at the item', () => {
  const s = source(TEXT);
  assert.deepEqual(s.locate(['tenants', 'acme', 'name']), { line: 3, col: 11 });
  assert.deepEqual(s.locate(['tenants', 'acme', 'tunnels', 'gre1']), { line: 5, col: 7 });
  assert.deepEqual(s.locate(['tenants', 'acme', 'tunnels', 'gre1', 'customerEndpoint']), { line: 6, col: 27 });
  assert.deepEqual(s.locate(['tenants', 'acme', 'firewall', 'rules', 0, 'dport', 1]), { line: 10, col: 26 });
  assert.deepEqual(s.locate(['tenants', 'acme', 'firewall', 'rules', 1, 'dport']), { line: 11, col: 27 });
  // String segments index lists too (issue paths built from text).
  assert.deepEqual(s.locate(['tenants', 'acme', 'firewall', 'rules', '1', 'id']), { line: 11, col: 17 });
});

test('locate: a missing node falls back to its nearest existing parent', () => {
  const s = source(TEXT);
  assert.deepEqual(s.locate(['tenants', 'acme', 'tunnels', 'gre1', 'mtu']), { line: 5, col: 7 });
  assert.deepEqual(s.locate(['tenants', 'acme', 'routes', 'r1']), { line: 2, col: 3 });
  assert.deepEqual(s.locate(['tenants', 'acme', 'firewall', 'rules', 5]), { line: 8, col: 7 });
  // A scalar written where a list was expected (`dport: 80`, reported at dport.0): the scalar.
  assert.deepEqual(s.locate(['tenants', 'acme', 'firewall', 'rules', 1, 'dport', 0]), { line: 11, col: 27 });
  assert.deepEqual(s.locate(['nothing']), { line: 1, col: 1 });
  assert.deepEqual(s.locate([]), { line: 1, col: 1 });
});

test('locate: issues about a key point at the key', () => {
  const s = source(TEXT);
  assert.deepEqual(s.locate(['tenants', 'acme', 'name'], true), { line: 3, col: 5 });
  const unknownField = { code: 'unknown_field', path: ['tenants', 'acme'], field: ['colour'], message: '' };
  const badId = { code: 'invalid_id', path: ['tenants', 'Acme'], field: [], message: '' };
  const badValue = { code: 'invalid_ip', path: ['tenants', 'acme', 'tunnels', 'gre1'], field: ['customerEndpoint'], message: '' };
  assert.equal(isKeyIssue(unknownField), true);
  assert.equal(isKeyIssue(badId), true);
  assert.equal(isKeyIssue(badValue), false);
});

test('aliases are followed, and duplicate keys become issues at their path', () => {
  const s = source('base: &b { uplink: eth0 }\ndcs:\n  ams:\n    servers:\n      s1: *b\n      s1: *b\n');
  assert.deepEqual(s.locate(['dcs', 'ams', 'servers', 's1', 'uplink']), { line: 1, col: 20 });
  assert.deepEqual(
    s.issues.map((i) => [i.code, i.path.join('/'), i.field.join('.')]),
    [['duplicate_key', 'dcs/ams/servers/s1', '']],
  );
  // A field written twice is an issue on the field of its object.
  const f = source('tenants:\n  acme:\n    name: A\n    name: B\n');
  assert.deepEqual(
    f.issues.map((i) => [i.path.join('/'), i.field.join('.')]),
    [['tenants/acme', 'name']],
  );
  // Shown at the second key, not at a value.
  const dup = f.issues[0]!;
  assert.ok(isKeyIssue(dup));
  assert.deepEqual(f.locate([...dup.path, ...dup.field], isKeyIssue(dup)), { line: 4, col: 5 });
});

test('syntax errors carry positions', () => {
  const r = parseYaml('a: [1, 2\nb: 3\n');
  assert.ok(!r.ok);
  assert.ok(r.error.length >= 1);
  assert.equal(r.error[0]!.at.line, 2);
  assert.doesNotMatch(r.error[0]!.message, /at line/); // the position is printed once, by the caller
});

test('main returns exit codes instead of exiting, and writes through the given io', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) };
  assert.equal(await main(['node', 'anyedge', 'validate', 'examples/acme.yaml'], io), 0);
  assert.match(out.join(''), /^examples\/acme\.yaml: valid — /);
  assert.equal(await main(['node', 'anyedge', 'frobnicate'], io), 2);
  assert.match(err.join(''), /unknown command 'frobnicate'/);
});
