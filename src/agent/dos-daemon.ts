/**
 * What the agent daemon needs for the DoS step each reconcile: the input of the step (or none
 * when the env has no DoS maps), a key that changes exactly when the rules in force change (so a
 * firewall-only fast path is not taken past a DoS change), and when the rules next expire (so the
 * daemon re-plans then and an expired rule stops being enforced without any config change).
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import { compileDos } from '../compile/dos/compile.ts';
import { formatDos } from '../compile/dos/format.ts';
import { formatDosErrors, type DosInput } from './dos-reconcile.ts';
import type { ReconcileEnv } from './reconcile.ts';

/** One reconcile's DoS part. */
export interface DosPass {
  /** What to give `plan` (empty without DoS maps). */
  readonly more: { readonly dos?: DosInput };
  /** The rules in force as text; null without DoS maps. */
  readonly key: string | null;
  /** Milliseconds from `now` until the next expiry, capped to what a timer can wait; absent when none expires. */
  readonly expiryInMs?: number;
}

/** Longest delay a Node timer takes (a longer one fires at once); the agent re-arms after it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Compiles the DoS rules of `dc` at `now` to check them and find the next expiry. */
export function dosPass(env: ReconcileEnv, config: Config, dc: string, now: number): Result<DosPass, string> {
  if (!env.dos) return ok({ more: {}, key: null });
  const t = compileDos(config, { dc, now });
  if (!t.ok) return err(formatDosErrors(t.error));
  // The key ignores slots (the kernel's may differ): compiled without them, it only moves with the rules.
  const key = formatDos(t.value);
  const next = t.value.nextExpiry;
  return ok({
    more: { dos: { config, dc, now } },
    key,
    // One millisecond after: at `expires` itself the rule is already out (expires <= now).
    ...(next !== undefined ? { expiryInMs: Math.min(MAX_TIMER_MS, Math.max(0, Date.parse(next) - now) + 1) } : {}),
  });
}
