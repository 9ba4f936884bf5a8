/**
 * Prometheus metrics of attack detection, fed by the detection loop's tick reports
 * (detect-loop.ts `onReport`). Label cardinality is bounded: the top-talker gauges hold the
 * current top TOP_K of three lists (a series per list and rank, the talker itself in `key`) and
 * are cleared before every update, so a flood of spoofed sources never leaves more than
 * 3 × TOP_K series behind; detections are per tenant and event kind.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { DETECTION_EVENT_KINDS } from '../model/detection.ts';
import { TOP_K } from './detect.ts';
import type { TickReport } from './detect-loop.ts';

const LISTS = [
  ['destination', 'topDestinations'],
  ['source', 'topSources'],
  ['signature', 'topSignatures'],
] as const;

/** The detection series, registered in `registry`. */
export class DetectMetrics {
  private readonly detections: Counter<'tenant' | 'kind'>;
  private readonly samples: Counter;
  private readonly lost: Counter;
  private readonly errors: Counter;
  private readonly every: Gauge;
  private readonly pps: Gauge;
  private readonly bps: Gauge;
  private readonly attacks: Gauge<'tenant'>;
  private readonly topPps: Gauge<'list' | 'rank' | 'key'>;
  private readonly topBps: Gauge<'list' | 'rank' | 'key'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.detections = new Counter({
      name: 'anyedge_dos_detections_total',
      help: `Detection events this server wrote, by tenant and kind (${DETECTION_EVENT_KINDS.join(', ')}).`,
      labelNames: ['tenant', 'kind'],
      registers,
    });
    this.samples = new Counter({ name: 'anyedge_dos_samples_total', help: 'Packet header samples read from the XDP sampler.', registers });
    this.lost = new Counter({ name: 'anyedge_dos_samples_lost_total', help: 'Samples the XDP rings overwrote before they were read (counted in rates, not in top lists).', registers });
    this.errors = new Counter({ name: 'anyedge_dos_detect_errors_total', help: 'Failed sample reads and store writes of the detection loop (see the agent log).', registers });
    this.every = new Gauge({ name: 'anyedge_dos_sample_every', help: 'Sampling rate: 1 packet in this many.', registers });
    this.pps = new Gauge({ name: 'anyedge_dos_traffic_pps', help: 'Estimated packets/s through the uplink XDP program, last second.', registers });
    this.bps = new Gauge({ name: 'anyedge_dos_traffic_bps', help: 'Estimated bits/s (IP length) through the uplink XDP program, last second.', registers });
    this.attacks = new Gauge({ name: 'anyedge_dos_attacks', help: 'Addresses of the tenant over a detection threshold in the last second.', labelNames: ['tenant'], registers });
    this.topPps = new Gauge({
      name: 'anyedge_dos_top_pps',
      help: `Estimated packets/s of the current top ${TOP_K} destinations, source prefixes (/24, /64) and signatures; rank 1 is the largest.`,
      labelNames: ['list', 'rank', 'key'],
      registers,
    });
    this.topBps = new Gauge({ name: 'anyedge_dos_top_bps', help: 'Estimated bits/s of the same top talkers as anyedge_dos_top_pps.', labelNames: ['list', 'rank', 'key'], registers });
  }

  /** Takes one tick's report. */
  observe(r: TickReport): void {
    this.samples.inc(r.samples);
    this.lost.inc(r.lost);
    this.errors.inc(r.errors.length);
    this.every.set(r.every);
    this.pps.set(r.window.pps);
    this.bps.set(r.window.bps);
    for (const e of r.events) this.detections.inc({ tenant: e.tenant, kind: e.kind });
    this.attacks.reset();
    for (const a of r.window.attacks) this.attacks.inc({ tenant: a.tenant });
    this.topPps.reset();
    this.topBps.reset();
    for (const [list, field] of LISTS)
      r.window[field].forEach((t, i) => {
        const labels = { list, rank: String(i + 1), key: t.key };
        this.topPps.set(labels, t.pps);
        this.topBps.set(labels, t.bps);
      });
  }
}
