/**
 * `anyedge api --store SPEC --listen HOST:PORT --operator-token-hash-file FILE [--body-limit BYTES]
 * [--rate PER_SEC] [--burst N]`: serves the REST API (src/api) over the config store until
 * SIGTERM or SIGINT, then closes the socket and the store and exits 0. Prints
 * `listening on http://HOST:PORT` once the socket is bound (port 0 picks a free one).
 *
 * The hash file holds one `sha256:<hex>` per line (`anyedge token new` prints one); the API never
 * sees, stores or logs an operator token itself.
 *
 * Exit codes: 0 stopped by a signal, 1 the store could not be opened or the address bound,
 * 2 a flag or the hash file is wrong.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Io } from './io.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { openStore, parseStoreSpec, type StoreSpec } from '../store/open.ts';
import { createApi, DEFAULT_BODY_LIMIT, DEFAULT_RATE_LIMIT } from '../api/app.ts';
import { serveApi } from '../api/serve.ts';
import { parseTokenHashFile } from '../api/tokens.ts';
import { rateLimitProblem, type RateLimit } from '../api/rate-limit.ts';

/** The flags of `anyedge api`, as commander hands them over. */
export interface ApiCliOptions {
  readonly store: string;
  readonly listen: string;
  readonly operatorTokenHashFile: string;
  readonly bodyLimit?: string;
  readonly rate?: string;
  readonly burst?: string;
}

/** How the run ends: by default the first SIGTERM or SIGINT. Tests pass their own. */
export interface ApiRunControl {
  readonly until?: Promise<unknown>;
}

/** `HOST:PORT` or `[IPv6]:PORT`; the error names the flag. */
export function parseListenAddress(text: string): { host: string; port: number } | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) return `--listen ${text}: give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (port 0–65535, 0 = any free port)`;
  return { host: (m[1] ?? m[2])!, port };
}

interface Checked {
  readonly spec: StoreSpec;
  readonly listen: { host: string; port: number };
  readonly bodyLimit: number;
  readonly rate: RateLimit;
}

/** Every flag checked; the problems, each naming its flag. */
function checkFlags(o: ApiCliOptions): Checked | string[] {
  const problems: string[] = [];
  const spec = parseStoreSpec(o.store);
  if (!spec.ok) problems.push(spec.error);
  const listen = parseListenAddress(o.listen);
  if (typeof listen === 'string') problems.push(listen);
  const num = (flag: string, text: string | undefined, fallback: number): number => {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n)) problems.push(`${flag} ${text}: not a number`);
    return n;
  };
  const bodyLimit = num('--body-limit', o.bodyLimit, DEFAULT_BODY_LIMIT);
  if (o.bodyLimit !== undefined && (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1)) problems.push(`--body-limit ${o.bodyLimit}: give the largest request body in bytes, e.g. 1048576`);
  const rate: RateLimit = { perSecond: num('--rate', o.rate, DEFAULT_RATE_LIMIT.perSecond), burst: num('--burst', o.burst, DEFAULT_RATE_LIMIT.burst) };
  const rp = rateLimitProblem(rate);
  if (rp !== undefined) problems.push(`--rate/--burst: ${rp}`);
  if (problems.length || !spec.ok || typeof listen === 'string') return problems;
  return { spec: spec.value, listen, bodyLimit, rate };
}

/** The first SIGTERM or SIGINT. */
function signalled(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(sig);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

/** Runs the API until `control.until` (default: a signal); returns the exit code. */
export async function runApi(o: ApiCliOptions, io: Io, control: ApiRunControl = {}): Promise<number> {
  const flags = checkFlags(o);
  if (Array.isArray(flags)) {
    for (const p of flags) io.err(`anyedge api: ${p}\n`);
    return EXIT_USAGE;
  }
  let text: string;
  try {
    text = await readFile(o.operatorTokenHashFile, 'utf8');
  } catch (e) {
    io.err(`anyedge api: --operator-token-hash-file ${o.operatorTokenHashFile}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); create it with one line per hash from anyedge token new\n`);
    return EXIT_USAGE;
  }
  const hashes = parseTokenHashFile(text, o.operatorTokenHashFile);
  if (!hashes.ok) {
    for (const p of hashes.error) io.err(`anyedge api: ${p}\n`);
    return EXIT_USAGE;
  }
  const store = await openStore(flags.spec);
  if (!store.ok) {
    io.err(`anyedge api: --store ${o.store}: ${store.error.message}\n`);
    return EXIT_INVALID;
  }
  try {
    const app = createApi({ store: store.value, operatorTokenHashes: hashes.value, bodyLimitBytes: flags.bodyLimit, rateLimit: flags.rate });
    let served;
    try {
      served = await serveApi(app, flags.listen);
    } catch (e) {
      io.err(`anyedge api: --listen ${o.listen}: ${(e as Error).message}\n`);
      return EXIT_INVALID;
    }
    io.out(`listening on ${served.url}\n`);
    await (control.until ?? signalled());
    await served.close();
    return EXIT_OK;
  } finally {
    await store.value.close();
  }
}

/** Registers `api`. */
export function registerApiCommand(program: Command, io: Io, setCode: (code: number) => void): void {
  program
    .command('api')
    .description('serve the REST API (OpenAPI at /openapi.json) over the config store until SIGTERM/SIGINT')
    .requiredOption('--store <spec>', 'config store: lmdb:DIR or etcd:URL[,URL…][#PREFIX]')
    .requiredOption('--listen <host:port>', 'address to listen on, e.g. 127.0.0.1:8080 (port 0: any free port)')
    .requiredOption('--operator-token-hash-file <file>', 'file with one operator token hash per line (anyedge token new prints one)')
    .option('--body-limit <bytes>', `largest request body (default ${DEFAULT_BODY_LIMIT})`)
    .option('--rate <per-second>', `requests per second per token or address (default ${DEFAULT_RATE_LIMIT.perSecond})`)
    .option('--burst <n>', `requests a caller may send at once (default ${DEFAULT_RATE_LIMIT.burst})`)
    .action(async (o: ApiCliOptions) => {
      setCode(await runApi(o, io));
    });
}
