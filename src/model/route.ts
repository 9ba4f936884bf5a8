/**
 * Routes inside a tenant's namespace (`/tenants/<t>/routes/<r>`): traffic towards the customer
 * for `prefix` leaves through one or more tunnels. Among the healthy next hops with the lowest
 * priority, traffic is split by weight (weighted ECMP); higher priorities are backups.
 */
import { z } from 'zod';
import { descriptionSchema, idSchema } from './id.ts';
import { cidrSchema } from './net.ts';
import { fail, intIn } from './schema.ts';

/** One next hop of a route. */
export const nextHopSchema = z.strictObject({
  /** A tunnel of the same tenant. */
  tunnel: idSchema('tunnel id'),
  /** Lower is preferred, as with Linux route metrics; 100 leaves room on both sides. */
  priority: intIn(0, 65535).default(100),
  /** Share of traffic among next hops of equal priority. */
  weight: intIn(1, 255).default(1),
});

/** Stored next hop. */
export type NextHop = z.output<typeof nextHopSchema>;

/** A route. */
export const routeSchema = z
  .strictObject({
    prefix: cidrSchema,
    via: z.array(nextHopSchema).min(1, { error: 'needs at least one next hop, e.g. [{ tunnel: gre1 }]' }),
    description: descriptionSchema.optional(),
  })
  .superRefine((r, ctx) => {
    const seen = new Map<string, number>();
    for (const [i, hop] of r.via.entries()) {
      const first = seen.get(hop.tunnel);
      if (first !== undefined)
        fail(ctx, 'duplicate', `tunnel ${hop.tunnel} is already next hop ${first}; list each tunnel once and use weight to shift traffic`, ['via', i, 'tunnel']);
      else seen.set(hop.tunnel, i);
    }
  });

/** Stored route. */
export type Route = z.output<typeof routeSchema>;
