/**
 * What a store refusal (`invalid`, with the issues the write would add) means to an API client.
 *
 * Every write's body has already passed its object's own schema (400 with every field error), so
 * what the store adds comes from the cross-object checks of model/validate.ts and from the
 * keyspace (a child without its parent). Those are conflicts with OTHER objects — an overlapping
 * prefix of another tenant, a route naming a tunnel that is not there yet, an address another
 * server has — which another write could resolve: 409. Anything else the store reports would be
 * a malformed value the schema let through, and stays a 400.
 *
 * A tenant never learns about another tenant's objects: issues located there are moved onto the
 * object the tenant wrote, and references to them in messages are blurred.
 */
import type { Issue } from '../model/issue.ts';
import type { Segments } from '../model/schema.ts';
import type { ApiError, WireIssue } from './errors.ts';
import { apiError, toWireIssue } from './errors.ts';

/**
 * Issue codes of the cross-object checks (model/validate.ts) and of the keyspace's parent check
 * (`orphan`, model/keyspace.ts). conflicts.test.ts reads validate.ts and fails when it grows a
 * code this list does not sort.
 */
export const CONFLICT_CODES: ReadonlySet<string> = new Set([
  // Two claims on one prefix or address (tenants, anycast and egress ranges, pools, servers).
  'overlap',
  'duplicate',
  // A tunnel's customer endpoint inside something we announce.
  'endpoint_announced',
  // References another write could create: a GRE endpoint, a tunnel, an enclosing prefix or range,
  // a pool, a data center, a tenant, a parent object.
  'unknown_endpoint',
  'no_endpoint',
  'unknown_tunnel',
  'outside_prefixes',
  'outside_ranges',
  'outside_pools',
  'unknown_dc',
  'unknown_tenant',
  'orphan',
  // Egress slices too small for the data center's servers: add slices or move the address.
  'too_many_servers',
  // An IPv6 egress address names one server of its data center (another write may add or
  // remove the server); an IPv4 one names none.
  'missing_server',
  'unknown_server',
  'unexpected_server',
]);

/** Who is looking: the operator sees everything; a tenant only its own subtree. */
export type Viewer = { readonly kind: 'operator' } | { readonly kind: 'tenant'; readonly tenant: string };

const KIND_WORD: Record<string, string> = { prefixes: 'prefix', tunnels: 'tunnel', routes: 'route', firewall: 'firewall' };

/** `tenants/<t>/<kind>/<id>` (with an optional `.field` and ` (value)`), as messages write them. */
const TENANT_REF = /tenants\/([a-z0-9][a-z0-9-]{0,31})(?:\/(prefixes|tunnels|routes|firewall)(?:\/[a-z0-9][a-z0-9-]{0,31})?)?(?:\.[A-Za-z0-9_.]+)?(?: \([^)]*\))?/g;

/** `message` with every reference to a tenant other than `own` blurred. */
export function blurOtherTenants(message: string, own: string): string {
  return message.replace(TENANT_REF, (whole, tenant: string, kind: string | undefined) =>
    tenant === own ? whole : `another tenant's ${kind === undefined ? 'object' : (KIND_WORD[kind] ?? 'object')}`,
  );
}

/**
 * The issues a viewer may see. For a tenant, an issue located outside its own subtree (the
 * other side of an overlap is often the other tenant's prefix) becomes one on `at`, the object it
 * wrote, saying only that it conflicts with something it cannot see.
 */
export function issuesFor(viewer: Viewer, issues: readonly Issue[], at: Segments): WireIssue[] {
  if (viewer.kind === 'operator') return issues.map(toWireIssue);
  const own = viewer.tenant;
  const seen = new Set<string>();
  const out: WireIssue[] = [];
  for (const i of issues) {
    const mine = i.path[0] === 'tenants' && i.path[1] === own;
    const wire: WireIssue = mine
      ? { ...toWireIssue(i), message: blurOtherTenants(i.message, own) }
      : {
          path: at.join('/'),
          field: '',
          code: i.code,
          message: `conflicts with an object you cannot see (${i.code}: another tenant's, or the platform's); change this object, or ask the operator`,
        };
    const id = JSON.stringify(wire);
    if (!seen.has(id)) {
      seen.add(id);
      out.push(wire);
    }
  }
  return out;
}

/** The API error of a write the store refused for `issues`; `at` is the object written. */
export function refusal(viewer: Viewer, issues: readonly Issue[], at: Segments): ApiError {
  const conflict = issues.length > 0 && issues.every((i) => CONFLICT_CODES.has(i.code));
  const shown = issuesFor(viewer, issues, at);
  const first = shown[0];
  const summary = first ? `${first.path}${first.field ? '.' + first.field : ''}: ${first.message}` : 'the store refused the write';
  const more = shown.length > 1 ? ` (and ${shown.length - 1} more, see issues)` : '';
  return conflict
    ? apiError(409, 'conflict', `conflicts with other objects; nothing was written: ${summary}${more}`, { issues: shown })
    : apiError(400, 'invalid', `invalid; nothing was written: ${summary}${more}`, { issues: shown });
}

/** The 400 of a body that failed its object's schema: every field error, nothing written. */
export function invalidBody(issues: readonly Issue[]): ApiError {
  const shown = issues.map(toWireIssue);
  const first = shown[0];
  const summary = first ? `${first.path}${first.field ? '.' + first.field : ''}: ${first.message}` : 'invalid';
  return apiError(400, 'invalid', `${summary}${shown.length > 1 ? ` (and ${shown.length - 1} more, see issues)` : ''}; nothing was written`, { issues: shown });
}
