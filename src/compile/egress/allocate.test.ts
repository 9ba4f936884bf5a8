// The allocator: what each data center and server is given, stability, contiguity, release and
// the shortage error. Every plan is applied and the result must validate and give every server a slice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../model/validate.ts';
import { formatIssue } from '../../model/issue.ts';
import type { Config } from '../../model/config.ts';
import { allocateEgress, applyAllocation, type AllocateOptions } from './allocate.ts';
import { egressOwnership } from './ownership.ts';
import { serverEgress } from './server.ts';
import { configOf, egressDoc } from './fixtures.ts';

function plan(c: Config, opts: AllocateOptions = {}): { lines: string[]; after: Config } {
  const r = allocateEgress(c, opts);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const after = applyAllocation(c, r.value);
  return { lines: r.value.changes.map((x) => `${x.action} ${x.ip} ${x.dc}${x.server ? '/' + x.server : ''} ${x.tag}`), after };
}

/** The applied plan is a valid config in which every server has an address of every tag. */
function assertComplete(c: Config): void {
  assert.deepEqual(validate(c).map(formatIssue), []);
  assert.ok(egressOwnership(c).ok);
  for (const [dc, d] of Object.entries(c.dcs))
    for (const s of Object.keys(d.servers)) {
      const r = serverEgress(c, dc, s);
      assert.ok(r.ok);
      const tags = new Set(r.value.map((a) => `${a.family} ${a.class}/${a.country}`));
      assert.deepEqual([...tags].sort(), ['4 trusted/GB', '4 untrusted/FR', '6 trusted/GB'], `${dc}/${s}`);
    }
}

test('from nothing: each data center gets what its servers need, in one run per tag; each server an IPv6 address', () => {
  const doc = egressDoc();
  doc.egress.assign = {};
  const { lines, after } = plan(configOf(doc));
  assert.deepEqual(lines, [
    // gb-trusted (3 servers per address): lon (4 servers) needs 2, par (2) needs 1.
    'assign 198.51.100.64 lon trusted/GB',
    'assign 198.51.100.65 lon trusted/GB',
    'assign 198.51.100.66 par trusted/GB',
    'assign 198.51.100.80 lon untrusted/FR',
    'assign 198.51.100.81 par untrusted/FR',
    'assign 2001:db8:e0::1 lon/s1 trusted/GB',
    'assign 2001:db8:e0::2 lon/s2 trusted/GB',
    'assign 2001:db8:e0::3 lon/s3 trusted/GB',
    'assign 2001:db8:e0::4 lon/s4 trusted/GB',
    'assign 2001:db8:e0::5 par/s1 trusted/GB',
    'assign 2001:db8:e0::6 par/s2 trusted/GB',
  ]);
  assertComplete(after);
  assert.deepEqual(plan(after).lines, [], 'a second run changes nothing');
});

test('existing assignments stay; only what is missing is added', () => {
  const { lines, after } = plan(configOf(egressDoc()));
  assert.deepEqual(lines, [
    'assign 2001:db8:e0::2 lon/s1 trusted/GB',
    'assign 2001:db8:e0::3 lon/s3 trusted/GB',
    'assign 2001:db8:e0::4 lon/s4 trusted/GB',
    'assign 2001:db8:e0::5 par/s1 trusted/GB',
    'assign 2001:db8:e0::6 par/s2 trusted/GB',
  ]);
  assertComplete(after);
});

test('a growing data center extends its run; when its neighbour is in the way, it takes the first free run', () => {
  const doc = egressDoc();
  doc.egress.assign = { '198.51.100.64': { dc: 'lon' }, '198.51.100.65': { dc: 'lon' }, '198.51.100.70': { dc: 'par' }, '198.51.100.80': { dc: 'lon' }, '198.51.100.81': { dc: 'par' } };
  const c = configOf(doc);
  // par planned at 7 servers: 3 addresses; it has .70, grows upward.
  assert.deepEqual(plan(c, { servers: { par: 7 } }).lines.filter((l) => l.includes('198.51')), ['assign 198.51.100.71 par trusted/GB', 'assign 198.51.100.72 par trusted/GB']);
  // lon planned at 12: 4 addresses; .66 onward is free up to .69 — the run continues.
  assert.deepEqual(plan(c, { servers: { lon: 12 } }).lines.filter((l) => l.includes('198.51')), ['assign 198.51.100.66 lon trusted/GB', 'assign 198.51.100.67 lon trusted/GB']);
  // lon planned at 21: 7 addresses, 5 more: its run grows over .66–.69 up to par's .70; the last
  // one comes from the first free run after it.
  assert.deepEqual(plan(c, { servers: { lon: 21 } }).lines.filter((l) => l.includes('198.51')), [
    'assign 198.51.100.66 lon trusted/GB',
    'assign 198.51.100.67 lon trusted/GB',
    'assign 198.51.100.68 lon trusted/GB',
    'assign 198.51.100.69 lon trusted/GB',
    'assign 198.51.100.71 lon trusted/GB',
  ]);
});

test('a new data center takes the first free run that fits, not scattered addresses', () => {
  const doc = egressDoc();
  doc.dcs.ams = { name: 'Amsterdam', backbone: ['192.0.2.9/30'], servers: { s1: { uplink: 'eth0', addresses: ['192.0.2.40/24'] } } };
  // Free gb-trusted addresses: .67, then .69–.79. ams with 7 servers needs 3: the run .69–.71.
  doc.egress.assign = { '198.51.100.64': { dc: 'lon' }, '198.51.100.65': { dc: 'lon' }, '198.51.100.66': { dc: 'par' }, '198.51.100.68': { dc: 'par' } };
  const c = configOf(doc);
  assert.deepEqual(plan(c, { servers: { ams: 7 } }).lines.filter((l) => l.includes('trusted/GB') && l.includes('198.51')), [
    'assign 198.51.100.69 ams trusted/GB',
    'assign 198.51.100.70 ams trusted/GB',
    'assign 198.51.100.71 ams trusted/GB',
  ]);
});

test('release frees the addresses beyond the need, highest first; without it they stay', () => {
  const doc = egressDoc();
  doc.egress.assign['198.51.100.67'] = { dc: 'lon' };
  doc.egress.assign['198.51.100.68'] = { dc: 'lon' };
  doc.egress.assign['2001:db8:e0::9'] = { dc: 'lon', server: 's2' };
  const c = configOf(doc);
  assert.ok(!plan(c).lines.some((l) => l.startsWith('release')));
  const { lines, after } = plan(c, { release: true });
  assert.deepEqual(
    lines.filter((l) => l.startsWith('release')),
    ['release 198.51.100.67 lon trusted/GB', 'release 198.51.100.68 lon trusted/GB', 'release 2001:db8:e0::9 lon/s2 trusted/GB'],
  );
  assert.deepEqual(Object.keys(after.egress.assign).filter((ip) => ip.startsWith('198.51.100.6')).sort(), ['198.51.100.64', '198.51.100.65', '198.51.100.66']);
  assertComplete(after);
});

test('too few free addresses of a tag is an error naming the data center, the tag and the shortage; nothing is planned', () => {
  const r = allocateEgress(configOf(egressDoc()), { servers: { lon: 100 } });
  assert.deepEqual(r, {
    ok: false,
    error: {
      code: 'short',
      path: 'dcs/lon',
      message:
        'data center lon needs 32 more egress addresses tagged trusted/GB (sliceSize 16384, 100 servers) but the pools of that tag have only 13 free; add a prefix to egress/pools/gb-trusted or create another pool with these tags',
    },
  });
  assert.deepEqual(allocateEgress(configOf(egressDoc()), { servers: { fra: 3 } }), {
    ok: false,
    error: { code: 'not_found', path: 'dcs/fra', message: 'no data center "fra" to plan 3 servers for; known: lon, par' },
  });
});
