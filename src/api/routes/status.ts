/**
 * Read-only server status, operator only: `/v1/servers` and `/v1/servers/{dc}/{server}`, from the
 * `/status/<dc>/<server>` keys the agents write, joined with the servers in the config. A report
 * is untrusted input: one that does not parse shows as `status: null` with the reason, never as a
 * failure of the whole listing.
 */
import type { z } from 'zod';
import { err, ok } from '../../lib/result.ts';
import { formatIssue } from '../../model/issue.ts';
import { parseAt } from '../../model/schema.ts';
import { serverStatusSchema, statusKey } from '../../model/status.ts';
import { STATUS_ROOT } from '../../model/keyspace.ts';
import type { JsonValue } from '../../store/types.ts';
import { fromStoreError } from '../errors.ts';
import { notFound } from '../objects.ts';
import type { RouteContext, RouteSpec } from '../route.ts';
import type { serverReportSchema } from '../schemas.ts';

/** Seconds without a report after which a server counts as stale (its agent may be dead). */
export const STALE_AFTER_S = 60;

type ServerReport = z.infer<typeof serverReportSchema>;

/** The report of one server from its status value (absent: never reported). */
export function report(dc: string, server: string, raw: JsonValue | undefined, configured: boolean, storeRevision: number, nowMs: number): ServerReport {
  const base = { dc, server, configured, storeRevision };
  if (raw === undefined) return { ...base, status: null, lag: { revisions: 0, seconds: 0 }, stale: true };
  const parsed = parseAt(serverStatusSchema, raw, ['status', dc, server]);
  if (!parsed.ok)
    return { ...base, status: null, lag: { revisions: 0, seconds: 0 }, stale: true, error: `the agent's report does not parse: ${parsed.error.slice(0, 5).map(formatIssue).join('; ')}` };
  const s = parsed.value;
  const since = s.pendingSince === undefined ? nowMs : Date.parse(s.pendingSince);
  return {
    ...base,
    status: s,
    lag: { revisions: Math.max(0, s.seenRevision - s.appliedRevision), seconds: Math.max(0, (nowMs - since) / 1000) },
    stale: nowMs - Date.parse(s.updatedAt) > STALE_AFTER_S * 1000,
  };
}

/** Every configured or reporting server, sorted by dc then server. */
async function reports(ctx: RouteContext, only?: { dc: string; server: string }) {
  const prefix = only ? statusKey(only.dc, only.server) : STATUS_ROOT;
  const statuses = await ctx.store.list(prefix);
  if (!statuses.ok) return err(fromStoreError(statuses.error));
  const config = await ctx.store.list(only ? `/dcs/${only.dc}/servers/${only.server}` : '/dcs/');
  if (!config.ok) return err(fromStoreError(config.error));
  const found = new Map<string, { dc: string; server: string; raw?: JsonValue; configured: boolean }>();
  for (const e of config.value.entries) {
    const m = /^\/dcs\/([^/]+)\/servers\/([^/]+)$/.exec(e.key);
    if (m) found.set(`${m[1]}/${m[2]}`, { dc: m[1]!, server: m[2]!, configured: true });
  }
  for (const e of statuses.value.entries) {
    const parts = e.key.slice(STATUS_ROOT.length).split('/');
    if (parts.length !== 2) continue;
    const id = parts.join('/');
    // The exact key only: listing /status/ams/s1 also lists /status/ams/s10.
    if (only && id !== `${only.dc}/${only.server}`) continue;
    const had = found.get(id);
    found.set(id, { dc: parts[0]!, server: parts[1]!, raw: e.value, configured: had?.configured ?? false });
  }
  const revision = Math.max(statuses.value.revision, config.value.revision);
  const now = ctx.now();
  const items = [...found.values()]
    .filter((f) => !only || (f.dc === only.dc && f.server === only.server))
    .sort((a, b) => (a.dc === b.dc ? (a.server < b.server ? -1 : 1) : a.dc < b.dc ? -1 : 1))
    .map((f) => report(f.dc, f.server, f.raw, f.configured, revision, now));
  return ok(items);
}

/** The status routes. */
export const statusRoutes: readonly RouteSpec[] = [
  {
    method: 'GET',
    path: '/v1/servers',
    scope: 'operator',
    operationId: 'listServerStatus',
    summary: 'Every server with its agent status, lag and staleness',
    reply: { status: 200, schema: 'ServerReportList' },
    handle: async (ctx) => {
      const r = await reports(ctx);
      return r.ok ? ok({ status: 200, body: { items: r.value } }) : r;
    },
  },
  {
    method: 'GET',
    path: '/v1/servers/{dc}/{server}',
    scope: 'operator',
    operationId: 'getServerStatus',
    summary: "One server's agent status, lag and staleness",
    params: { dc: 'data center id', server: 'server id' },
    reply: { status: 200, schema: 'ServerReport' },
    handle: async (ctx) => {
      const where = { dc: ctx.params.dc!, server: ctx.params.server! };
      const r = await reports(ctx, where);
      if (!r.ok) return r;
      const one = r.value[0];
      return one ? ok({ status: 200, body: one }) : err(notFound(`server ${where.dc}/${where.server}`, ': it is neither in the config nor reporting'));
    },
  },
];
