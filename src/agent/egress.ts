/**
 * The reconciler's egress step (compile/egress/nft.ts has the why): the server's egress
 * addresses on `lo` of its namespace. `lo` is not our link, so the generic address pass leaves it
 * alone; here an address on `lo` is ours when it lies inside the egress ranges
 * (`DesiredEgress.owned`): missing ones are added, ours that the config no longer gives this
 * server are removed, anything else on `lo` (127.0.0.1, ::1, an operator's address) is never
 * touched. The SNAT table is an ordinary nft table of ours and goes through the nft pass.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { DesiredServer } from '../compile/server.ts';
import type { Kernel, KernelError } from '../kernel/index.ts';
import { nsLabel } from '../kernel/errors.ts';
import { cidrContains, mustCidr } from '../model/net.ts';
import type { ReconcileError, Step } from './reconcile.ts';

const LO = 'lo';

function fromKernel(path: string, e: KernelError): ReconcileError {
  return { code: 'kernel', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e };
}

/** The create and delete steps for the egress addresses on `lo`; reads only. */
export async function egressAddrSteps(k: Kernel, d: DesiredServer): Promise<Result<{ adds: Step[]; dels: Step[] }, ReconcileError>> {
  const adds: Step[] = [];
  const dels: Step[] = [];
  const e = d.egress;
  if (!e) return ok({ adds, dels });
  const label = nsLabel(e.ns);
  const have = await k.addrs.list(e.ns, LO);
  if (!have.ok) return err(fromKernel(`${label}/lo/addrs`, have.error));
  const owned = e.owned.map(mustCidr);
  const want = new Set(e.addrs.map((a) => a.cidr));
  const present = new Set(have.value.map((a) => a.cidr));
  for (const a of e.addrs) {
    if (present.has(a.cidr)) continue;
    adds.push({
      action: 'create',
      path: a.path,
      what: `addr add ${a.cidr} dev lo (${label})`,
      run: async () => {
        const r = await k.addrs.add(e.ns, LO, a.cidr);
        return r.ok || r.error.code === 'exists' ? ok(undefined) : err(fromKernel(a.path, r.error));
      },
    });
  }
  for (const a of have.value) {
    if (want.has(a.cidr)) continue;
    const c = mustCidr(a.cidr.split('/')[0]!);
    if (!owned.some((o) => cidrContains(o, c))) continue;
    const path = `${label}/lo/addr/${a.cidr}`;
    dels.push({
      action: 'delete',
      path,
      what: `addr del ${a.cidr} dev lo (${label})`,
      run: async () => {
        const r = await k.addrs.delete(e.ns, LO, a.cidr);
        return r.ok ? ok(undefined) : err(fromKernel(path, r.error));
      },
    });
  }
  return ok({ adds, dels });
}
