/**
 * Sample requests for every route of the table, for the tests that walk it (authorization
 * matrix, OpenAPI conformance, fuzzing): a path with real ids of the Acme seed, and a valid body.
 * `addSpares` writes a few extra objects that can be deleted without conflicting with anything,
 * so every route's sample request succeeds on a seeded store.
 */
import type { RouteSpec } from './route.ts';
import type { ApiHarness } from './harness.ts';
import { acmeDocument } from './harness.ts';
import { addDetectionSpares } from './detect-samples.ts';

/** Objects `addSpares` creates, by the API path that holds them, with their bodies. */
export const SPARES: readonly (readonly [string, unknown])[] = [
  ['/v1/anycast', { ranges: ['198.51.100.0/28', '2001:db8:100::/48'], greEndpoints: ['198.51.100.1', '2001:db8:100::1'], services: ['198.51.100.2', '198.51.100.3'], egressRanges: ['198.51.100.64/26', '198.51.100.128/26'] }],
  ['/v1/dcs/fra', { name: 'Frankfurt', backbone: ['192.0.2.9/30'] }],
  ['/v1/dcs/ams/servers/s9', { uplink: 'eth0', addresses: ['192.0.2.20/28'] }],
  ['/v1/dos/rules/spare', { match: { protocol: 'udp', dport: [11211] }, action: 'drop' }],
  ['/v1/egress/pools/spare', { cidrs: ['198.51.100.128/27'], tags: { class: 'untrusted', country: 'DE' } }],
  ['/v1/tenants/acme/prefixes/p9', { cidr: '203.0.113.64/26', description: 'nested in p1' }],
  ['/v1/tenants/acme/tunnels/gre9', { customerEndpoint: '198.51.100.210', inner: ['192.0.2.250/31'] }],
  ['/v1/tenants/acme/routes/r9', { prefix: '203.0.113.64/26', via: [{ tunnel: 'gre1' }] }],
  ['/v1/tenants/acme/firewall/rules/spare', { id: 'spare', direction: 'egress', protocol: 'udp', dport: [53], action: 'accept' }],
];

/** Writes {@link SPARES} with the operator token; throws when one is refused (a broken fixture). */
export async function addSpares(h: ApiHarness): Promise<void> {
  for (const [path, body] of SPARES) {
    const r = await h.call('PUT', path, { body });
    if (r.status !== 200) throw new Error(`addSpares: PUT ${path} → ${r.status} ${JSON.stringify(r.body)}`);
  }
  await addDetectionSpares(h.store);
}

/** Path parameter values of the samples: the Acme tenant and the spare objects. */
function paramValue(path: string, name: string): string {
  switch (name) {
    case 't':
      return 'acme';
    case 'dc':
      return path.includes('/servers/{s}') || path.endsWith('/servers') || path.startsWith('/v1/servers') ? 'ams' : 'fra';
    case 's':
      return 's9';
    case 'server':
      return 's1';
    case 'ruleId':
      return 'spare';
    case 'id':
      if (path.includes('/prefixes/')) return 'p9';
      if (path.includes('/tunnels/')) return 'gre9';
      if (path.includes('/routes/')) return 'r9';
      return 'spare';
    default:
      throw new Error(`samples: no sample value for path parameter {${name}} of ${path}`);
  }
}

/** The route's path with sample ids; `override` replaces some of them (raw, not encoded). */
export function samplePath(spec: RouteSpec, override: Readonly<Record<string, string>> = {}): string {
  return spec.path.replace(/\{([A-Za-z]+)\}/g, (_m, name: string) => encodeURIComponent(override[name] ?? paramValue(spec.path, name)));
}

/** A valid body for the route's sample path (undefined for routes without one). */
export function sampleBody(spec: RouteSpec): unknown {
  if (spec.body === undefined) return undefined;
  if (spec.body === 'FirewallRule' && spec.method === 'POST') return { id: 'new1', direction: 'ingress', protocol: 'tcp', dport: [443], action: 'accept' };
  if (spec.body === 'Tenant') return { name: 'Acme Corp' };
  if (spec.body === 'Firewall') return { default: { ingress: 'drop', egress: 'accept' }, rules: [{ id: 'ssh', direction: 'ingress', protocol: 'tcp', dport: [22], action: 'accept' }] };
  if (spec.body === 'ConfigDiffRequest' || spec.body === 'ConfigApplyRequest') return { config: acmeDocument() };
  if (spec.body === 'EgressAssignBatch') return { set: { '198.51.100.65': { dc: 'ams' } } };
  const path = samplePath(spec);
  const spare = SPARES.find(([p]) => p === path);
  if (!spare) throw new Error(`samples: no sample body for ${spec.method} ${spec.path} (${spec.body})`);
  return spare[1];
}
