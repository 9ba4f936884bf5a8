/**
 * A tenant's firewall (`/tenants/<t>/firewall`): ordered rules evaluated in the tenant's namespace,
 * first match wins, then a default action per direction. The shape is close to what nftables
 * wants: address and port fields are sets (→ anonymous nft sets), TCP flags are mask/value, ICMP
 * types are numbers, so a compiler maps each field to one nft expression.
 *
 * `ingress` is Internet → customer (through the tunnel); `egress` is customer → Internet.
 */
import { z } from 'zod';
import { descriptionSchema, idSchema } from './id.ts';
import { cidrSetSchema, portSetSchema, protocolSchema, rangeSchema } from './net.ts';
import { checkL4, icmpSchema, resolveIcmp, tcpFlagsSchema } from './match.ts';
import type { IcmpMatch } from './match.ts';
import { fail, intIn } from './schema.ts';
import { show } from './text.ts';

/** Traffic directions, seen from the customer. */
export const DIRECTIONS = ['ingress', 'egress'] as const;

/** A direction. */
export type Direction = (typeof DIRECTIONS)[number];

/**
 * Rule actions. `rate-limit` accepts matching packets up to the rate and drops the rest (it does
 * not fall through to later rules, so "allow ICMP at 100 pps" is one rule).
 */
export const FIREWALL_ACTIONS = ['accept', 'drop', 'rate-limit'] as const;

/** A rule action. */
export type FirewallAction = (typeof FIREWALL_ACTIONS)[number];

/**
 * Rate of a `rate-limit` rule: packets per second or bits per second (not both: nft's `limit`
 * counts one or the other), with an optional burst in packets or bytes respectively.
 */
export const firewallRateLimitSchema = z
  .strictObject({
    pps: intIn(1, 4_294_967_295, 'packets/s').optional(),
    bps: intIn(1, 10 ** 13, 'bits/s').optional(),
    burst: intIn(1, 4_294_967_295, '', 'packets with pps, bytes with bps').optional(),
  })
  .superRefine((r, ctx) => {
    if ((r.pps === undefined) === (r.bps === undefined))
      fail(ctx, 'invalid_value', 'give exactly one of pps (packets/s) or bps (bits/s), e.g. { pps: 1000 }');
  });

/** Stored firewall rate limit. */
export type FirewallRateLimit = z.output<typeof firewallRateLimitSchema>;

const ruleFields = z.strictObject({
  /** Unique within the tenant; names counters and log prefixes. */
  id: idSchema('rule id'),
  description: descriptionSchema.optional(),
  direction: z.enum(DIRECTIONS),
  /** Source prefixes (or bare addresses); absent = any. */
  src: cidrSetSchema.optional(),
  /** Destination prefixes (or bare addresses); absent = any. */
  dst: cidrSetSchema.optional(),
  protocol: protocolSchema.optional(),
  /** Source ports and ranges, e.g. [1024-65535]; needs a protocol with ports. */
  sport: portSetSchema.optional(),
  /** Destination ports and ranges, e.g. [20-21, 443]; needs a protocol with ports. */
  dport: portSetSchema.optional(),
  /** TCP flags that must be set / unset; needs protocol tcp. */
  tcpFlags: tcpFlagsSchema.optional(),
  /** ICMP type (name or number) and code; needs protocol icmp or icmpv6. */
  icmp: icmpSchema.optional(),
  /** IP packet length range in bytes, e.g. 0-128 or 1500. */
  length: rangeSchema(0, 65535, 'packet length').optional(),
  action: z.enum(FIREWALL_ACTIONS),
  /** Required with action rate-limit, refused otherwise. */
  rateLimit: firewallRateLimitSchema.optional(),
});

/**
 * Action and rate belong together. Reads the rule defensively: it also runs on a rule whose other
 * fields failed, so that a missing rate is reported along with them.
 */
function checkAction(rule: unknown, ctx: z.RefinementCtx): void {
  if (rule === null || typeof rule !== 'object') return;
  const { action, rateLimit } = rule as { action?: unknown; rateLimit?: unknown };
  if (typeof action !== 'string' || !(FIREWALL_ACTIONS as readonly string[]).includes(action)) return;
  if (action === 'rate-limit' && rateLimit === undefined)
    fail(ctx, 'missing', 'action rate-limit needs a rate; add rateLimit: { pps: 1000 } (or bps)', ['rateLimit']);
  if (action !== 'rate-limit' && rateLimit !== undefined)
    fail(ctx, 'invalid_value', `rateLimit only applies to action rate-limit, not ${action}; remove it or change the action`, ['rateLimit']);
}

/** One firewall rule. The stored form has `icmp.type` as a number. */
export const firewallRuleSchema = ruleFields
  // Only when some field failed: the transform below, which does the same check, will not run.
  .superRefine((r, ctx) => checkAction(r, ctx), { when: (payload) => payload.issues.length > 0 })
  .transform((r, ctx) => {
    checkL4(r, ctx);
    let icmp: IcmpMatch | undefined;
    if (r.icmp !== undefined) icmp = resolveIcmp(r.icmp, r.protocol, ctx);
    checkAction(r, ctx);
    const { icmp: _raw, ...rest } = r;
    // One object type with an optional numeric `icmp`, not a union of two, so readers can write
    // `rule.icmp` without narrowing.
    const out: typeof rest & { icmp?: IcmpMatch } = icmp === undefined ? rest : { ...rest, icmp };
    return out;
  });

/** Stored firewall rule. */
export type FirewallRule = z.output<typeof firewallRuleSchema>;

/** What happens to a packet no rule matched, per direction. */
export const firewallDefaultSchema = z.strictObject({
  ingress: z.enum(['accept', 'drop']),
  egress: z.enum(['accept', 'drop']),
});

/**
 * A tenant's firewall. `default` has no default of its own: whether unmatched ingress is dropped
 * is the one decision a tenant must make on purpose.
 */
export const firewallSchema = z
  .strictObject({
    default: firewallDefaultSchema,
    rules: z.array(firewallRuleSchema).default([]),
  })
  .superRefine(
    (fw, ctx) => {
      // Runs even when some rule is invalid (`when` below), so a duplicate id is reported
      // together with other mistakes; hence the defensive look at each raw element.
      if (fw === null || typeof fw !== 'object') return;
      const rules: unknown = (fw as { rules?: unknown }).rules;
      if (!Array.isArray(rules)) return;
      const seen = new Map<string, number>();
      for (const [i, rule] of rules.entries()) {
        const id: unknown = rule !== null && typeof rule === 'object' ? (rule as { id?: unknown }).id : undefined;
        if (typeof id !== 'string') continue;
        const first = seen.get(id);
        if (first !== undefined)
          fail(ctx, 'duplicate', `rule id ${show(id)} is already used by rules.${first}; rule ids must be unique within the tenant`, ['rules', i, 'id']);
        else seen.set(id, i);
      }
    },
    { when: () => true },
  );

/** Stored firewall. */
export type Firewall = z.output<typeof firewallSchema>;
