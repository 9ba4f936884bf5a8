/**
 * `lab status` data: the lab's state, each DC with its BGP sessions and its servers (agent alive,
 * the status the agent writes to the store), each city with its sessions and the DC its traffic
 * lands in (the city router's kernel route to the first tenant prefix), and the tenants with the
 * state of their tunnels on every server.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { serverStatusSchema, statusKey, type ServerStatus } from '../model/status.ts';
import { openStore, parseStoreSpec } from '../store/open.ts';
import type { LabError } from './errors.ts';
import { bgpSessions, type BgpSession } from './bgp.ts';
import { labPrefix } from './names.ts';
import { landsIn } from './landing.ts';
import { aliveWithMark } from './procs.ts';
import { labDir, readState, type LabState } from './state.ts';
import { planLab } from './topology.ts';

/** One server. */
export interface ServerView {
  readonly dc: string;
  readonly server: string;
  readonly node: string;
  readonly agentRunning: boolean;
  readonly status: ServerStatus | null;
}

/** The whole status. */
export interface LabStatus {
  readonly state: LabState;
  readonly bgp: readonly BgpSession[];
  /** Problems reading BGP or the store. */
  readonly problems: readonly string[];
  readonly servers: readonly ServerView[];
  readonly cities: ReadonlyArray<{ readonly city: string; readonly eyeball: string; readonly landsIn: string | null; readonly prefers: string }>;
  readonly tenants: ReadonlyArray<{
    readonly tenant: string;
    readonly prefix: string;
    readonly router: string;
    readonly routerIp: string;
    readonly host: string;
    /** `gre1 → 198.51.100.201 key 42`. */
    readonly tunnel: string;
    /** Whether the agents probe it (health checks on, and an inner address to probe). */
    readonly probed: boolean;
    readonly tunnelsUp: number;
    readonly tunnelsDown: number;
    readonly tunnelsUnknown: number;
  }>;
}

/** Collects the status of lab `id`. */
export async function labStatus(id: string, runDir: string): Promise<Result<LabStatus, LabError>> {
  const prefix = labPrefix(id);
  const dir = labDir(runDir, prefix);
  const st = readState(dir);
  if (!st.ok) return st;
  const state = st.value;
  const plan = planLab(state.id, state.size);
  if (!plan.ok) return err(plan.error);
  const problems: string[] = [];
  const bgp: BgpSession[] = [];
  for (const b of plan.value.bird) {
    const s = await bgpSessions(dir, b.node);
    if (s.ok) bgp.push(...s.value);
    else problems.push(s.error.message);
  }
  const statuses = new Map<string, ServerStatus>();
  const spec = parseStoreSpec(state.store.spec);
  if (!spec.ok) problems.push(spec.error);
  else {
    const store = await openStore(spec.value.kind === 'etcd' ? { ...spec.value, timeoutMs: 2000 } : spec.value);
    if (!store.ok) problems.push(`store ${state.store.spec}: ${store.error.message}`);
    else {
      try {
        for (const a of plan.value.agents) {
          const kv = await store.value.get(statusKey(a.dc, a.server));
          if (!kv.ok) {
            problems.push(`store ${state.store.spec}: ${kv.error.message}`);
            break;
          }
          const s = kv.value ? serverStatusSchema.safeParse(kv.value.value) : null;
          if (s?.success) statuses.set(a.node, s.data);
        }
      } finally {
        await store.value.close();
      }
    }
  }
  const servers = plan.value.agents.map((a) => {
    const proc = state.processes.find((p) => p.role === 'agent' && p.node === a.node);
    return { dc: a.dc, server: a.server, node: a.node, agentRunning: proc !== undefined && aliveWithMark(proc.pid, prefix), status: statuses.get(a.node) ?? null };
  });
  const cities = [];
  for (const c of plan.value.cities) cities.push({ city: c.id, eyeball: c.eyeballIp, landsIn: await landsIn(plan.value, c), prefers: c.prefers.join(' > ') });
  const tenants = plan.value.sites.map((s) => {
    const all = [...statuses.values()].flatMap((x) => x.tunnels.filter((t) => t.tenant === s.tenant));
    return {
      tenant: s.tenant, prefix: s.prefix, router: s.router, routerIp: s.routerIp, host: `${s.hostIp}:${s.port}`,
      tunnel: `gre1 → ${s.routerIp}${s.key !== undefined ? ` key ${s.key}` : ''}`,
      probed: probed(plan.value.config, s.tenant),
      tunnelsUp: all.filter((t) => t.state === 'up').length,
      tunnelsDown: all.filter((t) => t.state === 'down').length,
      tunnelsUnknown: all.filter((t) => t.state === 'unknown').length,
    };
  });
  return ok({ state, bgp, problems, servers, cities, tenants });
}

/** Whether the agents health-check a tenant's tunnel gre1 (see probeTargets in agent/targets.ts). */
function probed(config: Record<string, unknown>, tenant: string): boolean {
  const t = (config.tenants as Record<string, { tunnels: Record<string, { inner?: unknown[]; healthCheck?: { enabled?: boolean } }> }>)[tenant]?.tunnels.gre1;
  return t !== undefined && (t.inner?.length ?? 0) > 0 && t.healthCheck?.enabled !== false;
}
