/**
 * The egress geofeed (RFC 8805): where the operator says its egress addresses are, by the
 * country tag of their pool, so that geolocation providers (and geofenced services) see an eyeball
 * of country X leave from an address of country X.
 *
 * Format (RFC 8805 §2.1): UTF-8 text, one entry per line `ip_prefix,alpha2code,region,city,
 * postal_code`, comments start with `#`. Here: the prefix in canonical CIDR form, the ISO 3166-1
 * alpha-2 code upper case, region and city empty (pools carry a country only), postal code empty
 * (§2.1.1.5 deprecates it).
 *
 * Which addresses: every address of every pool by default (a tag belongs to the pool, and
 * geolocation databases take days to pick up a change, so an address is published before it is
 * used); with `assignedOnly`, only assigned ones. Addresses whose lines would be equal (same
 * country: the traffic class is not a geofeed field) are merged when adjacent, and each merged
 * range is written as the fewest CIDR prefixes that cover exactly it; entries are in address
 * order, IPv4 first, and never overlap.
 */
import type { Config } from '../../model/config.ts';
import { cidrEnd, familyBits, formatCidr, mustCidr, mustIp, type Family } from '../../model/net.ts';
import { poolOf } from './slices.ts';

/** Geofeed options. */
export interface GeofeedOptions {
  /** Only assigned addresses. */
  readonly assignedOnly?: boolean;
  /** Comment lines at the top (without `#`). */
  readonly comments?: readonly string[];
}

/** One entry. */
export interface GeofeedEntry {
  readonly prefix: string;
  readonly country: string;
  readonly region: string;
  readonly city: string;
}

interface Span {
  readonly family: Family;
  start: bigint;
  end: bigint;
  readonly country: string;
}

/** The fewest prefixes covering exactly start..end. */
export function rangeToCidrs(family: Family, start: bigint, end: bigint): string[] {
  const bits = familyBits(family);
  const out: string[] = [];
  let cur = start;
  while (cur <= end) {
    // Largest block aligned at `cur` that does not pass `end`.
    let len = bits;
    while (len > 0) {
      const size = 1n << BigInt(bits - len + 1);
      if (cur % size !== 0n || cur + size - 1n > end) break;
      len--;
    }
    out.push(formatCidr({ family, start: cur, len }));
    cur += 1n << BigInt(bits - len);
  }
  return out;
}

/** The entries of the geofeed, merged (see the file header). */
export function geofeedEntries(config: Config, opts: GeofeedOptions = {}): GeofeedEntry[] {
  const spans: Span[] = [];
  if (opts.assignedOnly) {
    for (const ip of Object.keys(config.egress.assign)) {
      const found = poolOf(config, ip);
      if (!found) continue;
      const a = mustIp(ip);
      spans.push({ family: a.family, start: a.value, end: a.value, country: found.pool.tags.country });
    }
  } else {
    for (const pool of Object.values(config.egress.pools))
      for (const text of pool.cidrs) {
        const c = mustCidr(text);
        spans.push({ family: c.family, start: c.start, end: cidrEnd(c), country: pool.tags.country });
      }
  }
  spans.sort((a, b) => a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: Span[] = [];
  for (const s of spans) {
    const last = merged.at(-1);
    // Pools never overlap (validate.ts); a pool's own nested prefixes may, hence `<=`.
    if (last && last.family === s.family && last.country === s.country && s.start <= last.end + 1n) {
      if (s.end > last.end) last.end = s.end;
    } else merged.push({ ...s });
  }
  return merged.flatMap((s) => rangeToCidrs(s.family, s.start, s.end).map((prefix) => ({ prefix, country: s.country, region: '', city: '' })));
}

/** The geofeed as RFC 8805 CSV text. */
export function geofeedCsv(config: Config, opts: GeofeedOptions = {}): string {
  const head = (opts.comments ?? []).map((c) => `# ${c}`);
  const lines = geofeedEntries(config, opts).map((e) => `${e.prefix},${e.country},${e.region},${e.city},`);
  return [...head, ...lines].map((l) => l + '\n').join('');
}
