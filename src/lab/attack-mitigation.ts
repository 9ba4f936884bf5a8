/**
 * The mitigation `lab attack` installs through the REST API before it floods, as an operator
 * would during an attack, waits until every agent applied it, and undoes afterwards:
 * - UDP flood: a DoS drop rule on the flood's signature — UDP to the target address and port
 *   whose payload starts with UDP_SIGNATURE — so other UDP to the same port still passes;
 * - SYN flood, `rate-limit`: a DoS rule limiting SYNs (SYN set, ACK unset) to the target address
 *   and port per source address: the attacker's bucket overflows and its excess is dropped in
 *   XDP, a legitimate client opening a few connections a second never comes near its own bucket;
 * - SYN flood, `xdp` or `synproxy`: the tenant's SYN-flood protection
 *   (`tenants/<t>.synFlood.protection`): SYNs answered with SYN cookies by XDP on the uplink
 *   (XDP_TX), or by nftables' synproxy in the tenant namespace; steering keeps each protected
 *   flow on one server of the DC, so either holds with any number of servers. `xdp` is the
 *   default (SYN_FLOOD_RECOMMENDED).
 * DoS rules carry an expiry, so one left behind by a killed run stops being enforced by itself.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';
import { waitApplied, type LabApi } from './api.ts';
import { UDP_SIGNATURE, type FloodKind } from './attack-flood.ts';
import { SYN_FLOOD_RECOMMENDED } from '../model/synflood.ts';

/** The DoS rule id of each flood's mitigation rule. */
export const MITIGATION_RULE_ID: Readonly<Record<FloodKind, string>> = { syn: 'lab-attack-syn', udp: 'lab-attack-udp' };

/** How a SYN flood is mitigated. */
export const SYN_MITIGATIONS = ['xdp', 'synproxy', 'rate-limit'] as const;
export type SynMitigation = (typeof SYN_MITIGATIONS)[number];

/** What was installed: a DoS rule, or a tenant's SYN-flood protection. */
export type MitigationKind = 'drop-rule' | 'rate-limit' | 'syn-xdp' | 'syn-synproxy';

/** SYNs per second one source address may send to the target, per server. */
export const SYN_RATE_PER_SOURCE = 50;

/** How long a mitigation rule stays enforced if nothing removes it. */
export const MITIGATION_TTL_MS = 10 * 60_000;

/**
 * MSS of the cookie SYN-ACKs: the lab's GRE tunnels carry 1472–1476 bytes (customer.ts), minus
 * 40 for IPv4 and TCP headers, rounded down.
 */
export const LAB_SYN_MSS = 1400;

/** What the mitigation is aimed at. */
export interface AttackTarget {
  readonly tenant: string;
  readonly host: string;
  readonly port: number;
}

/** The DoS rule (API body) for a UDP flood, or for a SYN flood's rate-limit fallback (pure). */
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

/** An installed mitigation and how to undo it. */
export interface Mitigation {
  readonly kind: MitigationKind;
  /** For people: `dos rule lab-attack-udp`, `tenants/acme synFlood.protection xdp`. */
  readonly what: string;
  /** The DoS rule, or the tenant's synFlood setting, as written. */
  readonly body: Record<string, unknown>;
  /** Store revision of the write. */
  readonly revision: number;
  /** From the write until every server reported it applied. */
  readonly appliedSeconds: number;
  /** Whether it acts in XDP (every kind but synproxy). */
  readonly inXdp: boolean;
  readonly undo: { readonly kind: 'delete-rule'; readonly ruleId: string } | { readonly kind: 'put-tenant'; readonly tenant: string; readonly value: Record<string, unknown> };
}

async function written(api: LabApi, what: string, r: { status: number; body: unknown }): Promise<Result<{ revision: number; appliedSeconds: number }, LabError>> {
  if (r.status !== 200 && r.status !== 201) return err({ code: 'failed', path: what, message: `the API refused the mitigation (${r.status}): ${JSON.stringify(r.body)}` });
  const revision = (r.body as { revision?: number }).revision;
  if (typeof revision !== 'number') return err({ code: 'failed', path: what, message: `the API's reply has no revision: ${JSON.stringify(r.body)}` });
  const applied = await waitApplied(api, revision, 30_000);
  return applied.ok ? ok({ revision, appliedSeconds: applied.value }) : applied;
}

/** Installs the mitigation of a `kind` flood (`syn`: by `syn`) and waits until every server applied it. */
export async function installMitigation(api: LabApi, kind: FloodKind, t: AttackTarget, now: Date, syn: SynMitigation = SYN_FLOOD_RECOMMENDED): Promise<Result<Mitigation, LabError>> {
  if (kind === 'udp' || syn === 'rate-limit') {
    const ruleId = MITIGATION_RULE_ID[kind];
    const body = mitigationRule(kind, t, now);
    const w = await written(api, `dos/rules/${ruleId}`, await api.call('PUT', `/v1/dos/rules/${ruleId}`, body));
    if (!w.ok) return w;
    return ok({ kind: kind === 'udp' ? 'drop-rule' : 'rate-limit', what: `dos rule ${ruleId}`, body, ...w.value, inXdp: true, undo: { kind: 'delete-rule', ruleId } });
  }
  const path = `tenants/${t.tenant}`;
  const cur = await api.call('GET', `/v1/tenants/${t.tenant}`);
  if (cur.status !== 200) return err({ code: 'failed', path, message: `GET /v1/tenants/${t.tenant} answered ${cur.status}: ${JSON.stringify(cur.body)}` });
  const { id: _id, revision: _rev, ...tenant } = cur.body as Record<string, unknown>;
  const body = { protection: syn, mss: LAB_SYN_MSS };
  const w = await written(api, path, await api.call('PUT', `/v1/tenants/${t.tenant}`, { ...tenant, synFlood: body }));
  if (!w.ok) return w;
  return ok({ kind: syn === 'xdp' ? 'syn-xdp' : 'syn-synproxy', what: `tenants/${t.tenant} synFlood.protection ${syn}`, body, ...w.value, inXdp: syn === 'xdp', undo: { kind: 'put-tenant', tenant: t.tenant, value: tenant } });
}

/** Undoes a mitigation (a rule already gone is success) and waits until every server applied that. */
export async function removeMitigation(api: LabApi, m: Pick<Mitigation, 'undo'>): Promise<Result<void, LabError>> {
  const u = m.undo;
  const r = u.kind === 'delete-rule' ? await api.call('DELETE', `/v1/dos/rules/${u.ruleId}`) : await api.call('PUT', `/v1/tenants/${u.tenant}`, u.value);
  const what = u.kind === 'delete-rule' ? `dos/rules/${u.ruleId}` : `tenants/${u.tenant}`;
  if (u.kind === 'delete-rule' && r.status === 404) return ok(undefined);
  if (r.status !== 200)
    return err({ code: 'failed', path: what, message: `undoing the mitigation answered ${r.status}: ${JSON.stringify(r.body)}; ${u.kind === 'delete-rule' ? `remove it with anyedge delete dos ${u.ruleId}` : `set tenants/${u.tenant} synFlood back by hand`}` });
  const revision = (r.body as { revision?: number }).revision;
  if (typeof revision === 'number') {
    const applied = await waitApplied(api, revision, 30_000);
    if (!applied.ok) return applied;
  }
  return ok(undefined);
}
