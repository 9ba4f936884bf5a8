/**
 * The Linux prober: one `ping` from the tenant's namespace, bound to the tunnel device and to our
 * inner address, so the echo goes through the encapsulator and its answer through the
 * decapsulator. argv only; the round-trip time is read from ping's summary line.
 */
import { run } from '../kernel/exec.ts';
import type { Prober, ProbeResult, ProbeTarget } from './health.ts';

/** `rtt min/avg/max/mdev = 0.071/0.071/0.071/0.000 ms` */
const RTT = /= [\d.]+\/([\d.]+)\//;

export const pingProber: Prober = {
  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    const family = target.peer.includes(':') ? '-6' : '-4';
    const args = ['netns', 'exec', target.netns, 'ping', family, '-n', '-q', '-c', '1', '-W', (timeoutMs / 1000).toFixed(3), '-I', target.device, target.peer];
    const r = await run('ip', args, { timeoutMs: timeoutMs + 5000 });
    if (!r.ok) {
      const why = r.error.exitCode === 1 ? `no answer from ${target.peer} within ${timeoutMs} ms` : (r.error.stderr.trim() || r.error.message);
      return { ok: false, error: why };
    }
    const m = RTT.exec(r.value.stdout);
    return m ? { ok: true, rttMs: Number(m[1]) } : { ok: true };
  },
};
