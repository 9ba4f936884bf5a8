/**
 * Deterministic allocation of the numbers a server's tenants need to be unique on it: interface
 * indexes (the BPF encap map is keyed by the tunnel device's ifindex, shared by all tenants),
 * MAC addresses and tunnel statistics slots.
 *
 * Each thing asks for a slot by a stable tag (`acme/gre1`); the slot starts at a hash of the tag
 * and probes forward on a collision. Tags are taken in sorted order, so the result depends on the
 * config alone (the compiler stays pure). A new tag only moves another when their hashes collide,
 * which is rare in the large spaces used here.
 */
import { createHash } from 'node:crypto';

/** The first 8 hex digits of sha256(tag): short, stable names for long ids. */
export function shortHash(tag: string, digits = 8): string {
  return createHash('sha256').update(tag).digest('hex').slice(0, digits);
}

/** A 32-bit number from sha256(tag). */
export function hash32(tag: string): number {
  return createHash('sha256').update(tag).digest().readUInt32BE(0);
}

/** Slots in [base, base + size), handed out by hashed tag with linear probing. */
export class SlotAllocator {
  private readonly taken = new Set<number>();

  constructor(
    private readonly base: number,
    private readonly size: number,
    private readonly salt: string,
  ) {}

  /** The slot of `tag`, or null when the space is full. */
  take(tag: string): number | null {
    if (this.taken.size >= this.size) return null;
    let i = hash32(`${this.salt}:${tag}`) % this.size;
    while (this.taken.has(i)) i = (i + 1) % this.size;
    this.taken.add(i);
    return this.base + i;
  }
}

/** A locally administered unicast MAC (02:ae:…) for slot `n`. */
export function macOf(n: number): string {
  const b = [0x02, 0xae, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
