/**
 * Reads the counters the kernel keeps for one server, at scrape time, through the kernel
 * interfaces the reconciler uses (src/kernel/): the nft counters of every tenant firewall and
 * of the transit table, the per-tunnel BPF stats slots and the programs' global drop counters.
 * The desired state says what exists and what it is called: which namespaces and tables to read,
 * which named counters belong to which rule, which stats slot is which tunnel.
 *
 * A read that fails (a namespace deleted mid-scrape, a table not applied yet, bpftool missing)
 * leaves out that scope's series and is reported as a `ScrapeError`; the rest of the scrape goes
 * on. The values are raw absolute readings; metrics-monotonic.ts makes them counters.
 */
import type { DesiredServer } from '../compile/server.ts';
import { counterNames } from '../compile/firewall/compile.ts';
import { TRANSIT_NAMES } from '../compile/server/transit.ts';
import type { KernelError, NftJson, NsRef } from '../kernel/index.ts';
import { countersOf, isObj } from '../kernel/nft.ts';
import type { BpfError } from '../kernel/bpf/bpftool.ts';
import type { EdgeCounterName, TunnelStats } from '../kernel/bpf/edge.ts';
import { nsLabel } from '../kernel/errors.ts';
import type { NewGeneration } from './metrics-monotonic.ts';
import type { ReconcileEnv } from './reconcile.ts';

/** A counter read from the kernel: its Prometheus name, help text and labels. */
export interface KernelCounterSpec {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
}

const fw = (what: string, unit: 'packets' | 'bytes') => `${unit === 'packets' ? 'Packets' : 'Bytes (IP packet length)'} ${what} (nft named counter in the tenant's namespace).`;

/** Every counter read from the kernel, by id. Bytes are IP packet lengths (inner packets for GRE). */
export const KERNEL_COUNTERS = {
  ruleP: { name: 'anyedge_firewall_rule_packets_total', help: fw('that matched a tenant firewall rule', 'packets'), labelNames: ['tenant', 'rule'] },
  ruleB: { name: 'anyedge_firewall_rule_bytes_total', help: fw('that matched a tenant firewall rule', 'bytes'), labelNames: ['tenant', 'rule'] },
  defaultP: { name: 'anyedge_firewall_default_packets_total', help: fw("that no rule matched, taken by the firewall's default action", 'packets'), labelNames: ['tenant', 'direction', 'action'] },
  defaultB: { name: 'anyedge_firewall_default_bytes_total', help: fw("that no rule matched, taken by the firewall's default action", 'bytes'), labelNames: ['tenant', 'direction', 'action'] },
  overP: { name: 'anyedge_firewall_rate_limited_packets_total', help: fw('dropped by a rate-limit rule for being over its rate', 'packets'), labelNames: ['tenant', 'rule'] },
  overB: { name: 'anyedge_firewall_rate_limited_bytes_total', help: fw('dropped by a rate-limit rule for being over its rate', 'bytes'), labelNames: ['tenant', 'rule'] },
  noDirP: { name: 'anyedge_firewall_no_direction_packets_total', help: fw('dropped for crossing no (uplink, tunnel) pair', 'packets'), labelNames: ['tenant'] },
  noDirB: { name: 'anyedge_firewall_no_direction_bytes_total', help: fw('dropped for crossing no (uplink, tunnel) pair', 'bytes'), labelNames: ['tenant'] },
  ctP: { name: 'anyedge_firewall_conntrack_packets_total', help: fw('decided by connection state before the rules (stateful firewalls only)', 'packets'), labelNames: ['tenant', 'state'] },
  ctB: { name: 'anyedge_firewall_conntrack_bytes_total', help: fw('decided by connection state before the rules (stateful firewalls only)', 'bytes'), labelNames: ['tenant', 'state'] },
  crossP: { name: 'anyedge_transit_cross_tenant_packets_total', help: "Packets from one tenant's namespace toward a tenant prefix, dropped in the server namespace.", labelNames: [] },
  crossB: { name: 'anyedge_transit_cross_tenant_bytes_total', help: "Bytes of packets from one tenant's namespace toward a tenant prefix, dropped in the server namespace.", labelNames: [] },
  encapP: { name: 'anyedge_gre_encap_packets_total', help: 'Packets GRE-encapsulated into the tunnel toward the customer (BPF tunnel_stats).', labelNames: ['tenant', 'tunnel'] },
  encapB: { name: 'anyedge_gre_encap_bytes_total', help: 'Inner bytes GRE-encapsulated into the tunnel toward the customer (BPF tunnel_stats).', labelNames: ['tenant', 'tunnel'] },
  decapP: { name: 'anyedge_gre_decap_packets_total', help: 'Packets from the customer decapsulated from the tunnel (BPF tunnel_stats).', labelNames: ['tenant', 'tunnel'] },
  decapB: { name: 'anyedge_gre_decap_bytes_total', help: 'Inner bytes from the customer decapsulated from the tunnel (BPF tunnel_stats).', labelNames: ['tenant', 'tunnel'] },
  mssP: { name: 'anyedge_gre_mss_clamped_packets_total', help: 'TCP SYNs toward the customer whose MSS was lowered to fit the tunnel (BPF tunnel_stats).', labelNames: ['tenant', 'tunnel'] },
  tooBigP: { name: 'anyedge_gre_too_big_packets_total', help: 'Packets toward the customer dropped for exceeding the tunnel MTU (BPF tunnel_stats).', labelNames: ['tenant', 'tunnel'] },
  greP: { name: 'anyedge_gre_packets_total', help: 'Packets encapsulated (stage=encap) or decapsulated (stage=decap) for all tunnels (BPF edge_counters).', labelNames: ['stage'] },
  dropP: { name: 'anyedge_gre_drop_packets_total', help: 'Packets the GRE programs dropped, by stage and reason (BPF edge_counters).', labelNames: ['stage', 'reason'] },
} as const satisfies Record<string, KernelCounterSpec>;

/** Id of a kernel counter. */
export type KernelCounterId = keyof typeof KERNEL_COUNTERS;

/** The edge_counters reasons as (metric, labels): bpf/anyedge.h enum edge_counter. */
export const EDGE_COUNTER_SERIES: Readonly<Record<EdgeCounterName, { readonly id: 'greP' | 'dropP'; readonly labels: Readonly<Record<string, string>> }>> = {
  gre_no_tunnel: { id: 'dropP', labels: { stage: 'decap', reason: 'no_tunnel' } },
  gre_malformed: { id: 'dropP', labels: { stage: 'decap', reason: 'malformed' } },
  gre_unsupported: { id: 'dropP', labels: { stage: 'decap', reason: 'unsupported' } },
  gre_fragment: { id: 'dropP', labels: { stage: 'decap', reason: 'fragment' } },
  gre_decap: { id: 'greP', labels: { stage: 'decap' } },
  encap_no_tunnel: { id: 'dropP', labels: { stage: 'encap', reason: 'no_tunnel' } },
  encap_not_ip: { id: 'dropP', labels: { stage: 'encap', reason: 'not_ip' } },
  encap_too_big: { id: 'dropP', labels: { stage: 'encap', reason: 'too_big' } },
  encap_failed: { id: 'dropP', labels: { stage: 'encap', reason: 'failed' } },
  encap: { id: 'greP', labels: { stage: 'encap' } },
};

/** One raw reading of one series. */
export interface KernelSample {
  readonly id: KernelCounterId;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  /** What was read together (one nft table, one BPF map); a failed read fails its whole scope. */
  readonly scope: string;
  /** Identity of the kernel object counting (table handle, stats slot). */
  readonly generation: string;
  readonly onNewGeneration: NewGeneration;
}

/** A read that failed: what was skipped, why, and what to do. */
export interface ScrapeError {
  /** What failed to read; also the `source` label of anyedge_metrics_scrape_errors_total. */
  readonly code: 'nft' | 'bpf' | 'desired' | 'status';
  /** The object whose series were skipped: `tenants/acme/firewall`, `bpf/tunnel_stats` … */
  readonly path: string;
  readonly message: string;
  readonly cause?: KernelError | BpfError | Error;
}

/** One scrape's raw readings. */
export interface KernelReading {
  readonly samples: readonly KernelSample[];
  readonly errors: readonly ScrapeError[];
  readonly failedScopes: ReadonlySet<string>;
}

/** How one named counter of a firewall table becomes a series. */
interface FirewallSeries {
  readonly packets: KernelCounterId;
  readonly bytes: KernelCounterId;
  readonly labels: Readonly<Record<string, string>>;
}

const RULE_PREFIX = counterNames.rule('');
const OVER_PREFIX = counterNames.over('');

/** The verdict that follows `counter name "<name>"` in the batch's rules (the default actions). */
function verdictAfter(batch: NftJson, counter: string): string {
  for (const cmd of batch.nftables) {
    const rule = isObj(cmd.add) && isObj(cmd.add.rule) ? cmd.add.rule : undefined;
    const expr = rule && Array.isArray(rule.expr) ? (rule.expr as readonly unknown[]) : [];
    const i = expr.findIndex((x) => isObj(x) && x.counter === counter);
    const next = i >= 0 ? expr[i + 1] : undefined;
    if (isObj(next)) {
      const v = Object.keys(next).find((k) => k === 'accept' || k === 'drop');
      if (v) return v;
    }
  }
  return 'unknown';
}

/**
 * The named counters a tenant's compiled firewall declares, as series. Counter names are the
 * compiler's (compile/firewall/compile.ts counterNames); `_` is outside the id alphabet, so
 * `rule_<id>` parses back to exactly one rule id.
 */
export function firewallSeries(tenant: string, batch: NftJson): Map<string, FirewallSeries> {
  const out = new Map<string, FirewallSeries>();
  for (const cmd of batch.nftables) {
    const c = isObj(cmd.add) && isObj(cmd.add.counter) ? cmd.add.counter : undefined;
    const name = c && typeof c.name === 'string' ? c.name : undefined;
    if (name === undefined) continue;
    if (name.startsWith(RULE_PREFIX)) out.set(name, { packets: 'ruleP', bytes: 'ruleB', labels: { tenant, rule: name.slice(RULE_PREFIX.length) } });
    else if (name.startsWith(OVER_PREFIX)) out.set(name, { packets: 'overP', bytes: 'overB', labels: { tenant, rule: name.slice(OVER_PREFIX.length) } });
    else if (name === counterNames.noDirection) out.set(name, { packets: 'noDirP', bytes: 'noDirB', labels: { tenant } });
    else if (name === counterNames.ctEstablished) out.set(name, { packets: 'ctP', bytes: 'ctB', labels: { tenant, state: 'established' } });
    else if (name === counterNames.ctInvalid) out.set(name, { packets: 'ctP', bytes: 'ctB', labels: { tenant, state: 'invalid' } });
    else
      for (const direction of ['ingress', 'egress'] as const)
        if (name === counterNames.default(direction)) out.set(name, { packets: 'defaultP', bytes: 'defaultB', labels: { tenant, direction, action: verdictAfter(batch, name) } });
  }
  return out;
}

/** The table's handle in a listing: a replaced table gets a new one. */
function tableHandle(listing: NftJson): number | undefined {
  for (const c of listing.nftables) if (isObj(c.table) && typeof c.table.handle === 'number') return c.table.handle;
  return undefined;
}

const TENANT_FIREWALL = /^tenants\/([^/]+)\/firewall$/;
const TENANT_TUNNEL = /^tenants\/([^/]+)\/tunnels\/([^/]+)$/;
const TRANSIT_PATH = 'server/transit/nft';

/** Runs `fn` over `items` with at most `limit` at a time (nft reads are processes; the host is shared). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Options of `readKernelCounters`. */
export interface ReadOptions {
  /** nft reads in flight at once; default 4. */
  readonly concurrency?: number;
}

/** Reads every kernel counter `d` says exists (and the global BPF counters, which always do). */
export async function readKernelCounters(env: ReconcileEnv, d: DesiredServer | undefined, opts: ReadOptions = {}): Promise<KernelReading> {
  const samples: KernelSample[] = [];
  const errors: ScrapeError[] = [];
  const failedScopes = new Set<string>();

  // The programs' global counters: they exist as soon as the edge is loaded.
  {
    const scope = 'bpf/edge_counters';
    const r = await env.bpf.edgeCounters();
    if (!r.ok) {
      failedScopes.add(scope);
      errors.push({ code: 'bpf', path: scope, message: `${r.error.op}: ${r.error.message}; the GRE drop counters are left out of this scrape: check that the edge programs are loaded and bpftool runs as root`, cause: r.error });
    } else
      for (const [name, v] of Object.entries(r.value) as [EdgeCounterName, bigint][]) {
        const s = EDGE_COUNTER_SERIES[name];
        samples.push({ id: s.id, labels: s.labels, value: Number(v), scope, generation: 'edge', onNewGeneration: 'zero' });
      }
  }
  if (d === undefined) return { samples, errors, failedScopes };

  // Per-tunnel stats, all slots in one read.
  const tunnels = d.encap.flatMap((e) => {
    const m = TENANT_TUNNEL.exec(e.path);
    return m ? [{ tenant: m[1] as string, tunnel: m[2] as string, slot: e.entry.statsIdx }] : [];
  });
  if (tunnels.length > 0) {
    const scope = 'bpf/tunnel_stats';
    const r = await env.bpf.tunnelStats(tunnels.map((t) => t.slot));
    if (!r.ok) {
      failedScopes.add(scope);
      errors.push({ code: 'bpf', path: scope, message: `${r.error.op}: ${r.error.message}; the per-tunnel GRE counters are left out of this scrape: check that the edge programs are loaded and bpftool runs as root`, cause: r.error });
    } else
      for (const t of tunnels) {
        const st = r.value.get(t.slot) as TunnelStats;
        const labels = { tenant: t.tenant, tunnel: t.tunnel };
        const put = (id: KernelCounterId, v: bigint) => samples.push({ id, labels, value: Number(v), scope, generation: `slot ${t.slot}`, onNewGeneration: 'baseline' });
        put('encapP', st.encapPackets);
        put('encapB', st.encapBytes);
        put('decapP', st.decapPackets);
        put('decapB', st.decapBytes);
        put('mssP', st.mssClamped);
        put('tooBigP', st.tooBig);
      }
  }

  // nft counters, one table listing each.
  const tables = d.nft.flatMap((t) => {
    const tenant = TENANT_FIREWALL.exec(t.path)?.[1];
    if (tenant !== undefined) return [{ t, series: firewallSeries(tenant, t.batch) }];
    if (t.path === TRANSIT_PATH) return [{ t, series: new Map<string, FirewallSeries>([[TRANSIT_NAMES.cross, { packets: 'crossP', bytes: 'crossB', labels: {} }]]) }];
    return [];
  });
  await eachLimited(tables, opts.concurrency ?? 4, async ({ t, series }) => {
    const scope = `nft/${nsLabel(t.ns as NsRef)}/${t.table.family}/${t.table.name}`;
    const r = await env.kernel.nft.listTable(t.ns, t.table);
    if (!r.ok) {
      failedScopes.add(scope);
      errors.push({ code: 'nft', path: t.path, message: `${r.error.message}; the counters of ${t.path} are left out of this scrape and resume when the table can be read again`, cause: r.error });
      return;
    }
    const generation = `handle ${tableHandle(r.value) ?? '?'}`;
    for (const c of countersOf(r.value)) {
      const s = c.kind === 'named' ? series.get(c.name) : undefined;
      if (!s) continue;
      samples.push({ id: s.packets, labels: s.labels, value: c.packets, scope, generation, onNewGeneration: 'zero' });
      samples.push({ id: s.bytes, labels: s.labels, value: c.bytes, scope, generation, onNewGeneration: 'zero' });
    }
  });
  return { samples, errors, failedScopes };
}
