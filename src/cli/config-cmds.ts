/**
 * The declarative commands against the API:
 *
 * - `anyedge plan -f FILE` prints what applying the file would change (`POST /v1/config/diff`);
 * - `anyedge apply -f FILE [--yes] [--wait] [--timeout S]` prints the same diff, asks (or needs
 *   `--yes` when no one can answer), then writes the whole file as one transaction that holds only
 *   if every changed key is still at the revision the diff saw (`PUT /v1/config` with `expect`):
 *   what was shown is exactly what is applied. `--wait` then follows the servers until they have
 *   applied it.
 *
 * The file is checked locally first and its problems printed at their lines, without contacting
 * the API; field errors the API finds are placed on the file's lines too.
 *
 * Exit codes: 0 applied (or nothing to change; with --wait, every server applied it), 1 refused
 * (invalid, not confirmed, changed since the diff, servers not converged) or failed, 2 usage.
 */
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import { isYes } from './terminal.ts';
import type { ClientFlags } from './client-options.ts';
import { clientFrom } from './client-options.ts';
import type { ApiClient, ApiError, Diff } from './client.ts';
import { formatApiError, isStale } from './client.ts';
import type { ConfigFile } from './config-file.ts';
import { issueFromApi, loadConfigFile, printIssuesAtLines } from './config-file.ts';
import { renderDiff, summarizeChanges } from './diff-view.ts';
import { renderWaitOutcome, waitForServers } from './wait.ts';
import type { WaitOutcome } from './wait.ts';
import { plural } from '../model/text.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';

/** Default `--timeout` of `apply --wait`, seconds. */
export const DEFAULT_WAIT_SECONDS = 60;

/** `plan -f FILE` without `--server`. */
export interface PlanDiffOptions extends ClientFlags {
  readonly file: string;
  /** The kernel plan's options: refused here, since they mean nothing without --server. */
  readonly netns?: string;
  readonly prefix?: string;
  readonly bpf?: string;
  readonly linkPool?: string;
}

const KERNEL_FLAGS = [
  ['netns', '--netns'],
  ['prefix', '--prefix'],
  ['bpf', '--bpf'],
  ['linkPool', '--link-pool'],
] as const;

/** `apply -f FILE`. */
export interface ApplyOptions extends ClientFlags {
  readonly file: string;
  readonly yes?: boolean;
  readonly wait?: boolean;
  /** `--timeout` as typed, seconds. */
  readonly timeout?: string;
  /** Poll interval of --wait (tests). */
  readonly pollMs?: number;
}

/** Parses `--timeout S`: seconds, more than 0, at most a day. */
export function parseTimeout(text: string | undefined): { ok: true; ms: number } | { ok: false; message: string } {
  if (text === undefined) return { ok: true, ms: DEFAULT_WAIT_SECONDS * 1000 };
  const s = Number(text);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !Number.isFinite(s) || s <= 0 || s > 86_400)
    return { ok: false, message: `--timeout ${JSON.stringify(text)}: give seconds to wait, more than 0 and at most 86400, e.g. --timeout 120` };
  return { ok: true, ms: Math.round(s * 1000) };
}

/**
 * Prints an API failure. Field errors (400 invalid, 409 conflict with objects already in the
 * store) are placed on the file's lines.
 */
function explainApiFailure(e: ApiError, f: ConfigFile, io: Io): void {
  if ((e.status === 400 || e.status === 409) && e.issues && e.issues.length > 0) {
    printIssuesAtLines(f.file, f.source, e.issues.map(issueFromApi), io);
    io.err(`${f.file}: the API refused it (${e.status} ${e.code}, ${plural(e.issues.length, 'error')}); nothing was applied — fix the lines above\n`);
    return;
  }
  io.err(formatApiError(e));
}

/** Loads the file and connects; the error is the exit code (already explained). */
async function prepare(opts: ClientFlags & { file: string }, io: Io, term: Terminal): Promise<{ f: ConfigFile; client: ApiClient } | number> {
  const f = await loadConfigFile(opts.file, io);
  if (!f.ok) return f.error;
  const client = await clientFrom(opts, term.env);
  if (!client.ok) {
    io.err(client.error + '\n');
    return EXIT_USAGE;
  }
  return { f: f.value, client: client.value };
}

/** Runs `plan -f FILE` (the API diff); returns the exit code. */
export async function runPlanDiff(opts: PlanDiffOptions, io: Io, term: Terminal): Promise<number> {
  const kernelOnly = KERNEL_FLAGS.filter(([k]) => opts[k] !== undefined).map(([, flag]) => flag);
  if (kernelOnly.length) {
    io.err(`${kernelOnly.join(', ')}: only for the kernel plan of one server; add --server DC/SERVER, or remove ${kernelOnly.length === 1 ? 'it' : 'them'} to see the store diff\n`);
    return EXIT_USAGE;
  }
  const p = await prepare(opts, io, term);
  if (typeof p === 'number') return p;
  const diff = await p.client.diffConfig(p.f.document);
  if (!diff.ok) {
    explainApiFailure(diff.error, p.f, io);
    return EXIT_INVALID;
  }
  io.out(opts.json ? JSON.stringify(diff.value, null, 2) + '\n' : renderDiff(diff.value, term.stdoutIsTTY));
  return EXIT_OK;
}

/** The condition of the write: every changed key at the revision the diff saw (0 = absent). */
export function expectOf(diff: Diff): Record<string, number> {
  return Object.fromEntries(diff.changes.map((c) => [c.key, c.modRevision]));
}

/** Runs `apply -f FILE`; returns the exit code. */
export async function runApply(opts: ApplyOptions, io: Io, term: Terminal): Promise<number> {
  const timeout = parseTimeout(opts.timeout);
  if (!timeout.ok) {
    io.err(timeout.message + '\n');
    return EXIT_USAGE;
  }
  if (opts.timeout !== undefined && !opts.wait) {
    io.err('--timeout: only means something with --wait; add --wait or remove --timeout\n');
    return EXIT_USAGE;
  }
  const p = await prepare(opts, io, term);
  if (typeof p === 'number') return p;
  const { f, client } = p;

  const diff = await client.diffConfig(f.document);
  if (!diff.ok) {
    explainApiFailure(diff.error, f, io);
    return EXIT_INVALID;
  }
  const changes = diff.value.changes;
  // With --json stdout carries only the final JSON; the diff a person confirms goes to stderr.
  const show = (text: string): void => (opts.json ? io.err(text) : io.out(text));
  show(renderDiff(diff.value, opts.json ? term.stderrIsTTY : term.stdoutIsTTY));
  if (changes.length === 0) {
    if (opts.json) io.out(JSON.stringify({ ...diff.value, applied: false }, null, 2) + '\n');
    return EXIT_OK;
  }

  if (!opts.yes) {
    if (!term.stdinIsTTY) {
      io.err(`refusing to apply ${plural(changes.length, 'change')} without confirmation: stdin is not a terminal; check the diff above and pass --yes to apply it\n`);
      return EXIT_INVALID;
    }
    if (!isYes(await term.ask(`Apply ${plural(changes.length, 'change')}? [y/N] `))) {
      io.err('nothing applied\n');
      return EXIT_INVALID;
    }
  }

  const put = await client.putConfig(f.document, expectOf(diff.value));
  if (!put.ok) {
    if (isStale(put.error))
      io.err(`the config changed since the diff (${put.error.message}); nothing was applied — run apply again to see the new diff\n`);
    else explainApiFailure(put.error, f, io);
    return EXIT_INVALID;
  }
  const revision = put.value.revision;
  const appliedLine = `applied ${summarizeChanges(put.value.changes, true)} at store revision ${revision}\n`;
  if (!opts.json) io.out(appliedLine);
  else io.err(appliedLine);

  let waited: WaitOutcome | undefined;
  if (opts.wait) {
    const w = await waitForServers(() => client.servers(), { revision, timeoutMs: timeout.ms, io, term, ...(opts.pollMs !== undefined ? { intervalMs: opts.pollMs } : {}) });
    if (!w.ok) {
      io.err(`applied at revision ${revision}, but could not follow the servers: ${formatApiError(w.error)}`);
      io.err('run anyedge status to see them\n');
      if (opts.json) io.out(JSON.stringify({ ...put.value, applied: true }, null, 2) + '\n');
      return EXIT_INVALID;
    }
    waited = w.value;
    const report = renderWaitOutcome(waited, revision);
    if (waited.converged && !opts.json) io.out(report);
    else io.err(report);
  }
  if (opts.json) {
    const wait = waited && { converged: waited.converged, behind: waited.behind.map((s) => ({ dc: s.dc, server: s.server, status: s.status, stale: s.stale })) };
    io.out(JSON.stringify({ ...put.value, applied: true, ...(wait ? { wait } : {}) }, null, 2) + '\n');
  }
  return waited && !waited.converged ? EXIT_INVALID : EXIT_OK;
}
