/**
 * A port range as aligned power-of-two blocks (the way a range becomes prefixes): 1024-65535 is
 * 1024/6 (1024–2047), 2048/5, 4096/4, 8192/3, 16384/2 and 32768/1. Each block is a (value, high
 * bits) pair a hash key can hold; the number of distinct block sizes is what costs masks.
 */
import type { PortBlock } from '../../kernel/bpf/dos.ts';

/** The fewest aligned blocks covering exactly [lo, hi] (0 ≤ lo ≤ hi ≤ 65535). */
export function portBlocks(lo: number, hi: number): PortBlock[] {
  const out: PortBlock[] = [];
  let p = lo;
  while (p <= hi) {
    // The largest block starting at p that is aligned and does not pass hi.
    let size = p === 0 ? 65536 : p & -p;
    while (p + size - 1 > hi) size >>= 1;
    out.push({ port: p, bits: 16 - Math.log2(size) });
    p += size;
  }
  return out;
}
