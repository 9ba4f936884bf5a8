/**
 * The schemas the API speaks, by component name: the model's own object schemas (request bodies
 * and, with `id` and `revision` added, replies) and the few wire shapes of its own (whole-config
 * requests, server reports, errors). `openapi.ts` turns them into the document with
 * `z.toJSONSchema`; the route table refers to them by name.
 */
import { z } from 'zod';
import { dcSchema, serverSchema } from '../model/dc.ts';
import { anycastSchema } from '../model/anycast.ts';
import { prefixSchema, tenantSchema } from '../model/tenant.ts';
import { tunnelSchema } from '../model/tunnel.ts';
import { routeSchema } from '../model/route.ts';
import { firewallRuleSchema, firewallSchema } from '../model/firewall.ts';
import { dosRuleSchema } from '../model/dos.ts';
import { egressAssignmentSchema, egressPoolSchema } from '../model/egress.ts';
import { serverStatusSchema } from '../model/status.ts';
import { TOKEN_RE } from './tokens.ts';
import { EGRESS_SCHEMAS } from './egress-schemas.ts';
import { DETECTION_SCHEMAS } from './detect-schemas.ts';

/**
 * Objects stored one per key. Each gets three components: `<Name>` (the body of a write, as the
 * model parses it), `<Name>Object` (as read: `id`, `revision` and the stored fields) and
 * `<Name>List` (`{ items }`).
 */
export const MODEL_SCHEMAS = {
  Tenant: tenantSchema,
  Prefix: prefixSchema,
  Tunnel: tunnelSchema,
  Route: routeSchema,
  Firewall: firewallSchema,
  FirewallRule: firewallRuleSchema,
  Anycast: anycastSchema,
  Dc: dcSchema,
  Server: serverSchema,
  DosRule: dosRuleSchema,
  EgressPool: egressPoolSchema,
  EgressAssignment: egressAssignmentSchema,
} as const satisfies Record<string, z.ZodType>;

/** A model component name. */
export type ModelName = keyof typeof MODEL_SCHEMAS;

const ids = <T extends z.ZodType>(value: T) => z.record(z.string(), value);

/**
 * The declarative document (examples/acme.yaml), assembled from the objects' schemas the way
 * model/document.ts splits it. For the document only: requests are checked by `parseConfig`,
 * which locates every issue.
 */
export const configDocumentSchema = z.strictObject({
  dcs: ids(dcSchema.extend({ servers: ids(serverSchema).optional() })).optional(),
  anycast: anycastSchema.optional(),
  tenants: ids(
    tenantSchema.extend({
      prefixes: ids(prefixSchema).optional(),
      tunnels: ids(tunnelSchema).optional(),
      routes: ids(routeSchema).optional(),
      firewall: firewallSchema.optional(),
    }),
  ).optional(),
  dos: z.strictObject({ rules: ids(dosRuleSchema).optional() }).optional(),
  egress: z.strictObject({ pools: ids(egressPoolSchema).optional(), assign: ids(egressAssignmentSchema).optional() }).optional(),
});

/** One change of a whole-config diff or apply. */
export const configChangeSchema = z.strictObject({
  action: z.enum(['create', 'update', 'delete']),
  /** Store key, e.g. `/tenants/acme/prefixes/p1`. */
  key: z.string(),
  before: z.unknown().optional(),
  after: z.unknown().optional(),
  /** The key's modRevision the change was computed against (0 = absent). */
  modRevision: z.number().int().nonnegative(),
});

/** One server as `/v1/servers` reports it. */
export const serverReportSchema = z.strictObject({
  dc: z.string(),
  server: z.string(),
  /** The agent's last report, or null when it never reported or its report does not parse. */
  status: serverStatusSchema.nullable(),
  /** Whether the server is in the config (a status may outlive its server). */
  configured: z.boolean(),
  /** The store's revision when this was read. */
  storeRevision: z.number().int().nonnegative(),
  lag: z.strictObject({
    /** Config revisions received and not yet applied: seenRevision − appliedRevision. */
    revisions: z.number().int().nonnegative(),
    /** Seconds since received config has been waiting (pendingSince), 0 when in sync. */
    seconds: z.number().nonnegative(),
  }),
  /** No report, or the last one older than 60 s: the agent may be dead. */
  stale: z.boolean(),
  /** Why `status` is null for a report that exists but does not parse. */
  error: z.string().optional(),
});

/** Components that are not model objects. */
export const WIRE_SCHEMAS = {
  ConfigDocument: configDocumentSchema,
  ConfigReply: z.strictObject({ revision: z.number().int().nonnegative(), config: configDocumentSchema }),
  ConfigDiffRequest: z.strictObject({ config: configDocumentSchema }),
  ConfigApplyRequest: z.strictObject({
    config: configDocumentSchema,
    /** The plan's `{ key: modRevision }`: every changed key must still have it. */
    expect: z.record(z.string(), z.number().int().nonnegative()).optional(),
  }),
  ConfigChanges: z.strictObject({ revision: z.number().int().nonnegative(), changes: z.array(configChangeSchema) }),
  ServerReport: serverReportSchema,
  ServerReportList: z.strictObject({ items: z.array(serverReportSchema) }),
  Token: z.strictObject({ token: z.string().regex(TOKEN_RE) }),
  Health: z.strictObject({ status: z.literal('ok'), revision: z.number().int().nonnegative() }),
  OpenApiDocument: z.looseObject({ openapi: z.string() }),
  ...DETECTION_SCHEMAS,
  ...EGRESS_SCHEMAS,
  Error: z.strictObject({
    error: z.looseObject({
      code: z.string(),
      message: z.string(),
      issues: z.array(z.strictObject({ path: z.string(), field: z.string(), code: z.string(), message: z.string() })).optional(),
      key: z.string().optional(),
      currentRevision: z.number().int().nonnegative().optional(),
    }),
  }),
} as const satisfies Record<string, z.ZodType>;
