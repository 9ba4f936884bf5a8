/**
 * The XDP steering stage's outcome counters as one Prometheus counter, read from steer_cnt at
 * scrape time: `anyedge_steer_packets_total{outcome}` with outcome local, forward,
 * forward_second, decap, bad_peer, malformed, egress_local, egress_forward, egress_unowned,
 * no_route, via_stack (bpf/steer.h enum steer_counter). The map counts from the programs' load,
 * so a reload is a counter reset, as Prometheus expects after a restart.
 */
import { Counter, type Registry } from 'prom-client';
import { STEER_COUNTERS } from '../kernel/bpf/steer-layout.ts';
import type { ReconcileEnv } from './reconcile.ts';

/** The steering series, registered in `registry`; `env` is read at every scrape. */
export function registerSteerMetrics(registry: Registry, env: () => ReconcileEnv): void {
  const c: Counter<'outcome'> = new Counter({
    name: 'anyedge_steer_packets_total',
    help: 'Packets the XDP steering stage handled, by outcome: local (service flow owned here), forward (sent to the first owner), forward_second (no local socket: sent to the second choice), decap (forwarded to us by a peer), bad_peer and malformed (GUE dropped), egress_local/egress_forward/egress_unowned (replies to egress addresses), no_route (dropped), via_stack (owner neighbour unresolved: handed to the kernel).',
    labelNames: ['outcome'],
    registers: [registry],
    collect: async () => {
      const api = env().steer;
      if (!api) return;
      const r = await api.counters();
      // Maps not loaded or unreadable: the series are left out of this scrape.
      if (!r.ok) return;
      c.reset();
      for (const outcome of STEER_COUNTERS) c.inc({ outcome }, Number(r.value[outcome]));
    },
  });
}
