/**
 * `anyedge status [--json]`: every server as its agent last reported it (`GET /v1/servers`) —
 * applied and seen revision, lag, store connection, last error, tunnel health — with the servers
 * that need attention flagged and explained.
 *
 * A server is in sync and healthy when its agent has reported, the report is fresh (not stale),
 * it has applied every revision it has seen, it is connected to the store, its last apply did not
 * fail and none of its tunnels is down (unknown is not down: a tunnel without health checks, or
 * one not probed yet, is unknown).
 *
 * Exit codes: 0 every server in sync and healthy (also when there are no servers), 1 some server
 * is not or the API could not be asked, 2 usage.
 */
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import { paint } from './terminal.ts';
import type { ClientFlags } from './client-options.ts';
import { clientFrom } from './client-options.ts';
import type { ServerItem } from './client.ts';
import { formatApiError } from './client.ts';
import { renderTable } from './table-view.ts';
import { plural } from '../model/text.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';

/** What needs attention on one server, worst first; empty when in sync and healthy. */
export function problemsOf(s: ServerItem): string[] {
  const st = s.status;
  const unconfigured = s.configured === false ? ['not in the config: an agent still reports for a server that was removed (stop it, or delete its status)'] : [];
  if (st === null)
    return [s.error !== undefined ? `unreadable status: ${s.error}` : 'no status: its agent has never reported (is anyedge agent running there?)', ...unconfigured];
  const out: string[] = [...unconfigured];
  if (s.stale) out.push(`stale: last report at ${st.updatedAt} (is its agent running?)`);
  if (!st.store.connected) out.push(`store disconnected since ${st.store.since}${st.store.error ? `: ${st.store.error}` : ''}`);
  if (st.lastError) out.push(`last error at ${st.lastError.at}: ${st.lastError.message}`);
  if (isLagging(s)) out.push(`lagging: applied ${st.appliedRevision}, seen ${st.seenRevision} (${lagText(s)} behind)`);
  const down = st.tunnels.filter((t) => t.state === 'down');
  if (down.length) out.push(`tunnels down: ${down.map((t) => `${t.tenant}/${t.tunnel} (since ${t.since})`).join(', ')}`);
  return out;
}

/** Whether the agent has seen config it has not applied yet. */
export function isLagging(s: ServerItem): boolean {
  return s.status !== null && s.status.appliedRevision < s.status.seenRevision;
}

function lagText(s: ServerItem): string {
  return `${plural(s.lag.revisions, 'revision')}, ${Math.round(s.lag.seconds)} s`;
}

/** The one-word state shown in the table. */
export function stateOf(s: ServerItem): string {
  if (s.status === null) return s.error !== undefined ? 'unreadable' : 'no status';
  if (s.configured === false) return 'unconfigured';
  if (s.stale) return 'stale';
  if (!s.status.store.connected) return 'disconnected';
  if (s.status.lastError) return 'error';
  if (isLagging(s)) return 'lagging';
  if (s.status.tunnels.some((t) => t.state === 'down')) return 'degraded';
  return 'ok';
}

function tunnelCounts(s: ServerItem): string {
  if (s.status === null) return '';
  const n = (state: string): number => s.status!.tunnels.filter((t) => t.state === state).length;
  return `${n('up')} up, ${n('down')} down, ${n('unknown')} unknown`;
}

/** The status table, the problems of each flagged server, and a summary line. */
export function renderStatus(items: readonly ServerItem[], tty: boolean): string {
  if (items.length === 0) return 'no servers in the config\n';
  const rows = items.map((s) => {
    const st = s.status;
    const state = stateOf(s);
    return [
      s.dc,
      s.server,
      st ? String(st.appliedRevision) : '',
      st ? String(st.seenRevision) : '',
      st ? (s.lag.revisions === 0 && s.lag.seconds === 0 ? '0' : lagText(s)) : '',
      st ? (st.store.connected ? 'connected' : 'disconnected') : '',
      tunnelCounts(s),
      st?.lastError ? st.lastError.message : '',
      paint(tty, state === 'ok' ? 'green' : 'red', state),
    ];
  });
  const table = renderTable({ head: ['dc', 'server', 'applied', 'seen', 'lag', 'store', 'tunnels', 'last error', 'state'], rows }, tty);
  const flagged = items.map((s) => ({ s, problems: problemsOf(s) })).filter((x) => x.problems.length > 0);
  const details = flagged.flatMap(({ s, problems }) => problems.map((p) => `${s.dc}/${s.server}: ${p}`));
  const revision = Math.max(...items.map((s) => s.storeRevision));
  const summary =
    flagged.length === 0
      ? `${plural(items.length, 'server')}, all in sync and healthy (store revision ${revision})`
      : `${plural(items.length, 'server')}: ${items.length - flagged.length} in sync and healthy, ${flagged.length} need attention (store revision ${revision})`;
  return table + (details.length ? '\n' + details.join('\n') + '\n' : '') + summary + '\n';
}

/** The `--json` answer: the API's items, and what needs attention. */
export function statusJson(items: readonly ServerItem[]): unknown {
  const problems = items.map((s) => ({ dc: s.dc, server: s.server, problems: problemsOf(s) })).filter((p) => p.problems.length > 0);
  return { items, healthy: problems.length === 0, problems };
}

/** Runs `status`; returns the exit code. */
export async function runStatus(opts: ClientFlags, io: Io, term: Terminal): Promise<number> {
  const client = await clientFrom(opts, term.env);
  if (!client.ok) {
    io.err(client.error + '\n');
    return EXIT_USAGE;
  }
  const r = await client.value.servers();
  if (!r.ok) {
    io.err(formatApiError(r.error));
    return EXIT_INVALID;
  }
  const items = r.value;
  if (opts.json) io.out(JSON.stringify(statusJson(items), null, 2) + '\n');
  else io.out(renderStatus(items, term.stdoutIsTTY));
  return items.every((s) => problemsOf(s).length === 0) ? EXIT_OK : EXIT_INVALID;
}
