/**
 * Guards for tests that need root or an external tool. Locally a missing requirement skips the
 * test with the reason; under CI (CI=true) it fails, so a CI run can never pass by skipping.
 */
import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const inCI = process.env.CI === 'true';

/** Whether an executable is on PATH (or is an absolute path that exists and runs). */
export function hasTool(tool: string): boolean {
  const res = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' });
  return res.status === 0;
}

/** Whether this process runs as root. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Returns true when the test may go on. Otherwise skips it (locally) or throws (under CI) with
 * a message that says what to install.
 */
export function needs(t: TestContext, req: { root?: boolean; tools?: readonly string[]; python?: readonly string[] }): boolean {
  const missing: string[] = [];
  if (req.root && !isRoot()) missing.push('root privileges');
  for (const tool of req.tools ?? []) if (!hasTool(tool)) missing.push(`the "${tool}" command`);
  for (const mod of req.python ?? []) {
    const res = spawnSync('/usr/bin/python3', ['-c', `import ${mod}`], { stdio: 'ignore' });
    if (res.status !== 0) missing.push(`the python module "${mod}" for /usr/bin/python3`);
  }
  if (missing.length === 0) return true;
  const reason = `needs ${missing.join(', ')}; run scripts/setup.sh as root to install them`;
  if (inCI) throw new Error(`${reason} (CI=true: a missing requirement fails instead of skipping)`);
  t.skip(reason);
  return false;
}
