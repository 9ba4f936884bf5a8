/**
 * Wire shapes of the egress routes (routes/egress.ts), added to the API's components in
 * schemas.ts. Assignments themselves are the model's `EgressAssignment`.
 */
import { z } from 'zod';
import { egressAssignmentSchema, EGRESS_CLASSES } from '../model/egress.ts';

const revision = z.number().int().nonnegative();

/** `POST /v1/egress/assign`: several assignments in one transaction. */
export const egressAssignBatchSchema = z.strictObject({
  /** Egress address (canonical text) → its new assignment, or null to delete it. */
  set: z.record(z.string(), egressAssignmentSchema.nullable()),
  /** Egress address → the modRevision its key must still have (0 = absent), as the plan read it. */
  expect: z.record(z.string(), revision).optional(),
});

/** What a batch changed. */
export const egressAssignResultSchema = z.strictObject({
  revision,
  changes: z.array(
    z.strictObject({
      ip: z.string(),
      action: z.enum(['create', 'update', 'delete']),
      before: egressAssignmentSchema.optional(),
      after: egressAssignmentSchema.optional(),
    }),
  ),
});

const slice = z.strictObject({ slice: z.number().int().positive(), server: z.string() });

/** One egress address with its owners and tags (compile/egress/ownership.ts). */
export const egressOwnershipSchema = z.strictObject({
  ip: z.string(),
  dc: z.string(),
  pool: z.string(),
  class: z.enum(EGRESS_CLASSES),
  country: z.string(),
  owner: z.union([
    z.strictObject({ kind: z.literal('slices'), sliceSize: z.number().int().positive(), slices: z.array(slice) }),
    z.strictObject({ kind: z.literal('server'), server: z.string() }),
  ]),
});

/** Components of the egress routes. */
export const EGRESS_SCHEMAS = {
  EgressAssignBatch: egressAssignBatchSchema,
  EgressAssignResult: egressAssignResultSchema,
  EgressOwnershipReply: z.strictObject({ revision, items: z.array(egressOwnershipSchema) }),
} as const satisfies Record<string, z.ZodType>;
