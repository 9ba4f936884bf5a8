/**
 * Who owns each assigned egress address: its data center and, inside it, which server owns which
 * port slice (IPv4) or the whole address (IPv6). The XDP steering tables are built from this, so
 * a reply landing in another data center or on another server reaches the owner. Slice rules:
 * slices.ts.
 *
 * Moving an address to another data center is changing its assignment, nothing more: from the
 * revision that carries it, the new data center's servers own its slices (and the steering maps
 * send replies there), while the old one's agents take it off `lo` and out of their SNAT table —
 * connections they had from it stop carrying data (agent/egress.linux.test.ts shows it). Move an
 * address when it is idle, or accept that its open connections break.
 */
import type { Config } from '../../model/config.ts';
import type { Result } from '../../lib/result.ts';
import { err, ok } from '../../lib/result.ts';
import type { EgressError } from './error.ts';
import { assignedAddresses, dcSlices } from './slices.ts';

export type { EgressError } from './error.ts';

/** One assigned egress address and its owners. */
export interface EgressOwnership {
  /** An egress address (IPv4 /32 or IPv6 /128), canonical text. */
  readonly ip: string;
  /** Owning data center. */
  readonly dc: string;
  readonly owner:
    | { readonly kind: 'slices'; readonly sliceSize: number; readonly slices: ReadonlyArray<{ readonly slice: number; readonly server: string }> }
    | { readonly kind: 'server'; readonly server: string };
}

/**
 * Every assigned egress address with its owners, IPv4 first, each in numeric order. Fails when
 * an assignment is inconsistent or a data center is short of addresses for a tag (the first such
 * problem, with what to do).
 */
export function egressOwnership(config: Config): Result<EgressOwnership[], EgressError> {
  const all = assignedAddresses(config);
  if (!all.ok) return all;
  const out: EgressOwnership[] = [];
  const dcs = [...new Set(all.value.filter((a) => a.family === 4).map((a) => a.dc))].sort();
  const v4: EgressOwnership[] = [];
  for (const dc of dcs) {
    const sliced = dcSlices(config, dc, all.value);
    if (!sliced.ok) return err(sliced.error);
    for (const s of sliced.value) v4.push({ ip: s.address.ip, dc, owner: { kind: 'slices', sliceSize: s.sliceSize, slices: s.slices } });
  }
  const order = new Map(all.value.map((a, i) => [a.ip, i]));
  v4.sort((a, b) => order.get(a.ip)! - order.get(b.ip)!);
  out.push(...v4);
  for (const a of all.value) if (a.family === 6) out.push({ ip: a.ip, dc: a.dc, owner: { kind: 'server', server: a.server! } });
  return ok(out);
}
