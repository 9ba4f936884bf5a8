/**
 * The topology plan: golden text for 2×2 (every object, every BIRD config, the config document)
 * and the addressing of the largest sizes the issue asks for; names within Linux's limits; every
 * address inside the documentation ranges and unique; the config document valid; bad sizes
 * refused naming the flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { checkGolden } from '../testkit/golden.ts';
import { parseConfig } from '../model/config.ts';
import { formatIssue } from '../model/issue.ts';
import { parseCidr, cidrContains, mustCidr } from '../model/net.ts';
import { FABRIC_MTU, planLab, STEER_ENCAP_BYTES, type LabPlan } from './topology.ts';
import { formatBird, formatPlan } from './format.ts';
import { checkLabId } from './names.ts';

const golden = (name: string): string => fileURLToPath(new URL(`testdata/${name}`, import.meta.url));

function must(id: string, dcs: number, servers: number, cities: number): LabPlan {
  const p = planLab(id, { dcs, servers, cities });
  if (!p.ok) assert.fail(`${p.error.path}: ${p.error.message}`);
  return p.value;
}

test('2 DCs × 2 servers: the plan, the BIRD configs and the config document match their golden files', () => {
  const p = must('t1', 2, 2, 2);
  checkGolden(golden('lab-2x2.golden.txt'), formatPlan(p));
  checkGolden(golden('lab-2x2-bird.golden.conf'), formatBird(p));
  checkGolden(golden('lab-2x2-config.golden.yaml'), stringify(p.config));
});

test('4 DCs × 8 servers with 4 cities fits 192.0.2.0/24 (golden plan)', () => {
  checkGolden(golden('lab-4x8.golden.txt'), formatPlan(must('t2', 4, 8, 4)));
});

test('the steering path: every server uplink\'s bridge end runs xdp_pass, and every link and bridge a forwarded packet crosses carries 1500 bytes plus GUE; the eyeballs and the exchange stay at 1500', () => {
  const p = must('t3', 3, 3, 3);
  assert.equal(FABRIC_MTU, 1500 + STEER_ENCAP_BYTES);
  const servers = new Set(p.nodes.filter((n) => n.role === 'server').map((n) => n.name));
  const uplinks = p.links.filter((l) => servers.has(l.a.node));
  assert.equal(uplinks.length, 9);
  for (const l of uplinks) {
    assert.deepEqual([l.a.dev, l.a.mtu, l.a.xdpPass], ['eth0', FABRIC_MTU, undefined], `${l.a.node}:${l.a.dev}`);
    assert.deepEqual([l.b.master, l.b.mtu, l.b.xdpPass], ['lan0', FABRIC_MTU, true], `${l.b.node}:${l.b.dev}`);
  }
  // Only those ends: nothing else in the lab sends by XDP_TX into a veth.
  assert.equal(p.links.flatMap((l) => [l.a, l.b]).filter((e) => e.xdpPass).length, 9);
  for (const l of p.links.filter((x) => x.a.dev === 'bb0')) assert.deepEqual([l.a.mtu, l.b.mtu], [FABRIC_MTU, FABRIC_MTU], l.a.node);
  for (const b of p.bridges) assert.equal(b.mtu, b.node === 'ix' ? undefined : FABRIC_MTU, `${b.node}:${b.dev}`);
  for (const l of p.links.filter((x) => x.a.dev === 'ix0' || (x.b.dev === 'eth0' && !servers.has(x.a.node) && !servers.has(x.b.node))))
    assert.deepEqual([l.a.mtu, l.b.mtu], [undefined, undefined], `${l.a.node}:${l.a.dev}`);
  for (const s of servers) assert.ok(p.sysctls.some((x) => x.node === s && x.key === 'net.ipv4.conf.all.accept_local' && x.value === '1'), `${s}: accept_local`);
});

const DOC_RANGES = ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'].map(mustCidr);

for (const [dcs, servers, cities] of [[1, 1, 2], [2, 2, 2], [3, 3, 3], [4, 8, 4], [8, 4, 8], [3, 12, 8]] as const) {
  test(`${dcs}×${servers} with ${cities} cities: names fit, addresses are documentation addresses and unique, the config is valid`, () => {
    const p = must('zz', dcs, servers, cities);
    for (const n of p.nodes) {
      assert.ok(n.ns.length <= 15, `${n.ns} is longer than 15 characters`);
      assert.ok(n.ns.startsWith('aelzz-'), n.ns);
    }
    for (const a of p.agents) {
      assert.match(a.prefix, /^aelzz[0-9a-z]$/);
      assert.ok(!p.nodes.some((n) => n.ns.startsWith(a.prefix)), `agent prefix ${a.prefix} would own a lab node`);
    }
    assert.equal(new Set(p.agents.map((a) => a.prefix)).size, p.agents.length);
    const seen = new Map<string, string>();
    const addrs = [...p.links.flatMap((l) => [l.a, l.b]), ...p.bridges].flatMap((e) => e.addrs.map((a) => ({ a, where: `${e.node}:${e.dev}` })));
    for (const { a, where } of addrs) {
      const c = parseCidr(a.split('/')[0] as string, { bareIp: true });
      assert.ok(c.ok && DOC_RANGES.some((r) => cidrContains(r, c.value)), `${where} ${a} is outside the documentation ranges`);
      const ip = a.split('/')[0] as string;
      // Only the customers' LANs repeat nothing either: each tenant has its own half.
      assert.ok(!seen.has(ip), `${ip} on ${where} and ${seen.get(ip)}`);
      seen.set(ip, where);
      assert.ok(!cidrContains(mustCidr('192.0.2.248/29'), mustCidr(`${ip}/32`)), `${where} ${a} is in the reserved 192.0.2.248/29`);
    }
    const c = parseConfig(p.config);
    if (!c.ok) assert.fail(c.error.map(formatIssue).join('\n'));
    assert.equal(Object.keys(c.value.dcs).length, dcs);
    for (const dc of Object.values(c.value.dcs)) assert.equal(Object.keys(dc.servers).length, servers);
    // Every city prefers a DC, and the first min(dcs, cities) cities prefer different ones.
    const firsts = p.cities.slice(0, Math.min(dcs, cities)).map((x) => x.prefers[0]);
    assert.equal(new Set(firsts).size, firsts.length);
  });
}

test('bad sizes and ids are refused, naming the flag and the range', () => {
  const cases: Array<[Parameters<typeof planLab>[1], string, RegExp]> = [
    [{ dcs: 0, servers: 2, cities: 2 }, 'dcs', /from 1 to 8/],
    [{ dcs: 9, servers: 2, cities: 2 }, 'dcs', /from 1 to 8/],
    [{ dcs: 2, servers: 1.5, cities: 2 }, 'servers', /whole number/],
    [{ dcs: 2, servers: 2, cities: 1 }, 'cities', /from 2 to 8/],
    [{ dcs: 4, servers: 10, cities: 2 }, 'servers', /at most 36/],
  ];
  for (const [size, path, message] of cases) {
    const p = planLab('t1', size);
    assert.ok(!p.ok, JSON.stringify(size));
    assert.equal(p.error.path, path);
    assert.match(p.error.message, message);
  }
  for (const id of ['', 'a', 'abc', 'A1', 'a-']) {
    const r = checkLabId(id);
    assert.ok(!r.ok, id);
    assert.equal(r.error.path, 'id');
  }
  assert.ok(checkLabId('a0').ok);
});
