/**
 * Volumetric DoS rules (`/dos/rules/<id>`), enforced by XDP on every server's uplink before any
 * other processing: a match on header fields and up to 16 payload bytes, an action (drop, or a
 * rate limit counted per destination address or per source prefix), a scope (which data centers,
 * which tenant) and an optional expiry for rules added during an attack.
 */
import { z } from 'zod';
import { descriptionSchema, idSchema } from './id.ts';
import { cidrSetSchema, portSetSchema, protocolSchema, rangeSchema } from './net.ts';
import { checkL4, tcpFlagsSchema } from './match.ts';
import { fail, intIn } from './schema.ts';
import { show } from './text.ts';

/** Most payload bytes a rule may compare: what the XDP program loads in one bounded read. */
export const PAYLOAD_MAX_BYTES = 16;

/** Hex bytes: "17000302", "0x17 00 03 02" or "17:00:03:02"; stored lower case without separators. */
export const hexBytesSchema = z.string().transform((s, ctx) => {
  const hex = s.replace(/^0x/i, '').replace(/[\s:]/g, '').toLowerCase();
  if (!/^[0-9a-f]*$/.test(hex) || hex.length === 0 || hex.length % 2 !== 0) {
    fail(ctx, 'invalid_hex', `${show(s)} is not hex bytes; write pairs of hex digits, e.g. "17000302" or "17 00 03 02"`);
    return z.NEVER;
  }
  if (hex.length / 2 > PAYLOAD_MAX_BYTES) {
    fail(ctx, 'too_big', `${hex.length / 2} bytes is more than the ${PAYLOAD_MAX_BYTES} an XDP rule can compare; keep the most distinctive ${PAYLOAD_MAX_BYTES}`);
    return z.NEVER;
  }
  return hex;
});

/**
 * Payload bytes at `offset`, counted from the first byte after the transport header (TCP with its
 * options, UDP's 8 bytes), where attack signatures live. `mask` (same length) selects bits.
 */
export const payloadMatchSchema = z
  .strictObject({
    offset: intIn(0, 1500, 'bytes'),
    bytes: hexBytesSchema,
    mask: hexBytesSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.mask !== undefined && p.mask.length !== p.bytes.length)
      fail(ctx, 'invalid_value', `mask is ${p.mask.length / 2} bytes but bytes is ${p.bytes.length / 2}; make them the same length`, ['mask']);
  });

/** Stored payload match. */
export type PayloadMatch = z.output<typeof payloadMatchSchema>;

/** Protocols whose payload offset we can find in XDP (fixed or self-describing header length). */
const PAYLOAD_PROTOCOLS = ['tcp', 'udp'];

/** The match of a DoS rule. Every field is optional, but at least one must be given. */
export const dosMatchSchema = z
  .strictObject({
    src: cidrSetSchema.optional(),
    dst: cidrSetSchema.optional(),
    protocol: protocolSchema.optional(),
    sport: portSetSchema.optional(),
    dport: portSetSchema.optional(),
    tcpFlags: tcpFlagsSchema.optional(),
    /** IP packet length range in bytes. */
    length: rangeSchema(0, 65535, 'packet length').optional(),
    /** IPv4 TTL / IPv6 hop limit, a value or a range. */
    ttl: rangeSchema(0, 255, 'TTL').optional(),
    payload: payloadMatchSchema.optional(),
  })
  .transform((m, ctx) => {
    if (Object.keys(m).length === 0)
      fail(ctx, 'empty', 'an empty match selects every packet; give at least one of src, dst, protocol, sport, dport, tcpFlags, length, ttl, payload');
    checkL4(m, ctx);
    if (m.payload !== undefined && (m.protocol === undefined || !PAYLOAD_PROTOCOLS.includes(String(m.protocol))))
      fail(ctx, 'needs_protocol', `a payload match needs protocol tcp or udp${m.protocol === undefined ? '' : `, not ${String(m.protocol)}`} (the offset counts from the end of their header)`, ['payload']);
    return m;
  });

/** Stored DoS match. */
export type DosMatch = z.output<typeof dosMatchSchema>;

/** How a DoS rate limit counts: one bucket per destination address, or per source prefix. */
export const RATE_LIMIT_KEYS = ['dst-ip', 'src-prefix'] as const;

/**
 * Rate of a DoS `rate-limit`: pps and/or bps (a packet over either is dropped), counted per `per`.
 * With `src-prefix`, sources are grouped by `prefixLength` (default /24 and /64, the smallest
 * blocks commonly routed, so one attacker's neighbours share its bucket).
 */
export const dosRateLimitSchema = z
  .strictObject({
    pps: intIn(1, 4_294_967_295, 'packets/s').optional(),
    bps: intIn(1, 10 ** 13, 'bits/s').optional(),
    per: z.enum(RATE_LIMIT_KEYS).default('dst-ip'),
    prefixLength: z.strictObject({ ipv4: intIn(1, 32).default(24), ipv6: intIn(1, 128).default(64) }).optional(),
  })
  .transform((r, ctx) => {
    if (r.pps === undefined && r.bps === undefined) fail(ctx, 'missing', 'give pps (packets/s) and/or bps (bits/s), e.g. { pps: 10000 }');
    if (r.per !== 'src-prefix' && r.prefixLength !== undefined)
      fail(ctx, 'invalid_value', 'prefixLength only applies with per: src-prefix; remove it or set per', ['prefixLength']);
    if (r.per === 'src-prefix' && r.prefixLength === undefined) return { ...r, prefixLength: { ipv4: 24, ipv6: 64 } };
    return r;
  });

/** Stored DoS rate limit. */
export type DosRateLimit = z.output<typeof dosRateLimitSchema>;

/**
 * Where a rule applies. `dcs`: only in these data centers (absent = all). `tenant`: only to
 * packets towards that tenant's prefixes (absent = any destination).
 */
export const dosScopeSchema = z.strictObject({
  dcs: z.array(idSchema('dc id')).min(1, { error: 'an empty list would apply nowhere; list data centers, or remove dcs to apply everywhere' }).optional(),
  tenant: idSchema('tenant id').optional(),
});

/** Stored DoS scope. */
export type DosScope = z.output<typeof dosScopeSchema>;

const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * An instant with an explicit zone (RFC 3339), stored as UTC `toISOString()` text. A zone is
 * required: "14:00" means different times in different data centers.
 */
export const instantSchema = z.string().transform((s, ctx) => {
  const t = RFC3339_RE.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(t)) {
    fail(ctx, 'invalid_time', `${show(s)} is not a date-time with a zone; write RFC 3339, e.g. 2030-01-01T00:00:00Z`);
    return z.NEVER;
  }
  return new Date(t).toISOString();
});

/** DoS actions. */
export const DOS_ACTIONS = ['drop', 'rate-limit'] as const;

/** A DoS rule. */
export const dosRuleSchema = z
  .strictObject({
    description: descriptionSchema.optional(),
    match: dosMatchSchema,
    action: z.enum(DOS_ACTIONS),
    /** Required with action rate-limit, refused otherwise. */
    rateLimit: dosRateLimitSchema.optional(),
    scope: dosScopeSchema.prefault({}),
    /**
     * After this instant the rule is no longer enforced. Validation does not compare it with the
     * clock (the same config must validate the same way on every machine); agents do.
     */
    expires: instantSchema.optional(),
  })
  .superRefine(
    (r, ctx) => {
      // Runs even when a field failed (`when` below), so a missing rate is reported together with
      // a bad match; only a valid action is looked at.
      if (r === null || typeof r !== 'object') return;
      const action: unknown = (r as { action?: unknown }).action;
      if (typeof action !== 'string' || !(DOS_ACTIONS as readonly string[]).includes(action)) return;
      if (action === 'rate-limit' && r.rateLimit === undefined)
        fail(ctx, 'missing', 'action rate-limit needs a rate; add rateLimit: { pps: 10000, per: dst-ip }', ['rateLimit']);
      if (action !== 'rate-limit' && r.rateLimit !== undefined)
        fail(ctx, 'invalid_value', `rateLimit only applies to action rate-limit, not ${action}; remove it or change the action`, ['rateLimit']);
    },
    { when: () => true },
  );

/** Stored DoS rule. */
export type DosRule = z.output<typeof dosRuleSchema>;
