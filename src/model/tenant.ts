/**
 * Tenants (`/tenants/<t>`) and their prefixes (`/tenants/<t>/prefixes/<p>`). The tenant id names
 * its network namespace on every server; the prefixes are what we announce for it and steer into
 * that namespace, so no address may belong to two tenants (validate.ts).
 */
import { z } from 'zod';
import { descriptionSchema, displayNameSchema } from './id.ts';
import { cidrSchema } from './net.ts';
import { synFloodSchema } from './synflood.ts';
import { tenantDosSchema } from './detection.ts';

/**
 * Tenant status: `active` is served; `suspended` keeps the configuration but announces and
 * serves nothing for it, so it can be resumed without re-entering anything.
 */
export const TENANT_STATUSES = ['active', 'suspended'] as const;

/** A tenant status. */
export type TenantStatus = (typeof TENANT_STATUSES)[number];

/** A tenant (`/tenants/<t>`); its prefixes, tunnels, routes and firewall are keys below it. */
export const tenantSchema = z.strictObject({
  /** Display name, e.g. "Acme Corp". */
  name: displayNameSchema,
  status: z.enum(TENANT_STATUSES).default('active'),
  /** Hash of the tenant's API token; the token itself is never stored. */
  tokenHash: z
    .string()
    .regex(/^sha256:[0-9a-f]{64}$/, { error: 'must be "sha256:" followed by 64 lower-case hex digits (the hash of the API token, never the token)' })
    .optional(),
  /** DoS settings of the tenant: `detection` (model/detection.ts), defaults when absent. */
  dos: tenantDosSchema.optional(),
  /** SYN-flood protection of the tenant's prefixes (model/synflood.ts); off when absent. */
  synFlood: synFloodSchema.optional(),
});

/** Stored tenant (without its children). */
export type Tenant = z.output<typeof tenantSchema>;

/** A customer prefix (`/tenants/<t>/prefixes/<p>`), announced anycast from every data center. */
export const prefixSchema = z.strictObject({
  cidr: cidrSchema,
  description: descriptionSchema.optional(),
});

/** Stored prefix. */
export type Prefix = z.output<typeof prefixSchema>;
