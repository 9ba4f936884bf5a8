/**
 * Reconciles xdp_edge's SYN-flood maps (kernel/bpf/syncookie.ts) to the prefixes compile/server.ts
 * marked for XDP SYN cookies: put what is missing or different, delete protected prefixes no
 * tenant asks for any more. Reading is one map dump per family; steps are one bpftool call each.
 *
 * **Tenant counter indexes.** Each protected prefix's policy names the slot block of its tenant's
 * counters (syn_tenant_cnt, tenant_idx). The index is chosen here, not by the compiler, and it is
 * stable: a tenant keeps the index its prefixes already hold in the maps for as long as it stays
 * protected on this server, whatever other tenants are added or removed. A tenant that holds none
 * gets the lowest index no entry in the maps holds (a prefix about to be deleted still holds its
 * index until the next pass, so nothing counts into a block being handed over), and the block is
 * zeroed before any of its prefixes points to it: the maps never reset a block themselves, so it
 * would otherwise start with the counts of the tenant that had it before. The maps are the record
 * (no state file): `anyedge plan` shows the same choice the agent makes, and an agent restart or a
 * fresh state directory changes nothing.
 *
 * What the maps cannot tell: they hold no tenant ids, so a prefix that moves from a removed tenant
 * straight to a new one between two passes brings its old index along (the new tenant then counts
 * on from the old one's history). Several tenants claiming one index (prefixes moved between
 * existing tenants) are settled by `heldSynTenantIndexes`'s order; the others get fresh blocks.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { BpfError } from '../kernel/bpf/bpftool.ts';
import { SYN_COUNTERS, SYN_MAX_TENANTS, type SynMapsApi, type SynPolicy } from '../kernel/bpf/syncookie.ts';
import type { DesiredSynPrefix } from '../compile/firewall/synproxy.ts';
import { formatCidr, mustCidr } from '../model/net.ts';
import type { ReconcileError, Step } from './reconcile.ts';

export type { SynMapsApi } from '../kernel/bpf/syncookie.ts';

function fromBpf(path: string, e: BpfError): ReconcileError {
  return { code: 'bpf', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e };
}

const policyText = (p: SynPolicy): string => `mss ${p.mss} wscale ${p.wscale} tenant#${p.tenantIdx}`;
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Desired prefixes by canonical CIDR (the maps read prefixes back in formatCidr's spelling). */
function byCidr(desired: readonly DesiredSynPrefix[]): Map<string, DesiredSynPrefix> {
  const want = new Map<string, DesiredSynPrefix>();
  for (const d of desired) want.set(formatCidr(mustCidr(d.cidr)), d);
  return want;
}

/**
 * The counter index each desired tenant already holds in the maps: the index the maps give its
 * desired prefixes. When its prefixes hold several, or several tenants claim one (prefixes moved
 * between tenants), the claims go in this order — more of the tenant's prefixes holding it first,
 * then the lower index, then the tenant id — and each tenant and index is taken once. Tenants with
 * no claim left are absent. Used by the reconciler and, at scrape time, by the metrics.
 */
export function heldSynTenantIndexes(desired: readonly DesiredSynPrefix[], current: ReadonlyMap<string, SynPolicy>): Map<string, number> {
  const want = byCidr(desired);
  const votes = new Map<string, Map<number, number>>();
  for (const [cidr, p] of current) {
    const d = want.get(cidr);
    if (!d || !Number.isInteger(p.tenantIdx) || p.tenantIdx < 0 || p.tenantIdx >= SYN_MAX_TENANTS) continue;
    let v = votes.get(d.tenant);
    if (!v) votes.set(d.tenant, (v = new Map()));
    v.set(p.tenantIdx, (v.get(p.tenantIdx) ?? 0) + 1);
  }
  const claims = [...votes].flatMap(([tenant, v]) => [...v].map(([idx, n]) => ({ tenant, idx, n })));
  claims.sort((a, b) => b.n - a.n || a.idx - b.idx || byText(a.tenant, b.tenant));
  const held = new Map<string, number>();
  const taken = new Set<number>();
  for (const c of claims) {
    if (held.has(c.tenant) || taken.has(c.idx)) continue;
    held.set(c.tenant, c.idx);
    taken.add(c.idx);
  }
  return held;
}

/** Every desired tenant's counter index, and which of them are new (their block is zeroed first). */
export interface SynTenantIndexes {
  readonly index: ReadonlyMap<string, number>;
  /** Tenants whose index none of their prefixes holds in the maps yet. */
  readonly fresh: ReadonlySet<string>;
}

/**
 * Keeps what `heldSynTenantIndexes` finds and gives every other desired tenant, in tenant-id
 * order, the lowest index that no entry of the maps holds (stale entries included) and no tenant
 * was given. Fails only when all SYN_MAX_TENANTS indexes are in use.
 */
export function assignSynTenantIndexes(desired: readonly DesiredSynPrefix[], current: ReadonlyMap<string, SynPolicy>): Result<SynTenantIndexes, ReconcileError> {
  const index = heldSynTenantIndexes(desired, current);
  const used = new Set<number>([...current.values()].map((p) => p.tenantIdx));
  for (const i of index.values()) used.add(i);
  const fresh = new Set<string>();
  let next = 0;
  const tenants = [...new Set(desired.map((d) => d.tenant))].sort(byText);
  for (const t of tenants) {
    if (index.has(t)) continue;
    while (used.has(next)) next++;
    if (next >= SYN_MAX_TENANTS) {
      return err({
        code: 'invalid',
        path: `tenants/${t}/synFlood`,
        op: 'choose a SYN counter index',
        message: `no free SYN counter index for tenant ${t}: all ${SYN_MAX_TENANTS} indexes of syn_tenant_cnt are held by protected prefixes; turn synFlood.protection xdp off for tenants that do not need it on this server`,
      });
    }
    index.set(t, next);
    used.add(next);
    fresh.add(t);
  }
  return ok({ index, fresh });
}

/**
 * The steps that make the maps equal to `desired`. Reads only. Order: zero the counter blocks of
 * tenants given a new index, put the prefixes (new and changed), then delete the stray ones.
 */
export async function planSyncookie(api: SynMapsApi, desired: readonly DesiredSynPrefix[]): Promise<Result<{ adds: Step[]; dels: Step[] }, ReconcileError>> {
  const cur = await api.protectedPrefixes();
  if (!cur.ok) return err(fromBpf('bpf/syn_v4', cur.error));
  const idx = assignSynTenantIndexes(desired, cur.value);
  if (!idx.ok) return idx;
  const adds: Step[] = [];
  const dels: Step[] = [];
  for (const t of [...idx.value.fresh].sort(byText)) {
    const i = idx.value.index.get(t) as number;
    const path = `tenants/${t}/synFlood`;
    const first = i * SYN_COUNTERS.length;
    adds.push({
      action: 'create',
      path,
      what: `bpf syn_tenant_cnt zero tenant#${i} (slots ${first}–${first + SYN_COUNTERS.length - 1}), the counters of ${t}`,
      run: async () => {
        const r = await api.zeroTenantCounters(i);
        return r.ok ? ok(undefined) : err(fromBpf(path, r.error));
      },
    });
  }
  const want = byCidr(desired);
  for (const [cidr, d] of want) {
    const policy: SynPolicy = { mss: d.mss, wscale: d.wscale, tenantIdx: idx.value.index.get(d.tenant) as number };
    const have = cur.value.get(cidr);
    if (have && policyText(have) === policyText(policy)) continue;
    adds.push({
      action: have ? 'update' : 'create',
      path: `${d.path}/syncookie`,
      what: `bpf syn_v${cidr.includes(':') ? 6 : 4} ${cidr}: ${policyText(policy)}`,
      run: async () => {
        const r = await api.protect(cidr, policy);
        return r.ok ? ok(undefined) : err(fromBpf(`${d.path}/syncookie`, r.error));
      },
    });
  }
  for (const cidr of cur.value.keys()) {
    if (want.has(cidr)) continue;
    dels.push({
      action: 'delete',
      path: `bpf/syncookie/${cidr}`,
      what: `bpf syn_v${cidr.includes(':') ? 6 : 4} delete ${cidr}`,
      run: async () => {
        const r = await api.unprotect(cidr);
        return r.ok ? ok(undefined) : err(fromBpf(`bpf/syncookie/${cidr}`, r.error));
      },
    });
  }
  return ok({ adds, dels });
}
