/**
 * The config in the store (DESIGN §3): one key per object, values in stored (normalised) form.
 *
 * ```
 * /dcs/<dc>                    /dcs/<dc>/servers/<server>    /anycast
 * /tenants/<t>                 /tenants/<t>/prefixes/<p>     /tenants/<t>/tunnels/<n>
 * /tenants/<t>/routes/<r>      /tenants/<t>/firewall
 * /dos/rules/<id>              /egress/pools/<pool>          /egress/assign/<ip>
 * ```
 *
 * A parent's value never lists its children (a data center does not repeat its servers): the keys
 * below it are the list, so the two cannot disagree. An issue's path is its key without the
 * leading slash, which is also its place in the YAML document.
 */
import type { z } from 'zod';
import type { Issue } from './issue.ts';
import type { Result } from '../lib/result.ts';
import { ok, err } from '../lib/result.ts';
import type { KeyspaceValidator } from '../store/validator.ts';
import type { Config, DcConfig, TenantConfig } from './config.ts';
import type { Dc, Server } from './dc.ts';
import { dcSchema, serverSchema } from './dc.ts';
import type { Anycast } from './anycast.ts';
import { anycastSchema, emptyAnycast } from './anycast.ts';
import type { Prefix, Tenant } from './tenant.ts';
import { prefixSchema, tenantSchema } from './tenant.ts';
import type { Tunnel } from './tunnel.ts';
import { tunnelSchema } from './tunnel.ts';
import type { Route } from './route.ts';
import { routeSchema } from './route.ts';
import type { Firewall } from './firewall.ts';
import { firewallSchema } from './firewall.ts';
import type { DosRule } from './dos.ts';
import { dosRuleSchema } from './dos.ts';
import type { EgressAssignment, EgressPool } from './egress.ts';
import { egressAssignmentSchema, egressPoolSchema } from './egress.ts';
import { idProblem } from './id.ts';
import { formatIp, parseIp } from './net.ts';
import type { Segments } from './schema.ts';
import { parseAt } from './schema.ts';
import { didYouMean } from './text.ts';
import { validate } from './validate.ts';

/** What a store key names. */
export type KeyRef =
  | { readonly kind: 'dc'; readonly dc: string }
  | { readonly kind: 'server'; readonly dc: string; readonly server: string }
  | { readonly kind: 'anycast' }
  | { readonly kind: 'tenant'; readonly tenant: string }
  | { readonly kind: 'prefix' | 'tunnel' | 'route'; readonly tenant: string; readonly id: string }
  | { readonly kind: 'firewall'; readonly tenant: string }
  | { readonly kind: 'dos'; readonly id: string }
  | { readonly kind: 'pool'; readonly id: string }
  | { readonly kind: 'assign'; readonly ip: string };

/** The key patterns, for messages. */
export const KEY_PATTERNS: readonly string[] = [
  '/dcs/<dc>',
  '/dcs/<dc>/servers/<server>',
  '/anycast',
  '/tenants/<t>',
  '/tenants/<t>/prefixes/<p>',
  '/tenants/<t>/tunnels/<n>',
  '/tenants/<t>/routes/<r>',
  '/tenants/<t>/firewall',
  '/dos/rules/<id>',
  '/egress/pools/<pool>',
  '/egress/assign/<ip>',
];

/**
 * Key prefixes of the validated config. Everything else in the store (agents' `/status/…`) is
 * operational state: written without the config check, and never read as config.
 */
export const CONFIG_ROOTS: readonly string[] = ['/dcs/', '/anycast', '/tenants/', '/dos/', '/egress/'];

/** Prefix of the servers' status keys: `/status/<dc>/<server>` (see model/status.ts). */
export const STATUS_ROOT = '/status/';

/** Store key of an object path: `['tenants', 'acme']` → `/tenants/acme`. */
export function storeKey(path: Segments): string {
  return '/' + path.join('/');
}

/** The store key of a `KeyRef`. */
export function keyOf(ref: KeyRef): string {
  switch (ref.kind) {
    case 'dc':
      return storeKey(['dcs', ref.dc]);
    case 'server':
      return storeKey(['dcs', ref.dc, 'servers', ref.server]);
    case 'anycast':
      return '/anycast';
    case 'tenant':
      return storeKey(['tenants', ref.tenant]);
    case 'prefix':
      return storeKey(['tenants', ref.tenant, 'prefixes', ref.id]);
    case 'tunnel':
      return storeKey(['tenants', ref.tenant, 'tunnels', ref.id]);
    case 'route':
      return storeKey(['tenants', ref.tenant, 'routes', ref.id]);
    case 'firewall':
      return storeKey(['tenants', ref.tenant, 'firewall']);
    case 'dos':
      return storeKey(['dos', 'rules', ref.id]);
    case 'pool':
      return storeKey(['egress', 'pools', ref.id]);
    case 'assign':
      return storeKey(['egress', 'assign', ref.ip]);
  }
}

const ROOTS = ['dcs', 'anycast', 'tenants', 'dos', 'egress'];
const TENANT_CHILDREN = ['prefixes', 'tunnels', 'routes', 'firewall'];

/**
 * Parses a store key. Fails with an issue located at the key's path for a key outside the layout,
 * an invalid id, or an egress address not written canonically (two spellings of one address
 * would be two keys).
 */
export function parseKey(key: string): Result<KeyRef, Issue> {
  const path = key.startsWith('/') ? key.slice(1).split('/') : [key];
  const unknown = (hint: string): Result<KeyRef, Issue> =>
    err({ code: 'unknown_key', path, field: [], message: `${JSON.stringify(key)} is not a config key${hint}; keys are ${KEY_PATTERNS.join(', ')}` });
  if (!key.startsWith('/')) return unknown('');
  const id = (at: number, what: string): Issue | undefined => {
    const problem = idProblem(path[at], what);
    return problem === undefined ? undefined : { code: 'invalid_id', path, field: [], message: problem };
  };
  const [root, a, b, c, ...more] = path as [string, string | undefined, string | undefined, string | undefined, ...string[]];
  if (more.length) return unknown('');
  const check = (ref: KeyRef, ...ids: [number, string][]): Result<KeyRef, Issue> => {
    for (const [at, what] of ids) {
      const bad = id(at, what);
      if (bad) return err(bad);
    }
    return ok(ref);
  };
  switch (root) {
    case 'dcs':
      if (a !== undefined && b === undefined) return check({ kind: 'dc', dc: a }, [1, 'data center id']);
      if (a !== undefined && b === 'servers' && c !== undefined)
        return check({ kind: 'server', dc: a, server: c }, [1, 'data center id'], [3, 'server id']);
      return unknown(b !== undefined && b !== 'servers' ? didYouMean(b, ['servers']) : '');
    case 'anycast':
      return a === undefined ? ok({ kind: 'anycast' }) : unknown('');
    case 'tenants':
      if (a !== undefined && b === undefined) return check({ kind: 'tenant', tenant: a }, [1, 'tenant id']);
      if (a !== undefined && b === 'firewall' && c === undefined) return check({ kind: 'firewall', tenant: a }, [1, 'tenant id']);
      if (a !== undefined && (b === 'prefixes' || b === 'tunnels' || b === 'routes') && c !== undefined) {
        const kind = b === 'prefixes' ? 'prefix' : b === 'tunnels' ? 'tunnel' : 'route';
        return check({ kind, tenant: a, id: c }, [1, 'tenant id'], [3, `${kind} id`]);
      }
      return unknown(b !== undefined ? didYouMean(b, TENANT_CHILDREN) : '');
    case 'dos':
      if (a === 'rules' && b !== undefined && c === undefined) return check({ kind: 'dos', id: b }, [2, 'DoS rule id']);
      return unknown(a !== undefined ? didYouMean(a, ['rules']) : '');
    case 'egress':
      if (a === 'pools' && b !== undefined && c === undefined) return check({ kind: 'pool', id: b }, [2, 'egress pool id']);
      if (a === 'assign' && b !== undefined && c === undefined) {
        const ip = parseIp(b);
        if (!ip.ok) return err({ code: 'invalid_ip', path, field: [], message: ip.error });
        const canonical = formatIp(ip.value);
        if (canonical !== b)
          return err({ code: 'not_canonical', path, field: [], message: `${JSON.stringify(b)} is not written canonically; use ${canonical} (one address, one key)` });
        return ok({ kind: 'assign', ip: b });
      }
      return unknown(a !== undefined ? didYouMean(a, ['pools', 'assign']) : '');
    default:
      return unknown(root === undefined ? '' : didYouMean(root, ROOTS));
  }
}

/** The schema of the value stored under a key of the given kind. */
function schemaOf(kind: KeyRef['kind']): z.ZodType {
  switch (kind) {
    case 'dc':
      return dcSchema;
    case 'server':
      return serverSchema;
    case 'anycast':
      return anycastSchema;
    case 'tenant':
      return tenantSchema;
    case 'prefix':
      return prefixSchema;
    case 'tunnel':
      return tunnelSchema;
    case 'route':
      return routeSchema;
    case 'firewall':
      return firewallSchema;
    case 'dos':
      return dosRuleSchema;
    case 'pool':
      return egressPoolSchema;
    case 'assign':
      return egressAssignmentSchema;
  }
}

/** Result of `parseEntries`. */
export interface ParsedEntries {
  /**
   * Every object that parsed, assembled. Not necessarily valid: cross-object checks have not run,
   * and a parent that failed its schema is stood in for by a placeholder so that its children are
   * still checked. Only use it when `issues` is empty and `validate` agrees.
   */
  readonly config: Config;
  /** Issues of keys and of single objects. */
  readonly issues: Issue[];
  /** Paths (`tenants/acme/tunnels/gre1`) of objects that failed their schema. */
  readonly broken: Set<string>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

type ParseResult = ReturnType<typeof parseAt>;

/**
 * Schema results of frozen values, by value identity and key. The store hands out frozen values
 * that keep their identity until rewritten (see store/validator.ts), so a write re-parses only
 * the objects it changed instead of the whole keyspace. Mutable values are never cached: they
 * could change under the cache.
 */
const parseCache = new WeakMap<object, Map<string, ParseResult>>();

function parseCached(kind: KeyRef['kind'], key: string, raw: unknown, path: Segments): ParseResult {
  if (typeof raw !== 'object' || raw === null || !Object.isFrozen(raw)) return parseAt(schemaOf(kind), raw, path);
  let byKey = parseCache.get(raw);
  const hit = byKey?.get(key);
  if (hit) return hit;
  const r = parseAt(schemaOf(kind), raw, path);
  if (!byKey) parseCache.set(raw, (byKey = new Map()));
  byKey.set(key, r);
  return r;
}

/** Parses every entry on its own and assembles what parsed into a config. */
export function parseEntries(entries: ReadonlyMap<string, unknown>): ParsedEntries {
  const issues: Issue[] = [];
  const broken = new Set<string>();
  const parsed: { ref: KeyRef; path: Segments; value: unknown }[] = [];
  for (const [key, raw] of entries) {
    const ref = parseKey(key);
    if (!ref.ok) {
      issues.push(ref.error);
      continue;
    }
    const path = key.slice(1).split('/');
    const r = parseCached(ref.value.kind, key, raw, path);
    if (r.ok) parsed.push({ ref: ref.value, path, value: r.value });
    else {
      issues.push(...r.error);
      broken.add(path.join('/'));
    }
  }

  // Parents first, so children find them whatever order the entries came in.
  const dcs: Record<string, Mutable<DcConfig>> = {};
  const tenants: Record<string, Mutable<TenantConfig>> = {};
  let anycast: Anycast = emptyAnycast();
  const dos: Record<string, DosRule> = {};
  const pools: Record<string, EgressPool> = {};
  const assign: Record<string, EgressAssignment> = {};
  for (const { ref, value } of parsed) {
    if (ref.kind === 'dc') dcs[ref.dc] = { ...(value as Dc), servers: {} };
    else if (ref.kind === 'tenant') tenants[ref.tenant] = { ...(value as Tenant), prefixes: {}, tunnels: {}, routes: {} };
    else if (ref.kind === 'anycast') anycast = value as Anycast;
    else if (ref.kind === 'dos') dos[ref.id] = value as DosRule;
    else if (ref.kind === 'pool') pools[ref.id] = value as EgressPool;
    else if (ref.kind === 'assign') assign[ref.ip] = value as EgressAssignment;
  }
  // A parent that exists but is broken gets a placeholder, so its children are still checked
  // (their issues are real) while the config as a whole stays invalid through the parent's issues.
  for (const b of broken) {
    const [root, id, more] = b.split('/');
    if (more !== undefined || id === undefined) continue;
    if (root === 'dcs' && !Object.hasOwn(dcs, id)) dcs[id] = { name: id, backbone: [], servers: {} };
    else if (root === 'tenants' && !Object.hasOwn(tenants, id)) tenants[id] = { name: id, status: 'active', prefixes: {}, tunnels: {}, routes: {} };
  }
  for (const { ref, path, value } of parsed) {
    if (ref.kind === 'server') {
      const dc = Object.hasOwn(dcs, ref.dc) ? dcs[ref.dc] : undefined;
      if (dc) (dc.servers as Record<string, Server>)[ref.server] = value as Server;
      else issues.push(orphan(path, `data center ${ref.dc}`, ['dcs', ref.dc]));
    } else if (ref.kind === 'prefix' || ref.kind === 'tunnel' || ref.kind === 'route' || ref.kind === 'firewall') {
      const t = Object.hasOwn(tenants, ref.tenant) ? tenants[ref.tenant] : undefined;
      if (!t) issues.push(orphan(path, `tenant ${ref.tenant}`, ['tenants', ref.tenant]));
      else if (ref.kind === 'prefix') (t.prefixes as Record<string, Prefix>)[ref.id] = value as Prefix;
      else if (ref.kind === 'tunnel') (t.tunnels as Record<string, Tunnel>)[ref.id] = value as Tunnel;
      else if (ref.kind === 'route') (t.routes as Record<string, Route>)[ref.id] = value as Route;
      else t.firewall = value as Firewall;
    }
  }
  const config: Config = { dcs, anycast, tenants, dos: { rules: dos }, egress: { pools, assign } };
  return { config, issues, broken };
}

function orphan(path: Segments, parent: string, parentPath: Segments): Issue {
  return { code: 'orphan', path, field: [], message: `${parent} does not exist; create ${storeKey(parentPath)} first, or remove this key` };
}

/**
 * The store entries of a config: one key per object, values as stored (JSON-ready; the config is
 * already in stored form, so nothing is converted).
 */
export function configToEntries(config: Config): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [d, dc] of Object.entries(config.dcs)) {
    const { servers, ...value } = dc;
    out.set(keyOf({ kind: 'dc', dc: d }), value);
    for (const [s, server] of Object.entries(servers)) out.set(keyOf({ kind: 'server', dc: d, server: s }), server);
  }
  out.set('/anycast', config.anycast);
  for (const [t, tenant] of Object.entries(config.tenants)) {
    const { prefixes, tunnels, routes, firewall, ...value } = tenant;
    out.set(keyOf({ kind: 'tenant', tenant: t }), value);
    for (const [id, v] of Object.entries(prefixes)) out.set(keyOf({ kind: 'prefix', tenant: t, id }), v);
    for (const [id, v] of Object.entries(tunnels)) out.set(keyOf({ kind: 'tunnel', tenant: t, id }), v);
    for (const [id, v] of Object.entries(routes)) out.set(keyOf({ kind: 'route', tenant: t, id }), v);
    if (firewall !== undefined) out.set(keyOf({ kind: 'firewall', tenant: t }), firewall);
  }
  for (const [id, v] of Object.entries(config.dos.rules)) out.set(keyOf({ kind: 'dos', id }), v);
  for (const [id, v] of Object.entries(config.egress.pools)) out.set(keyOf({ kind: 'pool', id }), v);
  for (const [ip, v] of Object.entries(config.egress.assign)) out.set(keyOf({ kind: 'assign', ip }), v);
  return out;
}

/**
 * Reads a config back from store entries, fully checked (keys, each object, cross-object rules):
 * a `Config` value is always a valid config.
 */
export function entriesToConfig(entries: ReadonlyMap<string, unknown>): Result<Config, Issue[]> {
  const parsed = parseEntries(entries);
  const issues = [...parsed.issues, ...validate(parsed.config, { broken: parsed.broken })];
  return issues.length ? err(issues) : ok(parsed.config);
}

/**
 * The store's write check (see `KeyspaceValidator`): unknown keys, objects that fail their
 * schema, children without a parent, and every cross-object rule, over the keyspace as it would
 * be after the write.
 */
export const validateKeyspace: KeyspaceValidator = (entries) => {
  const parsed = parseEntries(entries);
  return [...parsed.issues, ...validate(parsed.config, { broken: parsed.broken })];
};
