/**
 * Attack detection: the per-tenant policy (`tenants/<t>.dos.detection`, config) and what the
 * agents write while they detect (events and proposals, operational state outside the config
 * roots, like `/status/`):
 *
 * ```
 * /detect/events/<tenant>/<event id>     one event: detected, proposed, installed, renewed, accepted, rejected, expired
 * /detect/proposals/<rule id>            a mitigation rule waiting for an operator (policy propose), or rejected
 * ```
 *
 * A proposal accepted by an operator becomes `/dos/rules/<rule id>` (config); one installed by
 * policy is written there directly. Rule ids are deterministic (`auto-<tenant>-<hash>`), so every
 * server detecting the same attack writes the same key and they converge on one rule.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { idSchema } from './id.ts';
import { dosRuleSchema } from './dos.ts';
import { fail, intIn } from './schema.ts';
import { show } from './text.ts';

/** What detection does with the rule it builds: store a proposal, or write the rule at once. */
export const DETECTION_ACTIONS = ['propose', 'install'] as const;

/** A detection action. */
export type DetectionAction = (typeof DETECTION_ACTIONS)[number];

const TTL_RE = /^([1-9]\d{0,6})(s|m|h|d)$/;
const UNIT_S: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
/** Shortest and longest lifetime of a detected rule: a minute (agents renew every few seconds) to a week. */
export const TTL_MIN_S = 60;
export const TTL_MAX_S = 7 * 86400;

/** Seconds of a ttl text (`90s`, `10m`, `2h`, `1d`); undefined when it is not one. */
export function ttlSeconds(text: string): number | undefined {
  const m = TTL_RE.exec(text);
  return m ? Number(m[1]) * UNIT_S[m[2]!]! : undefined;
}

/** A rule lifetime, e.g. `10m`: a number and one of s, m, h, d; 1 minute to 7 days. Stored as written. */
export const ttlSchema = z.string().superRefine((s, ctx) => {
  const secs = ttlSeconds(s);
  if (secs === undefined) fail(ctx, 'invalid_duration', `${show(s)} is not a duration; write a number and a unit s, m, h or d, e.g. "10m"`);
  else if (secs < TTL_MIN_S || secs > TTL_MAX_S) fail(ctx, 'out_of_range', `${show(s)} is ${secs} s; give 1m to 7d (agents renew a rule while the attack lasts, so a short ttl is enough)`);
});

/** Default thresholds: per destination address of the tenant, over one second. */
export const DEFAULT_THRESHOLDS = { pps: 100_000, bps: 1_000_000_000, synPps: 10_000 } as const;

/**
 * Thresholds per destination address of the tenant, estimated each second from the samples:
 * crossing any one is an attack on that address.
 */
export const detectionThresholdsSchema = z.strictObject({
  pps: intIn(1, 4_294_967_295, 'packets/s').default(DEFAULT_THRESHOLDS.pps),
  bps: intIn(1, 10 ** 13, 'bits/s').default(DEFAULT_THRESHOLDS.bps),
  /** TCP SYNs without ACK. */
  synPps: intIn(1, 4_294_967_295, 'SYN packets/s').default(DEFAULT_THRESHOLDS.synPps),
});

/**
 * A tenant's detection policy. Every field has a default, so a tenant without one is watched
 * with the defaults and its rules are proposed, never installed, until an operator says so.
 */
export const detectionPolicySchema = z.strictObject({
  /** false: this tenant's traffic is not looked at. */
  enabled: z.boolean().default(true),
  thresholds: detectionThresholdsSchema.prefault({}),
  action: z.enum(DETECTION_ACTIONS, { error: (iss) => `must be one of ${DETECTION_ACTIONS.join(', ')}; got ${show(iss.input)}` }).default('propose'),
  /** How long a detected rule lives after the attack was last seen. */
  ttl: ttlSchema.default('10m'),
});

/** A stored detection policy. */
export type DetectionPolicy = z.output<typeof detectionPolicySchema>;

/** The tenant's `dos` settings (`tenants/<t>.dos`). */
export const tenantDosSchema = z.strictObject({ detection: detectionPolicySchema.prefault({}) });

/** The policy of a tenant whose config says nothing. */
export function defaultDetectionPolicy(): DetectionPolicy {
  return detectionPolicySchema.parse({});
}

/** Root of the detection keys (operational state, not config). */
export const DETECT_ROOT = '/detect/';
/** Prefix of a tenant's events. */
export function eventsPrefix(tenant?: string): string {
  return tenant === undefined ? `${DETECT_ROOT}events/` : `${DETECT_ROOT}events/${tenant}/`;
}
/** Key of one event. */
export function eventKey(tenant: string, id: string): string {
  return `${eventsPrefix(tenant)}${id}`;
}
/** Prefix of the proposals. */
export const PROPOSALS_PREFIX = `${DETECT_ROOT}proposals/`;
/** Key of one proposal. */
export function proposalKey(ruleId: string): string {
  return `${PROPOSALS_PREFIX}${ruleId}`;
}
/** Events kept per tenant; writers trim the oldest beyond this. */
export const EVENTS_PER_TENANT = 200;

/** One row of a top list: a destination, a source prefix or a signature, with its estimated rate. */
export const talkerSchema = z.strictObject({
  key: z.string().max(200),
  pps: z.number().nonnegative(),
  bps: z.number().nonnegative(),
});

/** A top-talker row. */
export type Talker = z.output<typeof talkerSchema>;

/** What was seen: the rates at the attacked address and the top lists of the tenant's traffic. */
export const observationSchema = z.strictObject({
  /** The attacked address. */
  dst: z.string().max(64),
  pps: z.number().nonnegative(),
  bps: z.number().nonnegative(),
  synPps: z.number().nonnegative(),
  /** Which thresholds were crossed. */
  crossed: z.array(z.enum(['pps', 'bps', 'synPps'])).max(3),
  sources: z.array(talkerSchema).max(10),
  signatures: z.array(talkerSchema).max(10),
});

/** An observation. */
export type Observation = z.output<typeof observationSchema>;

/** Event kinds. */
export const DETECTION_EVENT_KINDS = ['detected', 'proposed', 'installed', 'renewed', 'accepted', 'rejected', 'expired'] as const;

/** An event kind. */
export type DetectionEventKind = (typeof DETECTION_EVENT_KINDS)[number];

/** One detection event (`/detect/events/<tenant>/<id>`). */
export const detectionEventSchema = z.strictObject({
  at: z.iso.datetime(),
  kind: z.enum(DETECTION_EVENT_KINDS),
  tenant: idSchema('tenant id'),
  /** The rule the event is about. */
  ruleId: idSchema('DoS rule id'),
  /** `dc/server` of the agent that wrote it, or `operator` for accept and reject. */
  by: z.string().max(80),
  observation: observationSchema.optional(),
  rule: dosRuleSchema.optional(),
});

/** A stored event. */
export type DetectionEvent = z.output<typeof detectionEventSchema>;

/** A proposal's state: waiting for an operator, or rejected (agents do not propose it again until it expires). */
export const PROPOSAL_STATES = ['pending', 'rejected'] as const;

/** One proposal (`/detect/proposals/<rule id>`). */
export const proposalSchema = z.strictObject({
  tenant: idSchema('tenant id'),
  state: z.enum(PROPOSAL_STATES),
  /** The rule accepting it writes (its `expires` is set again on accept). */
  rule: dosRuleSchema,
  /** Lifetime of the rule from acceptance, seconds (the tenant's ttl). */
  ttlSeconds: z.number().int().min(TTL_MIN_S).max(TTL_MAX_S),
  createdAt: z.iso.datetime(),
  /** Last time an agent saw the attack; a proposal not renewed until `expires` is removed. */
  updatedAt: z.iso.datetime(),
  expires: z.iso.datetime(),
  /** `dc/server` of the agents that saw it (at most 16). */
  seenBy: z.array(z.string().max(80)).max(16),
  observation: observationSchema,
});

/** A stored proposal. */
export type Proposal = z.output<typeof proposalSchema>;

let eventSeq = 0;

/**
 * A fresh event id: the time (13-digit ms, so keys sort by time), a per-process counter (so one
 * writer's events of the same millisecond keep their order), the writer (`dc/server` with `/` as
 * `.`, or `operator`) and 6 random hex digits (two writers in the same millisecond).
 */
export function newEventId(nowMs: number, by: string): string {
  const who = by.replace(/[^A-Za-z0-9-]/g, '.').slice(0, 60);
  eventSeq = (eventSeq + 1) % 0x1000000;
  return `${String(Math.max(0, Math.floor(nowMs))).padStart(13, '0')}-${eventSeq.toString(16).padStart(6, '0')}-${who}-${randomBytes(3).toString('hex')}`;
}
