/**
 * The agent's metrics on the real kernel: a server namespace provisioned with Acme by the real
 * reconciler and eBPF programs (metrics-lab.ts), KNOWN traffic from real tools, and /metrics
 * scraped over HTTP on loopback before and after. Every kernel counter must have moved by exactly
 * what the traffic implies, and every other kernel counter series not at all:
 *
 * - PINGS echo requests from the eyeball to Acme's host (84-byte IP packets): the `ping` rule
 *   (rate-limited, under its rate), encapsulated into Acme's tunnel; the replies come back as
 *   GRE, are decapsulated and leave by the egress default (accept).
 * - SYNS TCP SYNs (hping3: 40 bytes, no options) to port 20, which the `ftp` rule accepts; the
 *   host answers each with a RST (40 bytes) the same way back.
 * - DROPPED TCP SYNs to port 22: the ingress default (drop); nothing reaches the tunnel.
 * - UNKNOWN_KEY GRE packets to the anycast endpoint with a key no tunnel has, and UNSUPPORTED
 *   ones carrying Ethernet, sent raw from the customer router: dropped by XDP, counted by reason.
 *
 * Then one real TCP connection shows the MSS clamp counter moving by exactly its one SYN.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { marksWith } from '../kernel/index.ts';
import type { EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { buildFrame } from '../wire/build.ts';
import type { ServerStatus } from '../model/status.ts';
import { AgentMetrics, KERNEL_COUNTERS } from './metrics.ts';
import type { MetricsServer } from './metrics-http.ts';
import { ACME_HOST, ACME_ROUTER, buildAcmeLab, destroyAcmeLab, ENDPOINT, type AcmeLab } from './metrics-lab.ts';

const lab = new NetLab('M');
// Not a prefix of the lab's namespace names (`aeM…`); `m` is used by no other test.
const marks = marksWith({ prefix: `m${(process.pid % 10000).toString(36)}s` });
const edges: EdgePins[] = [];
let setupError: Error | null = null;
let acme: AcmeLab | null = null;
let metrics: AgentMetrics | null = null;
let server: MetricsServer | null = null;

const PINGS = 3;
const SYNS = 5;
const DROPPED = 4;
const UNKNOWN_KEY = 6;
const UNSUPPORTED = 2;
const PING_BYTES = 84; // 20 IP + 8 ICMP + 56 data
const SYN_BYTES = 40; // 20 IP + 20 TCP, no options
const RST_BYTES = 40;

const NOW = new Date().toISOString();
const status: ServerStatus = {
  appliedRevision: 7,
  seenRevision: 7,
  store: { connected: true, since: NOW },
  tunnels: [{ tenant: 'acme', tunnel: 'gre1', state: 'up', since: NOW }],
  startedAt: NOW,
  updatedAt: NOW,
  version: 'test',
};

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || !hasTool('tc') || !hasTool('nsenter') || !hasTool('hping3') || missingObjects().length) return;
  try {
    acme = await buildAcmeLab(lab, marks, edges);
    const a = acme;
    metrics = new AgentMetrics({ env: a.env, desired: () => a.desired, status: () => status });
    server = await metrics.serve({ host: '127.0.0.1', port: 0 });
  } catch (e) {
    setupError = e as Error;
  }
});

after(async () => {
  if (server) await server.close();
  await destroyAcmeLab(lab, marks, edges);
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool', 'nsenter', 'nft', 'ethtool', 'hping3', 'ping'], python: ['socket'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  if (setupError) throw setupError;
  return true;
}

/** GET /metrics over HTTP, parsed to `name{labels sorted}` → value. */
async function scrape(): Promise<Map<string, number>> {
  assert.ok(server);
  const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) assert.fail(`unreadable metrics line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => `${x[1]}="${x[2]}"`).sort().join(',') : '';
    out.set(labels ? `${m[1]}{${labels}}` : (m[1] as string), Number(m[3]));
  }
  return out;
}

const KERNEL_NAMES = new Set<string>(Object.values(KERNEL_COUNTERS).map((c) => c.name));

/** How every kernel counter series moved between two scrapes (series in either). */
function deltas(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...before.keys(), ...after.keys()])) {
    if (!KERNEL_NAMES.has(k.replace(/\{.*$/, ''))) continue;
    out[k] = (after.get(k) ?? 0) - (before.get(k) ?? 0);
  }
  return out;
}

/** Scrapes until `done` holds or `ms` pass (replies may still be in flight), then once more after a pause. */
async function settle(done: (m: Map<string, number>) => boolean, ms = 5000): Promise<Map<string, number>> {
  const end = Date.now() + ms;
  while (Date.now() < end && !done(await scrape())) await new Promise((r) => setTimeout(r, 200));
  // Anything still arriving would be an extra packet: give it the time to show.
  await new Promise((r) => setTimeout(r, 500));
  return scrape();
}

/** Sends `count` copies of an Ethernet frame out of `dev` in namespace `ns` (AF_PACKET, exact bytes). */
async function sendRaw(ns: string, dev: string, frame: Uint8Array, count: number): Promise<void> {
  const py = 'import socket,sys\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind((sys.argv[1],0))\nf=bytes.fromhex(sys.argv[2])\nfor _ in range(int(sys.argv[3])): s.send(f)\n';
  await lab.exec(ns, '/usr/bin/python3', ['-c', py, dev, Buffer.from(frame).toString('hex'), String(count)]);
}

test('known traffic moves each kernel counter by exactly its amount, scraped over HTTP', async (t) => {
  if (!ready(t)) return;
  const before = await scrape();
  // The series exist before any traffic (zero or whatever the setup counted), under their labels.
  for (const k of ['anyedge_firewall_rule_packets_total{rule="ping",tenant="acme"}', 'anyedge_gre_encap_packets_total{tenant="acme",tunnel="gre1"}', 'anyedge_gre_drop_packets_total{reason="no_tunnel",stage="decap"}'])
    assert.ok(before.has(k), `${k} is exposed`);

  const ping = await lab.exec('e', 'ping', ['-c', String(PINGS), '-i', '0.2', '-W', '2', ACME_HOST]);
  assert.match(ping, new RegExp(`${PINGS} packets transmitted, ${PINGS} received`));
  // hping3 -S: bare SYNs, one source port each; the closed port answers RST.
  await lab.tryExec('e', 'hping3', ['-q', '-S', '-p', '20', '-c', String(SYNS), '-i', 'u100000', ACME_HOST]);
  await lab.tryExec('e', 'hping3', ['-q', '-S', '-p', '22', '-c', String(DROPPED), '-i', 'u100000', ACME_HOST]);
  const src = await lab.mac('c', 'wan0');
  const dst = await lab.mac('s', 'eth0');
  const inner = [{ kind: 'ipv4', src: '203.0.113.100', dst: '192.0.2.10' }, { kind: 'icmp', type: 8, code: 0 }] as const;
  await sendRaw('c', 'wan0', buildFrame([{ kind: 'eth', src, dst }, { kind: 'ipv4', src: ACME_ROUTER, dst: ENDPOINT }, { kind: 'gre', key: 999 }, ...inner]), UNKNOWN_KEY);
  await sendRaw('c', 'wan0', buildFrame([{ kind: 'eth', src, dst }, { kind: 'ipv4', src: ACME_ROUTER, dst: ENDPOINT }, { kind: 'gre' }, { kind: 'eth' }, ...inner]), UNSUPPORTED);

  const fromCustomer = PINGS + SYNS;
  const expected: Record<string, number> = {
    'anyedge_firewall_rule_packets_total{rule="ping",tenant="acme"}': PINGS,
    'anyedge_firewall_rule_bytes_total{rule="ping",tenant="acme"}': PINGS * PING_BYTES,
    'anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}': SYNS,
    'anyedge_firewall_rule_bytes_total{rule="ftp",tenant="acme"}': SYNS * SYN_BYTES,
    'anyedge_firewall_default_packets_total{action="drop",direction="ingress",tenant="acme"}': DROPPED,
    'anyedge_firewall_default_bytes_total{action="drop",direction="ingress",tenant="acme"}': DROPPED * SYN_BYTES,
    'anyedge_firewall_default_packets_total{action="accept",direction="egress",tenant="acme"}': fromCustomer,
    'anyedge_firewall_default_bytes_total{action="accept",direction="egress",tenant="acme"}': PINGS * PING_BYTES + SYNS * RST_BYTES,
    'anyedge_gre_encap_packets_total{tenant="acme",tunnel="gre1"}': PINGS + SYNS,
    'anyedge_gre_encap_bytes_total{tenant="acme",tunnel="gre1"}': PINGS * PING_BYTES + SYNS * SYN_BYTES,
    'anyedge_gre_decap_packets_total{tenant="acme",tunnel="gre1"}': fromCustomer,
    'anyedge_gre_decap_bytes_total{tenant="acme",tunnel="gre1"}': PINGS * PING_BYTES + SYNS * RST_BYTES,
    'anyedge_gre_packets_total{stage="encap"}': PINGS + SYNS,
    'anyedge_gre_packets_total{stage="decap"}': fromCustomer,
    'anyedge_gre_drop_packets_total{reason="no_tunnel",stage="decap"}': UNKNOWN_KEY,
    'anyedge_gre_drop_packets_total{reason="unsupported",stage="decap"}': UNSUPPORTED,
  };
  const afterScrape = await settle((m) => Object.entries(expected).every(([k, v]) => (m.get(k) ?? 0) - (before.get(k) ?? 0) >= v));
  const moved = deltas(before, afterScrape);
  // Every kernel series not named above stayed where it was (over-rate drops, MSS clamps, the
  // other drop reasons, cross-tenant drops …): no traffic of ours counted where it should not.
  const want = Object.fromEntries(Object.keys(moved).map((k) => [k, expected[k] ?? 0]));
  for (const k of Object.keys(expected)) assert.ok(k in moved, `${k} is exposed`);
  assert.deepEqual(moved, want);
  assert.deepEqual(metrics?.lastScrapeErrors, []);
  assert.equal(afterScrape.get('anyedge_metrics_scrape_errors_total{source="nft"}'), 0);
  assert.equal(afterScrape.get('anyedge_metrics_scrape_errors_total{source="bpf"}'), 0);
  // The status gauges are served from the same endpoint.
  assert.equal(afterScrape.get('anyedge_applied_revision'), 7);
  assert.equal(afterScrape.get('anyedge_tunnel_up{tenant="acme",tunnel="gre1"}'), 1);
});

test('one TCP connection through the tunnel clamps exactly one SYN', async (t) => {
  if (!ready(t)) return;
  const echo = lab.spawn('h', process.execPath, ['-e', `require('net').createServer(s=>s.pipe(s)).listen(21,'${ACME_HOST}',()=>console.log('listening'))`]);
  const [line] = (await once(echo.stdout!, 'data')) as [Buffer];
  assert.match(line.toString(), /listening/);
  const key = 'anyedge_gre_mss_clamped_packets_total{tenant="acme",tunnel="gre1"}';
  const before = await scrape();
  const out = await lab.exec('e', process.execPath, [
    '-e',
    `const s=require('net').connect(21,'${ACME_HOST}',()=>s.end('through the tunnel'));let d='';s.on('data',b=>d+=b);s.on('close',()=>{console.log(d);process.exit(0)});setTimeout(()=>process.exit(3),3000).unref()`,
  ]);
  assert.equal(out.trim(), 'through the tunnel');
  const afterScrape = await settle((m) => (m.get(key) ?? 0) > (before.get(key) ?? 0), 3000);
  assert.equal((afterScrape.get(key) ?? 0) - (before.get(key) ?? 0), 1);
});

test('a tenant namespace deleted behind the agent: the scrape still answers, counts the error, and keeps the other series', async (t) => {
  if (!ready(t)) return;
  assert.ok(acme);
  const before = await scrape();
  const ns = acme.desired.netns[0]?.name as string;
  await lab.sh('ip', ['netns', 'delete', ns]);
  const m = await scrape();
  assert.equal(m.has('anyedge_firewall_rule_packets_total{rule="ping",tenant="acme"}'), false);
  assert.equal(m.get('anyedge_metrics_scrape_errors_total{source="nft"}'), (before.get('anyedge_metrics_scrape_errors_total{source="nft"}') ?? 0) + 1);
  assert.equal(m.get('anyedge_gre_packets_total{stage="encap"}'), before.get('anyedge_gre_packets_total{stage="encap"}'));
  assert.equal(metrics?.lastScrapeErrors[0]?.path, 'tenants/acme/firewall');
});
