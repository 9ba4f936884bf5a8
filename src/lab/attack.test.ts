/**
 * `lab attack` without a lab: the hping3 command line (bounded by count and time, the eyeball's
 * own address), its statistics, the mitigation rules (accepted by the model's DoS schema, as
 * the API will), the choice of attacker and legitimate client, and the verdict's thresholds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dosRuleSchema } from '../model/dos.ts';
import { floodArgv, parseHpingStats, UDP_SIGNATURE } from './attack-flood.ts';
import { installMitigation, MITIGATION_TTL_MS, mitigationRule, removeMitigation } from './attack-mitigation.ts';
import { tenantSchema } from '../model/tenant.ts';
import { chooseNodes } from './attack.ts';
import { judge } from './attack-report.ts';
import { attackDelta, attackTotals, type ServerAttackCounters } from './attack-evidence.ts';
import type { LegitResult } from './attack-client.ts';
import { planLab } from './topology.ts';

test('floodArgv: hping3 bounded by -c and by timeout, paced by -i, never a random source', () => {
  const syn = floodArgv({ kind: 'syn', ns: 'aelx1-nyc-e1', target: '203.0.113.100', port: 21, count: 50_000, intervalUs: 100, seconds: 5 });
  assert.deepEqual(syn, ['ip', 'netns', 'exec', 'aelx1-nyc-e1', 'timeout', '-s', 'INT', '5', 'hping3', '-q', '-S', '-p', '21', '-c', '50000', '-i', 'u100', '203.0.113.100']);
  const udp = floodArgv({ kind: 'udp', ns: 'n', target: '203.0.113.100', port: 53, count: 10, intervalUs: 1, seconds: 1, payloadFile: '/tmp/p' });
  assert.deepEqual(udp.slice(9, 15), ['-q', '--udp', '-d', String(UDP_SIGNATURE.length), '-E', '/tmp/p']);
  for (const a of [syn, udp]) {
    assert.ok(!a.includes('--flood'), '--flood ignores -c');
    assert.ok(!a.some((x) => x.includes('rand')), 'no random sources');
  }
  assert.ok(UDP_SIGNATURE.length <= 16, 'an XDP rule compares at most 16 payload bytes');
});

test('parseHpingStats reads the closing statistics, null without them', () => {
  const text = 'HPING 203.0.113.100 (eth0 203.0.113.100): S set, 40 headers + 0 data bytes\n\n--- 203.0.113.100 hping statistic ---\n34573 packets transmitted, 12 packets received, 100% packet loss\nround-trip min/avg/max = 0.0/0.0/0.0 ms\n';
  assert.deepEqual(parseHpingStats(text), { transmitted: 34573, received: 12 });
  assert.equal(parseHpingStats('hping3: command not found'), null);
});

test('mitigation rules pass the model\'s DoS rule schema, expire, and match only the flood', () => {
  const now = new Date('2030-01-01T00:00:00Z');
  const t = { tenant: 'acme', host: '203.0.113.100', port: 53 };
  const udp = dosRuleSchema.safeParse(mitigationRule('udp', t, now));
  assert.ok(udp.success, JSON.stringify(udp.error?.issues));
  assert.equal(udp.data.action, 'drop');
  assert.equal(udp.data.match.payload?.bytes, Buffer.from('ANYEDGE-LABFLOOD').toString('hex'));
  assert.equal(udp.data.expires, new Date(now.getTime() + MITIGATION_TTL_MS).toISOString());
  const syn = dosRuleSchema.safeParse(mitigationRule('syn', { ...t, port: 21 }, now));
  assert.ok(syn.success, JSON.stringify(syn.error?.issues));
  assert.equal(syn.data.action, 'rate-limit');
  assert.deepEqual(syn.data.match.tcpFlags, { set: ['syn'], unset: ['ack'] });
  assert.deepEqual(syn.data.rateLimit?.prefixLength, { ipv4: 32, ipv6: 128 }, 'per source address: the eyeballs share 192.0.2.0/24');
  assert.equal(syn.data.scope.tenant, 'acme');
});

test('chooseNodes: the attacker lands in the legitimate client\'s DC when a city does; bad eyeballs name the flag', () => {
  const p = planLab('x1', { dcs: 2, servers: 2, cities: 3 });
  assert.ok(p.ok);
  const n = chooseNodes(p.value, {});
  assert.ok(n.ok);
  assert.equal(n.value.site.hostIp, '203.0.113.100');
  assert.equal(n.value.legit.eyeball, 'lon-e1');
  assert.equal(n.value.attacker.eyeball, 'ber-e1', 'ber lands in ams like lon');
  assert.equal(n.value.attacker.prefers[0], n.value.legit.prefers[0]);
  const picked = chooseNodes(p.value, { from: 'nyc-e1', legit: 'ber' });
  assert.ok(picked.ok);
  assert.equal(picked.value.attacker.eyeball, 'nyc-e1');
  assert.equal(picked.value.legit.eyeball, 'ber-e1');
  const bad = chooseNodes(p.value, { from: 'ams-s1' });
  assert.ok(!bad.ok);
  assert.equal(bad.error.path, 'from');
  assert.match(bad.error.message, /--from ams-s1: not an eyeball .* lon-e1, nyc-e1, ber-e1/);
  const same = chooseNodes(p.value, { from: 'lon-e1' });
  assert.ok(!same.ok);
  assert.match(same.error.message, /also the legitimate client/);
  const two = planLab('x1', { dcs: 2, servers: 2, cities: 2 });
  assert.ok(two.ok);
  const other = chooseNodes(two.value, {});
  assert.ok(other.ok);
  assert.equal(other.value.attacker.eyeball, 'nyc-e1', 'no city shares lon\'s DC: the next one');
});

function client(echoed: number, attempted: number, survived = true): LegitResult {
  return {
    short: { attempted, echoed, failures: attempted > echoed ? { timeout: attempted - echoed } : {}, p50Ms: 2, p99Ms: 5, maxMs: 9 },
    long: { connected: true, sent: 100, echoed: survived ? 100 : 40, survived, maxRttMs: 3, ...(survived ? {} : { error: 'ECONNRESET' }) },
    seconds: 12,
  };
}

test('judge: 99 % of new connections, the long connection, 90 % of the flood in XDP', () => {
  const flood = { kind: 'udp' as const, transmitted: 1000, received: 0, seconds: 1, pps: 1000 };
  const totals = (drops: number, answered = 0, forwarded = 0) => ({ xdpPackets: drops + answered + forwarded + 50, xdpDrops: drops, xdpTx: answered + forwarded, synAnswered: answered, forwarded, edge: {}, dropsByServer: {}, rule: { packets: drops, dropped: drops } });
  assert.deepEqual(judge(flood, client(99, 100), totals(950)).problems, []);
  assert.ok(judge(flood, client(99, 100), totals(400, 500)).ok, 'cookie SYN-ACKs count as stopped in XDP');
  // Steering's forwards are XDP_TX too, but the flood goes on to another server: not stopped.
  assert.match(judge(flood, client(99, 100), totals(400, 0, 600)).problems[0]!, /XDP stopped 400 of the 1000/);
  const low = judge(flood, client(98, 100), totals(950));
  assert.ok(!low.ok);
  assert.match(low.problems[0]!, /legitimate success rate 98.0 % is below 99.0 %: 98\/100 echoed/);
  assert.match(judge(flood, client(100, 100, false), totals(950)).problems[0]!, /long connection did not survive: ECONNRESET/);
  assert.match(judge(flood, client(100, 100), totals(899)).problems[0]!, /XDP stopped 899 of the 1000 flood packets .* below 90.0 %/);
  assert.match(judge({ ...flood, transmitted: 0 }, client(100, 100), totals(0)).problems[0]!, /hping3 sent nothing/);
  assert.match(judge(flood, client(0, 0), totals(950)).problems[0]!, /opened no connection/);
  assert.ok(judge(flood, client(100, 100), totals(0), false).ok, 'synproxy acts in the tenant namespace: no XDP goal');
});

/** A stand-in for the lab's API: answers the calls installMitigation/removeMitigation make and records them. */
function fakeApi(tenant: Record<string, unknown>) {
  const calls: Array<{ method: string; path: string; body?: unknown }> = [];
  let revision = 10;
  const api = {
    url: 'http://fake',
    async call(method: string, path: string, body?: unknown) {
      calls.push({ method, path, ...(body !== undefined ? { body } : {}) });
      if (path === '/v1/servers') return { status: 200, body: { items: [{ dc: 'ams', server: 's1', status: { appliedRevision: revision } }] } };
      if (method === 'GET' && path === '/v1/tenants/acme') return { status: 200, body: { id: 'acme', revision: 3, ...tenant } };
      if (method === 'DELETE' && path === '/v1/dos/rules/gone') return { status: 404, body: { error: 'not found' } };
      revision++;
      return { status: 200, body: { ...(body as object), revision } };
    },
    async close() {},
  };
  return { api, calls };
}

test('installMitigation: a DoS rule for UDP and rate-limit, the tenant\'s synFlood for xdp/synproxy; undo restores what was there', async () => {
  const t = { tenant: 'acme', host: '203.0.113.100', port: 21 };
  const now = new Date('2030-01-01T00:00:00Z');
  const tenant = { name: 'Acme', status: 'active' };

  const udp = fakeApi(tenant);
  const u = await installMitigation(udp.api, 'udp', { ...t, port: 53 }, now);
  assert.ok(u.ok);
  assert.equal(u.value.kind, 'drop-rule');
  assert.equal(u.value.revision, 11);
  assert.deepEqual(udp.calls.map((c) => `${c.method} ${c.path}`), ['PUT /v1/dos/rules/lab-attack-udp', 'GET /v1/servers']);
  assert.ok((await removeMitigation(udp.api, u.value)).ok);
  assert.equal(udp.calls.at(-2)?.method, 'DELETE');
  assert.ok((await removeMitigation(udp.api, { undo: { kind: 'delete-rule', ruleId: 'gone' } })).ok, 'already gone is success');

  const syn = fakeApi(tenant);
  const s = await installMitigation(syn.api, 'syn', t, now, 'xdp');
  assert.ok(s.ok);
  assert.equal(s.value.kind, 'syn-xdp');
  assert.equal(s.value.inXdp, true);
  const put = syn.calls.find((c) => c.method === 'PUT');
  assert.deepEqual(put?.body, { name: 'Acme', status: 'active', synFlood: { protection: 'xdp', mss: 1400 } }, 'the tenant as it was, id and revision left out, plus synFlood');
  assert.ok(tenantSchema.safeParse(put?.body).success, 'the body passes the tenant schema');
  assert.ok((await removeMitigation(syn.api, s.value)).ok);
  assert.deepEqual(syn.calls.filter((c) => c.method === 'PUT').at(-1)?.body, tenant, 'undo puts the tenant back without synFlood');

  const proxy = fakeApi(tenant);
  const p = await installMitigation(proxy.api, 'syn', t, now, 'synproxy');
  assert.ok(p.ok);
  assert.equal(p.value.inXdp, false);

  const rl = fakeApi(tenant);
  const r = await installMitigation(rl.api, 'syn', t, now, 'rate-limit');
  assert.ok(r.ok);
  assert.equal(r.value.kind, 'rate-limit');
  assert.equal(rl.calls[0]?.path, '/v1/dos/rules/lab-attack-syn');

  const refused = fakeApi(tenant);
  refused.api.call = async () => ({ status: 400, body: { error: 'bad' } });
  const bad = await installMitigation(refused.api, 'udp', t, now);
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /the API refused the mitigation \(400\)/);
});

test('attackDelta and attackTotals: what moved per server, summed; unmoved edge counters left out', () => {
  const at = (node: string, drops: number, tx: number, decap: number, rule: number): ServerAttackCounters => ({
    node, dc: node.slice(0, 3), xdp: { packets: drops + tx + 10, drops, tx, redirects: 0 }, edge: { gre_decap: decap, gre_no_tunnel: 1 }, rule: { packets: rule, dropped: rule }, synAnswered: tx, forwarded: 2 * decap,
  });
  const before = [at('ams-s1', 5, 0, 100, 0), at('ams-s2', 0, 0, 50, 0)];
  const after = [at('ams-s1', 1005, 3, 110, 1000), at('ams-s2', 700, 0, 50, 698)];
  const d = attackDelta(before, after);
  assert.deepEqual(d[0], { node: 'ams-s1', dc: 'ams', xdp: { packets: 1003, drops: 1000, tx: 3, redirects: 0 }, edge: { gre_decap: 10 }, rule: { packets: 1000, dropped: 1000 }, synAnswered: 3, forwarded: 20 });
  const t = attackTotals(d);
  assert.deepEqual(t, { xdpPackets: 1703, xdpDrops: 1700, xdpTx: 3, synAnswered: 3, forwarded: 20, edge: { gre_decap: 10 }, dropsByServer: { 'ams-s1': 1000, 'ams-s2': 700 }, rule: { packets: 1698, dropped: 1698 } });
});
