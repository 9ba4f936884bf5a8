/**
 * `apply --wait`: polls `GET /v1/servers` until every server's agent reports that it applied the
 * write's revision, or the timeout passes. Progress is a bar on a terminal's stderr and a line per
 * change otherwise (logs, CI). Passing moments when the API cannot answer (restarting, busy) are
 * waited out like slow agents; any other API error ends the wait.
 */
import cliProgress from 'cli-progress';
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import type { ApiError, ServerItem } from './client.ts';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { plural } from '../model/text.ts';

/** How to wait. */
export interface WaitOptions {
  /** The revision every server must have applied. */
  readonly revision: number;
  readonly timeoutMs: number;
  /** Time between polls (default 500 ms). */
  readonly intervalMs?: number;
  readonly io: Io;
  readonly term: Terminal;
  /** Clock and sleep, replaceable in tests. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** How the wait ended. */
export interface WaitOutcome {
  /** Every server applied the revision. */
  readonly converged: boolean;
  /** The servers as last polled. */
  readonly items: readonly ServerItem[];
  /** Those that had not applied it. */
  readonly behind: readonly ServerItem[];
  readonly elapsedMs: number;
}

/** Whether a server's agent reports having applied `revision` (or a later one). */
export function hasApplied(s: ServerItem, revision: number): boolean {
  return s.status !== null && s.status.appliedRevision >= revision;
}

/** Errors worth waiting out: no answer, rate limited, store unavailable. */
function passing(e: ApiError): boolean {
  return e.status === 0 || e.status === 429 || e.status === 503;
}

/** Polls `servers` until every server has applied `o.revision` or the timeout passes. */
export async function waitForServers(servers: () => Promise<Result<ServerItem[], ApiError>>, o: WaitOptions): Promise<Result<WaitOutcome, ApiError>> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const interval = o.intervalMs ?? 500;
  const start = now();
  const deadline = start + o.timeoutMs;
  const bar =
    o.term.stderrIsTTY && o.term.progressStream
      ? new cliProgress.SingleBar(
          { stream: o.term.progressStream, format: `waiting for servers to apply revision ${o.revision} [{bar}] {value}/{total}`, hideCursor: true, clearOnComplete: false },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  let started = false;
  let lastShown = -1;
  let lastItems: ServerItem[] = [];
  let lastError: ApiError | undefined;
  try {
    while (true) {
      const r = await servers();
      if (r.ok) {
        // A server no longer in the config (its agent still reporting) is not one to wait for.
        lastItems = r.value.filter((s) => s.configured !== false);
        lastError = undefined;
        const done = lastItems.filter((s) => hasApplied(s, o.revision)).length;
        const total = lastItems.length;
        if (bar) {
          if (!started) bar.start(total, done);
          else {
            bar.setTotal(total);
            bar.update(done);
          }
          started = true;
        } else if (done !== lastShown) {
          o.io.err(`waiting: ${done}/${plural(total, 'server')} applied revision ${o.revision}\n`);
        }
        lastShown = done;
        if (done === total) return ok({ converged: true, items: lastItems, behind: [], elapsedMs: now() - start });
      } else if (passing(r.error)) {
        lastError = r.error;
      } else {
        return err(r.error);
      }
      if (now() >= deadline) break;
      await sleep(Math.max(0, Math.min(interval, deadline - now())));
    }
  } finally {
    if (started) bar?.stop();
  }
  // Never got an answer: the API's failure is the outcome, not "servers behind".
  if (lastError && lastItems.length === 0) return err(lastError);
  return ok({ converged: false, items: lastItems, behind: lastItems.filter((s) => !hasApplied(s, o.revision)), elapsedMs: now() - start });
}

/** Why a server is behind, for the report. */
export function behindReason(s: ServerItem, revision: number): string {
  const st = s.status;
  if (st === null) return 'no status: its agent has never reported (is anyedge agent running there?)';
  const parts = [`applied ${st.appliedRevision}, seen ${st.seenRevision} (needs ${revision})`];
  if (s.stale) parts.push(`stale since ${st.updatedAt}`);
  if (!st.store.connected) parts.push(`store disconnected${st.store.error ? `: ${st.store.error}` : ''}`);
  if (st.lastError) parts.push(`last error at ${st.lastError.at}: ${st.lastError.message}`);
  return parts.join('; ');
}

/** The outcome in words: one line, then one line per server behind. */
export function renderWaitOutcome(w: WaitOutcome, revision: number): string {
  const total = w.items.length;
  if (w.converged) return total === 0 ? 'no servers to wait for\n' : `all ${plural(total, 'server')} applied revision ${revision}\n`;
  const lines = w.behind.map((s) => `  ${s.dc}/${s.server}: ${behindReason(s, revision)}`);
  return `${w.behind.length} of ${plural(total, 'server')} did not apply revision ${revision} within ${Math.round(w.elapsedMs / 1000)} s:\n${lines.join('\n')}\n`;
}
