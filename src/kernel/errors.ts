/**
 * The one error type of the kernel boundary. Expected failures (the object exists, a link is
 * missing, the kernel refuses a value) are values with a `code` a reconciler can branch on; the
 * message says what was attempted, why it failed and what to do. The fake and the Linux drivers
 * return the same codes for the same mistakes, which the contract suite checks.
 */
import type { ExecError } from './exec.ts';

/**
 * - `exists`: the object (or one with the same key) is already there.
 * - `not_found`: a namespace, link, table or chain the operation needs is missing.
 * - `invalid`: the request is malformed or the kernel refuses it in the current state
 *   (link down, gateway not on a connected subnet, not our object).
 * - `failed`: anything else, including a command that could not run.
 * - `unsupported`: the kernel or this driver lacks the feature.
 */
export type KernelErrorCode = 'exists' | 'not_found' | 'invalid' | 'failed' | 'unsupported';

/** A failed kernel operation. */
export interface KernelError {
  readonly code: KernelErrorCode;
  /** The operation in `ip` words, e.g. `route replace 203.0.113.0/25 table 100`. */
  readonly op: string;
  /** Where: `<netns or host>/<kind>/<name>`, e.g. `ae-acme/link/aeacme0`. */
  readonly path?: string;
  /** What was attempted, why it failed, and what to do. */
  readonly message: string;
  /** The command failure or exception underneath, kept for logs. */
  readonly cause?: ExecError | Error;
}

/** The namespace part of a path: the netns name, or `host` for the agent's own namespace. */
export function nsLabel(ns: string | null): string {
  return ns ?? 'host';
}

const REMEDY: Record<KernelErrorCode, string> = {
  exists: 'it is already there; delete it first, or use replace where the object supports it',
  not_found: 'create the missing namespace, link, table or chain first, or check the name',
  invalid: 'fix the request as the reason says',
  failed: 'check the kernel log (dmesg) and that the command runs as root',
  unsupported: 'this kernel or driver lacks the feature; run the feature probe (kernel/probe.ts) to see what is missing',
};

/** Builds an error; the remedy defaults to the generic one for the code. */
export function kernelError(
  code: KernelErrorCode,
  op: string,
  ns: string | null,
  reason: string,
  opts: { path?: string; remedy?: string; cause?: ExecError | Error } = {},
): KernelError {
  const where = ns === null ? '' : ` in netns ${ns}`;
  const e: KernelError = {
    code,
    op,
    message: `${op}${where}: ${reason}; ${opts.remedy ?? REMEDY[code]}`,
    ...(opts.path !== undefined ? { path: opts.path } : {}),
    ...(opts.cause !== undefined ? { cause: opts.cause } : {}),
  };
  return e;
}

/**
 * Maps the text a tool printed to a code. Ordered: the namespace/device-missing texts contain the
 * word "Invalid" ("Invalid "netns" value"), so they are matched before the generic invalid ones.
 */
export function classify(stderr: string): KernelErrorCode {
  const s = stderr;
  if (/File exists|already assigned|already exists|with the same name exists/i.test(s)) return 'exists';
  if (
    /Cannot find device|Cannot open network namespace|Invalid "netns" value|No such file or directory|No such device|No such process|does not exist|not found|Cannot remove namespace file/i.test(
      s,
    )
  )
    return 'not_found';
  if (/Operation not supported|Address family not supported|Protocol not supported|not supported by|Unknown device type|command not found/i.test(s))
    return 'unsupported';
  if (
    /Invalid argument|invalid|not up|No route to host|Network is unreachable|out of range|Cannot assign requested address|can not be|Device or resource busy|Numerical result|mtu (greater|less) than/i.test(
      s,
    )
  )
    return 'invalid';
  return 'failed';
}

/** The kernel's reason in one line: the last meaningful stderr line without tool prefixes. */
export function reasonOf(e: ExecError): string {
  const lines = e.stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && l !== 'Dump terminated' && !/^\^+$/.test(l) && !/^Parsing command array/.test(l));
  const line = lines.find((l) => /Error|RTNETLINK|Cannot|cannot|No such|Invalid|invalid|exists/.test(l)) ?? lines[0] ?? e.message;
  return line.replace(/^RTNETLINK answers:\s*/, '').replace(/^(internal:\S+\s*)?Error:\s*/, '').replace(/\.$/, '');
}

/** Turns a failed command into a KernelError, classifying its stderr. */
export function fromExec(op: string, ns: string | null, e: ExecError, opts: { path?: string; remedy?: string } = {}): KernelError {
  const code = e.code === 'exec_not_found' ? 'unsupported' : classify(e.stderr);
  const reason = e.code === 'exec_not_found' ? e.message : reasonOf(e);
  return kernelError(code, op, ns, reason, { ...opts, cause: e });
}
