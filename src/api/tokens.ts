/**
 * API tokens. A token is `ae_` followed by 43 base64url characters (32 random bytes); only its
 * hash, `sha256:<64 hex>` of the whole token text, is ever stored (operator hashes in a file given
 * to the API, a tenant's in `/tenants/<t>.tokenHash`). A request is authenticated by hashing the
 * presented token and looking the hash up, so the store never holds anything that would let a
 * reader of it call the API.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';

/** Text of a well-formed token: the prefix makes a leaked token recognisable to secret scanners. */
export const TOKEN_RE = /^ae_[A-Za-z0-9_-]{43}$/;

/** Text of a stored token hash (the same rule as the tenant schema's `tokenHash`). */
export const TOKEN_HASH_RE = /^sha256:[0-9a-f]{64}$/;

/** A new random token and its hash. Show the token once; keep only the hash. */
export function generateToken(): { readonly token: string; readonly hash: string } {
  const token = 'ae_' + randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

/** `sha256:<hex>` of the token text (UTF-8). */
export function hashToken(token: string): string {
  return 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Whether `text` has the shape of a token (says nothing about whether it is known). */
export function isTokenText(text: string): boolean {
  return TOKEN_RE.test(text);
}

/** Whether `text` is a well-formed token hash. */
export function isTokenHash(text: string): boolean {
  return TOKEN_HASH_RE.test(text);
}

/**
 * Parses an operator token hash file: one hash per line; blank lines and lines starting with `#`
 * are ignored. Every bad line is reported with its number, and a file with no hash at all is an
 * error, since an API without an operator could never be administered.
 */
export function parseTokenHashFile(text: string, file: string): Result<string[], string[]> {
  const hashes: string[] = [];
  const errors: string[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (isTokenHash(line)) hashes.push(line);
    else if (isTokenText(line))
      errors.push(`${file}:${i + 1}: this is a token, not its hash; never store tokens: put its hash (anyedge token new prints both) here instead`);
    else errors.push(`${file}:${i + 1}: not a token hash; each line must be "sha256:" and 64 lower-case hex digits (anyedge token new prints one)`);
  }
  if (errors.length === 0 && hashes.length === 0) errors.push(`${file}: no token hash in the file; add one line per operator token hash (anyedge token new prints one)`);
  return errors.length ? err(errors) : ok(hashes);
}
