/**
 * DoS rules (`/dos/rules/<id>`) → the exact contents of the XDP DoS stage's maps for one data
 * center at one instant (bpf/dos.h): rule slots, the masks in use and the masked-key entries.
 * Pure: the same config, data center, instant and current slots give the same tables.
 *
 * - **Which rules.** Rules scoped to other data centers, and rules expired at `now`, are left
 *   out; `nextExpiry` says when the tables next change by the clock alone.
 * - **Tenant scope.** A rule scoped to a tenant matches only its prefixes: its dst is intersected
 *   with them (a rule without dst gets them all).
 * - **Entries.** Each rule becomes the product of its source prefixes, destination prefixes and
 *   source/destination port blocks (a range is aligned power-of-two blocks, ports.ts), per
 *   address family, each entry keyed by the masked fields and its mask. Fields that are ranges
 *   or compares (length, TTL, TCP flags, payload) stay in the rule's slot.
 * - **Slots.** Rules keep the slot they hold in the kernel (`current`: slot → id hash), so their
 *   counters keep counting; a new rule takes the lowest slot no rule holds now (a slot freed in
 *   this change is reused only by a later one, so a packet never meets a half-moved slot). With
 *   nothing held, slots follow sorted rule ids. The lowest slot wins among matches of one action.
 * - **Limits** are the C side's (dos-layout.ts): masks, rules per key, entries, slots. Going over
 *   is an error naming the rule that went over, the limit, and how to stay under it.
 */
import { err, ok, type Result } from '../../lib/result.ts';
import type { Config } from '../../model/config.ts';
import type { DosRule } from '../../model/dos.ts';
import { cidrContains, cidrOverlaps, formatCidr, mustCidr, mustRange, portRanges, protocolNumber, type Cidr } from '../../model/net.ts';
import { tcpFlagsMaskValue } from '../../model/match.ts';
import { dosKeyText, dosMaskText, maskOfKey, type DosKey, type DosMask, type DosRuleValue, type PortBlock } from '../../kernel/bpf/dos.ts';
import { DOS_MAX_ENTRIES, DOS_MAX_MASKS, DOS_MAX_RULES, DOS_SLOTS_PER_KEY } from '../../kernel/bpf/dos-layout.ts';
import { portBlocks } from './ports.ts';

/** Where and when to compile. */
export interface DosCompileOptions {
  readonly dc: string;
  /** The instant, ms since the epoch: rules with `expires` at or before it are left out. */
  readonly now: number;
  /** Slots held in the kernel now: slot → id hash (DosRuleValue.idHash). */
  readonly current?: ReadonlyMap<number, bigint>;
}

/** One rule in its slot. */
export interface DosSlotRule {
  readonly slot: number;
  readonly id: string;
  /** `/dos/rules/<id>`. */
  readonly path: string;
  readonly value: DosRuleValue;
  readonly expires?: string;
}

/** One dos_match entry. */
export interface DosEntry {
  readonly key: DosKey;
  /** Ascending. */
  readonly slots: readonly number[];
}

/** The DoS maps' contents for one data center (lists in canonical order). */
export interface DosTables {
  /** By slot. */
  readonly rules: readonly DosSlotRule[];
  /** By `dosMaskText`. */
  readonly masks: readonly DosMask[];
  /** By `dosKeyText`. */
  readonly entries: readonly DosEntry[];
  /** Earliest `expires` among the rules in force (ISO), when the tables change by the clock. */
  readonly nextExpiry?: string;
}

/** A rule that cannot be compiled: the code, its path (`/dos/rules/<id>/match/…`) and why, with the remedy. */
export interface DosCompileError {
  readonly code: 'empty_scope' | 'too_many_masks' | 'key_full' | 'too_many_entries' | 'too_many_rules';
  readonly path: string;
  readonly message: string;
}

const ANY_PORT: PortBlock = { port: 0, bits: 0 };

/** FNV-1a, 64 bits: the rule id's hash kept in its slot. */
export function dosIdHash(id: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(id, 'utf8')) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

/** FNV-1a, 32 bits. */
function fnv32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

const anyPrefix = (f: 4 | 6): Cidr => ({ family: f, start: 0n, len: 0 });

/** The rule's slot value. */
function ruleValue(id: string, r: DosRule): DosRuleValue {
  const m = r.match;
  const l4 = m.sport !== undefined || m.dport !== undefined || m.tcpFlags !== undefined || m.payload !== undefined;
  let payload: DosRuleValue['payload'];
  if (m.payload) {
    const bytes = Buffer.from(m.payload.bytes, 'hex');
    const mask = m.payload.mask ? Buffer.from(m.payload.mask, 'hex') : Buffer.alloc(bytes.length, 0xff);
    // Stored masked: the program compares (packet & mask) with it.
    payload = { offset: m.payload.offset, bytes: Buffer.from(bytes.map((b, i) => b & mask[i]!)).toString('hex'), mask: mask.toString('hex') };
  }
  const rl = r.rateLimit;
  return {
    action: r.action,
    l4,
    ...(m.length !== undefined ? { length: mustRange(m.length) } : {}),
    ...(m.ttl !== undefined ? { ttl: mustRange(m.ttl) } : {}),
    ...(m.tcpFlags ? { tcpFlags: tcpFlagsMaskValue(m.tcpFlags) } : {}),
    ...(payload ? { payload } : {}),
    ...(r.action === 'rate-limit' && rl
      ? { rate: { pps: rl.pps ?? 0, bps: rl.bps ?? 0, per: rl.per, prefix4: rl.per === 'src-prefix' ? (rl.prefixLength?.ipv4 ?? 24) : 0, prefix6: rl.per === 'src-prefix' ? (rl.prefixLength?.ipv6 ?? 64) : 0 } }
      : {}),
    // A changed rate or bucket key starts fresh buckets; a drop rule has none.
    gen: r.action === 'rate-limit' ? fnv32(`${id} ${JSON.stringify(rl)}`) : 0,
    idHash: dosIdHash(id),
  };
}

/** The rule's destination prefixes after the tenant scope, or an error. */
function scopedDst(config: Config, id: string, r: DosRule): Result<Cidr[] | undefined, DosCompileError> {
  const dst = r.match.dst?.map(mustCidr);
  const t = r.scope.tenant;
  if (t === undefined) return ok(dst);
  const tenant = Object.hasOwn(config.tenants, t) ? config.tenants[t] : undefined;
  const prefixes = Object.values(tenant?.prefixes ?? {}).map((p) => mustCidr(p.cidr));
  if (prefixes.length === 0)
    return err({ code: 'empty_scope', path: `/dos/rules/${id}/scope/tenant`, message: `tenant ${t} has no prefixes, so a rule scoped to it matches nothing; add the tenant's prefixes or remove scope.tenant` });
  if (dst === undefined) return ok(prefixes);
  const out: Cidr[] = [];
  for (const d of dst)
    for (const p of prefixes) {
      if (!cidrOverlaps(d, p)) continue;
      out.push(cidrContains(p, d) ? d : p);
    }
  if (out.length === 0)
    return err({
      code: 'empty_scope',
      path: `/dos/rules/${id}/match/dst`,
      message: `none of ${dst.map(formatCidr).join(', ')} lies in tenant ${t}'s prefixes (${prefixes.map(formatCidr).join(', ')}), so the rule matches nothing; use addresses of the tenant or change scope.tenant`,
    });
  const seen = new Set<string>();
  return ok(out.filter((c) => !seen.has(formatCidr(c)) && seen.add(formatCidr(c))));
}

/** The dos_match keys of one rule. */
function ruleKeys(r: DosRule, dst: Cidr[] | undefined): DosKey[] {
  const m = r.match;
  const src = m.src?.map(mustCidr);
  const proto = m.protocol === undefined ? null : protocolNumber(m.protocol);
  let families: (4 | 6)[] = m.protocol === 'icmp' ? [4] : m.protocol === 'icmpv6' ? [6] : [4, 6];
  if (src) families = families.filter((f) => src.some((c) => c.family === f));
  if (dst) families = families.filter((f) => dst.some((c) => c.family === f));
  const blocks = (set: typeof m.sport) => (set === undefined ? [ANY_PORT] : portRanges(set).flatMap(([lo, hi]) => portBlocks(lo, hi)));
  const sports = blocks(m.sport);
  const dports = blocks(m.dport);
  const keys: DosKey[] = [];
  for (const f of families) {
    const srcs = src ? src.filter((c) => c.family === f) : [anyPrefix(f)];
    const dsts = dst ? dst.filter((c) => c.family === f) : [anyPrefix(f)];
    for (const s of srcs) for (const d of dsts) for (const sp of sports) for (const dp of dports) keys.push({ family: f, proto, src: formatCidr(s), dst: formatCidr(d), sport: sp, dport: dp });
  }
  return keys;
}

/** Compiles the DoS rules in force in `dc` at `now` into map contents; every error, not only the first. */
export function compileDos(config: Config, opts: DosCompileOptions): Result<DosTables, DosCompileError[]> {
  const errors: DosCompileError[] = [];
  const ids = Object.keys(config.dos.rules).sort();
  const inForce = ids.filter((id) => {
    const r = config.dos.rules[id]!;
    if (r.scope.dcs !== undefined && !r.scope.dcs.includes(opts.dc)) return false;
    return r.expires === undefined || Date.parse(r.expires) > opts.now;
  });

  // Slots: keep held ones, then the lowest slot nobody holds now.
  const held = new Map<bigint, number>();
  for (const [slot, h] of opts.current ?? []) if (!held.has(h)) held.set(h, slot);
  const taken = new Set(opts.current?.keys() ?? []);
  const slotOf = new Map<string, number>();
  for (const id of inForce) {
    const s = held.get(dosIdHash(id));
    if (s !== undefined) slotOf.set(id, s);
  }
  let next = 0;
  for (const id of inForce) {
    if (slotOf.has(id)) continue;
    while (next < DOS_MAX_RULES && taken.has(next)) next++;
    if (next >= DOS_MAX_RULES) {
      errors.push({
        code: 'too_many_rules',
        path: `/dos/rules/${id}`,
        message: `no free rule slot: ${inForce.length} rules in force here and ${taken.size} slots held now, of ${DOS_MAX_RULES}; delete or expire rules (a slot freed now is reused on the next change)`,
      });
      break;
    }
    slotOf.set(id, next);
    taken.add(next);
  }

  const rules: DosSlotRule[] = [];
  const masks = new Map<string, DosMask>();
  const entries = new Map<string, { key: DosKey; slots: number[]; ids: string[] }>();
  let nextExpiry: string | undefined;
  for (const id of inForce) {
    const r = config.dos.rules[id]!;
    const slot = slotOf.get(id);
    if (slot === undefined) continue;
    const dst = scopedDst(config, id, r);
    if (!dst.ok) {
      errors.push(dst.error);
      continue;
    }
    const keys = ruleKeys(r, dst.value);
    const newMasks = new Map<string, DosMask>();
    for (const k of keys) {
      const m = maskOfKey(k);
      const t = dosMaskText(m);
      if (!masks.has(t)) newMasks.set(t, m);
    }
    if (masks.size + newMasks.size > DOS_MAX_MASKS) {
      errors.push({
        code: 'too_many_masks',
        path: `/dos/rules/${id}/match`,
        message: `this rule needs ${newMasks.size} more distinct masks (${[...newMasks.keys()].slice(0, 4).join('; ')}${newMasks.size > 4 ? '; …' : ''}) but ${masks.size} of the ${DOS_MAX_MASKS} are in use: each distinct combination of protocol, prefix lengths and port-block sizes is one mask (a port range splits into power-of-two blocks); merge rules onto the same prefix lengths, or use ranges aligned to powers of two (e.g. 1024-2047)`,
      });
      continue;
    }
    if (entries.size + keys.length > DOS_MAX_ENTRIES) {
      errors.push({
        code: 'too_many_entries',
        path: `/dos/rules/${id}/match`,
        message: `this rule expands to ${keys.length} entries (prefixes × port blocks) and the map would hold more than ${DOS_MAX_ENTRIES}; use fewer, wider prefixes or port ranges aligned to powers of two`,
      });
      continue;
    }
    let full = false;
    for (const k of keys) {
      const t = dosKeyText(k);
      const e = entries.get(t);
      if (e && e.slots.length >= DOS_SLOTS_PER_KEY) {
        errors.push({
          code: 'key_full',
          path: `/dos/rules/${id}/match`,
          message: `${DOS_SLOTS_PER_KEY} rules (${e.ids.join(', ')}) already share the key ${t}, the most one entry holds; merge rules with the same addresses, protocol and ports (e.g. one rule with a wider ttl or length range)`,
        });
        full = true;
        break;
      }
    }
    if (full) continue;
    for (const [t, m] of newMasks) masks.set(t, m);
    for (const k of keys) {
      const t = dosKeyText(k);
      const e = entries.get(t);
      if (e) {
        if (!e.slots.includes(slot)) {
          e.slots.push(slot);
          e.ids.push(id);
        }
      } else entries.set(t, { key: k, slots: [slot], ids: [id] });
    }
    rules.push({ slot, id, path: `/dos/rules/${id}`, value: ruleValue(id, r), ...(r.expires !== undefined ? { expires: r.expires } : {}) });
    if (r.expires !== undefined && (nextExpiry === undefined || Date.parse(r.expires) < Date.parse(nextExpiry))) nextExpiry = r.expires;
  }
  if (errors.length) return err(errors);
  const byText = <T>(m: Map<string, T>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return ok({
    rules: rules.sort((a, b) => a.slot - b.slot),
    masks: byText(masks),
    entries: byText(entries).map((e) => ({ key: e.key, slots: [...e.slots].sort((a, b) => a - b) })),
    ...(nextExpiry !== undefined ? { nextExpiry } : {}),
  });
}
