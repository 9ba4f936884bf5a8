/**
 * What the agent daemon needs for the DoS step each reconcile: the input of the step (or none
 * when the env has no DoS maps), a key that changes exactly when the rules in force change (so a
 * firewall-only fast path is not taken past a DoS change), and when the rules next expire (so the
 * daemon re-plans then and an expired rule stops being enforced without any config change).
 *
 * A rule that cannot be compiled (too many masks, a full key, a tenant scope that selects nothing)
 * is refused on its own: it is left out, reported, and every other rule and the rest of the
 * config are still applied. Otherwise one bad rule — an operator's, or one attack detection wrote
 * — would freeze every server's config until someone noticed.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import { compileDos, type DosCompileError } from '../compile/dos/compile.ts';
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
  /** Rules left out because they do not compile here, with why; the others are enforced. */
  readonly refused: readonly DosCompileError[];
}

/** Longest delay a Node timer takes (a longer one fires at once); the agent re-arms after it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The rule id of a compile error's path (`/dos/rules/<id>/…`). */
function ruleIdOf(path: string): string | undefined {
  const m = /^\/dos\/rules\/([^/]+)/.exec(path);
  return m?.[1];
}

/** Rounds of refusing rules: each round removes every rule named by an error, so few are needed. */
const MAX_REFUSAL_ROUNDS = 8;

/**
 * Compiles the DoS rules of `dc` at `now` to check them and find the next expiry. Rules that do
 * not compile are left out (`refused`); an error is returned only when the errors name no rule.
 */
export function dosPass(env: ReconcileEnv, config: Config, dc: string, now: number): Result<DosPass, string> {
  if (!env.dos) return ok({ more: {}, key: null, refused: [] });
  let cfg = config;
  const refused: DosCompileError[] = [];
  for (let round = 0; round < MAX_REFUSAL_ROUNDS; round++) {
    const t = compileDos(cfg, { dc, now });
    if (!t.ok) {
      const ids = new Set(t.error.map((e) => ruleIdOf(e.path)).filter((id): id is string => id !== undefined));
      if (ids.size === 0) return err(formatDosErrors(t.error));
      refused.push(...t.error);
      cfg = { ...cfg, dos: { rules: Object.fromEntries(Object.entries(cfg.dos.rules).filter(([id]) => !ids.has(id))) } };
      continue;
    }
    // The key ignores slots (the kernel's may differ): compiled without them, it only moves with the rules.
    const key = formatDos(t.value);
    const next = t.value.nextExpiry;
    return ok({
      more: { dos: { config: cfg, dc, now } },
      key,
      refused,
      // One millisecond after: at `expires` itself the rule is already out (expires <= now).
      ...(next !== undefined ? { expiryInMs: Math.min(MAX_TIMER_MS, Math.max(0, Date.parse(next) - now) + 1) } : {}),
    });
  }
  return err(formatDosErrors(refused));
}
