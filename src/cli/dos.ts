/**
 * `anyedge dos events|proposals|accept|reject`: what attack detection found, through the API.
 *
 * - `dos events [--tenant T]`: detection events, oldest first (a tenant token needs --tenant);
 * - `dos proposals [--tenant T]`: rules proposed by detection, pending or rejected;
 * - `dos accept ID [--yes]`: shows the proposal, asks, then writes its rule (operator);
 * - `dos reject ID [--yes]`: the same, marking it rejected (operator).
 *
 * Exit codes: 0 done, 1 refused (no confirmation, not found) or failed, 2 usage.
 */
import { z } from 'zod';
import type { Command } from 'commander';
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import { isYes, terminalOf } from './terminal.ts';
import type { ClientFlags } from './client-options.ts';
import { clientFrom, withClientOptions } from './client-options.ts';
import { formatApiError, seg, type ApiClient } from './client.ts';
import { renderTable } from './table-view.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { idProblem } from '../model/id.ts';

const talker = z.looseObject({ key: z.string(), pps: z.number(), bps: z.number() });
const observation = z.looseObject({ dst: z.string(), pps: z.number(), bps: z.number(), synPps: z.number(), crossed: z.array(z.string()), sources: z.array(talker), signatures: z.array(talker) });
const rule = z.looseObject({ match: z.record(z.string(), z.unknown()), action: z.string(), rateLimit: z.record(z.string(), z.unknown()).optional(), expires: z.string().optional() });
const eventSchema = z.looseObject({ id: z.string(), at: z.string(), kind: z.string(), tenant: z.string(), ruleId: z.string(), by: z.string(), observation: observation.optional(), rule: rule.optional() });
const proposalSchema = z.looseObject({ id: z.string(), revision: z.number(), tenant: z.string(), state: z.string(), rule, expires: z.string(), updatedAt: z.string(), seenBy: z.array(z.string()), observation });
const decisionSchema = z.looseObject({ id: z.string(), decision: z.string(), revision: z.number(), rule: rule.optional() });

type Event = z.output<typeof eventSchema>;
type Proposal = z.output<typeof proposalSchema>;

/** Flags of the listing commands. */
export interface DosListOptions extends ClientFlags {
  readonly tenant?: string;
}

/** Flags of accept and reject. */
export interface DosDecideOptions extends ClientFlags {
  readonly id: string;
  readonly yes?: boolean;
}

/** One line for a rule: `drop udp dport 53 payload …@0 → 203.0.113.5/32` or `rate-limit 500 pps per dst-ip …`. */
export function ruleSummary(r: z.output<typeof rule>): string {
  const m = r.match as Record<string, unknown>;
  const parts: string[] = [r.action === 'rate-limit' && r.rateLimit ? `rate-limit ${[r.rateLimit.pps !== undefined ? `${String(r.rateLimit.pps)} pps` : '', r.rateLimit.bps !== undefined ? `${String(r.rateLimit.bps)} bps` : ''].filter(Boolean).join(' ')} per ${String(r.rateLimit.per)}` : r.action];
  if (m.protocol !== undefined) parts.push(String(m.protocol));
  if (Array.isArray(m.src)) parts.push(`from ${m.src.join(',')}`);
  if (Array.isArray(m.dport)) parts.push(`dport ${m.dport.join(',')}`);
  const flags = m.tcpFlags as { set?: string[]; unset?: string[] } | undefined;
  if (flags) parts.push(`flags ${[...(flags.set ?? []), ...(flags.unset ?? []).map((f) => `!${f}`)].join(',')}`);
  const payload = m.payload as { offset?: number; bytes?: string } | undefined;
  if (payload) parts.push(`payload ${String(payload.bytes)}@${String(payload.offset)}`);
  if (Array.isArray(m.dst)) parts.push(`→ ${m.dst.join(',')}`);
  return parts.join(' ');
}

function rate(pps: number): string {
  return pps >= 1e6 ? `${(pps / 1e6).toFixed(1)}M` : pps >= 1e3 ? `${(pps / 1e3).toFixed(1)}k` : String(Math.round(pps));
}

/** The events table. */
export function renderEvents(items: readonly Event[], tty: boolean): string {
  if (items.length === 0) return 'no detection events\n';
  const rows = items.map((e) => [e.at, e.tenant, e.kind, e.ruleId, e.by, e.observation?.dst ?? '', e.observation ? rate(e.observation.pps) : '', e.observation?.crossed.join(',') ?? '', e.rule ? ruleSummary(e.rule) : '']);
  return renderTable({ head: ['at', 'tenant', 'kind', 'rule', 'by', 'dst', 'pps', 'crossed', 'match'], rows }, tty);
}

/** The proposals table. */
export function renderProposals(items: readonly Proposal[], tty: boolean): string {
  if (items.length === 0) return 'no proposals\n';
  const rows = items.map((p) => [p.id, p.tenant, p.state, p.observation.dst, rate(p.observation.pps), ruleSummary(p.rule), p.expires, p.seenBy.join(',')]);
  return renderTable({ head: ['id', 'tenant', 'state', 'dst', 'pps', 'rule', 'expires', 'seen by'], rows }, tty);
}

async function client(opts: ClientFlags, io: Io, term: Terminal): Promise<ApiClient | null> {
  const c = await clientFrom(opts, term.env);
  if (!c.ok) {
    io.err(c.error + '\n');
    return null;
  }
  return c.value;
}

function checkId(flag: string, id: string | undefined, io: Io, what: string): boolean {
  if (id === undefined) return true;
  const bad = idProblem(id, what);
  if (bad) io.err(`${flag} ${JSON.stringify(id)}: ${bad}\n`);
  return bad === undefined;
}

/** Runs `dos events` or `dos proposals`; returns the exit code. */
export async function runDosList(what: 'events' | 'proposals', opts: DosListOptions, io: Io, term: Terminal): Promise<number> {
  if (!checkId('--tenant', opts.tenant, io, 'tenant id')) return EXIT_USAGE;
  const c = await client(opts, io, term);
  if (!c) return EXIT_USAGE;
  const path = opts.tenant !== undefined ? `/v1/tenants/${seg(opts.tenant)}/dos/${what}` : `/v1/dos/${what}`;
  const schema = z.looseObject({ items: z.array(what === 'events' ? eventSchema : proposalSchema) });
  const r = await c.request('GET', path, schema);
  if (!r.ok) {
    io.err(formatApiError(r.error));
    if (r.error.status === 403 && opts.tenant === undefined) io.err(`with a tenant token, name your tenant: anyedge dos ${what} --tenant T\n`);
    return EXIT_INVALID;
  }
  if (opts.json) io.out(JSON.stringify(r.value, null, 2) + '\n');
  else io.out(what === 'events' ? renderEvents(r.value.items as Event[], term.stdoutIsTTY) : renderProposals(r.value.items as Proposal[], term.stdoutIsTTY));
  return EXIT_OK;
}

/** Runs `dos accept` or `dos reject`; returns the exit code. */
export async function runDosDecide(decision: 'accept' | 'reject', opts: DosDecideOptions, io: Io, term: Terminal): Promise<number> {
  if (!checkId('ID', opts.id, io, 'proposal id')) return EXIT_USAGE;
  const c = await client(opts, io, term);
  if (!c) return EXIT_USAGE;
  const list = await c.request('GET', '/v1/dos/proposals', z.looseObject({ items: z.array(proposalSchema) }));
  if (!list.ok) {
    io.err(formatApiError(list.error));
    return EXIT_INVALID;
  }
  const p = list.value.items.find((x) => x.id === opts.id);
  if (!p) {
    io.err(`no proposal ${opts.id}; list them with anyedge dos proposals (an accepted or expired proposal is gone)\n`);
    return EXIT_INVALID;
  }
  io.err(renderProposals([p], term.stderrIsTTY));
  if (!opts.yes) {
    if (!term.stdinIsTTY) {
      io.err(`refusing to ${decision} proposal ${opts.id} without confirmation: stdin is not a terminal; pass --yes\n`);
      return EXIT_INVALID;
    }
    const q = decision === 'accept' ? `Accept proposal ${opts.id} and write its rule for ${p.tenant}? [y/N] ` : `Reject proposal ${opts.id}? [y/N] `;
    if (!isYes(await term.ask(q))) {
      io.err(`nothing ${decision}ed\n`);
      return EXIT_INVALID;
    }
  }
  const r = await c.request('POST', `/v1/dos/proposals/${seg(opts.id)}/${decision}`, decisionSchema);
  if (!r.ok) {
    io.err(formatApiError(r.error));
    return EXIT_INVALID;
  }
  if (opts.json) io.out(JSON.stringify(r.value, null, 2) + '\n');
  else if (r.value.rule) io.out(`accepted ${opts.id}: rule /dos/rules/${opts.id} (${ruleSummary(r.value.rule)}) until ${r.value.rule.expires ?? 'no expiry'}, revision ${r.value.revision}\n`);
  else io.out(`rejected ${opts.id} (revision ${r.value.revision}); detection will not propose it again until it expires\n`);
  return EXIT_OK;
}

/** Adds `anyedge dos …`; `done(code)` receives each run's exit code. */
export function registerDosCommand(program: Command, io: Io, done: (code: number) => void): void {
  const dos = program.command('dos').description('attack detection: events, proposed mitigation rules, and the operator\'s decision on them');
  for (const what of ['events', 'proposals'] as const)
    withClientOptions(
      dos
        .command(what)
        .description(what === 'events' ? 'detection events (detected, proposed, installed, renewed, accepted, rejected, expired), oldest first' : 'mitigation rules detection proposed, pending or rejected')
        .option('--tenant <tenant>', 'only this tenant (needed with a tenant token)'),
    ).action(async (o: DosListOptions) => {
      done(await runDosList(what, o, io, terminalOf(io)));
    });
  for (const decision of ['accept', 'reject'] as const)
    withClientOptions(
      dos
        .command(decision)
        .description(decision === 'accept' ? 'accept a proposal: its rule is written to /dos/rules/ID (operator)' : 'reject a proposal: no rule, and it is not proposed again until it expires (operator)')
        .argument('<id>', 'the proposal id, as dos proposals lists it')
        .option('--yes', `${decision} without asking (needed when stdin is not a terminal)`),
    ).action(async (id: string, o: ClientFlags & { yes?: boolean }) => {
      done(await runDosDecide(decision, { ...o, id }, io, terminalOf(io)));
    });
}
