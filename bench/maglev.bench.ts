/**
 * Maglev (src/compile/maglev.ts): table build time for a DC of 10 to 1,000 servers (size
 * 65,537), the balance it reaches (largest and smallest share of buckets against 1/N) and the
 * disruption when one server is added or removed (fraction of buckets that change owner; the
 * ideal is 1/(N+1) and 1/N); then the whole steering table (first owners plus second choices:
 * one fill per active server for T(S \ {F})), cold (a new server set) and memoized (the same set
 * again, an agent's pass with no server change), with one server draining too; last, the cold
 * table built the agent's way, in a worker thread (maglev-async.ts): its wall time and the longest
 * the event loop went without running a 10 ms timer meanwhile.
 *
 *   node --import tsx bench/maglev.bench.ts
 */
import { bucketCounts, disruption, MAGLEV_SIZE, maglevPopulate, steeringTable, type SteeringServer } from '../src/compile/maglev.ts';
import { steeringTableOffThread } from '../src/compile/maglev-async.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `s${String(i + 1).padStart(4, '0')}`);
const active = (xs: readonly string[]): SteeringServer[] => xs.map((id) => ({ id, state: 'active' }));

function time<T>(fn: () => T, runs: number): { value: T; ms: number } {
  let value = fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) value = fn();
  return { value, ms: (performance.now() - t0) / runs };
}

console.log(`| servers | build (ms) | buckets per server, min–max vs ideal | add one: moved | ideal | remove one: moved | ideal |`);
console.log(`|---:|---:|---|---:|---:|---:|---:|`);
for (const n of [10, 100, 300, 1000]) {
  const built = time(() => maglevPopulate(ids(n)), n >= 1000 ? 5 : 20);
  if (!built.value.ok) throw new Error(built.value.error.message);
  const counts = bucketCounts(built.value.value, n);
  const ideal = MAGLEV_SIZE / n;
  const base = steeringTable(active(ids(n)));
  const grown = steeringTable(active(ids(n + 1)));
  const shrunk = steeringTable(active(ids(n).slice(1)));
  if (!base.ok || !grown.ok || !shrunk.ok) throw new Error('table failed');
  const add = disruption(base.value, grown.value);
  const remove = disruption(base.value, shrunk.value);
  console.log(
    `| ${n} | ${built.ms.toFixed(1)} | ${Math.min(...counts)}–${Math.max(...counts)} vs ${ideal.toFixed(1)} | ${(add * 100).toFixed(2)} % | ${(100 / (n + 1)).toFixed(2)} % | ${(remove * 100).toFixed(2)} % | ${(100 / n).toFixed(2)} % |`,
  );
}

console.log(`\n| servers | steering table, cold (ms) | with one draining, cold (ms) | memoized (ms) |`);
console.log(`|---:|---:|---:|---:|`);
for (const n of [10, 100, 1000]) {
  // A fresh suffix every run: a set the memo has not seen, so every run builds.
  let run = 0;
  const cold = time(() => steeringTable(active([...ids(n - 1), `new${run++}`])), n >= 1000 ? 2 : 5);
  const drain = time(() => steeringTable([...ids(n - 1), `new${run++}`].map((id, i) => ({ id, state: i === 0 ? 'draining' : 'active' }))), n >= 1000 ? 2 : 5);
  const same = active(ids(n));
  steeringTable(same);
  const memo = time(() => steeringTable(same), 20);
  if (!cold.value.ok || !drain.value.ok || !memo.value.ok) throw new Error('table failed');
  console.log(`| ${n} | ${cold.ms.toFixed(0)} | ${drain.ms.toFixed(0)} | ${memo.ms.toFixed(2)} |`);
}

console.log(`\n| servers | in a worker, cold: wall (ms) | longest event-loop stall meanwhile (ms) | on the loop: stall = build (ms) |`);
console.log(`|---:|---:|---:|---:|`);
for (const n of [100, 300, 1000]) {
  const servers = (tag: string) => active([...ids(n - 1), `${tag}${n}`]);
  let last = performance.now();
  let stall = 0;
  const tick = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
  }, 10);
  const t0 = performance.now();
  last = t0;
  const off = await steeringTableOffThread(servers('worker'));
  const wall = performance.now() - t0;
  stall = Math.max(stall, performance.now() - last);
  clearInterval(tick);
  const t1 = performance.now();
  const on = steeringTable(servers('loop'));
  const blocked = performance.now() - t1;
  if (!off.ok || !on.ok) throw new Error('table failed');
  console.log(`| ${n} | ${wall.toFixed(0)} | ${stall.toFixed(0)} | ${blocked.toFixed(0)} |`);
}
