/**
 * Data centers and their servers (`/dcs/<dc>`, `/dcs/<dc>/servers/<server>`). Every server runs
 * every task, so a server is only its uplink, its addresses and whether it takes traffic.
 */
import { z } from 'zod';
import { descriptionSchema, displayNameSchema } from './id.ts';
import { ifAddrSchema } from './net.ts';
import { show } from './text.ts';

/**
 * A data center (`/dcs/<dc>`). Its servers are the keys below it; the document nests them under
 * `servers`, the store value does not repeat them, so the list cannot disagree with the keys.
 */
export const dcSchema = z.strictObject({
  /** Display name, e.g. "Amsterdam". */
  name: displayNameSchema,
  /** Where it is, for people: "Amsterdam, NL". */
  location: descriptionSchema.optional(),
  /** The DC router's addresses on the backbone/Internet links (address/length), one or more. */
  backbone: z.array(ifAddrSchema).min(1, { error: 'needs at least one address (the DC router on the backbone), e.g. [192.0.2.6/30]' }),
});

/** Stored data center (without its servers). */
export type Dc = z.output<typeof dcSchema>;

/**
 * Server states: `active` takes new flows; `draining` keeps the flows it has (XDP steering sends
 * them back to it) but gets no new ones; `down` gets nothing.
 */
export const SERVER_STATES = ['active', 'draining', 'down'] as const;

/** A server state. */
export type ServerState = (typeof SERVER_STATES)[number];

/**
 * Linux interface names: at most 15 bytes (IFNAMSIZ 16 with the NUL), no '/', ':' or whitespace,
 * not "." or "..". The kernel refuses anything else; refusing it here gives a better message.
 */
const IFNAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/** Schema of a Linux interface name. */
export const ifnameSchema = z.string().refine((s) => IFNAME_RE.test(s) && s !== '.' && s !== '..', {
  error: (iss) => `${show(iss.input)} is not a Linux interface name: use 1–15 characters from A–Z, a–z, 0–9, "_", "." and "-", e.g. eth0`,
  params: { code: 'invalid_ifname' },
});

/** A server (`/dcs/<dc>/servers/<server>`). */
export const serverSchema = z.strictObject({
  /** Interface facing the DC router, where XDP is attached. */
  uplink: ifnameSchema,
  /** Addresses on the uplink (address/length). */
  addresses: z.array(ifAddrSchema).min(1, { error: 'needs at least one address on the uplink, e.g. [192.0.2.18/28]' }),
  /** Defaults to active: a server listed is a server meant to work. */
  state: z.enum(SERVER_STATES).default('active'),
});

/** Stored server. */
export type Server = z.output<typeof serverSchema>;
