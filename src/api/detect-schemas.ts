/**
 * The wire shapes of the attack-detection routes (routes/detect.ts): events and proposals as
 * stored (model/detection.ts) with the id of their key, and the outcome of an operator's decision.
 * schemas.ts lists them among its components, so they are in /openapi.json.
 */
import { z } from 'zod';
import { detectionEventSchema, proposalSchema } from '../model/detection.ts';
import { dosRuleSchema } from '../model/dos.ts';

/** An event as read: its id (last key segment, sorts by time) and its fields. */
export const detectionEventViewSchema = detectionEventSchema.extend({ id: z.string() });

/** A proposal as read: its id (= the rule id accepting it writes), the revision to decide on, its fields. */
export const proposalViewSchema = proposalSchema.extend({ id: z.string(), revision: z.number().int().nonnegative() });

/** What accept and reject answer. */
export const proposalDecisionSchema = z.strictObject({
  /** The proposal (and rule) id. */
  id: z.string(),
  decision: z.enum(['accepted', 'rejected']),
  /** The store revision of the write. */
  revision: z.number().int().nonnegative(),
  /** Accepted: the rule written at /dos/rules/<id>, its expiry counted from now. */
  rule: dosRuleSchema.optional(),
});

/** Components of the detection routes. */
export const DETECTION_SCHEMAS = {
  DetectionEvent: detectionEventViewSchema,
  DetectionEventList: z.strictObject({ items: z.array(detectionEventViewSchema) }),
  Proposal: proposalViewSchema,
  ProposalList: z.strictObject({ items: z.array(proposalViewSchema) }),
  ProposalDecision: proposalDecisionSchema,
} as const satisfies Record<string, z.ZodType>;
