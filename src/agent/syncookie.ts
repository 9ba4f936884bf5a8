/**
 * Reconciles xdp_edge's SYN-flood maps (kernel/bpf/syncookie.ts) to the prefixes compile/server.ts
 * marked for XDP SYN cookies: put what is missing or different, delete protected prefixes no
 * tenant asks for any more. Reading is one map dump per family; steps are one bpftool call each.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { BpfError } from '../kernel/bpf/bpftool.ts';
import type { SynPolicy } from '../kernel/bpf/syncookie.ts';
import type { DesiredSynPrefix } from '../compile/firewall/synproxy.ts';
import { formatCidr, mustCidr } from '../model/net.ts';
import type { ReconcileError, Step } from './reconcile.ts';

/** What the reconciler needs of the SYN-flood maps (Linux: `SynCookieMaps`; tests: a fake). */
export interface SynMapsApi {
  protectedPrefixes(): Promise<Result<Map<string, SynPolicy>, BpfError>>;
  protect(cidr: string, policy: SynPolicy): Promise<Result<void, BpfError>>;
  unprotect(cidr: string): Promise<Result<void, BpfError>>;
}

function fromBpf(path: string, e: BpfError): ReconcileError {
  return { code: 'bpf', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e };
}

const policyText = (p: SynPolicy): string => `mss ${p.mss} tenant#${p.tenantIdx}`;

/** The steps that make the maps equal to `desired` (adds first, then deletes). Reads only. */
export async function planSyncookie(api: SynMapsApi, desired: readonly DesiredSynPrefix[]): Promise<Result<{ adds: Step[]; dels: Step[] }, ReconcileError>> {
  const cur = await api.protectedPrefixes();
  if (!cur.ok) return err(fromBpf('bpf/syn_v4', cur.error));
  const adds: Step[] = [];
  const dels: Step[] = [];
  const want = new Map<string, DesiredSynPrefix>();
  // Canonical text on both sides: the map reads back prefixes in formatCidr's spelling.
  for (const d of desired) want.set(formatCidr(mustCidr(d.cidr)), d);
  for (const [cidr, d] of want) {
    const policy: SynPolicy = { mss: d.mss, tenantIdx: d.tenantIdx };
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
