import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, parseStoreSpec } from './open.ts';

describe('store spec', () => {
  it('parses lmdb and etcd specs, with the default etcd prefix', () => {
    assert.deepEqual(parseStoreSpec('lmdb:/var/lib/anyedge/store'), { ok: true, value: { kind: 'lmdb', path: '/var/lib/anyedge/store' } });
    assert.deepEqual(parseStoreSpec('etcd:http://127.0.0.1:2379,http://127.0.0.1:2479'), {
      ok: true,
      value: { kind: 'etcd', endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:2479'], prefix: '/anyedge' },
    });
    assert.deepEqual(parseStoreSpec('etcd:http://127.0.0.1:2379#/lab1'), { ok: true, value: { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/lab1' } });
  });

  it('refuses bad specs naming the flag and the fix', () => {
    for (const [spec, reason] of [
      ['/var/lib/x', 'unknown store kind'],
      ['lmdb:', 'directory is missing'],
      ['etcd:', 'no etcd endpoint'],
      ['etcd:not a url', 'is not a URL'],
      ['etcd:ftp://h:1', 'must be http'],
      ['etcd:http://h:1#lab', 'must start with /'],
    ] as const) {
      const r = parseStoreSpec(spec);
      assert.equal(r.ok, false, spec);
      if (!r.ok) {
        assert.match(r.error, /^--store /, spec);
        assert.ok(r.error.includes(reason), `${spec}: ${r.error}`);
      }
    }
  });

  it('opens an LMDB store that checks config and lets status through', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'anyedge-open-'));
    try {
      const r = await openStore({ kind: 'lmdb', path: dir, noSync: true });
      assert.ok(r.ok);
      const store = r.value;
      const bad = await store.put('/tenants/acme/prefixes/p0', { cidr: '203.0.113.1/24' });
      assert.equal(bad.ok ? null : bad.error.code, 'invalid');
      const status = await store.put('/status/ams/s1', { anything: true });
      assert.ok(status.ok);
      await store.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
