/**
 * Per-rule counters of the XDP DoS stage as Prometheus counters, read from dos_stats at scrape
 * time: `anyedge_dos_rule_packets_total{rule}` (packets the rule won), `_bytes_total` (their IP
 * bytes) and `_dropped_total`. The slot → rule id map is the one last planned against the maps
 * (agent/dos-reconcile.ts); a slot keeps its rule while the rule exists, so a series counts on
 * across unrelated changes, and starts from zero when a rule is (re)created (a counter reset, as
 * Prometheus expects after a restart).
 */
import { Counter, type Registry } from 'prom-client';
import { lastDosTables } from './dos-reconcile.ts';
import type { ReconcileEnv } from './reconcile.ts';

/** The DoS series, registered in `registry`; `env` is read at every scrape. */
export function registerDosMetrics(registry: Registry, env: () => ReconcileEnv): void {
  let inflight: Promise<Array<{ rule: string; packets: number; bytes: number; dropped: number }>> | null = null;
  // One read of dos_stats serves the three counters of a scrape.
  const read = () =>
    (inflight ??= (async () => {
      const api = env().dos;
      const tables = api ? lastDosTables(api) : undefined;
      if (!api || !tables || tables.rules.length === 0) return [];
      const s = await api.stats(tables.rules.map((r) => r.slot));
      if (!s.ok) return [];
      return tables.rules.map((r) => {
        const v = s.value.get(r.slot) ?? { packets: 0n, bytes: 0n, dropped: 0n };
        return { rule: r.id, packets: Number(v.packets), bytes: Number(v.bytes), dropped: Number(v.dropped) };
      });
    })().finally(() => (inflight = null)));
  const counter = (name: string, help: string, field: 'packets' | 'bytes' | 'dropped') => {
    const c: Counter<'rule'> = new Counter({
      name,
      help,
      labelNames: ['rule'],
      registers: [registry],
      collect: async () => {
        const rows = await read();
        c.reset();
        for (const r of rows) c.inc({ rule: r.rule }, r[field]);
      },
    });
  };
  counter('anyedge_dos_rule_packets_total', 'Packets that matched a DoS rule in XDP (the winning rule of each packet), by rule id.', 'packets');
  counter('anyedge_dos_rule_bytes_total', 'IP bytes of the packets that matched a DoS rule in XDP, by rule id.', 'bytes');
  counter('anyedge_dos_rule_dropped_total', 'Packets a DoS rule dropped in XDP (drop rules, and rate limits over their rate), by rule id.', 'dropped');
}
