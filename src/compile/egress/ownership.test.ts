// Ownership of egress addresses: data center, slices per server (IPv4) or one server (IPv6), and
// the errors of inconsistent assignments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Config } from '../../model/config.ts';
import { egressOwnership } from './ownership.ts';
import { configOf, egressDoc } from './fixtures.ts';

test('each IPv4 address lists the slice of every server using it; IPv6 addresses name their server', () => {
  const r = egressOwnership(configOf(egressDoc()));
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.deepEqual(r.value, [
    // gb-trusted: 3 servers per address, lon has 4 → server k on address k div 3, slice k mod 3 + 1.
    { ip: '198.51.100.64', dc: 'lon', owner: { kind: 'slices', sliceSize: 16384, slices: [{ slice: 1, server: 's1' }, { slice: 2, server: 's2' }, { slice: 3, server: 's3' }] } },
    { ip: '198.51.100.65', dc: 'lon', owner: { kind: 'slices', sliceSize: 16384, slices: [{ slice: 1, server: 's4' }] } },
    { ip: '198.51.100.66', dc: 'par', owner: { kind: 'slices', sliceSize: 16384, slices: [{ slice: 1, server: 's1' }, { slice: 2, server: 's2' }] } },
    { ip: '198.51.100.80', dc: 'lon', owner: { kind: 'slices', sliceSize: 2048, slices: [1, 2, 3, 4].map((k) => ({ slice: k, server: `s${k}` })) } },
    { ip: '198.51.100.81', dc: 'par', owner: { kind: 'slices', sliceSize: 2048, slices: [{ slice: 1, server: 's1' }, { slice: 2, server: 's2' }] } },
    { ip: '2001:db8:e0::1', dc: 'lon', owner: { kind: 'server', server: 's2' } },
  ]);
});

test('a down or draining server keeps its slice, so nobody else’s ports move', () => {
  const doc = egressDoc();
  const before = egressOwnership(configOf(doc));
  doc.dcs.lon.servers.s1.state = 'down';
  doc.dcs.lon.servers.s3.state = 'draining';
  assert.deepEqual(egressOwnership(configOf(doc)), before);
});

test('servers are ordered by id, not by the order they were written in', () => {
  const doc = egressDoc();
  const s = doc.dcs.lon.servers;
  doc.dcs.lon.servers = { s4: s.s4, s2: s.s2, s3: s.s3, s1: s.s1 };
  assert.deepEqual(egressOwnership(configOf(doc)), egressOwnership(configOf(egressDoc())));
});

test('addresses beyond those needed repeat the slice rows: every server gets a slice of more addresses', () => {
  const doc = egressDoc();
  doc.egress.assign['198.51.100.67'] = { dc: 'lon' };
  doc.egress.assign['198.51.100.68'] = { dc: 'lon' };
  const r = egressOwnership(configOf(doc));
  assert.ok(r.ok);
  const lonGb = r.value.filter((o) => o.dc === 'lon' && o.owner.kind === 'slices' && o.owner.sliceSize === 16384);
  assert.deepEqual(
    lonGb.map((o) => [o.ip, o.owner.kind === 'slices' ? o.owner.slices.map((x) => `${x.server}:${x.slice}`).join(' ') : '']),
    [
      ['198.51.100.64', 's1:1 s2:2 s3:3'],
      ['198.51.100.65', 's4:1'],
      ['198.51.100.67', 's1:1 s2:2 s3:3'],
      ['198.51.100.68', 's4:1'],
    ],
  );
});

test('unassigned pool addresses belong to nobody', () => {
  const r = egressOwnership(configOf(egressDoc()));
  assert.ok(r.ok);
  assert.ok(!r.value.some((o) => o.ip === '198.51.100.70'));
});

/** A config changed after validation, as a store written by an older version could hold. */
function unchecked(change: (c: { -readonly [K in keyof Config]: Config[K] } & Record<string, never>) => void): Config {
  const c = structuredClone(configOf(egressDoc())) as never;
  change(c);
  return c;
}

test('a data center short of addresses of a tag is an error naming it, the tag and how many more it needs', () => {
  const c = unchecked((c) => {
    const lon = c.dcs['lon']!;
    (c as { dcs: Record<string, unknown> }).dcs['lon'] = { ...lon, servers: { ...lon.servers, s5: lon.servers['s1']!, s6: lon.servers['s1']!, s7: lon.servers['s1']! } };
  });
  const r = egressOwnership(c);
  assert.deepEqual(r, {
    ok: false,
    error: {
      code: 'short',
      path: 'dcs/lon',
      message:
        'data center lon has 7 servers but only 2 egress addresses tagged trusted/GB (sliceSize 16384: 3 servers each); assign 1 more address of that tag to lon (anyedge egress allocate does it)',
    },
  });
});

test('inconsistent assignments are errors with their path', () => {
  const noPool = unchecked((c) => {
    (c.egress.assign as Record<string, unknown>)['198.51.100.100'] = { dc: 'lon' };
  });
  assert.deepEqual(egressOwnership(noPool), {
    ok: false,
    error: { code: 'not_found', path: 'egress/assign/198.51.100.100', message: '198.51.100.100 is not in any egress pool; add its prefix to a pool or delete the assignment' },
  });
  const noDc = unchecked((c) => {
    (c.egress.assign as Record<string, unknown>)['198.51.100.67'] = { dc: 'ams' };
  });
  assert.deepEqual(egressOwnership(noDc), {
    ok: false,
    error: { code: 'not_found', path: 'egress/assign/198.51.100.67', message: 'data center "ams" does not exist; assign 198.51.100.67 to an existing one' },
  });
  const v6NoServer = unchecked((c) => {
    (c.egress.assign as Record<string, unknown>)['2001:db8:e0::1'] = { dc: 'lon' };
  });
  assert.deepEqual(egressOwnership(v6NoServer), {
    ok: false,
    error: { code: 'invalid', path: 'egress/assign/2001:db8:e0::1', message: '2001:db8:e0::1 is an IPv6 address: it is one server\'s, so the assignment needs a server of lon' },
  });
  const v4Server = unchecked((c) => {
    (c.egress.assign as Record<string, unknown>)['198.51.100.64'] = { dc: 'lon', server: 's1' };
  });
  assert.equal(egressOwnership(v4Server).ok, false);
  const v6Gone = unchecked((c) => {
    (c.egress.assign as Record<string, unknown>)['2001:db8:e0::1'] = { dc: 'lon', server: 's9' };
  });
  assert.deepEqual(egressOwnership(v6Gone), {
    ok: false,
    error: { code: 'not_found', path: 'egress/assign/2001:db8:e0::1', message: 'data center lon has no server "s9"; assign 2001:db8:e0::1 to one of s1, s2, s3, s4' },
  });
});
