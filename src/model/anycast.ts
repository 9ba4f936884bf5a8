/**
 * The platform's anycast block (`/anycast`): the prefixes we announce from every data center for
 * our own use, the GRE endpoint and service addresses inside them, and the ranges announced for
 * soft-unicast egress. Tenant prefixes and tunnel endpoints must stay out of all of it
 * (checked in validate.ts).
 */
import { z } from 'zod';
import { cidrSchema, ipSchema, mustCidr, mustIp, cidrContains, hostCidr } from './net.ts';
import { fail } from './schema.ts';

/** The anycast block. Every list may be empty (a fresh store has nothing yet). */
export const anycastSchema = z
  .strictObject({
    /** Platform anycast prefixes holding the GRE endpoints and service addresses. */
    ranges: z.array(cidrSchema).default([]),
    /** Prefixes announced for egress; egress pools are carved from them. */
    egressRanges: z.array(cidrSchema).default([]),
    /** Anycast GRE endpoints: the outer address customers' routers send GRE to. */
    greEndpoints: z.array(ipSchema).default([]),
    /** Anycast service addresses (proxy, DNS, …). */
    services: z.array(ipSchema).default([]),
  })
  .superRefine((a, ctx) => {
    const ranges = a.ranges.map(mustCidr);
    const seen = new Map<string, string>();
    for (const field of ['greEndpoints', 'services'] as const) {
      for (const [i, text] of a[field].entries()) {
        const here = `${field}.${i}`;
        const first = seen.get(text);
        if (first !== undefined) {
          fail(ctx, 'duplicate', `${text} is already listed at ${first}; an address is either a GRE endpoint or a service, once`, [field, i]);
          continue;
        }
        seen.set(text, here);
        const ip = hostCidr(mustIp(text));
        if (!ranges.some((r) => cidrContains(r, ip)))
          fail(ctx, 'outside', `${text} is not inside any of ranges (${a.ranges.join(', ') || 'none'}); add its prefix to ranges so it is announced`, [field, i]);
      }
    }
  });

/** Stored anycast block. */
export type Anycast = z.output<typeof anycastSchema>;

/** The anycast block of a config that has none yet. */
export function emptyAnycast(): Anycast {
  return { ranges: [], egressRanges: [], greEndpoints: [], services: [] };
}
