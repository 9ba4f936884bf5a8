/**
 * A device's XDP verdict counters as its driver reports them (`ethtool -S`): for veth, per
 * receive queue, how many frames XDP saw, dropped, sent back (XDP_TX) and redirected. They are
 * the kernel's own count, independent of any map of ours: evidence that a flood was dropped in
 * XDP and not later in the stack.
 */
import { ok, type Result } from '../lib/result.ts';
import { run, type ExecError } from './exec.ts';

/** XDP counters of one device, summed over its receive queues. */
export interface XdpQueueStats {
  /** Frames the XDP program ran on. */
  readonly packets: number;
  readonly drops: number;
  readonly tx: number;
  readonly redirects: number;
}

/** Sums `rx_queue_<n>_xdp_{packets,drops,tx,redirect}` of `ethtool -S` output (pure). */
export function parseXdpStats(text: string): XdpQueueStats {
  const sum = { packets: 0, drops: 0, tx: 0, redirects: 0 };
  const field: Readonly<Record<string, keyof XdpQueueStats>> = { xdp_packets: 'packets', xdp_drops: 'drops', xdp_tx: 'tx', xdp_redirect: 'redirects' };
  for (const m of text.matchAll(/^\s*rx_queue_\d+_(xdp_[a-z_]+):\s*(\d+)\s*$/gm)) {
    const k = field[m[1] as string];
    if (k) sum[k] += Number(m[2]);
  }
  return sum;
}

/** The XDP counters of device `dev` in namespace `ns`. */
export async function xdpQueueStats(ns: string, dev: string): Promise<Result<XdpQueueStats, ExecError>> {
  const r = await run('ip', ['netns', 'exec', ns, 'ethtool', '-S', dev]);
  return r.ok ? ok(parseXdpStats(r.value.stdout)) : r;
}
