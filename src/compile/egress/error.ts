/**
 * Egress compile failures: a value with a code, the object path and what to do, like
 * compile/server.ts's `CompileError`.
 */

/** Why egress state could not be computed. */
export interface EgressError {
  /**
   * `not_found`: a data center, server or pool named by the caller or an assignment is missing;
   * `short`: a data center has more servers than its addresses of a tag can give slices to;
   * `invalid`: an assignment the model should have refused (e.g. an IPv6 address without a server).
   */
  readonly code: 'not_found' | 'short' | 'invalid';
  /** Object path, e.g. `egress/assign/198.51.100.64` or `dcs/ams`. */
  readonly path: string;
  /** The reason and the fix. */
  readonly message: string;
}

/** Builds an `EgressError`. */
export function egressError(code: EgressError['code'], path: string, message: string): EgressError {
  return { code, path, message };
}
