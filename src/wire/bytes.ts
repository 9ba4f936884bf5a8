/**
 * Big-endian field access on plain Uint8Arrays (a Buffer is one too).
 *
 * Why not Buffer#readUInt16BE or DataView: both throw RangeError past the end, and parsers must
 * never throw on untrusted bytes. Indexing past the end yields `undefined`, which these helpers
 * would turn into 0, so callers still check lengths first (every `check()` does); these helpers
 * only keep a missed check from becoming an exception. V8 inlines them.
 */

/** Reads a big-endian u16. */
export function rd16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

/** Reads a big-endian u32 as a non-negative number. */
export function rd32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Writes a big-endian u16 (the value is taken mod 2^16). */
export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

/** Writes a big-endian u32 (the value is taken mod 2^32). */
export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/**
 * Copies `b[start, end)` into a new plain Uint8Array. Reprs hold copies, not views, so a Repr
 * stays valid when the packet buffer is reused; and a plain Uint8Array (not a Buffer) so that
 * `assert.deepStrictEqual` compares Reprs from Buffers and from Uint8Arrays alike.
 */
export function copyBytes(b: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(b.subarray(start, end));
}

/** Throws a RangeError when `need` bytes do not fit at `off` (emit into a too small buffer is a caller bug). */
export function assertRoom(b: Uint8Array, off: number, need: number, what: string): void {
  if (!Number.isInteger(off) || off < 0 || off + need > b.length) {
    throw new RangeError(`emit ${what}: needs ${need} bytes at offset ${off}, buffer has ${b.length}; size the buffer with the headerLen/len helpers`);
  }
}

/** Throws a RangeError when `v` is not an integer in [0, max] (a Repr field out of range is a caller bug). */
export function assertField(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} must be an integer in 0..${max}, got ${v}`);
}

/** Lowercase hex of `b[start, end)`, no separators. */
export function toHex(b: Uint8Array, start = 0, end = b.length): string {
  let s = '';
  for (let i = start; i < end; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

/**
 * Parses hex text into bytes, ignoring whitespace, `:` and `#` comments to the end of a line, so
 * fixtures can be written as annotated hexdumps. Throws on odd digit counts or bad characters:
 * fixtures are code, not input.
 */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/#[^\n]*/g, '').replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) throw new RangeError(`fromHex: not an even run of hex digits: ${clean.slice(0, 40)}…`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** A shared empty buffer so views have a valid `buf` before their first `reset`. */
export const EMPTY: Uint8Array = new Uint8Array(0);
