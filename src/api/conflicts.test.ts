import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Issue } from '../model/issue.ts';
import { blurOtherTenants, CONFLICT_CODES, issuesFor, refusal } from './conflicts.ts';

test('every issue code of the cross-object checks is sorted as a conflict', () => {
  // The codes validate.ts can emit: the first argument of each issue(...) call.
  const src = readFileSync(new URL('../model/validate.ts', import.meta.url), 'utf8');
  const codes = new Set<string>();
  for (const m of src.matchAll(/issue\(\s*(?:'([a-z_]+)'|([^,]+?\?\s*'([a-z_]+)'\s*:\s*'([a-z_]+)'))/g)) for (const c of [m[1], m[3], m[4]]) if (c) codes.add(c);
  assert.ok(codes.size >= 10, `found only ${[...codes].join(', ')}: the pattern no longer matches validate.ts`);
  for (const c of codes) assert.ok(CONFLICT_CODES.has(c), `validate.ts emits ${c}; decide in conflicts.ts whether it is a conflict (409) and list it`);
  // And the keyspace's parent check.
  assert.ok(readFileSync(new URL('../model/keyspace.ts', import.meta.url), 'utf8').includes("code: 'orphan'"));
  assert.ok(CONFLICT_CODES.has('orphan'));
});

const overlap: Issue = { code: 'overlap', path: ['tenants', 'globex', 'prefixes', 'p0'], field: [], message: '203.0.113.128/25 overlaps tenants/acme/prefixes/p2 (203.0.113.192/26)' };
const mine: Issue = { code: 'overlap', path: ['tenants', 'acme', 'prefixes', 'p2'], field: [], message: '203.0.113.0/24 overlaps tenants/globex/prefixes/p0 (203.0.113.128/25)' };

test('a tenant sees no other tenant: issues there move to what it wrote, references are blurred', () => {
  const shown = issuesFor({ kind: 'tenant', tenant: 'acme' }, [overlap, mine, overlap], ['tenants', 'acme', 'prefixes', 'p2']);
  assert.equal(shown.length, 2, 'duplicates after moving are merged');
  assert.ok(shown.every((i) => i.path === 'tenants/acme/prefixes/p2'));
  assert.ok(!JSON.stringify(shown).includes('globex'), JSON.stringify(shown));
  assert.ok(!JSON.stringify(shown).includes('203.0.113.128/25'), JSON.stringify(shown));
  assert.equal(shown[1]!.message, "203.0.113.0/24 overlaps another tenant's prefix");
  const op = issuesFor({ kind: 'operator' }, [overlap], ['tenants', 'acme', 'prefixes', 'p2']);
  assert.deepEqual(op, [{ path: 'tenants/globex/prefixes/p0', field: '', code: 'overlap', message: overlap.message }]);
});

test('blurring keeps the tenant\'s own references and the platform\'s', () => {
  assert.equal(blurOtherTenants('inside tenants/acme/prefixes/p1 (203.0.113.0/25)', 'acme'), 'inside tenants/acme/prefixes/p1 (203.0.113.0/25)');
  assert.equal(blurOtherTenants('overlaps anycast.ranges.0 (198.51.100.0/28)', 'acme'), 'overlaps anycast.ranges.0 (198.51.100.0/28)');
  assert.equal(blurOtherTenants('tenants/globex/tunnels/gre1 already carries GRE', 'acme'), "another tenant's tunnel already carries GRE");
});

test('409 only when every issue is a conflict with other objects; anything else stays a 400', () => {
  assert.equal(refusal({ kind: 'operator' }, [mine], ['x']).status, 409);
  assert.equal(refusal({ kind: 'operator' }, [mine, { code: 'invalid_cidr', path: ['x'], field: ['cidr'], message: 'bad' }], ['x']).status, 400);
  assert.equal(refusal({ kind: 'operator' }, [], ['x']).status, 400);
});
