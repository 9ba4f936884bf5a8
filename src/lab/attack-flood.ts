/**
 * The attacker of `lab attack`: hping3 in an eyeball's namespace, bounded twice — by a packet
 * count (`-c`, honoured only without `--flood`, so the rate comes from `-i u<µs>`) and by time
 * (`timeout -s INT`, which makes hping3 print its statistics and stop even if this process dies).
 * Packets carry the eyeball's own source address: no `--rand-source`, so nothing leaves the
 * documentation ranges and every reply goes back into the lab.
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';

/** The two floods. */
export const FLOOD_KINDS = ['syn', 'udp'] as const;
export type FloodKind = (typeof FLOOD_KINDS)[number];

/**
 * The UDP flood's payload: the signature a mitigation rule matches (payload bytes at offset 0,
 * at most the 16 an XDP rule compares). Printable, so a capture shows it.
 */
export const UDP_SIGNATURE = Buffer.from('ANYEDGE-LABFLOOD', 'ascii');

/** One flood. */
export interface FloodSpec {
  readonly kind: FloodKind;
  /** The attacking node's full netns name. */
  readonly ns: string;
  readonly target: string;
  readonly port: number;
  /** Packets at most. */
  readonly count: number;
  /** Microseconds between packets (hping3's `-i u…`); the achieved rate is lower on a busy machine. */
  readonly intervalUs: number;
  /** Seconds at most. */
  readonly seconds: number;
  /** File holding UDP_SIGNATURE (the UDP flood's payload); written by `writeSignature`. */
  readonly payloadFile?: string;
}

/** What hping3 reported when it stopped. */
export interface FloodResult {
  readonly kind: FloodKind;
  readonly transmitted: number;
  readonly received: number;
  readonly seconds: number;
  /** Packets per second hping3 achieved. */
  readonly pps: number;
}

/** Writes the UDP flood's payload file. */
export async function writeSignature(path: string): Promise<void> {
  await writeFile(path, UDP_SIGNATURE);
}

/** The argv of one flood (pure): `ip netns exec NS timeout -s INT S hping3 …`. */
export function floodArgv(s: FloodSpec): string[] {
  const kind =
    s.kind === 'syn'
      ? ['-S']
      : ['--udp', '-d', String(UDP_SIGNATURE.length), ...(s.payloadFile ? ['-E', s.payloadFile] : [])];
  return ['ip', 'netns', 'exec', s.ns, 'timeout', '-s', 'INT', String(s.seconds), 'hping3', '-q', ...kind, '-p', String(s.port), '-c', String(s.count), '-i', `u${s.intervalUs}`, s.target];
}

/** hping3's closing statistics: `N packets transmitted, M packets received, …`; null when absent. */
export function parseHpingStats(text: string): { transmitted: number; received: number } | null {
  const m = /(\d+) packets transmitted, (\d+) packets received/.exec(text);
  return m ? { transmitted: Number(m[1]), received: Number(m[2]) } : null;
}

/** A running flood. */
export interface Flood {
  /** Resolves when hping3 has stopped (count reached, time up, or `stop()`). */
  readonly done: Promise<Result<FloodResult, LabError>>;
  /** Stops it early (SIGINT: hping3 still prints its statistics). */
  stop(): void;
}

/** Starts a flood; `done` carries hping3's own count of what it sent. */
export function startFlood(s: FloodSpec): Flood {
  if (s.kind === 'udp' && !s.payloadFile) throw new Error('startFlood: a UDP flood needs payloadFile (writeSignature)');
  const [cmd, ...args] = floodArgv(s);
  const t0 = Date.now();
  const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => void (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => void (out += b.toString()));
  const done = new Promise<Result<FloodResult, LabError>>((resolve) => {
    child.on('error', (e) => resolve(err({ code: 'failed', path: 'flood', message: `hping3 in ${s.ns}: ${e.message}; is hping3 installed (scripts/setup.sh)?`, cause: e })));
    child.on('close', (code) => {
      const seconds = (Date.now() - t0) / 1000;
      const st = parseHpingStats(out);
      if (!st) return resolve(err({ code: 'failed', path: 'flood', message: `hping3 in ${s.ns} exited ${code} without statistics: ${out.trim().slice(-400) || '(no output)'}` }));
      resolve(ok({ kind: s.kind, ...st, seconds, pps: st.transmitted / Math.max(seconds, 1e-3) }));
    });
  });
  return { done, stop: () => void child.kill('SIGINT') };
}
