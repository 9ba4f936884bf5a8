/**
 * How the Linux drivers call iproute2 and friends: argv arrays through `exec.ts`, `-n NETNS` to
 * act inside a namespace (iproute2 enters it with setns for that one command), `ip netns exec` for
 * tools without a netns flag (nft, tc, cat, tee), and JSON output parsed, never scraped.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { run, type ExecError } from './exec.ts';
import { fromExec, kernelError, type KernelError } from './errors.ts';
import type { NsRef } from './netns.ts';

/** Runs `ip [-n ns] args…`. */
export function ip(ns: NsRef, args: readonly string[], input?: string): Promise<Result<{ stdout: string; stderr: string }, ExecError>> {
  return run('ip', [...(ns === null ? [] : ['-n', ns]), ...args], input === undefined ? {} : { input });
}

/** Runs a tool inside a namespace (`ip netns exec ns cmd args…`), or directly for the host. */
export function inNs(ns: NsRef, cmd: string, args: readonly string[], input?: string): Promise<Result<{ stdout: string; stderr: string }, ExecError>> {
  const opts = input === undefined ? {} : { input };
  return ns === null ? run(cmd, args, opts) : run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

/**
 * Runs `ip -j [-n ns] args…` and parses the JSON. iproute2 prints nothing at all (not `[]`) for
 * some empty dumps, which is read as an empty list.
 */
export async function ipJson<T>(ns: NsRef, args: readonly string[], op: string): Promise<Result<T[], KernelError>> {
  const res = await ip(ns, ['-j', ...args]);
  if (!res.ok) return err(fromExec(op, ns, res.error));
  return parseJsonList<T>(res.value.stdout, op, ns);
}

/** Parses a JSON array printed by a tool; blank output is an empty list. */
export function parseJsonList<T>(stdout: string, op: string, ns: NsRef): Result<T[], KernelError> {
  const text = stdout.trim();
  if (text === '') return ok([]);
  try {
    const v: unknown = JSON.parse(text);
    if (!Array.isArray(v)) return err(kernelError('failed', op, ns, 'the tool printed JSON that is not a list', { remedy: 'report this with the iproute2 version (ip -V)' }));
    return ok(v as T[]);
  } catch (e) {
    return err(kernelError('failed', op, ns, `unreadable JSON output: ${(e as Error).message}`, { remedy: 'report this with the iproute2 version (ip -V)', cause: e as Error }));
  }
}

/** Turns a command result into `Result<void, KernelError>`. */
export function voidOf(res: Result<unknown, ExecError>, op: string, ns: NsRef, opts: { path?: string; remedy?: string } = {}): Result<void, KernelError> {
  return res.ok ? ok(undefined) : err(fromExec(op, ns, res.error, opts));
}
