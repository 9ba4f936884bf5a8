/**
 * The agent's side of bpf/sample.h: sets the sampling rate (1 in N) and reads the per-CPU rings of
 * header summaries the XDP program fills. One read is one `bpftool map dump` of `smp_ring` (one
 * process, whatever the number of CPUs; an idle server's read is one lookup of the per-CPU cursors
 * instead); the reader keeps, per CPU, the newest sequence number it
 * has taken, so each read returns only the records written since the last one. The gap between
 * sequence numbers counts the samples the ring overwrote before they were read (`lost`), so rates
 * can still be estimated from every sample taken (`taken + lost`) × N.
 *
 * A ring is read while the program may be writing it: a record whose two sequence copies differ
 * was caught half-written and is skipped (counted as lost).
 */
import { err, ok, type Result } from '../../lib/result.ts';
import { formatIp } from '../../model/net.ts';
import { mapDump, mapLookup, mapUpdate, type BpfError } from './bpftool.ts';
import { u32Key } from './layout.ts';

/** Slots per CPU ring (bpf/sample.h SMP_SLOTS). */
export const SAMPLE_SLOTS = 1024;
/** Payload bytes a record keeps (bpf/sample.h SMP_PAYLOAD). */
export const SAMPLE_PAYLOAD = 16;

/**
 * Byte layout of `struct dos_sample_rec` (bpf/sample.h): field → [offset, size]. sample.test.ts
 * compares it with the compiled object's BTF, so the two cannot drift apart.
 */
export const SAMPLE_REC_LAYOUT = {
  name: 'dos_sample_rec',
  size: 88,
  fields: {
    seq: [0, 8],
    ktime: [8, 8],
    src: [16, 16],
    dst: [32, 16],
    sport: [48, 2],
    dport: [50, 2],
    len: [52, 2],
    family: [54, 1],
    proto: [55, 1],
    ttl: [56, 1],
    tcp_flags: [57, 1],
    payload_len: [58, 1],
    _pad: [59, 5],
    payload: [64, 16],
    seq_end: [80, 8],
  },
} as const satisfies { name: string; size: number; fields: Record<string, readonly [number, number]> };

/** Byte layout of `struct dos_sample_cfg`. */
export const SAMPLE_CFG_LAYOUT = { name: 'dos_sample_cfg', size: 8, fields: { every: [0, 4], _pad: [4, 4] } } as const;

/** One sampled packet's header summary. */
export interface Sample {
  readonly family: 4 | 6;
  /** IP protocol number (6 TCP, 17 UDP, …). */
  readonly proto: number;
  readonly src: string;
  readonly dst: string;
  /** TCP/UDP ports; 0 for other protocols and non-first fragments. */
  readonly sport: number;
  readonly dport: number;
  /** IP packet length in bytes. */
  readonly len: number;
  readonly ttl: number;
  /** TCP flag byte (fin 0x01 … cwr 0x80), 0 for other protocols. */
  readonly tcpFlags: number;
  /** The first bytes after the transport header, lower-case hex (up to 16 bytes). */
  readonly payload: string;
}

/** A decoded ring slot: its sequence copies and, when they agree and are non-zero, its sample. */
export interface SampleRecord {
  readonly seq: bigint;
  readonly seqEnd: bigint;
  readonly ktimeNs: bigint;
  readonly sample: Sample | null;
}

/** Decodes one ring slot (88 bytes, host byte order for counters, network order for addresses and ports). */
export function decodeSampleRecord(buf: Buffer): SampleRecord {
  const f = SAMPLE_REC_LAYOUT.fields;
  const seq = buf.readBigUInt64LE(f.seq[0]);
  const seqEnd = buf.readBigUInt64LE(f.seq_end[0]);
  const ktimeNs = buf.readBigUInt64LE(f.ktime[0]);
  const family = buf[f.family[0]];
  if (seq === 0n || seq !== seqEnd || (family !== 4 && family !== 6)) return { seq, seqEnd, ktimeNs, sample: null };
  const addr = (at: number): string => {
    if (family === 4) return formatIp({ family: 4, value: BigInt(buf.readUInt32BE(at)) });
    return formatIp({ family: 6, value: BigInt('0x' + buf.subarray(at, at + 16).toString('hex')) });
  };
  const payloadLen = Math.min(buf[f.payload_len[0]]!, SAMPLE_PAYLOAD);
  return {
    seq,
    seqEnd,
    ktimeNs,
    sample: {
      family,
      proto: buf[f.proto[0]]!,
      src: addr(f.src[0]),
      dst: addr(f.dst[0]),
      sport: buf.readUInt16BE(f.sport[0]),
      dport: buf.readUInt16BE(f.dport[0]),
      len: buf.readUInt16LE(f.len[0]),
      ttl: buf[f.ttl[0]]!,
      tcpFlags: buf[f.tcp_flags[0]]!,
      payload: buf.subarray(f.payload[0], f.payload[0] + payloadLen).toString('hex'),
    },
  };
}

/** What one read returns. */
export interface SampleBatch {
  /** The samples written since the previous read that were still in the rings, oldest first per CPU. */
  readonly samples: readonly Sample[];
  /** Samples written since the previous read but overwritten (or caught half-written) before it. */
  readonly lost: number;
  /** The rate the samples were taken at: 1 in `every` packets. */
  readonly every: number;
}

/** A source of samples: the BPF rings on Linux, or a fake fed by tests. */
export interface SampleSource {
  /** Sets the sampling rate: 1 in `every` packets (0: off). */
  setRate(every: number): Promise<Result<void, BpfError>>;
  /** Everything sampled since the previous read. */
  read(): Promise<Result<SampleBatch, BpfError>>;
}

/** Pin paths of the sampler's maps under a loaded edge's root (`edgePins(name).root`). */
export function samplePins(root: string): { readonly config: string; readonly cursor: string; readonly ring: string } {
  return { config: `${root}/maps/smp_config`, cursor: `${root}/maps/smp_cursor`, ring: `${root}/maps/smp_ring` };
}

/** Largest `every`: the config field is a u32. */
const EVERY_MAX = 0xffffffff;

/** The rate setting's problem, or undefined when it is a valid rate. */
export function rateProblem(every: number): string | undefined {
  if (!Number.isInteger(every) || every < 0 || every > EVERY_MAX) return `sampling rate ${every} is not 1 in N for a whole N from 1 to ${EVERY_MAX} (0: off)`;
  return undefined;
}

/**
 * Per-CPU bookkeeping shared by the Linux reader and tests: given every CPU's ring, the records
 * newer than the last read, oldest first, and how many were lost.
 */
export class RingCursor {
  /** Per CPU, the newest sequence number taken. */
  readonly #last = new Map<number, bigint>();
  #primed = false;

  /**
   * Whether no CPU has completed a sample since the last take, given each CPU's `smp_cursor`
   * (the seq of its last complete record): then the rings need not be read at all.
   */
  nothingNew(cursors: readonly bigint[]): boolean {
    return this.#primed && cursors.every((c, cpu) => c <= (this.#last.get(cpu) ?? 0n));
  }

  /**
   * Takes the new records of one read; `rings[cpu][slot]` are the raw slots. The first read only
   * notes where each ring is: what it holds was written before this reader started (an earlier
   * agent's run) and would count as a burst of old traffic.
   */
  take(rings: readonly (readonly Buffer[])[]): { samples: Sample[]; lost: number } {
    const samples: Sample[] = [];
    let lost = 0;
    const primed = this.#primed;
    this.#primed = true;
    rings.forEach((slots, cpu) => {
      const last = this.#last.get(cpu) ?? 0n;
      const fresh: { seq: bigint; sample: Sample }[] = [];
      let newest = last;
      for (const raw of slots) {
        const r = decodeSampleRecord(raw);
        // A half-written slot still shows its new seq at the start: it counts towards `newest`.
        if (r.seq > newest) newest = r.seq;
        if (r.seq > last && r.sample) fresh.push({ seq: r.seq, sample: r.sample });
      }
      this.#last.set(cpu, newest);
      if (!primed) return;
      fresh.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
      const written = Number(newest - last);
      lost += written - fresh.length;
      for (const f of fresh) samples.push(f.sample);
    });
    return { samples, lost };
  }
}

/** Reads the rings of a loaded edge (pins from `samplePins`); needs root and bpftool. */
export function linuxSampleSource(pins: ReturnType<typeof samplePins>): SampleSource {
  const cursor = new RingCursor();
  let every = 0;
  return {
    async setRate(n) {
      const bad = rateProblem(n);
      if (bad) return err({ code: 'bpf_failed', op: `map update ${pins.config}`, message: `${bad}; pick e.g. 1000` });
      const value = Buffer.alloc(SAMPLE_CFG_LAYOUT.size);
      value.writeUInt32LE(n, SAMPLE_CFG_LAYOUT.fields.every[0]);
      const r = await mapUpdate(pins.config, u32Key(0), value);
      if (r.ok) every = n;
      return r;
    },
    async read() {
      // An idle server's read costs one tiny lookup instead of a dump of every ring.
      const c = await mapLookup(pins.cursor, u32Key(0));
      if (c.ok && c.value?.perCpu && cursor.nothingNew(c.value.perCpu.map((b) => b.readBigUInt64LE(0)))) return ok({ samples: [], lost: 0, every });
      const d = await mapDump(pins.ring);
      if (!d.ok) return d;
      // Rows are slots; each has one value per CPU. Regroup as one ring per CPU.
      const rings: Buffer[][] = [];
      for (const row of d.value) {
        const values = row.perCpu ?? (row.value ? [row.value] : []);
        values.forEach((v, cpu) => (rings[cpu] ??= []).push(v));
      }
      for (const ring of rings)
        for (const v of ring)
          if (v.length !== SAMPLE_REC_LAYOUT.size)
            return err({ code: 'bpf_bad_output', op: `map dump ${pins.ring}`, message: `a slot is ${v.length} bytes, not ${SAMPLE_REC_LAYOUT.size}: the loaded xdp_edge.o is not this version's; reload the edge programs (npm run build:bpf, restart the agent)` });
      const t = cursor.take(rings);
      return ok({ samples: t.samples, lost: t.lost, every });
    },
  };
}

/** A fake source: tests `push` samples; `read` hands them out once. */
export interface FakeSampleSource extends SampleSource {
  push(...samples: Sample[]): void;
  /** Samples the "ring" lost since the last read (rates count them too). */
  lose(n: number): void;
  readonly every: number;
}

/** A fake sample source for the detector and agent tests. */
export function fakeSampleSource(every = 1): FakeSampleSource {
  let pending: Sample[] = [];
  let lost = 0;
  let rate = every;
  return {
    get every() {
      return rate;
    },
    async setRate(n) {
      const bad = rateProblem(n);
      if (bad) return err({ code: 'bpf_failed', op: 'map update smp_config', message: bad });
      rate = n;
      return ok(undefined);
    },
    async read() {
      const out = { samples: pending, lost, every: rate };
      pending = [];
      lost = 0;
      return ok(out);
    },
    push(...s) {
      pending.push(...s);
    },
    lose(n) {
      lost += n;
    },
  };
}
