/**
 * `lab demo`: the whole story on real traffic, each step timed, checked and backed by the
 * kernel's counters (evidence.ts), then everything torn down — also when a step fails or the run
 * is interrupted.
 *
 * 1. up: the lab, with Acme's firewall at default drop and without its FTP rule;
 * 2. api: the REST API on loopback over the lab's store, with a fresh operator token;
 * 3. before: a TCP connection to Acme's 203.0.113.100:21 goes unanswered (the drop counter moves);
 * 4. provision: POST the seed's rule (TCP 21 to 203.0.113.100) through the API; every agent
 *    applies it;
 * 5. cities: connections from two cities land in two DCs (the rule's counters move there only),
 *    cross the anycast GRE tunnel both ways and come back echoed;
 * 6. blocked: port 22 is dropped by the default ingress (the drop counter moves);
 * 7. dc-failure: the first city's DC fails, BGP withdraws it, the same eyeball is served by
 *    another DC and the tunnel still carries the traffic; then the DC is healed;
 * 8. server-failure: flows of one eyeball spread over the DC's servers (L4-hashed ECMP); a server
 *    fails and new flows move to the others once the DC router gives up on it;
 * 9. teardown: lab down, then a check that no namespace, BPF pin or process of the lab is left.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { listNetns } from '../kernel/labnet.ts';
import type { LabError } from './errors.ts';
import { startLabApi, waitApplied, type LabApi } from './api.ts';
import { labRule } from './config-doc.ts';
import { labDown, labPins } from './down.ts';
import { byDc, delta, formatDelta, snapshot, type Snapshot } from './evidence.ts';
import { labFailHeal } from './fail.ts';
import { labPrefix } from './names.ts';
import { findMarked } from './procs.ts';
import { summarizeFlows, tcpFlows, type FlowResult } from './probe.ts';
import type { LabCity, LabPlan, LabSite } from './topology.ts';
import { labUp } from './up.ts';

/** The rule the demo adds through the API. */
export const DEMO_RULE = 'acme/ftp';
/** A port Acme's firewall does not open. */
export const BLOCKED_PORT = 22;

/** Options of {@link runDemo}. */
export interface DemoOptions {
  readonly id: string;
  readonly size: { readonly dcs: number; readonly servers: number };
  readonly store: 'etcd' | 'lmdb';
  readonly runDir: string;
  /** The narrative, line by line. */
  readonly log: (line: string) => void;
  /** Stops the demo after the current step (Ctrl-C); teardown still runs. */
  readonly signal?: AbortSignal;
}

/** Per DC: what moved during a step. */
export type DcCounts = Record<string, { accepted: number; dropped: number; greOut: number; greIn: number }>;

/** One city's connections after provisioning. */
export interface CityResult {
  readonly city: string;
  readonly eyeball: string;
  /** The DC the city's BGP preference names. */
  readonly expectedDc: string;
  /** The DCs whose servers' rule counters moved. */
  readonly landedIn: readonly string[];
  readonly flows: readonly FlowResult[];
  readonly perDc: DcCounts;
  readonly evidence: Snapshot;
}

/** What the demo did and measured. */
export interface DemoReport {
  readonly prefix: string;
  readonly up: { readonly seconds: number; readonly store: string };
  readonly api: { readonly url: string; readonly status: number; readonly revision: number; readonly appliedSeconds: number; readonly rulesBefore: readonly string[] };
  readonly before: { readonly flows: readonly FlowResult[]; readonly perDc: DcCounts };
  readonly cities: readonly CityResult[];
  readonly blocked: { readonly port: number; readonly flows: readonly FlowResult[]; readonly perDc: DcCounts };
  readonly dcFailure: {
    readonly dc: string;
    readonly city: string;
    readonly movedTo: string | null;
    /** From the DC's failure until the city's route pointed elsewhere (BGP withdrawal + re-convergence). */
    readonly reconvergeSeconds: number | null;
    readonly flows: readonly FlowResult[];
    readonly perDc: DcCounts;
    readonly customer: { readonly greOut: number; readonly greIn: number };
    readonly healSeconds: number | null;
  };
  readonly serverFailure: {
    readonly dc: string;
    readonly server: string;
    /** Servers of the DC that handled flows before the failure (rule counter moved). */
    readonly serversBefore: Record<string, number>;
    readonly serversAfter: Record<string, number>;
    readonly flowsBefore: readonly FlowResult[];
    readonly flowsAfter: readonly FlowResult[];
    /** Flows lost while the DC router still chose the dead server. */
    readonly lostWhileDetecting: number;
    /** From the failure until a whole batch of flows went to the other servers, all echoed. */
    readonly movedSeconds: number;
  };
  readonly steps: ReadonlyArray<{ readonly step: string; readonly seconds: number }>;
  readonly teardown: Teardown;
  readonly seconds: number;
}

/** What `lab down` left: all empty when the lab is gone. */
export interface Teardown {
  readonly seconds: number;
  readonly netns: readonly string[];
  readonly pins: readonly string[];
  readonly processes: readonly number[];
  readonly problems: readonly string[];
}

/** A failed demo: the step, why, and the teardown that followed. */
export interface DemoFailure extends LabError {
  readonly teardown: Teardown;
}

const FLOW_TIMEOUT_MS = 2000;
/** Flows per city and per ECMP batch. */
const FLOWS = 3;
const ECMP_FLOWS = 12;

class StepFailed extends Error {
  constructor(readonly error: LabError) {
    super(error.message);
  }
}

function must<T>(r: Result<T, LabError>): T {
  if (!r.ok) throw new StepFailed(r.error);
  return r.value;
}

function check(cond: boolean, path: string, message: string): void {
  if (!cond) throw new StepFailed({ code: 'failed', path, message });
}

function perDcOf(d: Snapshot): DcCounts {
  return Object.fromEntries(byDc(d));
}

/** Runs the demo; tears the lab down whatever happens. */
export async function runDemo(o: DemoOptions): Promise<Result<DemoReport, DemoFailure>> {
  const started = Date.now();
  const steps: Array<{ step: string; seconds: number }> = [];
  const clock = (): string => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s]`;
  const say = (line: string): void => o.log(`${clock()} ${line}`);
  const detail = (line: string): void => o.log(`          ${line}`);
  let api: LabApi | null = null;
  const partial: Partial<Record<string, unknown>> = {};

  const step = async <T>(name: string, what: string, body: () => Promise<T>): Promise<T> => {
    if (o.signal?.aborted) throw new StepFailed({ code: 'failed', path: name, message: 'interrupted (Ctrl-C) before this step' });
    say(`${name}: ${what}`);
    const t0 = Date.now();
    const v = await body();
    const seconds = (Date.now() - t0) / 1000;
    steps.push({ step: name, seconds });
    detail(`✓ ${name} in ${seconds.toFixed(1)} s`);
    return v;
  };

  let failure: LabError | null = null;
  // Only a lab this run built is torn down: a refused `lab up` (the id is in use) must leave the
  // other lab alone, and a failed one has already removed what it made.
  let built = false;
  try {
    const up = await step('up', `lab ${labPrefix(o.id)}: ${o.size.dcs} DCs × ${o.size.servers} servers, BGP, one agent per server; Acme at default drop, its FTP rule not yet provisioned`, async () => {
      const r = must(await labUp({ id: o.id, size: { ...o.size, cities: Math.max(2, o.size.dcs) }, store: o.store, runDir: o.runDir, withoutRules: [DEMO_RULE], log: (l) => detail(l) }));
      built = true;
      for (const c of r.plan.cities) detail(`${c.eyeball} (${c.eyeballIp}) prefers ${c.prefers.join(' > ')}`);
      return r;
    });
    const plan = up.plan;
    const site = plan.sites.find((s) => s.tenant === 'acme') as LabSite;
    const rule = DEMO_RULE.split('/')[1] as string;
    partial.up = { seconds: up.seconds, store: up.state.store.spec };
    const flows = (city: LabCity, port: number, n: number, tag: string): Promise<FlowResult[]> =>
      tcpFlows({ ns: plan.nodes.find((x) => x.name === city.eyeball)?.ns ?? city.eyeball, host: site.hostIp, port, payloads: Array.from({ length: n }, (_, i) => `${tag} #${i + 1} from ${city.id}`), timeoutMs: FLOW_TIMEOUT_MS });
    const measure = async <T>(body: () => Promise<T>): Promise<{ value: T; d: Snapshot }> => {
      const before = must(await snapshot(plan, site, rule));
      const value = await body();
      return { value, d: delta(before, must(await snapshot(plan, site, rule))) };
    };
    const first = plan.cities[0] as LabCity;
    const home = first.prefers[0] as string;

    const apiInfo = await step('api', `REST API on loopback over the lab's store (${up.state.store.spec}), fresh operator token`, async () => {
      api = must(await startLabApi(up.state.store.spec));
      const r = await api.call('GET', `/v1/tenants/${site.tenant}/firewall`);
      check(r.status === 200, 'api', `GET /v1/tenants/${site.tenant}/firewall answered ${r.status}: ${JSON.stringify(r.body)}`);
      const fw = r.body as { default: { ingress: string }; rules: Array<{ id: string }> };
      const rulesBefore = fw.rules.map((x) => x.id);
      detail(`${api.url}: GET /v1/tenants/${site.tenant}/firewall → default ingress ${fw.default.ingress}, rules [${rulesBefore.join(', ')}]`);
      return { url: api.url, rulesBefore };
    });

    const before = await step('before', `${first.eyeball} → ${site.hostIp}:${site.port} before the rule exists`, async () => {
      const { value, d } = await measure(() => flows(first, site.port, 1, 'before'));
      detail(`${summarizeFlows(value)}; evidence: ${formatDelta(d, rule)}`);
      check(value.every((f) => f.outcome === 'timeout'), 'before', `expected no answer before the rule, got ${summarizeFlows(value)}`);
      check((byDc(d).get(home)?.dropped ?? 0) >= 1, 'before', `expected Acme's default drop to count the SYN in ${home}: ${formatDelta(d, rule)}`);
      return { flows: value, perDc: perDcOf(d) };
    });

    const provisioned = await step('provision', `POST /v1/tenants/${site.tenant}/firewall/rules with the seed's rule (TCP ${String((labRule(DEMO_RULE)?.dport as unknown[] | undefined)?.[0] ?? site.port)} to ${site.hostIp})`, async () => {
      const body = labRule(DEMO_RULE);
      const r = await api!.call('POST', `/v1/tenants/${site.tenant}/firewall/rules`, body);
      check(r.status === 201, 'provision', `the API refused the rule (${r.status}): ${JSON.stringify(r.body)}`);
      const revision = (r.body as { revision: number }).revision;
      detail(`201 Created, store revision ${revision}: ${JSON.stringify(body)}`);
      const applied = must(await waitApplied(api!, revision, 30_000));
      detail(`applied on all ${plan.agents.length} servers in ${applied.toFixed(2)} s (GET /v1/servers)`);
      return { status: r.status, revision, appliedSeconds: applied };
    });
    partial.api = { ...apiInfo, status: provisioned.status, revision: provisioned.revision, appliedSeconds: provisioned.appliedSeconds };

    const cities = await step('cities', `${FLOWS} TCP connections from each of two cities to ${site.hostIp}:${site.port}`, async () => {
      const out: CityResult[] = [];
      for (const city of plan.cities.slice(0, 2)) {
        const { value, d } = await measure(() => flows(city, site.port, FLOWS, 'hello'));
        const perDc = byDc(d);
        const landedIn = [...perDc].filter(([, c]) => c.accepted > 0).map(([dc]) => dc);
        detail(`${city.eyeball}: ${summarizeFlows(value)}, landed in ${landedIn.join(', ') || 'no DC'}; evidence: ${formatDelta(d, rule)}`);
        check(value.every((f) => f.outcome === 'echoed'), 'cities', `${city.eyeball}: expected every payload echoed, got ${summarizeFlows(value)}`);
        check(landedIn.length === 1 && landedIn[0] === city.prefers[0], 'cities', `${city.eyeball}: expected to land in ${city.prefers[0]} only: ${formatDelta(d, rule)}`);
        check((perDc.get(city.prefers[0] as string)?.greOut ?? 0) >= FLOWS && d.customer.greIn >= FLOWS, 'cities', `${city.eyeball}: expected the flows inside Acme's GRE tunnel: ${formatDelta(d, rule)}`);
        out.push({ city: city.id, eyeball: city.eyeball, expectedDc: city.prefers[0] as string, landedIn, flows: value, perDc: perDcOf(d), evidence: d });
      }
      check(new Set(out.map((c) => c.landedIn[0])).size === out.length || plan.dcs.length === 1, 'cities', 'expected the two cities in two different DCs');
      detail(`replies leave Acme through its tunnel to the anycast endpoint and enter the DC Acme's own city prefers (${plan.cities.find((c) => c.id === site.city)?.prefers[0]}): gre← above`);
      return out;
    });

    const blocked = await step('blocked', `${first.eyeball} → ${site.hostIp}:${BLOCKED_PORT} (no rule opens it)`, async () => {
      const { value, d } = await measure(() => flows(first, BLOCKED_PORT, 1, 'blocked'));
      detail(`${summarizeFlows(value)}; evidence: ${formatDelta(d, rule)}`);
      check(value.every((f) => f.outcome === 'timeout'), 'blocked', `expected port ${BLOCKED_PORT} dropped (no answer), got ${summarizeFlows(value)}`);
      check((byDc(d).get(home)?.dropped ?? 0) >= 1, 'blocked', `expected the default drop counter to move in ${home}: ${formatDelta(d, rule)}`);
      return { port: BLOCKED_PORT, flows: value, perDc: perDcOf(d) };
    });

    const dcFailure = await step('dc-failure', `fail every server of ${home} (${first.id}'s DC), then ${first.eyeball} again`, async () => {
      const f = must(await labFailHeal(o.id, o.runDir, 'fail', 'dc', home));
      const move = f.cities.find((c) => c.city === first.id);
      detail(`${home} withdrawn; ${f.cities.map((c) => `${c.city}: ${c.before} → ${c.after}${c.seconds !== null && c.before !== c.after ? ` in ${c.seconds.toFixed(2)} s` : ''}`).join(', ')}`);
      check(f.converged && move !== undefined && move.after !== null && move.after !== home, 'dc-failure', `expected ${first.id} to move away from ${home}: ${JSON.stringify(f.cities)}`);
      const { value, d } = await measure(() => flows(first, site.port, FLOWS, 'rerouted'));
      const perDc = byDc(d);
      detail(`${first.eyeball}: ${summarizeFlows(value)}; evidence: ${formatDelta(d, rule)}`);
      detail(`no single point of failure: ${move!.after} took the traffic and Acme's tunnel (anycast endpoint, health checks off in the lab: probes' replies land on any server) kept carrying it`);
      check(value.every((x) => x.outcome === 'echoed'), 'dc-failure', `expected the payload echoed via ${move!.after}, got ${summarizeFlows(value)}`);
      check((perDc.get(move!.after!)?.accepted ?? 0) >= FLOWS && (perDc.get(home)?.accepted ?? 0) === 0, 'dc-failure', `expected the flows through ${move!.after} and none through ${home}: ${formatDelta(d, rule)}`);
      check(d.customer.greIn >= FLOWS && d.customer.greOut >= FLOWS, 'dc-failure', `expected the tunnel to carry the flows both ways: ${formatDelta(d, rule)}`);
      const h = must(await labFailHeal(o.id, o.runDir, 'heal', 'dc', home));
      const back = h.cities.find((c) => c.city === first.id);
      detail(`${home} healed: ${first.id} back on ${back?.after ?? 'nowhere'}${back?.seconds !== null && back?.seconds !== undefined ? ` in ${back.seconds.toFixed(2)} s` : ''}`);
      check(h.converged && back?.after === home, 'dc-failure', `expected ${first.id} back on ${home} after healing: ${JSON.stringify(h.cities)}`);
      return { dc: home, city: first.id, movedTo: move!.after, reconvergeSeconds: move!.seconds, flows: value, perDc: perDcOf(d), customer: d.customer, healSeconds: back?.seconds ?? null };
    });

    const serverFailure = await step('server-failure', `${ECMP_FLOWS} flows from ${first.eyeball} over ${home}'s servers (L4-hashed ECMP), then one server fails`, async () => {
      const servers = plan.agents.filter((a) => a.dc === home).map((a) => a.node);
      const count = (d: Snapshot): Record<string, number> => Object.fromEntries(d.servers.filter((s) => s.dc === home).map((s) => [s.node, s.accepted]));
      const { value: flowsBefore, d: db } = await measure(() => flows(first, site.port, ECMP_FLOWS, 'ecmp'));
      const serversBefore = count(db);
      detail(`${summarizeFlows(flowsBefore)}; rule counter per server: ${servers.map((s) => `${s} +${serversBefore[s] ?? 0}`).join(', ')}`);
      check(flowsBefore.every((f) => f.outcome === 'echoed'), 'server-failure', `expected every flow echoed before the failure, got ${summarizeFlows(flowsBefore)}`);
      const busiest = servers.reduce((a, b) => ((serversBefore[b] ?? 0) > (serversBefore[a] ?? 0) ? b : a));
      check(servers.length < 2 || servers.filter((s) => (serversBefore[s] ?? 0) > 0).length >= 2, 'server-failure', `expected ${ECMP_FLOWS} flows spread over ${home}'s servers: ${JSON.stringify(serversBefore)}`);
      must(await labFailHeal(o.id, o.runDir, 'fail', 'server', busiest));
      const failedAt = Date.now();
      detail(`${busiest}'s port down and the DC router's health check marks it failed; new flows:`);
      let lost = 0;
      for (;;) {
        const { value, d } = await measure(() => flows(first, site.port, ECMP_FLOWS, 'moved'));
        const after = count(d);
        const t = (Date.now() - failedAt) / 1000;
        detail(`  +${t.toFixed(1)} s: ${summarizeFlows(value)}; ${servers.map((s) => `${s} +${after[s] ?? 0}`).join(', ')}`);
        lost += value.filter((f) => f.outcome !== 'echoed').length;
        if (servers.length > 1 && value.every((f) => f.outcome === 'echoed') && (after[busiest] ?? 0) === 0)
          return { dc: home, server: busiest, serversBefore, serversAfter: after, flowsBefore, flowsAfter: value, lostWhileDetecting: lost, movedSeconds: t };
        check(servers.length > 1, 'server-failure', `${home} has one server: nothing to move to`);
        check(t < 20, 'server-failure', `flows still reach ${busiest} or fail ${t.toFixed(0)} s after its failure: ${summarizeFlows(value)}`);
      }
    });
    partial.report = { before, cities, blocked, dcFailure, serverFailure, plan };
  } catch (e) {
    failure = e instanceof StepFailed ? e.error : { code: 'failed', path: 'demo', message: (e as Error).message, cause: e };
  } finally {
    if (api !== null) await (api as LabApi).close();
  }

  if (failure) say(`✗ ${failure.path}: ${failure.message}`);
  const teardown = built ? await tearDown(o, say, detail) : { seconds: 0, netns: [], pins: [], processes: [], problems: [] };
  steps.push({ step: 'teardown', seconds: teardown.seconds });
  const seconds = (Date.now() - started) / 1000;
  say(`${failure ? 'demo FAILED' : 'demo done'} in ${seconds.toFixed(1)} s: ${steps.map((s) => `${s.step} ${s.seconds.toFixed(1)} s`).join(', ')}`);
  if (failure) return err({ ...failure, teardown });
  const clean = teardown.netns.length + teardown.pins.length + teardown.processes.length + teardown.problems.length === 0;
  if (!clean) return err({ code: 'failed', path: 'teardown', message: `lab down left something: ${JSON.stringify(teardown)}; run anyedge lab down --id ${o.id}`, teardown });
  const r = partial.report as Omit<DemoReport, 'prefix' | 'up' | 'api' | 'steps' | 'teardown' | 'seconds'> & { plan: LabPlan };
  const { plan, ...rest } = r;
  return ok({ prefix: plan.prefix, up: partial.up as DemoReport['up'], api: partial.api as DemoReport['api'], ...rest, steps, teardown, seconds });
}

async function tearDown(o: DemoOptions, say: (l: string) => void, detail: (l: string) => void): Promise<Teardown> {
  const prefix = labPrefix(o.id);
  say(`teardown: lab down ${prefix}`);
  const t0 = Date.now();
  const down = await labDown({ id: o.id, runDir: o.runDir });
  const nss = await listNetns(prefix);
  const t: Teardown = {
    seconds: (Date.now() - t0) / 1000,
    netns: nss.ok ? nss.value : [],
    pins: labPins(prefix),
    processes: findMarked(prefix),
    problems: [...down.problems, ...(nss.ok ? [] : [nss.error.message])],
  };
  detail(`${down.processes.length} processes stopped, ${down.pins.length} BPF pin dirs and ${down.netns.length} namespaces removed; left: ${t.netns.length} namespaces, ${t.pins.length} pins, ${t.processes.length} processes`);
  return t;
}
