/**
 * The proxy's Prometheus metrics, in a registry of their own (served on the proxy's own
 * `--metrics` listener through agent/metrics-http.ts):
 *
 * - `anyedge_proxy_connections{egress_ip}` — live upstream connections per egress address;
 * - `anyedge_proxy_slice_usage_ratio{egress_ip}` — how full the address's slice is for its busiest
 *   destination: max over destinations of held ports/capacity, held = live connections plus
 *   closed ones whose port conntrack still holds in TIME_WAIT (1 = the next connection to that
 *   destination must use another address);
 * - `anyedge_proxy_requests_total{result}` — CONNECT requests by outcome (`tunnel`, or the
 *   refusal's code: `bad_request`, `method`, `head_timeout`, `geoip`, `no_egress`, `exhausted`,
 *   `upstream_timeout`, `upstream_refused`, `upstream_error`, `resolve` …);
 * - `anyedge_proxy_slice_exhausted_total` — times a request found an eligible slice full for its
 *   destination (by our count or by the kernel refusing the address), whether or not another
 *   address then served it.
 *
 * The gauges are read from the ledger at scrape time, so they cannot drift from it; addresses this
 * server currently has are always listed (0 when idle), addresses it lost are listed while they
 * still carry connections.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { capacityPerDestination, type EgressAddress } from './egress-address.ts';
import type { SliceLedger } from './ledger.ts';

/** The proxy's metrics. */
export class ProxyMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'result'>;
  readonly exhausted: Counter;

  constructor(ledger: SliceLedger, addresses: () => readonly EgressAddress[]) {
    const known = (): Map<string, EgressAddress | null> => {
      const m = new Map<string, EgressAddress | null>(addresses().map((a) => [a.ip, a]));
      for (const ip of ledger.addresses()) if (!m.has(ip)) m.set(ip, null);
      return m;
    };
    const connections: Gauge<'egress_ip'> = new Gauge({
      name: 'anyedge_proxy_connections',
      help: 'Live upstream connections of the proxy per egress address.',
      labelNames: ['egress_ip'],
      registers: [this.registry],
      collect: () => {
        connections.reset();
        for (const ip of known().keys()) connections.set({ egress_ip: ip }, ledger.live(ip));
      },
    });
    const usage: Gauge<'egress_ip'> = new Gauge({
      name: 'anyedge_proxy_slice_usage_ratio',
      help: 'Fill of the egress address\'s port slice for its busiest destination: max over destinations of held ports (live connections and closed ones still in TIME_WAIT) / ports per slice.',
      labelNames: ['egress_ip'],
      registers: [this.registry],
      collect: () => {
        usage.reset();
        for (const [ip, a] of known()) {
          // An address no longer ours keeps its last slice size unknown: its usage is not reported.
          if (a === null) continue;
          usage.set({ egress_ip: ip }, ledger.maxPerDestination(ip) / capacityPerDestination(a));
        }
      },
    });
    this.requests = new Counter({ name: 'anyedge_proxy_requests_total', help: 'CONNECT requests by outcome: tunnel, or the refusal\'s code.', labelNames: ['result'], registers: [this.registry] });
    this.exhausted = new Counter({ name: 'anyedge_proxy_slice_exhausted_total', help: 'Times a request found an eligible egress slice full for its destination (own count or the kernel refusing the address).', registers: [this.registry] });
  }
}
