/**
 * The BPF side of the kernel boundary, through `bpftool` with argv arrays: load objects and pin
 * their programs and maps, read and write map entries, and run a program on a packet with
 * BPF_PROG_TEST_RUN. JSON output (`bpftool -j`) is parsed, never scraped text.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { err, ok, type Result } from '../../lib/result.ts';
import { run, type ExecError } from '../exec.ts';
import { u32Key } from './layout.ts';

/** A failed BPF operation, naming what was attempted. */
export interface BpfError {
  readonly code: 'bpf_failed' | 'bpf_bad_output';
  readonly op: string;
  readonly message: string;
  readonly cause?: ExecError | Error;
}

/** Program types bpftool cannot guess from a section name alone. */
export type ProgType = 'xdp' | 'tc';

/** Loads every program of an ELF object and pins programs under `progDir`, maps under `mapDir`. */
export async function loadAll(
  object: string,
  progDir: string,
  mapDir: string,
  opts: { type?: ProgType; reuseMaps?: ReadonlyArray<{ name: string; pinned: string }> } = {},
): Promise<Result<void, BpfError>> {
  const args = ['prog', 'loadall', object, progDir];
  if (opts.type) args.push('type', opts.type);
  for (const m of opts.reuseMaps ?? []) args.push('map', 'name', m.name, 'pinned', m.pinned);
  args.push('pinmaps', mapDir);
  return wrap(`load ${object}`, await run('bpftool', args));
}

/** Removes a pin directory; what is no longer referenced is freed by the kernel. Gone is success. */
export async function unpin(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Creates or replaces one map entry. */
export async function mapUpdate(map: string, key: Buffer, value: Buffer): Promise<Result<void, BpfError>> {
  const args = ['map', 'update', 'pinned', map, 'key', 'hex', ...hex(key), 'value', 'hex', ...hex(value)];
  return wrap(`map update ${map}`, await run('bpftool', args));
}

/** Deletes one map entry; an entry already gone is success. */
export async function mapDelete(map: string, key: Buffer): Promise<Result<void, BpfError>> {
  const res = await run('bpftool', ['map', 'delete', 'pinned', map, 'key', 'hex', ...hex(key)]);
  if (!res.ok && /No such file or directory|not found/i.test(res.error.stderr)) return ok(undefined);
  return wrap(`map delete ${map}`, res);
}

/** One map entry as raw bytes; per-CPU maps give one value per CPU. */
export interface MapEntry {
  readonly key: Buffer;
  readonly value?: Buffer;
  readonly perCpu?: readonly Buffer[];
}

/** Reads every entry of a pinned map. */
export async function mapDump(map: string): Promise<Result<MapEntry[], BpfError>> {
  const res = await run('bpftool', ['-j', 'map', 'dump', 'pinned', map]);
  if (!res.ok) return err({ code: 'bpf_failed', op: `map dump ${map}`, message: res.error.message, cause: res.error });
  try {
    const rows = JSON.parse(res.value.stdout) as DumpRow[];
    return ok(rows.map(toEntry));
  } catch (e) {
    return err({ code: 'bpf_bad_output', op: `map dump ${map}`, message: `unreadable bpftool output: ${(e as Error).message}`, cause: e as Error });
  }
}

/** Reads one entry; `null` when the key is absent. */
export async function mapLookup(map: string, key: Buffer): Promise<Result<MapEntry | null, BpfError>> {
  const res = await run('bpftool', ['-j', 'map', 'lookup', 'pinned', map, 'key', 'hex', ...hex(key)]);
  if (!res.ok) {
    if (/No such file or directory|not found/i.test(res.error.stderr + res.error.message)) return ok(null);
    return err({ code: 'bpf_failed', op: `map lookup ${map}`, message: res.error.message, cause: res.error });
  }
  try {
    const r = JSON.parse(res.value.stdout) as DumpRow;
    return ok(toEntry(r));
  } catch (e) {
    return err({ code: 'bpf_bad_output', op: `map lookup ${map}`, message: `unreadable bpftool output: ${(e as Error).message}`, cause: e as Error });
  }
}

/** What a pin path may contain to be written into a bpftool batch file (which bpftool splits on blanks). */
const BATCH_SAFE_PATH = /^\/[A-Za-z0-9_./-]+$/;

/**
 * Reads many entries of one pinned map with one bpftool process (`bpftool -j batch file`): a
 * reader of N keys pays one process start instead of N. Meant for array maps, where every index
 * below max_entries exists: bpftool stops a batch at its first failing command, and then the
 * whole read fails (no partial answer). Entries come back in the order of `keys`.
 */
export async function mapLookupMany(map: string, keys: readonly Buffer[]): Promise<Result<MapEntry[], BpfError>> {
  const op = `map lookup ${map} (${keys.length} keys)`;
  if (keys.length === 0) return ok([]);
  // The batch file is bpftool's own command syntax, not a shell; a path with blanks or quotes
  // would still be split differently than meant, so only plain pin paths are accepted.
  if (!BATCH_SAFE_PATH.test(map)) return err({ code: 'bpf_failed', op, message: `pin path ${JSON.stringify(map)} has characters a bpftool batch cannot carry; pin the maps under a plain path` });
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-batch-'));
  try {
    const file = join(dir, 'batch.txt');
    await writeFile(file, keys.map((k) => `map lookup pinned ${map} key hex ${hex(k).join(' ')}\n`).join(''), { mode: 0o600 });
    const res = await run('bpftool', ['-j', 'batch', 'file', file]);
    if (!res.ok) return err({ code: 'bpf_failed', op, message: res.error.message, cause: res.error });
    let rows: Array<{ output: DumpRow | null }>;
    try {
      rows = JSON.parse(res.value.stdout) as Array<{ output: DumpRow | null }>;
    } catch (e) {
      return err({ code: 'bpf_bad_output', op, message: `unreadable bpftool output: ${(e as Error).message}`, cause: e as Error });
    }
    if (!Array.isArray(rows) || rows.length !== keys.length || rows.some((r) => r.output === null || r.output === undefined))
      return err({ code: 'bpf_bad_output', op, message: `bpftool answered ${Array.isArray(rows) ? rows.length : 0} of ${keys.length} lookups; report this with the bpftool version (bpftool version)` });
    return ok(rows.map((r) => toEntry(r.output as DumpRow)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type DumpRow = { key: string[]; value?: string[]; values?: Array<{ cpu: number; value: string[] }> };

function toEntry(r: DumpRow): MapEntry {
  return r.values
    ? { key: fromHex(r.key), perCpu: [...r.values].sort((a, b) => a.cpu - b.cpu).map((v) => fromHex(v.value)) }
    : { key: fromHex(r.key), value: fromHex(r.value ?? []) };
}

/** Result of one BPF_PROG_TEST_RUN. */
export interface ProgRunResult {
  readonly retval: number;
  readonly durationNs: number;
  readonly dataOut: Buffer;
}

/**
 * Runs a pinned program once on `dataIn` (BPF_PROG_TEST_RUN) and returns its verdict and the packet
 * as the program left it. `ctxIn` is a raw `struct __sk_buff`/`xdp_md` prefix when the program
 * needs context fields (see `skbCtx`); `netns` runs it inside a namespace. bpftool takes files,
 * so the packet goes through a private temp directory that is removed before returning.
 */
export async function progRun(prog: string, dataIn: Buffer, opts: { ctxIn?: Buffer; repeat?: number; netns?: string } = {}): Promise<Result<ProgRunResult, BpfError>> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-progrun-'));
  try {
    const inPath = join(dir, 'in.bin');
    const outPath = join(dir, 'out.bin');
    await writeFile(inPath, dataIn);
    const args = ['-j', 'prog', 'run', 'pinned', prog, 'data_in', inPath, 'data_out', outPath];
    if (opts.ctxIn) {
      const ctxPath = join(dir, 'ctx.bin');
      await writeFile(ctxPath, opts.ctxIn);
      args.push('ctx_in', ctxPath);
    }
    args.push('repeat', String(opts.repeat ?? 1));
    // A skb program runs on the device ctx_in names, looked up in bpftool's own namespace;
    // nsenter switches only that (ip netns exec would remount /sys and hide the pins).
    const res = opts.netns === undefined ? await run('bpftool', args) : await run('nsenter', [`--net=/run/netns/${opts.netns}`, 'bpftool', ...args]);
    if (!res.ok) return err({ code: 'bpf_failed', op: `prog run ${prog}`, message: res.error.message, cause: res.error });
    let j: { retval: number; duration: number };
    try {
      j = JSON.parse(res.value.stdout) as { retval: number; duration: number };
    } catch (e) {
      return err({ code: 'bpf_bad_output', op: `prog run ${prog}`, message: `unreadable bpftool output: ${(e as Error).message}`, cause: e as Error });
    }
    // A dropped packet may leave no output file.
    const dataOut = await readFile(outPath).catch(() => Buffer.alloc(0));
    return ok({ retval: j.retval, durationNs: j.duration, dataOut });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A `struct __sk_buff` for ctx_in that only sets `ifindex` (offset 40): the device the run uses. */
export function skbCtx(ifindex: number): Buffer {
  const b = Buffer.alloc(44);
  u32Key(ifindex).copy(b, 40);
  return b;
}

function wrap(op: string, res: Result<unknown, ExecError>): Result<void, BpfError> {
  return res.ok ? ok(undefined) : err({ code: 'bpf_failed', op, message: res.error.message, cause: res.error });
}

function hex(b: Buffer): string[] {
  return [...b].map((x) => x.toString(16).padStart(2, '0'));
}

function fromHex(bytes: readonly string[]): Buffer {
  return Buffer.from(bytes.map((h) => parseInt(h, 16)));
}
