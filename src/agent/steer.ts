/**
 * The steering maps' part of a reconcile: read the maps, compare them with `compileSteer`'s
 * output and return steps (reconcile.ts `Step`) that make them equal. Idempotent (a second plan
 * after applying is empty), add before delete, and never a program reload: only map entries
 * change, so flows keep being steered while the tables move.
 *
 * Order of the steps, and why:
 *  1. peers, egress owners, slices, table buckets: everything a service or egress address
 *     will be looked up in is in place before the address is;
 *  2. steer_svc and steer_tenant additions and steer_cfg (enabling, or a new self address) last
 *     among the adds;
 *  3. deletes: services and tenant prefixes first (their flows stop being steered), then slices,
 *     egress, peers.
 * Each step is one bpftool process whatever its size (the table is one batch of the changed
 * buckets, at most 65,537).
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import type { CompileError } from '../compile/server.ts';
import { bucketAt, compileSteer, steeringTableInput, type DesiredSteer } from '../compile/steer.ts';
import { MAGLEV_SIZE, type MaglevError } from '../compile/maglev.ts';
import { steeringTableOffThread, type OffThreadOptions } from '../compile/maglev-async.ts';
import type { BpfError } from '../kernel/bpf/bpftool.ts';
import { bucketText, cfgText, egressText, sliceKey, type SteerMapsApi, type SteerWrite } from '../kernel/bpf/steer.ts';
import type { ReconcileError, Step } from './reconcile.ts';

type R<T> = Result<T, ReconcileError>;

const fromBpf = (path: string, e: BpfError): ReconcileError => ({ code: 'bpf', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e });

/** The steps that make the steering maps equal to `d`, adds and deletes apart. Reads only. */
export async function planSteer(api: SteerMapsApi, d: DesiredSteer): Promise<R<{ adds: Step[]; dels: Step[] }>> {
  const cur = await api.read();
  if (!cur.ok) return err(fromBpf('steer', cur.error));
  const have = cur.value;
  const adds: Step[] = [];
  const dels: Step[] = [];
  const dc = d.server.split('/')[0] as string;
  const step = (list: Step[], action: Step['action'], path: string, what: string, writes: SteerWrite[]) =>
    list.push({
      action,
      path,
      what,
      run: async () => {
        const r = await api.write(writes);
        return r.ok ? ok(undefined) : err(fromBpf(path, r.error));
      },
    });

  const wantPeers = new Set(d.peers);
  const havePeers = new Set(have.peers);
  const newPeers = d.peers.filter((p) => !havePeers.has(p));
  if (newPeers.length) step(adds, 'create', 'dcs', `bpf steer_peers add ${newPeers.join(' ')}`, newPeers.map((ip) => ({ op: 'peer-put', ip })));

  const egressPuts = d.egress.filter((e) => {
    const h = have.egress.get(e.ip);
    return !h || egressText(h) !== egressText(e.entry);
  });
  for (const e of egressPuts)
    step(adds, have.egress.has(e.ip) ? 'update' : 'create', `egress/assign/${e.ip}`, `bpf steer_egress ${e.ip}: ${egressText(e.entry)}`, [{ op: 'egress-put', ip: e.ip, value: e.entry }]);

  const slicePuts = d.slices.filter((s) => have.slices.get(sliceKey(s.ip, s.slice)) !== s.server);
  if (slicePuts.length)
    step(adds, 'update', 'egress/assign', `bpf steer_slices put ${slicePuts.length} (${slicePuts.slice(0, 4).map((s) => `${sliceKey(s.ip, s.slice)}→${s.owner}`).join(', ')}${slicePuts.length > 4 ? ', …' : ''})`, slicePuts.map((s) => ({ op: 'slice-put', ip: s.ip, slice: s.slice, server: s.server })));

  const buckets: SteerWrite[] = [];
  for (let i = 0; i < d.first.length; i++) {
    const want = bucketAt(d, i);
    const h = have.table[i];
    if (!h || bucketText(h) !== bucketText(want)) buckets.push({ op: 'bucket', index: i, value: want });
  }
  if (buckets.length) step(adds, 'update', `dcs/${dc}`, `bpf steer_table: ${buckets.length} of ${d.first.length} buckets (Maglev table of ${d.owners.map((o) => o.id).join(', ') || 'no server'})`, buckets);

  const haveSvc = new Set(have.services);
  const newSvc = d.services.filter((s) => !haveSvc.has(s));
  if (newSvc.length) step(adds, 'create', 'anycast.services', `bpf steer_svc add ${newSvc.join(' ')}`, newSvc.map((ip) => ({ op: 'svc-put', ip })));
  const haveTenants = new Set(have.tenants);
  const newTenants = d.tenants.filter((c) => !haveTenants.has(c));
  if (newTenants.length) step(adds, 'create', 'tenants', `bpf steer_tenant add ${newTenants.join(' ')}`, newTenants.map((cidr) => ({ op: 'tenant-put', cidr })));

  if (cfgText(have.cfg) !== cfgText(d.cfg)) step(adds, have.cfg.self === null ? 'create' : 'update', `dcs/${dc}/servers/${d.server.split('/')[1]}`, `bpf steer_cfg ${cfgText(d.cfg)}`, [{ op: 'cfg', value: d.cfg }]);

  const wantSvc = new Set(d.services);
  const oldSvc = have.services.filter((s) => !wantSvc.has(s));
  if (oldSvc.length) step(dels, 'delete', 'anycast.services', `bpf steer_svc delete ${oldSvc.join(' ')}`, oldSvc.map((ip) => ({ op: 'svc-del', ip })));
  const wantTenants = new Set(d.tenants);
  const oldTenants = have.tenants.filter((c) => !wantTenants.has(c));
  if (oldTenants.length) step(dels, 'delete', 'tenants', `bpf steer_tenant delete ${oldTenants.join(' ')}`, oldTenants.map((cidr) => ({ op: 'tenant-del', cidr })));
  const wantSlices = new Set(d.slices.map((s) => sliceKey(s.ip, s.slice)));
  const oldSlices = [...have.slices.keys()].filter((k) => !wantSlices.has(k)).sort();
  if (oldSlices.length)
    step(dels, 'delete', 'egress/assign', `bpf steer_slices delete ${oldSlices.length} (${oldSlices.slice(0, 4).join(', ')}${oldSlices.length > 4 ? ', …' : ''})`, oldSlices.map((k) => {
      const at = k.lastIndexOf('/');
      return { op: 'slice-del', ip: k.slice(0, at), slice: Number(k.slice(at + 1)) };
    }));
  const wantEgress = new Set(d.egress.map((e) => e.ip));
  for (const ip of [...have.egress.keys()].sort()) if (!wantEgress.has(ip)) step(dels, 'delete', `egress/assign/${ip}`, `bpf steer_egress delete ${ip}`, [{ op: 'egress-del', ip }]);
  const oldPeers = have.peers.filter((p) => !wantPeers.has(p));
  if (oldPeers.length) step(dels, 'delete', 'dcs', `bpf steer_peers delete ${oldPeers.join(' ')}`, oldPeers.map((ip) => ({ op: 'peer-del', ip })));

  return ok({ adds, dels });
}

/**
 * What `plan` needs for the steering maps of `where` (reconcile.ts `more.steer`): undefined when
 * the environment has no steering maps, so nothing is compiled for nothing.
 */
export function steerInput(env: { readonly steer?: SteerMapsApi }, config: Config, where: { readonly dc: string; readonly server: string }): Result<DesiredSteer | undefined, CompileError> {
  if (!env.steer) return ok(undefined);
  return compileSteer(config, where);
}

/**
 * steerInput for the agent: the same result, but a DC's steering table that is not memoized yet
 * is built in a worker thread first (compile/maglev-async.ts), so the daemon's event loop keeps
 * serving its store watch, /metrics, status and health meanwhile; compileSteer then finds the
 * table memoized. A failed worker is an error (the pass fails, the kernel keeps the last applied
 * maps, the retry builds again); the config's own table problems (no active server) stay
 * compileSteer's warnings, as in steerInput. `anyedge plan` keeps the synchronous steerInput: a
 * one-shot command has no loop to keep responsive.
 */
export async function steerInputOffThread(env: { readonly steer?: SteerMapsApi }, config: Config, where: { readonly dc: string; readonly server: string }, opts: OffThreadOptions = {}): Promise<Result<DesiredSteer | undefined, CompileError | MaglevError>> {
  if (!env.steer) return ok(undefined);
  const input = steeringTableInput(config, where);
  if (input) {
    const t = await steeringTableOffThread(input.servers, MAGLEV_SIZE, input.path, opts);
    if (!t.ok && t.error.code === 'worker_failed') return t;
  }
  return compileSteer(config, where);
}

/** What of a DesiredSteer the kernel was last made equal to, per DesiredServer applied with it. */
const appliedSteer = new WeakMap<object, string>();

/** A fingerprint of the steering maps: every field, the table folded with FNV-1a. */
function steerKey(d: DesiredSteer | undefined): string {
  if (!d) return '-';
  let h = 0x811c9dc5;
  for (const arr of [d.first, d.second]) for (const x of arr) h = Math.imul(h ^ (x + 1), 0x01000193) >>> 0;
  return JSON.stringify({ ...d, first: d.first.length, second: h });
}

/**
 * Notes that the kernel now holds `steer` alongside `applied` (the daemon's last applied
 * DesiredServer), so a later firewall-only change can skip the full pass only when steering did
 * not change too.
 */
export function rememberSteer(applied: object, steer: DesiredSteer | undefined): void {
  appliedSteer.set(applied, steerKey(steer));
}

/** Whether `steer` is what was applied with `applied` (see rememberSteer). */
export function steerUnchanged(applied: object, steer: DesiredSteer | undefined): boolean {
  return appliedSteer.get(applied) === steerKey(steer);
}
