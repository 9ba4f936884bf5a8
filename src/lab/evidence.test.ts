/** Counter snapshots: deltas per server and per DC, and the one-line evidence people read. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byDc, delta, formatDelta, type ServerCounters, type Snapshot } from './evidence.ts';

const srv = (node: string, accepted: number, dropped: number, greOut: number, greIn: number): ServerCounters => {
  const [dc, server] = node.split('-') as [string, string];
  return { dc, server, node, accepted, dropped, greOut, greIn };
};

test('delta subtracts per server and on the customer router; byDc sums a DC\'s servers', () => {
  const before: Snapshot = { servers: [srv('ams-s1', 5, 1, 5, 0), srv('ams-s2', 0, 0, 0, 3), srv('chi-s1', 2, 0, 2, 0)], customer: { greOut: 10, greIn: 7 } };
  const after: Snapshot = { servers: [srv('ams-s1', 11, 1, 11, 2), srv('ams-s2', 4, 2, 4, 3), srv('chi-s1', 2, 0, 2, 0)], customer: { greOut: 16, greIn: 17 } };
  const d = delta(before, after);
  assert.deepEqual(d.servers.map((s) => [s.node, s.accepted, s.dropped, s.greOut, s.greIn]), [['ams-s1', 6, 0, 6, 2], ['ams-s2', 4, 2, 4, 0], ['chi-s1', 0, 0, 0, 0]]);
  assert.deepEqual(d.customer, { greOut: 6, greIn: 10 });
  assert.deepEqual(Object.fromEntries(byDc(d)), { ams: { accepted: 10, dropped: 2, greOut: 10, greIn: 2 }, chi: { accepted: 0, dropped: 0, greOut: 0, greIn: 0 } });
  assert.equal(formatDelta(d, 'ftp'), 'ams-s1 ftp +6 gre→ +6 gre← +2, ams-s2 ftp +4 drop +2 gre→ +4; customer router gre→ +6 gre← +10');
});

test('a server that is new in the second snapshot counts from zero; nothing moved says so', () => {
  const empty: Snapshot = { servers: [], customer: { greOut: 0, greIn: 0 } };
  const d = delta(empty, { servers: [srv('ams-s1', 3, 0, 0, 0)], customer: { greOut: 0, greIn: 0 } });
  assert.equal(d.servers[0]?.accepted, 3);
  assert.equal(formatDelta(delta(empty, empty), 'ftp'), 'no server counter moved');
});
