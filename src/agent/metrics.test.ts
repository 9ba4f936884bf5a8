/**
 * AgentMetrics on the fake kernel and fake maps: the Acme example is reconciled, the test says
 * what traffic the kernel counted (FakeKernel.count, FakeBpfMaps.countTunnel/countEdge), and the
 * scrape must show exactly that, under the right names and labels. Then: counters that survive a
 * replaced table, a namespace that vanished mid-scrape, reloaded maps; the reconcile histogram;
 * the status gauges; one kernel read per scrape; and the HTTP endpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { AgentMetrics, KERNEL_COUNTERS } from './metrics.ts';
import { reconcile, type ReconcileEnv } from './reconcile.ts';
import { acmeConfig, acmeDoc, mustConfig } from './fixtures.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import type { Config } from '../model/config.ts';
import type { ServerStatus } from '../model/status.ts';
import { fakeKernel, marksWith, type FakeKernel } from '../kernel/index.ts';
import { fakeBpfMaps, type FakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import { err } from '../lib/result.ts';

const marks = marksWith({ prefix: 'ae' });
const FW = { family: 'inet', name: 'aefw' } as const;
const TRANSIT = { family: 'inet', name: 'aetransit' } as const;
const ACME_NS = 'ae-acme';
const NOW = Date.parse('2026-11-23T12:00:00.000Z');

function baseStatus(): ServerStatus {
  return {
    appliedRevision: 40,
    appliedAt: '2026-11-23T11:59:50.000Z',
    seenRevision: 40,
    store: { connected: true, since: '2026-11-23T11:00:00.000Z' },
    tunnels: [],
    startedAt: '2026-11-23T10:00:00.000Z',
    updatedAt: '2026-11-23T11:59:59.000Z',
    version: '0.1.0',
  };
}

interface World {
  kernel: FakeKernel;
  bpf: FakeBpfMaps;
  env: ReconcileEnv;
  desired: DesiredServer | undefined;
  status: ServerStatus;
  metrics: AgentMetrics;
  slot: number;
}

function compile(c: Config): DesiredServer {
  const d = compileServer(c, { dc: 'ams', server: 's1' }, { marks });
  if (!d.ok) assert.fail(d.error.message);
  return d.value;
}

async function converge(w: World, d: DesiredServer): Promise<void> {
  const r = await reconcile(w.env, d, 3);
  if (!r.ok) assert.fail(r.error.message);
  assert.equal(r.value.failed, undefined, r.value.failed?.error.message);
  w.desired = d;
}

async function world(): Promise<World> {
  const kernel = fakeKernel(marks);
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  assert.ok((await kernel.links.setUp(null, 'eth0', true)).ok);
  const bpf = fakeBpfMaps();
  const env: ReconcileEnv = { kernel, bpf, attach: fakeAttach(kernel) };
  const d = compile(acmeConfig());
  const slot = d.encap.find((e) => e.path === 'tenants/acme/tunnels/gre1')?.entry.statsIdx;
  assert.ok(slot !== undefined);
  const w = { kernel, bpf, env, desired: undefined, status: baseStatus(), slot } as unknown as World;
  w.metrics = new AgentMetrics({ env, desired: () => w.desired, status: () => w.status, now: () => NOW });
  await converge(w, d);
  return w;
}

/** Prometheus text → `name{a="x",b="y"}` (labels sorted) → value. Fails on a line it cannot read. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) assert.fail(`unreadable metrics line: ${line}`);
    const labels = m[2] ? [...m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => `${x[1]}="${x[2]}"`).sort().join(',') : '';
    out.set(labels ? `${m[1]}{${labels}}` : (m[1] as string), Number(m[3]));
  }
  return out;
}

async function scrape(w: World): Promise<Map<string, number>> {
  return parse(await w.metrics.registry.metrics());
}

/** The series of the given metric names only. */
function only(all: Map<string, number>, ...names: string[]): Record<string, number> {
  return Object.fromEntries([...all].filter(([k]) => names.includes(k.replace(/\{.*$/, ''))).sort(([a], [b]) => (a < b ? -1 : 1)));
}

const must = (r: { ok: boolean; error?: { message: string } }) => assert.ok(r.ok, r.error?.message);

test('firewall counters per tenant and rule, with the default actions, rate-limit and direction-less drops, exactly as counted', async () => {
  const w = await world();
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 3, 180));
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ping' }, 5, 420));
  must(w.kernel.count(ACME_NS, FW, { counter: 'over_ping' }, 1, 84));
  must(w.kernel.count(ACME_NS, FW, { counter: 'default_ingress' }, 2, 80));
  must(w.kernel.count(ACME_NS, FW, { counter: 'default_egress' }, 7, 700));
  must(w.kernel.count(ACME_NS, FW, { counter: 'no_direction' }, 1, 40));
  must(w.kernel.count(null, TRANSIT, { counter: 'cross_tenant' }, 2, 120));
  const m = await scrape(w);
  assert.deepEqual(only(m, 'anyedge_firewall_rule_packets_total', 'anyedge_firewall_rule_bytes_total'), {
    'anyedge_firewall_rule_bytes_total{rule="ftp",tenant="acme"}': 180,
    'anyedge_firewall_rule_bytes_total{rule="ping",tenant="acme"}': 420,
    'anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}': 3,
    'anyedge_firewall_rule_packets_total{rule="ping",tenant="acme"}': 5,
  });
  assert.deepEqual(only(m, 'anyedge_firewall_default_packets_total', 'anyedge_firewall_default_bytes_total'), {
    'anyedge_firewall_default_bytes_total{action="accept",direction="egress",tenant="acme"}': 700,
    'anyedge_firewall_default_bytes_total{action="drop",direction="ingress",tenant="acme"}': 80,
    'anyedge_firewall_default_packets_total{action="accept",direction="egress",tenant="acme"}': 7,
    'anyedge_firewall_default_packets_total{action="drop",direction="ingress",tenant="acme"}': 2,
  });
  assert.deepEqual(only(m, 'anyedge_firewall_rate_limited_packets_total', 'anyedge_firewall_rate_limited_bytes_total'), {
    'anyedge_firewall_rate_limited_bytes_total{rule="ping",tenant="acme"}': 84,
    'anyedge_firewall_rate_limited_packets_total{rule="ping",tenant="acme"}': 1,
  });
  assert.deepEqual(only(m, 'anyedge_firewall_no_direction_packets_total', 'anyedge_firewall_no_direction_bytes_total'), {
    'anyedge_firewall_no_direction_bytes_total{tenant="acme"}': 40,
    'anyedge_firewall_no_direction_packets_total{tenant="acme"}': 1,
  });
  assert.deepEqual(only(m, 'anyedge_transit_cross_tenant_packets_total', 'anyedge_transit_cross_tenant_bytes_total'), {
    anyedge_transit_cross_tenant_bytes_total: 120,
    anyedge_transit_cross_tenant_packets_total: 2,
  });
  // Globex has no firewall: no series of it. Acme's firewall is not stateful: none for conntrack.
  assert.deepEqual([...m.keys()].filter((k) => k.includes('globex') && k.startsWith('anyedge_firewall')), []);
  assert.deepEqual(only(m, 'anyedge_firewall_conntrack_packets_total'), {});
  assert.deepEqual(w.metrics.lastScrapeErrors, []);
});

test('every kernel counter is a Prometheus counter with help text', async () => {
  const w = await world();
  const text = await w.metrics.registry.metrics();
  for (const spec of Object.values(KERNEL_COUNTERS)) {
    assert.match(text, new RegExp(`^# TYPE ${spec.name} counter$`, 'm'));
    assert.match(text, new RegExp(`^# HELP ${spec.name} \\S`, 'm'));
    assert.match(spec.name, /_total$/);
  }
  assert.match(text, /^# TYPE anyedge_reconcile_duration_seconds histogram$/m);
  assert.match(text, /^# TYPE anyedge_metrics_scrape_errors_total counter$/m);
});

test('GRE counters: per tunnel from its stats slot, the global drop reasons and totals, exactly as counted', async () => {
  const w = await world();
  const globex = w.desired?.encap.find((e) => e.path === 'tenants/globex/tunnels/gre1')?.entry.statsIdx as number;
  w.bpf.countTunnel(w.slot, { encapPackets: 4, encapBytes: 400, decapPackets: 3, decapBytes: 252, mssClamped: 1 });
  w.bpf.countTunnel(globex, { decapPackets: 9, decapBytes: 900, tooBig: 2 });
  w.bpf.countEdge('gre_no_tunnel', 5);
  w.bpf.countEdge('gre_unsupported', 1);
  w.bpf.countEdge('gre_decap', 12);
  w.bpf.countEdge('encap', 4);
  w.bpf.countEdge('encap_too_big', 2);
  const m = await scrape(w);
  assert.deepEqual(
    only(m, 'anyedge_gre_encap_packets_total', 'anyedge_gre_encap_bytes_total', 'anyedge_gre_decap_packets_total', 'anyedge_gre_decap_bytes_total', 'anyedge_gre_mss_clamped_packets_total', 'anyedge_gre_too_big_packets_total'),
    {
      'anyedge_gre_decap_bytes_total{tenant="acme",tunnel="gre1"}': 252,
      'anyedge_gre_decap_bytes_total{tenant="globex",tunnel="gre1"}': 900,
      'anyedge_gre_decap_packets_total{tenant="acme",tunnel="gre1"}': 3,
      'anyedge_gre_decap_packets_total{tenant="globex",tunnel="gre1"}': 9,
      'anyedge_gre_encap_bytes_total{tenant="acme",tunnel="gre1"}': 400,
      'anyedge_gre_encap_bytes_total{tenant="globex",tunnel="gre1"}': 0,
      'anyedge_gre_encap_packets_total{tenant="acme",tunnel="gre1"}': 4,
      'anyedge_gre_encap_packets_total{tenant="globex",tunnel="gre1"}': 0,
      'anyedge_gre_mss_clamped_packets_total{tenant="acme",tunnel="gre1"}': 1,
      'anyedge_gre_mss_clamped_packets_total{tenant="globex",tunnel="gre1"}': 0,
      'anyedge_gre_too_big_packets_total{tenant="acme",tunnel="gre1"}': 0,
      'anyedge_gre_too_big_packets_total{tenant="globex",tunnel="gre1"}': 2,
    },
  );
  assert.deepEqual(only(m, 'anyedge_gre_drop_packets_total', 'anyedge_gre_packets_total'), {
    'anyedge_gre_drop_packets_total{reason="failed",stage="encap"}': 0,
    'anyedge_gre_drop_packets_total{reason="fragment",stage="decap"}': 0,
    'anyedge_gre_drop_packets_total{reason="malformed",stage="decap"}': 0,
    'anyedge_gre_drop_packets_total{reason="no_tunnel",stage="decap"}': 5,
    'anyedge_gre_drop_packets_total{reason="no_tunnel",stage="encap"}': 0,
    'anyedge_gre_drop_packets_total{reason="not_ip",stage="encap"}': 0,
    'anyedge_gre_drop_packets_total{reason="too_big",stage="encap"}': 2,
    'anyedge_gre_drop_packets_total{reason="unsupported",stage="decap"}': 1,
    'anyedge_gre_packets_total{stage="decap"}': 12,
    'anyedge_gre_packets_total{stage="encap"}': 4,
  });
});

test('a replaced firewall table (config change) restarts its counters; the metric carries on from where it was', async () => {
  const w = await world();
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 3, 180));
  assert.equal((await scrape(w)).get('anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}'), 3);
  const doc = acmeDoc();
  (doc.tenants.acme as { firewall: { rules: unknown[] } }).firewall.rules.push({ id: 'ssh', direction: 'ingress', protocol: 'tcp', dport: [22], action: 'drop' });
  await converge(w, compile(mustConfig(doc)));
  // The new table counted more than the old one had before the scrape saw it: still no loss.
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 5, 300));
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ssh' }, 2, 120));
  const m = await scrape(w);
  assert.equal(m.get('anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}'), 8);
  assert.equal(m.get('anyedge_firewall_rule_bytes_total{rule="ftp",tenant="acme"}'), 480);
  assert.equal(m.get('anyedge_firewall_rule_packets_total{rule="ssh",tenant="acme"}'), 2);
});

test('a namespace that vanished mid-scrape is skipped and counted; when it is back its counters resume without going backwards', async () => {
  const w = await world();
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 3, 180));
  w.bpf.countTunnel(w.slot, { encapPackets: 2, encapBytes: 200 });
  await scrape(w);
  must(await w.kernel.netns.delete(ACME_NS));
  const m = await scrape(w);
  assert.deepEqual(only(m, 'anyedge_firewall_rule_packets_total'), {});
  assert.equal(m.get('anyedge_transit_cross_tenant_packets_total'), 0, 'the rest of the scrape went on');
  assert.equal(m.get('anyedge_gre_encap_packets_total{tenant="acme",tunnel="gre1"}'), 2);
  assert.equal(m.get('anyedge_metrics_scrape_errors_total{source="nft"}'), 1);
  assert.equal(m.get('anyedge_metrics_scrape_errors_total{source="bpf"}'), 0);
  assert.equal(w.metrics.lastScrapeErrors.length, 1);
  const e = w.metrics.lastScrapeErrors[0];
  assert.equal(e?.code, 'nft');
  assert.equal(e?.path, 'tenants/acme/firewall');
  assert.match(e?.message ?? '', /ae-acme.*left out of this scrape/);
  // The agent makes it again (fresh counters, and the same table handle as before).
  await converge(w, w.desired as DesiredServer);
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 1, 60));
  const back = await scrape(w);
  assert.equal(back.get('anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}'), 4);
  assert.equal(back.get('anyedge_firewall_rule_bytes_total{rule="ftp",tenant="acme"}'), 240);
  assert.equal(back.get('anyedge_metrics_scrape_errors_total{source="nft"}'), 1);
  assert.deepEqual(w.metrics.lastScrapeErrors, []);
});

test('reloaded BPF maps (fresh counters) do not make the GRE metrics go backwards', async () => {
  const w = await world();
  w.bpf.countTunnel(w.slot, { decapPackets: 10, decapBytes: 1000 });
  w.bpf.countEdge('gre_no_tunnel', 7);
  await scrape(w);
  w.bpf.resetCounters();
  w.bpf.countTunnel(w.slot, { decapPackets: 1, decapBytes: 100 });
  w.bpf.countEdge('gre_no_tunnel', 2);
  const m = await scrape(w);
  assert.equal(m.get('anyedge_gre_decap_packets_total{tenant="acme",tunnel="gre1"}'), 11);
  assert.equal(m.get('anyedge_gre_decap_bytes_total{tenant="acme",tunnel="gre1"}'), 1100);
  assert.equal(m.get('anyedge_gre_drop_packets_total{reason="no_tunnel",stage="decap"}'), 9);
});

test('a failed BPF read leaves out its series, is counted, and the nft counters are still there', async () => {
  const w = await world();
  const failing: ReconcileEnv = {
    ...w.env,
    bpf: { ...w.bpf, tunnelStats: async () => err({ code: 'bpf_failed' as const, op: 'map lookup tunnel_stats (2 keys)', message: 'bpftool: exit 255: No such file or directory' }) },
  };
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ping' }, 1, 84));
  const metrics = new AgentMetrics({ env: failing, desired: () => w.desired, status: () => w.status, now: () => NOW });
  const m = parse(await metrics.registry.metrics());
  assert.deepEqual(only(m, 'anyedge_gre_encap_packets_total', 'anyedge_gre_decap_packets_total'), {});
  assert.equal(m.get('anyedge_gre_packets_total{stage="decap"}'), 0, 'the global counters come from another read');
  assert.equal(m.get('anyedge_firewall_rule_packets_total{rule="ping",tenant="acme"}'), 1);
  assert.equal(m.get('anyedge_metrics_scrape_errors_total{source="bpf"}'), 1);
  assert.equal(metrics.lastScrapeErrors[0]?.path, 'bpf/tunnel_stats');
  assert.match(metrics.lastScrapeErrors[0]?.message ?? '', /No such file or directory; the per-tunnel GRE counters are left out/);
});

test('before the first compile only the global GRE counters and the status are read', async () => {
  const w = await world();
  w.bpf.countEdge('gre_malformed', 3);
  const metrics = new AgentMetrics({ env: w.env, desired: () => undefined, status: () => w.status, now: () => NOW });
  const m = parse(await metrics.registry.metrics());
  assert.equal(m.get('anyedge_gre_drop_packets_total{reason="malformed",stage="decap"}'), 3);
  assert.deepEqual(only(m, 'anyedge_firewall_rule_packets_total', 'anyedge_gre_encap_packets_total'), {});
  assert.equal(m.get('anyedge_applied_revision'), 40);
  assert.deepEqual(metrics.lastScrapeErrors, []);
});

test('one scrape reads each table once, however many collectors share it', async () => {
  const w = await world();
  let reads = 0;
  const listTable = w.kernel.nft.listTable.bind(w.kernel.nft);
  const counting: ReconcileEnv = { ...w.env, kernel: { ...w.kernel, nft: { ...w.kernel.nft, listTable: (ns, t) => (reads++, listTable(ns, t)) } } };
  const metrics = new AgentMetrics({ env: counting, desired: () => w.desired, status: () => w.status, now: () => NOW });
  await metrics.registry.metrics();
  // Acme's firewall and the transit table; globex has no firewall.
  assert.equal(reads, 2);
  await Promise.all([metrics.registry.metrics(), metrics.registry.metrics()]);
  assert.equal(reads, 4, 'two concurrent scrapes share one read');
});

test('the reconcile duration histogram, by outcome', async () => {
  const w = await world();
  w.metrics.observeReconcile(0.02, 'ok');
  w.metrics.observeReconcile(0.3, 'noop');
  w.metrics.observeReconcile(0.04, 'noop');
  w.metrics.observeReconcile(7, 'error');
  assert.throws(() => w.metrics.observeReconcile(-1, 'ok'), RangeError);
  assert.throws(() => w.metrics.observeReconcile(Number.NaN, 'ok'), RangeError);
  const m = await scrape(w);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="0.01",outcome="ok"}'), 0);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="0.025",outcome="ok"}'), 1);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="0.05",outcome="noop"}'), 1);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="0.5",outcome="noop"}'), 2);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="5",outcome="error"}'), 0);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="10",outcome="error"}'), 1);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_bucket{le="+Inf",outcome="error"}'), 1);
  assert.equal(m.get('anyedge_reconcile_duration_seconds_count{outcome="noop"}'), 2);
  assert.ok(Math.abs((m.get('anyedge_reconcile_duration_seconds_sum{outcome="noop"}') ?? 0) - 0.34) < 1e-9);
});

test('status gauges: revisions, lag, store connectivity, last error, tunnel health', async () => {
  const w = await world();
  let m = await scrape(w);
  assert.deepEqual(only(m, 'anyedge_applied_revision', 'anyedge_seen_revision', 'anyedge_config_lag_revisions', 'anyedge_config_lag_seconds', 'anyedge_store_connected', 'anyedge_config_error'), {
    anyedge_applied_revision: 40,
    anyedge_config_error: 0,
    anyedge_config_lag_revisions: 0,
    anyedge_config_lag_seconds: 0,
    anyedge_seen_revision: 40,
    anyedge_store_connected: 1,
  });
  assert.equal(m.get('anyedge_last_apply_timestamp_seconds'), Date.parse('2026-11-23T11:59:50.000Z') / 1000);
  assert.equal(m.get('anyedge_agent_start_time_seconds'), Date.parse('2026-11-23T10:00:00.000Z') / 1000);
  assert.equal(m.get('anyedge_agent_info{version="0.1.0"}'), 1);

  const since = '2026-11-23T11:50:00.000Z';
  w.status = {
    ...baseStatus(),
    seenRevision: 43,
    pendingSince: '2026-11-23T11:59:47.500Z',
    store: { connected: false, since: '2026-11-23T11:59:00.000Z', error: 'connect ECONNREFUSED 127.0.0.1:2379' },
    lastError: { at: '2026-11-23T11:59:48.000Z', message: 'nft: …' },
    tunnels: [
      { tenant: 'acme', tunnel: 'gre1', state: 'up', since, rttMs: 2.5 },
      { tenant: 'globex', tunnel: 'gre1', state: 'down', since },
      { tenant: 'initech', tunnel: 't9', state: 'unknown', since },
    ],
  };
  m = await scrape(w);
  assert.deepEqual(only(m, 'anyedge_seen_revision', 'anyedge_config_lag_revisions', 'anyedge_config_lag_seconds', 'anyedge_store_connected', 'anyedge_config_error'), {
    anyedge_config_error: 1,
    anyedge_config_lag_revisions: 3,
    anyedge_config_lag_seconds: 12.5,
    anyedge_seen_revision: 43,
    anyedge_store_connected: 0,
  });
  assert.equal(m.get('anyedge_store_connected_changed_timestamp_seconds'), Date.parse('2026-11-23T11:59:00.000Z') / 1000);
  assert.deepEqual(only(m, 'anyedge_tunnel_up', 'anyedge_tunnel_probe_rtt_seconds'), {
    'anyedge_tunnel_probe_rtt_seconds{tenant="acme",tunnel="gre1"}': 0.0025,
    'anyedge_tunnel_up{tenant="acme",tunnel="gre1"}': 1,
    'anyedge_tunnel_up{tenant="globex",tunnel="gre1"}': 0,
  });
  assert.equal(m.get('anyedge_tunnel_state{state="unknown",tenant="initech",tunnel="t9"}'), 1);
  assert.equal(m.get('anyedge_tunnel_state{state="up",tenant="initech",tunnel="t9"}'), 0);
  assert.equal(m.get('anyedge_tunnel_state{state="down",tenant="globex",tunnel="gre1"}'), 1);
  assert.equal(m.get('anyedge_tunnel_state{state="up",tenant="globex",tunnel="gre1"}'), 0);

  // No apply yet: the timestamp is absent rather than 1970.
  const { appliedAt: _gone, ...fresh } = baseStatus();
  w.status = fresh;
  m = await scrape(w);
  assert.equal(m.has('anyedge_last_apply_timestamp_seconds'), false);
});

test('a status accessor that throws is a counted scrape error, not a failed scrape', async () => {
  const w = await world();
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 1, 60));
  const metrics = new AgentMetrics({
    env: w.env,
    desired: () => w.desired,
    status: () => {
      throw new Error('status not ready');
    },
  });
  const m = parse(await metrics.registry.metrics());
  assert.equal(m.has('anyedge_applied_revision'), false);
  assert.equal(m.get('anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}'), 1);
  assert.equal(m.get('anyedge_metrics_scrape_errors_total{source="status"}'), 1);
});

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the HTTP endpoint serves /metrics with the Prometheus content type, 404 elsewhere, and closes', async () => {
  const w = await world();
  must(w.kernel.count(ACME_NS, FW, { counter: 'rule_ftp' }, 3, 180));
  const s = await w.metrics.serve({ host: '127.0.0.1', port: 0 });
  try {
    assert.ok(s.port > 0);
    const r = await get(s.port, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(parse(r.body).get('anyedge_firewall_rule_packets_total{rule="ftp",tenant="acme"}'), 3);
    assert.equal((await get(s.port, '/metrics?x=1')).status, 200);
    const other = await get(s.port, '/');
    assert.equal(other.status, 404);
    assert.match(other.body, /only \/metrics/);
    assert.equal((await get(s.port, '/metrics/x')).status, 404);
    assert.equal((await get(s.port, '/metrics', 'POST')).status, 405);
    // A second listener on the same port is refused with the address and the reason.
    await assert.rejects(w.metrics.serve({ host: '127.0.0.1', port: s.port }), /cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
    await assert.rejects(w.metrics.serve({ host: '127.0.0.1', port: 70000 }), /port 70000 must be an integer 0–65535/);
  } finally {
    await s.close();
  }
  await assert.rejects(get(s.port, '/metrics'), /ECONNREFUSED/);
});
