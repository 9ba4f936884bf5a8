/**
 * Typed access to the DoS stage's maps (bpf/dos.h): the masks in use, the masked-key entries, the
 * rule slots, their counters and the stage's settings. Callers speak in prefixes, port blocks and
 * rule values; the byte layouts are in dos-layout.ts (checked against BTF). Every value has one
 * canonical text, shared by plans, golden files and the fake's dump (dos-fake.ts).
 *
 * Writes go through one `bpftool batch file` per call (in chunks), not one process per entry:
 * 10,000 rules are tens of thousands of map updates.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus as osCpus, endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { err, ok, type Result } from '../../lib/result.ts';
import { formatIpv4Addr, formatIpv6Addr, ipv4Bytes, ipv6Bytes } from '../../wire/addr.ts';
import { run } from '../exec.ts';
import { mapDump, mapLookupMany, type BpfError } from './bpftool.ts';
import { DOS_ACT, DOS_BKEY, DOS_CONF, DOS_F, DOS_KEY, DOS_MASK, DOS_PAYLOAD_MAX, DOS_RULE, DOS_SLOTS, DOS_SLOTS_PER_KEY, DOS_STATS, dosMapPins, type DosMapName } from './dos-layout.ts';

/** A block of ports: the `bits` high bits of `port` (0 bits: any port). */
export interface PortBlock {
  readonly port: number;
  readonly bits: number;
}

/** Which fields a key looks at: the tuple-space "mask". */
export interface DosMask {
  readonly family: 4 | 6;
  readonly proto: boolean;
  readonly srcLen: number;
  readonly dstLen: number;
  readonly sportBits: number;
  readonly dportBits: number;
}

/** A key of dos_match: a packet's fields under a mask. */
export interface DosKey {
  readonly family: 4 | 6;
  /** IP protocol number; null: any. */
  readonly proto: number | null;
  /** Masked source prefix, `addr/len` (len 0: any). */
  readonly src: string;
  readonly dst: string;
  readonly sport: PortBlock;
  readonly dport: PortBlock;
}

/** One rule slot's value: what is compared on a hit, and the action. */
export interface DosRuleValue {
  readonly action: 'drop' | 'rate-limit';
  /** The rule needs the transport header (ports, TCP flags or payload). */
  readonly l4: boolean;
  /** IP length range. */
  readonly length?: readonly [number, number];
  readonly ttl?: readonly [number, number];
  readonly tcpFlags?: { readonly mask: number; readonly value: number };
  /** Bytes (already masked) and mask as hex of equal length, at `offset` after the TCP/UDP header. */
  readonly payload?: { readonly offset: number; readonly bytes: string; readonly mask: string };
  /** Rate (0 = none) and bucket key; only with action rate-limit. */
  readonly rate?: { readonly pps: number; readonly bps: number; readonly per: 'dst-ip' | 'src-prefix'; readonly prefix4: number; readonly prefix6: number };
  /** Bucket generation: a changed rate starts fresh buckets. */
  readonly gen: number;
  /** Hash of the rule id: which rule holds the slot. */
  readonly idHash: bigint;
}

/** One rule's counters, summed over CPUs. */
export interface DosRuleStats {
  readonly packets: bigint;
  readonly bytes: bigint;
  readonly dropped: bigint;
}

/** The stage's settings (dos_conf[0]). */
export interface DosConf {
  /** Mask indexes below this are looked at. */
  readonly nmasks: number;
  /** CPUs a rate is split over. */
  readonly cpus: number;
}

/** Everything the DoS maps hold that the agent manages (not the counters or buckets). */
export interface DosKernelState {
  readonly conf: DosConf;
  /** Used mask indexes. */
  readonly masks: ReadonlyMap<number, DosMask>;
  /** Slots holding a rule. */
  readonly rules: ReadonlyMap<number, DosRuleValue>;
  /** dos_match, by `dosKeyText`. */
  readonly entries: ReadonlyMap<string, { readonly key: DosKey; readonly slots: readonly number[] }>;
}

/** One change to the DoS maps; `null` clears (masks) or deletes (rules, entries: they must exist). */
export type DosOp =
  | { readonly kind: 'conf'; readonly conf: DosConf }
  | { readonly kind: 'mask'; readonly index: number; readonly mask: DosMask | null }
  | { readonly kind: 'rule'; readonly slot: number; readonly rule: DosRuleValue | null }
  | { readonly kind: 'zero-stats'; readonly slot: number }
  | { readonly kind: 'entry'; readonly key: DosKey; readonly slots: readonly number[] | null };

/** What the reconciler needs of the DoS maps: Linux (below) and a fake (dos-fake.ts). */
export interface DosMapsApi {
  read(): Promise<Result<DosKernelState, BpfError>>;
  /** Applies the ops in order (Linux: one bpftool process per few thousand ops). */
  write(ops: readonly DosOp[]): Promise<Result<void, BpfError>>;
  /** Counters of these slots, summed over CPUs. */
  stats(slots: readonly number[]): Promise<Result<Map<number, DosRuleStats>, BpfError>>;
  /** CPUs that run XDP here: a rate is split over them. */
  cpus(): number;
}

// ---- canonical text --------------------------------------------------------------------------

const fam = (f: 4 | 6): string => (f === 4 ? 'ip' : 'ip6');

/** `80/16`, `1024/6`, `*` for any port. */
export function portBlockText(b: PortBlock): string {
  return b.bits === 0 ? '*' : `${b.port}/${b.bits}`;
}

/** Canonical text of a mask: `ip proto src/24 dst/0 sport/0 dport/16`. */
export function dosMaskText(m: DosMask): string {
  return `${fam(m.family)} ${m.proto ? 'proto' : '-'} src/${m.srcLen} dst/${m.dstLen} sport/${m.sportBits} dport/${m.dportBits}`;
}

/** Canonical text of a key: `ip proto 17 src 0.0.0.0/0 dst 203.0.113.0/25 sport 19/16 dport *`. */
export function dosKeyText(k: DosKey): string {
  return `${fam(k.family)} proto ${k.proto ?? '*'} src ${k.src} dst ${k.dst} sport ${portBlockText(k.sport)} dport ${portBlockText(k.dport)}`;
}

/** The mask a key was made under. */
export function maskOfKey(k: DosKey): DosMask {
  const len = (p: string) => Number(p.slice(p.indexOf('/') + 1));
  return { family: k.family, proto: k.proto !== null, srcLen: len(k.src), dstLen: len(k.dst), sportBits: k.sport.bits, dportBits: k.dport.bits };
}

const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;

/** Canonical text of a rule value. */
export function dosRuleText(r: DosRuleValue): string {
  const parts: string[] = [r.action];
  if (r.l4) parts.push('l4');
  if (r.length) parts.push(`length ${r.length[0]}-${r.length[1]}`);
  if (r.ttl) parts.push(`ttl ${r.ttl[0]}-${r.ttl[1]}`);
  if (r.tcpFlags) parts.push(`tcp-flags ${hex2(r.tcpFlags.value)}/${hex2(r.tcpFlags.mask)}`);
  if (r.payload) parts.push(`payload @${r.payload.offset} ${r.payload.bytes}/${r.payload.mask}`);
  if (r.rate) {
    const rt = r.rate;
    parts.push(`pps ${rt.pps} bps ${rt.bps} per ${rt.per}${rt.per === 'src-prefix' ? ` /${rt.prefix4} /${rt.prefix6}` : ''}`);
  }
  parts.push(`gen ${r.gen.toString(16).padStart(8, '0')} id ${r.idHash.toString(16).padStart(16, '0')}`);
  return parts.join(' ');
}

// ---- encoding ----------------------------------------------------------------------------------

const LE = endianness() === 'LE';

function u16(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}
function u32(b: Buffer, off: number, v: number): void {
  if (LE) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
function u64(b: Buffer, off: number, v: bigint): void {
  if (LE) b.writeBigUInt64LE(v, off);
  else b.writeBigUInt64BE(v, off);
}
const r16 = (b: Buffer, off: number) => (LE ? b.readUInt16LE(off) : b.readUInt16BE(off));
const r32 = (b: Buffer, off: number) => (LE ? b.readUInt32LE(off) : b.readUInt32BE(off));
const r64 = (b: Buffer, off: number) => (LE ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off));

/** A host-order u32 array index. */
export function slotKey(n: number): Buffer {
  const b = Buffer.alloc(4);
  u32(b, 0, n);
  return b;
}

/** Network-order 16-bit mask of the `bits` high bits. */
const portMask = (bits: number) => (bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff);
const bitsOfMask = (m: number) => {
  let n = 0;
  while (n < 16 && m & (0x8000 >> n)) n++;
  return n;
};

function prefixMaskBytes(len: number): Buffer {
  const b = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) b[i] = len >= (i + 1) * 8 ? 0xff : len <= i * 8 ? 0 : (0xff << (8 - (len - i * 8))) & 0xff;
  return b;
}

function addrBytes(family: 4 | 6, prefix: string): { bytes: Buffer; len: number } {
  const slash = prefix.indexOf('/');
  const addr = prefix.slice(0, slash);
  const out = Buffer.alloc(16);
  out.set(family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr));
  return { bytes: out, len: Number(prefix.slice(slash + 1)) };
}

function prefixText(family: 4 | 6, bytes: Buffer, len: number): string {
  return `${family === 4 ? formatIpv4Addr(bytes, 0) : formatIpv6Addr(bytes, 0)}/${len}`;
}

export function encodeDosMask(m: DosMask | null): Buffer {
  const b = Buffer.alloc(DOS_MASK.size);
  if (!m) return b;
  b[0] = m.family;
  b[1] = m.proto ? 1 : 0;
  b[2] = m.srcLen;
  b[3] = m.dstLen;
  b.writeUInt16BE(portMask(m.sportBits), 4);
  b.writeUInt16BE(portMask(m.dportBits), 6);
  prefixMaskBytes(m.srcLen).copy(b, 8);
  prefixMaskBytes(m.dstLen).copy(b, 24);
  return b;
}

/** Null for an unused index (family 0). */
export function decodeDosMask(b: Buffer): DosMask | null {
  if (b[0] !== 4 && b[0] !== 6) return null;
  return { family: b[0], proto: b[1] === 1, srcLen: b[2]!, dstLen: b[3]!, sportBits: bitsOfMask(b.readUInt16BE(4)), dportBits: bitsOfMask(b.readUInt16BE(6)) };
}

export function encodeDosKey(k: DosKey): Buffer {
  const b = Buffer.alloc(DOS_KEY.size);
  const src = addrBytes(k.family, k.src);
  const dst = addrBytes(k.family, k.dst);
  b[0] = k.family;
  b[1] = k.proto ?? 0;
  b[2] = src.len;
  b[3] = dst.len;
  b[4] = k.proto === null ? 0 : 1;
  b.writeUInt16BE(k.sport.port & portMask(k.sport.bits), 8);
  b.writeUInt16BE(portMask(k.sport.bits), 10);
  b.writeUInt16BE(k.dport.port & portMask(k.dport.bits), 12);
  b.writeUInt16BE(portMask(k.dport.bits), 14);
  src.bytes.copy(b, 16);
  dst.bytes.copy(b, 32);
  return b;
}

export function decodeDosKey(b: Buffer): DosKey {
  const family = b[0] === 6 ? 6 : 4;
  return {
    family,
    proto: b[4] ? b[1]! : null,
    src: prefixText(family, b.subarray(16, 32), b[2]!),
    dst: prefixText(family, b.subarray(32, 48), b[3]!),
    sport: { port: b.readUInt16BE(8), bits: bitsOfMask(b.readUInt16BE(10)) },
    dport: { port: b.readUInt16BE(12), bits: bitsOfMask(b.readUInt16BE(14)) },
  };
}

export function encodeDosSlots(slots: readonly number[]): Buffer {
  if (slots.length > DOS_SLOTS_PER_KEY) throw new Error(`bug: ${slots.length} slots in one dos_match value (at most ${DOS_SLOTS_PER_KEY})`);
  const b = Buffer.alloc(DOS_SLOTS.size);
  u16(b, 0, slots.length);
  slots.forEach((s, i) => u16(b, 2 + 2 * i, s));
  return b;
}

export function decodeDosSlots(b: Buffer): number[] {
  const n = Math.min(r16(b, 0), DOS_SLOTS_PER_KEY);
  return Array.from({ length: n }, (_, i) => r16(b, 2 + 2 * i));
}

export function encodeDosRule(r: DosRuleValue | null): Buffer {
  const b = Buffer.alloc(DOS_RULE.size);
  if (!r) return b;
  let flags = 0;
  b[0] = r.action === 'drop' ? DOS_ACT.drop : DOS_ACT.rate;
  if (r.l4) flags |= DOS_F.l4;
  if (r.tcpFlags) {
    flags |= DOS_F.tcpFlags;
    b[2] = r.tcpFlags.mask;
    b[3] = r.tcpFlags.value;
  }
  if (r.ttl) {
    flags |= DOS_F.ttl;
    b[4] = r.ttl[0];
    b[5] = r.ttl[1];
  }
  if (r.rate?.per === 'src-prefix') {
    flags |= DOS_F.perSrc;
    b[6] = r.rate.prefix4;
    b[7] = r.rate.prefix6;
  }
  if (r.length) {
    flags |= DOS_F.len;
    u16(b, 8, r.length[0]);
    u16(b, 10, r.length[1]);
  }
  if (r.payload) {
    flags |= DOS_F.payload;
    const bytes = Buffer.from(r.payload.bytes, 'hex');
    const mask = Buffer.from(r.payload.mask, 'hex');
    if (bytes.length > DOS_PAYLOAD_MAX || mask.length !== bytes.length) throw new Error(`bug: payload ${r.payload.bytes}/${r.payload.mask} does not fit dos_rule`);
    u16(b, 12, r.payload.offset);
    b[14] = bytes.length;
    bytes.copy(b, 48);
    mask.copy(b, 64);
  }
  b[1] = flags;
  u32(b, 16, r.gen);
  u64(b, 24, r.idHash);
  u64(b, 32, BigInt(r.rate?.pps ?? 0));
  u64(b, 40, BigInt(r.rate?.bps ?? 0));
  return b;
}

/** Null for a free slot (action none). */
export function decodeDosRule(b: Buffer): DosRuleValue | null {
  if (b[0] !== DOS_ACT.drop && b[0] !== DOS_ACT.rate) return null;
  const flags = b[1]!;
  const payLen = b[14]!;
  const rate = b[0] === DOS_ACT.rate;
  return {
    action: rate ? 'rate-limit' : 'drop',
    l4: (flags & DOS_F.l4) !== 0,
    ...(flags & DOS_F.len ? { length: [r16(b, 8), r16(b, 10)] as const } : {}),
    ...(flags & DOS_F.ttl ? { ttl: [b[4]!, b[5]!] as const } : {}),
    ...(flags & DOS_F.tcpFlags ? { tcpFlags: { mask: b[2]!, value: b[3]! } } : {}),
    ...(flags & DOS_F.payload ? { payload: { offset: r16(b, 12), bytes: b.subarray(48, 48 + payLen).toString('hex'), mask: b.subarray(64, 64 + payLen).toString('hex') } } : {}),
    ...(rate
      ? {
          rate: {
            pps: Number(r64(b, 32)),
            bps: Number(r64(b, 40)),
            per: flags & DOS_F.perSrc ? ('src-prefix' as const) : ('dst-ip' as const),
            prefix4: flags & DOS_F.perSrc ? b[6]! : 0,
            prefix6: flags & DOS_F.perSrc ? b[7]! : 0,
          },
        }
      : {}),
    gen: r32(b, 16),
    idHash: r64(b, 24),
  };
}

export function encodeDosConf(c: DosConf): Buffer {
  const b = Buffer.alloc(DOS_CONF.size);
  u32(b, 0, c.nmasks);
  u32(b, 4, c.cpus);
  return b;
}

export function decodeDosConf(b: Buffer): DosConf {
  return { nmasks: r32(b, 0), cpus: r32(b, 4) };
}

/** A dos_buckets key, for tests that look at a bucket. */
export function encodeDosBucketKey(slot: number, family: 4 | 6, gen: number, addr: string): Buffer {
  const b = Buffer.alloc(DOS_BKEY.size);
  u16(b, 0, slot);
  b[2] = family;
  u32(b, 4, gen);
  b.set(family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr), 8);
  return b;
}

function sumStats(perCpu: readonly Buffer[]): DosRuleStats {
  let packets = 0n;
  let bytes = 0n;
  let dropped = 0n;
  for (const c of perCpu) {
    if (c.length < DOS_STATS.size) continue;
    packets += r64(c, 0);
    bytes += r64(c, 8);
    dropped += r64(c, 16);
  }
  return { packets, bytes, dropped };
}

// ---- Linux ---------------------------------------------------------------------------------------

/** Lines per bpftool batch: bounded so one failure names a small chunk and argv stays short. */
const BATCH_LINES = 4000;
const BATCH_SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;

const hexArgs = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');

/** The bpftool batch line of one op. */
function opLine(pins: Readonly<Record<DosMapName, string>>, op: DosOp): string {
  const upd = (map: DosMapName, key: Buffer, value: Buffer) => `map update pinned ${pins[map]} key hex ${hexArgs(key)} value hex ${hexArgs(value)}`;
  switch (op.kind) {
    case 'conf':
      return upd('dos_conf', slotKey(0), encodeDosConf(op.conf));
    case 'mask':
      return upd('dos_masks', slotKey(op.index), encodeDosMask(op.mask));
    case 'rule':
      return op.rule === null ? `map delete pinned ${pins.dos_rules} key hex ${hexArgs(slotKey(op.slot))}` : upd('dos_rules', slotKey(op.slot), encodeDosRule(op.rule));
    case 'zero-stats':
      // bpftool copies one value to every CPU of a per-CPU map.
      return upd('dos_stats', slotKey(op.slot), Buffer.alloc(DOS_STATS.size));
    case 'entry':
      return op.slots === null ? `map delete pinned ${pins.dos_match} key hex ${hexArgs(encodeDosKey(op.key))}` : upd('dos_match', encodeDosKey(op.key), encodeDosSlots(op.slots));
  }
}

/** The DoS maps of an edge loaded under `root` (EdgePins.root), through bpftool. */
export function linuxDosMaps(root: string): DosMapsApi {
  const pins = dosMapPins(root);
  return {
    async read() {
      const conf = await mapDump(pins.dos_conf);
      if (!conf.ok) return conf;
      const masks = await mapDump(pins.dos_masks);
      if (!masks.ok) return masks;
      const rules = await mapDump(pins.dos_rules);
      if (!rules.ok) return rules;
      const entries = await mapDump(pins.dos_match);
      if (!entries.ok) return entries;
      const c = conf.value[0]?.value;
      const state: DosKernelState = {
        conf: c ? decodeDosConf(c) : { nmasks: 0, cpus: 0 },
        masks: new Map(masks.value.flatMap((e) => {
          const m = decodeDosMask(e.value ?? Buffer.alloc(0));
          return m ? [[r32(e.key, 0), m] as const] : [];
        })),
        rules: new Map(rules.value.flatMap((e) => {
          const r = e.value && e.value.length >= DOS_RULE.size ? decodeDosRule(e.value) : null;
          return r ? [[r32(e.key, 0), r] as const] : [];
        })),
        entries: new Map(entries.value.map((e) => {
          const key = decodeDosKey(e.key);
          return [dosKeyText(key), { key, slots: decodeDosSlots(e.value ?? Buffer.alloc(DOS_SLOTS.size)) }] as const;
        })),
      };
      return ok(state);
    },
    async write(ops) {
      if (ops.length === 0) return ok(undefined);
      const op = `dos maps write (${ops.length} changes)`;
      if (!BATCH_SAFE_PATH.test(root)) return err({ code: 'bpf_failed', op, message: `pin path ${JSON.stringify(root)} has characters a bpftool batch cannot carry; pin the maps under a plain path` });
      const dir = await mkdtemp(join(tmpdir(), 'anyedge-dos-'));
      try {
        for (let i = 0; i < ops.length; i += BATCH_LINES) {
          const chunk = ops.slice(i, i + BATCH_LINES);
          const file = join(dir, 'batch.txt');
          await writeFile(file, chunk.map((o) => opLine(pins, o) + '\n').join(''), { mode: 0o600 });
          const res = await run('bpftool', ['batch', 'file', file], { timeoutMs: 120_000 });
          if (!res.ok)
            return err({ code: 'bpf_failed', op, message: `${i} of ${ops.length} changes were applied before this batch of ${chunk.length} failed: ${res.error.message}; the next pass starts from what is there`, cause: res.error });
        }
        return ok(undefined);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async stats(slots) {
      const rows = await mapLookupMany(pins.dos_stats, slots.map(slotKey));
      if (!rows.ok) return rows;
      return ok(new Map(slots.map((s, i) => [s, sumStats(rows.value[i]?.perCpu ?? [])])));
    },
    cpus: () => Math.max(1, osCpus().length),
  };
}
