import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ok } from '../lib/result.ts';
import type { SynPolicy } from '../kernel/bpf/syncookie.ts';
import { compileTenantSynFlood } from '../compile/firewall/synproxy.ts';
import { apply } from './reconcile.ts';
import { planSyncookie, type SynMapsApi } from './syncookie.ts';

/** A fake of the maps that records what is in them. */
function fakeMaps(initial: Record<string, SynPolicy> = {}): SynMapsApi & { readonly state: Map<string, SynPolicy> } {
  const state = new Map(Object.entries(initial));
  return {
    state,
    protectedPrefixes: async () => ok(new Map(state)),
    protect: async (cidr, p) => {
      state.set(cidr, p);
      return ok(undefined);
    },
    unprotect: async (cidr) => {
      state.delete(cidr);
      return ok(undefined);
    },
  };
}

const acme = { synFlood: { protection: 'xdp', mss: 1400, wscale: 7 } as const, prefixes: { p1: { cidr: '203.0.113.0/25' }, p6: { cidr: '2001:db8:0203::/48' } } };

test('compileTenantSynFlood: xdp gives the table and one entry per prefix (IPv6 MSS 20 less); synproxy only the table; off nothing', () => {
  const x = compileTenantSynFlood('acme', acme, 3, { uplink: 'aeup', table: 'aesyn' });
  assert.ok(x.batch);
  assert.deepEqual(x.prefixes, [
    { path: 'tenants/acme/prefixes/p1', cidr: '203.0.113.0/25', mss: 1400, tenantIdx: 3 },
    { path: 'tenants/acme/prefixes/p6', cidr: '2001:db8:0203::/48', mss: 1380, tenantIdx: 3 },
  ]);
  const s = compileTenantSynFlood('acme', { ...acme, synFlood: { ...acme.synFlood, protection: 'synproxy' } }, 3, { uplink: 'aeup', table: 'aesyn' });
  assert.ok(s.batch);
  assert.deepEqual(s.prefixes, []);
  assert.deepEqual(compileTenantSynFlood('acme', { prefixes: acme.prefixes }, 3, { uplink: 'aeup', table: 'aesyn' }), { prefixes: [] });
});

test('planSyncookie puts what is missing, fixes what differs, deletes what nobody wants; a second plan is empty', async () => {
  const maps = fakeMaps({ '203.0.113.0/25': { mss: 1460, tenantIdx: 3 }, '198.51.100.0/24': { mss: 1460, tenantIdx: 9 } });
  const desired = compileTenantSynFlood('acme', acme, 3, { uplink: 'aeup', table: 'aesyn' }).prefixes;
  const p = await planSyncookie(maps, desired);
  assert.ok(p.ok);
  assert.deepEqual(
    [...p.value.adds, ...p.value.dels].map((s) => `${s.action} ${s.path}: ${s.what}`),
    [
      'update tenants/acme/prefixes/p1/syncookie: bpf syn_v4 203.0.113.0/25: mss 1400 tenant#3',
      'create tenants/acme/prefixes/p6/syncookie: bpf syn_v6 2001:db8:203::/48: mss 1380 tenant#3',
      'delete bpf/syncookie/198.51.100.0/24: bpf syn_v4 delete 198.51.100.0/24',
    ],
  );
  const rep = await apply([...p.value.adds, ...p.value.dels]);
  assert.equal(rep.failed, undefined);
  assert.deepEqual(Object.fromEntries(maps.state), { '203.0.113.0/25': { mss: 1400, tenantIdx: 3 }, '2001:db8:203::/48': { mss: 1380, tenantIdx: 3 } });
  const again = await planSyncookie(maps, desired);
  assert.ok(again.ok);
  assert.equal(again.value.adds.length + again.value.dels.length, 0, 'idempotent');
  // Protection turned off everywhere: the entries go.
  const off = await planSyncookie(maps, []);
  assert.ok(off.ok);
  assert.equal(off.value.dels.length, 2);
});
