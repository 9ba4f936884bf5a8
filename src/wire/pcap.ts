/**
 * Classic libpcap capture files (draft-ietf-opsawg-pcap), the format tcpdump, tshark and scapy
 * all read and write.
 * ```
 * file:   | magic | major | minor | thiszone | sigfigs | snaplen | linktype |  24 bytes
 * record: | ts_sec | ts_frac | caplen | origlen | caplen bytes of frame…     |  16 + caplen
 * ```
 * The magic says both the byte order of every header field (it reads as 0xa1b2c3d4 or
 * 0xa1b23c4d in the writer's order) and the timestamp unit (µs or ns). We read all four
 * variants and write µs little-endian, what tcpdump writes on the machines we run on.
 *
 * - `readPcap(bytes)` → `Result<PcapFile, WireError>`: every record, timestamps normalised to
 *   nanoseconds. Never throws; every failure names the byte offset in the file.
 * - `PcapReader`: the same walk without allocating per record, for large files.
 * - `writePcap(records, opts)` → bytes; `pcapFileHeader` / `pcapRecordHeader` to stream.
 *
 * pcapng (tshark's default output) is not read: write classic pcap with `tshark -F pcap`.
 */
import { type Result, ok, err } from '../lib/result.ts';
import { EMPTY, copyBytes } from './bytes.ts';
import { type WireError, type WireFault, fault, wireError } from './error.ts';

/** Magic of a µs-resolution file, as read in the writer's byte order. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** Magic of a ns-resolution file. */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** pcapng's section header block type: recognised only to say so in the error. */
export const PCAPNG_MAGIC = 0x0a0d0d0a;
/** Length of the file header. */
export const PCAP_FILE_HEADER_LEN = 24;
/** Length of a record header. */
export const PCAP_RECORD_HEADER_LEN = 16;
/**
 * Snap length we write by default, and the bound we hold records to when a file claims a snap
 * length of 0 or more than this: libpcap's MAXIMUM_SNAPLEN, so a lying caplen cannot make us
 * treat megabytes of a file as one packet.
 */
export const PCAP_MAX_SNAPLEN = 262144;

/** Frozen faults the reader can report. */
export const PcapFaults = {
  fileTruncated: fault('truncated', 'pcap', 'file shorter than the 24-byte pcap header'),
  magic: fault('malformed', 'pcap', 'not a classic pcap file (unknown magic number)'),
  pcapng: fault('unsupported', 'pcap', 'a pcapng file; only classic pcap is read (convert with `editcap -F pcap` or write with `tshark -F pcap`)'),
  version: fault('unsupported', 'pcap', 'pcap major version is not 2'),
  recordTruncated: fault('truncated', 'pcap', 'file ends inside a 16-byte record header'),
  dataTruncated: fault('truncated', 'pcap', 'file ends before the captured length of a record'),
  capLenOverSnap: fault('malformed', 'pcap', 'record captured length exceeds the file snap length'),
  fracRange: fault('malformed', 'pcap', 'record timestamp fraction out of range (≥ 1e6 µs or ≥ 1e9 ns)'),
} as const;

/** What the file header says. */
export interface PcapHeader {
  /** Whether header fields are little-endian. */
  readonly littleEndian: boolean;
  /** Whether timestamps have ns (true) or µs resolution. */
  readonly nanos: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  /** Snap length: no record is longer. */
  readonly snapLen: number;
  /** Link type (LINKTYPE_*; 1 Ethernet, 101 raw IP), the low 16 bits of the field. */
  readonly linkType: number;
}

/** One captured frame. */
export interface PcapRecord {
  /** Seconds since the epoch. */
  readonly tsSec: number;
  /** Nanoseconds within the second (µs files are scaled by 1000). */
  readonly tsNsec: number;
  /** Length of the frame on the wire (≥ `data.length` when the capture was cut by the snap length). */
  readonly origLen: number;
  /** The captured bytes (a copy). */
  readonly data: Uint8Array;
  /** Offset of the record header in the file. */
  readonly fileOffset: number;
}

/** A whole file. */
export interface PcapFile extends PcapHeader {
  readonly records: readonly PcapRecord[];
}

function u32(b: Uint8Array, o: number, le: boolean): number {
  return le
    ? (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0
    : ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function u16(b: Uint8Array, o: number, le: boolean): number {
  return le ? b[o]! | (b[o + 1]! << 8) : (b[o]! << 8) | b[o + 1]!;
}

/**
 * Walks a pcap file record by record without allocating: `open` checks the header, then each
 * `next()` fills `dataOffset`, `capLen`, `origLen`, `tsSec`, `tsNsec` and returns true, or
 * returns false at the end of the file (`fault` null) or on a bad record (`fault` set, `faultAt`
 * its offset). Frames are `buf.subarray(dataOffset, dataOffset + capLen)` — or pass the offsets
 * straight to `FrameDecoder.decode`.
 */
export class PcapReader {
  /** The file's bytes. */
  buf: Uint8Array = EMPTY;
  /** Header fields are little-endian. */
  littleEndian = true;
  /** Timestamps have ns resolution (else µs). */
  nanos = false;
  /** Format version from the file header. */
  versionMajor = 0;
  /** Format minor version. */
  versionMinor = 0;
  /** Snap length from the file header. */
  snapLen = 0;
  /** Link type (low 16 bits of the header field). */
  linkType = 0;
  /** Offset of the next record header. */
  pos = 0;
  /** Current record: offset of its header. */
  recordOffset = 0;
  /** Current record: offset of its bytes. */
  dataOffset = 0;
  /** Current record: captured length. */
  capLen = 0;
  /** Current record: length on the wire. */
  origLen = 0;
  /** Current record: seconds. */
  tsSec = 0;
  /** Current record: nanoseconds within the second. */
  tsNsec = 0;
  /** Why the walk stopped early, or null. */
  fault: WireFault | null = null;
  /** File offset the fault points at. */
  faultAt = 0;
  /** Observed values for the fault message (cold path only). */
  detail = '';

  private failWith(f: WireFault, at: number, detail = ''): false {
    this.fault = f;
    this.faultAt = at;
    this.detail = detail;
    return false;
  }

  /** Reads the file header; false with `fault` set when it is not a pcap file we read. */
  open(buf: Uint8Array): boolean {
    this.buf = buf;
    this.fault = null;
    this.detail = '';
    this.pos = PCAP_FILE_HEADER_LEN;
    if (buf.length < PCAP_FILE_HEADER_LEN) return this.failWith(PcapFaults.fileTruncated, 0, `${buf.length} bytes`);
    const be = u32(buf, 0, false);
    const le = u32(buf, 0, true);
    if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) this.littleEndian = false;
    else if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) this.littleEndian = true;
    else if (be === PCAPNG_MAGIC) return this.failWith(PcapFaults.pcapng, 0);
    else return this.failWith(PcapFaults.magic, 0, `0x${be.toString(16).padStart(8, '0')}`);
    const L = this.littleEndian;
    this.nanos = u32(buf, 0, L) === PCAP_MAGIC_NS;
    this.versionMajor = u16(buf, 4, L);
    this.versionMinor = u16(buf, 6, L);
    if (this.versionMajor !== 2) return this.failWith(PcapFaults.version, 4, `version ${this.versionMajor}.${this.versionMinor}`);
    this.snapLen = u32(buf, 16, L);
    // The upper bits of the link-type field carry FCS information (draft-ietf-opsawg-pcap §4).
    this.linkType = u32(buf, 20, L) & 0xffff;
    return true;
  }

  /** Moves to the next record; see the class comment. */
  next(): boolean {
    if (this.fault) return false;
    const b = this.buf;
    const o = this.pos;
    if (o === b.length) return false;
    if (b.length - o < PCAP_RECORD_HEADER_LEN) return this.failWith(PcapFaults.recordTruncated, o, `${b.length - o} bytes left`);
    const L = this.littleEndian;
    const sec = u32(b, o, L);
    const frac = u32(b, o + 4, L);
    const cap = u32(b, o + 8, L);
    const orig = u32(b, o + 12, L);
    if (frac >= (this.nanos ? 1e9 : 1e6)) return this.failWith(PcapFaults.fracRange, o + 4, `${frac}`);
    const snap = this.snapLen === 0 || this.snapLen > PCAP_MAX_SNAPLEN ? PCAP_MAX_SNAPLEN : this.snapLen;
    if (cap > snap) return this.failWith(PcapFaults.capLenOverSnap, o + 8, `caplen ${cap}, snaplen ${this.snapLen}`);
    if (b.length - o - PCAP_RECORD_HEADER_LEN < cap) return this.failWith(PcapFaults.dataTruncated, o + 8, `caplen ${cap}, ${b.length - o - PCAP_RECORD_HEADER_LEN} bytes left`);
    this.recordOffset = o;
    this.dataOffset = o + PCAP_RECORD_HEADER_LEN;
    this.capLen = cap;
    this.origLen = orig;
    this.tsSec = sec;
    this.tsNsec = this.nanos ? frac : frac * 1000;
    this.pos = this.dataOffset + cap;
    return true;
  }
}

/** Reads a whole classic pcap file (any byte order, µs or ns). */
export function readPcap(bytes: Uint8Array): Result<PcapFile, WireError> {
  const r = new PcapReader();
  if (!r.open(bytes)) return err(wireError(r.fault!, r.faultAt, r.detail || undefined));
  const records: PcapRecord[] = [];
  while (r.next()) {
    records.push({ tsSec: r.tsSec, tsNsec: r.tsNsec, origLen: r.origLen, data: copyBytes(bytes, r.dataOffset, r.dataOffset + r.capLen), fileOffset: r.recordOffset });
  }
  if (r.fault) return err(wireError(r.fault, r.faultAt, `record ${records.length}${r.detail ? ', ' + r.detail : ''}`));
  return ok({
    littleEndian: r.littleEndian, nanos: r.nanos, versionMajor: r.versionMajor, versionMinor: r.versionMinor,
    snapLen: r.snapLen, linkType: r.linkType, records,
  });
}

/** A frame to write; the timestamp defaults to 0. */
export interface PcapWriteRecord {
  readonly data: Uint8Array;
  readonly tsSec?: number;
  /** Nanoseconds within the second; written as µs (truncated). */
  readonly tsNsec?: number;
  /** Length on the wire (default `data.length`). */
  readonly origLen?: number;
}

/** Options for {@link writePcap}. */
export interface PcapWriteOptions {
  /** Link type (default 1, Ethernet; 101 for raw IP). */
  readonly linkType?: number;
  /** Snap length (default {@link PCAP_MAX_SNAPLEN}); longer frames are cut to it. */
  readonly snapLen?: number;
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`pcap ${what} must be an integer in 0..2^32-1, got ${v}`);
}

/** The 24-byte file header: µs timestamps, little-endian, version 2.4. */
export function pcapFileHeader(opts: PcapWriteOptions = {}): Uint8Array {
  const snap = opts.snapLen ?? PCAP_MAX_SNAPLEN;
  const lt = opts.linkType ?? 1;
  checkU32(snap, 'snapLen');
  checkU32(lt, 'linkType');
  const out = new Uint8Array(PCAP_FILE_HEADER_LEN);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, PCAP_MAGIC_US, true);
  dv.setUint16(4, 2, true);
  dv.setUint16(6, 4, true);
  // thiszone and sigfigs stay 0: timestamps are UTC and libpcap ignores sigfigs.
  dv.setUint32(16, snap, true);
  dv.setUint32(20, lt, true);
  return out;
}

/** One record (header and the captured bytes, cut to `snapLen`). Throws RangeError on out-of-range fields. */
export function pcapRecord(rec: PcapWriteRecord, snapLen = PCAP_MAX_SNAPLEN): Uint8Array {
  const cap = Math.min(rec.data.length, snapLen);
  const sec = rec.tsSec ?? 0;
  const usec = Math.floor((rec.tsNsec ?? 0) / 1000);
  const orig = rec.origLen ?? rec.data.length;
  checkU32(sec, 'tsSec');
  if (!(usec >= 0 && usec < 1e6)) throw new RangeError(`pcap tsNsec must be in 0..999999999, got ${rec.tsNsec}`);
  checkU32(orig, 'origLen');
  if (orig < cap) throw new RangeError(`pcap origLen ${orig} is below the captured length ${cap}`);
  const out = new Uint8Array(PCAP_RECORD_HEADER_LEN + cap);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, sec, true);
  dv.setUint32(4, usec, true);
  dv.setUint32(8, cap, true);
  dv.setUint32(12, orig, true);
  out.set(rec.data.subarray(0, cap), PCAP_RECORD_HEADER_LEN);
  return out;
}

/** A whole file: header then records, µs little-endian. */
export function writePcap(records: readonly PcapWriteRecord[], opts: PcapWriteOptions = {}): Uint8Array {
  const snap = opts.snapLen ?? PCAP_MAX_SNAPLEN;
  const parts = [pcapFileHeader(opts), ...records.map((r) => pcapRecord(r, snap))];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
