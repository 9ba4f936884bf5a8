/**
 * Runs a system command with an argv array (never a shell string) and returns its output or a
 * typed error. Every call into `ip`, `nft`, `bpftool` goes through here.
 */
import { spawn } from 'node:child_process';
import { err, ok, type Result } from '../lib/result.ts';

/** A command that could not run or exited non-zero. */
export interface ExecError {
  readonly code: 'exec_failed' | 'exec_not_found';
  /** The command line, for the message; arguments are shown as JSON strings so nothing is ambiguous. */
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;
  /** What the command printed before failing (ping's statistics, say); absent when it never ran. */
  readonly stdout?: string;
  readonly message: string;
}

/** Output of a successful command. */
export interface ExecOutput {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd args…`, feeding `input` on stdin; resolves with stdout/stderr or an ExecError. */
export function run(cmd: string, args: readonly string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<Result<ExecOutput, ExecError>> {
  const command = [cmd, ...args.map((a) => JSON.stringify(a))].join(' ');
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 30_000 });
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => errs.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => {
      const notFound = e.code === 'ENOENT';
      resolve(
        err({
          code: notFound ? 'exec_not_found' : 'exec_failed',
          command,
          exitCode: null,
          stderr: '',
          message: notFound ? `${cmd}: command not found; install it (scripts/setup.sh)` : `${command}: ${e.message}`,
        }),
      );
    });
    child.on('close', (status) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(errs).toString('utf8');
      if (status === 0) resolve(ok({ stdout, stderr }));
      else
        resolve(
          err({ code: 'exec_failed', command, exitCode: status, stderr, stdout, message: `${command}: exit ${status}: ${stderr.trim() || stdout.trim()}` }),
        );
    });
    child.stdin.on('error', () => {
      /* the command may exit before reading its input; its exit status tells what happened */
    });
    child.stdin.end(opts.input ?? '');
  });
}
