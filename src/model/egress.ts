/**
 * Soft-unicast egress (`/egress/pools/<pool>`, `/egress/assign/<ip>`). A pool is a set of egress
 * prefixes with tags; each address in it is owned by one data center at a time (an assignment)
 * and shared by that data center's servers through port slices. Tags choose the address for an
 * eyeball and are published as an RFC 8805 geofeed.
 */
import { z } from 'zod';
import { descriptionSchema, idSchema } from './id.ts';
import { cidrSchema } from './net.ts';
import { fail } from './schema.ts';
import { didYouMean, show } from './text.ts';

/**
 * ISO 3166-1 alpha-2 codes currently assigned (249). A closed list, because a geofeed with an
 * unassigned code is silently ignored by its consumers.
 */
export const COUNTRY_CODES: ReadonlySet<string> = new Set(
  (
    'AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ ' +
    'CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR ' +
    'GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP ' +
    'KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT ' +
    'MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW ' +
    'SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ ' +
    'UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW'
  ).split(' '),
);

/** A country code, accepted in any case and stored upper case (geofeeds use upper case). */
export const countrySchema = z.string().transform((s, ctx) => {
  const code = s.toUpperCase();
  if (!COUNTRY_CODES.has(code)) {
    const hint = code === 'UK' ? '; the United Kingdom is GB' : code === 'EU' ? '; EU is not a country, pick the member state' : didYouMean(code, COUNTRY_CODES);
    fail(ctx, 'invalid_country', `${show(s)} is not an ISO 3166-1 alpha-2 country code (e.g. NL, US, SG)${hint}`);
    return z.NEVER;
  }
  return code;
});

/** Traffic classes of egress addresses: reputation is kept apart per class. */
export const EGRESS_CLASSES = ['trusted', 'untrusted'] as const;

/** An egress traffic class. */
export type EgressClass = (typeof EGRESS_CLASSES)[number];

/** Smallest slice: fewer ports than this per server is too few concurrent flows to be useful. */
export const SLICE_MIN = 64;
/** Largest slice: half the port space, since slice 0 is reserved and one server needs one slice. */
export const SLICE_MAX = 32768;

/**
 * Servers that can share one egress address with this slice size. Slice 0 (ports
 * 0..sliceSize-1, which holds the well-known ports) is never handed out, hence the minus one:
 * 2048 → 31 servers.
 */
export function slicesPerAddress(sliceSize: number): number {
  return 65536 / sliceSize - 1;
}

/** An egress pool. */
export const egressPoolSchema = z.strictObject({
  /** Egress prefixes, inside anycast.egressRanges (validate.ts). */
  cidrs: z.array(cidrSchema).min(1, { error: 'needs at least one prefix, e.g. [198.51.100.64/26]' }),
  tags: z.strictObject({
    class: z.enum(EGRESS_CLASSES),
    country: countrySchema,
  }),
  /** Ports per server slice: a power of two; default 2048 (31 servers per address). */
  sliceSize: z
    .number({ error: (iss) => `expected a power of two ${SLICE_MIN}–${SLICE_MAX}, got ${show(iss.input)}` })
    .refine((n) => Number.isInteger(n) && n >= SLICE_MIN && n <= SLICE_MAX && (n & (n - 1)) === 0, {
      error: (iss) => `must be a power of two ${SLICE_MIN}–${SLICE_MAX} (ports per server slice); got ${show(iss.input)} — e.g. 2048 gives ${slicesPerAddress(2048)} servers per address`,
      params: { code: 'invalid_value' },
    })
    .default(2048),
  description: descriptionSchema.optional(),
});

/** Stored egress pool. */
export type EgressPool = z.output<typeof egressPoolSchema>;

/**
 * Which data center owns an egress address (`/egress/assign/<ip>`). An IPv4 address is shared by
 * the port slices of all the data center's servers; an IPv6 address (plenty of them) is one
 * server's, named by `server` (validate.ts checks it is there for IPv6 and absent for IPv4).
 */
export const egressAssignmentSchema = z.strictObject({
  dc: idSchema('dc id'),
  server: idSchema('server id').optional(),
});

/** Stored egress assignment. */
export type EgressAssignment = z.output<typeof egressAssignmentSchema>;
