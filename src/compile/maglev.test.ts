import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketCounts, disruption, isPrime, MAGLEV_SIZE, maglevBuilds, maglevPopulate, NO_SERVER, permutationOf, steeringTable, type SteeringServer } from './maglev.ts';

const ids = (n: number, prefix = 's') => Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(4, '0')}`);
const active = (xs: readonly string[]): SteeringServer[] => xs.map((id) => ({ id, state: 'active' }));

test('65,537 is prime and the permutation stays inside the table', () => {
  assert.ok(isPrime(MAGLEV_SIZE));
  assert.ok(!isPrime(65536) && !isPrime(1) && isPrime(131071));
  for (const id of ids(50)) {
    const p = permutationOf(id, MAGLEV_SIZE);
    assert.ok(p.offset >= 0 && p.offset < MAGLEV_SIZE);
    assert.ok(p.skip >= 1 && p.skip < MAGLEV_SIZE);
  }
});

test('every bucket has an owner and the owners are balanced within a few % of 1/N', () => {
  for (const n of [1, 3, 10, 100]) {
    const t = maglevPopulate(ids(n));
    assert.ok(t.ok);
    assert.equal(t.value.length, MAGLEV_SIZE);
    assert.ok(!t.value.includes(NO_SERVER), `n=${n}: a bucket is empty`);
    const counts = bucketCounts(t.value, n);
    const ideal = MAGLEV_SIZE / n;
    for (const [i, c] of counts.entries()) assert.ok(Math.abs(c - ideal) / ideal <= 0.03, `n=${n}: server ${i} has ${c} buckets, ideal ${ideal.toFixed(1)}`);
  }
});

test('the table depends only on the set of server ids, not their order', () => {
  const a = steeringTable(active(['c', 'a', 'b']));
  const b = steeringTable(active(['b', 'c', 'a']));
  assert.ok(a.ok && b.ok);
  assert.deepEqual(a.value.servers, ['a', 'b', 'c']);
  assert.deepEqual(b.value.servers, ['a', 'b', 'c']);
  assert.deepEqual(a.value.first, b.value.first);
  // And a fixed point, so a change of hash or algorithm cannot pass unnoticed (every server of a
  // DC must compute the same table, also across anyedge versions during a rolling upgrade).
  assert.deepEqual([...a.value.first.subarray(0, 12)], [0, 0, 2, 1, 2, 2, 2, 0, 2, 1, 0, 1]);
  const again = steeringTable(active(['a', 'b', 'c']));
  assert.ok(again.ok);
  assert.deepEqual(again.value.first, a.value.first);
});

test('adding or removing one of N servers moves about 1/N of the buckets', () => {
  for (const n of [3, 10, 50]) {
    const base = steeringTable(active(ids(n)));
    const grown = steeringTable(active(ids(n + 1)));
    const shrunk = steeringTable(active(ids(n).slice(1)));
    assert.ok(base.ok && grown.ok && shrunk.ok);
    const add = disruption(base.value, grown.value);
    const remove = disruption(base.value, shrunk.value);
    // The ideal is 1/(N+1) on an add and 1/N on a removal; Maglev trades a little of that for
    // balance (the paper's Fig. 11). Assert it stays within 1.6× the ideal and above it.
    assert.ok(add >= 1 / (n + 1) - 0.01 && add <= 1.6 / (n + 1), `n=${n}: add moved ${add.toFixed(4)}, ideal ${(1 / (n + 1)).toFixed(4)}`);
    assert.ok(remove >= 1 / n - 0.01 && remove <= 1.6 / n, `n=${n}: remove moved ${remove.toFixed(4)}, ideal ${(1 / n).toFixed(4)}`);
  }
});

test('a draining server owns no bucket but stays the second choice of the buckets it had', () => {
  const all = ids(4);
  const before = steeringTable(active(all));
  const drained = steeringTable(all.map((id) => ({ id, state: id === 's0002' ? 'draining' : 'active' })));
  assert.ok(before.ok && drained.ok);
  const t = drained.value;
  assert.deepEqual(t.servers, all, 'a draining server keeps its index: it is still a second choice');
  const d = t.servers.indexOf('s0002');
  assert.ok(!t.first.includes(d), 'no first choice is the draining server');
  // Where the owner did not change, the second choice is the owner without it (as for an add).
  const others = all.filter((id) => id !== 's0002');
  const without = new Map(others.map((f) => [f, maglevPopulate(others.filter((id) => id !== f))]));
  let had = 0;
  for (let b = 0; b < t.size; b++) {
    const old = before.value.first[b] as number;
    if (old === d) {
      had++;
      assert.equal(t.second[b], d, `bucket ${b}: the draining server's old bucket lost its second choice`);
    } else if (t.first[b] === old) {
      const f = t.servers[old] as string;
      const w = without.get(f);
      assert.ok(w?.ok);
      assert.equal(t.servers[t.second[b] as number], others.filter((id) => id !== f)[w.value[b] as number], `bucket ${b}: unchanged owner without its no-${f} owner as second choice`);
    } else assert.equal(t.second[b], old, `bucket ${b}: moved without its old owner as second choice`);
  }
  assert.ok(had > 0);
});

test('a server added as active: every bucket it took has its previous owner as second choice', () => {
  for (const n of [1, 3, 10]) {
    const before = steeringTable(active(ids(n)));
    const after = steeringTable(active([...ids(n), 'new']));
    assert.ok(before.ok && after.ok);
    const t = after.value;
    const added = t.servers.indexOf('new');
    let took = 0;
    for (let b = 0; b < t.size; b++) {
      const old: string | undefined = before.value.servers[before.value.first[b] as number];
      if (t.first[b] === added) {
        took++;
        assert.equal(t.servers[t.second[b] as number], old, `n=${n} bucket ${b}: the new server's bucket does not hand old flows to ${old}`);
      } else assert.notEqual(t.second[b], NO_SERVER, `n=${n} bucket ${b}: no second choice`);
      assert.notEqual(t.second[b], t.first[b], `bucket ${b}: second choice equals the first`);
    }
    assert.ok(took > 0.8 * (t.size / (n + 1)), `n=${n}: the new server took only ${took} buckets`);
  }
  // A server back from draining is an add too: its buckets hand flows to their owners while it drained.
  const drained = steeringTable(active(ids(4)).map((s) => (s.id === 's0003' ? { ...s, state: 'draining' as const } : s)));
  const back = steeringTable(active(ids(4)));
  assert.ok(drained.ok && back.ok);
  for (let b = 0; b < back.value.size; b++)
    if (back.value.servers[back.value.first[b] as number] === 's0003')
      assert.equal(back.value.servers[back.value.second[b] as number], drained.value.servers[drained.value.first[b] as number], `bucket ${b}`);
});

test('removing a server (down) leaves first owners as without it; one active server has no second choice', () => {
  const all = steeringTable(active(ids(5)));
  const gone = steeringTable(active(ids(5)).map((s) => (s.id === 's0002' ? { ...s, state: 'down' as const } : s)));
  const four = maglevPopulate(ids(5).filter((id) => id !== 's0002'));
  assert.ok(all.ok && gone.ok && four.ok);
  assert.ok(!gone.value.servers.includes('s0002'));
  assert.deepEqual([...gone.value.first], [...four.value], 'down is the same as absent');
  const one = steeringTable(active(['solo']));
  assert.ok(one.ok);
  assert.ok(one.value.second.every((x) => x === NO_SERVER));
});

test('tables are memoized by the (active, draining) sets, and callers get their own copies', () => {
  const xs = active(ids(6));
  const a = steeringTable(xs);
  const n = maglevBuilds();
  // Same sets in another order, plus a down server: nothing is rebuilt.
  const b = steeringTable([...xs].reverse().concat([{ id: 'gone', state: 'down' }]));
  assert.equal(maglevBuilds(), n, 'an unchanged server set rebuilt the table');
  assert.ok(a.ok && b.ok);
  assert.deepEqual(b.value, a.value);
  b.value.first.fill(0);
  b.value.second.fill(0);
  const c = steeringTable(xs);
  assert.ok(c.ok);
  assert.deepEqual(c.value, a.value, "a caller's change leaked into the memo");
  // A changed set is built: one fill for T(S) and one per active server for the second choices.
  steeringTable(xs.map((s) => (s.id === 's0001' ? { ...s, state: 'draining' as const } : s)));
  assert.equal(maglevBuilds(), n + 2 + 5);
});

test('down servers are nowhere; no active server, duplicates and bad sizes are errors that say what to do', () => {
  const t = steeringTable([{ id: 'a', state: 'active' }, { id: 'b', state: 'down' }, { id: 'c', state: 'active' }]);
  assert.ok(t.ok);
  assert.deepEqual(t.value.servers, ['a', 'c']);
  assert.ok(t.value.second.every((x, b) => x !== NO_SERVER && x !== t.value.first[b]), 'each bucket has the other active server as second choice');
  const none = steeringTable([{ id: 'a', state: 'draining' }], MAGLEV_SIZE, 'dcs/ams');
  assert.ok(!none.ok);
  assert.equal(none.error.code, 'no_servers');
  assert.equal(none.error.path, 'dcs/ams');
  assert.match(none.error.message, /a draining.*set at least one server's state to active/);
  const dup = steeringTable(active(['a', 'a']));
  assert.ok(!dup.ok);
  assert.equal(dup.error.code, 'duplicate_server');
  for (const size of [65536, 1021, 65539.5]) {
    const bad = maglevPopulate(['a'], size);
    assert.ok(!bad.ok);
    assert.equal(bad.error.code, 'bad_size');
    assert.match(bad.error.message, /must be a prime ≥ 65537/);
  }
  const big = maglevPopulate(['a', 'b'], 131071);
  assert.ok(big.ok && big.value.length === 131071 && !big.value.includes(NO_SERVER));
});
