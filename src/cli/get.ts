/**
 * `anyedge get KIND [ID] [--tenant T]`: objects from the API, as a table (default) or as the API's
 * JSON (`--json`: one object, or `{ "items": [...] }`).
 *
 * Tenant-owned kinds (prefixes, tunnels, routes, firewall) list every tenant the token can see
 * unless `--tenant` narrows it; their items then carry a `tenant` field, since ids repeat across
 * tenants. Servers are named `DC/SERVER`; `get servers DC` lists one data center's. `firewall`
 * shows each tenant's rules in order with its default actions; with an ID, one rule.
 *
 * Exit codes: 0 shown, 1 the API refused or failed (not found, unreachable), 2 usage.
 */
import type { Io } from './io.ts';
import type { Terminal } from './terminal.ts';
import type { ApiClient, ApiError, ApiObject } from './client.ts';
import { formatApiError, seg } from './client.ts';
import type { ClientFlags } from './client-options.ts';
import { clientFrom } from './client-options.ts';
import type { Kind } from './kinds.ts';
import { FIREWALL_RULE_COLUMNS, checkId, findKind } from './kinds.ts';
import { renderTable } from './table-view.ts';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';

/** What `get` was asked. */
export interface GetOptions extends ClientFlags {
  readonly kind: string;
  readonly id?: string;
  readonly tenant?: string;
}

/** Where one object is: its owner (tenant or data center, '' for global kinds) and its id. */
export interface Target {
  readonly owner: string;
  readonly id: string;
}

/**
 * Checks the ID argument and --tenant against the kind: tenant kinds need --tenant for one
 * object, servers are DC/SERVER, others refuse --tenant. Shared with `delete`.
 */
export function resolveTarget(kind: Kind, id: string, tenant: string | undefined): Result<Target, string> {
  if (kind.scope === 'tenant') {
    if (tenant === undefined) return err(`--tenant: ${kind.noun} ${id} belongs to a tenant; pass --tenant T (anyedge get tenants lists them)`);
    const t = checkId(tenant, '--tenant');
    if (!t.ok) return t;
    const i = checkId(id, 'ID');
    return i.ok ? ok({ owner: t.value, id: i.value }) : i;
  }
  if (tenant !== undefined) return err(`--tenant: ${kind.name} do not belong to a tenant; remove --tenant`);
  if (kind.scope === 'dc') {
    const [dc, server, ...rest] = id.split('/');
    if (dc === undefined || server === undefined || rest.length) return err(`ID ${JSON.stringify(id)}: give a server as DC/SERVER, e.g. ams/s1`);
    const d = checkId(dc, 'ID (data center)');
    if (!d.ok) return d;
    const s = checkId(server, 'ID (server)');
    return s.ok ? ok({ owner: d.value, id: s.value }) : s;
  }
  const i = checkId(id, 'ID');
  return i.ok ? ok({ owner: '', id: i.value }) : i;
}

/** Names an object for messages: `prefix p1 of tenant acme`, `server ams/s1`. */
export function describeTarget(kind: Kind, t: Target): string {
  if (kind.scope === 'tenant') return `${kind.noun} ${t.id} of tenant ${t.owner}`;
  if (kind.scope === 'dc') return `${kind.noun} ${t.owner}/${t.id}`;
  return `${kind.noun} ${t.id}`;
}

/** How to list a kind, for "not found" hints. */
export function listHint(kind: Kind, t: Target): string {
  if (kind.scope === 'tenant') return `anyedge get ${kind.name} --tenant ${t.owner}`;
  if (kind.scope === 'dc') return `anyedge get servers ${t.owner}`;
  return `anyedge get ${kind.name}`;
}

/** A 404 with a hint on where to look; other errors as the client formats them. */
export function explainError(e: ApiError, kind: Kind, t: Target | undefined): string {
  if (e.status === 404 && t !== undefined) return `${describeTarget(kind, t)}: not found (${e.message}); ${listHint(kind, t)} lists what there is\n`;
  return formatApiError(e);
}

/** One tenant's firewall, as `get firewall` shows it. */
interface FirewallView {
  readonly tenant: string;
  /** The API object, or undefined when the tenant has no firewall. */
  readonly firewall?: ApiObject;
}

/** Runs `get`; returns the exit code. */
export async function runGet(opts: GetOptions, io: Io, term: Terminal): Promise<number> {
  const kind = findKind(opts.kind);
  if (!kind.ok) {
    io.err(kind.error + '\n');
    return EXIT_USAGE;
  }
  const k = kind.value;
  if (opts.tenant !== undefined && k.scope !== 'tenant') {
    io.err(`--tenant: ${k.name} do not belong to a tenant; remove --tenant\n`);
    return EXIT_USAGE;
  }
  if (opts.tenant !== undefined) {
    const t = checkId(opts.tenant, '--tenant');
    if (!t.ok) {
      io.err(t.error + '\n');
      return EXIT_USAGE;
    }
  }
  // `get servers DC` lists one data center: an id without a slash names the owner, not a server.
  const dcOnly = k.scope === 'dc' && opts.id !== undefined && !opts.id.includes('/');
  if (dcOnly) {
    const d = checkId(opts.id!, 'ID (data center)');
    if (!d.ok) {
      io.err(d.error + '\n');
      return EXIT_USAGE;
    }
  }
  const target = opts.id === undefined || dcOnly ? undefined : resolveTarget(k, opts.id, opts.tenant);
  if (target && !target.ok) {
    io.err(target.error + '\n');
    return EXIT_USAGE;
  }
  const client = await clientFrom(opts, term.env);
  if (!client.ok) {
    io.err(client.error + '\n');
    return EXIT_USAGE;
  }
  const c = client.value;
  const tty = term.stdoutIsTTY;

  // One object.
  if (target) {
    const t = target.value;
    const r = await c.getObject(k.itemPath(t.owner, t.id));
    if (!r.ok) {
      io.err(explainError(r.error, k, t));
      return EXIT_INVALID;
    }
    const shown = withOwner(k, t.owner, r.value);
    if (opts.json) io.out(JSON.stringify(r.value, null, 2) + '\n');
    else io.out(renderTable({ head: k.columns.map((col) => col.head), rows: [k.columns.map((col) => col.cell(shown))] }, tty));
    return EXIT_OK;
  }

  // Firewalls: whole, per tenant.
  if (k.name === 'firewall') {
    const tenants = await ownersOf(c, k, opts.tenant, undefined);
    if (!tenants.ok) {
      io.err(formatApiError(tenants.error));
      return EXIT_INVALID;
    }
    const views: FirewallView[] = [];
    for (const tenant of tenants.value) {
      const r = await c.getObject(k.listPath(tenant));
      if (r.ok) views.push({ tenant, firewall: r.value });
      else if (r.error.status === 404 && (await tenantExists(c, tenant))) views.push({ tenant });
      else {
        io.err(r.error.status === 404 ? `tenant ${tenant}: not found; anyedge get tenants lists them\n` : formatApiError(r.error));
        return EXIT_INVALID;
      }
    }
    if (opts.json) io.out(JSON.stringify({ items: views.filter((v) => v.firewall).map((v) => ({ tenant: v.tenant, ...v.firewall })) }, null, 2) + '\n');
    else io.out(renderFirewalls(views, tty));
    return EXIT_OK;
  }

  // Lists.
  const owners = await ownersOf(c, k, opts.tenant, dcOnly ? opts.id : undefined);
  if (!owners.ok) {
    io.err(formatApiError(owners.error));
    return EXIT_INVALID;
  }
  const items: ApiObject[] = [];
  for (const owner of owners.value) {
    const r = await c.list(k.listPath(owner));
    if (!r.ok) {
      const what = k.scope === 'tenant' ? `tenant ${owner}` : `data center ${owner}`;
      io.err(r.error.status === 404 && owner ? `${what}: not found; anyedge get ${k.scope === 'tenant' ? 'tenants' : 'dcs'} lists them\n` : formatApiError(r.error));
      return EXIT_INVALID;
    }
    items.push(...r.value.map((o) => withOwner(k, owner, o)));
  }
  if (opts.json) io.out(JSON.stringify({ items }, null, 2) + '\n');
  else if (items.length === 0) io.out(`no ${k.name}${opts.tenant ? ` in tenant ${opts.tenant}` : ''}\n`);
  else io.out(renderTable({ head: k.columns.map((col) => col.head), rows: items.map((o) => k.columns.map((col) => col.cell(o))) }, tty));
  return EXIT_OK;
}

/** Tags an object of a scoped kind with its owner, under the name a reader expects. */
function withOwner(kind: Kind, owner: string, o: ApiObject): ApiObject {
  if (kind.scope === 'tenant') return { ...o, tenant: owner };
  if (kind.scope === 'dc') return { ...o, dc: owner };
  return o;
}

/** The owners to list: the one given, or every tenant / data center the token can see. */
async function ownersOf(c: ApiClient, kind: Kind, tenant: string | undefined, dc: string | undefined): Promise<Result<string[], ApiError>> {
  if (kind.scope === 'global') return ok(['']);
  if (kind.scope === 'tenant' && tenant !== undefined) return ok([tenant]);
  if (kind.scope === 'dc' && dc !== undefined) return ok([dc]);
  const r = await c.list(kind.scope === 'tenant' ? '/v1/tenants' : '/v1/dcs');
  return r.ok ? ok(r.value.map((o) => o.id ?? '').filter((id) => id !== '')) : r;
}

async function tenantExists(c: ApiClient, tenant: string): Promise<boolean> {
  const r = await c.getObject(`/v1/tenants/${seg(tenant)}`);
  return r.ok;
}

/** Each tenant's default actions, then one table of every rule in order. */
export function renderFirewalls(views: readonly FirewallView[], tty: boolean): string {
  const lines: string[] = [];
  const rows: string[][] = [];
  for (const v of views) {
    if (!v.firewall) {
      lines.push(`${v.tenant}: no firewall (traffic passes both ways)`);
      continue;
    }
    const def = v.firewall.default as { ingress?: string; egress?: string } | undefined;
    const rules = Array.isArray(v.firewall.rules) ? (v.firewall.rules as Record<string, unknown>[]) : [];
    lines.push(`${v.tenant}: ${rules.length} rule${rules.length === 1 ? '' : 's'}, then ingress ${def?.ingress ?? '?'}, egress ${def?.egress ?? '?'} (revision ${v.firewall.revision})`);
    rules.forEach((rule, i) => {
      const o = { ...rule, tenant: v.tenant, index: i + 1, revision: v.firewall!.revision } as ApiObject;
      rows.push(FIREWALL_RULE_COLUMNS.map((col) => col.cell(o)));
    });
  }
  const table = rows.length ? renderTable({ head: FIREWALL_RULE_COLUMNS.map((c) => c.head), rows }, tty) : '';
  return (lines.length ? lines.join('\n') + '\n' : 'no tenants\n') + table;
}
