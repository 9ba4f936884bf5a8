/**
 * The reconciler: reads the kernel, compares it with a `DesiredServer` (compile/server.ts) and
 * makes a plan of steps (create / update / delete, each with the object's config path), which
 * `apply` runs in order. `formatPlan` prints it; an empty plan prints "nothing to do".
 *
 * - **Add before delete.** Every create and update comes before any delete, so a changed route
 *   has its new path before the old one goes.
 * - **Only ours.** What is deleted is chosen by the ownership marks (netns/link/nft prefix, route
 *   protocol, rule band, our pinned maps, our program ids). A foreign object in the way of a
 *   desired one becomes a step that fails with the reason, and nothing of it is changed.
 * - **Re-created objects take their dependants along.** A link that must be made again (gone,
 *   or with the wrong index or MAC) loses its addresses, routes, flags and programs; the plan
 *   counts those as missing too, so one apply converges and a second pass finds nothing to do.
 * - **Failure half-way.** `apply` stops at the first failing step and says what it applied; every
 *   step is idempotent against the state it finds, so the next pass (a fresh plan) repairs.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { DesiredServer, DesiredNft, DesiredVeth } from '../compile/server.ts';
import type { Kernel, KernelError, Link, NftJson, NsRef, Route } from '../kernel/index.ts';
import { normalizeRoute, type NormalRoute } from '../kernel/routes.ts';
import { normalizeRule, ruleMatches } from '../kernel/rules.ts';
import { isObj } from '../kernel/nft.ts';
import type { BpfMapsApi } from '../kernel/bpf/maps-api.ts';
import { decapKeyText, decapText, encapText } from '../kernel/bpf/maps-api.ts';
import type { BpfError } from '../kernel/bpf/bpftool.ts';
import type { AttachApi, EdgeProgName } from '../kernel/attach.ts';
import { nsLabel } from '../kernel/errors.ts';
import { egressAddrSteps } from './egress.ts';
import { planDos, type DosInput } from './dos-reconcile.ts';
import type { DosMapsApi } from '../kernel/bpf/dos.ts';
import { planSteer } from './steer.ts';
import type { SteerMapsApi } from '../kernel/bpf/steer.ts';
import type { DesiredSteer } from '../compile/steer.ts';
import { planSyncookie, type SynMapsApi } from './syncookie.ts';

/** What the reconciler acts on. */
export interface ReconcileEnv {
  readonly kernel: Kernel;
  readonly bpf: BpfMapsApi;
  readonly attach: AttachApi;
  /** The XDP DoS stage's maps (agent/dos-reconcile.ts); without it DoS rules are left alone. */
  readonly dos?: DosMapsApi;
  /** The XDP steering stage's maps (agent/steer.ts); without it steering maps are left alone. */
  readonly steer?: SteerMapsApi;
  /** The XDP SYN-flood stage's maps (agent/syncookie.ts); without it they are left alone. */
  readonly syn?: SynMapsApi;
}

/** A failure: code, the object's path, the operation and the cause underneath. */
export interface ReconcileError {
  readonly code: 'kernel' | 'bpf' | 'conflict' | 'invalid';
  readonly path: string;
  readonly op: string;
  readonly message: string;
  readonly cause?: KernelError | BpfError;
}

/** One change. */
export interface Step {
  readonly action: 'create' | 'update' | 'delete';
  /** Config path of the object (`tenants/acme/tunnels/gre1`), or the kernel path of a stray one. */
  readonly path: string;
  /** What is done, in kernel words. */
  readonly what: string;
  run(): Promise<Result<void, ReconcileError>>;
}

/** What `apply` did. */
export interface ApplyReport {
  readonly applied: readonly Step[];
  /** The step that failed and why; absent when all went through. */
  readonly failed?: { readonly step: Step; readonly error: ReconcileError };
}

type R<T> = Result<T, ReconcileError>;

function fromKernel(path: string, e: KernelError): ReconcileError {
  return { code: 'kernel', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e };
}
function fromBpf(path: string, e: BpfError): ReconcileError {
  return { code: 'bpf', path, op: e.op, message: `${e.op}: ${e.message}`, cause: e };
}
const kr = <T>(path: string, r: Result<T, KernelError>): R<T> => (r.ok ? r : err(fromKernel(path, r.error)));
const br = <T>(path: string, r: Result<T, BpfError>): R<T> => (r.ok ? r : err(fromBpf(path, r.error)));

/** Runs actions in order, stopping at the first error. */
async function seq(...fns: (() => Promise<R<void>>)[]): Promise<R<void>> {
  for (const f of fns) {
    const r = await f();
    if (!r.ok) return r;
  }
  return ok(undefined);
}

const lk = (ns: NsRef, name: string) => `${nsLabel(ns)}|${name}`;

/** Object names and per-kind counts of an nft listing or batch, to tell drift from a match. */
function nftShape(cmds: readonly unknown[], verbs: boolean): string {
  const parts: string[] = [];
  const rules = new Map<string, number>();
  for (const c of cmds) {
    if (!isObj(c)) continue;
    const body0 = verbs ? (isObj(c.add) ? c.add : null) : c;
    if (!body0) continue;
    for (const [kind, body] of Object.entries(body0)) {
      if (!isObj(body) || kind === 'table') continue;
      if (kind === 'rule') {
        const ch = String(body.chain);
        rules.set(ch, (rules.get(ch) ?? 0) + 1);
      } else {
        const elems = Array.isArray(body.elem) ? body.elem.length : 0;
        const hook = kind === 'chain' && body.hook !== undefined ? ` ${String(body.hook)}` : '';
        parts.push(`${kind} ${String(body.name)}${kind === 'set' || kind === 'map' ? ` ${elems}` : ''}${hook}`);
      }
    }
  }
  for (const [ch, n] of rules) parts.push(`rules ${ch} ${n}`);
  return parts.sort().join('\n');
}

/** The marker counter carrying a hash of the desired batch, so a changed config shows as drift. */
function withMarker(d: DesiredNft): { batch: NftJson; shape: string } {
  let h = 0;
  const text = JSON.stringify(d.batch);
  for (let i = 0; i < text.length; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) >>> 0;
  const marker = { add: { counter: { family: d.table.family, table: d.table.name, name: `cfg_${h.toString(16).padStart(8, '0')}` } } };
  const batch = { nftables: [...d.batch.nftables, marker] } as NftJson;
  // The first three commands are add/delete/add table.
  return { batch, shape: nftShape(batch.nftables.slice(3), true) };
}

/** The one step that replaces a whole firewall table in one nft transaction; `batch` is `withMarker(t).batch`. */
function nftStep(env: ReconcileEnv, t: DesiredNft, batch: NftJson, action: 'create' | 'update'): Step {
  return {
    action,
    path: t.path,
    what: `nft -j -f (table ${t.table.family} ${t.table.name}, ${batch.nftables.length} commands) (${nsLabel(t.ns)})`,
    run: async () => kr(t.path, await env.kernel.nft.apply(t.ns, batch)),
  };
}

function hopsText(r: { nexthops: readonly { dev: string; via?: string; weight: number; onlink?: true }[] }): string {
  const single = r.nexthops.length === 1;
  return r.nexthops
    .map((h) => `${h.dev} ${h.via ?? ''} ${single ? 1 : h.weight}${h.onlink ? ' onlink' : ''}`)
    .sort()
    .join(',');
}

/** Reads the kernel and returns the steps that make it equal to `d`. Reads only. */
export async function plan(env: ReconcileEnv, d: DesiredServer, more: { readonly dos?: DosInput; readonly steer?: DesiredSteer } = {}): Promise<R<Step[]>> {
  const { kernel: k, bpf, attach } = env;
  const adds: Step[] = [];
  const dels: Step[] = [];
  const step = (list: Step[], action: Step['action'], path: string, what: string, run: () => Promise<R<void>>) => list.push({ action, path, what, run });
  const conflict = (path: string, what: string, message: string) =>
    step(adds, 'update', path, what, async () => err({ code: 'conflict', path, op: what, message }));

  // Namespaces.
  const haveNs = kr('netns', await k.netns.list());
  if (!haveNs.ok) return haveNs;
  const freshNs = new Set<string>();
  for (const n of d.netns) {
    if (haveNs.value.includes(n.name)) continue;
    freshNs.add(n.name);
    step(adds, 'create', n.path, `netns add ${n.name}`, async () =>
      seq(
        async () => kr(n.path, await k.netns.add(n.name)),
        async () => kr(n.path, await k.links.setUp(n.name, 'lo', true)),
      ),
    );
  }
  const managedNs: NsRef[] = [d.serverNs, ...d.netns.map((n) => n.name)];
  const exists = (ns: NsRef) => ns === d.serverNs || (ns !== null && !freshNs.has(ns) && haveNs.value.includes(ns));

  // Links, by namespace.
  const links = new Map<string, Link[]>();
  for (const ns of managedNs) {
    if (!exists(ns)) {
      links.set(nsLabel(ns), []);
      continue;
    }
    const l = kr(`${nsLabel(ns)}/links`, await k.links.list(ns));
    if (!l.ok) return l;
    links.set(nsLabel(ns), l.value);
    if (ns !== d.serverNs) {
      const lo = l.value.find((x) => x.name === 'lo');
      if (lo && !lo.up) step(adds, 'update', `netns/${ns}`, `link set lo up (${ns})`, async () => kr(`netns/${ns}`, await k.links.setUp(ns, 'lo', true)));
    }
  }
  const getLink = (ns: NsRef, name: string) => (links.get(nsLabel(ns)) ?? []).find((l) => l.name === name);
  const fresh = new Set<string>();
  const vethOk = (v: DesiredVeth): 'ok' | 'missing' | 'wrong' | 'foreign' => {
    const a = getLink(v.spec.a.ns, v.spec.a.name);
    const b = getLink(v.spec.b.ns, v.spec.b.name);
    if ((a && !a.owned) || (b && !b.owned)) return 'foreign';
    if (!a && !b) return 'missing';
    if (!a || !b || a.kind !== 'veth' || b.kind !== 'veth') return 'wrong';
    const endOk = (l: Link, e: DesiredVeth['spec']['a']) => (e.ifindex === undefined || l.ifindex === e.ifindex) && (e.mac === undefined || l.mac === e.mac);
    const paired = a.peer?.ifindex === b.ifindex && (a.peer?.ns ?? null) === (v.spec.b.ns ?? null);
    return endOk(a, v.spec.a) && endOk(b, v.spec.b) && paired && a.owner === v.spec.owner ? 'ok' : 'wrong';
  };
  for (const v of d.veths) {
    const s = vethOk(v);
    const { a, b } = v.spec;
    if (s === 'foreign') {
      conflict(v.path, `link ${a.name}/${b.name}`, `a link named ${a.name} or ${b.name} exists without our mark; anyedge will not touch it: remove or rename it`);
      continue;
    }
    if (s !== 'ok') {
      fresh.add(lk(a.ns, a.name));
      fresh.add(lk(b.ns, b.name));
      step(adds, s === 'missing' ? 'create' : 'update', v.path, `link add ${a.name} (${nsLabel(a.ns)}) type veth peer ${b.name} (${nsLabel(b.ns)})`, async () =>
        seq(
          async () => kr(v.path, await k.links.delete(a.ns, a.name)),
          async () => kr(v.path, await k.links.delete(b.ns, b.name)),
          async () => kr(v.path, await k.links.addVeth(v.spec)),
          async () => kr(v.path, await k.links.setUp(a.ns, a.name, true)),
          async () => kr(v.path, await k.links.setUp(b.ns, b.name, true)),
          ...v.noarp.map((e) => async () => kr(v.path, await attach.setNoarp(v.spec[e].ns, v.spec[e].name, true))),
          ...(v.txCsumOff ?? []).map((e) => async () => kr(v.path, await attach.setTxChecksum(v.spec[e].ns, v.spec[e].name, false))),
        ),
      );
      continue;
    }
    for (const e of [a, b]) {
      const l = getLink(e.ns, e.name) as Link;
      if (!l.up) step(adds, 'update', v.path, `link set ${e.name} up`, async () => kr(v.path, await k.links.setUp(e.ns, e.name, true)));
      if (e.mtu !== undefined && l.mtu !== e.mtu) step(adds, 'update', v.path, `link set ${e.name} mtu ${e.mtu}`, async () => kr(v.path, await k.links.setMtu(e.ns, e.name, e.mtu as number)));
    }
    for (const which of v.noarp) {
      const e = v.spec[which];
      const n = kr(v.path, await attach.noarp(e.ns, e.name));
      if (!n.ok) return n;
      if (!n.value) step(adds, 'update', v.path, `link set ${e.name} arp off`, async () => kr(v.path, await attach.setNoarp(e.ns, e.name, true)));
    }
    for (const which of v.txCsumOff ?? []) {
      const e = v.spec[which];
      const c = kr(v.path, await attach.txChecksum(e.ns, e.name));
      if (!c.ok) return c;
      if (c.value) step(adds, 'update', v.path, `ethtool -K ${e.name} tx off`, async () => kr(v.path, await attach.setTxChecksum(e.ns, e.name, false)));
    }
  }
  const isFresh = (ns: NsRef, link: string) => (ns !== null && freshNs.has(ns)) || fresh.has(lk(ns, link));

  // Sysctls (per-link keys go with a re-created link).
  for (const s of d.sysctls) {
    const dev = /^net\.ipv[46]\.conf\.([^.]+)\./.exec(s.key)?.[1];
    let cur: string | null = null;
    if (exists(s.ns) && !(dev !== undefined && isFresh(s.ns, dev))) {
      const g = kr(s.path, await k.sysctl.get(s.ns, s.key));
      if (!g.ok) return g;
      cur = g.value;
    }
    if (cur !== s.value) step(adds, cur === null ? 'create' : 'update', s.path, `sysctl -w ${s.key}=${s.value} (${nsLabel(s.ns)})`, async () => kr(s.path, await k.sysctl.set(s.ns, s.key, s.value)));
  }

  // Addresses: on our links of the managed namespaces.
  const wantAddr = new Map<string, Set<string>>();
  for (const a of d.addrs) {
    const key = lk(a.ns, a.link);
    if (!wantAddr.has(key)) wantAddr.set(key, new Set());
    wantAddr.get(key)?.add(a.cidr);
  }
  const haveAddr = new Map<string, Set<string>>();
  for (const ns of managedNs) {
    if (!exists(ns)) continue;
    const l = kr(`${nsLabel(ns)}/addrs`, await k.addrs.list(ns));
    if (!l.ok) return l;
    for (const a of l.value) {
      const link = getLink(ns, a.link);
      if (!link?.owned || isFresh(ns, a.link)) continue;
      const key = lk(ns, a.link);
      if (!haveAddr.has(key)) haveAddr.set(key, new Set());
      haveAddr.get(key)?.add(a.cidr);
      if (!(wantAddr.get(key)?.has(a.cidr) ?? false))
        step(dels, 'delete', `${nsLabel(ns)}/addr/${a.cidr}`, `addr del ${a.cidr} dev ${a.link} (${nsLabel(ns)})`, async () => kr(`${nsLabel(ns)}/addr`, await k.addrs.delete(ns, a.link, a.cidr)));
    }
  }
  for (const a of d.addrs) {
    if (haveAddr.get(lk(a.ns, a.link))?.has(a.cidr)) continue;
    step(adds, 'create', a.path, `addr add ${a.cidr} dev ${a.link} (${nsLabel(a.ns)})`, async () => {
      const r = await k.addrs.add(a.ns, a.link, a.cidr);
      return !r.ok && r.error.code === 'exists' ? ok(undefined) : kr(a.path, r);
    });
  }

  // Egress addresses on lo (agent/egress.ts).
  const egress = await egressAddrSteps(k, d);
  if (!egress.ok) return egress;
  adds.push(...egress.value.adds);
  dels.push(...egress.value.dels);

  // Routes, per (namespace, table) we own routes in.
  for (const { ns, table } of d.routeTables) {
    const want = d.routes.filter((r) => r.ns === ns && r.spec.table === table);
    let have: Route[] = [];
    if (exists(ns)) {
      const l = kr(`${nsLabel(ns)}/routes/${table}`, await k.routes.list(ns, table));
      if (!l.ok) return l;
      have = l.value.filter((r) => r.owned);
    }
    const norm = new Map<string, NormalRoute>();
    for (const w of want) {
      const n = normalizeRoute('route', ns, w.spec);
      if ('code' in n) return err(fromKernel(w.path, n));
      const key = `${n.family} ${n.dst} ${n.metric}`;
      norm.set(key, n);
      const cur = have.find((h) => `${h.family} ${h.dst} ${h.metric}` === key);
      const gone = cur?.nexthops.some((h) => isFresh(ns, h.dev)) ?? false;
      if (cur && !gone && hopsText(cur) === hopsText(n) && !cur.nexthops.some((h) => h.dead)) continue;
      step(adds, cur && !gone ? 'update' : 'create', w.path, `route replace ${n.dst} metric ${n.metric} table ${table} (${nsLabel(ns)}) via ${hopsText(n)}`, async () => kr(w.path, await k.routes.replace(ns, w.spec)));
    }
    for (const h of have) {
      if (norm.has(`${h.family} ${h.dst} ${h.metric}`)) continue;
      step(dels, 'delete', `${nsLabel(ns)}/route/${table}/${h.dst}`, `route del ${h.dst} metric ${h.metric} table ${table} (${nsLabel(ns)})`, async () =>
        kr(`${nsLabel(ns)}/route`, await k.routes.delete(ns, { table, dst: h.dst, metric: h.metric })),
      );
    }
  }

  // Rules, in the server namespace.
  {
    const l = kr('server/rules', await k.rules.list(d.serverNs));
    if (!l.ok) return l;
    const ours = l.value.filter((r) => r.owned);
    const wanted = d.rules.map((r) => {
      const n = normalizeRule(k.marks, 'rule', r.ns, r.spec);
      return { r, n };
    });
    for (const { r, n } of wanted) {
      if ('code' in n) return err(fromKernel(r.path, n));
      if (!ours.some((o) => ruleMatches(o, n))) step(adds, 'create', r.path, `rule add pref ${n.priority} fwmark ${n.fwmark ?? '-'} lookup ${n.table}`, async () => kr(r.path, await k.rules.add(r.ns, r.spec)));
    }
    for (const o of ours) {
      if (wanted.some(({ n }) => !('code' in n) && ruleMatches(o, n))) continue;
      step(dels, 'delete', `${nsLabel(d.serverNs)}/rule/${o.priority}`, `rule del pref ${o.priority} lookup ${o.table}`, async () =>
        kr(`rule/${o.priority}`, await k.rules.delete(d.serverNs, { family: o.family, priority: o.priority, table: o.table as number, ...(o.fwmark !== undefined ? { fwmark: o.fwmark } : {}), ...(o.fwmask !== undefined ? { fwmask: o.fwmask } : {}) })),
      );
    }
  }

  // nftables tables of the managed namespaces.
  for (const ns of managedNs) {
    const want = d.nft.filter((t) => t.ns === ns);
    let tables: { family: string; name: string; owned: boolean }[] = [];
    if (exists(ns)) {
      const l = kr(`${nsLabel(ns)}/nft`, await k.nft.listTables(ns));
      if (!l.ok) return l;
      tables = l.value;
    }
    for (const t of want) {
      const { batch, shape } = withMarker(t);
      const cur = tables.find((x) => x.family === t.table.family && x.name === t.table.name);
      if (cur && !cur.owned) {
        conflict(t.path, `nft table ${t.table.name}`, `nft table ${t.table.family} ${t.table.name} is not ours`);
        continue;
      }
      if (cur) {
        const listing = kr(t.path, await k.nft.listTable(ns, t.table));
        if (!listing.ok) return listing;
        if (nftShape(listing.value.nftables, false) === shape) continue;
      }
      adds.push(nftStep(env, t, batch, cur ? 'update' : 'create'));
    }
    for (const x of tables) {
      if (!x.owned || want.some((t) => t.table.family === x.family && t.table.name === x.name)) continue;
      step(dels, 'delete', `${nsLabel(ns)}/nft/${x.name}`, `nft delete table ${x.family} ${x.name} (${nsLabel(ns)})`, async () =>
        kr(`nft/${x.name}`, await k.nft.deleteTable(ns, { family: x.family as 'inet', name: x.name })),
      );
    }
  }

  // BPF maps.
  {
    const eps = br('bpf/gre_endpoints', await bpf.listEndpoints());
    if (!eps.ok) return eps;
    for (const e of d.endpoints) if (!eps.value.includes(e.ip)) step(adds, 'create', e.path, `bpf gre_endpoints add ${e.ip}`, async () => br(e.path, await bpf.putEndpoint(e.ip)));
    for (const ip of eps.value) if (!d.endpoints.some((e) => e.ip === ip)) step(dels, 'delete', `bpf/gre_endpoints/${ip}`, `bpf gre_endpoints delete ${ip}`, async () => br(`bpf/gre_endpoints/${ip}`, await bpf.deleteEndpoint(ip)));
    const enc = br('bpf/gre_encap', await bpf.listEncap());
    if (!enc.ok) return enc;
    for (const e of d.encap) {
      const cur = enc.value.get(e.ifindex);
      if (cur && encapText(cur) === encapText(e.entry)) continue;
      step(adds, cur ? 'update' : 'create', `${e.path}/encap`, `bpf gre_encap ${e.ifindex}: ${encapText(e.entry)}`, async () => br(e.path, await bpf.putEncap(e.ifindex, e.entry)));
    }
    for (const i of enc.value.keys()) if (!d.encap.some((e) => e.ifindex === i)) step(dels, 'delete', `bpf/gre_encap/${i}`, `bpf gre_encap delete ${i}`, async () => br(`bpf/gre_encap/${i}`, await bpf.deleteEncap(i)));
    const dec = br('bpf/gre_decap', await bpf.listDecap());
    if (!dec.ok) return dec;
    for (const e of d.decap) {
      const cur = dec.value.find((x) => decapKeyText(x.key) === decapKeyText(e.key));
      if (cur && decapText(cur.value) === decapText(e.entry)) continue;
      step(adds, cur ? 'update' : 'create', `${e.path}/decap`, `bpf gre_decap ${decapKeyText(e.key)}: ${decapText(e.entry)}`, async () => br(e.path, await bpf.putDecap(e.key, e.entry)));
    }
    for (const x of dec.value)
      if (!d.decap.some((e) => decapKeyText(e.key) === decapKeyText(x.key)))
        step(dels, 'delete', `bpf/gre_decap/${decapKeyText(x.key)}`, `bpf gre_decap delete ${decapKeyText(x.key)}`, async () => br('bpf/gre_decap', await bpf.deleteDecap(x.key)));
  }

  // DoS rules in the XDP stage's maps (agent/dos-reconcile.ts), when asked for.
  if (env.dos && more.dos) {
    const s = await planDos(env.dos, more.dos);
    if (!s.ok) return s;
    adds.push(...s.value.adds);
    dels.push(...s.value.dels);
  }

  // SYN-cookie prefixes (agent/syncookie.ts): always compared, so the last one removed is deleted.
  if (env.syn) {
    const s = await planSyncookie(env.syn, d.syncookie ?? []);
    if (!s.ok) return s;
    adds.push(...s.value.adds);
    dels.push(...s.value.dels);
  }

  // Steering maps (agent/steer.ts), when asked for.
  if (env.steer && more.steer) {
    const s = await planSteer(env.steer, more.steer);
    if (!s.ok) return s;
    adds.push(...s.value.adds);
    dels.push(...s.value.dels);
  }

  // Programs on links.
  {
    const ids = kr('bpf/progs', await attach.progIds());
    if (!ids.ok) return ids;
    const ours = new Set(Object.values(ids.value));
    for (const a of d.attach) {
      const want = ids.value[a.prog as EdgeProgName];
      let cur: number | null = null;
      if (exists(a.ns) && !isFresh(a.ns, a.dev)) {
        const c = await attach.attached(a.ns, a.dev, a.hook);
        if (!c.ok && c.error.code !== 'not_found') return kr(a.path, c);
        cur = c.ok ? c.value : null;
      }
      if (cur === want) continue;
      if (cur !== null && !ours.has(cur)) {
        conflict(a.path, `${a.hook} ${a.dev}`, `${a.dev} (${nsLabel(a.ns)}) runs a ${a.hook} program (id ${cur}) that is not ours; anyedge will not replace it: detach it by hand`);
        continue;
      }
      step(adds, cur === null ? 'create' : 'update', a.path, `${a.hook} attach ${a.prog} dev ${a.dev} (${nsLabel(a.ns)})`, async () => kr(a.path, await attach.attach(a.ns, a.dev, a.hook, a.prog as EdgeProgName)));
    }
  }

  // Stray links of ours (a tunnel or tenant removed), then stray namespaces.
  const keep = new Set(d.veths.flatMap((v) => [lk(v.spec.a.ns, v.spec.a.name), lk(v.spec.b.ns, v.spec.b.name)]));
  for (const ns of managedNs) {
    for (const l of links.get(nsLabel(ns)) ?? []) {
      if (!l.owned || keep.has(lk(ns, l.name))) continue;
      // The other end of a pair whose peer lives in a namespace that is going anyway needs no step.
      step(dels, 'delete', `${nsLabel(ns)}/link/${l.name}`, `link del ${l.name} (${nsLabel(ns)})`, async () => kr(`${nsLabel(ns)}/link/${l.name}`, await k.links.delete(ns, l.name)));
    }
  }
  for (const n of haveNs.value) {
    if (d.netns.some((x) => x.name === n)) continue;
    step(dels, 'delete', `netns/${n}`, `netns del ${n}`, async () => kr(`netns/${n}`, await k.netns.delete(n)));
  }

  return ok([...adds, ...dels]);
}

/**
 * The steps from `prev` to `next` when they differ only in nftables tables that both have (a
 * firewall edit, the most frequent change), without reading the kernel: each changed table is
 * one atomic nft transaction, as in a full plan. Null when anything else differs, a table is
 * added or removed, or nothing differs — then a full `plan` is the way.
 *
 * Why: a full plan reads every namespace (links, addresses, routes, rules, tables, BPF maps),
 * hundreds of milliseconds of `ip`/`nft` processes even for a few tenants, while a rule change
 * needs one `nft -f`. The kernel's other state is not re-read here, so drift elsewhere is left to
 * the agent's periodic full pass; `prev` must be what the kernel was last made equal to.
 */
export function nftOnlySteps(env: ReconcileEnv, prev: DesiredServer, next: DesiredServer): Step[] | null {
  const rest = (d: DesiredServer) => JSON.stringify({ ...d, nft: d.nft.map((t) => [nsLabel(t.ns), t.table, t.path]) });
  if (rest(prev) !== rest(next)) return null;
  const steps: Step[] = [];
  for (const [i, t] of next.nft.entries()) {
    const old = prev.nft[i] as DesiredNft;
    if (JSON.stringify(old.batch) === JSON.stringify(t.batch)) continue;
    steps.push(nftStep(env, t, withMarker(t).batch, 'update'));
  }
  return steps.length ? steps : null;
}

/** The plan as text for people: one line per step, or "nothing to do". */
export function formatPlan(steps: readonly Step[]): string {
  if (steps.length === 0) return 'nothing to do\n';
  const sign = { create: '+', update: '~', delete: '-' } as const;
  return steps.map((s) => `${sign[s.action]} ${s.path}: ${s.what}`).join('\n') + '\n';
}

/** Runs the steps in order; stops at the first failure. */
export async function apply(steps: readonly Step[]): Promise<ApplyReport> {
  const applied: Step[] = [];
  for (const s of steps) {
    const r = await s.run();
    if (!r.ok) return { applied, failed: { step: s, error: r.error } };
    applied.push(s);
  }
  return { applied };
}

/** plan + apply, repeated until a plan is empty (at most `passes` times). */
export async function reconcile(env: ReconcileEnv, d: DesiredServer, passes = 1, more: { readonly dos?: DosInput; readonly steer?: DesiredSteer } = {}): Promise<R<ApplyReport>> {
  let last: ApplyReport = { applied: [] };
  for (let i = 0; i < passes; i++) {
    const p = await plan(env, d, more);
    if (!p.ok) return p;
    if (p.value.length === 0) return ok(last);
    last = await apply(p.value);
    if (last.failed) return ok(last);
  }
  return ok(last);
}
