/**
 * Errors of the lab: a value with a code, the path of what failed (a flag, a node, a step) and a
 * message that names the cause and what to do.
 */

/** What kind of failure. */
export type LabErrorCode = 'invalid' | 'exists' | 'not_found' | 'missing_tool' | 'failed' | 'timeout';

/** A lab failure. */
export interface LabError {
  readonly code: LabErrorCode;
  /** The flag (`dcs`), node (`ams-s1`) or step (`bird/ams`) that failed. */
  readonly path: string;
  readonly message: string;
  readonly cause?: unknown;
}

/** One line for people: `path: message`. */
export function formatLabError(e: LabError): string {
  return `${e.path}: ${e.message}`;
}
