/**
 * `anyedge plan -f FILE --server DC/SERVER` prints what would change to make this machine's
 * kernel equal to the config for that server (read-only); `anyedge apply-local …` does it, loading
 * the edge programs first if they are not pinned yet. `--netns NS` treats a namespace as the
 * server's default namespace (labs and tests). Exit codes: 0 done (or nothing to do), 1 the config
 * or the kernel refused, 2 usage or unreadable file.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { Io } from './io.ts';
import { parseYaml } from './yaml-source.ts';
import { parseConfig } from '../model/config.ts';
import { formatIssue } from '../model/issue.ts';
import { compileServer } from '../compile/server.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { edgePins, loadEdge } from '../kernel/bpf/loader.ts';
import { apply, formatPlan, plan } from '../agent/reconcile.ts';
import { lastDosTables } from '../agent/dos-reconcile.ts';
import { linuxDosMaps } from '../kernel/bpf/dos.ts';
import { SynCookieMaps } from '../kernel/bpf/syncookie.ts';
import { formatDos } from '../compile/dos/format.ts';
import { steerInput } from '../agent/steer.ts';
import { linuxSteerMaps } from '../kernel/bpf/steer.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';

/** Options of both commands. */
export interface PlanOptions {
  readonly file: string;
  /** `dc/server`. */
  readonly server: string;
  readonly netns?: string;
  /** Ownership prefix; default `ae`. */
  readonly prefix?: string;
  /** bpffs directory name of the edge programs; default `anyedge`. */
  readonly bpf?: string;
  /** Link pool for the server↔tenant wires. */
  readonly linkPool?: string;
}

/** Runs `plan` (apply false) or `apply-local` (apply true); returns the exit code. */
export async function runPlan(opts: PlanOptions, io: Io, doApply: boolean): Promise<number> {
  const [dc, server, ...rest] = opts.server.split('/');
  if (!dc || !server || rest.length) {
    io.err(`--server ${opts.server}: give it as DC/SERVER, e.g. ams/s1\n`);
    return EXIT_USAGE;
  }
  let text: string;
  try {
    text = await readFile(opts.file, 'utf8');
  } catch (e) {
    io.err(`${opts.file}: cannot read: ${(e as Error).message}\n`);
    return EXIT_USAGE;
  }
  const src = parseYaml(text);
  if (!src.ok) {
    io.err(`${opts.file}: not valid YAML; run anyedge validate ${opts.file}\n`);
    return EXIT_USAGE;
  }
  const cfg = parseConfig(src.value.value);
  if (!cfg.ok) {
    for (const i of cfg.error) io.err(`${opts.file}: ${formatIssue(i)}\n`);
    io.err(`${opts.file}: invalid; run anyedge validate ${opts.file} for lines and columns\n`);
    return EXIT_INVALID;
  }
  const marks = marksWith({ prefix: opts.prefix ?? 'ae' });
  const desired = compileServer(cfg.value, { dc, server }, { marks, serverNs: opts.netns ?? null, ...(opts.linkPool ? { linkPool: opts.linkPool } : {}) });
  if (!desired.ok) {
    io.err(`${desired.error.path}: ${desired.error.message}\n`);
    return EXIT_INVALID;
  }
  for (const w of desired.value.warnings) io.err(`warning: ${w}\n`);
  const pins = edgePins(opts.bpf ?? 'anyedge');
  if (!existsSync(pins.progs.xdpEdge)) {
    if (!doApply) {
      io.err(`the edge programs are not loaded (${pins.root}); anyedge apply-local loads them\n`);
      return EXIT_INVALID;
    }
    const loaded = await loadEdge(opts.bpf ?? 'anyedge');
    if (!loaded.ok) {
      io.err(`${loaded.error.op}: ${loaded.error.message}\n`);
      return EXIT_INVALID;
    }
  }
  const env = { kernel: linuxKernel(marks), bpf: linuxBpfMaps(pins), attach: linuxAttach(pins), steer: linuxSteerMaps(pins), dos: linuxDosMaps(pins.root), syn: new SynCookieMaps(pins) };
  // The XDP steering maps (Maglev table, services, peers, egress owners) are part of the plan.
  const steer = steerInput(env, cfg.value, { dc, server });
  if (!steer.ok) {
    io.err(`${steer.error.path}: ${steer.error.message}\n`);
    return EXIT_INVALID;
  }
  for (const w of steer.value?.warnings ?? []) io.err(`warning: ${w}\n`);
  // The XDP DoS maps: the rules in force in this DC now (slots as the kernel holds them).
  const dos = { config: cfg.value, dc, now: Date.now() };
  const steps = await plan(env, desired.value, { ...(steer.value ? { steer: steer.value } : {}), dos });
  if (!steps.ok) {
    io.err(`${steps.error.path}: ${steps.error.message}\n`);
    return EXIT_INVALID;
  }
  io.out(formatPlan(steps.value));
  // When the DoS maps change, what they will hold (an unchanged plan stays "nothing to do").
  const dosTables = lastDosTables(env.dos);
  if (dosTables && steps.value.some((st) => st.path.startsWith('dos/'))) io.out(`\nXDP DoS maps after the plan:\n${formatDos(dosTables)}`);
  if (!doApply) return EXIT_OK;
  const report = await apply(steps.value);
  if (report.failed) {
    io.err(`applied ${report.applied.length} of ${steps.value.length} steps; failed at ${report.failed.step.path}: ${report.failed.error.message}\n`);
    io.err('the next apply-local starts from what is there now\n');
    return EXIT_INVALID;
  }
  io.out(`applied ${report.applied.length} steps\n`);
  return EXIT_OK;
}
