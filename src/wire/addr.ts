/**
 * Address text ↔ bytes: IPv4 dotted quad, IPv6 (RFC 4291 §2.2 input, RFC 5952 output), MAC.
 *
 * Reprs carry addresses as canonical text, so they print, compare with `deepStrictEqual` and
 * match what tshark and scapy print. Parsing text is strict (no leading zeros in IPv4 octets, no
 * zone ids) because the same text must mean the same bytes to every tool.
 */
import { type Result, ok, err } from '../lib/result.ts';
import { type WireError } from './error.ts';

function addrErr(message: string): WireError {
  return { code: 'malformed', layer: 'addr', offset: 0, message };
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Parses `192.0.2.1` into 4 bytes. Octets with leading zeros are refused: some tools read them as octal. */
export function parseIpv4Addr(text: string): Result<Uint8Array, WireError> {
  const parts = text.split('.');
  if (parts.length !== 4) return err(addrErr(`IPv4 address "${text}": expected 4 dot-separated octets`));
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    const v = OCTET.test(p) ? Number(p) : NaN;
    if (!(v <= 255)) return err(addrErr(`IPv4 address "${text}": octet "${p}" is not a decimal 0..255 without leading zeros`));
    out[i] = v;
  }
  return ok(out);
}

/** Formats 4 bytes at `off` as a dotted quad. */
export function formatIpv4Addr(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** Formats an IPv4 address held as a u32 (as the views return it) as a dotted quad. */
export function formatIpv4U32(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`;
}

const HEXWORD = /^[0-9a-fA-F]{1,4}$/;

function words(parts: readonly string[], allowV4Tail: boolean, out: number[]): string | null {
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (allowV4Tail && i === parts.length - 1 && p.includes('.')) {
      const v4 = parseIpv4Addr(p);
      if (!v4.ok) return `embedded IPv4 "${p}" is not a dotted quad`;
      out.push((v4.value[0]! << 8) | v4.value[1]!, (v4.value[2]! << 8) | v4.value[3]!);
    } else if (HEXWORD.test(p)) {
      out.push(parseInt(p, 16));
    } else {
      return `group "${p}" is not 1–4 hex digits`;
    }
  }
  return null;
}

/** Parses IPv6 text (`2001:db8::1`, `::ffff:192.0.2.1`) into 16 bytes. Zone ids (`%eth0`) are refused. */
export function parseIpv6Addr(text: string): Result<Uint8Array, WireError> {
  const bad = (why: string) => err(addrErr(`IPv6 address "${text}": ${why}`));
  if (text.includes('%')) return bad('zone ids are not addresses on the wire; drop the %zone');
  const dbl = text.indexOf('::');
  if (dbl !== -1 && text.indexOf('::', dbl + 1) !== -1) return bad('"::" may appear only once');
  const head: number[] = [];
  const tail: number[] = [];
  if (dbl === -1) {
    const why = words(text.split(':'), true, head);
    if (why) return bad(why);
    if (head.length !== 8) return bad(`expected 8 groups, got ${head.length}`);
  } else {
    const h = text.slice(0, dbl);
    const t = text.slice(dbl + 2);
    const whyH = h === '' ? null : words(h.split(':'), false, head);
    if (whyH) return bad(whyH);
    const whyT = t === '' ? null : words(t.split(':'), true, tail);
    if (whyT) return bad(whyT);
    // "::" stands for at least one group of zeros (RFC 4291 §2.2).
    if (head.length + tail.length > 7) return bad('too many groups around "::"');
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < head.length; i++) {
    out[2 * i] = head[i]! >>> 8;
    out[2 * i + 1] = head[i]!;
  }
  const base = 8 - tail.length;
  for (let i = 0; i < tail.length; i++) {
    out[2 * (base + i)] = tail[i]! >>> 8;
    out[2 * (base + i) + 1] = tail[i]!;
  }
  return ok(out);
}

/**
 * Formats 16 bytes at `off` per RFC 5952: lowercase, no leading zeros, the longest run of two or
 * more zero groups (the first on a tie) as `::`, and IPv4-mapped addresses (::ffff:0:0/96) with a
 * dotted quad tail (§5).
 */
export function formatIpv6Addr(b: Uint8Array, off = 0): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[off + 2 * i]! << 8) | b[off + 2 * i + 1]!);
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${formatIpv4Addr(b, off + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return w.map((x) => x.toString(16)).join(':');
  const left = w.slice(0, bestStart).map((x) => x.toString(16)).join(':');
  const right = w.slice(bestStart + bestLen).map((x) => x.toString(16)).join(':');
  return `${left}::${right}`;
}

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$/;

/** Parses `02:00:5e:00:53:01` (or with `-`) into 6 bytes. */
export function parseMac(text: string): Result<Uint8Array, WireError> {
  if (!MAC.test(text)) return err(addrErr(`MAC address "${text}": expected six hex pairs separated by ":" or "-"`));
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(text.slice(3 * i, 3 * i + 2), 16);
  return ok(out);
}

/** Formats 6 bytes at `off` as lowercase `aa:bb:cc:dd:ee:ff`. */
export function formatMac(b: Uint8Array, off = 0): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += (i ? ':' : '') + (b[off + i]! < 16 ? '0' : '') + b[off + i]!.toString(16);
  return s;
}

function must(r: Result<Uint8Array, WireError>): Uint8Array {
  if (!r.ok) throw new RangeError(r.error.message);
  return r.value;
}

/**
 * IPv4 text to bytes for emitters and builders. Throws RangeError on bad text: a Repr is built by
 * code, so an invalid address in one is a bug, not input (parse untrusted text with parseIpv4Addr).
 */
export function ipv4Bytes(text: string): Uint8Array {
  return must(parseIpv4Addr(text));
}

/** IPv6 text to bytes for emitters and builders; throws RangeError on bad text (see {@link ipv4Bytes}). */
export function ipv6Bytes(text: string): Uint8Array {
  return must(parseIpv6Addr(text));
}

/** MAC text to bytes for emitters and builders; throws RangeError on bad text (see {@link ipv4Bytes}). */
export function macBytes(text: string): Uint8Array {
  return must(parseMac(text));
}
