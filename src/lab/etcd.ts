/**
 * The lab's etcd: one member on 127.0.0.1 (ports picked free), its data under the lab's
 * directory, started detached so it outlives `lab up` (src/store/etcd-harness.ts ties its
 * members to the test process instead). Loopback only: the agents run in the host namespace
 * and act on their server namespaces with --netns.
 */
import { join } from 'node:path';
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';
import { aliveWithMark, sleep, spawnDetached } from './procs.ts';
import { freePorts } from '../lib/ports.ts';

/** A started etcd. */
export interface LabEtcd {
  readonly pid: number;
  readonly clientUrl: string;
  readonly log: string;
}

/** Starts etcd for lab `prefix` in `dir` and waits (up to `deadlineMs`) until it is healthy. */
export async function startEtcd(prefix: string, dir: string, deadlineMs = 20_000): Promise<Result<LabEtcd, LabError>> {
  const [client, peer] = await freePorts(2);
  const clientUrl = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const log = join(dir, 'logs', 'etcd.log');
  const pid = spawnDetached('store/etcd', [
    'etcd',
    '--name', prefix,
    '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `${prefix}=${peerUrl}`,
    '--initial-cluster-token', `${prefix}-lab`,
    // Whole-config applies are one transaction (etcd's default allows 128 operations).
    '--max-txn-ops', '16384',
    '--log-level', 'warn',
  ], log);
  if (!pid.ok) return pid;
  const deadline = Date.now() + deadlineMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!aliveWithMark(pid.value, prefix)) return err({ code: 'failed', path: 'store/etcd', message: `etcd exited while starting; see ${log}` });
    try {
      const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
      const h = (await res.json()) as { health?: string };
      if (h.health === 'true') return ok({ pid: pid.value, clientUrl, log });
      last = JSON.stringify(h);
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(100);
  }
  return err({ code: 'timeout', path: 'store/etcd', message: `etcd not healthy within ${deadlineMs} ms (${last}); see ${log}` });
}
