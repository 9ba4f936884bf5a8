/**
 * An in-memory DoS maps fake for the reconciler's tests: it keeps the same things the kernel maps
 * keep (settings, masks by index, rule slots, entries, per-slot counters), refuses what the
 * kernel would (indexes and slots out of range, too many rules per key), and prints its state as
 * canonical text, one line per entry, in a stable order.
 */
import { err, ok } from '../../lib/result.ts';
import type { BpfError } from './bpftool.ts';
import { dosKeyText, dosMaskText, dosRuleText, type DosConf, type DosKey, type DosMapsApi, type DosMask, type DosOp, type DosRuleStats, type DosRuleValue } from './dos.ts';
import { DOS_MAX_MASKS, DOS_MAX_RULES, DOS_SLOTS_PER_KEY } from './dos-layout.ts';

/** The fake, plus its canonical text and what tests need to move its counters. */
export interface FakeDosMaps extends DosMapsApi {
  dump(): string;
  /** Adds to a slot's counters, as the program would for traffic a test says it saw. */
  count(slot: number, add: Partial<Record<keyof DosRuleStats, number>>): void;
  /** How many write calls were made (a no-op plan makes none). */
  readonly writes: number;
}

/** A fresh fake: empty maps, `cpus` CPUs (default 2). */
export function fakeDosMaps(cpus = 2): FakeDosMaps {
  let conf: DosConf = { nmasks: 0, cpus: 0 };
  const masks = new Map<number, DosMask>();
  const rules = new Map<number, DosRuleValue>();
  const entries = new Map<string, { key: DosKey; slots: number[] }>();
  const stats = new Map<number, DosRuleStats>();
  let writes = 0;
  const fail = (message: string): { ok: false; error: BpfError } => err({ code: 'bpf_failed', op: 'dos maps write', message });
  return {
    async read() {
      return ok({
        conf: { ...conf },
        masks: new Map(masks),
        rules: new Map(rules),
        entries: new Map([...entries].map(([k, v]) => [k, { key: v.key, slots: [...v.slots] }])),
      });
    },
    async write(ops: readonly DosOp[]) {
      writes++;
      for (const op of ops) {
        switch (op.kind) {
          case 'conf':
            conf = { ...op.conf };
            break;
          case 'mask':
            if (op.index < 0 || op.index >= DOS_MAX_MASKS) return fail(`mask index ${op.index} is outside dos_masks (0–${DOS_MAX_MASKS - 1})`);
            if (op.mask) masks.set(op.index, op.mask);
            else masks.delete(op.index);
            break;
          case 'rule':
            if (op.slot < 0 || op.slot >= DOS_MAX_RULES) return fail(`slot ${op.slot} is outside dos_rules (0–${DOS_MAX_RULES - 1})`);
            if (op.rule) rules.set(op.slot, op.rule);
            else rules.delete(op.slot);
            break;
          case 'zero-stats':
            stats.delete(op.slot);
            break;
          case 'entry': {
            const t = dosKeyText(op.key);
            if (op.slots === null) {
              if (!entries.delete(t)) return fail(`map delete dos_match ${t}: No such file or directory`);
            } else {
              if (op.slots.length > DOS_SLOTS_PER_KEY) return fail(`${op.slots.length} slots for ${t}, at most ${DOS_SLOTS_PER_KEY}`);
              entries.set(t, { key: op.key, slots: [...op.slots] });
            }
            break;
          }
        }
      }
      return ok(undefined);
    },
    async stats(slots) {
      return ok(new Map(slots.map((s) => [s, { ...(stats.get(s) ?? { packets: 0n, bytes: 0n, dropped: 0n }) }])));
    },
    cpus: () => cpus,
    count(slot, add) {
      const cur = stats.get(slot) ?? { packets: 0n, bytes: 0n, dropped: 0n };
      stats.set(slot, { packets: cur.packets + BigInt(add.packets ?? 0), bytes: cur.bytes + BigInt(add.bytes ?? 0), dropped: cur.dropped + BigInt(add.dropped ?? 0) });
    },
    get writes() {
      return writes;
    },
    dump() {
      const lines = [
        `bpf dos_conf nmasks ${conf.nmasks} cpus ${conf.cpus}`,
        ...[...masks].sort(([a], [b]) => a - b).map(([i, m]) => `bpf dos_masks ${i}: ${dosMaskText(m)}`),
        ...[...rules].sort(([a], [b]) => a - b).map(([s, r]) => `bpf dos_rules ${s}: ${dosRuleText(r)}`),
        ...[...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([t, e]) => `bpf dos_match ${t}: ${e.slots.join(',')}`),
      ];
      return lines.join('\n') + '\n';
    },
  };
}
