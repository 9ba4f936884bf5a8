/**
 * Evidence of where traffic went, from the kernel's own counters: per server, the tenant's
 * firewall counters (a named rule's, and the default ingress action's) and the GRE packets its
 * eBPF programs encapsulated toward the customer and decapsulated from it; on the customer
 * router, its side of the tunnel. Snapshots taken before and after a step give the step's deltas:
 * which DC and which server handled the flows, which rule decided, and that the tunnel carried
 * them.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { EdgeMaps } from '../kernel/bpf/edge.ts';
import { edgePins } from '../kernel/bpf/loader.ts';
import type { LabError } from './errors.ts';
import type { LabPlan, LabSite } from './topology.ts';

/** The customer router's tunnel counts in this stats slot (customer.ts). */
const CUSTOMER_STATS_IDX = 1;

/** One server's counters for one tenant. */
export interface ServerCounters {
  readonly dc: string;
  readonly server: string;
  /** Node name, e.g. `ams-s1`. */
  readonly node: string;
  /** Packets the named firewall rule accepted (`rule_<id>`). */
  readonly accepted: number;
  /** Packets the default ingress action took (drop, for the lab's tenants). */
  readonly dropped: number;
  /** GRE packets this server sent into the tenant's tunnel (toward the customer). */
  readonly greOut: number;
  /** GRE packets from the customer this server decapsulated. */
  readonly greIn: number;
  /** Every named counter of the tenant's firewall (`rule_<id>`, `default_ingress`, …), in packets. */
  readonly counters?: Readonly<Record<string, number>>;
}

/** Every server's counters and the customer router's tunnel counters. */
export interface Snapshot {
  readonly servers: readonly ServerCounters[];
  readonly customer: { readonly greOut: number; readonly greIn: number };
}

const fail = (path: string, what: string, e: { message: string }): Result<never, LabError> =>
  err({ code: 'failed', path, message: `${what}: ${e.message}; is the lab up (anyedge lab status)?`, cause: e });

/** Reads the counters of tenant `site` (rule `ruleId`) on every server and on its router. */
export async function snapshot(plan: LabPlan, site: LabSite, ruleId: string): Promise<Result<Snapshot, LabError>> {
  const servers: ServerCounters[] = [];
  for (const a of plan.agents) {
    const k = linuxKernel(marksWith({ prefix: a.prefix }));
    const c = await k.nft.counters(`${a.prefix}-${site.tenant}`, { family: 'inet', name: `${a.prefix}fw` });
    if (!c.ok) return fail(a.node, `${site.tenant}'s firewall counters`, c.error);
    const named = (name: string): number => c.value.find((x) => x.kind === 'named' && x.name === name)?.packets ?? 0;
    const m = new EdgeMaps(edgePins(a.bpf));
    const encap = await m.listEncap();
    if (!encap.ok) return fail(a.node, 'GRE encap map', encap.error);
    // The tenant's tunnel is the one toward its router; its stats slot counts both directions.
    const slots = [...encap.value.values()].filter((e) => e.remote === site.routerIp).map((e) => e.statsIdx);
    let greOut = 0;
    let greIn = 0;
    if (slots.length) {
      const st = await m.tunnelStatsMany(slots);
      if (!st.ok) return fail(a.node, 'GRE tunnel stats', st.error);
      for (const s of st.value.values()) {
        greOut += Number(s.encapPackets);
        greIn += Number(s.decapPackets);
      }
    }
    const counters = Object.fromEntries(c.value.filter((x) => x.kind === 'named').map((x) => [x.name, x.packets]));
    servers.push({ dc: a.dc, server: a.server, node: a.node, accepted: named(`rule_${ruleId}`), dropped: named('default_ingress'), greOut, greIn, counters });
  }
  const cust = await new EdgeMaps(edgePins(site.bpf)).tunnelStats(CUSTOMER_STATS_IDX);
  if (!cust.ok) return fail(site.router, 'customer tunnel stats', cust.error);
  return ok({ servers, customer: { greOut: Number(cust.value.encapPackets), greIn: Number(cust.value.decapPackets) } });
}

/** What moved between two snapshots. */
export function delta(before: Snapshot, after: Snapshot): Snapshot {
  return {
    servers: after.servers.map((s) => {
      const b = before.servers.find((x) => x.node === s.node);
      const counters = Object.fromEntries(Object.entries(s.counters ?? {}).map(([k, v]) => [k, v - (b?.counters?.[k] ?? 0)]));
      return { ...s, accepted: s.accepted - (b?.accepted ?? 0), dropped: s.dropped - (b?.dropped ?? 0), greOut: s.greOut - (b?.greOut ?? 0), greIn: s.greIn - (b?.greIn ?? 0), counters };
    }),
    customer: { greOut: after.customer.greOut - before.customer.greOut, greIn: after.customer.greIn - before.customer.greIn },
  };
}

/** A delta's totals per DC. */
export function byDc(d: Snapshot): Map<string, { accepted: number; dropped: number; greOut: number; greIn: number }> {
  const out = new Map<string, { accepted: number; dropped: number; greOut: number; greIn: number }>();
  for (const s of d.servers) {
    const t = out.get(s.dc) ?? { accepted: 0, dropped: 0, greOut: 0, greIn: 0 };
    out.set(s.dc, { accepted: t.accepted + s.accepted, dropped: t.dropped + s.dropped, greOut: t.greOut + s.greOut, greIn: t.greIn + s.greIn });
  }
  return out;
}

/** Servers where something moved, e.g. `ams-s1 ftp +5 gre→ +5 gre← +4; ams-s2 drop +2`. */
export function formatDelta(d: Snapshot, ruleId: string): string {
  const parts = d.servers.flatMap((s) => {
    const f = [
      s.accepted ? `${ruleId} +${s.accepted}` : '',
      s.dropped ? `drop +${s.dropped}` : '',
      s.greOut ? `gre→ +${s.greOut}` : '',
      s.greIn ? `gre← +${s.greIn}` : '',
    ].filter(Boolean);
    return f.length ? [`${s.node} ${f.join(' ')}`] : [];
  });
  const c = d.customer;
  const cust = c.greOut || c.greIn ? `; customer router gre→ +${c.greOut} gre← +${c.greIn}` : '';
  return `${parts.length ? parts.join(', ') : 'no server counter moved'}${cust}`;
}
