/**
 * GRE tunnels to a customer's router (`/tenants/<t>/tunnels/<n>`). The outer source is an anycast
 * GRE endpoint, so any server of any data center sends and receives for every tunnel: nothing here
 * is bound to a machine.
 */
import { z } from 'zod';
import { fail, intIn } from './schema.ts';
import { familyOf, ifAddrSchema, ipSchema } from './net.ts';

/** Smallest tunnel MTU: the IPv4 minimum datagram every host must accept (RFC 791). */
export const MTU_MIN = 576;
/** Largest tunnel MTU: common jumbo-frame size. */
export const MTU_MAX = 9000;

/** Outer IP header plus GRE header, in bytes: 20 or 40, plus 4, plus 4 more with a key. */
export function greOverhead(outerFamily: 4 | 6, keyed: boolean): number {
  return (outerFamily === 4 ? 20 : 40) + 4 + (keyed ? 4 : 0);
}

/**
 * Default tunnel MTU: what fits in a 1500-byte path after the GRE overhead. 1476 for plain GRE
 * over IPv4; a key or an IPv6 outer header takes more, and defaulting to 1476 there would make
 * every full-size packet fragment or be dropped.
 */
export function defaultMtu(outerFamily: 4 | 6, keyed: boolean): number {
  return 1500 - greOverhead(outerFamily, keyed);
}

/**
 * Health check: probes sent through the tunnel every `intervalMs`; a probe without an answer in
 * `timeoutMs` fails. The tunnel goes down after `downThreshold` failures in a row and up again
 * after `upThreshold` successes. Defaults (5 s, 1 s, 3, 3) notice a dead tunnel in about 15 s
 * without probing customers' routers hard.
 */
export const healthCheckSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    intervalMs: intIn(100, 3_600_000, 'ms').default(5000),
    timeoutMs: intIn(10, 60_000, 'ms').default(1000),
    upThreshold: intIn(1, 100).default(3),
    downThreshold: intIn(1, 100).default(3),
  })
  .superRefine((h, ctx) => {
    if (h.timeoutMs >= h.intervalMs)
      fail(ctx, 'invalid_value', `must be shorter than intervalMs (${h.intervalMs}), or probes overlap; lower timeoutMs or raise intervalMs`, ['timeoutMs']);
  });

/** Stored health check settings. */
export type HealthCheck = z.output<typeof healthCheckSchema>;

/** A tunnel. Only GRE exists today; `type` is there so others can be added without a new layout. */
export const tunnelSchema = z
  .strictObject({
    type: z.literal('gre', { error: (iss) => `unknown tunnel type ${JSON.stringify(iss.input)}; only "gre" is supported` }).default('gre'),
    /** The customer router's public address: the outer destination. */
    customerEndpoint: ipSchema,
    /**
     * Our outer source, one of anycast.greEndpoints. When absent, the first GRE endpoint of the
     * customer endpoint's family is used (checked in validate.ts).
     */
    anycastEndpoint: ipSchema.optional(),
    /** GRE key (RFC 2890), 32 bits, when the customer's router wants one. */
    key: intIn(0, 2 ** 32 - 1, '', 'the GRE key is 32 bits').optional(),
    /** Our addresses inside the tunnel (address/length), e.g. 192.0.2.252/31. */
    inner: z.array(ifAddrSchema).default([]),
    /** Inner MTU; default depends on outer family and key, see `defaultMtu`. */
    mtu: intIn(MTU_MIN, MTU_MAX, 'bytes', 'GRE over a 1500-byte path fits 1476').optional(),
    healthCheck: healthCheckSchema.prefault({}),
  })
  .superRefine((t, ctx) => {
    if (t.anycastEndpoint !== undefined && familyOf(t.anycastEndpoint) !== familyOf(t.customerEndpoint))
      fail(
        ctx,
        'family_mismatch',
        `${t.anycastEndpoint} is IPv${familyOf(t.anycastEndpoint)} but customerEndpoint ${t.customerEndpoint} is IPv${familyOf(t.customerEndpoint)}; use a GRE endpoint of the same family`,
        ['anycastEndpoint'],
      );
  })
  .transform((t) => ({ ...t, mtu: t.mtu ?? defaultMtu(familyOf(t.customerEndpoint), t.key !== undefined) }));

/** Stored tunnel: `mtu` is always present. */
export type Tunnel = z.output<typeof tunnelSchema>;
