/**
 * The backend-neutral half of write validation: which writes need it, and which issues a write
 * introduced. A backend supplies the keyspace before and after its write.
 */
import type { Issue } from '../model/issue.ts';
import type { CheckedOp } from './request.ts';
import type { ValidationOptions } from './types.ts';
import type { KeyspaceValidator } from './validator.ts';

/** Validation settings with defaults filled in. */
export interface ResolvedValidation {
  readonly validator: KeyspaceValidator;
  readonly roots: readonly string[];
}

/** Fills in the default roots (`['/']`: everything). */
export function resolveValidation(options: ValidationOptions | undefined): ResolvedValidation | undefined {
  if (!options) return undefined;
  return { validator: options.validator, roots: options.roots && options.roots.length ? [...options.roots] : ['/'] };
}

/** Whether `key` falls under one of `roots`. */
export function underRoots(key: string, roots: readonly string[]): boolean {
  return roots.some((r) => key.startsWith(r));
}

/**
 * Whether an op can change a validated key. A deletePrefix counts when its range and a root
 * overlap in either direction (`/tenants/` under root `/`, or `/` over root `/tenants/`).
 */
export function opTouchesRoots(op: CheckedOp, roots: readonly string[]): boolean {
  if (op.op === 'deletePrefix') return roots.some((r) => r.startsWith(op.prefix) || op.prefix.startsWith(r));
  return underRoots(op.key, roots);
}

function issueId(i: Issue): string {
  return JSON.stringify([i.code, i.path, i.field, i.message]);
}

/**
 * The issues of `after` that `before` did not have, compared by code, path, field and message.
 * A write is refused only for these: data that was already wrong (written before a stricter
 * validator shipped) must not block every later write, including the ones that repair it.
 */
export function introducedIssues(before: readonly Issue[], after: readonly Issue[]): readonly Issue[] {
  if (after.length === 0) return after;
  const old = new Set(before.map(issueId));
  return after.filter((i) => !old.has(issueId(i)));
}
