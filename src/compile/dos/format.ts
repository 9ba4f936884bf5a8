/**
 * The DoS tables as text for people and golden files: the rule slots, the masks and the entries,
 * one line each in the canonical forms of kernel/bpf/dos.ts (the fake kernel prints the same).
 */
import { dosKeyText, dosMaskText, dosRuleText } from '../../kernel/bpf/dos.ts';
import type { DosTables } from './compile.ts';

/** Canonical text of compiled DoS tables. */
export function formatDos(t: DosTables): string {
  const lines = [
    `dos rules (${t.rules.length})${t.nextExpiry ? `, next expiry ${t.nextExpiry}` : ''}`,
    ...t.rules.map((r) => `  slot ${r.slot} ${r.id}: ${dosRuleText(r.value)}${r.expires ? ` expires ${r.expires}` : ''}`),
    `dos masks (${t.masks.length})`,
    ...t.masks.map((m) => `  ${dosMaskText(m)}`),
    `dos match (${t.entries.length})`,
    ...t.entries.map((e) => `  ${dosKeyText(e.key)} → ${e.slots.join(',')}`),
  ];
  return lines.join('\n') + '\n';
}
