/**
 * `anyedge egress …`: soft-unicast egress addresses (compile/egress/ has the rules).
 *
 * - `egress geofeed [-f FILE] [--assigned-only]`: the RFC 8805 geofeed as CSV on stdout, from a
 *   config file or, without -f, from the store through the API;
 * - `egress show [--dc DC]`: who owns each assigned address — data center, tags, each server's
 *   slice (IPv4) or the server (IPv6);
 * - `egress allocate [--release] [--servers DC=N …] [--dry-run] [--yes]`: what each data center
 *   and server still needs, as a plan; asks, then writes it in one transaction, refused whole if
 *   any address changed since the plan was read;
 * - `egress assign IP DC [--server S] [--yes]`: assign or move one address (a move is what the
 *   steering follows on the fly: replies to the address go to the new data center from then on);
 * - `egress unassign IP [--yes]`.
 *
 * Exit codes: 0 done (or nothing to do), 1 refused or failed, 2 usage.
 */
import { z } from 'zod';
import type { Command } from 'commander';
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import { isYes, terminalOf } from './terminal.ts';
import type { ClientFlags } from './client-options.ts';
import { clientFrom, withClientOptions } from './client-options.ts';
import { configSchema, formatApiError, listSchema, type ApiClient } from './client.ts';
import { loadConfigFile } from './config-file.ts';
import { renderTable } from './table-view.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { parseConfig, type Config } from '../model/config.ts';
import { formatIssue } from '../model/issue.ts';
import { idProblem } from '../model/id.ts';
import { formatIp, parseIp } from '../model/net.ts';
import { geofeedCsv } from '../compile/egress/geofeed.ts';
import { allocateEgress, type AllocationPlan } from '../compile/egress/allocate.ts';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';

const assignmentSchema = z.looseObject({ dc: z.string(), server: z.string().optional() });
const resultSchema = z.looseObject({
  revision: z.number().int().nonnegative(),
  changes: z.array(z.looseObject({ ip: z.string(), action: z.string(), before: assignmentSchema.optional(), after: assignmentSchema.optional() })),
});
const ownershipSchema = z.looseObject({
  revision: z.number().int().nonnegative(),
  items: z.array(
    z.looseObject({
      ip: z.string(),
      dc: z.string(),
      pool: z.string(),
      class: z.string(),
      country: z.string(),
      owner: z.union([
        z.looseObject({ kind: z.literal('slices'), sliceSize: z.number(), slices: z.array(z.looseObject({ slice: z.number(), server: z.string() })) }),
        z.looseObject({ kind: z.literal('server'), server: z.string() }),
      ]),
    }),
  ),
});

type Ownership = z.output<typeof ownershipSchema>;

async function client(opts: ClientFlags, io: Io, term: Terminal): Promise<ApiClient | null> {
  const c = await clientFrom(opts, term.env);
  if (!c.ok) {
    io.err(c.error + '\n');
    return null;
  }
  return c.value;
}

/** The store's config through the API, checked like a file. */
async function storeConfig(c: ApiClient, io: Io): Promise<{ config: Config; revision: number } | null> {
  const r = await c.request('GET', '/v1/config', configSchema);
  if (!r.ok) {
    io.err(formatApiError(r.error));
    return null;
  }
  const parsed = parseConfig(r.value.config);
  if (!parsed.ok) {
    io.err(`the store's config does not check (written around the API?):\n${parsed.error.map((i) => `  ${formatIssue(i)}`).join('\n')}\n`);
    return null;
  }
  return { config: parsed.value, revision: r.value.revision };
}

/** A canonical egress address from the command line. */
export function checkAddress(text: string): Result<string, string> {
  const p = parseIp(text);
  if (!p.ok) return err(`IP ${JSON.stringify(text)}: ${p.error}`);
  return ok(formatIp(p.value));
}

/** `--servers ams=40 lon=12` → { ams: 40, lon: 12 }. */
export function parseServers(values: readonly string[]): Result<Record<string, number>, string> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const m = /^([^=]+)=(\d{1,6})$/.exec(v);
    if (!m) return err(`--servers ${JSON.stringify(v)}: write DC=N, e.g. ams=40 (plan for that many servers in ams)`);
    const bad = idProblem(m[1], 'data center id');
    if (bad) return err(`--servers ${JSON.stringify(v)}: ${bad}`);
    out[m[1]!] = Number(m[2]);
  }
  return ok(out);
}

/** Asks before a write; false (with the reason printed) when not confirmed. */
async function confirm(what: string, yes: boolean | undefined, io: Io, term: Terminal): Promise<boolean> {
  if (yes) return true;
  if (!term.stdinIsTTY) {
    io.err(`refusing to ${what} without confirmation: stdin is not a terminal; pass --yes\n`);
    return false;
  }
  if (isYes(await term.ask(`${what[0]!.toUpperCase()}${what.slice(1)}? [y/N] `))) return true;
  io.err('nothing written\n');
  return false;
}

// ---- geofeed ----

/** Flags of `egress geofeed`. */
export interface GeofeedFlags extends ClientFlags {
  readonly file?: string;
  readonly assignedOnly?: boolean;
}

/** Runs `egress geofeed`. */
export async function runGeofeed(opts: GeofeedFlags, io: Io, term: Terminal): Promise<number> {
  let config: Config;
  let from: string;
  if (opts.file !== undefined) {
    const f = await loadConfigFile(opts.file, io);
    if (!f.ok) return f.error;
    config = f.value.config;
    from = opts.file;
  } else {
    const c = await client(opts, io, term);
    if (!c) return EXIT_USAGE;
    const s = await storeConfig(c, io);
    if (!s) return EXIT_INVALID;
    config = s.config;
    from = `${c.baseUrl} revision ${s.revision}`;
  }
  io.out(geofeedCsv(config, { ...(opts.assignedOnly ? { assignedOnly: true } : {}), comments: [`anyedge egress geofeed (RFC 8805) from ${from}${opts.assignedOnly ? ', assigned addresses only' : ''}`, 'prefix,country,region,city,postal'] }));
  return EXIT_OK;
}

// ---- show ----

/** The ownership table. */
export function renderOwnership(items: Ownership['items'], tty: boolean): string {
  if (items.length === 0) return 'no egress address is assigned; anyedge egress allocate plans it\n';
  const rows = items.map((o) => [
    o.ip,
    o.dc,
    `${o.class}/${o.country}`,
    o.pool,
    o.owner.kind === 'slices' ? String(o.owner.sliceSize) : '-',
    o.owner.kind === 'slices'
      ? o.owner.slices.map((s) => `${s.server}:${s.slice * (o.owner as { sliceSize: number }).sliceSize}-${(s.slice + 1) * (o.owner as { sliceSize: number }).sliceSize - 1}`).join(' ')
      : `${o.owner.server}:1024-65535`,
  ]);
  return renderTable({ head: ['address', 'dc', 'tag', 'pool', 'slice', 'server:ports'], rows }, tty);
}

/** Flags of `egress show`. */
export interface ShowFlags extends ClientFlags {
  readonly dc?: string;
}

/** Runs `egress show`. */
export async function runShow(opts: ShowFlags, io: Io, term: Terminal): Promise<number> {
  if (opts.dc !== undefined) {
    const bad = idProblem(opts.dc, 'data center id');
    if (bad) {
      io.err(`--dc ${JSON.stringify(opts.dc)}: ${bad}\n`);
      return EXIT_USAGE;
    }
  }
  const c = await client(opts, io, term);
  if (!c) return EXIT_USAGE;
  const r = await c.request('GET', '/v1/egress/ownership', ownershipSchema);
  if (!r.ok) {
    io.err(formatApiError(r.error));
    return EXIT_INVALID;
  }
  const items = r.value.items.filter((o) => opts.dc === undefined || o.dc === opts.dc);
  if (opts.json) io.out(JSON.stringify({ revision: r.value.revision, items }, null, 2) + '\n');
  else io.out(renderOwnership(items, term.stdoutIsTTY));
  return EXIT_OK;
}

// ---- allocate ----

/** The plan for people. */
export function renderPlan(plan: AllocationPlan, tty: boolean): string {
  const lines: string[] = [];
  if (plan.changes.length === 0) lines.push('nothing to do: every data center and server has the egress addresses it needs\n');
  else lines.push(plan.changes.map((c) => `${c.action === 'assign' ? '+' : '-'} ${c.ip} ${c.action === 'assign' ? '→' : '←'} ${c.dc}${c.server ? '/' + c.server : ''} (${c.tag})`).join('\n') + '\n');
  const rows = plan.needs.map((n) => [n.dc, `${n.tag}${n.family === 6 ? ' (IPv6)' : ''}`, n.sliceSize === null ? '-' : String(n.sliceSize), String(n.servers), String(n.need), String(n.had), String(n.after)]);
  if (rows.length) lines.push(renderTable({ head: ['dc', 'tag', 'slice', 'servers', 'need', 'had', 'after'], rows }, tty));
  return lines.join('');
}

/** Flags of `egress allocate`. */
export interface AllocateFlags extends ClientFlags {
  readonly release?: boolean;
  readonly servers?: readonly string[];
  readonly dryRun?: boolean;
  readonly yes?: boolean;
}

/** Runs `egress allocate`. */
export async function runAllocate(opts: AllocateFlags, io: Io, term: Terminal): Promise<number> {
  const servers = parseServers(opts.servers ?? []);
  if (!servers.ok) {
    io.err(servers.error + '\n');
    return EXIT_USAGE;
  }
  const c = await client(opts, io, term);
  if (!c) return EXIT_USAGE;
  const s = await storeConfig(c, io);
  if (!s) return EXIT_INVALID;
  const plan = allocateEgress(s.config, { ...(opts.release ? { release: true } : {}), servers: servers.value });
  if (!plan.ok) {
    io.err(`${plan.error.path}: ${plan.error.message}\n`);
    return EXIT_INVALID;
  }
  if (opts.json) io.out(JSON.stringify({ revision: s.revision, ...plan.value }, null, 2) + '\n');
  else io.out(renderPlan(plan.value, term.stdoutIsTTY));
  if (plan.value.changes.length === 0 || opts.dryRun) return EXIT_OK;
  // The revisions the plan saw: new addresses must still be free, released ones unchanged.
  const list = await c.request('GET', '/v1/egress/assign', listSchema);
  if (!list.ok) {
    io.err(formatApiError(list.error));
    return EXIT_INVALID;
  }
  const revs = new Map(list.value.items.map((i) => [i.id, i.revision]));
  const set: Record<string, unknown> = {};
  const expect: Record<string, number> = {};
  for (const ch of plan.value.changes) {
    set[ch.ip] = ch.action === 'release' ? null : ch.server !== undefined ? { dc: ch.dc, server: ch.server } : { dc: ch.dc };
    expect[ch.ip] = ch.action === 'release' ? (revs.get(ch.ip) ?? 0) : 0;
    if (ch.action === 'assign' && revs.has(ch.ip)) {
      io.err(`${ch.ip} was assigned since the plan was read; run anyedge egress allocate again\n`);
      return EXIT_INVALID;
    }
  }
  const n = plan.value.changes.length;
  if (!(await confirm(`write ${n} egress assignment change${n === 1 ? '' : 's'}`, opts.yes, io, term))) return EXIT_INVALID;
  return write(c, { set, expect }, io, opts.json === true);
}

async function write(c: ApiClient, body: unknown, io: Io, json: boolean): Promise<number> {
  const r = await c.request('POST', '/v1/egress/assign', resultSchema, { body });
  if (!r.ok) {
    io.err(formatApiError(r.error));
    if (r.error.code === 'cas_failed') io.err('an address changed since the plan was read; run the command again\n');
    return EXIT_INVALID;
  }
  if (json) io.out(JSON.stringify(r.value, null, 2) + '\n');
  else {
    const count = (a: string) => r.value.changes.filter((x) => x.action === a).length;
    io.out(r.value.changes.length === 0 ? `nothing changed (revision ${r.value.revision})\n` : `assigned ${count('create')}, moved ${count('update')}, released ${count('delete')} at revision ${r.value.revision}\n`);
  }
  return EXIT_OK;
}

// ---- assign / unassign ----

/** Flags of `egress assign` and `egress unassign`. */
export interface AssignFlags extends ClientFlags {
  readonly server?: string;
  readonly yes?: boolean;
}

/** Runs `egress assign IP DC` (dc given) or `egress unassign IP` (dc undefined). */
export async function runAssign(ipText: string, dc: string | undefined, opts: AssignFlags, io: Io, term: Terminal): Promise<number> {
  const ip = checkAddress(ipText);
  if (!ip.ok) {
    io.err(ip.error + '\n');
    return EXIT_USAGE;
  }
  for (const [flag, v, what] of [
    ['DC', dc, 'data center id'],
    ['--server', opts.server, 'server id'],
  ] as const) {
    const bad = v === undefined ? undefined : idProblem(v, what);
    if (bad) {
      io.err(`${flag} ${JSON.stringify(v)}: ${bad}\n`);
      return EXIT_USAGE;
    }
  }
  const c = await client(opts, io, term);
  if (!c) return EXIT_USAGE;
  const list = await c.request('GET', '/v1/egress/assign', listSchema);
  if (!list.ok) {
    io.err(formatApiError(list.error));
    return EXIT_INVALID;
  }
  const cur = list.value.items.find((i) => i.id === ip.value);
  if (dc === undefined && !cur) {
    io.err(`${ip.value} is not assigned; anyedge egress show lists the assignments\n`);
    return EXIT_INVALID;
  }
  const was = cur ? `${String(cur.dc)}${cur.server !== undefined ? '/' + String(cur.server) : ''}` : undefined;
  const what = dc === undefined ? `unassign ${ip.value} from ${was}` : was ? `move ${ip.value} from ${was} to ${dc}${opts.server ? '/' + opts.server : ''}` : `assign ${ip.value} to ${dc}${opts.server ? '/' + opts.server : ''}`;
  if (!(await confirm(what, opts.yes, io, term))) return EXIT_INVALID;
  const value = dc === undefined ? null : opts.server !== undefined ? { dc, server: opts.server } : { dc };
  return write(c, { set: { [ip.value]: value }, expect: { [ip.value]: cur?.revision ?? 0 } }, io, opts.json === true);
}

/** Adds `anyedge egress …`; `done(code)` receives each run's exit code. */
export function registerEgressCommand(program: Command, io: Io, done: (code: number) => void): void {
  const egress = program.command('egress').description('soft-unicast egress: addresses per data center shared by port slices, their allocation and geofeed');
  withClientOptions(
    egress
      .command('geofeed')
      .description('print the RFC 8805 geofeed (CSV) of the egress pools: from a config file, else from the store through the API')
      .option('-f, --file <file>', 'config file instead of the store')
      .option('--assigned-only', 'only addresses assigned to a data center'),
  ).action(async (o: GeofeedFlags) => done(await runGeofeed(o, io, terminalOf(io))));
  withClientOptions(
    egress
      .command('show')
      .description('who owns each assigned egress address: data center, tags, each server\'s port slice (IPv4) or the server (IPv6)')
      .option('--dc <dc>', 'only this data center'),
  ).action(async (o: ShowFlags) => done(await runShow(o, io, terminalOf(io))));
  withClientOptions(
    egress
      .command('allocate')
      .description('assign each data center (IPv4) and server (IPv6) the egress addresses it still needs per tag, contiguously; one transaction')
      .option('--release', 'also free addresses beyond a data center\'s need')
      .option('--servers <DC=N...>', 'plan for N servers in DC (before adding them)')
      .option('--dry-run', 'print the plan only')
      .option('--yes', 'write without asking (needed when stdin is not a terminal)'),
  ).action(async (o: AllocateFlags) => done(await runAllocate(o, io, terminalOf(io))));
  withClientOptions(
    egress
      .command('assign')
      .description('assign an egress address to a data center, or move it to another (IPv6: to one server)')
      .argument('<ip>', 'the address, e.g. 198.51.100.64')
      .argument('<dc>', 'the data center')
      .option('--server <server>', 'IPv6 only: the server it belongs to')
      .option('--yes', 'write without asking (needed when stdin is not a terminal)'),
  ).action(async (ip: string, dc: string, o: AssignFlags) => done(await runAssign(ip, dc, o, io, terminalOf(io))));
  withClientOptions(
    egress
      .command('unassign')
      .description('remove an egress address from its data center')
      .argument('<ip>', 'the address')
      .option('--yes', 'write without asking (needed when stdin is not a terminal)'),
  ).action(async (ip: string, o: AssignFlags) => done(await runAssign(ip, undefined, o, io, terminalOf(io))));
}
