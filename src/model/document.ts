/**
 * The declarative document (YAML or JSON, already decoded) and its store entries. The document
 * nests objects the way the keyspace does, so splitting it is mechanical: every map level below
 * `dcs`, `tenants`, `dos.rules` and `egress.*` is an id, and the fields of an object are whatever
 * is not a child collection.
 *
 * ```yaml
 * dcs:     { <dc>: { name, location, backbone, servers: { <server>: {…} } } }
 * anycast: { ranges, egressRanges, greEndpoints, services }
 * tenants: { <t>: { name, status, tokenHash, prefixes: {…}, tunnels: {…}, routes: {…}, firewall: {…} } }
 * dos:     { rules: { <id>: {…} } }
 * egress:  { pools: { <pool>: {…} }, assign: { <ip>: { dc } } }
 * ```
 */
import type { Issue } from './issue.ts';
import type { Segments } from './schema.ts';
import { idProblem } from './id.ts';
import { describe, didYouMean, show } from './text.ts';
import { storeKey } from './keyspace.ts';

/** Top-level sections of a document. */
export const SECTIONS = ['dcs', 'anycast', 'tenants', 'dos', 'egress'] as const;

/** Result of `splitDocument`. */
export interface SplitDocument {
  /** Store key → raw (unvalidated) value, parents before children. */
  readonly entries: Map<string, unknown>;
  /** Issues of the document's structure: unknown sections, invalid ids, non-map levels. */
  readonly issues: Issue[];
}

function isMap(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Splits a document into store entries. Structural problems are issues located where they are
 * written; an object with an invalid id is reported once and not looked into (its children could
 * not be stored under it anyway).
 */
export function splitDocument(doc: unknown): SplitDocument {
  const entries = new Map<string, unknown>();
  const issues: Issue[] = [];
  if (doc === null || doc === undefined) return { entries, issues };
  if (!isMap(doc)) {
    issues.push({ code: 'invalid_type', path: [], field: [], message: `expected a map with the sections ${SECTIONS.join(', ')}, got ${describe(doc)}` });
    return { entries, issues };
  }

  /** The id → value pairs of a map level; anything else there is an issue. */
  const level = (value: unknown, path: Segments, what: string, checkId = true): [string, unknown][] => {
    if (value === null || value === undefined) return [];
    if (!isMap(value)) {
      const keyed = checkId ? `${what} id` : what;
      issues.push({ code: 'invalid_type', path, field: [], message: `expected a map (${keyed} → its fields), got ${describe(value)}` });
      return [];
    }
    const out: [string, unknown][] = [];
    for (const [id, v] of Object.entries(value)) {
      const problem = checkId ? idProblem(id, `${what} id`) : undefined;
      if (problem !== undefined) issues.push({ code: 'invalid_id', path: [...path, id], field: [], message: problem });
      else out.push([id, v]);
    }
    return out;
  };

  /** Splits the named child collections off an object's fields. */
  const split = (value: unknown, children: readonly string[]): { own: unknown; kids: Record<string, unknown> } => {
    if (!isMap(value)) return { own: value, kids: {} };
    const own: Record<string, unknown> = {};
    const kids: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) (children.includes(k) ? kids : own)[k] = v;
    return { own, kids };
  };

  /** A map level that holds named collections (`dos`, `egress`), each checked for unknown keys. */
  const sections = (value: unknown, path: Segments, known: readonly string[]): Record<string, unknown> => {
    if (value === null || value === undefined) return {};
    if (!isMap(value)) {
      issues.push({ code: 'invalid_type', path, field: [], message: `expected a map with ${known.join(', ')}, got ${describe(value)}` });
      return {};
    }
    for (const k of Object.keys(value))
      if (!known.includes(k))
        issues.push({ code: 'unknown_field', path: [...path, k], field: [], message: `unknown section ${show(k)}${didYouMean(k, known)}; known: ${known.join(', ')}` });
    return value;
  };

  const put = (path: Segments, value: unknown): void => void entries.set(storeKey(path), value);

  for (const k of Object.keys(doc))
    if (!(SECTIONS as readonly string[]).includes(k))
      issues.push({ code: 'unknown_field', path: [k], field: [], message: `unknown section ${show(k)}${didYouMean(k, SECTIONS)}; known: ${SECTIONS.join(', ')}` });

  for (const [dc, value] of level(doc.dcs, ['dcs'], 'data center')) {
    const { own, kids } = split(value, ['servers']);
    put(['dcs', dc], own);
    for (const [s, server] of level(kids.servers, ['dcs', dc, 'servers'], 'server')) put(['dcs', dc, 'servers', s], server);
  }
  if (doc.anycast !== null && doc.anycast !== undefined) put(['anycast'], doc.anycast);
  for (const [t, value] of level(doc.tenants, ['tenants'], 'tenant')) {
    const { own, kids } = split(value, ['prefixes', 'tunnels', 'routes', 'firewall']);
    put(['tenants', t], own);
    for (const [p, v] of level(kids.prefixes, ['tenants', t, 'prefixes'], 'prefix')) put(['tenants', t, 'prefixes', p], v);
    for (const [n, v] of level(kids.tunnels, ['tenants', t, 'tunnels'], 'tunnel')) put(['tenants', t, 'tunnels', n], v);
    for (const [r, v] of level(kids.routes, ['tenants', t, 'routes'], 'route')) put(['tenants', t, 'routes', r], v);
    if (kids.firewall !== null && kids.firewall !== undefined) put(['tenants', t, 'firewall'], kids.firewall);
  }
  const dos = sections(doc.dos, ['dos'], ['rules']);
  for (const [id, v] of level(dos.rules, ['dos', 'rules'], 'DoS rule')) put(['dos', 'rules', id], v);
  const egress = sections(doc.egress, ['egress'], ['pools', 'assign']);
  for (const [id, v] of level(egress.pools, ['egress', 'pools'], 'egress pool')) put(['egress', 'pools', id], v);
  // Assignment keys are addresses, checked (and required canonical) by parseKey.
  for (const [ip, v] of level(egress.assign, ['egress', 'assign'], 'egress address', false)) put(['egress', 'assign', ip], v);
  return { entries, issues };
}

/**
 * Splits a path in the document into the object it is in and the field inside that object,
 * following the layout above: `tenants/acme/tunnels/gre1/mtu` → object
 * `tenants/acme/tunnels/gre1`, field `mtu`. Paths above any object stay whole.
 */
export function splitDocPath(docPath: Segments): { path: Segments; field: Segments } {
  const [root, a, b] = docPath;
  let depth = docPath.length;
  if (root === 'anycast') depth = 1;
  else if (root === 'dcs' && a !== undefined) depth = b === 'servers' ? 4 : 2;
  else if (root === 'tenants' && a !== undefined)
    depth = b === 'prefixes' || b === 'tunnels' || b === 'routes' ? 4 : b === 'firewall' ? 3 : 2;
  else if ((root === 'dos' || root === 'egress') && a !== undefined) depth = 3;
  depth = Math.min(depth, docPath.length);
  return { path: docPath.slice(0, depth), field: docPath.slice(depth) };
}
