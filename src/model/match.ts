/**
 * Packet match pieces shared by firewall rules and DoS rules: TCP flags in set/unset form, ICMP
 * type and code, and the consistency checks between a protocol and the fields that only make
 * sense with it (ports need TCP/UDP/…, flags need TCP, ICMP types need icmp/icmpv6, and the
 * address family must fit the protocol).
 */
import { z } from 'zod';
import { fail, intIn } from './schema.ts';
import type { Family, Protocol } from './net.ts';
import { PORT_PROTOCOLS, familyOf, protocolFamily } from './net.ts';
import { didYouMean, show } from './text.ts';

/** TCP flags in bit order: fin is 0x01, cwr is 0x80. */
export const TCP_FLAGS = ['fin', 'syn', 'rst', 'psh', 'ack', 'urg', 'ece', 'cwr'] as const;

/** A TCP flag name. */
export type TcpFlag = (typeof TCP_FLAGS)[number];

const flagList = z.array(z.enum(TCP_FLAGS, { error: (iss) => `unknown TCP flag ${show(iss.input)}; use ${TCP_FLAGS.join(', ')}${typeof iss.input === 'string' ? didYouMean(iss.input, TCP_FLAGS) : ''}` }));

/**
 * TCP flags as "these set, those unset", the readable face of nft's `tcp flags & mask == value`:
 * mask = set ∪ unset, value = set. Flags not listed are not looked at. Stored with both lists
 * present, in bit order, without duplicates.
 */
export const tcpFlagsSchema = z
  .strictObject({ set: flagList.optional(), unset: flagList.optional() })
  .superRefine((f, ctx) => {
    const set = f.set ?? [];
    const unset = f.unset ?? [];
    if (set.length + unset.length === 0) fail(ctx, 'empty', 'lists no flags; name at least one flag under set or unset, or remove tcpFlags');
    for (const [i, flag] of unset.entries())
      if (set.includes(flag)) fail(ctx, 'conflict', `${flag} is both set and unset, so nothing can match; keep it in one list`, ['unset', i]);
  })
  .transform((f) => ({
    set: TCP_FLAGS.filter((x) => f.set?.includes(x)),
    unset: TCP_FLAGS.filter((x) => f.unset?.includes(x)),
  }));

/** Stored TCP flag condition. */
export type TcpFlags = z.output<typeof tcpFlagsSchema>;

/** The nft form of a flag condition: `tcp flags & mask == value`. */
export function tcpFlagsMaskValue(f: TcpFlags): { mask: number; value: number } {
  const bit = (x: TcpFlag): number => 1 << TCP_FLAGS.indexOf(x);
  const value = f.set.reduce((a, x) => a | bit(x), 0);
  return { mask: f.unset.reduce((a, x) => a | bit(x), value), value };
}

/** ICMP (IPv4) type names, as nft spells them. */
export const ICMP_TYPES: Readonly<Record<string, number>> = {
  'echo-reply': 0,
  'destination-unreachable': 3,
  'source-quench': 4,
  redirect: 5,
  'echo-request': 8,
  'router-advertisement': 9,
  'router-solicitation': 10,
  'time-exceeded': 11,
  'parameter-problem': 12,
  'timestamp-request': 13,
  'timestamp-reply': 14,
};

/** ICMPv6 type names, as nft spells them. */
export const ICMPV6_TYPES: Readonly<Record<string, number>> = {
  'destination-unreachable': 1,
  'packet-too-big': 2,
  'time-exceeded': 3,
  'parameter-problem': 4,
  'echo-request': 128,
  'echo-reply': 129,
  'mld-listener-query': 130,
  'mld-listener-report': 131,
  'mld-listener-done': 132,
  'nd-router-solicit': 133,
  'nd-router-advert': 134,
  'nd-neighbor-solicit': 135,
  'nd-neighbor-advert': 136,
  'nd-redirect': 137,
};

/**
 * ICMP type (name or number 0–255) and optional code. Names depend on the protocol (echo-request
 * is 8 in ICMP and 128 in ICMPv6), so they are resolved to numbers by the rule that holds the
 * protocol (`resolveIcmp`); the stored form is always numeric.
 */
export const icmpSchema = z.strictObject({
  type: z.union([z.number(), z.string()], { error: (iss) => `expected an ICMP type name or number, got ${show(iss.input)}` }),
  code: intIn(0, 255).optional(),
});

/** Stored ICMP condition: numeric type and optional code. */
export interface IcmpMatch {
  readonly type: number;
  readonly code?: number;
}

/**
 * Resolves an ICMP condition against the rule's protocol, adding issues under `icmp` when the
 * type is unknown or the protocol is not icmp/icmpv6. Returns the numeric form, or undefined on
 * failure.
 */
export function resolveIcmp(icmp: z.output<typeof icmpSchema>, protocol: Protocol | undefined, ctx: z.RefinementCtx): IcmpMatch | undefined {
  if (protocol !== 'icmp' && protocol !== 'icmpv6') {
    fail(ctx, 'needs_protocol', `an ICMP type needs protocol icmp or icmpv6${protocol === undefined ? '' : `, not ${String(protocol)}`}; set protocol`, ['icmp']);
    return undefined;
  }
  let type: number;
  if (typeof icmp.type === 'number') {
    if (!Number.isInteger(icmp.type) || icmp.type < 0 || icmp.type > 255) {
      fail(ctx, 'invalid_value', `must be an integer 0–255 or a type name; got ${show(icmp.type)}`, ['icmp', 'type']);
      return undefined;
    }
    type = icmp.type;
  } else {
    const table = protocol === 'icmp' ? ICMP_TYPES : ICMPV6_TYPES;
    const name = icmp.type.toLowerCase();
    if (!Object.hasOwn(table, name)) {
      fail(ctx, 'invalid_value', `unknown ${protocol} type ${show(icmp.type)}; use a number 0–255 or one of ${Object.keys(table).join(', ')}${didYouMean(name, Object.keys(table))}`, ['icmp', 'type']);
      return undefined;
    }
    type = table[name]!;
  }
  return icmp.code === undefined ? { type } : { type, code: icmp.code };
}

/** The L3/L4 fields shared by firewall and DoS matches, as checked by `checkL4`. */
export interface L4Fields {
  readonly src?: readonly string[];
  readonly dst?: readonly string[];
  readonly protocol?: Protocol;
  readonly sport?: readonly unknown[];
  readonly dport?: readonly unknown[];
  readonly tcpFlags?: unknown;
}

/**
 * Checks that protocol-specific fields come with a protocol that has them, and that the address
 * family of every prefix can carry the protocol. An element of the wrong family is reported
 * where it stands (`dst.1`), since a silently never-matching element hides a mistake.
 */
export function checkL4(m: L4Fields, ctx: z.RefinementCtx): void {
  const p = m.protocol;
  for (const field of ['sport', 'dport'] as const) {
    if (m[field] !== undefined && (p === undefined || !PORT_PROTOCOLS.includes(p)))
      fail(ctx, 'needs_protocol', `ports need protocol ${PORT_PROTOCOLS.join(', ')}${p === undefined ? '' : `, not ${String(p)}`}; set protocol`, [field]);
  }
  if (m.tcpFlags !== undefined && p !== 'tcp') fail(ctx, 'needs_protocol', `TCP flags need protocol tcp${p === undefined ? '' : `, not ${String(p)}`}; set protocol: tcp`, ['tcpFlags']);

  const pf = protocolFamily(p);
  const families: Record<'src' | 'dst', Set<Family>> = { src: new Set(), dst: new Set() };
  for (const side of ['src', 'dst'] as const) {
    for (const [i, cidr] of (m[side] ?? []).entries()) {
      const f = familyOf(cidr);
      if (pf !== undefined && f !== pf) {
        const other = pf === 4 ? 'icmpv6' : 'icmp';
        fail(ctx, 'family_mismatch', `${cidr} is IPv${f} but protocol ${String(p)} is IPv${pf} only; put it in a separate rule with protocol ${other}`, [side, i]);
        continue;
      }
      families[side].add(f);
    }
  }
  if (m.src && m.dst && families.src.size && families.dst.size && ![...families.src].some((f) => families.dst.has(f))) {
    const only = (s: Set<Family>): string => `IPv${[...s][0]}`;
    fail(ctx, 'family_mismatch', `dst has only ${only(families.dst)} prefixes and src only ${only(families.src)}; no packet has both, so split the rule by family`, ['dst']);
  }
}
