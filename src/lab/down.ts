/**
 * `lab down`: removes a lab — first what its state file lists, then everything else carrying its
 * prefix, so it also cleans up after a crash or a lost state file: processes whose command line
 * carries the mark (agents, BIRD, etcd, echo services), BPF pin directories `ael<id>…` under
 * /sys/fs/bpf (the agents' and customer routers' programs), network namespaces `ael<id>…` (the
 * lab's nodes and the agents' tenant namespaces; their veths and bridges go with them), and the
 * lab's directory. Idempotent: a lab already gone is success.
 *
 * Processes go first, so no agent recreates a namespace while it is being removed.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { deleteNetns, listNetns } from '../kernel/labnet.ts';
import { BPFFS } from '../kernel/bpf/loader.ts';
import { unpin } from '../kernel/bpf/bpftool.ts';
import { labPrefix } from './names.ts';
import { findMarked, stopMarked } from './procs.ts';
import { labDir, readState } from './state.ts';

/** Options of `lab down`. */
export interface DownOptions {
  readonly id: string;
  readonly runDir: string;
}

/** What `lab down` removed, and what it could not. */
export interface DownReport {
  readonly processes: number[];
  readonly pins: string[];
  readonly netns: string[];
  readonly problems: string[];
}

/** Pin directories of the lab under /sys/fs/bpf. */
export function labPins(prefix: string): string[] {
  try {
    return readdirSync(BPFFS).filter((n) => n.startsWith(prefix)).map((n) => join(BPFFS, n)).sort();
  } catch {
    return [];
  }
}

/** Removes lab `id`. */
export async function labDown(o: DownOptions): Promise<DownReport> {
  const prefix = labPrefix(o.id);
  const dir = labDir(o.runDir, prefix);
  const problems: string[] = [];
  const state = readState(dir);
  const listed = state.ok ? state.value.processes.map((p) => p.pid) : [];

  // Twice: a process may start one more (ip netns exec → bird) while the first pass runs.
  const stopped = new Set<number>();
  for (let pass = 0; pass < 2; pass++) {
    for (const p of await stopMarked([...new Set([...listed, ...findMarked(prefix)])], prefix)) stopped.add(p);
  }
  const left = findMarked(prefix);
  if (left.length) problems.push(`processes still running: ${left.join(', ')}`);

  const pins = [...new Set([...(state.ok ? state.value.pins : []), ...labPins(prefix)])].filter((p) => p.startsWith(`${BPFFS}/${prefix}`));
  for (const p of pins) await unpin(p);

  const gone: string[] = [];
  const nss = await listNetns(prefix);
  if (!nss.ok) problems.push(nss.error.message);
  else {
    for (const n of nss.value) {
      const r = await deleteNetns(n);
      if (r.ok) gone.push(n);
      else problems.push(`netns ${n}: ${r.error.message}`);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return { processes: [...stopped].sort((a, b) => a - b), pins, netns: gone, problems };
}
