/**
 * `anyedge proxy --listen SERVICE_IP:PORT --class trusted|untrusted --store SPEC --server DC/SERVER …`:
 * the egress proxy (src/proxy/) on one server, until SIGTERM or SIGINT. It follows the config
 * store for this server's egress addresses, serves HTTP CONNECT on the service address and, with
 * `--metrics`, Prometheus `/metrics` on a listener of its own. Logs one JSON line per event to
 * stderr: `{"ts":"…","level":"info","event":"listening","listen":"198.51.100.2:3128",…}`.
 *
 * The flags are a stable interface (the lab starts one proxy per server with them).
 *
 * Exit codes: 0 stopped by a signal, 1 could not start (store, config, listen), 2 a flag is wrong.
 */
import type { Command } from 'commander';
import type { Io } from './io.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { parseListen } from './agent.ts';
import { idProblem } from '../model/id.ts';
import { EGRESS_CLASSES } from '../model/egress.ts';
import { openStore, parseStoreSpec } from '../store/open.ts';
import { serveMetrics } from '../agent/metrics-http.ts';
import { checkCountry, labGeoTable, loadGeoTable, type GeoTable } from '../proxy/geoip.ts';
import { ConfigFollower } from '../proxy/config-follow.ts';
import { DEFAULT_TIME_WAIT_MS, ProxyServer, type ProxyEvent } from '../proxy/server.ts';
import type { EgressClassName } from '../proxy/egress-address.ts';
import { firstSignal } from './signals.ts';

/** The flags of `anyedge proxy`, as commander hands them over. */
export interface ProxyCliOptions {
  readonly listen: string;
  readonly class: string;
  readonly store: string;
  readonly server: string;
  readonly geoip?: string;
  readonly defaultCountry?: string;
  readonly fallbackCountry?: string;
  readonly metrics?: string;
  readonly connectTimeout?: string;
  readonly headTimeout?: string;
  readonly idleTimeout?: string;
  readonly timeWait?: string;
  readonly logLevel?: string;
}

/** How the run ends: by default the first SIGTERM or SIGINT. Tests pass their own. */
export interface ProxyRunControl {
  readonly until?: Promise<string>;
  /** Told the port bound once listening (tests listen on port 0). */
  readonly listening?: (port: number) => void;
}

interface Flags {
  readonly listen: { host: string; port: number };
  readonly class: EgressClassName;
  readonly dc: string;
  readonly server: string;
  readonly geo: GeoTable;
  readonly fallbackCountry: string | null;
  readonly metrics: { host: string; port: number } | null;
  readonly connectTimeoutMs: number;
  readonly headTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly timeWaitMs: number;
  readonly debug: boolean;
}

function listenOf(flag: string, text: string, example: string): { host: string; port: number } | string {
  const l = parseListen(text);
  return typeof l === 'string' ? `${flag} ${text}: give HOST:PORT, e.g. ${example} (port 0–65535)` : l;
}

/** A duration flag in `unit`, as milliseconds; `defMs` (already in ms) when absent. */
function msOf(flag: string, text: string | undefined, defMs: number, unit: 'ms' | 's'): number | string {
  if (text === undefined) return defMs;
  if (!/^\d{1,7}$/.test(text)) return `${flag} ${text}: give a whole number of ${unit === 'ms' ? 'milliseconds' : 'seconds'}, e.g. ${unit === 'ms' ? '5000' : '600'}`;
  return Number(text) * (unit === 's' ? 1000 : 1);
}

/** Checks every flag: the first problem, naming its flag, or the values. */
function checkFlags(o: ProxyCliOptions): string | Flags {
  const listen = listenOf('--listen', o.listen, '198.51.100.2:3128');
  if (typeof listen === 'string') return listen;
  if (!(EGRESS_CLASSES as readonly string[]).includes(o.class)) return `--class ${o.class}: use one of ${EGRESS_CLASSES.join(', ')} (the egress addresses this service leaves from)`;
  const [dc, server, ...rest] = o.server.split('/');
  if (!dc || !server || rest.length) return `--server ${o.server}: give it as DC/SERVER, e.g. ams/s1`;
  const bad = idProblem(dc, 'data center id') ?? idProblem(server, 'server id');
  if (bad) return `--server ${o.server}: ${bad}`;
  const spec = parseStoreSpec(o.store);
  if (!spec.ok) return spec.error;
  let defaultCountry: string | null = null;
  if (o.defaultCountry !== undefined) {
    const c = checkCountry(o.defaultCountry);
    if (!c.ok) return `--default-country: ${c.error}`;
    defaultCountry = c.value;
  }
  let fallbackCountry: string | null = null;
  if (o.fallbackCountry !== undefined) {
    const c = checkCountry(o.fallbackCountry);
    if (!c.ok) return `--fallback-country: ${c.error}`;
    fallbackCountry = c.value;
  }
  let geo: GeoTable;
  if (o.geoip === undefined) geo = labGeoTable(defaultCountry);
  else {
    const g = loadGeoTable(o.geoip, defaultCountry);
    if (!g.ok) return `--geoip ${o.geoip}: ${g.error.map((e) => e.message).join('; ')}`;
    geo = g.value;
  }
  let metrics: { host: string; port: number } | null = null;
  if (o.metrics !== undefined) {
    const m = listenOf('--metrics', o.metrics, '127.0.0.1:9475');
    if (typeof m === 'string') return m;
    metrics = m;
  }
  const connectTimeoutMs = msOf('--connect-timeout', o.connectTimeout, 5000, 'ms');
  if (typeof connectTimeoutMs === 'string') return connectTimeoutMs;
  if (connectTimeoutMs < 1) return `--connect-timeout ${o.connectTimeout}: must be at least 1 ms`;
  const headTimeoutMs = msOf('--head-timeout', o.headTimeout, 10_000, 'ms');
  if (typeof headTimeoutMs === 'string') return headTimeoutMs;
  if (headTimeoutMs < 1) return `--head-timeout ${o.headTimeout}: must be at least 1 ms`;
  const idleTimeoutMs = msOf('--idle-timeout', o.idleTimeout, 0, 's');
  if (typeof idleTimeoutMs === 'string') return idleTimeoutMs;
  const timeWaitMs = msOf('--time-wait', o.timeWait, DEFAULT_TIME_WAIT_MS, 's');
  if (typeof timeWaitMs === 'string') return timeWaitMs;
  const level = o.logLevel ?? 'info';
  if (level !== 'info' && level !== 'debug') return `--log-level ${o.logLevel}: use debug or info`;
  return { listen, class: o.class as EgressClassName, dc, server, geo, fallbackCountry, metrics, connectTimeoutMs, headTimeoutMs, idleTimeoutMs, timeWaitMs, debug: level === 'debug' };
}

/** Runs the proxy until told to stop; returns the exit code. */
export async function runProxy(o: ProxyCliOptions, io: Io, control: ProxyRunControl = {}): Promise<number> {
  const flags = checkFlags(o);
  if (typeof flags === 'string') {
    io.err(`${flags}\n`);
    return EXIT_USAGE;
  }
  const spec = parseStoreSpec(o.store);
  if (!spec.ok) return EXIT_USAGE; // checked above
  const log = (e: ProxyEvent): void => {
    if (e.level === 'debug' && !flags.debug) return;
    io.err(`${JSON.stringify({ ts: new Date().toISOString(), ...e })}\n`);
  };
  const signal = control.until ? null : firstSignal();
  const until = control.until ?? (signal as { promise: Promise<string> }).promise;
  const follower = new ConfigFollower({ openStore: () => openStore(spec.value), dc: flags.dc, server: flags.server, log });
  try {
    const started = await follower.start();
    if (!started.ok) {
      log({ level: 'error', event: 'error', stage: 'config', message: started.error });
      return EXIT_INVALID;
    }
    const proxy = new ProxyServer({
      class: flags.class,
      geo: flags.geo,
      addresses: () => follower.addresses(),
      fallbackCountry: flags.fallbackCountry,
      connectTimeoutMs: flags.connectTimeoutMs,
      headTimeoutMs: flags.headTimeoutMs,
      idleTimeoutMs: flags.idleTimeoutMs,
      timeWaitMs: flags.timeWaitMs,
      log,
    });
    let port: number;
    try {
      port = await proxy.listen(flags.listen.host, flags.listen.port);
    } catch (e) {
      log({ level: 'error', event: 'error', stage: 'listen', message: `--listen ${o.listen}: ${(e as Error).message}` });
      return EXIT_INVALID;
    }
    let metrics: { port: number; close(): Promise<void> } | null = null;
    if (flags.metrics) {
      try {
        metrics = await serveMetrics(proxy.metrics.registry, flags.metrics);
      } catch (e) {
        log({ level: 'error', event: 'error', stage: 'metrics', message: `--metrics ${o.metrics}: ${(e as Error).message}` });
        await proxy.close();
        return EXIT_INVALID;
      }
    }
    const host = flags.listen.host.includes(':') ? `[${flags.listen.host}]` : flags.listen.host;
    log({ level: 'info', event: 'listening', listen: `${host}:${port}`, class: flags.class, server: `${flags.dc}/${flags.server}`, addresses: follower.addresses().length, ...(metrics ? { metricsPort: metrics.port } : {}) });
    control.listening?.(port);
    const why = await until;
    log({ level: 'info', event: 'stopping', signal: why });
    await proxy.close();
    await metrics?.close();
    return EXIT_OK;
  } finally {
    await follower.stop();
    signal?.dispose();
  }
}

/** Adds `anyedge proxy` to the program; `done` receives the exit code. */
export function registerProxyCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('proxy')
    .description('run the egress proxy (HTTP CONNECT) on a service address: tunnels leave from this server\'s egress address tagged with the eyeball\'s country and the service\'s class, until SIGTERM/SIGINT')
    .requiredOption('--listen <ip:port>', 'service address and port to accept CONNECT on, e.g. 198.51.100.2:3128')
    .requiredOption('--class <class>', `egress class of this service: ${EGRESS_CLASSES.join(' or ')}`)
    .requiredOption('--store <spec>', 'config store: lmdb:DIR or etcd:URL[,URL…][#PREFIX]')
    .requiredOption('--server <dc/server>', 'which server this machine is, e.g. ams/s1')
    .option('--geoip <file>', 'GeoIP table, CSV rows "prefix,country" (RFC 8805 layout); default: the lab table (192.0.2.0/25 NL, 192.0.2.128/25 US, 2001:db8::/33 NL, 2001:db8:8000::/33 US)')
    .option('--default-country <cc>', 'country of eyeballs in no prefix of the table (default: refuse them with 403)')
    .option('--fallback-country <cc>', 'leave from this country when the server has no address in the eyeball\'s (default: refuse with 503)')
    .option('--metrics <host:port>', 'serve Prometheus /metrics there, e.g. 127.0.0.1:9475')
    .option('--connect-timeout <ms>', 'upstream connect timeout per egress address, in ms (default 5000)')
    .option('--head-timeout <ms>', 'time allowed for the request head, in ms (default 10000)')
    .option('--idle-timeout <s>', 'close tunnels idle this many seconds (default 0: never)')
    .option('--time-wait <s>', 'seconds a closed tunnel\'s NAT port stays counted towards its destination, as conntrack holds it in TIME_WAIT (default 120, the kernel\'s; 0: not counted)')
    .option('--log-level <level>', 'debug (one line per tunnel) or info (default)')
    .action(async (o: ProxyCliOptions) => {
      done(await runProxy(o, io));
    });
}
