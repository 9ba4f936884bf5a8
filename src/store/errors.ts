/**
 * Builders of the {@link StoreError}s both backends return, so a refused or failed write reads the
 * same on LMDB and etcd, plus `deepFreeze` for the values a validator is shown.
 */
import { formatIssue, type Issue } from '../model/issue.ts';
import type { CheckedOp } from './request.ts';
import type { Condition, Expect, StoreError } from './types.ts';

/** An `unavailable` error; `cause` and `key` only when given. */
export function unavailable(message: string, cause?: unknown, key?: string): StoreError {
  return { code: 'unavailable', message, ...(cause === undefined ? {} : { cause }), ...(key === undefined ? {} : { key }) };
}

/** `absent`, `modRevision 7` or `version 2`. */
export function describeExpect(e: Expect): string {
  const n = 'modRevision' in e ? e.modRevision : e.version;
  return n === 0 ? 'absent' : 'modRevision' in e ? `modRevision ${n}` : `version ${n}`;
}

/**
 * The `cas_failed` error when `c` does not hold for a key whose state is `actual` (undefined:
 * absent), or undefined when it holds.
 */
export function casFailed(op: string, c: Condition, actual: { readonly modRevision: number; readonly version: number } | undefined): StoreError | undefined {
  const state = actual ?? { modRevision: 0, version: 0 };
  const holds = 'modRevision' in c ? state.modRevision === c.modRevision : state.version === c.version;
  if (holds) return undefined;
  const expected: Expect = 'modRevision' in c ? { modRevision: c.modRevision } : { version: c.version };
  const now = actual ? `modRevision ${state.modRevision}, version ${state.version}` : 'absent';
  return {
    code: 'cas_failed',
    key: c.key,
    expected,
    actual: { modRevision: state.modRevision, version: state.version },
    message: `${op}: condition on ${c.key} failed: it is ${now}, expected ${describeExpect(expected)}; re-read ${c.key} and retry`,
  };
}

/** The `invalid` error of a write (`op` = the caller's operation) refused for `issues`. */
export function refused(op: string, ops: readonly CheckedOp[], issues: readonly Issue[]): StoreError {
  const first = ops[0];
  const key = first && first.op !== 'deletePrefix' ? first.key : undefined;
  const subject = op === 'txn' ? op : `${op} ${first?.op === 'deletePrefix' ? first.prefix : key}`;
  const shown = issues.slice(0, 3).map(formatIssue);
  return {
    code: 'invalid',
    issues,
    ...(key === undefined ? {} : { key }),
    message: `${subject}: refused, the write would add ${issues.length} issue(s) to the config: ${shown.join('; ')}${issues.length > 3 ? '; …' : ''}; nothing was written`,
  };
}

/**
 * Freezes a decoded JSON value and everything in it: a validator is handed the stores' own
 * values, and one that modified them would corrupt later validations.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Thrown out of a write when the validator itself throws: that is a bug, not a refusal. */
export class ValidatorThrew {
  constructor(readonly cause: unknown) {}
}
