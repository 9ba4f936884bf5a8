/**
 * The lab's long-running processes (etcd, BIRD, agents, echo services): started detached, so they
 * outlive `lab up`, with their output in a log file; found again by pid (from the state file) or,
 * after a crash, by the lab's mark in their command line; stopped with SIGTERM, then SIGKILL.
 *
 * A pid is only signalled while its command line still carries the mark, so a pid reused by an
 * unrelated process after ours died is never touched.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';

/** The argv of a running process, or null when it is gone (or not readable). */
export function cmdlineOf(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return null; // a zombie or a kernel thread
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return null;
  }
}

/**
 * Whether an argv carries a lab's mark: one argument contains `<prefix>-` (a node or pin name)
 * or `/<prefix>/` (a path under the lab's run directory).
 */
export function carriesMark(argv: readonly string[], prefix: string): boolean {
  return argv.some((a) => a.includes(`${prefix}-`) || a.includes(`/${prefix}/`) || a.includes(`/${prefix}-`));
}

/** Pids of processes carrying the mark, except this process and its ancestors. */
export function findMarked(prefix: string): number[] {
  const skip = new Set<number>([process.pid, process.ppid]);
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    if (skip.has(pid)) continue;
    const argv = cmdlineOf(pid);
    if (argv && carriesMark(argv, prefix)) out.push(pid);
  }
  return out.sort((a, b) => a - b);
}

/** Starts `argv` detached (its own session), stdout and stderr appended to `log`; returns its pid. */
export function spawnDetached(path: string, argv: readonly string[], log: string, env?: NodeJS.ProcessEnv): Result<number, LabError> {
  let fd: number;
  try {
    fd = openSync(log, 'a');
  } catch (e) {
    return err({ code: 'failed', path, message: `cannot open the log ${log}: ${(e as Error).message}`, cause: e });
  }
  try {
    const child = spawn(argv[0] as string, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], ...(env ? { env } : {}) });
    child.unref();
    if (child.pid === undefined) return err({ code: 'failed', path, message: `${argv[0]} did not start; is it installed? (scripts/setup.sh)` });
    return ok(child.pid);
  } finally {
    closeSync(fd);
  }
}

/** Whether a pid is alive and still carries the mark. */
export function aliveWithMark(pid: number, prefix: string): boolean {
  const argv = cmdlineOf(pid);
  return argv !== null && carriesMark(argv, prefix);
}

/** SIGTERM to every pid still carrying the mark, SIGKILL to those left after `graceMs`. Returns those signalled. */
export async function stopMarked(pids: readonly number[], prefix: string, graceMs = 3000): Promise<number[]> {
  const ours = pids.filter((p) => aliveWithMark(p, prefix));
  for (const p of ours) signal(p, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && ours.some((p) => aliveWithMark(p, prefix))) await sleep(50);
  for (const p of ours) if (aliveWithMark(p, prefix)) signal(p, 'SIGKILL');
  const killDeadline = Date.now() + 2000;
  while (Date.now() < killDeadline && ours.some((p) => aliveWithMark(p, prefix))) await sleep(20);
  return ours;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
