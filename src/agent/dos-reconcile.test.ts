/**
 * The DoS reconcile step on the fake DoS maps: the state a rule set leads to, idempotence, stable
 * slots and zeroed counters, add before delete, drift repair, expiry by the clock alone, compile
 * errors as values, random transitions between rule sets, and the hook in reconcile.ts `plan`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apply, formatPlan, plan, reconcile, type Step } from './reconcile.ts';
import { planDos, lastDosTables, type DosInput } from './dos-reconcile.ts';
import { fakeDosMaps, type FakeDosMaps } from '../kernel/bpf/dos-fake.ts';
import { configWithRules } from '../compile/dos/fixtures.ts';
import { compileDos } from '../compile/dos/compile.ts';
import { compileServer } from '../compile/server.ts';
import { fakeKernel, marksWith } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import { dosKeyText, dosMaskText, dosRuleText } from '../kernel/bpf/dos.ts';
import { rng } from '../testkit/random.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const drop = (match: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ match, action: 'drop', ...extra });
const input = (rules: Record<string, unknown>, now = NOW): DosInput => ({ config: configWithRules(rules), dc: 'ams', now });

async function stepsOf(maps: FakeDosMaps, i: DosInput): Promise<Step[]> {
  const s = await planDos(maps, i);
  if (!s.ok) assert.fail(s.error.message);
  return [...s.value.adds, ...s.value.dels];
}

async function converge(maps: FakeDosMaps, i: DosInput): Promise<Step[]> {
  const steps = await stepsOf(maps, i);
  const r = await apply(steps);
  assert.equal(r.failed, undefined, r.failed?.error.message);
  assert.deepEqual(await stepsOf(maps, i), [], 'a second plan finds nothing to do');
  return steps;
}

const RULES = {
  chargen: drop({ protocol: 'udp', sport: 19 }),
  web: drop({ protocol: 'tcp', dst: ['203.0.113.100'], dport: ['80', '443'] }),
  flood: { match: { protocol: 'udp', dport: '1024-65535' }, action: 'rate-limit', rateLimit: { pps: 1000 }, scope: { tenant: 'acme' } },
};

test('an empty map set gets the compiled tables, and a second plan is empty', async () => {
  const maps = fakeDosMaps();
  const steps = await converge(maps, input(RULES));
  assert.deepEqual(steps.map((s) => `${s.action} ${s.path}`), ['create dos/rules', 'create dos/match', 'create dos/masks']);
  const t = compileDos(configWithRules(RULES), { dc: 'ams', now: NOW });
  assert.ok(t.ok);
  const dump = maps.dump();
  for (const r of t.value.rules) assert.ok(dump.includes(`bpf dos_rules ${r.slot}: ${dosRuleText(r.value)}`), dump);
  for (const e of t.value.entries) assert.ok(dump.includes(`bpf dos_match ${dosKeyText(e.key)}: ${e.slots.join(',')}`), dump);
  for (const m of t.value.masks) assert.match(dump, new RegExp(`bpf dos_masks \\d+: ${dosMaskText(m).replace(/[/]/g, '\\/')}\\n`));
  assert.ok(dump.startsWith(`bpf dos_conf nmasks ${t.value.masks.length} cpus 2\n`), dump);
});

test('adding a rule keeps the others in their slots with their counters; the new slot starts at zero', async () => {
  const maps = fakeDosMaps();
  await converge(maps, input(RULES));
  const slotOf = (id: string) => lastDosTables(maps)!.rules.find((r) => r.id === id)!.slot;
  const web = slotOf('web');
  maps.count(web, { packets: 5, bytes: 300, dropped: 5 });
  // "aaa" sorts first but must not take a held slot.
  const steps = await converge(maps, input({ ...RULES, aaa: drop({ protocol: 'gre' }) }));
  assert.equal(slotOf('web'), web);
  assert.equal(slotOf('aaa'), 3);
  const st = await maps.stats([web, 3]);
  assert.ok(st.ok);
  assert.deepEqual(st.value.get(web), { packets: 5n, bytes: 300n, dropped: 5n });
  assert.deepEqual(st.value.get(3), { packets: 0n, bytes: 0n, dropped: 0n });
  assert.ok(steps.every((s) => s.action !== 'delete'), formatPlan(steps));
});

test('removing a rule: its entries and mask go after the others are in place, its slot is cleared last', async () => {
  const maps = fakeDosMaps();
  await converge(maps, input(RULES));
  const { web: _web, ...rest } = RULES;
  const steps = await converge(maps, input({ ...rest, https: drop({ protocol: 'tcp', dport: 8443 }) }));
  assert.deepEqual(steps.map((s) => `${s.action} ${s.path}`), ['create dos/rules', 'create dos/match', 'create dos/masks', 'delete dos/masks', 'delete dos/match', 'delete dos/rules']);
  const dump = maps.dump();
  assert.doesNotMatch(dump, /203\.0\.113\.100\/32/);
  // A slot freed in this change is not reused by the rule added in it.
  assert.deepEqual(lastDosTables(maps)!.rules.map((r) => [r.id, r.slot]), [['chargen', 0], ['flood', 1], ['https', 3]]);
  // The next change may reuse it.
  await converge(maps, input({ ...rest, https: drop({ protocol: 'tcp', dport: 8443 }), zzz: drop({ protocol: 'esp' }) }));
  assert.equal(lastDosTables(maps)!.rules.find((r) => r.id === 'zzz')!.slot, 2);
});

test('drift is repaired: a deleted entry, a changed rule, a stray entry and a cleared mask', async () => {
  const maps = fakeDosMaps();
  await converge(maps, input(RULES));
  const good = maps.dump();
  const t = lastDosTables(maps)!;
  const e0 = t.entries[0]!;
  assert.ok((await maps.write([
    { kind: 'entry', key: e0.key, slots: null },
    { kind: 'rule', slot: t.rules[0]!.slot, rule: { ...t.rules[0]!.value, action: 'rate-limit', rate: { pps: 1, bps: 0, per: 'dst-ip', prefix4: 0, prefix6: 0 } } },
    { kind: 'entry', key: { family: 4, proto: 47, src: '0.0.0.0/0', dst: '0.0.0.0/0', sport: { port: 0, bits: 0 }, dport: { port: 0, bits: 0 } }, slots: [9] },
    { kind: 'mask', index: 0, mask: null },
  ])).ok);
  assert.notEqual(maps.dump(), good);
  await converge(maps, input(RULES));
  // Masks may have moved to other indexes; everything else is as before.
  const noMasks = (s: string) => s.split('\n').filter((l) => !l.startsWith('bpf dos_masks')).join('\n');
  assert.equal(noMasks(maps.dump()), noMasks(good));
});

test('an expired rule is removed by the clock alone, and nextExpiry says when', async () => {
  const maps = fakeDosMaps();
  const rules = { ...RULES, tmp: drop({ protocol: 'icmp' }, { expires: '2030-01-01T00:05:00Z' }) };
  await converge(maps, input(rules));
  assert.equal(lastDosTables(maps)!.nextExpiry, '2030-01-01T00:05:00.000Z');
  assert.match(maps.dump(), /ip proto 1 /);
  const steps = await converge(maps, input(rules, Date.parse('2030-01-01T00:05:00Z')));
  assert.ok(steps.some((s) => s.path === 'dos/rules' && s.action === 'delete'));
  assert.doesNotMatch(maps.dump(), /ip proto 1 /);
  assert.equal(lastDosTables(maps)!.nextExpiry, undefined);
});

test('rules that do not compile are an error value naming every rule, and nothing is written', async () => {
  const maps = fakeDosMaps();
  await converge(maps, input(RULES));
  const before = maps.dump();
  const r = await planDos(maps, input({ ...RULES, bad: drop({ dst: ['198.51.100.0/24'] }, { scope: { tenant: 'acme' } }) }));
  assert.ok(!r.ok);
  assert.equal(r.error.code, 'invalid');
  assert.equal(r.error.path, '/dos/rules/bad/match/dst');
  assert.match(r.error.message, /\/dos\/rules\/bad\/match\/dst: .*acme/);
  assert.equal(maps.dump(), before);
});

test('random transitions between rule sets always converge to the compiled tables in one apply', async () => {
  const rand = rng(7);
  const pool: Record<string, unknown> = {
    a: drop({ protocol: 'udp', sport: 19 }),
    b: drop({ protocol: 'tcp', dport: '20-21' }),
    c: drop({ src: ['192.0.2.0/24'], protocol: 'udp', length: '1000-1500' }),
    d: { match: { protocol: 'udp', dport: 53 }, action: 'rate-limit', rateLimit: { pps: 100, per: 'src-prefix' } },
    e: drop({ src: ['2001:db8:bad::/48'] }),
    f: drop({ protocol: 'tcp', tcpFlags: { set: ['syn'] }, dport: '1024-2047' }),
    g: drop({ protocol: 'udp', dport: 53, ttl: '1-3' }),
  };
  const maps = fakeDosMaps();
  for (let i = 0; i < 30; i++) {
    const pick = Object.fromEntries(Object.entries(pool).filter(() => rand() < 0.5));
    await converge(maps, input(pick));
    const t = lastDosTables(maps)!;
    assert.deepEqual(t.rules.map((r) => r.id).sort(), Object.keys(pick).sort());
    const dump = maps.dump();
    const lines = dump.split('\n').filter((l) => l.startsWith('bpf dos_match'));
    assert.equal(lines.length, t.entries.length, dump);
    assert.equal(dump.split('\n').filter((l) => l.startsWith('bpf dos_masks')).length, t.masks.length);
    assert.ok(dump.startsWith(`bpf dos_conf nmasks ${Math.max(0, ...dump.split('\n').filter((l) => l.startsWith('bpf dos_masks')).map((l) => Number(/dos_masks (\d+)/.exec(l)![1]) + 1))} `), dump);
  }
});

test('plan() runs the DoS step when the env has DoS maps and the input is given', async () => {
  const marks = marksWith({ prefix: 'ae' });
  const kernel = fakeKernel(marks);
  // The server's uplink: a link that is not ours, as a NIC would be.
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  assert.ok((await kernel.links.setUp(null, 'eth0', true)).ok);
  const bpf = fakeBpfMaps();
  const attach = fakeAttach(kernel);
  const dos = fakeDosMaps();
  const i = input(RULES);
  const d = compileServer(i.config, { dc: 'ams', server: 's1' }, { marks });
  assert.ok(d.ok, d.ok ? '' : d.error.message);
  const env = { kernel, bpf, attach, dos };
  const without = await plan(env, d.value);
  assert.ok(without.ok);
  assert.ok(!without.value.some((s) => s.path.startsWith('dos/')));
  const r = await reconcile(env, d.value, 3, { dos: i });
  assert.ok(r.ok && !r.value.failed, r.ok ? r.value.failed?.error.message : r.error.message);
  const again = await plan(env, d.value, { dos: i });
  assert.ok(again.ok);
  assert.deepEqual(again.value, []);
  assert.match(dos.dump(), /bpf dos_match ip proto 17 src 0\.0\.0\.0\/0 dst 0\.0\.0\.0\/0 sport 19\/16 dport \*: 0/);
});
