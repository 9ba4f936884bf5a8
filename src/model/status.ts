/**
 * A server's status (`/status/<dc>/<server>`), written by its agent and read by the API and
 * `anyedge status`. It is operational state, not config: outside the validated roots
 * (keyspace.ts CONFIG_ROOTS), so an agent reporting never competes with the config check, and a
 * reader must not trust it further than this schema.
 *
 * Why the agent reports `seenRevision` besides `appliedRevision`: status writes are store writes
 * too, so the store's revision moves without any config change; the lag that matters is the
 * config the agent has received and not yet made true in its kernel, which only it knows.
 */
import { z } from 'zod';
import { idSchema } from './id.ts';

/** Health of one tunnel as the agent's probes see it. */
export const tunnelStatusSchema = z.strictObject({
  tenant: idSchema('tenant id'),
  tunnel: idSchema('tunnel id'),
  state: z.enum(['unknown', 'up', 'down']),
  /** When the state last changed (ISO 8601). */
  since: z.iso.datetime(),
  /** Round-trip time of the last answered probe, ms. */
  rttMs: z.number().nonnegative().optional(),
});

/** One server's status. */
export const serverStatusSchema = z.strictObject({
  /** The store revision the kernel was last made equal to (config as of that revision). */
  appliedRevision: z.number().int().nonnegative(),
  /** When that apply finished (ISO 8601). */
  appliedAt: z.iso.datetime().optional(),
  /** The newest store revision the agent has received; > appliedRevision while applying. */
  seenRevision: z.number().int().nonnegative(),
  /** Since when received config has been waiting to be applied (ISO 8601); absent when in sync. */
  pendingSince: z.iso.datetime().optional(),
  /** Whether the agent is connected to the store, and since when that last changed. */
  store: z.strictObject({ connected: z.boolean(), since: z.iso.datetime(), error: z.string().max(2000).optional() }),
  /** The last failed apply or compile, cleared by the next success. */
  lastError: z.strictObject({ at: z.iso.datetime(), message: z.string().max(2000) }).optional(),
  tunnels: z.array(tunnelStatusSchema).default([]),
  /** When the agent started and when it wrote this (ISO 8601): a stale `updatedAt` means a dead agent. */
  startedAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
  /** anyedge version of the agent. */
  version: z.string().max(64),
});

/** Stored server status. */
export type ServerStatus = z.output<typeof serverStatusSchema>;
/** One tunnel's health in a status. */
export type TunnelStatus = z.output<typeof tunnelStatusSchema>;

/** The key of a server's status. */
export function statusKey(dc: string, server: string): string {
  return `/status/${dc}/${server}`;
}
