/**
 * `lab trace --from EYEBALL --to HOST:PORT`: sends one real TCP connection (a payload the echo
 * service returns) and reports hop by hop where it went and what decided, from the kernel's own
 * state: the city router's BGP route (which DC), the per-server firewall counters of the tenant
 * (which server, which rule — `rule_<id>` or the default action), the GRE tunnel counters of the
 * servers' eBPF programs and of the customer router (into the tunnel, and back by anycast to
 * which server), and the client's outcome. Counters are read before and after, so other traffic
 * in the lab at the same moment shows up too: trace on a quiet lab.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { cidrContains, parseCidr } from '../model/net.ts';
import type { LabError } from './errors.ts';
import { delta, snapshot, type Snapshot } from './evidence.ts';
import { landsIn } from './landing.ts';
import { labPrefix } from './names.ts';
import { tcpFlows, type FlowResult } from './probe.ts';
import { labDir, readState } from './state.ts';
import { planLab, type LabCity, type LabPlan, type LabSite } from './topology.ts';

/** One hop: the node, what it did, and the counters that moved there. */
export interface TraceHop {
  readonly node: string;
  readonly what: string;
  readonly evidence: Readonly<Record<string, number>>;
}

/** What `lab trace` found. */
export interface TraceReport {
  readonly from: string;
  readonly to: { readonly host: string; readonly port: number };
  readonly tenant: string;
  readonly flow: FlowResult;
  /** The DC the eyeball's city router routes the tenant's prefix to. */
  readonly landedIn: string | null;
  /** Servers whose firewall counted the flow. */
  readonly servers: readonly string[];
  /** `rule <id>` or `default ingress`, from the counter that moved; null when none did. */
  readonly decidedBy: string | null;
  /** Servers that decapsulated the customer's replies. */
  readonly returnServers: readonly string[];
  readonly hops: readonly TraceHop[];
}

/** `HOST:PORT` → its parts, or an error naming `to`. */
export function parseTarget(text: string): Result<{ host: string; port: number }, LabError> {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !parseCidr(`${m[1]}/32`).ok || port < 1 || port > 65535)
    return err({ code: 'invalid', path: 'to', message: `${JSON.stringify(text)}: give an IPv4 address and a port, e.g. 203.0.113.100:21` });
  return ok({ host: m[1] as string, port });
}

const moved = (r: Readonly<Record<string, number>> | undefined): Record<string, number> => Object.fromEntries(Object.entries(r ?? {}).filter(([, v]) => v !== 0));

/** The hops of one traced flow, from the counters that moved (pure; `d` is the flow's delta). */
export function traceHops(plan: LabPlan, city: LabCity, site: LabSite, landed: string | null, to: { host: string; port: number }, flow: FlowResult, d: Snapshot): Omit<TraceReport, 'from' | 'to' | 'tenant' | 'flow'> {
  const hops: TraceHop[] = [];
  hops.push({ node: city.eyeball, what: `TCP from ${city.eyeballIp}${flow.localPort !== null ? `:${flow.localPort}` : ' (never connected)'} to ${to.host}:${to.port}`, evidence: {} });
  const dc = plan.dcs.find((x) => x.id === landed);
  hops.push({ node: city.router, what: dc ? `BGP best path to ${site.prefix}: ${dc.id} (${dc.ixIp}); preference ${city.prefers.join(' > ')}` : `no route to ${site.prefix}: no DC announces it to ${city.id}`, evidence: {} });
  // Forward: the servers whose ingress counters moved (the replies only touch egress ones).
  const ingress = (c: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(c).filter(([k]) => k.startsWith('rule_') || k === 'default_ingress'));
  const egress = (c: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(c).filter(([k]) => !(k in ingress(c))));
  const forward = d.servers.filter((s) => Object.keys(ingress(moved(s.counters))).length > 0 || s.greOut > 0);
  const decisions = new Set<string>();
  for (const s of forward) {
    const c = ingress(moved(s.counters));
    const rules = Object.keys(c).filter((k) => k.startsWith('rule_')).map((k) => `rule ${k.slice(5)}`);
    const dropped = (c.default_ingress ?? 0) > 0;
    for (const r of rules) decisions.add(r);
    if (dropped) decisions.add('default ingress');
    const what = [
      `${s.dc}'s router chose ${s.node} (ECMP); ${site.tenant}'s firewall: ${[...rules.map((r) => `${r} accepted`), ...(dropped ? ['the default ingress action (drop) took it'] : [])].join(', ') || 'no firewall counter moved'}`,
      ...(s.greOut > 0 ? [`into ${site.tenant}'s GRE tunnel toward ${site.routerIp}`] : []),
    ].join('; ');
    hops.push({ node: s.node, what, evidence: { ...c, ...(s.greOut ? { greOut: s.greOut } : {}) } });
  }
  if (d.customer.greIn > 0 || d.customer.greOut > 0)
    hops.push({ node: site.router, what: `decapsulated the tunnel's packets to ${site.host} and encapsulated its replies back to the anycast GRE endpoint`, evidence: { greIn: d.customer.greIn, greOut: d.customer.greOut } });
  const back = d.servers.filter((s) => s.greIn > 0);
  for (const s of back) hops.push({ node: s.node, what: `decapsulated ${site.tenant}'s replies (the anycast endpoint as routed from ${site.city}) and routed them to ${city.eyeball}`, evidence: { greIn: s.greIn, ...egress(moved(s.counters)) } });
  hops.push({ node: city.eyeball, what: flow.outcome === 'echoed' ? `the payload came back (${flow.ms} ms)` : `${flow.outcome}${flow.code ? ` (${flow.code})` : ''} after ${flow.ms} ms`, evidence: {} });
  return {
    landedIn: landed,
    servers: forward.map((s) => s.node),
    decidedBy: decisions.size ? [...decisions].join(', ') : null,
    returnServers: back.map((s) => s.node),
    hops,
  };
}

/** Traces one TCP connection from node `from` (an eyeball) to `to` in lab `id`. */
export async function labTrace(id: string, runDir: string, from: string, to: string, timeoutMs = 2000): Promise<Result<TraceReport, LabError>> {
  const target = parseTarget(to);
  if (!target.ok) return target;
  const st = readState(labDir(runDir, labPrefix(id)));
  if (!st.ok) return st;
  const p = planLab(st.value.id, st.value.size);
  if (!p.ok) return p;
  const plan = p.value;
  const city = plan.cities.find((c) => c.eyeball === from || c.id === from);
  if (!city) return err({ code: 'not_found', path: 'from', message: `${JSON.stringify(from)} is not an eyeball; eyeballs: ${plan.cities.map((c) => c.eyeball).join(', ')}` });
  const site = plan.sites.find((s) => {
    const c = parseCidr(s.prefix);
    const h = parseCidr(`${target.value.host}/32`);
    return c.ok && h.ok && cidrContains(c.value, h.value);
  });
  if (!site) return err({ code: 'not_found', path: 'to', message: `${target.value.host} is in no tenant's prefix; tenants: ${plan.sites.map((s) => `${s.tenant} ${s.prefix}`).join(', ')}` });
  const ns = plan.nodes.find((n) => n.name === city.eyeball)?.ns ?? city.eyeball;
  const landed = await landsIn(plan, city);
  const before = await snapshot(plan, site, '');
  if (!before.ok) return before;
  let flows: FlowResult[];
  try {
    flows = await tcpFlows({ ns, host: target.value.host, port: target.value.port, payloads: [`trace from ${city.eyeball}`], timeoutMs });
  } catch (e) {
    return err({ code: 'failed', path: 'from', message: (e as Error).message, cause: e });
  }
  const after = await snapshot(plan, site, '');
  if (!after.ok) return after;
  const flow = flows[0] as FlowResult;
  return ok({ from: city.eyeball, to: target.value, tenant: site.tenant, flow, ...traceHops(plan, city, site, landed, target.value, flow, delta(before.value, after.value)) });
}

/** The report for people: one line per hop. */
export function formatTrace(r: TraceReport): string {
  const out = [`trace ${r.from} → ${r.to.host}:${r.to.port} (${r.tenant}): ${r.flow.outcome}, via ${r.landedIn ?? 'no DC'} (${r.servers.join(', ') || 'no server counted it'}), decided by ${r.decidedBy ?? 'nothing that counts'}`];
  r.hops.forEach((h, i) => {
    const ev = Object.entries(h.evidence).map(([k, v]) => `${k} +${v}`).join(' ');
    out.push(`${String(i + 1).padStart(2)}. ${h.node}: ${h.what}${ev ? `  [${ev}]` : ''}`);
  });
  return `${out.join('\n')}\n`;
}
