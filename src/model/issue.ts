/**
 * A validation issue: one thing wrong with one field of one object. `path` is the object's place
 * in the config document (the same segments as its store key, e.g. tenants/acme/prefixes/p1),
 * `field` the field inside that object (may be nested, e.g. `rules.3.dport`), `message` the reason
 * and, where we know it, what to do instead.
 */
export interface Issue {
  /** Machine-readable reason, e.g. `overlap`, `not_canonical`, `invalid_type`. */
  readonly code: string;
  /** Object path segments, e.g. ['tenants', 'acme', 'prefixes', 'p1']. */
  readonly path: readonly (string | number)[];
  /** Field path inside the object, e.g. ['cidr'] or ['rules', 3, 'dport']; empty for the object itself. */
  readonly field: readonly (string | number)[];
  /** Human message: the reason, and the fix when there is one. */
  readonly message: string;
}

/** `tenants/acme/prefixes/p1.cidr: message` — the one way issues are printed. */
export function formatIssue(issue: Issue): string {
  const obj = issue.path.join('/');
  const field = issue.field.length ? '.' + issue.field.join('.') : '';
  return `${obj}${field}: ${issue.message}`;
}
