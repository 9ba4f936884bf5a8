/**
 * The LMDB store guarding the real config model: opened with `validateKeyspace` from
 * `model/keyspace.ts`, it refuses writes that would make the configuration invalid (a prefix
 * overlapping another tenant's, an object that fails its schema, a child without its parent) with
 * the model's issues, and leaves the store exactly as it was.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIssue } from '../model/issue.ts';
import { validateKeyspace } from '../model/keyspace.ts';
import type { Result } from '../lib/result.ts';
import { mustOpen } from './lmdb-harness.ts';
import type { LmdbConfigStore } from './lmdb.ts';
import type { StoreError, WriteResult } from './types.ts';

function refused(r: Result<WriteResult, StoreError>, what: string): Extract<StoreError, { code: 'invalid' }> {
  if (r.ok) assert.fail(`${what}: expected invalid, got ok at revision ${r.value.revision}`);
  if (r.error.code !== 'invalid') assert.fail(`${what}: expected invalid, got ${r.error.code}: ${r.error.message}`);
  return r.error;
}

function accepted(r: Result<WriteResult, StoreError>, what: string): WriteResult {
  if (!r.ok) assert.fail(`${what}: expected ok, got ${r.error.code}: ${r.error.message}`);
  return r.value;
}

void describe('LMDB store validated by model/keyspace.ts', { timeout: 30_000 }, () => {
  let dir: string;
  let store: LmdbConfigStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anyedge-store-'));
    store = mustOpen({ path: dir, validation: { validator: validateKeyspace } });
  });
  after(async () => {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The whole store (entries and revision), to show a refusal changed nothing. */
  async function snapshot(): Promise<unknown> {
    const l = await store.list('');
    assert.ok(l.ok);
    return l.value;
  }

  void it('accepts a valid tenant with its prefix written in one transaction', async () => {
    accepted(
      await store.txn({
        then: [
          { op: 'put', key: '/tenants/acme', value: { name: 'Acme Corp' } },
          { op: 'put', key: '/tenants/acme/prefixes/p0', value: { cidr: '203.0.113.0/25' } },
        ],
      }),
      'acme',
    );
    accepted(await store.put('/tenants/beta', { name: 'Beta' }), 'beta');
    accepted(await store.put('/tenants/beta/prefixes/p0', { cidr: '203.0.113.128/25' }), 'beta p0, disjoint from acme');
  });

  void it("refuses a prefix overlapping another tenant's, naming both, and changes nothing", async () => {
    const before = await snapshot();
    const e = refused(await store.put('/tenants/beta/prefixes/p1', { cidr: '203.0.113.64/26' }), 'overlap');
    const overlap = e.issues.filter((i) => i.code === 'overlap');
    assert.equal(overlap.length, 1, e.message);
    const text = formatIssue(overlap[0]!);
    assert.match(text, /203\.0\.113\.0\/25/, text);
    assert.match(text, /203\.0\.113\.64\/26/, text);
    assert.match(text, /tenants\/(acme|beta)\/prefixes\/p[01]/, text);
    assert.match(e.message, /^put \/tenants\/beta\/prefixes\/p1: refused/);
    assert.ok(e.message.includes(text), `the error message carries the issue text: ${e.message}`);
    assert.equal(e.key, '/tenants/beta/prefixes/p1');
    assert.deepEqual(await snapshot(), before, 'no entry and no revision added');
  });

  void it('refuses an object that fails its schema, at its field', async () => {
    const before = await snapshot();
    const e = refused(await store.put('/tenants/acme/prefixes/bad', { cidr: 'not-a-cidr' }), 'bad cidr');
    assert.ok(
      e.issues.some((i) => i.path.join('/') === 'tenants/acme/prefixes/bad' && i.field[0] === 'cidr'),
      e.issues.map(formatIssue).join('\n'),
    );
    assert.deepEqual(await snapshot(), before);
  });

  void it('refuses a child without its parent, and deleting a parent that still has children', async () => {
    const before = await snapshot();
    const orphan = refused(await store.put('/tenants/ghost/prefixes/p0', { cidr: '198.51.100.192/28' }), 'orphan');
    assert.ok(orphan.issues.length > 0);
    refused(await store.delete('/tenants/beta'), 'beta still has a prefix');
    assert.deepEqual(await snapshot(), before);
    // Removing the whole subtree at once is consistent, so it is accepted.
    accepted(
      await store.txn({
        then: [
          { op: 'deletePrefix', prefix: '/tenants/beta/' },
          { op: 'delete', key: '/tenants/beta' },
        ],
      }),
      'delete beta with its children',
    );
    // Now the range beta held is free for acme.
    accepted(await store.put('/tenants/acme/prefixes/p1', { cidr: '203.0.113.128/25' }), 'acme takes the freed range');
  });
});
