/**
 * Policy routing rules (`ip rule`). In the default namespace one rule per family sends packets
 * carrying our fwmark to the `transit` table. Ours are recognised by priority band and table
 * range (marks.ts): rules have no other place to carry a mark.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, nsLabel, type KernelError } from './errors.ts';
import { ip, ipJson, voidOf } from './iproute.ts';
import type { Family } from './ipaddr.ts';
import { inRange, ruleIsOurs, type Marks } from './marks.ts';
import { checkNetnsName, type NsRef } from './netns.ts';
import { checkMark, checkPriority, checkTable, firstInvalid } from './validate.ts';

/** A rule as listed. */
export interface Rule {
  readonly family: Family;
  readonly priority: number;
  /** `lookup` (with a table), `goto`, `nop`, `blackhole`, `unreachable`, `prohibit`. */
  readonly action: string;
  readonly table: number | null;
  readonly fwmark?: number;
  /** Present whenever fwmark is; 0xffffffff when the rule gave none. */
  readonly fwmask?: number;
  /** Other selectors in `ip rule` words (`not`, `from 192.0.2.0/24`, `iif eth0` …), for display. */
  readonly selectors: readonly string[];
  /** In our priority band and looking up one of our tables. */
  readonly owned: boolean;
}

/** A rule to add: `pref P [fwmark M/MASK] lookup T`. */
export interface RuleSpec {
  readonly family: Family;
  readonly priority: number;
  readonly table: number;
  readonly fwmark?: number;
  /** Defaults to 0xffffffff when fwmark is given. */
  readonly fwmask?: number;
}

/** Rule operations. */
export interface RulesApi {
  /** All rules of both families, ours or not (the kernel's defaults too), sorted. */
  list(ns: NsRef): Promise<Result<Rule[], KernelError>>;
  /** Adds our rule; `exists` if an identical one is there. Priority and table must be in our ranges. */
  add(ns: NsRef, spec: RuleSpec): Promise<Result<void, KernelError>>;
  /** Deletes our rule identical to spec; one already gone is success. */
  delete(ns: NsRef, spec: RuleSpec): Promise<Result<void, KernelError>>;
  /** Deletes our rules not in `keep`; returns what it deleted. */
  prune(ns: NsRef, keep: readonly RuleSpec[]): Promise<Result<Rule[], KernelError>>;
}

/** A validated spec with the mask filled in. */
export interface NormalRule {
  readonly family: Family;
  readonly priority: number;
  readonly table: number;
  readonly fwmark?: number;
  readonly fwmask?: number;
}

/** `rule add pref 1000 fwmark 0xae/0xff lookup 100` for messages and dumps. */
export function ruleText(r: { priority: number; table: number | null; fwmark?: number; fwmask?: number; action?: string }): string {
  const mark = r.fwmark === undefined ? '' : ` fwmark 0x${r.fwmark.toString(16)}${r.fwmask === undefined || r.fwmask === 0xffffffff ? '' : `/0x${r.fwmask.toString(16)}`}`;
  const act = r.action === undefined || r.action === 'lookup' ? ` lookup ${r.table}` : ` ${r.action}`;
  return `pref ${r.priority}${mark}${act}`;
}

/** Validates a spec against the input rules and our band; shared by the drivers. */
export function normalizeRule(m: Marks, op: string, ns: NsRef, spec: RuleSpec): NormalRule | KernelError {
  const path = `${nsLabel(ns)}/rule/${spec.family}/${spec.priority}`;
  const bad = firstInvalid(
    op,
    ns,
    path,
    ns === null ? null : checkNetnsName(ns),
    spec.family === 4 || spec.family === 6 ? null : `family ${String(spec.family)} must be 4 or 6`,
    checkPriority(spec.priority),
    checkTable(spec.table),
    spec.fwmark === undefined ? null : checkMark('fwmark', spec.fwmark),
    spec.fwmask === undefined ? null : checkMark('fwmask', spec.fwmask),
    spec.fwmask !== undefined && spec.fwmark === undefined ? 'fwmask needs a fwmark' : null,
    // The kernel drops a zero mark with a full mask (it matches everything), so it could never
    // be listed back the way it was asked for.
    spec.fwmark === 0 && (spec.fwmask ?? 0xffffffff) === 0xffffffff ? 'fwmark 0 needs a mask narrower than 0xffffffff (e.g. 0/0xff: "no mark in these bits")' : null,
  );
  if (bad) return bad;
  if (!inRange(m.rulePriorities, spec.priority) || !inRange(m.tables, spec.table))
    return kernelError('invalid', op, ns, `priority ${spec.priority} / table ${spec.table} is outside our band (priorities ${m.rulePriorities.min}–${m.rulePriorities.max}, tables ${m.tables.min}–${m.tables.max})`, {
      path,
      remedy: 'anyedge only manages rules in its band, which is how it tells them from others; pick a priority and table inside it',
    });
  return {
    family: spec.family,
    priority: spec.priority,
    table: spec.table,
    ...(spec.fwmark !== undefined ? { fwmark: spec.fwmark, fwmask: spec.fwmask ?? 0xffffffff } : {}),
  };
}

/** Whether a listed rule is exactly the normalised spec (no other selectors). */
export function ruleMatches(r: Rule, n: NormalRule): boolean {
  return (
    r.family === n.family &&
    r.priority === n.priority &&
    r.action === 'lookup' &&
    r.table === n.table &&
    r.fwmark === n.fwmark &&
    r.fwmask === n.fwmask &&
    r.selectors.length === 0
  );
}

/** Rule order in lists. */
export function compareRules(a: Rule, b: Rule): number {
  return a.family - b.family || a.priority - b.priority || (a.table ?? -1) - (b.table ?? -1) || (a.fwmark ?? -1) - (b.fwmark ?? -1) || (a.fwmask ?? -1) - (b.fwmask ?? -1) || a.selectors.join(' ').localeCompare(b.selectors.join(' '));
}

const FR_ACT = ['unspec', 'lookup', 'goto', 'nop', 'res3', 'res4', 'blackhole', 'unreachable', 'prohibit'];

interface IpRule {
  priority: number;
  not?: null;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  iif?: string;
  oif?: string;
  fwmark?: string;
  fwmask?: string;
  table?: string;
  action?: string;
  goto?: number;
}

function parseRule(r: IpRule, family: Family, m: Marks): Rule {
  const selectors: string[] = [];
  if (r.not !== undefined) selectors.push('not');
  if (r.src !== undefined && r.src !== 'all') selectors.push(`from ${r.src}${r.srclen !== undefined ? `/${r.srclen}` : ''}`);
  if (r.dst !== undefined && r.dst !== 'all') selectors.push(`to ${r.dst}${r.dstlen !== undefined ? `/${r.dstlen}` : ''}`);
  if (r.iif !== undefined) selectors.push(`iif ${r.iif}`);
  if (r.oif !== undefined) selectors.push(`oif ${r.oif}`);
  const table = r.table !== undefined && /^\d+$/.test(r.table) ? Number(r.table) : null;
  const action = r.goto !== undefined ? 'goto' : r.table !== undefined ? 'lookup' : r.action !== undefined && /^\d+$/.test(r.action) ? (FR_ACT[Number(r.action)] ?? r.action) : (r.action ?? 'lookup');
  const fw = r.fwmark !== undefined ? { fwmark: Number(r.fwmark), fwmask: r.fwmask !== undefined ? Number(r.fwmask) : 0xffffffff } : {};
  return { family, priority: r.priority, action, table, ...fw, selectors, owned: action === 'lookup' && ruleIsOurs(m, r.priority, table) };
}

/** The Linux driver: `ip -N -j rule show`, `ip rule add|del`. */
export function linuxRules(m: Marks): RulesApi {
  const api: RulesApi = {
    async list(ns) {
      const bad = firstInvalid('rule show', ns, undefined, ns === null ? null : checkNetnsName(ns));
      if (bad) return err(bad);
      const out: Rule[] = [];
      for (const family of [4, 6] as const) {
        const res = await ipJson<IpRule>(ns, [`-${family}`, '-N', 'rule', 'show'], 'rule show');
        if (!res.ok) return res;
        out.push(...res.value.map((r) => parseRule(r, family, m)));
      }
      return ok(out.sort(compareRules));
    },

    async add(ns, spec) {
      const op = `rule add ${ruleText(spec)}`;
      const n = normalizeRule(m, op, ns, spec);
      if ('code' in n) return err(n);
      return voidOf(await ip(ns, ruleArgs('add', n)), op, ns, { path: `${nsLabel(ns)}/rule/${n.family}/${n.priority}` });
    },

    async delete(ns, spec) {
      const op = `rule del ${ruleText(spec)}`;
      const n = normalizeRule(m, op, ns, spec);
      if ('code' in n) return err(n);
      // Look first: the kernel's delete matches on the attributes given only, so a rule without
      // fwmark would also take a rule that has one.
      const cur = await api.list(ns);
      if (!cur.ok) return cur;
      if (!cur.value.some((r) => ruleMatches(r, n))) return ok(undefined);
      const res = voidOf(await ip(ns, ruleArgs('del', n)), op, ns, { path: `${nsLabel(ns)}/rule/${n.family}/${n.priority}` });
      return !res.ok && res.error.code === 'not_found' ? ok(undefined) : res;
    },

    async prune(ns, keep) {
      return pruneRules(m, api, ns, keep);
    },
  };
  return api;
}

function ruleArgs(verb: 'add' | 'del', n: NormalRule): string[] {
  const mark = n.fwmark === undefined ? [] : ['fwmark', `0x${n.fwmark.toString(16)}/0x${(n.fwmask ?? 0xffffffff).toString(16)}`];
  return [`-${n.family}`, 'rule', verb, 'pref', String(n.priority), ...mark, 'lookup', String(n.table)];
}

/** Prune over any RulesApi. */
export async function pruneRules(m: Marks, api: RulesApi, ns: NsRef, keep: readonly RuleSpec[]): Promise<Result<Rule[], KernelError>> {
  const kept: NormalRule[] = [];
  for (const k of keep) {
    const n = normalizeRule(m, `rule prune ${ruleText(k)}`, ns, k);
    if ('code' in n) return err(n);
    kept.push(n);
  }
  const all = await api.list(ns);
  if (!all.ok) return all;
  const gone: Rule[] = [];
  for (const r of all.value) {
    if (!r.owned || kept.some((k) => ruleMatches(r, k))) continue;
    // A rule of ours with extra selectors (made by hand in our band) cannot be deleted exactly
    // through RuleSpec; leave it and let the caller see it in list().
    if (r.selectors.length > 0 || r.table === null) continue;
    const spec: RuleSpec = { family: r.family, priority: r.priority, table: r.table, ...(r.fwmark !== undefined ? { fwmark: r.fwmark, fwmask: r.fwmask ?? 0xffffffff } : {}) };
    const res = await api.delete(ns, spec);
    if (!res.ok) return res;
    gone.push(r);
  }
  return ok(gone);
}
