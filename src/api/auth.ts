/**
 * Who is calling. A bearer token is hashed and looked up: among the operator hashes the API was
 * started with, then as a tenant's `tokenHash` in the store.
 *
 * Tenant lookups are authoritative where it matters: a token is accepted for tenant `t` only
 * after reading `/tenants/<t>` and finding its hash there, so a rotated or revoked token stops
 * working at once. Finding WHICH tenant a hash belongs to (needed when the URL names no tenant or
 * another one) uses an index of every tenant's hash, rebuilt from one listing; a miss rebuilds it
 * at most once per `refreshMs`, so a flood of made-up tokens costs one listing per interval, not
 * one per request. A token set by another writer (another API replica, a config apply) is
 * therefore recognised at once on its own tenant's URLs and within `refreshMs` elsewhere; this
 * API's own writes refresh the index immediately (`invalidate`).
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { isId } from '../model/id.ts';
import type { ConfigStore } from '../store/types.ts';
import type { ApiError } from './errors.ts';
import { fromStoreError } from './errors.ts';
import { hashToken, isTokenText } from './tokens.ts';

/** An authenticated caller. `hash` keys its rate limit. */
export type Principal = { readonly kind: 'operator'; readonly hash: string } | { readonly kind: 'tenant'; readonly tenant: string; readonly hash: string };

/** Options of {@link Authenticator}. */
export interface AuthOptions {
  readonly store: ConfigStore;
  readonly operatorTokenHashes: readonly string[];
  readonly now: () => number;
  /** Least time between two index rebuilds caused by unknown tokens, ms (default 1000). */
  readonly refreshMs?: number;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none or it is not a token. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return m && isTokenText(m[1]!) ? m[1] : undefined;
}

/** Resolves tokens to principals. */
export class Authenticator {
  private readonly operators: ReadonlySet<string>;
  private index = new Map<string, string>();
  private builtAt = -Infinity;
  private stale = true;
  private building: Promise<Result<void, ApiError>> | undefined;

  constructor(private readonly opts: AuthOptions) {
    this.operators = new Set(opts.operatorTokenHashes);
  }

  /**
   * The principal of a bearer header; `undefined` when there is no token or nobody has it.
   * `hint` is the tenant id the URL names, tried first (one read).
   */
  async authenticate(header: string | undefined, hint?: string): Promise<Result<Principal | undefined, ApiError>> {
    const token = bearerToken(header);
    if (token === undefined) return ok(undefined);
    const hash = hashToken(token);
    if (this.operators.has(hash)) return ok({ kind: 'operator', hash });
    if (hint !== undefined && isId(hint)) {
      const v = await this.holds(hint, hash);
      if (!v.ok) return v;
      if (v.value) return ok({ kind: 'tenant', tenant: hint, hash });
    }
    for (let pass = 0; pass < 2; pass++) {
      const tenant = this.index.get(hash);
      if (tenant !== undefined && tenant !== hint) {
        const v = await this.holds(tenant, hash);
        if (!v.ok) return v;
        if (v.value) return ok({ kind: 'tenant', tenant, hash });
        this.index.delete(hash);
        this.stale = true;
      }
      if (pass === 1 || !(this.stale || this.opts.now() - this.builtAt >= (this.opts.refreshMs ?? 1000))) break;
      const r = await this.rebuild();
      if (!r.ok) return r;
    }
    return ok(undefined);
  }

  /** Marks the index out of date: the next unknown token rebuilds it (call after writing tenants). */
  invalidate(): void {
    this.stale = true;
  }

  /** Whether `/tenants/<tenant>` holds `hash` now. */
  private async holds(tenant: string, hash: string): Promise<Result<boolean, ApiError>> {
    const r = await this.opts.store.get(`/tenants/${tenant}`);
    if (!r.ok) return err(fromStoreError(r.error));
    const value = r.value?.value;
    return ok(value !== null && typeof value === 'object' && !Array.isArray(value) && (value as { tokenHash?: unknown }).tokenHash === hash);
  }

  private rebuild(): Promise<Result<void, ApiError>> {
    // Concurrent misses share one listing.
    this.building ??= (async () => {
      try {
        const started = this.opts.now();
        const r = await this.opts.store.list('/tenants/');
        if (!r.ok) return err(fromStoreError(r.error));
        const index = new Map<string, string>();
        for (const e of r.value.entries) {
          const parts = e.key.split('/');
          if (parts.length !== 3) continue;
          const v = e.value;
          const h = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as { tokenHash?: unknown }).tokenHash : undefined;
          if (typeof h === 'string') index.set(h, parts[2]!);
        }
        this.index = index;
        this.builtAt = started;
        this.stale = false;
        return ok(undefined);
      } finally {
        this.building = undefined;
      }
    })();
    return this.building;
  }
}
