/**
 * Per-namespace sysctls (forwarding, rp_filter, multipath hash policy …).
 *
 * How: the value is read with `cat` and written with `tee` on /proc/sys/<key as path>, both run
 * inside the namespace by `ip netns exec`. /proc/sys/net shows the network namespace of the
 * process that opens it, so the child must be in the namespace; a file opened by this process
 * would show the host's values. `tee` rather than `sysctl -w key=value` because the value then
 * travels on stdin, byte for byte: nothing splits it at `=` or reads it as an option, and the
 * kernel's own write error (EINVAL for a bad value) comes back on stderr. Keys are limited to
 * `net.*`: only that tree is per namespace, so writing anything else "inside" a namespace would
 * silently change the whole host.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { fromExec, kernelError, nsLabel, type KernelError } from './errors.ts';
import { inNs } from './iproute.ts';
import { checkNetnsName, type NsRef } from './netns.ts';
import { firstInvalid } from './validate.ts';

/** Sysctl operations. */
export interface SysctlApi {
  /** Reads a key (`net.ipv4.ip_forward`); whitespace runs in the value read as one space. */
  get(ns: NsRef, key: string): Promise<Result<string, KernelError>>;
  /** Writes a key; `not_found` for an unknown key, `invalid` for a value the kernel refuses. */
  set(ns: NsRef, key: string, value: string | number): Promise<Result<void, KernelError>>;
}

/**
 * Checks a key and returns its /proc/sys path. Dots separate components, as `sysctl` does; a key
 * may use slashes instead (`net/ipv4/conf/eth0.100/rp_filter`) to reach names containing dots.
 */
export function sysctlPath(op: string, ns: NsRef, key: string): string | KernelError {
  const parts = key.includes('/') ? key.split('/') : key.split('.');
  const bad = firstInvalid(
    op,
    ns,
    `${nsLabel(ns)}/sysctl/${key}`,
    ns === null ? null : checkNetnsName(ns),
    parts.every((p) => /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(p) && p !== '..' && p !== '.') ? null : `sysctl key ${JSON.stringify(key)} has an empty or invalid component`,
    parts[0] === 'net' && parts.length >= 2 ? null : `sysctl key ${key} is not under net.; only net.* is per network namespace, anything else would change the whole host`,
  );
  return bad ?? `/proc/sys/${parts.join('/')}`;
}

/** Checks a value: one line, as the kernel's proc handlers read one. */
export function checkSysctlValue(op: string, ns: NsRef, key: string, value: string): KernelError | null {
  // eslint-disable-next-line no-control-regex
  return firstInvalid(op, ns, `${nsLabel(ns)}/sysctl/${key}`, /[\n\r\u0000]/.test(value) ? 'sysctl value must be one line' : null);
}

/** The Linux driver. */
export function linuxSysctl(): SysctlApi {
  return {
    async get(ns, key) {
      const op = `sysctl ${key}`;
      const path = sysctlPath(op, ns, key);
      if (typeof path !== 'string') return err(path);
      const res = await inNs(ns, 'cat', [path]);
      if (!res.ok) return err(fromExec(op, ns, res.error, { path: `${nsLabel(ns)}/sysctl/${key}`, remedy: 'check the key name (`sysctl -a` inside the namespace lists them)' }));
      return ok(res.value.stdout.trim().replace(/\s+/g, ' '));
    },
    async set(ns, key, value) {
      const text = String(value);
      const op = `sysctl -w ${key}=${text}`;
      const path = sysctlPath(op, ns, key);
      if (typeof path !== 'string') return err(path);
      const bad = checkSysctlValue(op, ns, key, text);
      if (bad) return err(bad);
      const res = await inNs(ns, 'tee', [path], `${text}\n`);
      if (res.ok) return ok(undefined);
      const e = fromExec(op, ns, res.error, { path: `${nsLabel(ns)}/sysctl/${key}` });
      // tee reports a bad value as "Invalid argument" and an unknown key as "No such file …",
      // which classify() maps already; anything else (permission) stays `failed`.
      return err(e.code === 'failed' ? kernelError('failed', op, ns, e.message, { cause: res.error }) : e);
    },
  };
}
