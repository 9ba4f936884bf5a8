// Untrusted input must give issues, never exceptions: the store calls the validator inside its
// write transaction and the API hands it whatever a client sent. Seeded random damage to the
// Acme example, every node replaced in turn and at random, must come back as a Result.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig } from './config.ts';
import { validateKeyspace } from './keyspace.ts';
import { formatIssue } from './issue.ts';

const BASE = parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as unknown;
/** A fresh copy of the example to damage. */
const fresh = (): unknown => structuredClone(BASE);
const JUNK: unknown[] = [null, undefined, 0, -1, 1.5, 2 ** 53, '', 'x', '::', '0.0.0.0/0', 'a'.repeat(300), [], [null], {}, { a: 1 }, true, '__proto__', 'constructor'];

/** Every path to a node of a plain JSON-like value. */
function paths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  let node = root as Record<string | number, unknown>;
  for (const seg of path.slice(0, -1)) node = node[seg] as Record<string | number, unknown>;
  node[path.at(-1)!] = value;
  return root;
}

function checkResult(doc: unknown, what: string): void {
  let r: ReturnType<typeof parseConfig>;
  try {
    r = parseConfig(doc);
  } catch (e) {
    assert.fail(`${what}: threw ${(e as Error).stack}`);
  }
  if (!r.ok) for (const i of r.error) assert.ok(i.message.length > 0 && !formatIssue(i).includes('undefined'), `${what}: ${formatIssue(i)}`);
}

test('every node of the example replaced by junk gives issues, not exceptions', () => {
  const all = paths(fresh());
  assert.ok(all.length > 100);
  for (const path of all)
    for (const junk of JUNK) checkResult(setAt(fresh(), path, junk), `${path.join('.')} = ${String(junk)}`);
});

test('random multi-node damage gives issues, not exceptions (seeded)', () => {
  let seed = 12345;
  const next = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let round = 0; round < 300; round++) {
    let doc = fresh() as unknown;
    for (let k = 0; k < 4; k++) {
      const all = paths(doc);
      doc = setAt(doc, all[next(all.length)]!, JUNK[next(JUNK.length)]);
    }
    checkResult(doc, `round ${round}`);
  }
});

test('the keyspace validator takes junk values under every key without throwing', () => {
  const keys = ['/dcs/a', '/dcs/a/servers/s', '/anycast', '/tenants/t', '/tenants/t/prefixes/p', '/tenants/t/tunnels/n', '/tenants/t/routes/r', '/tenants/t/firewall', '/dos/rules/d', '/egress/pools/p', '/egress/assign/192.0.2.1'];
  for (const key of keys)
    for (const junk of JUNK) {
      // An empty anycast block is valid: every list in it defaults to empty.
      if (key === '/anycast' && typeof junk === 'object' && junk !== null && !Array.isArray(junk) && Object.keys(junk).length === 0) continue;
      const issues = validateKeyspace(new Map([[key, junk]]));
      assert.ok(issues.length > 0, `${key} = ${String(junk)} was accepted`);
    }
});
