/**
 * The attack detector: pure functions from one second of sampled packet headers to top talkers
 * and attacks, each attack with the mitigation rule that covers it. No clock, no store, no kernel:
 * detect-loop.ts feeds it and writes what it finds.
 *
 * Rates are estimates: every sample stands for `every` packets, and samples the ring overwrote
 * before they were read (`lost`) are spread over the ones kept, so a flood that outruns the ring
 * is not under-counted. Thresholds are compared per destination address of a tenant (an address
 * inside one of its prefixes): an attack is on an address, and so is the rule that stops it.
 *
 * The rule is the most specific one that still covers (nearly) the whole attack, decided on the
 * share of the attack's packets (DOMINANT = 80 %):
 * 1. one source prefix (/24, /64) sends most of it → drop that prefix towards the address;
 * 2. SYNs over the SYN threshold → rate-limit SYNs (without ACK) to the address, per address, at
 *    the threshold (sources of SYN floods are spoofed, so a source rule would miss);
 * 3. one protocol, port and payload start (8 bytes) → drop exactly that to the address;
 * 4. otherwise rate-limit what it has in common (protocol, port) at the pps threshold.
 * The rule id is a hash of tenant, match and action, so two servers that see the same attack
 * build the same id and converge on one store key.
 */
import { createHash } from 'node:crypto';
import { dosRuleSchema, type DosRule } from '../model/dos.ts';
import type { DetectionPolicy, Observation, Talker } from '../model/detection.ts';
import { ttlSeconds } from '../model/detection.ts';
import { formatCidr, parseIp, type Cidr } from '../model/net.ts';
import type { Sample } from '../kernel/bpf/sample.ts';

/** Share of an attack's packets a common feature must have to go into the rule. */
export const DOMINANT = 0.8;
/** Rows kept in each top list. */
export const TOP_K = 5;
/** Payload bytes a signature and a payload rule use. */
export const SIGNATURE_BYTES = 8;
/** Source prefix lengths attacks are grouped by: the smallest blocks commonly routed. */
export const SOURCE_PREFIX = { 4: 24, 6: 64 } as const;

const TCP = 6;
const UDP = 17;
const SYN = 0x02;
const ACK = 0x10;

/** A tenant as the detector needs it. */
export interface DetectTenant {
  readonly id: string;
  readonly prefixes: readonly Cidr[];
  readonly policy: DetectionPolicy;
}

/** One second's samples. */
export interface SampleWindow {
  readonly samples: readonly Sample[];
  /** Samples written but not read (ring overwritten). */
  readonly lost: number;
  /** 1 in `every` packets was sampled. */
  readonly every: number;
  /** Length of the window, seconds (time since the previous read). */
  readonly seconds: number;
}

/** An attack found in a window, with the rule that mitigates it. */
export interface Attack {
  readonly tenant: string;
  readonly policy: DetectionPolicy;
  readonly observation: Observation;
  readonly ruleId: string;
  /** Passes `dosRuleSchema`; stored form. */
  readonly rule: DosRule;
}

/** What a window showed. */
export interface WindowReport {
  /** Estimated packets per second of all sampled traffic. */
  readonly pps: number;
  readonly bps: number;
  readonly topDestinations: readonly Talker[];
  readonly topSources: readonly Talker[];
  readonly topSignatures: readonly Talker[];
  readonly attacks: readonly Attack[];
}

class Tally {
  packets = 0;
  bytes = 0;
  add(weight: number, len: number): void {
    this.packets += weight;
    this.bytes += weight * len;
  }
}

class Counts {
  readonly map = new Map<string, Tally>();
  add(key: string, weight: number, len: number): void {
    let t = this.map.get(key);
    if (!t) this.map.set(key, (t = new Tally()));
    t.add(weight, len);
  }
  /** The top rows by packets (ties by key, so the answer is deterministic). */
  top(k: number, seconds: number): Talker[] {
    return [...this.map.entries()]
      .sort(([ka, a], [kb, b]) => b.packets - a.packets || (ka < kb ? -1 : 1))
      .slice(0, k)
      .map(([key, t]) => ({ key, pps: round(t.packets / seconds), bps: round((t.bytes * 8) / seconds) }));
  }
  /** The key with the most packets and its share of `total`. */
  dominant(total: number): { key: string; share: number } | undefined {
    let best: [string, Tally] | undefined;
    for (const e of this.map) if (!best || e[1].packets > best[1].packets || (e[1].packets === best[1].packets && e[0] < best[0])) best = e;
    return best && total > 0 ? { key: best[0], share: best[1].packets / total } : undefined;
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

/** A protocol as the model spells it (name or number). */
function protoName(p: number): string {
  return PROTO_NAMES[p] ?? String(p);
}

/** Source prefix of an address (/24 or /64), as CIDR text. */
export function sourcePrefix(src: string): string {
  const ip = parseIp(src);
  if (!ip.ok) return src;
  const len = SOURCE_PREFIX[ip.value.family];
  const bits = ip.value.family === 4 ? 32 : 128;
  const start = ip.value.value & ~((1n << BigInt(bits - len)) - 1n);
  return formatCidr({ family: ip.value.family, start, len });
}

function isSyn(s: Sample): boolean {
  return s.proto === TCP && (s.tcpFlags & (SYN | ACK)) === SYN;
}

/** A sample's signature: protocol, destination port, TCP flags, and the payload's first bytes. */
export function signature(s: Sample): string {
  const parts = [protoName(s.proto)];
  if (s.proto === TCP || s.proto === UDP) parts.push(`dport ${s.dport}`);
  if (s.proto === TCP) parts.push(`flags ${tcpFlagText(s.tcpFlags)}`);
  if (s.payload.length >= 2 * 4) parts.push(`payload ${s.payload.slice(0, 2 * SIGNATURE_BYTES)}`);
  return parts.join(' ');
}

function tcpFlagText(f: number): string {
  const names = ['F', 'S', 'R', 'P', 'A', 'U', 'E', 'C'];
  return names.filter((_, i) => f & (1 << i)).join('') || '-';
}

/** Finds the tenant of a destination address through one map per prefix length in use. */
export class TenantIndex {
  readonly #byLen = new Map<string, Map<string, DetectTenant>>();
  readonly #lens: { family: 4 | 6; len: number }[] = [];

  constructor(tenants: readonly DetectTenant[]) {
    for (const t of tenants) {
      if (!t.policy.enabled) continue;
      for (const p of t.prefixes) {
        const k = `${p.family}/${p.len}`;
        let m = this.#byLen.get(k);
        if (!m) {
          this.#byLen.set(k, (m = new Map()));
          this.#lens.push({ family: p.family, len: p.len });
        }
        m.set(p.start.toString(), t);
      }
    }
    // Longest first: a nested prefix (not allowed across tenants, but harmless) wins.
    this.#lens.sort((a, b) => b.len - a.len);
  }

  /** The tenant whose prefix holds `dst`, if any. */
  lookup(dst: string): DetectTenant | undefined {
    const ip = parseIp(dst);
    if (!ip.ok) return undefined;
    const bits = ip.value.family === 4 ? 32 : 128;
    for (const { family, len } of this.#lens) {
      if (family !== ip.value.family) continue;
      const start = ip.value.value & ~((1n << BigInt(bits - len)) - 1n);
      const t = this.#byLen.get(`${family}/${len}`)?.get(start.toString());
      if (t) return t;
    }
    return undefined;
  }
}

/** Per attacked address: everything needed to judge it and build its rule. */
class DstStats {
  readonly all = new Tally();
  syn = 0;
  readonly sources = new Counts();
  readonly signatures = new Counts();
  readonly protos = new Counts();
  readonly dports = new Counts();
  readonly payloads = new Counts();
  readonly synDports = new Counts();
  constructor(
    readonly tenant: DetectTenant,
    readonly dst: string,
  ) {}
}

/** Judges one window. */
export function analyseWindow(w: SampleWindow, tenants: TenantIndex | readonly DetectTenant[], nowMs: number): WindowReport {
  const index = tenants instanceof TenantIndex ? tenants : new TenantIndex(tenants);
  const seconds = w.seconds > 0 ? w.seconds : 1;
  const kept = w.samples.length;
  // Every kept sample also stands for its share of the lost ones.
  const weight = kept === 0 ? 0 : (w.every * (kept + w.lost)) / kept;
  const destinations = new Counts();
  const sources = new Counts();
  const signatures = new Counts();
  const total = new Tally();
  const perDst = new Map<string, DstStats>();
  const tenantOf = new Map<string, DetectTenant | undefined>();
  for (const s of w.samples) {
    total.add(weight, s.len);
    destinations.add(s.dst, weight, s.len);
    const srcPrefix = sourcePrefix(s.src);
    sources.add(srcPrefix, weight, s.len);
    const sig = signature(s);
    signatures.add(sig, weight, s.len);
    let tenant = tenantOf.get(s.dst);
    if (!tenantOf.has(s.dst)) tenantOf.set(s.dst, (tenant = index.lookup(s.dst)));
    if (!tenant) continue;
    let d = perDst.get(s.dst);
    if (!d) perDst.set(s.dst, (d = new DstStats(tenant, s.dst)));
    d.all.add(weight, s.len);
    d.sources.add(srcPrefix, weight, s.len);
    d.signatures.add(sig, weight, s.len);
    d.protos.add(String(s.proto), weight, s.len);
    if (s.proto === TCP || s.proto === UDP) d.dports.add(`${s.proto}/${s.dport}`, weight, s.len);
    if ((s.proto === TCP || s.proto === UDP) && s.payload.length >= 2 * SIGNATURE_BYTES) d.payloads.add(`${s.proto}/${s.dport}/${s.payload.slice(0, 2 * SIGNATURE_BYTES)}`, weight, s.len);
    if (isSyn(s)) {
      d.syn += weight;
      d.synDports.add(String(s.dport), weight, s.len);
    }
  }
  const attacks: Attack[] = [];
  const sortedDsts = [...perDst.values()].sort((a, b) => b.all.packets - a.all.packets || (a.dst < b.dst ? -1 : 1));
  for (const d of sortedDsts) {
    const a = judge(d, seconds, nowMs);
    if (a) attacks.push(a);
  }
  return {
    pps: round(total.packets / seconds),
    bps: round((total.bytes * 8) / seconds),
    topDestinations: destinations.top(TOP_K, seconds),
    topSources: sources.top(TOP_K, seconds),
    topSignatures: signatures.top(TOP_K, seconds),
    attacks,
  };
}

function judge(d: DstStats, seconds: number, nowMs: number): Attack | undefined {
  const th = d.tenant.policy.thresholds;
  const pps = d.all.packets / seconds;
  const bps = (d.all.bytes * 8) / seconds;
  const synPps = d.syn / seconds;
  const crossed: ('pps' | 'bps' | 'synPps')[] = [];
  if (pps > th.pps) crossed.push('pps');
  if (bps > th.bps) crossed.push('bps');
  if (synPps > th.synPps) crossed.push('synPps');
  if (crossed.length === 0) return undefined;
  const observation: Observation = {
    dst: d.dst,
    pps: round(pps),
    bps: round(bps),
    synPps: round(synPps),
    crossed,
    sources: d.sources.top(TOP_K, seconds),
    signatures: d.signatures.top(TOP_K, seconds),
  };
  const built = buildRule(d, crossed, nowMs);
  if (!built) return undefined;
  return { tenant: d.tenant.id, policy: d.tenant.policy, observation, ...built };
}

/** The rule for an attack on one address (see the file comment for the order of choices). */
function buildRule(d: DstStats, crossed: readonly string[], nowMs: number): { ruleId: string; rule: DosRule } | undefined {
  const ttl = ttlSeconds(d.tenant.policy.ttl) ?? 600;
  const family = d.dst.includes(':') ? 6 : 4;
  const dst = `${d.dst}/${family === 4 ? 32 : 128}`;
  const total = d.all.packets;
  const th = d.tenant.policy.thresholds;
  const proto = d.protos.dominant(total);
  const protoNum = proto && proto.share >= DOMINANT ? Number(proto.key) : undefined;
  const src = d.sources.dominant(total);
  let body: Record<string, unknown>;
  let what: string;
  if (src && src.share >= DOMINANT) {
    body = { match: { src: [src.key], dst: [dst], ...(protoNum !== undefined ? { protocol: protoName(protoNum) } : {}) }, action: 'drop' };
    what = `${protoNum !== undefined ? protoName(protoNum).toUpperCase() + ' ' : ''}flood from ${src.key}`;
  } else if (crossed.includes('synPps')) {
    const port = d.synDports.dominant(d.syn);
    body = {
      match: { dst: [dst], protocol: 'tcp', ...(port && port.share >= DOMINANT ? { dport: [Number(port.key)] } : {}), tcpFlags: { set: ['syn'], unset: ['ack'] } },
      action: 'rate-limit',
      rateLimit: { pps: th.synPps, per: 'dst-ip' },
    };
    what = 'SYN flood';
  } else {
    const payload = d.payloads.dominant(total);
    const port = d.dports.dominant(total);
    if (payload && payload.share >= DOMINANT) {
      const [p, dport, bytes] = payload.key.split('/') as [string, string, string];
      body = { match: { dst: [dst], protocol: protoName(Number(p)), dport: [Number(dport)], payload: { offset: 0, bytes } }, action: 'drop' };
      what = `${protoName(Number(p)).toUpperCase()} flood to port ${dport} with payload ${bytes}`;
    } else {
      const [p, dport] = port && port.share >= DOMINANT ? (port.key.split('/') as [string, string]) : [undefined, undefined];
      const protocol = p !== undefined ? protoName(Number(p)) : protoNum !== undefined ? protoName(protoNum) : undefined;
      body = {
        match: { dst: [dst], ...(protocol !== undefined ? { protocol } : {}), ...(dport !== undefined ? { dport: [Number(dport)] } : {}) },
        action: 'rate-limit',
        rateLimit: { pps: th.pps, per: 'dst-ip' },
      };
      what = `${protocol !== undefined ? protocol.toUpperCase() + ' ' : ''}flood${dport !== undefined ? ` to port ${dport}` : ''}`;
    }
  }
  const ruleId = ruleIdOf(d.tenant.id, body);
  const parsed = dosRuleSchema.safeParse({
    description: `detected ${what} to ${d.dst}`.slice(0, 200),
    ...body,
    scope: { tenant: d.tenant.id },
    expires: new Date(nowMs + ttl * 1000).toISOString(),
  });
  // A rule built here that the model refuses is a bug in this file; skipping it keeps the agent up.
  return parsed.success ? { ruleId, rule: parsed.data } : undefined;
}

/**
 * The deterministic id of a detected rule: `auto-<tenant, up to 18 characters>-<8 hex>`, the hash
 * over the tenant and the rule's match and action (not its expiry), within the 32 characters of
 * an id.
 */
export function ruleIdOf(tenant: string, body: Record<string, unknown>): string {
  const h = createHash('sha256').update(canonical({ tenant, ...body })).digest('hex').slice(0, 8);
  return `auto-${tenant.slice(0, 18)}-${h}`;
}

/** JSON with sorted keys, so equal values hash equally whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** Whether a rule id is one detection makes. */
export function isDetectedRuleId(id: string): boolean {
  return /^auto-[a-z0-9-]{1,18}-[0-9a-f]{8}$/.test(id);
}
