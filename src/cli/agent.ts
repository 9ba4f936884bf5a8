/**
 * `anyedge agent --server DC/SERVER --store SPEC --state-dir DIR …`: runs the per-server agent
 * daemon (agent/daemon.ts) on this machine's kernel until SIGTERM or SIGINT, then stops it
 * (leaving the kernel as it is) and exits 0. Loads and pins the edge BPF programs first when they
 * are not pinned yet, as `apply-local` does. Logs one JSON line per event to stderr:
 * `{"ts":"…","level":"info","event":"applied","revision":12,"steps":3,"ms":41,…}`.
 *
 * Exit codes: 0 stopped by a signal, 1 the agent could not start (state dir, BPF, metrics
 * listener), 2 a flag is wrong.
 */
import { SynCookieMaps } from '../kernel/bpf/syncookie.ts';
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import type { Io } from './io.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { Agent, type AgentEvent } from '../agent/daemon.ts';
import { AgentMetrics } from '../agent/metrics.ts';
import { pingProber } from '../agent/ping-prober.ts';
import type { ReconcileEnv } from '../agent/reconcile.ts';
import { idProblem } from '../model/id.ts';
import { parseCidr } from '../model/net.ts';
import { openStore, parseStoreSpec } from '../store/open.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxDosMaps } from '../kernel/bpf/dos.ts';
import { linuxSteerMaps } from '../kernel/bpf/steer.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { edgePins, loadEdge } from '../kernel/bpf/loader.ts';
import { parseDetectEvery, startDetection } from '../agent/detect-run.ts';
import { firstSignal } from './signals.ts';

/** The flags of `anyedge agent`, as commander hands them over. */
export interface AgentCliOptions {
  readonly server: string;
  readonly store: string;
  readonly stateDir: string;
  readonly netns?: string;
  readonly prefix?: string;
  readonly bpf?: string;
  readonly linkPool?: string;
  readonly metrics?: string;
  readonly logLevel?: string;
  readonly detectEvery?: string;
}

/** Log levels, quietest last. */
export const LOG_LEVELS = ['debug', 'info'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How the run ends: by default the first SIGTERM or SIGINT. Tests pass their own. */
export interface AgentRunControl {
  readonly until?: Promise<string>;
}

/** `HOST:PORT` or `[IPv6]:PORT` → listen address; the error names the flag. */
export function parseListen(text: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) return `--metrics ${text}: give HOST:PORT, e.g. 127.0.0.1:9474 or [::1]:9474 (port 0–65535)`;
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Checks every flag; the first problem, naming its flag, or the parsed values. */
function checkFlags(o: AgentCliOptions): string | { dc: string; server: string; level: LogLevel; listen?: { host: string; port: number } } {
  const [dc, server, ...rest] = o.server.split('/');
  if (!dc || !server || rest.length) return `--server ${o.server}: give it as DC/SERVER, e.g. ams/s1`;
  const bad = idProblem(dc, 'data center id') ?? idProblem(server, 'server id');
  if (bad) return `--server ${o.server}: ${bad}`;
  const spec = parseStoreSpec(o.store);
  if (!spec.ok) return spec.error;
  if (o.stateDir.trim() === '') return '--state-dir: give a directory for the agent\'s replica, e.g. /var/lib/anyedge';
  if (o.prefix !== undefined && !/^[a-z][a-z0-9]{0,5}$/.test(o.prefix)) return `--prefix ${o.prefix}: use 1–6 characters from a–z and 0–9, starting with a letter (it starts every netns, link and table name, which Linux limits to 15 characters)`;
  if (o.bpf !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.bpf)) return `--bpf ${o.bpf}: use 1–64 characters from A–Z, a–z, 0–9, "_" and "-" (a directory name under /sys/fs/bpf)`;
  if (o.linkPool !== undefined) {
    const c = parseCidr(o.linkPool);
    if (!c.ok) return `--link-pool ${o.linkPool}: ${c.error}`;
    if (c.value.family !== 4 || c.value.len > 31) return `--link-pool ${o.linkPool}: must be an IPv4 prefix of /31 or shorter, e.g. 192.0.2.128/25`;
  }
  const level = (o.logLevel ?? 'info') as LogLevel;
  if (!LOG_LEVELS.includes(level)) return `--log-level ${o.logLevel}: use one of ${LOG_LEVELS.join(', ')}`;
  let listen: { host: string; port: number } | undefined;
  if (o.metrics !== undefined) {
    const l = parseListen(o.metrics);
    if (typeof l === 'string') return l;
    listen = l;
  }
  return { dc, server, level, ...(listen ? { listen } : {}) };
}

/** Runs the agent until told to stop; returns the exit code. */
export async function runAgent(o: AgentCliOptions, io: Io, control: AgentRunControl = {}): Promise<number> {
  const flags = checkFlags(o);
  if (typeof flags === 'string') {
    io.err(`${flags}\n`);
    return EXIT_USAGE;
  }
  const spec = parseStoreSpec(o.store);
  if (!spec.ok) return EXIT_USAGE; // checked above
  const detectEvery = parseDetectEvery(o.detectEvery);
  if (!detectEvery.ok) {
    io.err(`${detectEvery.error}\n`);
    return EXIT_USAGE;
  }
  const quiet = flags.level === 'info';
  const line = (e: Record<string, unknown>): void => io.err(`${JSON.stringify({ ts: new Date().toISOString(), ...e })}\n`);
  const log = (e: AgentEvent): void => {
    if (quiet && e.level === 'debug') return;
    line(e);
  };

  // Listen for the signal before anything slow, so a stop during start-up is not lost.
  const signal = control.until ? null : firstSignal();
  const until = control.until ?? (signal as { promise: Promise<string> }).promise;
  try {
    const bpfName = o.bpf ?? 'anyedge';
    const pins = edgePins(bpfName);
    if (!existsSync(pins.progs.xdpEdge)) {
      const loaded = await loadEdge(bpfName);
      if (!loaded.ok) {
        line({ level: 'error', event: 'error', stage: 'bpf', message: `${loaded.error.op}: ${loaded.error.message}` });
        return EXIT_INVALID;
      }
    }
    const marks = marksWith({ prefix: o.prefix ?? 'ae' });
    const env: ReconcileEnv = { kernel: linuxKernel(marks), bpf: linuxBpfMaps(pins), attach: linuxAttach(pins), steer: linuxSteerMaps(pins), dos: linuxDosMaps(pins.root), syn: new SynCookieMaps(pins) };
    const agent = new Agent({
      where: { dc: flags.dc, server: flags.server },
      openStore: () => openStore(spec.value),
      stateDir: o.stateDir,
      env,
      compile: { marks, serverNs: o.netns ?? null, ...(o.linkPool ? { linkPool: o.linkPool } : {}) },
      prober: pingProber,
      log,
    });
    let metricsServer: { port: number; close(): Promise<void> } | null = null;
    let observeDetection: AgentMetrics['detection'] | null = null;
    if (flags.listen) {
      const metrics = new AgentMetrics({ env, desired: () => agent.desired(), status: () => agent.snapshot() });
      observeDetection = metrics.detection;
      agent.onReconcile((seconds, outcome) => metrics.observeReconcile(seconds, outcome));
      try {
        metricsServer = await metrics.serve(flags.listen);
      } catch (e) {
        line({ level: 'error', event: 'error', stage: 'metrics', message: `--metrics ${o.metrics}: cannot listen: ${(e as Error).message}; pick a free port on an address of this machine` });
        return EXIT_INVALID;
      }
      line({ level: 'info', event: 'metrics', url: `http://${flags.listen.host.includes(':') ? `[${flags.listen.host}]` : flags.listen.host}:${metricsServer.port}/metrics` });
    }
    const started = await agent.start();
    if (!started.ok) {
      line({ level: 'error', event: 'error', stage: 'state', message: started.error.message });
      await metricsServer?.close();
      return EXIT_INVALID;
    }
    const detection = await startDetection({ agent, where: flags, bpfRoot: pins.root, every: detectEvery.value, log: line });
    if (!detection.ok) line({ level: 'error', event: 'error', stage: 'detect', message: detection.error });
    else if (observeDetection) {
      const m = observeDetection;
      detection.value?.onTick((r) => m.observe(r));
    }
    const why = await until;
    line({ level: 'info', event: 'stopping', signal: why });
    if (detection.ok) await detection.value?.stop();
    await agent.stop();
    await metricsServer?.close();
    return EXIT_OK;
  } finally {
    signal?.dispose();
  }
}

/** Adds `anyedge agent` to the program; `done` receives the exit code. */
export function registerAgentCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('agent')
    .description('run the per-server agent: follow the config store and keep this machine\'s kernel equal to the config for one server, until SIGTERM/SIGINT')
    .requiredOption('--server <dc/server>', 'which server this machine is, e.g. ams/s1')
    .requiredOption('--store <spec>', 'config store: lmdb:DIR or etcd:URL[,URL…][#PREFIX]')
    .requiredOption('--state-dir <dir>', 'directory for the agent\'s local replica of the config, e.g. /var/lib/anyedge')
    .option('--netns <ns>', 'act on this namespace as the server\'s default namespace (labs, tests)')
    .option('--prefix <prefix>', 'ownership prefix of everything made (default ae)')
    .option('--bpf <name>', 'bpffs directory of the edge programs (default anyedge)')
    .option('--link-pool <cidr>', 'reserved IPv4 pool for server↔tenant links (default 192.0.2.128/25)')
    .option('--metrics <host:port>', 'serve Prometheus /metrics there, e.g. 127.0.0.1:9474')
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(' or ')} (default info)`)
    .option('--detect-every <n>', 'attack detection samples 1 packet in N on the uplink XDP program (default 100; 0 turns detection off)')
    .action(async (o: AgentCliOptions) => {
      done(await runAgent(o, io));
    });
}
