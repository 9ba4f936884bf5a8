/**
 * Unit tests of the compiler. The central one runs random packets through two evaluators: the
 * model's meaning (first matching rule, else the default) read straight off the rules, and an
 * interpreter of the compiled nft JSON (chains, jumps and gotos, verdict maps, sets, named
 * counters). They must agree on every verdict and on every counter, which checks the protocol
 * dispatch, the family split and set merging against the plain reading of the config.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFirewall, stringifyNft, type FirewallOptions } from './compile.ts';
import { formatNft } from './format.ts';
import { isObject, type Json, type JsonObject, type NftJson } from './nft.ts';
import { loadFixture, mustFirewall } from './fixtures.ts';
import { firewallSchema, type Firewall, type FirewallRule } from '../../model/firewall.ts';
import { tcpFlagsMaskValue } from '../../model/match.ts';
import { cidrContains, hostCidr, mustCidr, parseIp, portRanges, protocolNumber, mustRange, PROTOCOLS } from '../../model/net.ts';
import { rng } from '../../testkit/random.ts';

const OPTS: FirewallOptions = { uplink: 'veth0', tunnels: ['gre1', 'gre2'] };

// ---------------------------------------------------------------------------------------------
// A packet, and the model's own reading of a firewall.

interface Packet {
  iif: string;
  oif: string;
  family: 4 | 6;
  src: string;
  dst: string;
  proto: number;
  sport: number;
  dport: number;
  flags: number;
  icmpType: number;
  icmpCode: number;
  length: number;
}

const PORT_PROTOS = new Set([6, 17, 132, 33, 136]);

function inCidrs(addr: string, list: readonly string[]): boolean {
  const ip = parseIp(addr);
  if (!ip.ok) throw new Error(addr);
  return list.some((c) => cidrContains(mustCidr(c), hostCidr(ip.value)));
}

function inPorts(port: number, set: readonly (string | number)[]): boolean {
  return portRanges(set).some(([lo, hi]) => port >= lo && port <= hi);
}

function ruleMatches(r: FirewallRule, p: Packet): boolean {
  if (r.src && !inCidrs(p.src, r.src)) return false;
  if (r.dst && !inCidrs(p.dst, r.dst)) return false;
  if (r.protocol !== undefined && protocolNumber(r.protocol) !== p.proto) return false;
  if (r.sport && !inPorts(p.sport, r.sport)) return false;
  if (r.dport && !inPorts(p.dport, r.dport)) return false;
  if (r.tcpFlags) {
    const { mask, value } = tcpFlagsMaskValue(r.tcpFlags);
    if ((p.flags & mask) !== value) return false;
  }
  if ('icmp' in r && r.icmp) {
    if (p.icmpType !== r.icmp.type) return false;
    if (r.icmp.code !== undefined && p.icmpCode !== r.icmp.code) return false;
  }
  if (r.length !== undefined) {
    const [lo, hi] = mustRange(r.length);
    if (p.length < lo || p.length > hi) return false;
  }
  return true;
}

/** The model's meaning: the verdict and the counter that should count the packet. */
function reference(fw: Firewall, opts: FirewallOptions, p: Packet): { verdict: string; counter: string } {
  let direction: 'ingress' | 'egress';
  if (p.iif === opts.uplink && opts.tunnels.includes(p.oif)) direction = 'ingress';
  else if (opts.tunnels.includes(p.iif) && p.oif === opts.uplink) direction = 'egress';
  else return { verdict: 'drop', counter: 'no_direction' };
  for (const r of fw.rules) {
    if (r.direction !== direction || !ruleMatches(r, p)) continue;
    // The interpreter never exceeds a rate, so a rate-limited packet is accepted.
    return { verdict: r.action === 'drop' ? 'drop' : 'accept', counter: `rule_${r.id}` };
  }
  return { verdict: fw.default[direction], counter: `default_${direction}` };
}

// ---------------------------------------------------------------------------------------------
// An interpreter of the subset of nft JSON the compiler emits.

interface Program {
  chains: Map<string, { policy?: string; rules: Json[][] }>;
  sets: Map<string, Json[]>;
  counters: Map<string, number>;
}

function load(batch: NftJson): Program {
  const prog: Program = { chains: new Map(), sets: new Map(), counters: new Map() };
  for (const cmd of batch.nftables) {
    if (!isObject(cmd.add)) continue;
    const [kind, obj] = Object.entries(cmd.add)[0] as [string, JsonObject];
    if (kind === 'chain') prog.chains.set(String(obj.name), { ...(typeof obj.policy === 'string' ? { policy: obj.policy } : {}), rules: [] });
    else if (kind === 'rule') prog.chains.get(String(obj.chain))!.rules.push(obj.expr as Json[]);
    else if (kind === 'set' || kind === 'map') prog.sets.set(String(obj.name), (obj.elem as Json[] | undefined) ?? []);
    else if (kind === 'counter') prog.counters.set(String(obj.name), 0);
  }
  return prog;
}

const ipNum = (s: string): bigint => {
  const r = parseIp(s);
  if (!r.ok) throw new Error(s);
  return r.value.value;
};

/** The value of a left-hand expression for packet p, or undefined when the field is absent. */
function field(e: Json, p: Packet): number | string | bigint | (string | number | bigint)[] | undefined {
  assert.ok(isObject(e), JSON.stringify(e));
  if (isObject(e.payload)) {
    const { protocol, field: f } = e.payload;
    if (protocol === 'ip' || protocol === 'ip6') {
      if (p.family !== (protocol === 'ip' ? 4 : 6)) return undefined;
      return ipNum(f === 'saddr' ? p.src : p.dst);
    }
    if (protocol === 'icmp' || protocol === 'icmpv6') {
      if (p.proto !== (protocol === 'icmp' ? 1 : 58)) return undefined;
      return f === 'type' ? p.icmpType : p.icmpCode;
    }
    if (PROTOCOLS[String(protocol)] !== p.proto) return undefined;
    if (f === 'flags') return p.flags;
    return f === 'sport' ? p.sport : p.dport;
  }
  if (isObject(e.meta)) {
    if (e.meta.key === 'l4proto') return p.proto;
    if (e.meta.key === 'length') return p.length;
    if (e.meta.key === 'iifname') return p.iif;
    if (e.meta.key === 'oifname') return p.oif;
  }
  if (Array.isArray(e['&'])) {
    const [l, mask] = e['&'] as [Json, number];
    const v = field(l, p);
    return v === undefined ? undefined : (v as number) & mask;
  }
  if (Array.isArray(e.concat)) {
    const parts = e.concat.map((x: Json) => field(x, p));
    return parts.some((x) => x === undefined) ? undefined : (parts as (string | number | bigint)[]);
  }
  throw new Error(`interpreter: unknown expression ${JSON.stringify(e)}`);
}

const num = (v: Json): number | bigint | string => (typeof v === 'string' && /[.:]/.test(v) ? ipNum(v) : (v as number | string));

/** Whether value v is element elem (single, prefix, range, concatenation). */
function elemHas(elem: Json, v: unknown): boolean {
  if (isObject(elem) && isObject(elem.prefix)) {
    const start = ipNum(String(elem.prefix.addr));
    const bits = String(elem.prefix.addr).includes(':') ? 128n : 32n;
    const size = 1n << (bits - BigInt(elem.prefix.len as number));
    return typeof v === 'bigint' && v >= start && v < start + size;
  }
  if (isObject(elem) && Array.isArray(elem.range)) {
    const [lo, hi] = elem.range.map((x: Json) => num(x)) as [number | bigint, number | bigint];
    return (v as number | bigint) >= lo && (v as number | bigint) <= hi;
  }
  if (isObject(elem) && Array.isArray(elem.concat)) return Array.isArray(v) && elem.concat.every((x: Json, i: number) => elemHas(x, v[i]));
  return num(elem) === v;
}

function lookup(prog: Program, data: Json): Json[] {
  if (typeof data === 'string' && data.startsWith('@')) return prog.sets.get(data.slice(1))!;
  if (isObject(data) && Array.isArray(data.set)) return [...data.set];
  return [data];
}

/** Runs chain `name`; returns a final verdict, or undefined when the chain ran out. */
function runChain(prog: Program, name: string, p: Packet, depth = 0): string | undefined {
  assert.ok(depth < 16, 'chain loop');
  for (const rule of prog.chains.get(name)!.rules) {
    let matched = true;
    let result: string | undefined | null = null; // null: rule went on to the next rule
    for (const s of rule) {
      assert.ok(isObject(s));
      if (isObject(s.match)) {
        const v = field(s.match.left as Json, p);
        if (v === undefined || !lookup(prog, s.match.right as Json).some((e) => elemHas(e, v))) {
          matched = false;
          break;
        }
      } else if ('counter' in s) prog.counters.set(String(s.counter), (prog.counters.get(String(s.counter)) ?? 0) + 1);
      else if ('limit' in s) {
        // Never over the rate here: `limit … over` does not match, so the rule stops.
        matched = false;
        break;
      } else if ('accept' in s || 'drop' in s) {
        result = 'accept' in s ? 'accept' : 'drop';
        break;
      } else if (isObject(s.jump) || isObject(s.goto)) {
        const target = String((isObject(s.jump) ? s.jump : (s.goto as JsonObject)).target);
        result = runChain(prog, target, p, depth + 1);
        // A goto does not come back: its end is the end of this chain too.
        if (result === undefined && isObject(s.goto)) return undefined;
        if (result === undefined) result = null;
        break;
      } else if (isObject(s.vmap)) {
        const v = field(s.vmap.key as Json, p);
        const hit = v === undefined ? undefined : lookup(prog, s.vmap.data as Json).find((e) => Array.isArray(e) && elemHas(e[0] as Json, v));
        if (!hit) {
          matched = false;
          break;
        }
        const verdict = (hit as Json[])[1] as JsonObject;
        const target = String(((verdict.jump ?? verdict.goto) as JsonObject).target);
        result = runChain(prog, target, p, depth + 1);
        if (result === undefined && isObject(verdict.goto)) return undefined;
        if (result === undefined) result = null;
        break;
      } else throw new Error(`interpreter: unknown statement ${JSON.stringify(s)}`);
    }
    if (matched && result !== null && result !== undefined) return result;
  }
  return undefined;
}

function interpret(prog: Program, p: Packet): string {
  return runChain(prog, 'forward', p) ?? prog.chains.get('forward')!.policy ?? 'accept';
}

// ---------------------------------------------------------------------------------------------

function randomPacket(r: () => number, opts: FirewallOptions): Packet {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const family = r() < 0.6 ? 4 : 6;
  const v4 = ['203.0.113.100', '203.0.113.10', '203.0.113.63', '203.0.113.64', '203.0.113.127', '203.0.113.128', '203.0.113.130', '192.0.2.1', '192.0.2.31', '192.0.2.32', '192.0.2.70', '198.51.100.7', '198.51.100.8', '198.51.100.9', '198.51.100.200'];
  const v6 = ['2001:db8:ac::1', '2001:db8:ac:1::5', '2001:db8:ad::1', '2001:db8:113::100', '2001:db8::1'];
  const addrs = family === 4 ? v4 : v6;
  const proto = pick([6, 6, 6, 17, 17, family === 4 ? 1 : 58, 47, 253, 132]);
  const ifs = [opts.uplink, ...opts.tunnels, 'other0'];
  const dirPick = r();
  const tunnel = pick(opts.tunnels.length ? opts.tunnels : ['other0']);
  const [iif, oif] = dirPick < 0.45 ? [opts.uplink, tunnel] : dirPick < 0.9 ? [tunnel, opts.uplink] : [pick(ifs), pick(ifs)];
  return {
    iif,
    oif,
    family,
    src: pick(addrs),
    dst: pick(addrs),
    proto,
    sport: PORT_PROTOS.has(proto) ? pick([20, 21, 22, 53, 80, 443, 1023, 1024, 5003, 5004, 8085, 40000]) : 0,
    dport: PORT_PROTOS.has(proto) ? pick([20, 21, 22, 53, 80, 443, 1023, 1024, 5003, 5004, 8085, 40000]) : 0,
    flags: Math.floor(r() * 256),
    icmpType: pick([0, 3, 8, 128, 129]),
    icmpCode: pick([0, 1]),
    length: pick([40, 60, 100, 101, 576, 1400, 1401, 9000]),
  };
}

function agree(fw: Firewall, opts: FirewallOptions, seed: number, n = 3000): void {
  const prog = load(compileFirewall('acme', fw, opts));
  const expected = new Map<string, number>([...prog.counters.keys()].map((k) => [k, 0]));
  const r = rng(seed);
  for (let i = 0; i < n; i++) {
    const p = randomPacket(r, opts);
    const want = reference(fw, opts, p);
    assert.equal(interpret(prog, p), want.verdict, `packet ${JSON.stringify(p)}`);
    expected.set(want.counter, (expected.get(want.counter) ?? 0) + 1);
  }
  // Every packet is counted exactly once, by the rule the model says decided it (rate-limited
  // packets also pass their rule's counter only; `over_*` stays 0 as nothing exceeds a rate here).
  assert.deepEqual(Object.fromEntries(prog.counters), Object.fromEntries(expected));
}

test('compiled chains decide like the rules read in order, and count like them (features fixture)', () => {
  const fx = loadFixture('features');
  agree(fx.firewall, fx.options, 1);
  // The same with inline sets only, and with every list a named set.
  agree(fx.firewall, { ...fx.options, namedSetMin: 1000 }, 2);
  agree(fx.firewall, { ...fx.options, namedSetMin: 1 }, 3);
});

test('compiled chains agree with the rules for the seed and for shadowing, interleaved rules', () => {
  agree(loadFixture('seed-ftp').firewall, loadFixture('seed-ftp').options, 4);
  // A protocol-less drop between two TCP accepts: order across protocol chains must hold.
  const fw = mustFirewall({
    default: { ingress: 'accept', egress: 'drop' },
    rules: [
      { id: 'a', direction: 'ingress', protocol: 'tcp', dport: [80], action: 'accept' },
      { id: 'b', direction: 'ingress', src: ['192.0.2.0/24', '2001:db8::/32'], action: 'drop' },
      { id: 'c', direction: 'ingress', protocol: 'tcp', dport: ['20-443'], action: 'accept' },
      { id: 'd', direction: 'ingress', protocol: 'udp', action: 'drop' },
      { id: 'e', direction: 'egress', protocol: 'tcp', tcpFlags: { set: ['ack'] }, action: 'accept' },
      { id: 'f', direction: 'egress', length: '0-100', action: 'accept' },
      { id: 'g', direction: 'egress', protocol: 'udp', sport: [53], action: 'rate-limit', rateLimit: { pps: 10 } },
    ],
  });
  agree(fw, OPTS, 5);
  agree(fw, { uplink: 'veth0', tunnels: [] }, 6, 500);
});

test('the seed rule compiles to ip daddr 203.0.113.100 tcp dport 20-21 accept, counted', () => {
  const fx = loadFixture('seed-ftp');
  const batch = compileFirewall(fx.tenant, fx.firewall, fx.options);
  const rules = batch.nftables.flatMap((c) => (isObject(c.add) && isObject(c.add.rule) && c.add.rule.comment === 'ftp' ? [c.add.rule] : []));
  assert.equal(rules.length, 1);
  assert.deepEqual(rules[0]!.expr, [
    { match: { op: '==', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '203.0.113.100' } },
    { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'dport' } }, right: { range: [20, 21] } } },
    { counter: 'rule_ftp' },
    { accept: null },
  ]);
  assert.match(formatNft(batch), /^\t\tip daddr 203\.0\.113\.100 tcp dport 20-21 counter name "rule_ftp" accept comment "ftp"$/m);
  assert.match(formatNft(batch), /^\t\tcounter name "default_ingress" drop$/m);
});

test('the batch replaces the table in one transaction and touches nothing else', () => {
  const batch = compileFirewall('acme', loadFixture('features').firewall, { ...OPTS, table: 'aefw_x' });
  const table = { family: 'inet', name: 'aefw_x' };
  assert.deepEqual(batch.nftables.slice(0, 4), [{ metainfo: { json_schema_version: 1 } }, { add: { table } }, { delete: { table } }, { add: { table } }]);
  for (const cmd of batch.nftables.slice(4)) {
    assert.deepEqual(Object.keys(cmd), ['add'], JSON.stringify(cmd));
    const obj = Object.values(cmd.add as JsonObject)[0] as JsonObject;
    assert.equal(obj.family, 'inet');
    assert.equal(obj.table, 'aefw_x');
  }
  // Objects come before what refers to them: chains and sets before rules, chains before the map.
  const kinds = batch.nftables.slice(4).map((c) => Object.keys(c.add as JsonObject)[0]);
  assert.ok(kinds.lastIndexOf('chain') < kinds.indexOf('map') && kinds.indexOf('map') < kinds.indexOf('rule'));
  assert.ok(kinds.lastIndexOf('set') < kinds.indexOf('rule') && kinds.lastIndexOf('counter') < kinds.indexOf('rule'));
});

test('output is deterministic: same input, same bytes; tunnel order does not matter', () => {
  const fx = loadFixture('features');
  const a = stringifyNft(compileFirewall('acme', fx.firewall, fx.options));
  const b = stringifyNft(compileFirewall('acme', structuredClone(fx.firewall), { ...fx.options, tunnels: [...fx.options.tunnels].reverse() }));
  assert.equal(a, b);
  // Spellings the model canonicalises, and set elements given in another order, change nothing.
  const one = mustFirewall({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'x', direction: 'ingress', dst: ['203.0.113.0/26', '203.0.113.64/26', '2001:DB8::1'], protocol: 'TCP', dport: [443, '20-21'], action: 'accept' }] });
  const two = mustFirewall({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'x', direction: 'ingress', dst: ['2001:db8:0::1', '203.0.113.64/26', '203.0.113.0/26'], protocol: 6, dport: ['20-21', 443], action: 'accept' }] });
  assert.equal(stringifyNft(compileFirewall('acme', one, OPTS)), stringifyNft(compileFirewall('acme', two, OPTS)));
  // Input is not modified.
  const frozen = structuredClone(fx.firewall);
  compileFirewall('acme', fx.firewall, fx.options);
  assert.deepEqual(fx.firewall, frozen);
});

test('sets: merged, split by family, named from the threshold on', () => {
  const fw = mustFirewall({
    default: { ingress: 'drop', egress: 'accept' },
    rules: [{ id: 'm', direction: 'ingress', src: ['192.0.2.0/25', '192.0.2.128/25', '192.0.2.5', '2001:db8::/33', '2001:db8:8000::/33', '198.51.100.1', '198.51.100.3'], protocol: 'udp', dport: [53, 54, 5353], action: 'accept' }],
  });
  const inline = formatNft(compileFirewall('acme', fw, OPTS));
  assert.match(inline, /ip saddr \{ 192\.0\.2\.0\/24, 198\.51\.100\.1, 198\.51\.100\.3 \} udp dport \{ 53-54, 5353 \} counter name "rule_m" accept/);
  assert.match(inline, /ip6 saddr 2001:db8::\/32 udp dport \{ 53-54, 5353 \} counter name "rule_m" accept/);
  const named = compileFirewall('acme', fw, { ...OPTS, namedSetMin: 2 });
  const sets = named.nftables.flatMap((c) => (isObject(c.add) && isObject(c.add.set) ? [c.add.set] : []));
  assert.deepEqual(
    sets.map((s) => [s.name, s.type, s.flags ?? null, s.elem]),
    [
      ['dport_m', 'inet_service', ['interval'], [{ range: [53, 54] }, 5353]],
      ['src4_m', 'ipv4_addr', ['interval'], [{ prefix: { addr: '192.0.2.0', len: 24 } }, '198.51.100.1', '198.51.100.3']],
    ],
  );
  // Host addresses only: a plain (hash) set, no interval flag.
  const hosts = compileFirewall('acme', mustFirewall({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'h', direction: 'ingress', dst: ['203.0.113.1', '203.0.113.3'], action: 'accept' }] }), { ...OPTS, namedSetMin: 2 });
  const hset = hosts.nftables.flatMap((c) => (isObject(c.add) && isObject(c.add.set) ? [c.add.set] : []));
  assert.deepEqual(hset, [{ family: 'inet', table: 'aefw', name: 'dst4_h', type: 'ipv4_addr', elem: ['203.0.113.1', '203.0.113.3'] }]);
});

test('merged address runs that are not a prefix become ranges', () => {
  const fw = mustFirewall({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'r', direction: 'ingress', dst: ['203.0.113.2/31', '203.0.113.4/30'], action: 'accept' }] });
  assert.match(formatNft(compileFirewall('acme', fw, OPTS)), /ip daddr 203\.0\.113\.2-203\.0\.113\.7 counter name "rule_r" accept/);
});

test('rate limits: pps with burst, bps in bytes rounded down but never 0', () => {
  const mk = (rateLimit: object) =>
    compileFirewall('acme', mustFirewall({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'rl', direction: 'ingress', action: 'rate-limit', rateLimit }] }), OPTS);
  const limits = (b: NftJson) => b.nftables.flatMap((c) => (isObject(c.add) && isObject(c.add.rule) ? (c.add.rule.expr as JsonObject[]).filter((e) => 'limit' in e).map((e) => e.limit) : []));
  assert.deepEqual(limits(mk({ pps: 100, burst: 20 })), [{ rate: 100, per: 'second', burst: 20, inv: true }]);
  assert.deepEqual(limits(mk({ bps: 1_000_001 })), [{ rate: 125_000, rate_unit: 'bytes', per: 'second', inv: true }]);
  assert.deepEqual(limits(mk({ bps: 7, burst: 1500 })), [{ rate: 1, rate_unit: 'bytes', per: 'second', burst: 1500, burst_unit: 'bytes', inv: true }]);
  assert.match(formatNft(mk({ pps: 100 })), /chain rate_rl \{\n\t\tlimit rate over 100\/second counter name "over_rl" drop comment "rl"\n\t\taccept comment "rl"\n\t\}/);
});

test('stateful option adds conntrack shortcuts before the dispatch; stateless has no ct at all', () => {
  const fw = loadFixture('seed-ftp').firewall;
  const has = (b: NftJson) => stringifyNft(b).includes('"ct"');
  assert.equal(has(compileFirewall('acme', fw, OPTS)), false);
  const text = formatNft(compileFirewall('acme', fw, { ...OPTS, stateful: true }));
  assert.match(text, /policy drop;\n\t\tct state established,related counter name "ct_established" accept\n\t\tct state invalid counter name "ct_invalid" drop\n\t\tiifname \. oifname vmap @directions/);
});

test('hostile strings: the model refuses them as ids; descriptions never reach the batch', () => {
  const hostile = 'x"; flush ruleset';
  const refused = firewallSchema.safeParse({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: hostile, direction: 'ingress', action: 'accept' }] });
  assert.equal(refused.success, false);
  const fw = mustFirewall({ default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'ok', description: `${hostile} # }\\ $(reboot)`, direction: 'ingress', action: 'accept' }] });
  const json = stringifyNft(compileFirewall('acme', fw, OPTS));
  assert.ok(!json.includes('flush') && !json.includes('reboot'), 'the description is not in the batch');
  assert.ok(!formatNft(compileFirewall('acme', fw, OPTS)).includes('flush'));
  // The compiler does not trust its caller either: unvalidated values are refused, not emitted.
  const raw = { default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: hostile, direction: 'ingress', action: 'accept' }] } as unknown as Firewall;
  assert.throws(() => compileFirewall('acme', raw, OPTS), /invalid rule id/);
  assert.throws(() => compileFirewall('acme', fw, { ...OPTS, uplink: hostile }), /invalid uplink/);
  assert.throws(() => compileFirewall('acme', fw, { ...OPTS, tunnels: ['gre1', 'a b'] }), /invalid tunnel/);
  assert.throws(() => compileFirewall('acme', fw, { ...OPTS, tunnels: ['veth0'] }), /same as the uplink/);
  assert.throws(() => compileFirewall('acme', fw, { ...OPTS, table: 'x"; flush ruleset' }), /invalid table/);
  assert.throws(() => compileFirewall(hostile, fw, OPTS), /invalid tenant id/);
  assert.throws(() => compileFirewall('acme', fw, { ...OPTS, namedSetMin: 0 }), /namedSetMin/);
});

test('formatNft quotes any string that is not a plain token', () => {
  const batch: NftJson = {
    nftables: [
      { add: { table: { family: 'inet', name: 'aefw' } } },
      { add: { chain: { family: 'inet', table: 'aefw', name: 'c' } } },
      { add: { rule: { family: 'inet', table: 'aefw', chain: 'c', expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'x"; flush ruleset' } }, { accept: null }], comment: 'a"b' } } },
      { flush: { ruleset: null } },
    ],
  };
  const text = formatNft(batch);
  assert.match(text, /# adds to table inet aefw/);
  assert.ok(text.includes('iifname "x\\"; flush ruleset" accept comment "a\\"b"'), text);
  assert.match(text, /^# flush \{"ruleset":null\}$/m, 'a command the view has no place for is shown as a comment');
});

test('a firewall with no rules and no tunnels: defaults only, empty direction map', () => {
  const batch = compileFirewall('gamma', mustFirewall({ default: { ingress: 'accept', egress: 'accept' } }), { uplink: 'veth0', tunnels: [] });
  const map = batch.nftables.flatMap((c) => (isObject(c.add) && isObject(c.add.map) ? [c.add.map] : []));
  assert.deepEqual(map, [{ family: 'inet', table: 'aefw', name: 'directions', type: ['ifname', 'ifname'], map: 'verdict' }]);
  const prog = load(batch);
  const p: Packet = { iif: 'veth0', oif: 'gre1', family: 4, src: '192.0.2.1', dst: '203.0.113.1', proto: 6, sport: 1, dport: 2, flags: 2, icmpType: 0, icmpCode: 0, length: 60 };
  assert.equal(interpret(prog, p), 'drop');
  assert.equal(prog.counters.get('no_direction'), 1);
});
