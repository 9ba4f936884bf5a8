/**
 * Where a flood was stopped, from the kernel's counters on every server: the XDP verdicts of its
 * uplink as the veth driver counts them (frames seen, dropped, sent back), the mitigation rule's
 * own counters in the DoS stage (dos_stats of its slot: packets it matched, packets it dropped),
 * the SYN-flood stage's cookie answers (syn_counters), the packets steering forwarded to
 * another server (steer_cnt: those are XDP_TX too, but not stopped) and xdp_edge's global
 * counters (edge_counters: every reason the program counts). A
 * snapshot before and after the attack gives what the attack moved; summed over the servers,
 * XDP drops against what hping3 sent says whether the flood died on the uplinks.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { EdgeMaps } from '../kernel/bpf/edge.ts';
import { edgePins } from '../kernel/bpf/loader.ts';
import { linuxDosMaps } from '../kernel/bpf/dos.ts';
import { SynCookieMaps } from '../kernel/bpf/syncookie.ts';
import { linuxSteerMaps } from '../kernel/bpf/steer.ts';
import { dosIdHash } from '../compile/dos/compile.ts';
import { xdpQueueStats, type XdpQueueStats } from '../kernel/xdp-stats.ts';
import type { LabError } from './errors.ts';
import type { LabPlan } from './topology.ts';

/** The device every lab server's agent attaches xdp_edge to (topology.ts). */
export const SERVER_UPLINK = 'eth0';

/** One server's counters. */
export interface ServerAttackCounters {
  readonly node: string;
  readonly dc: string;
  readonly xdp: XdpQueueStats;
  /** xdp_edge's edge_counters by name, summed over CPUs. */
  readonly edge: Readonly<Record<string, number>>;
  /** The DoS rule's counters here (summed over CPUs); zero when the rule is not in this server's maps. */
  readonly rule: { readonly packets: number; readonly dropped: number };
  /** SYNs the SYN-flood stage answered with a cookie SYN-ACK (XDP_TX). */
  readonly synAnswered: number;
  /** Packets steering sent on to another server (XDP_TX or redirect, not stopped). */
  readonly forwarded: number;
}

/** Every server's counters at one moment. */
export type AttackSnapshot = readonly ServerAttackCounters[];

/** The counters of DoS rule `ruleId` in the maps pinned under `root`: its slot is the one holding the id's hash. */
async function ruleCounters(root: string, ruleId: string): Promise<Result<{ packets: number; dropped: number }, { message: string }>> {
  const maps = linuxDosMaps(root);
  const st = await maps.read();
  if (!st.ok) return st;
  const h = dosIdHash(ruleId);
  const slot = [...st.value.rules].find(([, r]) => r.idHash === h)?.[0];
  if (slot === undefined) return ok({ packets: 0, dropped: 0 });
  const c = await maps.stats([slot]);
  if (!c.ok) return c;
  const v = c.value.get(slot);
  return ok({ packets: Number(v?.packets ?? 0n), dropped: Number(v?.dropped ?? 0n) });
}

/** Reads every server's counters; those of DoS rule `ruleId` too when given. */
export async function attackSnapshot(plan: LabPlan, ruleId?: string): Promise<Result<AttackSnapshot, LabError>> {
  const out: ServerAttackCounters[] = [];
  for (const a of plan.agents) {
    const xdp = await xdpQueueStats(a.ns, SERVER_UPLINK);
    if (!xdp.ok) return err({ code: 'failed', path: a.node, message: `XDP counters of ${a.node}'s ${SERVER_UPLINK}: ${xdp.error.message}; is the lab up (anyedge lab status)?`, cause: xdp.error });
    const edge = await new EdgeMaps(edgePins(a.bpf)).counters();
    if (!edge.ok) return err({ code: 'failed', path: a.node, message: `edge counters of ${a.node}: ${edge.error.message}; is its agent running (anyedge lab status)?`, cause: edge.error });
    const rule = ruleId === undefined ? ok({ packets: 0, dropped: 0 }) : await ruleCounters(edgePins(a.bpf).root, ruleId);
    if (!rule.ok) return err({ code: 'failed', path: a.node, message: `DoS rule ${ruleId} counters of ${a.node}: ${rule.error.message}`, cause: rule.error });
    const syn = await new SynCookieMaps(edgePins(a.bpf)).counters();
    if (!syn.ok) return err({ code: 'failed', path: a.node, message: `SYN-flood counters of ${a.node}: ${syn.error.message}`, cause: syn.error });
    const steer = await linuxSteerMaps(edgePins(a.bpf)).counters();
    if (!steer.ok) return err({ code: 'failed', path: a.node, message: `steering counters of ${a.node}: ${steer.error.message}`, cause: steer.error });
    const forwarded = Object.entries(steer.value).filter(([k]) => k.includes('forward')).reduce((n, [, v]) => n + Number(v), 0);
    out.push({ node: a.node, dc: a.dc, xdp: xdp.value, edge: Object.fromEntries(Object.entries(edge.value).map(([k, v]) => [k, Number(v)])), rule: rule.value, synAnswered: Number(syn.value.synack), forwarded });
  }
  return ok(out);
}

/** What moved between two snapshots, per server (pure). */
export function attackDelta(before: AttackSnapshot, after: AttackSnapshot): AttackSnapshot {
  return after.map((s) => {
    const b = before.find((x) => x.node === s.node);
    const xdp = {
      packets: s.xdp.packets - (b?.xdp.packets ?? 0),
      drops: s.xdp.drops - (b?.xdp.drops ?? 0),
      tx: s.xdp.tx - (b?.xdp.tx ?? 0),
      redirects: s.xdp.redirects - (b?.xdp.redirects ?? 0),
    };
    const edge = Object.fromEntries(Object.entries(s.edge).map(([k, v]) => [k, v - (b?.edge[k] ?? 0)]).filter(([, v]) => v !== 0));
    const rule = { packets: s.rule.packets - (b?.rule.packets ?? 0), dropped: s.rule.dropped - (b?.rule.dropped ?? 0) };
    return { node: s.node, dc: s.dc, xdp, edge, rule, synAnswered: s.synAnswered - (b?.synAnswered ?? 0), forwarded: s.forwarded - (b?.forwarded ?? 0) };
  });
}

/** A delta summed over the servers. */
export interface AttackTotals {
  readonly xdpPackets: number;
  readonly xdpDrops: number;
  readonly xdpTx: number;
  /** Cookie SYN-ACKs the SYN-flood stage sent (part of xdpTx). */
  readonly synAnswered: number;
  /** Packets steering forwarded to their flow's server (part of xdpTx and redirects; not stopped). */
  readonly forwarded: number;
  /** Edge counters that moved, summed. */
  readonly edge: Readonly<Record<string, number>>;
  /** Servers whose XDP dropped anything, with how much. */
  readonly dropsByServer: Readonly<Record<string, number>>;
  /** The DoS rule's counters, summed: packets it matched, packets it dropped. */
  readonly rule: { readonly packets: number; readonly dropped: number };
}

/** Sums a delta (pure). */
export function attackTotals(d: AttackSnapshot): AttackTotals {
  const edge: Record<string, number> = {};
  const dropsByServer: Record<string, number> = {};
  let xdpPackets = 0;
  let xdpDrops = 0;
  let xdpTx = 0;
  let synAnswered = 0;
  let forwarded = 0;
  const rule = { packets: 0, dropped: 0 };
  for (const s of d) {
    rule.packets += s.rule.packets;
    rule.dropped += s.rule.dropped;
    xdpPackets += s.xdp.packets;
    xdpDrops += s.xdp.drops;
    xdpTx += s.xdp.tx;
    synAnswered += s.synAnswered;
    forwarded += s.forwarded;
    if (s.xdp.drops) dropsByServer[s.node] = s.xdp.drops;
    for (const [k, v] of Object.entries(s.edge)) edge[k] = (edge[k] ?? 0) + v;
  }
  return { xdpPackets, xdpDrops, xdpTx, synAnswered, forwarded, edge, dropsByServer, rule };
}
