/**
 * The reconcile step of the XDP DoS stage: reads the DoS maps, compiles the rules in force here
 * and now (keeping the slots the kernel holds, so counters keep counting), and returns the steps
 * that make the maps equal to the compiled tables. Hooked into reconcile.ts `plan`.
 *
 * Order, so that no packet meets a half-made rule (add before delete):
 *   adds: rule slots (new slots' counters zeroed first) → match entries → new masks, then
 *         dos_conf.nmasks raised to cover them
 *   dels: removed masks cleared, nmasks lowered → stale entries deleted → freed slots cleared
 * An entry is written before the mask that makes the program look for it, and a mask is cleared
 * before its entries go. Each group is one bpftool batch. A rule added or removed changes map
 * entries only: the program is never reloaded.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import { compileDos, type DosCompileError, type DosTables } from '../compile/dos/compile.ts';
import type { BpfError } from '../kernel/bpf/bpftool.ts';
import { dosKeyText, dosMaskText, dosRuleText, type DosConf, type DosMapsApi, type DosMask, type DosOp } from '../kernel/bpf/dos.ts';
import { DOS_MAX_MASKS } from '../kernel/bpf/dos-layout.ts';
import type { ReconcileError, Step } from './reconcile.ts';

/** What the DoS step compiles: the config, this server's data center and the instant (ms). */
export interface DosInput {
  readonly config: Config;
  readonly dc: string;
  readonly now: number;
}

/** The steps, split so the caller keeps every add before every delete. */
export interface DosSteps {
  readonly adds: Step[];
  readonly dels: Step[];
  /** The tables the steps lead to (slots as they will be in the kernel). */
  readonly tables: DosTables;
}

/** The last tables planned for each maps object: what metrics name slots with. */
const lastTables = new WeakMap<DosMapsApi, DosTables>();

/** The tables last planned against `api` (slot → rule id for metrics); undefined before any plan. */
export function lastDosTables(api: DosMapsApi): DosTables | undefined {
  return lastTables.get(api);
}

/** All compile errors as one message: each with its path. */
export function formatDosErrors(errors: readonly DosCompileError[]): string {
  return errors.map((e) => `${e.path}: ${e.message}`).join('; ');
}

const sample = (items: readonly string[], n = 3) => items.slice(0, n).join('; ') + (items.length > n ? `; … (${items.length - n} more)` : '');

function fromBpf(path: string, e: BpfError): ReconcileError {
  return { code: 'bpf', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e };
}

/** Reads the DoS maps and returns the steps to make them equal to the rules in force. Reads only. */
export async function planDos(api: DosMapsApi, input: DosInput): Promise<Result<DosSteps, ReconcileError>> {
  const cur = await api.read();
  if (!cur.ok) return err(fromBpf('bpf/dos', cur.error));
  const have = cur.value;
  const current = new Map([...have.rules].map(([slot, r]) => [slot, r.idHash]));
  const compiled = compileDos(input.config, { dc: input.dc, now: input.now, current });
  if (!compiled.ok) {
    const first = compiled.error[0]!;
    return err({ code: 'invalid', path: first.path, op: 'compile dos rules', message: formatDosErrors(compiled.error) });
  }
  const t = compiled.value;
  lastTables.set(api, t);
  const adds: Step[] = [];
  const dels: Step[] = [];
  const step = (list: Step[], action: Step['action'], path: string, what: string, ops: DosOp[]) =>
    list.push({
      action,
      path,
      what,
      run: async () => {
        const r = await api.write(ops);
        return r.ok ? ok(undefined) : err(fromBpf(path, r.error));
      },
    });

  // Rule slots.
  const ruleOps: DosOp[] = [];
  const ruleLines: string[] = [];
  let fresh = 0;
  for (const r of t.rules) {
    const old = have.rules.get(r.slot);
    if (old && dosRuleText(old) === dosRuleText(r.value)) continue;
    if (!old || old.idHash !== r.value.idHash) {
      // A slot given to a rule starts its counters from zero.
      ruleOps.push({ kind: 'zero-stats', slot: r.slot });
      fresh++;
    }
    ruleOps.push({ kind: 'rule', slot: r.slot, rule: r.value });
    ruleLines.push(`slot ${r.slot} ${r.id}: ${dosRuleText(r.value)}`);
  }
  if (ruleOps.length) step(adds, fresh ? 'create' : 'update', 'dos/rules', `bpf dos_rules put ${ruleLines.length} slots (${fresh} new, counters zeroed): ${sample(ruleLines)}`, ruleOps);

  // Match entries.
  const want = new Map(t.entries.map((e) => [dosKeyText(e.key), e]));
  const entryOps: DosOp[] = [];
  const entryLines: string[] = [];
  for (const [text, e] of want) {
    const old = have.entries.get(text);
    if (old && old.slots.join(',') === e.slots.join(',')) continue;
    entryOps.push({ kind: 'entry', key: e.key, slots: e.slots });
    entryLines.push(`${text} → ${e.slots.join(',')}`);
  }
  if (entryOps.length) step(adds, 'create', 'dos/match', `bpf dos_match put ${entryOps.length} entries: ${sample(entryLines)}`, entryOps);

  // Masks: an index keeps its mask while it is in use; a new mask takes a free index.
  const wantMasks = new Map(t.masks.map((m) => [dosMaskText(m), m]));
  const keep = new Map<number, DosMask>();
  const drop: number[] = [];
  const kept = new Set<string>();
  for (const [i, m] of [...have.masks].sort(([a], [b]) => a - b)) {
    const text = dosMaskText(m);
    if (wantMasks.has(text) && !kept.has(text)) {
      keep.set(i, m);
      kept.add(text);
    } else drop.push(i);
  }
  const missing = [...wantMasks].filter(([text]) => !kept.has(text));
  const now: { index: number; mask: DosMask }[] = [];
  const later: DosMask[] = [];
  let free = 0;
  for (const [, m] of missing) {
    while (free < DOS_MAX_MASKS && have.masks.has(free)) free++;
    if (free < DOS_MAX_MASKS) now.push({ index: free++, mask: m });
    else later.push(m); // no index free until removed masks are cleared: added right after that
  }
  const top = (idx: Iterable<number>) => Math.max(0, ...[...idx].map((i) => i + 1));
  const cpus = api.cpus();
  const finalIdx = new Map<number, DosMask>([...keep, ...now.map((x) => [x.index, x.mask] as const)]);
  // Indexes for masks that only fit after the removals: the lowest ones free by then.
  const laterOps: { index: number; mask: DosMask }[] = [];
  let f2 = 0;
  for (const m of later) {
    while (finalIdx.has(f2)) f2++;
    laterOps.push({ index: f2, mask: m });
    finalIdx.set(f2, m);
  }
  const finalConf: DosConf = { nmasks: top(finalIdx.keys()), cpus };
  const confText = (c: DosConf) => `nmasks ${c.nmasks} cpus ${c.cpus}`;
  let confAfterAdds = have.conf;
  if (now.length) {
    const during: DosConf = { nmasks: Math.max(have.conf.nmasks, top([...have.masks.keys(), ...now.map((x) => x.index)])), cpus };
    step(adds, 'create', 'dos/masks', `bpf dos_masks put ${now.map((x) => `${x.index}: ${dosMaskText(x.mask)}`).join('; ')}; dos_conf ${confText(during)}`, [
      ...now.map((x): DosOp => ({ kind: 'mask', index: x.index, mask: x.mask })),
      { kind: 'conf', conf: during },
    ]);
    confAfterAdds = during;
  }
  if (drop.length || laterOps.length) {
    step(dels, 'delete', 'dos/masks', `bpf dos_masks clear ${drop.join(', ') || '-'}${laterOps.length ? `, then put ${laterOps.map((x) => `${x.index}: ${dosMaskText(x.mask)}`).join('; ')}` : ''}; dos_conf ${confText(finalConf)}`, [
      ...drop.map((index): DosOp => ({ kind: 'mask', index, mask: null })),
      ...laterOps.map((x): DosOp => ({ kind: 'mask', index: x.index, mask: x.mask })),
      { kind: 'conf', conf: finalConf },
    ]);
  } else if (confText(confAfterAdds) !== confText(finalConf)) {
    step(now.length ? dels : adds, 'update', 'dos/conf', `bpf dos_conf ${confText(finalConf)}`, [{ kind: 'conf', conf: finalConf }]);
  }

  // Stale entries, then freed slots.
  const staleEntries = [...have.entries].filter(([text]) => !want.has(text));
  if (staleEntries.length)
    step(dels, 'delete', 'dos/match', `bpf dos_match delete ${staleEntries.length} entries: ${sample(staleEntries.map(([text]) => text))}`, staleEntries.map(([, e]): DosOp => ({ kind: 'entry', key: e.key, slots: null })));
  const inUse = new Set(t.rules.map((r) => r.slot));
  const freed = [...have.rules.keys()].filter((s) => !inUse.has(s)).sort((a, b) => a - b);
  if (freed.length) step(dels, 'delete', 'dos/rules', `bpf dos_rules clear ${freed.length} slots: ${sample(freed.map(String), 10)}`, freed.map((slot): DosOp => ({ kind: 'rule', slot, rule: null })));

  return ok({ adds, dels, tables: t });
}
