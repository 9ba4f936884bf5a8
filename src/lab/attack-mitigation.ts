/**
 * The mitigation `lab attack` installs through the REST API before it floods, as an operator
 * would during an attack (PUT /v1/dos/rules/<id>, then every agent applies it), and removes
 * afterwards:
 * - UDP flood: a drop rule on the flood's signature — UDP to the target address and port whose
 *   payload starts with UDP_SIGNATURE — so other UDP to the same port still passes;
 * - SYN flood: a rate limit on SYNs (SYN set, ACK unset) to the target address and port, counted
 *   per source address: the attacker's bucket overflows, a legitimate client opening a few
 *   connections a second never comes near its own.
 * Both carry an expiry, so a rule left behind by a killed run stops being enforced by itself.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';
import { waitApplied, type LabApi } from './api.ts';
import { UDP_SIGNATURE, type FloodKind } from './attack-flood.ts';

/** The DoS rule id of each flood's mitigation. */
export const MITIGATION_RULE_ID: Readonly<Record<FloodKind, string>> = { syn: 'lab-attack-syn', udp: 'lab-attack-udp' };

/** SYNs per second one source address may send to the target, per server. */
export const SYN_RATE_PER_SOURCE = 50;

/** How long a mitigation rule stays enforced if nothing removes it. */
export const MITIGATION_TTL_MS = 10 * 60_000;

/** What the rule is aimed at. */
export interface AttackTarget {
  readonly tenant: string;
  readonly host: string;
  readonly port: number;
}

/** The DoS rule (API body) mitigating a flood of `kind` against `t` (pure). */
export function mitigationRule(kind: FloodKind, t: AttackTarget, now: Date): Record<string, unknown> {
  const expires = new Date(now.getTime() + MITIGATION_TTL_MS).toISOString();
  const scope = { tenant: t.tenant };
  if (kind === 'udp')
    return {
      description: `lab attack: UDP flood to ${t.host}:${t.port} carrying "${UDP_SIGNATURE.toString('ascii')}"`,
      match: { dst: [`${t.host}/32`], protocol: 'udp', dport: [t.port], payload: { offset: 0, bytes: UDP_SIGNATURE.toString('hex') } },
      action: 'drop',
      scope,
      expires,
    };
  return {
    description: `lab attack: SYN flood to ${t.host}:${t.port}, ${SYN_RATE_PER_SOURCE} SYN/s per source address`,
    match: { dst: [`${t.host}/32`], protocol: 'tcp', dport: [t.port], tcpFlags: { set: ['syn'], unset: ['ack'] } },
    action: 'rate-limit',
    // Per source address (/32): the lab's eyeballs all live in 192.0.2.0/24, so the usual /24
    // grouping would put the legitimate client in the attacker's bucket.
    rateLimit: { pps: SYN_RATE_PER_SOURCE, per: 'src-prefix', prefixLength: { ipv4: 32, ipv6: 128 } },
    scope,
    expires,
  };
}

/** An installed mitigation. */
export interface Mitigation {
  readonly ruleId: string;
  readonly rule: Record<string, unknown>;
  /** Store revision of the write. */
  readonly revision: number;
  /** From the write until every server reported it applied. */
  readonly appliedSeconds: number;
}

/** PUTs the rule and waits until every server applied it. */
export async function installMitigation(api: LabApi, kind: FloodKind, t: AttackTarget, now: Date): Promise<Result<Mitigation, LabError>> {
  const ruleId = MITIGATION_RULE_ID[kind];
  const rule = mitigationRule(kind, t, now);
  const r = await api.call('PUT', `/v1/dos/rules/${ruleId}`, rule);
  if (r.status !== 200 && r.status !== 201)
    return err({ code: 'failed', path: `dos/rules/${ruleId}`, message: `the API refused the mitigation rule (${r.status}): ${JSON.stringify(r.body)}` });
  const revision = (r.body as { revision?: number }).revision;
  if (typeof revision !== 'number') return err({ code: 'failed', path: `dos/rules/${ruleId}`, message: `the API's reply has no revision: ${JSON.stringify(r.body)}` });
  const applied = await waitApplied(api, revision, 30_000);
  if (!applied.ok) return applied;
  return ok({ ruleId, rule, revision, appliedSeconds: applied.value });
}

/** DELETEs the rule (already gone is success) and waits until every server applied that. */
export async function removeMitigation(api: LabApi, ruleId: string): Promise<Result<void, LabError>> {
  const r = await api.call('DELETE', `/v1/dos/rules/${ruleId}`);
  if (r.status === 404) return ok(undefined);
  if (r.status !== 200) return err({ code: 'failed', path: `dos/rules/${ruleId}`, message: `DELETE answered ${r.status}: ${JSON.stringify(r.body)}; remove it with anyedge delete dos ${ruleId}` });
  const revision = (r.body as { revision?: number }).revision;
  if (typeof revision === 'number') {
    const applied = await waitApplied(api, revision, 30_000);
    if (!applied.ok) return applied;
  }
  return ok(undefined);
}
