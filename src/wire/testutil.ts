/**
 * Helpers shared by the wire tests (not used by production code): a reference checksum written
 * the slow, obvious way so emitters are not checked against themselves, a seeded PRNG, and a
 * temp directory removed after the test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/**
 * RFC 1071 checksum of the concatenation of `parts`, word by word with a fold after every add.
 * Deliberately independent of checksum.ts (no unrolling, no deferred folding).
 */
export function refChecksum(...parts: readonly (Uint8Array | readonly number[])[]): number {
  const bytes: number[] = [];
  for (const p of parts) for (const x of p) bytes.push(x);
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    s += ((bytes[i] ?? 0) << 8) + (bytes[i + 1] ?? 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

/** Bytes of a pseudo-header (RFC 9293 §3.1 / RFC 8200 §8.1) built field by field. */
export function refPseudoHeader(src: Uint8Array, dst: Uint8Array, protocol: number, len: number): number[] {
  if (src.length === 4) return [...src, ...dst, 0, protocol, len >>> 8, len & 0xff];
  return [...src, ...dst, (len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff, 0, 0, 0, protocol];
}

/** The shared seeded PRNG, so fuzz runs are reproducible from their seed. */
export { rng as prng } from '../testkit/random.ts';

/** A fresh directory under the OS temp dir, removed when the test ends (pass or fail). */
export function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `anyedge-${prefix}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A buffer pre-filled with 0xa5, so a byte an emitter forgot to write shows up in a comparison. */
export function a5(len: number): Uint8Array {
  return new Uint8Array(len).fill(0xa5);
}
