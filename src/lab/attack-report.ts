/**
 * The result of `lab attack` and its verdict (pure): the legitimate client's success rate and its
 * long connection, what hping3 sent, and how much of it the servers' XDP stopped (dropped, or
 * answered in place with XDP_TX), with the goals the run is judged by.
 */
import type { FloodKind, FloodResult } from './attack-flood.ts';
import type { LegitResult } from './attack-client.ts';
import { successRate } from './attack-client.ts';
import type { Mitigation } from './attack-mitigation.ts';
import type { AttackSnapshot, AttackTotals } from './attack-evidence.ts';

/** New connections of the legitimate client that must succeed during the flood. */
export const GOAL_SUCCESS_RATE = 0.99;
/** Share of the flood's packets the servers' XDP must have stopped (dropped or XDP_TX). */
export const GOAL_XDP_SHARE = 0.9;

/** A node of the run: the eyeball and the DC its city's BGP routes the target to. */
export interface AttackNode {
  readonly eyeball: string;
  readonly ip: string;
  readonly dc: string;
}

/** Everything `lab attack` measured. */
export interface AttackReport {
  readonly kind: FloodKind;
  readonly target: { readonly tenant: string; readonly host: string; readonly port: number };
  readonly attacker: AttackNode;
  readonly legit: AttackNode;
  readonly mitigation: Mitigation;
  readonly flood: FloodResult;
  readonly client: LegitResult;
  readonly perServer: AttackSnapshot;
  readonly totals: AttackTotals;
  /** Whether the mitigation was undone after the run (false with --keep-rule, or when undoing failed). */
  readonly ruleRemoved: boolean;
  readonly verdict: Verdict;
}

/** The goals, each met or not. */
export interface Verdict {
  readonly ok: boolean;
  readonly successRate: number;
  /** (XDP drops + cookie SYN-ACKs from XDP) / packets hping3 sent. */
  readonly xdpShare: number;
  readonly problems: readonly string[];
}

/**
 * Judges a run against the goals (pure). `inXdp`: the mitigation acts in XDP, so the flood must
 * have been stopped there; false for synproxy, which answers in the tenant namespace.
 */
export function judge(flood: FloodResult, client: LegitResult, totals: AttackTotals, inXdp = true): Verdict {
  const problems: string[] = [];
  const rate = successRate(client);
  // XDP_TX alone is not a measure: steering's forwards to a flow's server are XDP_TX too.
  const stopped = totals.xdpDrops + totals.synAnswered;
  const share = flood.transmitted === 0 ? 0 : stopped / flood.transmitted;
  if (client.short.attempted === 0) problems.push('the legitimate client opened no connection');
  if (rate < GOAL_SUCCESS_RATE)
    problems.push(`legitimate success rate ${pct(rate)} is below ${pct(GOAL_SUCCESS_RATE)}: ${client.short.echoed}/${client.short.attempted} echoed, failures ${JSON.stringify(client.short.failures)}`);
  if (!client.long.survived)
    problems.push(`the long connection did not survive: ${client.long.error ?? `${client.long.echoed}/${client.long.sent} lines echoed`}`);
  if (flood.transmitted === 0) problems.push('hping3 sent nothing');
  else if (inXdp && share < GOAL_XDP_SHARE)
    problems.push(`XDP stopped ${stopped} of the ${flood.transmitted} flood packets (${pct(share)}), below ${pct(GOAL_XDP_SHARE)}: the rest reached the stack`);
  return { ok: problems.length === 0, successRate: rate, xdpShare: share, problems };
}

function mitigationText(m: Mitigation): string {
  const b = m.body;
  if (m.kind === 'syn-xdp' || m.kind === 'syn-synproxy') return `synFlood ${JSON.stringify(b)}`;
  return `${JSON.stringify(b.match)} → ${String(b.action)}${b.rateLimit ? ` ${JSON.stringify(b.rateLimit)}` : ''}`;
}

function pct(x: number): string {
  return `${(100 * x).toFixed(x >= 0.999 && x < 1 ? 2 : 1)} %`;
}

/** The report for people (pure). */
export function formatAttack(r: AttackReport): string {
  const c = r.client;
  const t = r.totals;
  const lines = [
    `${r.kind.toUpperCase()} flood: ${r.attacker.eyeball} (${r.attacker.ip}, lands in ${r.attacker.dc}) → ${r.target.host}:${r.target.port} (${r.target.tenant})`,
    `  mitigation: ${r.mitigation.what} (store revision ${r.mitigation.revision}, applied on every server in ${r.mitigation.appliedSeconds.toFixed(2)} s): ${mitigationText(r.mitigation)}`,
    `  flood: ${r.flood.transmitted} packets in ${r.flood.seconds.toFixed(1)} s (${Math.round(r.flood.pps)} pps, hping3's count)`,
    `  legitimate client ${r.legit.eyeball} (${r.legit.ip}, lands in ${r.legit.dc}), ${c.seconds.toFixed(1)} s:`,
    `    new connections: ${c.short.echoed}/${c.short.attempted} echoed (${pct(r.verdict.successRate)})${Object.keys(c.short.failures).length ? `, failures ${JSON.stringify(c.short.failures)}` : ''}; connect→echo p50 ${c.short.p50Ms} ms, p99 ${c.short.p99Ms} ms, max ${c.short.maxMs} ms`,
    `    long connection: ${c.long.survived ? 'survived' : `BROKEN (${c.long.error ?? 'lines missing'})`}, ${c.long.echoed}/${c.long.sent} lines echoed, slowest ${c.long.maxRttMs} ms`,
    `  XDP on the servers' uplinks: ${t.xdpDrops} dropped, ${t.synAnswered} SYNs answered with a cookie, of ${t.xdpPackets} seen = ${pct(r.verdict.xdpShare)} of the flood stopped in XDP`,
    `    steering: ${t.forwarded} packets forwarded to their flow's server; XDP_TX in all ${t.xdpTx}`,
    `    drops by server: ${Object.entries(t.dropsByServer).map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}`,
    ...(r.mitigation.undo.kind === 'delete-rule' ? [`    DoS rule ${r.mitigation.undo.ruleId}'s counters, all servers: ${t.rule.packets} matched, ${t.rule.dropped} dropped`] : []),
    `    xdp_edge counters: ${Object.entries(t.edge).map(([k, v]) => `${k} +${v}`).join(', ') || 'none moved'}`,
    `  mitigation ${r.ruleRemoved ? 'undone after the run' : `LEFT IN PLACE${r.mitigation.body.expires ? ` (expires ${String(r.mitigation.body.expires)})` : ''}`}`,
    r.verdict.ok ? '  verdict: OK — every goal met' : `  verdict: FAILED\n${r.verdict.problems.map((p) => `    - ${p}`).join('\n')}`,
  ];
  return `${lines.join('\n')}\n`;
}
