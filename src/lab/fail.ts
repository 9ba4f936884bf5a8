/**
 * `lab fail|heal dc|server|link X`: breaks or mends part of a running lab, then measures how long
 * the Internet takes to route around it — BGP withdrawal and re-convergence as the cities see it.
 *
 * Failures are made on the switch side, as a pulled cable would: the bridge port goes down, the
 * node behind it loses its carrier and keeps its configuration (setting the node's own device
 * down would flush its routes, and healing would not bring them back).
 *
 * - `server ams-s1`: the server's port on the DC bridge goes down, and the DC router's neighbour
 *   entry for it is set to FAILED, standing in for the health checker a real DC runs: the kernel
 *   then stops choosing it as a next hop at once (fib_multipath_use_neigh). ARP alone does not
 *   do it here: on the lab's kernels the entry of a dead server behind the bridge keeps being
 *   confirmed while traffic flows (DELAY → REACHABLE without a probe), so new flows hashed to it
 *   were lost for 5 to 20 s and more. Healing brings the port up and flushes the entry, so the
 *   server is resolved afresh. The DC keeps announcing while another server is up.
 * - `dc ams`: every server port of the DC goes down; the server bridge loses its carrier, BIRD
 *   (`check link`) drops the anycast routes and withdraws them; each city moves to its next DC.
 * - `link ams` / `link lon`: a router's port on the exchange goes down; its BGP sessions end
 *   when the hold timer (3 s) expires on the other side.
 *
 * Convergence: after the change, every city's route (landing.ts) is polled until it equals what
 * the plan's preferences give over the DCs still reachable, each city timed on its own.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { flushNeigh, linkIsUp, setLinkUp, setNeighFailed } from '../kernel/labnet.ts';
import type { LabError } from './errors.ts';
import { landsIn } from './landing.ts';
import { labPrefix, nodeNs } from './names.ts';
import { sleep } from './procs.ts';
import { labDir, readState } from './state.ts';
import { planLab, type LabPlan } from './topology.ts';

/** What can be failed. */
export const FAIL_KINDS = ['dc', 'server', 'link'] as const;
export type FailKind = (typeof FAIL_KINDS)[number];

/** One city's move. */
export interface CityMove {
  readonly city: string;
  readonly before: string | null;
  readonly after: string | null;
  /** Seconds from the change until the city's route settled on `after`; null if it did not. */
  readonly seconds: number | null;
}

/** What `lab fail` / `lab heal` did and measured. */
export interface FailReport {
  readonly action: 'fail' | 'heal';
  readonly kind: FailKind;
  readonly target: string;
  /** Devices set down or up, as `node:dev`. */
  readonly devices: readonly string[];
  readonly cities: readonly CityMove[];
  /** Every city settled where expected within the timeout. */
  readonly converged: boolean;
}

/** The devices behind a target, or an error naming the known targets. */
export function failTargets(plan: LabPlan, kind: FailKind, target: string): Result<Array<{ node: string; dev: string }>, LabError> {
  if (kind === 'server') {
    const name = target.replace('/', '-');
    const a = plan.agents.find((x) => x.node === name);
    if (!a) return err({ code: 'not_found', path: 'target', message: `no server ${target}; servers: ${plan.agents.map((x) => x.node).join(', ')}` });
    return ok([{ node: a.dc, dev: a.server }]);
  }
  if (kind === 'dc') {
    const dc = plan.dcs.find((d) => d.id === target);
    if (!dc) return err({ code: 'not_found', path: 'target', message: `no data center ${target}; data centers: ${plan.dcs.map((d) => d.id).join(', ')}` });
    return ok(dc.servers.map((s) => ({ node: dc.router, dev: s.id })));
  }
  const routers = [...plan.dcs.map((d) => d.router), ...plan.cities.map((c) => c.router)];
  if (!routers.includes(target)) return err({ code: 'not_found', path: 'target', message: `no router ${target} on the exchange; routers: ${routers.join(', ')}` });
  return ok([{ node: 'ix', dev: target }]);
}

/** Where each city should land given the links as they are now. */
async function expected(plan: LabPlan): Promise<Map<string, string | null>> {
  const up = async (node: string, dev: string): Promise<boolean> => {
    const r = await linkIsUp(nodeNs(plan.prefix, node), dev);
    return r.ok && r.value;
  };
  const alive = new Set<string>();
  for (const dc of plan.dcs) {
    if (!(await up('ix', dc.router))) continue;
    for (const s of dc.servers) {
      if (await up(dc.router, s.id)) {
        alive.add(dc.id);
        break;
      }
    }
  }
  const out = new Map<string, string | null>();
  for (const c of plan.cities) out.set(c.id, (await up('ix', c.router)) ? (c.prefers.find((d) => alive.has(d)) ?? null) : null);
  return out;
}

/** The DC router's neighbour entry of a failed or healed server (see the header). */
async function serverNeigh(plan: LabPlan, target: string, action: 'fail' | 'heal'): Promise<LabError | null> {
  const a = plan.agents.find((x) => x.node === target.replace('/', '-'));
  const s = plan.dcs.find((d) => d.id === a?.dc)?.servers.find((x) => x.id === a?.server);
  if (!a || !s) return null; // failTargets already refused unknown servers
  const addr = s.address.split('/')[0] as string;
  const ns = nodeNs(plan.prefix, a.dc);
  const r = action === 'fail' ? await setNeighFailed(ns, 'lan0', addr) : await flushNeigh(ns, 'lan0', addr);
  return r.ok ? null : { code: 'failed', path: `${a.dc}:lan0`, message: `neighbour ${addr} ${action === 'fail' ? 'failed' : 'flushed'}: ${r.error.message}`, cause: r.error };
}

/** Fails or heals `kind target` in lab `id`, then measures the cities' convergence. */
export async function labFailHeal(id: string, runDir: string, action: 'fail' | 'heal', kind: FailKind, target: string, timeoutMs = 20_000): Promise<Result<FailReport, LabError>> {
  const st = readState(labDir(runDir, labPrefix(id)));
  if (!st.ok) return st;
  const plan = planLab(st.value.id, st.value.size);
  if (!plan.ok) return plan;
  const targets = failTargets(plan.value, kind, target);
  if (!targets.ok) return targets;
  const before = new Map<string, string | null>();
  for (const c of plan.value.cities) before.set(c.id, await landsIn(plan.value, c));

  const start = Date.now();
  for (const t of targets.value) {
    const r = await setLinkUp(nodeNs(plan.value.prefix, t.node), t.dev, action === 'heal');
    if (!r.ok) return err({ code: 'failed', path: `${t.node}:${t.dev}`, message: `link ${action === 'heal' ? 'up' : 'down'}: ${r.error.message}`, cause: r.error });
  }
  if (kind === 'server') {
    const r = await serverNeigh(plan.value, target, action);
    if (r) return err(r);
  }
  const changedAt = Date.now();
  const want = await expected(plan.value);
  const settled = new Map<string, number>();
  while (settled.size < plan.value.cities.length && Date.now() - changedAt < timeoutMs) {
    for (const c of plan.value.cities) {
      if (settled.has(c.id)) continue;
      if ((await landsIn(plan.value, c)) === want.get(c.id)) settled.set(c.id, (Date.now() - start) / 1000);
    }
    if (settled.size < plan.value.cities.length) await sleep(50);
  }
  const cities: CityMove[] = plan.value.cities.map((c) => ({ city: c.id, before: before.get(c.id) ?? null, after: want.get(c.id) ?? null, seconds: settled.get(c.id) ?? null }));
  return ok({ action, kind, target, devices: targets.value.map((t) => `${t.node}:${t.dev}`), cities, converged: settled.size === plan.value.cities.length });
}
