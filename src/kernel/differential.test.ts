/**
 * The fake against Linux on the same random programs: a seeded sequence of operations runs on
 * both, each step must end with the same result code, and the state read back through the APIs
 * must be equal after every few steps. Where the contract suite states cases one by one, this
 * finds the combinations nobody thought of (a route through a link that went down, an address on
 * a moved link …). Root only; namespaces are this run's own and removed in `after`.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Result } from '../lib/result.ts';
import { needs } from '../testkit/needs.ts';
import type { KernelError } from './errors.ts';
import { run } from './exec.ts';
import { fakeKernel, linuxKernel, type Kernel } from './index.ts';
import { marksWith } from './marks.ts';
import { stableListing, type NftTableSpec } from './nft.ts';
import { rng } from '../testkit/random.ts';

const tag = process.pid.toString(36).padStart(4, '0').slice(-4) + String.fromCharCode(97 + Math.floor(Math.random() * 26));
const prefix = `aeD${tag}`;

after(async () => {
  const res = await run('ip', ['-j', 'netns', 'list']);
  if (!res.ok || res.value.stdout.trim() === '') return;
  for (const { name } of JSON.parse(res.value.stdout) as { name: string }[]) if (name.startsWith(prefix)) await run('ip', ['netns', 'delete', name]);
});

type Step = { text: string; run: (k: Kernel) => Promise<Result<unknown, KernelError>> };

/** A random program over two namespaces and three veth pairs between them. */
function program(seed: number, n: number): Step[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const ns1 = `${prefix}-1`;
  const ns2 = `${prefix}-2`;
  const A = (i: number) => `${prefix}a${i}`;
  const B = (i: number) => `${prefix}b${i}`;
  const idx = [0, 1, 2];
  // Gateways sit in the links' own subnets; route destinations are disjoint from them, so a
  // gateway can only resolve through a connected subnet (see the fake's notes).
  const v4 = (i: number) => `198.51.100.${4 * i + 1}/30`;
  const v6 = (i: number) => `2001:db8:${i}::1/64`;
  const gw4 = (i: number) => `198.51.100.${4 * i + 2}`;
  const gw6 = (i: number) => `2001:db8:${i}::2`;
  const dsts4 = ['203.0.113.0/25', '203.0.113.128/25', '192.0.2.0/24'];
  const dsts6 = ['2001:db8:100::/48', '2001:db8:200::/48'];
  const fw = (policy: string, broken: boolean): NftTableSpec => {
    const table = `${prefix}fw`;
    return {
      family: 'inet',
      name: table,
      objects: [
        { chain: { family: 'inet', table, name: 'input', type: 'filter', hook: 'input', prio: 0, policy } },
        { rule: { family: 'inet', table, chain: 'input', expr: [{ counter: { packets: 0, bytes: 0 } }, broken ? { jump: { target: 'missing' } } : { accept: null }] } },
      ],
    };
  };
  const steps: Step[] = [
    { text: `netns add ${ns1}`, run: (k) => k.netns.add(ns1) },
    { text: `netns add ${ns2}`, run: (k) => k.netns.add(ns2) },
  ];
  const gens: Array<() => Step> = [
    () => {
      const i = pick(idx);
      return { text: `veth ${i}`, run: (k) => k.links.addVeth({ a: { ns: ns1, name: A(i), ifindex: 5000 + i }, b: { ns: ns2, name: B(i), ifindex: 5100 + i }, owner: 'diff' }) };
    },
    () => {
      const i = pick(idx);
      return { text: `link delete ${A(i)}`, run: (k) => k.links.delete(ns1, A(i)) };
    },
    () => {
      const i = pick(idx);
      const up = r() < 0.7;
      const side = r() < 0.7;
      return { text: `link set ${side ? A(i) : B(i)} ${up ? 'up' : 'down'}`, run: (k) => k.links.setUp(side ? ns1 : ns2, side ? A(i) : B(i), up) };
    },
    () => {
      const i = pick(idx);
      const mtu = pick([1280, 1500, 9000, 65536]);
      return { text: `link set ${A(i)} mtu ${mtu}`, run: (k) => k.links.setMtu(ns1, A(i), mtu) };
    },
    () => {
      const i = pick(idx);
      const c = r() < 0.5 ? v4(i) : v6(i);
      const add = r() < 0.7;
      return { text: `addr ${add ? 'add' : 'del'} ${c} dev ${A(i)}`, run: (k) => (add ? k.addrs.add(ns1, A(i), c) : k.addrs.delete(ns1, A(i), c)) };
    },
    () => {
      const six = r() < 0.4;
      const table = pick([100, 101]);
      const dst = six ? pick(dsts6) : pick(dsts4);
      const hops = idx.filter(() => r() < 0.5);
      const chosen = hops.length > 0 ? hops : [pick(idx)];
      const nexthops = chosen.map((i) => ({
        dev: A(i),
        ...(six || r() < 0.6 ? { via: six ? gw6(i) : gw4(i) } : {}),
        ...(chosen.length > 1 ? { weight: 1 + Math.floor(r() * 4) } : {}),
      }));
      return { text: `route replace ${dst} table ${table} ${JSON.stringify(nexthops)}`, run: (k) => k.routes.replace(ns1, { table, dst, nexthops }) };
    },
    () => {
      const table = pick([100, 101]);
      const dst = r() < 0.4 ? pick(dsts6) : pick(dsts4);
      return { text: `route delete ${dst} table ${table}`, run: (k) => k.routes.delete(ns1, { table, dst }) };
    },
    () => {
      const spec = pick([
        { family: 4 as const, priority: 1000, table: 100, fwmark: 0xae, fwmask: 0xff },
        { family: 6 as const, priority: 1000, table: 100, fwmark: 0xae, fwmask: 0xff },
        { family: 4 as const, priority: 1001, table: 101 },
      ]);
      const add = r() < 0.6;
      return { text: `rule ${add ? 'add' : 'del'} ${JSON.stringify(spec)}`, run: (k) => (add ? k.rules.add(ns1, spec) : k.rules.delete(ns1, spec)) };
    },
    () => {
      const [key, value] = pick([
        ['net.ipv4.ip_forward', pick(['0', '1'])],
        ['net.ipv4.fib_multipath_hash_policy', pick(['0', '1', '4'])],
        [`net.ipv4.conf.${A(pick(idx))}.rp_filter`, pick(['0', '2'])],
      ] as const);
      return { text: `sysctl ${key}=${value}`, run: (k) => k.sysctl.set(ns1, key, value) };
    },
    () => {
      const name = r() < 0.3 ? A(pick(idx)) : B(pick(idx));
      const [from, to] = r() < 0.5 ? [ns2, ns1] : [ns1, ns2];
      return { text: `link set ${name} netns ${to}`, run: (k) => k.links.move(from, name, to) };
    },
    () => {
      const i = pick(idx);
      const alias = pick([null, 'anyedge:diff', 'anyedge:other']);
      return { text: `link set ${A(i)} alias ${alias}`, run: (k) => k.links.setAlias(ns1, A(i), alias) };
    },
    () => {
      const policy = pick(['accept', 'drop']);
      const broken = r() < 0.3;
      return { text: `nft apply ${policy}${broken ? ' (broken)' : ''}`, run: (k) => k.nft.applyTable(ns2, fw(policy, broken)) };
    },
  ];
  // Start from a useful state (three pairs up and addressed), so most steps meet live objects.
  for (const i of idx) {
    steps.push({ text: `veth ${i}`, run: (k) => k.links.addVeth({ a: { ns: ns1, name: A(i), ifindex: 5000 + i }, b: { ns: ns2, name: B(i), ifindex: 5100 + i }, owner: 'diff' }) });
    steps.push({ text: `link set ${A(i)} up`, run: (k) => k.links.setUp(ns1, A(i), true) });
    steps.push({ text: `link set ${B(i)} up`, run: (k) => k.links.setUp(ns2, B(i), true) });
    steps.push({ text: `addr add ${v4(i)} dev ${A(i)}`, run: (k) => k.addrs.add(ns1, A(i), v4(i)) });
    steps.push({ text: `addr add ${v6(i)} dev ${A(i)}`, run: (k) => k.addrs.add(ns1, A(i), v6(i)) });
  }
  // Weights, in the order of gens: routes and link state change most, whole links least.
  const weights = [2, 1, 4, 1, 3, 8, 3, 2, 2, 2, 1, 2];
  const bag = gens.flatMap((g, i) => new Array<() => Step>(weights[i] ?? 1).fill(g));
  for (let i = 0; i < n; i++) steps.push(pick(bag)());
  return steps;
}

/** Everything readable through the APIs, with what the kernel picks at random (MACs) left out. */
async function state(k: Kernel): Promise<unknown> {
  const ns1 = `${prefix}-1`;
  const ns2 = `${prefix}-2`;
  const out: Record<string, unknown> = {};
  for (const ns of [ns1, ns2]) {
    const links = await k.links.list(ns);
    out[`${ns} links`] = links.ok ? links.value.map((l) => ({ ...l, mac: l.kind === 'loopback' ? l.mac : '-' })) : links.error.code;
    const addrs = await k.addrs.list(ns);
    out[`${ns} addrs`] = addrs.ok ? addrs.value : addrs.error.code;
    for (const table of [100, 101]) {
      const routes = await k.routes.list(ns, table);
      out[`${ns} routes ${table}`] = routes.ok ? routes.value : routes.error.code;
    }
    const rules = await k.rules.list(ns);
    out[`${ns} rules`] = rules.ok ? rules.value : rules.error.code;
    for (const key of ['net.ipv4.ip_forward', 'net.ipv4.fib_multipath_hash_policy']) {
      const v = await k.sysctl.get(ns, key);
      out[`${ns} ${key}`] = v.ok ? v.value : v.error.code;
    }
    const nft = await k.nft.listTable(ns, { family: 'inet', name: `${prefix}fw` });
    out[`${ns} nft`] = nft.ok ? stableListing(nft.value) : nft.error.code;
  }
  return out;
}

describe('fake matches linux on random programs', () => {
  // DIFF_SEEDS=1-200 runs more programs (and replays a failing one by its seed).
  const range = /^(\d+)-(\d+)$/.exec(process.env.DIFF_SEEDS ?? '');
  const seeds = range ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i) : [1, 2, 3, 4];
  for (const seed of seeds) {
    it(`seed ${seed}`, async (t) => {
      if (!needs(t, { root: true, tools: ['ip', 'nft'] })) return;
      const marks = marksWith({ prefix });
      const linux = linuxKernel(marks);
      const fake = fakeKernel(marks);
      const steps = program(seed, 80);
      const done: string[] = [];
      try {
        for (const [i, step] of steps.entries()) {
          const [rl, rf] = [await step.run(linux), await step.run(fake)];
          done.push(`${i}: ${step.text} → ${rl.ok ? 'ok' : rl.error.code}`);
          const code = (x: Result<unknown, KernelError>) => (x.ok ? 'ok' : x.error.code);
          assert.equal(code(rf), code(rl), `step ${i} (${step.text}): fake ${rf.ok ? 'ok' : rf.error.message} / linux ${rl.ok ? 'ok' : rl.error.message}\n${done.join('\n')}`);
          if (i % 5 === 4 || i === steps.length - 1) assert.deepEqual(await state(fake), await state(linux), `state after step ${i}:\n${done.join('\n')}`);
        }
        if (process.env.DIFF_LOG) console.log(done.join('\n'));
      } finally {
        for (const ns of [`${prefix}-1`, `${prefix}-2`]) await linux.netns.delete(ns);
      }
    });
  }
});
