/**
 * What the health monitor probes, from the compiled server: each tunnel with health checks on and
 * an inner address that names a single peer (a /31 or /30). The monitor's `down()` set is what
 * `compileServer` takes as `down`, closing the loop: a tunnel that stops answering leaves the
 * routes on the next pass, and comes back when it answers again.
 */
import type { DesiredServer } from '../compile/server.ts';
import type { HealthCheck } from '../model/tunnel.ts';
import { tunnelPeer, type ProbeTarget } from './health.ts';

/** Probe targets of a server's tunnels, for `HealthMonitor.setTargets`. */
export function probeTargets(d: DesiredServer): { target: ProbeTarget; check: HealthCheck }[] {
  const out: { target: ProbeTarget; check: HealthCheck }[] = [];
  for (const t of d.tunnels) {
    if (!t.healthCheck.enabled) continue;
    for (const inner of t.inner) {
      const peer = tunnelPeer(inner);
      if (peer === null) continue;
      out.push({ target: { path: t.path, netns: t.ns, device: t.dev, source: inner.split('/')[0] as string, peer }, check: t.healthCheck });
      break;
    }
  }
  return out;
}
