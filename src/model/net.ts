/**
 * Network primitives of the config: IP addresses, CIDR prefixes, interface addresses, ports and
 * port sets, numeric ranges and IP protocols, for IPv4 and IPv6. Each comes as a parser that
 * returns a `Result` with a message saying what to write instead, and as a zod schema that stores
 * the canonical text form (IPv6 per RFC 5952, CIDRs with host bits zero, port sets merged), so two
 * spellings of one thing are one value in the store.
 */
import { z } from 'zod';
import type { Result } from '../lib/result.ts';
import { ok, err } from '../lib/result.ts';
import { fail } from './schema.ts';
import { didYouMean, show } from './text.ts';

/** Address family: 4 or 6. */
export type Family = 4 | 6;

/** An IP address as a number. `value` is a bigint for both families, so one code path serves both. */
export interface IpAddr {
  readonly family: Family;
  readonly value: bigint;
}

/** A CIDR prefix: the network address (host bits zero) and its length. */
export interface Cidr {
  readonly family: Family;
  /** Network address: the first address of the prefix. */
  readonly start: bigint;
  readonly len: number;
}

/** Bits per family. */
export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function parseV4(text: string): bigint | string {
  const m = V4_RE.exec(text);
  if (!m) return `${show(text)} is not an IPv4 address; write four numbers 0–255 separated by dots, e.g. 192.0.2.1`;
  let v = 0n;
  for (const part of m.slice(1)) {
    // A leading zero means octal to inet_aton (010 = 8); refusing it avoids two readings.
    if (part.length > 1 && part.startsWith('0'))
      return `${show(text)} has a number with a leading zero, which some tools read as octal; write ${m
        .slice(1)
        .map((p) => String(Number(p)))
        .join('.')}`;
    const n = Number(part);
    if (n > 255) return `${show(text)} is not an IPv4 address: ${n} is above 255`;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

const HEX_GROUP_RE = /^[0-9a-fA-F]{1,4}$/;

function parseV6(text: string): bigint | string {
  const bad = (why: string): string => `${show(text)} is not an IPv6 address: ${why}`;
  if (text.includes('%')) return bad('zone indexes (%eth0) have no meaning in configuration; remove the %… part');
  const dbl = text.indexOf('::');
  if (dbl !== -1 && text.indexOf('::', dbl + 1) !== -1) return bad('"::" may appear only once');
  const splitParts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = dbl === -1 ? splitParts(text) : splitParts(text.slice(0, dbl));
  const tail = dbl === -1 ? [] : splitParts(text.slice(dbl + 2));
  const groups: number[][] = [[], []];
  const lists = [head, tail] as const;
  for (let li = 0; li < 2; li++) {
    const list = lists[li]!;
    for (let i = 0; i < list.length; i++) {
      const part = list[i]!;
      const isLast = li === (dbl === -1 ? 0 : 1) && i === list.length - 1;
      if (isLast && part.includes('.')) {
        // Embedded IPv4 in the last 32 bits (::ffff:192.0.2.1).
        const v4 = parseV4(part);
        if (typeof v4 === 'string') return bad(`the embedded IPv4 part ${show(part)} is invalid`);
        groups[li]!.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
        continue;
      }
      if (!HEX_GROUP_RE.test(part)) return bad(part === '' ? 'empty group (a single ":" at the start or end?)' : `group ${show(part)} is not 1–4 hex digits`);
      groups[li]!.push(parseInt(part, 16));
    }
  }
  const n = groups[0]!.length + groups[1]!.length;
  if (dbl === -1 && n !== 8) return bad(`has ${n} groups, needs 8 (or "::" for a run of zeros)`);
  if (dbl !== -1 && n > 7) return bad('"::" must stand for at least one zero group, but there are already 8');
  const all = [...groups[0]!, ...new Array<number>(8 - n).fill(0), ...groups[1]!];
  let v = 0n;
  for (const g of all) v = (v << 16n) | BigInt(g);
  return v;
}

/** Parses an IPv4 or IPv6 address (no prefix length). */
export function parseIp(text: string): Result<IpAddr, string> {
  if (text.includes('/')) return err(`${show(text)} is a prefix, not an address; write the address alone, e.g. ${text.split('/')[0]}`);
  if (text.includes(':')) {
    const v = parseV6(text);
    return typeof v === 'string' ? err(v) : ok({ family: 6, value: v });
  }
  const v = parseV4(text);
  return typeof v === 'string' ? err(v) : ok({ family: 4, value: v });
}

function formatV4(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
}

/** Formats an address: dotted quad, or RFC 5952 text for IPv6 (lower case, longest zero run as "::"). */
export function formatIp(ip: IpAddr): string {
  if (ip.family === 4) return formatV4(ip.value);
  const g: number[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) g.push(Number((ip.value >> s) & 0xffffn));
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff)
    return `::ffff:${formatV4(ip.value & 0xffffffffn)}`;
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestAt === -1) return hex.join(':');
  return hex.slice(0, bestAt).join(':') + '::' + hex.slice(bestAt + bestLen).join(':');
}

function hostMask(family: Family, len: number): bigint {
  return (1n << BigInt(familyBits(family) - len)) - 1n;
}

/** Last address of a prefix. */
export function cidrEnd(c: Cidr): bigint {
  return c.start | hostMask(c.family, c.len);
}

/** Canonical text of a prefix: `203.0.113.0/25`, `2001:db8::/32`. */
export function formatCidr(c: Cidr): string {
  return `${formatIp({ family: c.family, value: c.start })}/${c.len}`;
}

/** Whether `outer` contains `inner` (same family, inner within outer's range). Equal prefixes contain each other. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && outer.len <= inner.len && outer.start <= inner.start && cidrEnd(inner) <= cidrEnd(outer);
}

/** Whether two prefixes share any address. Prefixes either nest or are disjoint. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.start <= cidrEnd(b) && b.start <= cidrEnd(a);
}

/** The single-address prefix (/32 or /128) of an address. */
export function hostCidr(ip: IpAddr): Cidr {
  return { family: ip.family, start: ip.value, len: familyBits(ip.family) };
}

const LEN_RE = /^(0|[1-9]\d{0,2})$/;

/** Splits `addr/len` and parses both halves; host bits are left as they are. */
function parseAddrLen(text: string, noun: string, bareIp: boolean): Result<{ ip: IpAddr; len: number }, string> {
  const slash = text.indexOf('/');
  if (slash === -1) {
    const ip = parseIp(text);
    if (!ip.ok) return ip;
    const max = familyBits(ip.value.family);
    if (bareIp) return ok({ ip: ip.value, len: max });
    return err(`${show(text)} has no prefix length; write ${text}/${max} for a single address, or the network with its length, e.g. ${ip.value.family === 4 ? '203.0.113.0/24' : '2001:db8::/32'}`);
  }
  const ip = parseIp(text.slice(0, slash));
  if (!ip.ok) return ip;
  const max = familyBits(ip.value.family);
  const lenText = text.slice(slash + 1);
  if (!LEN_RE.test(lenText) || Number(lenText) > max)
    return err(`${show(text)} is not a valid ${noun}: the prefix length must be a number 0–${max}`);
  return ok({ ip: ip.value, len: Number(lenText) });
}

/**
 * Parses a CIDR prefix. Host bits must be zero: `203.0.113.5/24` is refused with the canonical
 * form suggested, since silently masking would hide a typo in the address or the length.
 * With `bareIp`, a plain address means its /32 or /128 (used in address sets of match rules).
 */
export function parseCidr(text: string, opts: { bareIp?: boolean } = {}): Result<Cidr, string> {
  const r = parseAddrLen(text, 'prefix', opts.bareIp ?? false);
  if (!r.ok) return r;
  const { ip, len } = r.value;
  const start = ip.value & ~hostMask(ip.family, len);
  const c: Cidr = { family: ip.family, start, len };
  if (start !== ip.value) return err(`${show(text)} is not canonical (host bits are set after /${len}); use ${formatCidr(c)}`);
  return ok(c);
}

/** An interface address: an address with the length of its connected prefix (`192.0.2.18/28`). */
export interface IfAddr {
  readonly ip: IpAddr;
  readonly len: number;
}

/** Parses an interface address. Host bits are the point here, so they are kept. */
export function parseIfAddr(text: string): Result<IfAddr, string> {
  return parseAddrLen(text, 'interface address', false);
}

/** Canonical text of an interface address. */
export function formatIfAddr(a: IfAddr): string {
  return `${formatIp(a.ip)}/${a.len}`;
}

/** The connected prefix of an interface address (`192.0.2.18/28` → `192.0.2.16/28`). */
export function ifAddrNetwork(a: IfAddr): Cidr {
  return { family: a.ip.family, start: a.ip.value & ~hostMask(a.ip.family, a.len), len: a.len };
}

/** Builds a string schema that parses with `parse`, reports its message under `code` and stores `format`'s text. */
function textSchema<T>(parse: (s: string) => Result<T, string>, format: (v: T) => string, code: string): z.ZodType<string> {
  return z.string().transform((s, ctx) => {
    const r = parse(s);
    if (!r.ok) {
      fail(ctx, code, r.error);
      return z.NEVER;
    }
    return format(r.value);
  });
}

/** An IP address, stored in canonical text. */
export const ipSchema = textSchema(parseIp, formatIp, 'invalid_ip');

/** A CIDR prefix with host bits zero, stored in canonical text. */
export const cidrSchema = textSchema(
  (s) => parseCidr(s),
  formatCidr,
  'invalid_cidr',
);

/** An element of an address set: a prefix, or a bare address meaning its /32 or /128. */
export const cidrOrIpSchema = textSchema((s) => parseCidr(s, { bareIp: true }), formatCidr, 'invalid_cidr');

/** An interface address (address + connected prefix length), stored in canonical text. */
export const ifAddrSchema = textSchema(parseIfAddr, formatIfAddr, 'invalid_address');

/**
 * A set of prefixes for matching (firewall and DoS rules). Order is kept, so an issue's index
 * points at what the user wrote; overlapping elements are left for the compiler (nftables
 * interval sets with auto-merge).
 */
export const cidrSetSchema = z.preprocess(
  scalarToList,
  z
    .array(cidrOrIpSchema, { error: (iss) => `expected a list of prefixes or addresses, e.g. [203.0.113.0/25], got ${show(iss.input)}` })
    .min(1, { error: 'an empty set matches nothing; list at least one prefix, or remove the field to match any address' }),
);

/**
 * Lets a set field be written as a single element (`dport: 443` for `dport: [443]`): the one-element
 * set is by far the most common, and the stored form is always the list.
 */
function scalarToList(v: unknown): unknown {
  return typeof v === 'string' || typeof v === 'number' ? [v] : v;
}

/** Parses a canonical (already validated) CIDR; throws on bad input, which would be a bug. */
export function mustCidr(text: string): Cidr {
  const r = parseCidr(text, { bareIp: true });
  if (!r.ok) throw new Error(`bug: stored CIDR ${text} does not parse: ${r.error}`);
  return r.value;
}

/** Parses a canonical (already validated) address; throws on bad input, which would be a bug. */
export function mustIp(text: string): IpAddr {
  const r = parseIp(text);
  if (!r.ok) throw new Error(`bug: stored address ${text} does not parse: ${r.error}`);
  return r.value;
}

/** Parses a canonical (already validated) interface address; throws on bad input (a bug). */
export function mustIfAddr(text: string): IfAddr {
  const r = parseIfAddr(text);
  if (!r.ok) throw new Error(`bug: stored interface address ${text} does not parse: ${r.error}`);
  return r.value;
}

/** Family of a canonical address or prefix text. */
export function familyOf(text: string): Family {
  return text.includes(':') ? 6 : 4;
}

// ---------------------------------------------------------------------------------------------
// Numeric ranges: ports, packet lengths, TTLs.

/** A closed range [low, high]. */
export type Range = readonly [low: number, high: number];

/** A range as written in the config: a single number `443` or text `20-21`. */
export type RangeText = number | string;

const RANGE_RE = /^\s*(\d{1,10})\s*(?:-\s*(\d{1,10})\s*)?$/;

/**
 * Parses `443`, `"443"` or `"20-21"` within [min, max]. `what` names the quantity in messages
 * (`port`, `packet length`).
 */
export function parseRange(value: unknown, min: number, max: number, what: string): Result<Range, string> {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < min || value > max) return err(`${show(value)} is not a ${what}: use ${min}–${max}`);
    return ok([value, value]);
  }
  if (typeof value !== 'string') return err(`expected a ${what} (${min}–${max}) or a range such as ${min}-${max}, got ${show(value)}`);
  const m = RANGE_RE.exec(value);
  if (!m) return err(`${show(value)} is not a ${what} or range; write a number ${min}–${max} or low-high, e.g. 20-21`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  for (const n of [lo, hi]) if (n < min || n > max) return err(`${show(value)}: ${n} is not a ${what}; use ${min}–${max}`);
  if (lo > hi) return err(`${show(value)}: the low end is above the high end; write ${hi}-${lo}`);
  return ok([lo, hi]);
}

/** Canonical text of a range: `443` for a single value, `"20-21"` otherwise. */
export function formatRange(r: Range): RangeText {
  return r[0] === r[1] ? r[0] : `${r[0]}-${r[1]}`;
}

/** Parses a canonical range value (number or `lo-hi`); throws on bad input, which would be a bug. */
export function mustRange(v: RangeText): Range {
  const r = parseRange(v, 0, Number.MAX_SAFE_INTEGER, 'value');
  if (!r.ok) throw new Error(`bug: stored range ${String(v)} does not parse`);
  return r.value;
}

/** Schema of one range within [min, max], stored as `formatRange` gives it. */
export function rangeSchema(min: number, max: number, what: string): z.ZodType<RangeText> {
  return z.union([z.number(), z.string()], { error: (iss) => `expected a ${what} (${min}–${max}) or a range low-high, got ${show(iss.input)}` }).transform((v, ctx) => {
    const r = parseRange(v, min, max, what);
    if (!r.ok) {
      fail(ctx, 'invalid_range', r.error);
      return z.NEVER;
    }
    return formatRange(r.value);
  });
}

/** Sorts ranges and merges overlapping or adjacent ones (20-21 and 22 → 20-22). */
export function mergeRanges(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** Highest port number. */
export const PORT_MAX = 65535;

/**
 * A port set: `[20-21, 443]`. Stored sorted and merged (`[443, 20-21, 21]` → `["20-21", 443]`),
 * which is what an nftables interval set needs anyway and makes equal sets equal values.
 */
export const portSetSchema = z.preprocess(
  scalarToList,
  z
    .array(rangeSchema(0, PORT_MAX, 'port'), { error: (iss) => `expected a list of ports and ranges, e.g. [20-21, 443], got ${show(iss.input)}` })
    .min(1, { error: 'an empty port set matches nothing; list at least one port, or remove the field to match any port' })
    .transform((items) => mergeRanges(items.map(mustRange)).map(formatRange)),
);

/** Ranges of a stored port set, for the compiler. */
export function portRanges(set: readonly RangeText[]): Range[] {
  return set.map(mustRange);
}

// ---------------------------------------------------------------------------------------------
// IP protocols.

/**
 * IANA protocol numbers we know by name. The name is the stored form (it reads better and nft
 * accepts it); other numbers are stored as numbers.
 */
export const PROTOCOLS: Readonly<Record<string, number>> = {
  icmp: 1,
  igmp: 2,
  ipip: 4,
  tcp: 6,
  egp: 8,
  udp: 17,
  dccp: 33,
  ipv6: 41,
  rsvp: 46,
  gre: 47,
  esp: 50,
  ah: 51,
  icmpv6: 58,
  ospf: 89,
  pim: 103,
  vrrp: 112,
  l2tp: 115,
  sctp: 132,
  udplite: 136,
};

/** Other spellings seen in /etc/protocols and tools, mapped to our name. */
const PROTOCOL_ALIASES: Readonly<Record<string, string>> = {
  'ipv6-icmp': 'icmpv6',
  'icmp6': 'icmpv6',
  'ipencap': 'ipip',
  'ip-in-ip': 'ipip',
  'udp-lite': 'udplite',
};

const PROTOCOL_BY_NUMBER = new Map(Object.entries(PROTOCOLS).map(([k, v]) => [v, k]));

/** A protocol in stored form: a known name, or a number 0–255 without a name. */
export type Protocol = string | number;

/** Parses a protocol name (any case, aliases allowed) or number 0–255 to its stored form. */
export function parseProtocol(value: unknown): Result<Protocol, string> {
  const usage = 'use a name (tcp, udp, icmp, icmpv6, gre, sctp, esp, …) or a number 0–255';
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\d{1,3}$/.test(value)) n = Number(value);
  else if (typeof value === 'string') {
    const lower = value.toLowerCase();
    const name = Object.hasOwn(PROTOCOL_ALIASES, lower) ? PROTOCOL_ALIASES[lower]! : lower;
    if (Object.hasOwn(PROTOCOLS, name)) return ok(name);
    return err(`unknown protocol ${show(value)}; ${usage}${didYouMean(lower, Object.keys(PROTOCOLS))}`);
  } else return err(`expected a protocol, got ${show(value)}; ${usage}`);
  if (!Number.isInteger(n) || n < 0 || n > 255) return err(`${show(value)} is not a protocol number; ${usage}`);
  return ok(PROTOCOL_BY_NUMBER.get(n) ?? n);
}

/** The IANA number of a stored protocol. */
export function protocolNumber(p: Protocol): number {
  if (typeof p === 'number') return p;
  const n = PROTOCOLS[p];
  if (n === undefined) throw new Error(`bug: unknown stored protocol ${p}`);
  return n;
}

/** A protocol, stored as its name when it has one (6 → "tcp"), else as its number. */
export const protocolSchema = z
  .union([z.string(), z.number()], { error: (iss) => `expected a protocol name or number, got ${show(iss.input)}` })
  .transform((v, ctx) => {
  const r = parseProtocol(v);
  if (!r.ok) {
    fail(ctx, 'invalid_protocol', r.error);
    return z.NEVER;
  }
  return r.value;
});

/** Protocols whose packets carry ports. */
export const PORT_PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp', 'dccp', 'udplite'];

/** The only family a protocol can travel in, or undefined when it travels in both. */
export function protocolFamily(p: Protocol | undefined): Family | undefined {
  if (p === 'icmp') return 4;
  if (p === 'icmpv6') return 6;
  return undefined;
}
