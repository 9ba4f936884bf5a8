/**
 * `lab attack syn|udp`: a real flood in a running lab while a legitimate client keeps using the
 * service, with the mitigation installed through the REST API, judged by the kernel's counters.
 *
 * 1. the REST API on loopback over the lab's store; the mitigation rule (attack-mitigation.ts)
 *    PUT through it and applied by every agent;
 * 2. counters of every server read (attack-evidence.ts);
 * 3. the legitimate client (attack-client.ts) starts in one eyeball — one long connection echoing
 *    lines, new connections all the time — against Acme's echo service 203.0.113.100:21;
 * 4. a second later hping3 (attack-flood.ts) floods the same address from another eyeball,
 *    bounded in count and time; the client goes on a second past the flood's end;
 * 5. counters read again; the rule removed through the API (unless kept);
 * 6. the verdict (attack-report.ts): ≥ 99 % of new connections echoed, the long connection
 *    alive, ≥ 90 % of the flood's packets stopped by XDP on the servers' uplinks (dropped, or
 *    answered with a cookie SYN-ACK; not asked of synproxy, which acts in the tenant namespace).
 * Whatever fails, the flood is stopped, the rule removed and the API closed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';
import { startLabApi, type LabApi } from './api.ts';
import { startFlood, writeSignature, type Flood, type FloodKind } from './attack-flood.ts';
import { runLegitClient } from './attack-client.ts';
import { installMitigation, removeMitigation, type Mitigation, type SynMitigation } from './attack-mitigation.ts';
import { attackDelta, attackSnapshot, attackTotals } from './attack-evidence.ts';
import { judge, type AttackNode, type AttackReport } from './attack-report.ts';
import { labPrefix } from './names.ts';
import { labDir, readState } from './state.ts';
import { planLab, type LabCity, type LabPlan, type LabSite } from './topology.ts';

/** The port each flood aims at: the echo service for SYNs, DNS's for UDP. */
export const FLOOD_PORT: Readonly<Record<FloodKind, number | 'service'>> = { syn: 'service', udp: 53 };

/** Options of {@link labAttack}. */
export interface AttackOptions {
  readonly id: string;
  readonly runDir: string;
  readonly kind: FloodKind;
  /** How long the flood lasts at most. */
  readonly seconds: number;
  /** The rate asked of hping3 (packets/s); it sends at most seconds × pps packets. */
  readonly pps: number;
  /** The attacking eyeball (default: another city landing in the legitimate client's DC, if any). */
  readonly from?: string;
  /** The legitimate client's eyeball (default: the first city's). */
  readonly legit?: string;
  /** How a SYN flood is mitigated (default xdp; xdp and synproxy set the tenant's SYN-flood protection, rate-limit adds a DoS rule). */
  readonly syn?: SynMitigation;
  /** Leave the mitigation in the store (a DoS rule still expires). */
  readonly keepRule?: boolean;
  readonly log?: (line: string) => void;
}

/** Picks the target (Acme's echo service), the legitimate client and the attacker (pure). */
export function chooseNodes(plan: LabPlan, o: { from?: string; legit?: string }): Result<{ site: LabSite; legit: LabCity; attacker: LabCity }, LabError> {
  const site = plan.sites.find((s) => s.tenant === 'acme') ?? plan.sites[0];
  if (!site) return err({ code: 'failed', path: 'target', message: `lab ${plan.prefix} has no customer site to attack` });
  const eyeballs = plan.cities.map((c) => c.eyeball).join(', ');
  const byEyeball = (name: string, flag: string): Result<LabCity, LabError> => {
    const c = plan.cities.find((x) => x.eyeball === name || x.id === name);
    return c ? ok(c) : err({ code: 'invalid', path: flag, message: `--${flag} ${name}: not an eyeball of lab ${plan.prefix}; use one of ${eyeballs}` });
  };
  const legit = o.legit !== undefined ? byEyeball(o.legit, 'legit') : ok(plan.cities[0] as LabCity);
  if (!legit.ok) return legit;
  const others = plan.cities.filter((c) => c.id !== legit.value.id);
  // The same DC as the legitimate client if a city lands there: the flood then shares its
  // servers, which is the case worth proving.
  const attacker = o.from !== undefined ? byEyeball(o.from, 'from') : ok(others.find((c) => c.prefers[0] === legit.value.prefers[0]) ?? others[0]);
  if (!attacker.ok) return attacker;
  if (!attacker.value) return err({ code: 'invalid', path: 'from', message: `lab ${plan.prefix} has one city: the attacker needs an eyeball of its own (lab up --cities 2 or more)` });
  if (attacker.value.id === legit.value.id)
    return err({ code: 'invalid', path: 'from', message: `--from ${attacker.value.eyeball} is also the legitimate client; pick another eyeball: ${eyeballs}` });
  return ok({ site, legit: legit.value, attacker: attacker.value });
}

const node = (c: LabCity): AttackNode => ({ eyeball: c.eyeball, ip: c.eyeballIp, dc: c.prefers[0] ?? '?' });

/** Runs one attack in lab `id`; the report, or why it could not run. */
export async function labAttack(o: AttackOptions): Promise<Result<AttackReport, LabError>> {
  const log = o.log ?? (() => {});
  if (!Number.isInteger(o.seconds) || o.seconds < 1 || o.seconds > 120) return err({ code: 'invalid', path: 'seconds', message: `--seconds ${o.seconds}: give 1 to 120` });
  if (!Number.isInteger(o.pps) || o.pps < 1 || o.pps > 100_000) return err({ code: 'invalid', path: 'pps', message: `--pps ${o.pps}: give 1 to 100000 (hping3 paces itself with a sleep per packet; ~15000 is what it reaches here)` });
  const st = readState(labDir(o.runDir, labPrefix(o.id)));
  if (!st.ok) return st;
  const planned = planLab(st.value.id, st.value.size);
  if (!planned.ok) return planned;
  const plan = planned.value;
  const nodes = chooseNodes(plan, o);
  if (!nodes.ok) return nodes;
  const { site, legit, attacker } = nodes.value;
  const port = FLOOD_PORT[o.kind] === 'service' ? site.port : (FLOOD_PORT[o.kind] as number);
  const target = { tenant: site.tenant, host: site.hostIp, port };
  const nsOf = (c: LabCity): string => plan.nodes.find((n) => n.name === c.eyeball)?.ns ?? c.eyeball;

  let api: LabApi | null = null;
  let mitigation: Mitigation | null = null;
  let flood: Flood | null = null;
  const tmp = await mkdtemp(join(tmpdir(), 'anyedge-attack-'));
  try {
    const started = await startLabApi(st.value.store.spec);
    if (!started.ok) return started;
    api = started.value;
    log(`REST API ${api.url}; installing the mitigation of a ${o.kind} flood to ${target.host}:${target.port}`);
    const m = await installMitigation(api, o.kind, target, new Date(), o.syn);
    if (!m.ok) return m;
    mitigation = m.value;
    log(`${mitigation.what} at revision ${mitigation.revision}, applied on every server in ${mitigation.appliedSeconds.toFixed(2)} s`);

    const ruleId = mitigation.undo.kind === 'delete-rule' ? mitigation.undo.ruleId : undefined;
    const before = await attackSnapshot(plan, ruleId);
    if (!before.ok) return before;
    const clientSeconds = o.seconds + 2;
    log(`legitimate client ${legit.eyeball} → ${site.hostIp}:${site.port} for ${clientSeconds} s: one long connection, a new one every 100 ms`);
    const client = runLegitClient({ ns: nsOf(legit), host: site.hostIp, port: site.port, seconds: clientSeconds, newEveryMs: 100, lineEveryMs: 100, timeoutMs: 3000 });
    await new Promise((r) => setTimeout(r, 1000));
    const payloadFile = join(tmp, 'payload');
    await writeSignature(payloadFile);
    log(`hping3 ${o.kind} flood from ${attacker.eyeball}: at most ${o.seconds * o.pps} packets, ${o.seconds} s`);
    flood = startFlood({ kind: o.kind, ns: nsOf(attacker), target: target.host, port, count: o.seconds * o.pps, intervalUs: Math.max(1, Math.floor(1e6 / o.pps)), seconds: o.seconds, payloadFile });
    const sent = await flood.done;
    flood = null;
    const seen = await client.done.catch((e: Error) => e);
    if (!sent.ok) return sent;
    if (seen instanceof Error) return err({ code: 'failed', path: 'legit', message: seen.message, cause: seen });
    log(`flood done: ${sent.value.transmitted} packets in ${sent.value.seconds.toFixed(1)} s; client: ${seen.short.echoed}/${seen.short.attempted} new connections echoed`);
    const after = await attackSnapshot(plan, ruleId);
    if (!after.ok) return after;
    const perServer = attackDelta(before.value, after.value);
    const totals = attackTotals(perServer);

    let ruleRemoved = false;
    if (!o.keepRule) {
      const removed = await removeMitigation(api, mitigation);
      if (!removed.ok) log(`could not undo ${mitigation.what}: ${removed.error.message}`);
      ruleRemoved = removed.ok;
    }
    mitigation = null; // removed, kept on purpose, or tried once: not again in finally
    const report: AttackReport = {
      kind: o.kind,
      target,
      attacker: node(attacker),
      legit: node(legit),
      mitigation: m.value,
      flood: sent.value,
      client: seen,
      perServer,
      totals,
      ruleRemoved,
      verdict: judge(sent.value, seen, totals, m.value.inXdp),
    };
    return ok(report);
  } finally {
    if (flood) (flood as Flood).stop();
    if (api && mitigation && !o.keepRule) await removeMitigation(api, mitigation as Mitigation);
    if (api) await (api as LabApi).close();
    await rm(tmp, { recursive: true, force: true });
  }
}
