/**
 * The whole configuration document. Its shape mirrors the store keyspace (DESIGN §3) level by
 * level, so an issue's store path is also its place in the YAML file:
 *
 * ```yaml
 * dcs:       { <dc>: { name, location, backbone, servers: { <server>: {…} } } }
 * anycast:   { ranges, egressRanges, greEndpoints, services }
 * tenants:   { <t>: { name, status, tokenHash, prefixes: {<p>: …}, tunnels: {<n>: …}, routes: {<r>: …}, firewall: {…} } }
 * dos:       { rules: { <id>: {…} } }
 * egress:    { pools: { <pool>: {…} }, assign: { <ip>: { dc } } }
 * ```
 *
 * A document is split into store entries (document.ts), each object is validated on its own by
 * its concept's schema (so one broken object does not hide the issues of the others, keyspace.ts)
 * and then all together by `validate` (validate.ts): a document and a store keyspace go through
 * the same checks.
 */
import type { Issue } from './issue.ts';
import type { Result } from '../lib/result.ts';
import { ok, err } from '../lib/result.ts';
import type { Dc, Server } from './dc.ts';
import type { Anycast } from './anycast.ts';
import { emptyAnycast } from './anycast.ts';
import type { Prefix, Tenant } from './tenant.ts';
import type { Tunnel } from './tunnel.ts';
import type { Route } from './route.ts';
import type { Firewall } from './firewall.ts';
import type { DosRule } from './dos.ts';
import type { EgressAssignment, EgressPool } from './egress.ts';
import { parseEntries } from './keyspace.ts';
import { splitDocument } from './document.ts';
import { validate } from './validate.ts';

/** A data center with its servers (id → server). */
export interface DcConfig extends Dc {
  readonly servers: Readonly<Record<string, Server>>;
}

/** A tenant with everything below it. `firewall` absent: no filtering (traffic passes both ways). */
export interface TenantConfig extends Tenant {
  readonly prefixes: Readonly<Record<string, Prefix>>;
  readonly tunnels: Readonly<Record<string, Tunnel>>;
  readonly routes: Readonly<Record<string, Route>>;
  readonly firewall?: Firewall;
}

/**
 * The whole configuration, in stored (normalised) form. Records are keyed by object id (egress
 * assignments by canonical address); look them up with `Object.hasOwn`, since an id such as
 * `constructor` is valid.
 */
export interface Config {
  readonly dcs: Readonly<Record<string, DcConfig>>;
  readonly anycast: Anycast;
  readonly tenants: Readonly<Record<string, TenantConfig>>;
  readonly dos: { readonly rules: Readonly<Record<string, DosRule>> };
  readonly egress: {
    readonly pools: Readonly<Record<string, EgressPool>>;
    readonly assign: Readonly<Record<string, EgressAssignment>>;
  };
}

/** A configuration with nothing in it. */
export function emptyConfig(): Config {
  return { dcs: {}, anycast: emptyAnycast(), tenants: {}, dos: { rules: {} }, egress: { pools: {}, assign: {} } };
}

/**
 * Parses and validates a whole document (as decoded from YAML or JSON): every object against its
 * schema, then every cross-object rule. Returns every issue found, never only the first.
 */
export function parseConfig(doc: unknown): Result<Config, Issue[]> {
  const split = splitDocument(doc);
  const parsed = parseEntries(split.entries);
  const issues = [...split.issues, ...parsed.issues, ...validate(parsed.config, { broken: parsed.broken })];
  return issues.length ? err(issues) : ok(parsed.config);
}

/** Object counts of a config, for summaries. */
export interface ConfigStats {
  readonly dcs: number;
  readonly servers: number;
  readonly tenants: number;
  readonly prefixes: number;
  readonly tunnels: number;
  readonly routes: number;
  readonly firewallRules: number;
  readonly dosRules: number;
  readonly egressPools: number;
  readonly egressAssignments: number;
}

/** Counts the objects of a config. */
export function configStats(c: Config): ConfigStats {
  const dcs = Object.values(c.dcs);
  const tenants = Object.values(c.tenants);
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  return {
    dcs: dcs.length,
    servers: sum(dcs.map((d) => Object.keys(d.servers).length)),
    tenants: tenants.length,
    prefixes: sum(tenants.map((t) => Object.keys(t.prefixes).length)),
    tunnels: sum(tenants.map((t) => Object.keys(t.tunnels).length)),
    routes: sum(tenants.map((t) => Object.keys(t.routes).length)),
    firewallRules: sum(tenants.map((t) => t.firewall?.rules.length ?? 0)),
    dosRules: Object.keys(c.dos.rules).length,
    egressPools: Object.keys(c.egress.pools).length,
    egressAssignments: Object.keys(c.egress.assign).length,
  };
}
