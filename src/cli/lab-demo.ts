/**
 * `anyedge lab demo [--dcs 3 --servers 3 --store etcd|lmdb --id a0 --json]`: brings the lab up,
 * provisions Acme through the REST API and shows on real traffic where each flow goes, what is
 * blocked, and what happens when a DC or a server fails; then tears everything down, also on
 * Ctrl-C. Exit 0 when every step showed what it should and nothing was left behind, else 1.
 */
import type { Io } from './io.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { checkLabId, DEFAULT_LAB_ID } from '../lab/names.ts';
import { formatLabError } from '../lab/errors.ts';
import { DEFAULT_SIZE, planLab } from '../lab/topology.ts';
import { DEFAULT_RUN_DIR } from '../lab/state.ts';
import { runDemo } from '../lab/demo.ts';

/** Flags of `lab demo`. */
export interface DemoFlags {
  readonly id?: string;
  readonly runDir?: string;
  readonly dcs?: string;
  readonly servers?: string;
  readonly store?: string;
  readonly json?: boolean;
}

function int(flag: string, text: string | undefined, dflt: number, io: Io): number | null {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text)) {
    io.err(`--${flag} ${text}: give a whole number\n`);
    return null;
  }
  return Number(text);
}

/** `lab demo`. The narrative goes to stdout (stderr with --json, which prints the report). */
export async function runLabDemo(o: DemoFlags, io: Io): Promise<number> {
  const id = checkLabId(o.id ?? DEFAULT_LAB_ID);
  if (!id.ok) {
    io.err(`--${formatLabError(id.error)}\n`);
    return EXIT_USAGE;
  }
  const dcs = int('dcs', o.dcs, DEFAULT_SIZE.dcs, io);
  const servers = int('servers', o.servers, DEFAULT_SIZE.servers, io);
  if (dcs === null || servers === null) return EXIT_USAGE;
  if (dcs < 2 || servers < 2) {
    io.err(`--dcs ${dcs} --servers ${servers}: the demo needs at least 2 DCs (a DC fails) of 2 servers (a server fails)\n`);
    return EXIT_USAGE;
  }
  // The sizes are checked as lab up checks them, before anything is built.
  const plan = planLab(id.value, { dcs, servers, cities: Math.max(2, dcs) });
  if (!plan.ok) {
    io.err(`lab demo: ${plan.error.message}\n`);
    return EXIT_USAGE;
  }
  const store = o.store ?? 'etcd';
  if (store !== 'etcd' && store !== 'lmdb') {
    io.err(`--store ${store}: use etcd (a local etcd member, the default) or lmdb (the embedded single-node store)\n`);
    return EXIT_USAGE;
  }
  const abort = new AbortController();
  const onSignal = (): void => {
    io.err('interrupted: stopping after this step, then tearing the lab down (lab down --id also cleans up)\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const say = o.json ? (l: string) => io.err(`${l}\n`) : (l: string) => io.out(`${l}\n`);
    const r = await runDemo({ id: id.value, size: { dcs, servers }, store, runDir: o.runDir ?? DEFAULT_RUN_DIR, log: say, signal: abort.signal });
    if (!r.ok) {
      io.err(`lab demo: ${formatLabError(r.error)}\n`);
      return EXIT_INVALID;
    }
    if (o.json) io.out(`${JSON.stringify(r.value, null, 2)}\n`);
    return EXIT_OK;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
