/**
 * How a whole-config diff is shown to a person: one line per object (`+` create, `~` update,
 * `-` delete, key), and under a create or an update the fields it sets or changes, one per line,
 * as `field: before → after`. Coloured only when the output is a TTY.
 *
 * Lists of objects with an `id` (firewall rules) are matched by id, so inserting a rule shows one
 * new rule and an order change instead of every later rule "changing"; other lists (addresses,
 * ports) are short and shown whole, which reads better than element by element.
 */
import type { Change, Diff } from './client.ts';
import { paint } from './terminal.ts';
import { plural } from '../model/text.ts';

/** A changed field: `before`/`after` absent when the field is not there on that side. */
export interface FieldChange {
  /** `mtu`, `default.ingress`, `rules[ftp].dport`, `rules (order)`. */
  readonly path: string;
  readonly before?: unknown;
  readonly after?: unknown;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Key order does not make two values different. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isPlainObject(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}

/** Ids of a list whose elements are all objects with a unique string `id`; else undefined. */
function idsOf(list: readonly unknown[]): string[] | undefined {
  const ids: string[] = [];
  for (const item of list) {
    if (!isPlainObject(item) || typeof item.id !== 'string') return undefined;
    ids.push(item.id);
  }
  return new Set(ids).size === ids.length ? ids : undefined;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/**
 * The fields that differ between two values of one object, in a stable order (keys sorted,
 * rules in their new order). `undefined` on one side means the object or field is absent.
 */
export function fieldChanges(before: unknown, after: unknown, path = ''): FieldChange[] {
  if (sameValue(before, after)) return [];
  if ((isPlainObject(before) || before === undefined) && (isPlainObject(after) || after === undefined) && !(before === undefined && after === undefined)) {
    const b = before ?? {};
    const a = after ?? {};
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort();
    return keys.flatMap((k) => fieldChanges(Object.hasOwn(b, k) ? b[k] : undefined, Object.hasOwn(a, k) ? a[k] : undefined, join(path, k)));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const bIds = idsOf(before);
    const aIds = idsOf(after);
    if (bIds && aIds && (bIds.length > 0 || aIds.length > 0)) {
      const byId = (list: readonly unknown[], id: string): unknown => list.find((x) => isPlainObject(x) && x.id === id);
      const out: FieldChange[] = [];
      for (const id of aIds) {
        const was = bIds.includes(id) ? byId(before, id) : undefined;
        const now = byId(after, id);
        const at = `${path}[${id}]`;
        if (was === undefined) out.push({ path: at, after: now });
        else out.push(...fieldChanges(was, now, at));
      }
      for (const id of bIds) if (!aIds.includes(id)) out.push({ path: `${path}[${id}]`, before: byId(before, id) });
      const kept = (ids: string[], other: string[]): string[] => ids.filter((id) => other.includes(id));
      const oldOrder = kept(bIds, aIds);
      const newOrder = kept(aIds, bIds);
      if (oldOrder.join(',') !== newOrder.join(',')) out.push({ path: `${path} (order)`, before: oldOrder, after: newOrder });
      return out;
    }
  }
  const change: { path: string; before?: unknown; after?: unknown } = { path: path === '' ? '(value)' : path };
  if (before !== undefined) change.before = before;
  if (after !== undefined) change.after = after;
  return [change];
}

/** A value in a diff line: JSON, so types stay visible (`"80"` is not `80`). */
export function showValue(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

const MARK: Record<Change['action'], string> = { create: '+', update: '~', delete: '-' };
const COLOUR = { create: 'green', update: 'yellow', delete: 'red' } as const;

/** The lines of one change. */
export function renderChange(c: Change, colour: boolean): string {
  const head = paint(colour, COLOUR[c.action], `${MARK[c.action]} ${c.key}`);
  if (c.action === 'delete') return head + '\n';
  const fields = fieldChanges(c.action === 'create' ? undefined : c.before, c.after);
  const lines = fields.map((f) => {
    if (c.action === 'create') return `    ${f.path}: ${showValue(f.after)}`;
    const was = Object.hasOwn(f, 'before') ? showValue(f.before) : '(none)';
    const now = Object.hasOwn(f, 'after') ? showValue(f.after) : '(none)';
    return `    ${f.path}: ${was} → ${now}`;
  });
  return [head, ...lines].join('\n') + '\n';
}

/**
 * Counts by action: `3 changes (1 to create, 1 to update, 1 to delete)`, or with `done`
 * `3 changes (1 created, 1 updated, 1 deleted)`.
 */
export function summarizeChanges(changes: readonly Change[], done = false): string {
  const n = (a: Change['action']): number => changes.filter((c) => c.action === a).length;
  const parts = done
    ? [`${n('create')} created`, `${n('update')} updated`, `${n('delete')} deleted`]
    : [`${n('create')} to create`, `${n('update')} to update`, `${n('delete')} to delete`];
  return `${plural(changes.length, 'change')} (${parts.join(', ')})`;
}

/** The whole diff, ending with a summary line that names the store revision it was computed at. */
export function renderDiff(diff: Diff, colour: boolean): string {
  if (diff.changes.length === 0) return `no changes: the store already matches this config (store revision ${diff.revision})\n`;
  return diff.changes.map((c) => renderChange(c, colour)).join('') + `${summarizeChanges(diff.changes)} against store revision ${diff.revision}\n`;
}
