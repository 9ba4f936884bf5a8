/**
 * Byte layouts of the DoS stage's structs (bpf/dos.h) and the numbers the C side fixes (map
 * sizes, flag bits). The layouts are data, so dos-layout.test.ts compares each with the compiled
 * object's BTF (size, every member's offset and size) and fails on any drift.
 */

/** One member: its C name, byte offset and byte size. */
export interface DosField {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
}

/** One struct of bpf/dos.h. */
export interface DosStruct {
  readonly name: string;
  readonly size: number;
  readonly fields: readonly DosField[];
}

const f = (name: string, offset: number, size: number): DosField => ({ name, offset, size });

/** struct dos_key: key of dos_match. */
export const DOS_KEY: DosStruct = {
  name: 'dos_key',
  size: 48,
  fields: [f('family', 0, 1), f('proto', 1, 1), f('src_len', 2, 1), f('dst_len', 3, 1), f('has_proto', 4, 1), f('pad', 5, 3), f('sport', 8, 2), f('sport_mask', 10, 2), f('dport', 12, 2), f('dport_mask', 14, 2), f('src', 16, 16), f('dst', 32, 16)],
};

/** struct dos_mask: value of dos_masks. */
export const DOS_MASK: DosStruct = {
  name: 'dos_mask',
  size: 40,
  fields: [f('family', 0, 1), f('has_proto', 1, 1), f('src_len', 2, 1), f('dst_len', 3, 1), f('sport_mask', 4, 2), f('dport_mask', 6, 2), f('src', 8, 16), f('dst', 24, 16)],
};

/** struct dos_slots: value of dos_match. */
export const DOS_SLOTS: DosStruct = { name: 'dos_slots', size: 16, fields: [f('n', 0, 2), f('slot', 2, 14)] };

/** struct dos_rule: value of dos_rules. */
export const DOS_RULE: DosStruct = {
  name: 'dos_rule',
  size: 80,
  fields: [
    f('action', 0, 1),
    f('flags', 1, 1),
    f('tcp_mask', 2, 1),
    f('tcp_value', 3, 1),
    f('ttl_lo', 4, 1),
    f('ttl_hi', 5, 1),
    f('src_plen4', 6, 1),
    f('src_plen6', 7, 1),
    f('len_lo', 8, 2),
    f('len_hi', 10, 2),
    f('pay_off', 12, 2),
    f('pay_len', 14, 1),
    f('pad', 15, 1),
    f('gen', 16, 4),
    f('reserved', 20, 4),
    f('id_hash', 24, 8),
    f('pps', 32, 8),
    f('bps', 40, 8),
    f('pay_bytes', 48, 16),
    f('pay_mask', 64, 16),
  ],
};

/** struct dos_stats: per-CPU value of dos_stats. */
export const DOS_STATS: DosStruct = { name: 'dos_stats', size: 24, fields: [f('packets', 0, 8), f('bytes', 8, 8), f('dropped', 16, 8)] };

/** struct dos_conf: value of dos_conf[0]. */
export const DOS_CONF: DosStruct = { name: 'dos_conf', size: 8, fields: [f('nmasks', 0, 4), f('cpus', 4, 4)] };

/** struct dos_bkey: key of dos_buckets. */
export const DOS_BKEY: DosStruct = { name: 'dos_bkey', size: 24, fields: [f('slot', 0, 2), f('family', 2, 1), f('pad', 3, 1), f('gen', 4, 4), f('addr', 8, 16)] };

/** struct dos_bucket: per-CPU value of dos_buckets. */
export const DOS_BUCKET: DosStruct = { name: 'dos_bucket', size: 24, fields: [f('last_ns', 0, 8), f('pkt_credit', 8, 8), f('byte_credit', 16, 8)] };

/** Every DoS struct, for the BTF test. */
export const DOS_STRUCTS: readonly DosStruct[] = [DOS_KEY, DOS_MASK, DOS_SLOTS, DOS_RULE, DOS_STATS, DOS_CONF, DOS_BKEY, DOS_BUCKET];

/** bpf/dos.h limits. */
export const DOS_MAX_MASKS = 32;
export const DOS_MAX_RULES = 16384;
export const DOS_MAX_ENTRIES = 131072;
export const DOS_SLOTS_PER_KEY = 7;
export const DOS_PAYLOAD_MAX = 16;

/** dos_rule.action values. */
export const DOS_ACT = { none: 0, drop: 1, rate: 2 } as const;

/** dos_rule.flags bits. */
export const DOS_F = { len: 0x01, ttl: 0x02, tcpFlags: 0x04, payload: 0x08, perSrc: 0x10, l4: 0x20 } as const;

/** The DoS maps, pinned by the loader under `<root>/maps/<name>` with the edge's other maps. */
export const DOS_MAPS = ['dos_masks', 'dos_match', 'dos_rules', 'dos_stats', 'dos_conf', 'dos_buckets'] as const;
export type DosMapName = (typeof DOS_MAPS)[number];

/** Pin paths of the DoS maps of an edge loaded under `root` (kernel/bpf/loader.ts). */
export function dosMapPins(root: string): Readonly<Record<DosMapName, string>> {
  return Object.fromEntries(DOS_MAPS.map((m) => [m, `${root}/maps/${m}`])) as Record<DosMapName, string>;
}
