/**
 * Where an eyeball is: a small GeoIP table (prefix → ISO country) with longest-prefix match, read
 * from CSV in the RFC 8805 geofeed layout (`prefix,country[,region,city,postal]`, `#` comments),
 * so the same file format serves our published geofeed and the lab's pretend geography. An
 * address outside the table gets the configured default country, or a clear error when there is
 * none: the proxy then refuses rather than guess a country.
 */
import { readFileSync } from 'node:fs';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { COUNTRY_CODES } from '../model/egress.ts';
import { familyBits, formatCidr, parseCidr, parseIp, type Cidr, type Family } from '../model/net.ts';

/** One row: a prefix and its country (upper case). */
export interface GeoEntry {
  readonly cidr: Cidr;
  readonly country: string;
}

/** A failed GeoIP load or lookup: where (file:line or the address), why, what to do. */
export interface GeoError {
  readonly code: 'geoip';
  /** `file:line` of a bad row, or the address looked up. */
  readonly path: string;
  readonly message: string;
}

/**
 * The lab's geography: 192.0.2.0/24 and 2001:db8::/32 each split in two, matching the lab's two
 * egress countries (an NL pool and a US pool). Anything else needs a table file.
 */
export const LAB_GEOFEED = `# prefix,country — lab eyeballs (documentation ranges only)
192.0.2.0/25,NL
192.0.2.128/25,US
2001:db8::/33,NL
2001:db8:8000::/33,US
`;

/** A longest-prefix-match table. */
export class GeoTable {
  // Per family: prefix length → network address → country; lengths kept longest first, so a
  // lookup is one hash probe per distinct length (a handful), not a scan of the rows.
  readonly #byLen = new Map<Family, Map<number, Map<bigint, string>>>();
  readonly #lens = new Map<Family, number[]>();
  readonly entries: readonly GeoEntry[];
  /** Country for addresses in no row, or null: such an eyeball is refused. */
  readonly defaultCountry: string | null;

  constructor(entries: readonly GeoEntry[], defaultCountry: string | null = null) {
    this.entries = entries;
    this.defaultCountry = defaultCountry;
    for (const e of entries) {
      const fam = this.#byLen.get(e.cidr.family) ?? new Map<number, Map<bigint, string>>();
      this.#byLen.set(e.cidr.family, fam);
      const at = fam.get(e.cidr.len) ?? new Map<bigint, string>();
      fam.set(e.cidr.len, at);
      at.set(e.cidr.start, e.country);
    }
    for (const [family, fam] of this.#byLen) this.#lens.set(family, [...fam.keys()].sort((a, b) => b - a));
  }

  /** The country of `ip` (text), its row's prefix or `default`, or an error naming the address. */
  lookup(ip: string): Result<{ readonly country: string; readonly from: string }, GeoError> {
    const parsed = parseIp(ip);
    if (!parsed.ok) return err({ code: 'geoip', path: ip, message: `geoip: ${parsed.error}` });
    const { family, value } = parsed.value;
    const bits = familyBits(family);
    const fam = this.#byLen.get(family);
    for (const len of this.#lens.get(family) ?? []) {
      const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
      const country = fam?.get(len)?.get(value & mask);
      if (country !== undefined) return ok({ country, from: formatCidr({ family, start: value & mask, len }) });
    }
    if (this.defaultCountry !== null) return ok({ country: this.defaultCountry, from: 'default' });
    return err({
      code: 'geoip',
      path: ip,
      message: `geoip: eyeball ${ip} is in no prefix of the GeoIP table (${this.entries.length} rows) and no default country is set; add its prefix to the table or start the proxy with --default-country CC`,
    });
  }
}

/** Checks a country code; the message says what a good one looks like. */
export function checkCountry(text: string): Result<string, string> {
  const code = text.trim().toUpperCase();
  if (!COUNTRY_CODES.has(code)) return err(`${JSON.stringify(text)} is not an ISO 3166-1 alpha-2 country code (e.g. NL, US)`);
  return ok(code);
}

/**
 * Parses geofeed CSV. Every bad row is reported (file:line and why), none dropped silently; a
 * prefix listed twice is an error, since the two rows could disagree.
 */
export function parseGeofeed(text: string, source = 'geofeed'): Result<GeoEntry[], GeoError[]> {
  const entries: GeoEntry[] = [];
  const errors: GeoError[] = [];
  const seen = new Map<string, number>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const path = `${source}:${i + 1}`;
    const fail = (why: string): void => void errors.push({ code: 'geoip', path, message: `${path}: ${why}` });
    const fields = line.split(',');
    const [prefixText = '', countryText = ''] = fields.map((f) => f.trim());
    if (fields.length < 2) {
      fail(`${JSON.stringify(line)} is not "prefix,country" (RFC 8805), e.g. 192.0.2.0/25,NL`);
      continue;
    }
    const cidr = parseCidr(prefixText, { bareIp: true });
    if (!cidr.ok) {
      fail(cidr.error);
      continue;
    }
    const country = checkCountry(countryText);
    if (!country.ok) {
      fail(country.error);
      continue;
    }
    const key = formatCidr(cidr.value);
    const first = seen.get(key);
    if (first !== undefined) {
      fail(`${key} is already listed on line ${first}; keep one row per prefix`);
      continue;
    }
    seen.set(key, i + 1);
    entries.push({ cidr: cidr.value, country: country.value });
  }
  return errors.length ? err(errors) : ok(entries);
}

/** Reads a geofeed file into a table; errors name the file and line. */
export function loadGeoTable(file: string, defaultCountry: string | null): Result<GeoTable, GeoError[]> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return err([{ code: 'geoip', path: file, message: `geoip: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; give a readable CSV file of prefix,country rows` }]);
  }
  const rows = parseGeofeed(text, file);
  return rows.ok ? ok(new GeoTable(rows.value, defaultCountry)) : rows;
}

/** The built-in lab table ({@link LAB_GEOFEED}). */
export function labGeoTable(defaultCountry: string | null): GeoTable {
  const rows = parseGeofeed(LAB_GEOFEED, 'lab');
  if (!rows.ok) throw new Error(`bug: the built-in lab geofeed is invalid: ${rows.error.map((e) => e.message).join('; ')}`);
  return new GeoTable(rows.value, defaultCountry);
}
