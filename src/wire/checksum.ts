/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * Sums are kept unfolded as plain numbers while accumulating: a 64 KiB packet adds at most
 * 32768 words of 0xffff (< 2^31), so a double holds any sum we make exactly and folding happens
 * once at the end. Every function here is allocation-free; the hot path (MSS clamping, TTL
 * rewrites, GRE encap) uses them directly.
 */

/**
 * One's-complement sum of the 16-bit big-endian words in `buf[off, off+len)`, added to `acc`,
 * not folded. An odd trailing byte is padded with a zero byte, as RFC 1071 says.
 */
export function onesSum(buf: Uint8Array, off: number, len: number, acc = 0): number {
  let s = acc;
  let i = off;
  const end = off + len;
  // Unrolled by 8 bytes: ~2x faster than word-at-a-time on V8 for 1500-byte packets.
  for (; i + 8 <= end; i += 8) {
    s += ((buf[i]! << 8) | buf[i + 1]!) + ((buf[i + 2]! << 8) | buf[i + 3]!) + ((buf[i + 4]! << 8) | buf[i + 5]!) + ((buf[i + 6]! << 8) | buf[i + 7]!);
  }
  for (; i + 2 <= end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s;
}

/** Folds an unfolded sum to 16 bits (end-around carry), without complementing. */
export function foldSum(sum: number): number {
  let s = sum;
  // Division, not >>> 16: a sum may exceed 2^32 when callers chain many buffers.
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/**
 * The Internet checksum of `buf[off, off+len)` plus `acc` (e.g. a pseudo-header sum): the
 * complement of the folded one's-complement sum. Over a region that includes a correct checksum
 * field it returns 0, which is how every `checksumOk` here verifies.
 */
export function internetChecksum(buf: Uint8Array, off: number, len: number, acc = 0): number {
  return ~foldSum(onesSum(buf, off, len, acc)) & 0xffff;
}

/**
 * Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6):
 * source and destination address, protocol (next header) and upper-layer length. Both layouts
 * sum to the same words, so one function serves both; `addrLen` is 4 or 16. The addresses are
 * read from buffers so the hot path can point straight into the packet's IP header.
 */
export function pseudoHeaderSum(
  src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number, addrLen: 4 | 16, protocol: number, upperLen: number,
): number {
  return onesSum(src, srcOff, addrLen) + onesSum(dst, dstOff, addrLen) + protocol + Math.floor(upperLen / 0x10000) + (upperLen & 0xffff);
}

/**
 * RFC 1624 eqn. 3: the new checksum after a 16-bit field changes from `oldWord` to `newWord`,
 * `HC' = ~(~HC + ~m + m')`. Eqn. 3 rather than RFC 1141's form because the latter can yield
 * 0xffff where a full recomputation gives 0x0000 (RFC 1624 §3). Used for MSS clamping and TTL.
 */
export function updateChecksum16(check: number, oldWord: number, newWord: number): number {
  return ~foldSum((~check & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff)) & 0xffff;
}

/** RFC 1624 update for a 32-bit field (an IPv4 address, a sequence number): two 16-bit updates in one fold. */
export function updateChecksum32(check: number, oldValue: number, newValue: number): number {
  const s =
    (~check & 0xffff) +
    (~(oldValue >>> 16) & 0xffff) + (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) + (newValue & 0xffff);
  return ~foldSum(s) & 0xffff;
}
