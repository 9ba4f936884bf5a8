/**
 * `anyedge delete KIND ID [--tenant T] [--yes]`: reads the object, shows it, asks (or needs
 * `--yes` when no one can answer), then deletes it only if it is still at the revision that was
 * shown (`If-Match`), so what was confirmed is what goes. Deleting a tenant takes everything it
 * owns with it, in one transaction on the API's side.
 *
 * Exit codes: 0 deleted, 1 refused (no confirmation, not found, changed meanwhile) or failed,
 * 2 usage.
 */
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import { isYes } from './terminal.ts';
import type { ClientFlags } from './client-options.ts';
import { clientFrom } from './client-options.ts';
import { formatApiError, isStale } from './client.ts';
import { findKind } from './kinds.ts';
import { describeTarget, explainError, resolveTarget } from './get.ts';
import { renderTable } from './table-view.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';

/** What `delete` was asked. */
export interface DeleteOptions extends ClientFlags {
  readonly kind: string;
  readonly id: string;
  readonly tenant?: string;
  readonly yes?: boolean;
}

/** Runs `delete`; returns the exit code. */
export async function runDelete(opts: DeleteOptions, io: Io, term: Terminal): Promise<number> {
  const kind = findKind(opts.kind);
  if (!kind.ok) {
    io.err(kind.error + '\n');
    return EXIT_USAGE;
  }
  const k = kind.value;
  const target = resolveTarget(k, opts.id, opts.tenant);
  if (!target.ok) {
    io.err(target.error + '\n');
    return EXIT_USAGE;
  }
  const t = target.value;
  const client = await clientFrom(opts, term.env);
  if (!client.ok) {
    io.err(client.error + '\n');
    return EXIT_USAGE;
  }
  const c = client.value;
  const path = k.itemPath(t.owner, t.id);
  const what = describeTarget(k, t);

  const current = await c.getObject(path);
  if (!current.ok) {
    io.err(explainError(current.error, k, t));
    return EXIT_INVALID;
  }
  const shown = k.scope === 'tenant' ? { ...current.value, tenant: t.owner } : k.scope === 'dc' ? { ...current.value, dc: t.owner } : current.value;
  // What is about to go, on stderr: stdout carries only the outcome (and only JSON with --json).
  io.err(renderTable({ head: k.columns.map((col) => col.head), rows: [k.columns.map((col) => col.cell(shown))] }, term.stderrIsTTY));
  const question = `Delete ${what}${k.deleteNote ? ` ${k.deleteNote}` : ''}? [y/N] `;
  if (!opts.yes) {
    if (!term.stdinIsTTY) {
      io.err(`refusing to delete ${what} without confirmation: stdin is not a terminal; pass --yes to delete it\n`);
      return EXIT_INVALID;
    }
    if (!isYes(await term.ask(question))) {
      io.err('nothing deleted\n');
      return EXIT_INVALID;
    }
  }

  const r = await c.remove(path, current.value.revision);
  if (!r.ok) {
    if (isStale(r.error))
      io.err(`${what} changed since it was read (revision ${current.value.revision}): ${r.error.message}; nothing deleted — run the command again to see it as it is now\n`);
    else io.err(r.error.status === 404 ? explainError(r.error, k, t) : formatApiError(r.error));
    return EXIT_INVALID;
  }
  const revision = typeof (r.value as { revision?: unknown } | undefined)?.revision === 'number' ? (r.value as { revision: number }).revision : undefined;
  if (opts.json) io.out(JSON.stringify({ deleted: current.value, ...(revision === undefined ? {} : { revision }) }, null, 2) + '\n');
  else io.out(`deleted ${what}${revision === undefined ? '' : ` at store revision ${revision}`}\n`);
  return EXIT_OK;
}
