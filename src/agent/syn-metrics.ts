/**
 * The XDP SYN-flood stage's counters (bpf/syncookie.h enum syn_counter) as Prometheus counters,
 * read from the maps at scrape time: `anyedge_syn_<counter>_total` for the whole server
 * (syn_counters) and `anyedge_syn_tenant_<counter>_total{tenant}` per tenant (syn_tenant_cnt).
 *
 * The per-tenant series are families of their own, not a `tenant` label on the global ones: the
 * global counter is the sum of the tenants', so one family holding both would count every packet
 * twice in a `sum()`. A tenant's series reads the block its prefixes point to in the maps (the
 * index the reconciler keeps for it, agent/syncookie.ts), named by the tenant ids of the last
 * compiled desired state; a tenant appears once its prefixes are in the maps. Its block is zeroed
 * when the tenant is given it, and the maps count from the programs' load, so a tenant's
 * (re)protection and a reload are counter resets, as Prometheus expects after a restart.
 */
import { Counter, type Registry } from 'prom-client';
import type { DesiredServer } from '../compile/server.ts';
import { SYN_COUNTERS, type SynCounterName, type SynCounters } from '../kernel/bpf/syncookie.ts';
import type { ReconcileEnv } from './reconcile.ts';
import { heldSynTenantIndexes } from './syncookie.ts';

/** Metric name part and help of each counter; the help says what the count means for an operator. */
export const SYN_METRICS: Readonly<Record<SynCounterName, { readonly name: string; readonly help: string }>> = {
  synack: {
    name: 'synack',
    help: 'SYNs to XDP-protected prefixes answered in XDP with a SYN-cookie SYN-ACK: no socket, no conntrack entry, nothing reaches the tenant namespace. Its rate is the SYN load on protected addresses, flood included.',
  },
  ackOk: {
    name: 'ack_ok',
    help: 'ACKs carrying a valid SYN cookie: a client completed the handshake; the flow is remembered and goes on to the tenant namespace, where SYNPROXY opens the connection to the customer host. About the rate of real new connections.',
  },
  ackBad: {
    name: 'ack_bad',
    help: 'ACKs of unknown flows without a valid SYN cookie, dropped in XDP: an ACK flood or guessed cookies; also clients answering after the cookie expired (about 2 minutes) or after a flood pushed their flow out of the flow table.',
  },
  flow: {
    name: 'flow',
    help: 'Packets of flows already validated (or opened by the customer), passed on without a cookie check.',
  },
  unanswerable: {
    name: 'unanswerable',
    help: 'SYNs XDP cannot answer in place (IPv4 options, IPv6 extension headers, fragments), passed on to the tenant namespace, whose SYNPROXY answers them; a high rate means that part of a flood reaches netfilter.',
  },
  outbound: {
    name: 'outbound',
    help: 'SYN-ACKs arriving for protected addresses: answers to connections the customer opened itself, passed on and their flow remembered.',
  },
  error: {
    name: 'error',
    help: 'Packets dropped because a kernel helper failed (SYN-cookie generation, packet resize). Should stay 0: a rising count is a bug or a kernel limit to report.',
  },  rstBad: {
    name: 'rst_bad',
    help: 'RSTs of flows never validated, dropped in XDP: resets of cookie SYN-ACKs by the flooding host, or the backscatter of a spoofed flood; a legitimate flow is always known by then, so none of these concerned the customer host.',
  },

};

interface SynScrape {
  readonly global: SynCounters | null;
  readonly tenants: ReadonlyArray<{ readonly tenant: string; readonly counters: SynCounters }>;
}

/**
 * The SYN-flood series, registered in `registry`; `env` and `desired` (the last compiled desired
 * state, for the tenant ids) are read at every scrape. Without SYN maps, or when they cannot be
 * read, the series are left out of that scrape.
 */
export function registerSynMetrics(registry: Registry, env: () => ReconcileEnv, desired: () => Pick<DesiredServer, 'syncookie'> | undefined): void {
  let inflight: Promise<SynScrape> | null = null;
  // One read of the maps serves the fourteen counters of a scrape.
  const read = () =>
    (inflight ??= (async (): Promise<SynScrape> => {
      const api = env().syn;
      if (!api) return { global: null, tenants: [] };
      const g = await api.counters();
      const global = g.ok ? g.value : null;
      let want;
      try {
        want = desired()?.syncookie ?? [];
      } catch {
        // The agent's own scrape counts this failure (metrics.ts); here the tenants are left out.
        return { global, tenants: [] };
      }
      if (want.length === 0) return { global, tenants: [] };
      const cur = await api.protectedPrefixes();
      if (!cur.ok) return { global, tenants: [] };
      const held = [...heldSynTenantIndexes(want, cur.value)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      if (held.length === 0) return { global, tenants: [] };
      const c = await api.tenantCountersOf(held.map(([, i]) => i));
      if (!c.ok) return { global, tenants: [] };
      return { global, tenants: held.flatMap(([tenant, i]) => (c.value.has(i) ? [{ tenant, counters: c.value.get(i) as SynCounters }] : [])) };
    })().finally(() => (inflight = null)));

  for (const key of SYN_COUNTERS) {
    const m = SYN_METRICS[key];
    const global: Counter = new Counter({
      name: `anyedge_syn_${m.name}_total`,
      help: `${m.help} Whole server.`,
      registers: [registry],
      collect: async () => {
        const s = await read();
        global.reset();
        if (s.global) global.inc(Number(s.global[key]));
        else global.remove();
      },
    });
    const perTenant: Counter<'tenant'> = new Counter({
      name: `anyedge_syn_tenant_${m.name}_total`,
      help: `${m.help} By tenant.`,
      labelNames: ['tenant'],
      registers: [registry],
      collect: async () => {
        const s = await read();
        perTenant.reset();
        for (const t of s.tenants) perTenant.inc({ tenant: t.tenant }, Number(t.counters[key]));
      },
    });
  }
}
