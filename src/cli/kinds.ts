/**
 * The object kinds `anyedge get` and `anyedge delete` know: their names, where they live in the
 * REST API, and the columns of their tables. One row per kind, so adding a kind is one entry.
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { isId } from '../model/id.ts';
import { closest } from '../model/text.ts';
import type { ApiObject } from './client.ts';
import { seg } from './client.ts';

/** A column: its header and how a cell is read from an object. */
export interface Column {
  readonly head: string;
  cell(o: ApiObject): string;
}

/** Where objects of a kind live. */
export type Scope = 'tenant' | 'global' | 'dc';

/** A kind of object. */
export interface Kind {
  /** Plural name as typed: `tenants`, `prefixes`. */
  readonly name: string;
  /** Singular, for messages: `tenant`, `prefix`. */
  readonly noun: string;
  readonly aliases: readonly string[];
  /** `tenant`: below a tenant (needs --tenant for one object); `dc`: id is DC/SERVER. */
  readonly scope: Scope;
  /** List route; `owner` is the tenant or data center for scoped kinds. */
  listPath(owner: string): string;
  /** One object's route. */
  itemPath(owner: string, id: string): string;
  readonly columns: readonly Column[];
  /** Said before deleting, after the object's name, when a delete takes more than the object. */
  readonly deleteNote?: string;
}

/** A field as table text: lists joined with commas, objects as compact JSON, absent as empty. */
export function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' && x !== null ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const field = (head: string, name: string): Column => ({ head, cell: (o) => text(o[name]) });
const idCol: Column = { head: 'id', cell: (o) => o.id ?? '' };
const revCol: Column = { head: 'revision', cell: (o) => String(o.revision) };
const tenantCol: Column = { head: 'tenant', cell: (o) => text(o.tenant) };

/** The order match fields are shown in; any other field follows, sorted. */
const MATCH_ORDER = ['src', 'dst', 'protocol', 'sport', 'dport', 'tcpFlags', 'icmp', 'length', 'ttl', 'payload'];

/**
 * A rule's match in one line: `dst=203.0.113.100 tcp dport=20-21`. `fields` is the object holding
 * the match fields; `skip` the fields that are not part of the match.
 */
export function summarizeMatch(fields: Readonly<Record<string, unknown>>, skip: readonly string[] = []): string {
  const keys = Object.keys(fields).filter((k) => !skip.includes(k) && fields[k] !== undefined);
  keys.sort((a, b) => (MATCH_ORDER.indexOf(a) + 1 || 99) - (MATCH_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const parts = keys.map((k) => {
    const v = fields[k];
    if (k === 'protocol') return String(v);
    if (k === 'tcpFlags' && v && typeof v === 'object') {
      const f = v as { set?: string[]; unset?: string[] };
      return 'flags=' + [...(f.set ?? []).map((x) => `+${x}`), ...(f.unset ?? []).map((x) => `-${x}`)].join('');
    }
    if (k === 'icmp' && v && typeof v === 'object') {
      const i = v as { type?: unknown; code?: unknown };
      return `icmp=${String(i.type)}${i.code === undefined ? '' : `/${String(i.code)}`}`;
    }
    return `${k}=${Array.isArray(v) ? v.map(String).join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`;
  });
  return parts.length ? parts.join(' ') : 'any';
}

function rate(v: unknown): string {
  if (!v || typeof v !== 'object') return '';
  const r = v as Record<string, unknown>;
  return Object.entries(r)
    .map(([k, x]) => `${k}=${typeof x === 'object' ? JSON.stringify(x) : String(x)}`)
    .join(' ');
}

/** Firewall rules, one row each (rules are plain objects inside the firewall, not API objects). */
export const FIREWALL_RULE_COLUMNS: readonly Column[] = [
  tenantCol,
  { head: '#', cell: (o) => text(o.index) },
  idCol,
  field('direction', 'direction'),
  { head: 'match', cell: (o) => summarizeMatch(o, ['id', 'tenant', 'index', 'revision', 'direction', 'action', 'rateLimit', 'description']) },
  { head: 'action', cell: (o) => [text(o.action), rate(o.rateLimit)].filter(Boolean).join(' ') },
  field('description', 'description'),
];

const tenantPath = (t: string): string => `/v1/tenants/${seg(t)}`;

/** Every kind, in the order help lists them. */
export const KINDS: readonly Kind[] = [
  {
    name: 'tenants',
    noun: 'tenant',
    aliases: ['tenant'],
    scope: 'global',
    listPath: () => '/v1/tenants',
    itemPath: (_o, id) => tenantPath(id),
    columns: [idCol, field('name', 'name'), field('status', 'status'), revCol],
    deleteNote: 'and everything it owns (prefixes, tunnels, routes, firewall)',
  },
  {
    name: 'prefixes',
    noun: 'prefix',
    aliases: ['prefix'],
    scope: 'tenant',
    listPath: (t) => `${tenantPath(t)}/prefixes`,
    itemPath: (t, id) => `${tenantPath(t)}/prefixes/${seg(id)}`,
    columns: [tenantCol, idCol, field('cidr', 'cidr'), field('description', 'description'), revCol],
  },
  {
    name: 'tunnels',
    noun: 'tunnel',
    aliases: ['tunnel'],
    scope: 'tenant',
    listPath: (t) => `${tenantPath(t)}/tunnels`,
    itemPath: (t, id) => `${tenantPath(t)}/tunnels/${seg(id)}`,
    columns: [
      tenantCol,
      idCol,
      field('customer endpoint', 'customerEndpoint'),
      { head: 'anycast endpoint', cell: (o) => text(o.anycastEndpoint) || 'default' },
      field('key', 'key'),
      field('inner', 'inner'),
      field('mtu', 'mtu'),
      { head: 'health check', cell: (o) => ((o.healthCheck as { enabled?: boolean } | undefined)?.enabled === false ? 'off' : 'on') },
      revCol,
    ],
  },
  {
    name: 'routes',
    noun: 'route',
    aliases: ['route'],
    scope: 'tenant',
    listPath: (t) => `${tenantPath(t)}/routes`,
    itemPath: (t, id) => `${tenantPath(t)}/routes/${seg(id)}`,
    columns: [
      tenantCol,
      idCol,
      field('prefix', 'prefix'),
      {
        head: 'via',
        cell: (o) =>
          (Array.isArray(o.via) ? (o.via as { tunnel?: string; priority?: number; weight?: number }[]) : [])
            .map((h) => `${String(h.tunnel)} (priority ${String(h.priority ?? 100)}, weight ${String(h.weight ?? 1)})`)
            .join(', '),
      },
      revCol,
    ],
  },
  {
    name: 'firewall',
    noun: 'firewall rule',
    aliases: ['rules', 'rule', 'firewall-rules'],
    scope: 'tenant',
    listPath: (t) => `${tenantPath(t)}/firewall`,
    itemPath: (t, id) => `${tenantPath(t)}/firewall/rules/${seg(id)}`,
    columns: FIREWALL_RULE_COLUMNS,
  },
  {
    name: 'dos',
    noun: 'DoS rule',
    aliases: ['dos-rules', 'dos-rule'],
    scope: 'global',
    listPath: () => '/v1/dos/rules',
    itemPath: (_o, id) => `/v1/dos/rules/${seg(id)}`,
    columns: [
      idCol,
      { head: 'match', cell: (o) => summarizeMatch((o.match as Record<string, unknown> | undefined) ?? {}) },
      { head: 'action', cell: (o) => [text(o.action), rate(o.rateLimit)].filter(Boolean).join(' ') },
      { head: 'scope', cell: (o) => rate(o.scope) || 'everywhere' },
      field('expires', 'expires'),
      revCol,
    ],
  },
  {
    name: 'pools',
    noun: 'egress pool',
    aliases: ['pool', 'egress-pools', 'egress'],
    scope: 'global',
    listPath: () => '/v1/egress/pools',
    itemPath: (_o, id) => `/v1/egress/pools/${seg(id)}`,
    columns: [
      idCol,
      field('cidrs', 'cidrs'),
      { head: 'class', cell: (o) => text((o.tags as { class?: unknown } | undefined)?.class) },
      { head: 'country', cell: (o) => text((o.tags as { country?: unknown } | undefined)?.country) },
      field('slice size', 'sliceSize'),
      revCol,
    ],
  },
  {
    name: 'dcs',
    noun: 'data center',
    aliases: ['dc', 'datacenters'],
    scope: 'global',
    listPath: () => '/v1/dcs',
    itemPath: (_o, id) => `/v1/dcs/${seg(id)}`,
    columns: [idCol, field('name', 'name'), field('location', 'location'), field('backbone', 'backbone'), revCol],
    deleteNote: 'and its servers',
  },
  {
    name: 'servers',
    noun: 'server',
    aliases: ['server'],
    scope: 'dc',
    listPath: (dc) => `/v1/dcs/${seg(dc)}/servers`,
    itemPath: (dc, id) => `/v1/dcs/${seg(dc)}/servers/${seg(id)}`,
    columns: [{ head: 'dc', cell: (o) => text(o.dc) }, idCol, field('uplink', 'uplink'), field('addresses', 'addresses'), field('state', 'state'), revCol],
  },
];

/** The kind a user typed, or an error listing the kinds (with the nearest one). */
export function findKind(typed: string): Result<Kind, string> {
  const t = typed.toLowerCase();
  const kind = KINDS.find((k) => k.name === t || k.aliases.includes(t));
  if (kind) return ok(kind);
  const near = closest(t, KINDS.flatMap((k) => [k.name, ...k.aliases]));
  const hint = near === undefined ? '' : ` (did you mean ${near}?)`;
  return err(`KIND ${JSON.stringify(typed)}: unknown kind${hint}; use one of ${KINDS.map((k) => k.name).join(', ')}`);
}

/** Checks an id argument or option value; `what` names it for the message. */
export function checkId(value: string, what: string): Result<string, string> {
  if (isId(value)) return ok(value);
  return err(`${what} ${JSON.stringify(value)}: not a valid id; ids are 1–32 characters from a–z, 0–9 and "-", starting with a letter or digit`);
}
