/**
 * Attack detection in `anyedge agent`: the detection loop over this server's XDP sampler (the
 * rings of the pinned edge programs), reading tenants from the agent's config and writing through
 * its store connection. Detection is an addition to the agent, not a condition of it: when the
 * sampler cannot be set up (an old xdp_edge.o without it), the agent runs on and says why.
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { linuxSampleSource, rateProblem, samplePins, type SampleSource } from '../kernel/bpf/sample.ts';
import type { Agent } from './daemon.ts';
import { DEFAULT_SAMPLE_EVERY, DetectionLoop, type DetectionLogEvent } from './detect-loop.ts';

/** Parses `--detect-every N` (1 in N packets; 0 turns detection off). */
export function parseDetectEvery(text: string | undefined): Result<number, string> {
  if (text === undefined) return ok(DEFAULT_SAMPLE_EVERY);
  const n = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  const bad = Number.isNaN(n) ? 'not a whole number' : rateProblem(n);
  return bad === undefined ? ok(n) : err(`--detect-every ${text}: ${bad}; give the sampling rate as 1 in N packets, e.g. 100, or 0 to turn detection off`);
}

/** Starts detection for a running agent; `null` when `every` is 0 (off). */
export async function startDetection(o: {
  readonly agent: Agent;
  readonly where: { readonly dc: string; readonly server: string };
  /** Root of the pinned edge programs (`edgePins(name).root`). */
  readonly bpfRoot: string;
  readonly every: number;
  readonly log: (e: DetectionLogEvent) => void;
  /** Tests pass a fake; default the pinned rings. */
  readonly source?: SampleSource;
}): Promise<Result<DetectionLoop | null, string>> {
  if (o.every === 0) return ok(null);
  const loop = new DetectionLoop({
    where: o.where,
    source: o.source ?? linuxSampleSource(samplePins(o.bpfRoot)),
    every: o.every,
    config: () => o.agent.configEntries(),
    store: () => o.agent.connectedStore(),
    log: o.log,
  });
  const started = await loop.start();
  return started.ok ? ok(loop) : err(`${started.error}; the agent runs without attack detection (reload the edge programs with this version's bpf/out/xdp_edge.o)`);
}
