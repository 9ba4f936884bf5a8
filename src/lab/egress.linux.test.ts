/**
 * The lab for soft-unicast egress on the real kernel: `lab up` at 2 DCs × 2 servers (LMDB store),
 * then
 * - the backbone: every server reaches every server of the other DC over the DC routers'
 *   backbone LAN (ping, and the backbone bridge's ports count the packets), which is the path the
 *   XDP steering takes to forward a reply to its owner in another DC;
 * - the Internet host: BGP sessions with every DC, the anycast and egress ranges learned and
 *   routed to the first DC (the others prepend), and its HTTP service answers every server with
 *   that server's own address (the DCs announce their server LANs as unicast);
 * - the geofeed `lab up` writes for the proxies gives each eyeball its city's country.
 * A unique lab id per run; `lab down` also runs in `after`, so a failure leaves nothing behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { main } from '../cli/main.ts';
import type { Io } from '../cli/io.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { routes } from '../kernel/labnet.ts';
import { GeoTable, parseGeofeed } from '../proxy/geoip.ts';
import { bgpSessions } from './bgp.ts';
import { labDown } from './down.ts';
import { devPackets, inNode, whoami } from './egress-harness.ts';
import { labPrefix, nodeNs } from './names.ts';
import { labDir } from './state.ts';
import { planLab, type LabPlan } from './topology.ts';
import { geofeedPath, requiredTools } from './up.ts';

// Two base-36 characters from the pid, offset from lab.linux.test.ts's choice so the two files
// can run at once.
const id = ((process.pid + 611) % 1296).toString(36).padStart(2, '0');
const prefix = labPrefix(id);
let runDir: string | null = null;
let plan: LabPlan | null = null;

function capture(): Io & { text(): string; errors(): string } {
  let out = '';
  let errs = '';
  return { out: (t) => void (out += t), err: (t) => void (errs += t), text: () => out, errors: () => errs };
}

async function cli(sub: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await main(['node', 'anyedge', 'lab', sub, '--id', id, '--run-dir', runDir as string, ...args], io);
  return { code, out: io.text(), err: io.errors() };
}

let upError: string | null = null;

before(async () => {
  if (!(process.getuid?.() === 0) || missingObjects().length) return;
  runDir = await mkdtemp(join(tmpdir(), 'anyedge-egress-'));
  const p = planLab(id, { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) throw new Error(p.error.message);
  plan = p.value;
  const up = await cli('up', '--dcs', '2', '--servers', '2', '--store', 'lmdb', '--timeout', '90');
  if (up.code !== 0) upError = `lab up failed:\n${up.err}\n${up.out}`;
});

after(async () => {
  if (runDir) {
    await labDown({ id, runDir });
    await rm(runDir, { recursive: true, force: true });
  }
});

/** The lab, once `before` brought it up; fails the test with lab up's output otherwise. */
function lab(t: Parameters<typeof needs>[0]): LabPlan | null {
  if (!needs(t, { root: true, tools: [...requiredTools('lmdb'), 'tshark', 'ss'] })) return null;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.equal(upError, null, upError ?? '');
  assert.ok(plan, 'no plan');
  return plan;
}

test('backbone: every server reaches every server of the other DC through the DC routers\' backbone LAN', async (t) => {
  const p = lab(t);
  if (!p) return;
  const [a, b] = p.dcs as [LabPlan['dcs'][number], LabPlan['dcs'][number]];
  const before = { a: await devPackets(p, 'bb', a.id), b: await devPackets(p, 'bb', b.id) };
  let pings = 0;
  for (const [from, to] of [[a, b], [b, a]] as const)
    for (const s of from.servers)
      for (const d of to.servers) {
        const target = d.address.split('/')[0] as string;
        await inNode(p, s.node, ['ping', '-c', '1', '-W', '2', target]);
        pings++;
        // The DC router's route to the other DC's servers goes over the backbone.
        const r = await inNode(p, from.router, ['ip', '-j', 'route', 'get', target]);
        const [route] = JSON.parse(r.stdout) as Array<{ dev: string; gateway: string }>;
        assert.deepEqual([route?.dev, route?.gateway], ['bb0', to.backboneIp], `${from.router} → ${target}`);
      }
  const now = { a: await devPackets(p, 'bb', a.id), b: await devPackets(p, 'bb', b.id) };
  // Each ping is a request and a reply, each crossing both DCs' ports of the backbone bridge.
  for (const k of ['a', 'b'] as const) {
    assert.ok(now[k].rx - before[k].rx >= pings, `backbone port ${k}: ${JSON.stringify({ before: before[k], now: now[k] })}`);
    assert.ok(now[k].tx - before[k].tx >= pings, `backbone port ${k}: ${JSON.stringify({ before: before[k], now: now[k] })}`);
  }
});

test('the Internet host: BGP with every DC, the egress and anycast ranges routed to the first DC, HTTP answers each server with its own address', async (t) => {
  const p = lab(t);
  if (!p) return;
  const dir = labDir(runDir as string, prefix);
  const sessions = await bgpSessions(dir, p.internet.node);
  assert.ok(sessions.ok, sessions.ok ? '' : sessions.error.message);
  assert.deepEqual(sessions.value.map((s) => [s.neighbor, s.established]), p.dcs.map((d) => [d.id, true]));
  const r = await routes(nodeNs(prefix, p.internet.node));
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const via = (dst: string): unknown => r.value.find((x) => x.dst === dst)?.gateway;
  for (const range of ['198.51.100.64/26', '198.51.100.0/28']) assert.equal(via(range), p.dcs[0]?.ixIp, `${range}: ${JSON.stringify(r.value)}`);
  for (const dc of p.dcs) assert.equal(via(dc.lan), dc.ixIp, `${dc.id}'s servers are reached through ${dc.id}`);
  for (const dc of p.dcs)
    for (const s of dc.servers) {
      const seen = await whoami(p, s.node, `/from-${s.node}`);
      assert.equal(seen.peer, s.address.split('/')[0], `${s.node}: ${JSON.stringify(seen)}`);
      assert.equal(seen.path, `/from-${s.node}`);
    }
  const log = readFileSync(join(dir, 'logs', 'internet.log'), 'utf8');
  for (const dc of p.dcs) for (const s of dc.servers) assert.ok(log.includes(`"path":"/from-${s.node}"`), `the Internet host logged ${s.node}'s request`);
});

test('the geofeed lab up writes gives each eyeball its city\'s country (lon GB, nyc US) and nothing else', async (t) => {
  const p = lab(t);
  if (!p) return;
  const text = readFileSync(geofeedPath(labDir(runDir as string, prefix)), 'utf8');
  const rows = parseGeofeed(text, 'geofeed.csv');
  assert.ok(rows.ok, rows.ok ? '' : rows.error.map((e) => e.message).join('\n'));
  const table = new GeoTable(rows.value, null);
  const country = (ip: string): string | null => {
    const r = table.lookup(ip);
    return r.ok ? r.value.country : null;
  };
  assert.deepEqual(p.cities.map((c) => [c.id, country(c.eyeballIp)]), [['lon', 'GB'], ['nyc', 'US']]);
  assert.ok(!table.lookup(p.internet.ip).ok);
});
