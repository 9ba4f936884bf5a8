/**
 * The tenants the detector watches, from config entries (the agent's replica, or a store
 * listing): each active tenant's prefixes and detection policy (its own, or the defaults).
 * Entries are read one by one, not as a validated config, so one broken object only costs its
 * own tenant or prefix: detection keeps watching the others.
 */
import type { JsonValue } from '../store/types.ts';
import { defaultDetectionPolicy } from '../model/detection.ts';
import { tenantSchema } from '../model/tenant.ts';
import { parseCidr, type Cidr } from '../model/net.ts';
import type { DetectTenant } from './detect.ts';

const TENANT_RE = /^\/tenants\/([^/]+)$/;
const PREFIX_RE = /^\/tenants\/([^/]+)\/prefixes\/[^/]+$/;

/** The watched tenants, sorted by id. */
export function detectTenants(entries: ReadonlyMap<string, JsonValue>): DetectTenant[] {
  const prefixes = new Map<string, Cidr[]>();
  const tenants: { id: string; policy: DetectTenant['policy'] }[] = [];
  for (const [key, value] of entries) {
    const p = PREFIX_RE.exec(key);
    if (p) {
      const cidr = value && typeof value === 'object' && !Array.isArray(value) ? (value as { cidr?: unknown }).cidr : undefined;
      const c = typeof cidr === 'string' ? parseCidr(cidr) : undefined;
      if (c?.ok) {
        const list = prefixes.get(p[1]!) ?? [];
        list.push(c.value);
        prefixes.set(p[1]!, list);
      }
      continue;
    }
    const t = TENANT_RE.exec(key);
    if (!t) continue;
    const parsed = tenantSchema.safeParse(value);
    if (!parsed.success || parsed.data.status !== 'active') continue;
    tenants.push({ id: t[1]!, policy: parsed.data.dos?.detection ?? defaultDetectionPolicy() });
  }
  return tenants
    .map((t) => ({ ...t, prefixes: prefixes.get(t.id) ?? [] }))
    .filter((t) => t.prefixes.length > 0)
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}
