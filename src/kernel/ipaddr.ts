/**
 * IP address and prefix parsing and formatting, in the exact text form iproute2 prints (glibc
 * `inet_ntop`), so that what we send, what the fake stores and what `ip -j` returns compare equal
 * as strings. No dependencies: the kernel boundary must not depend on a library's idea of
 * canonical IPv6 text.
 */

/** 4 for IPv4, 6 for IPv6. */
export type Family = 4 | 6;

/** A parsed address: its family and its bytes (4 or 16). */
export interface IpAddr {
  readonly family: Family;
  readonly bytes: Uint8Array;
}

/** A parsed `address/prefixlen`. */
export interface IpCidr extends IpAddr {
  readonly len: number;
}

/** Parses dotted-quad IPv4 or any RFC 4291 IPv6 text form; null if it is neither. */
export function parseIp(text: string): IpAddr | null {
  if (text.includes(':')) {
    const b = parseV6(text);
    return b ? { family: 6, bytes: b } : null;
  }
  const b = parseV4(text);
  return b ? { family: 4, bytes: b } : null;
}

function parseV4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? '';
    // Leading zeros are rejected: some tools read them as octal, so the text would be ambiguous.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

function parseV6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const words = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? '';
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p);
        if (!v4) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = words(halves[0] ?? '');
  const tail = halves.length === 2 ? words(halves[1] ?? '') : [];
  if (!head || !tail) return null;
  let all: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    all = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return null;
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** Formats an address as glibc's inet_ntop does (what `ip` prints). */
export function formatIp(a: IpAddr): string {
  const b = a.bytes;
  if (a.family === 4) return Array.from(b).join('.');
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(((b[2 * i] ?? 0) << 8) | (b[2 * i + 1] ?? 0));
  // Longest run of zero words, first one on a tie; a run of one word is not compressed.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) best = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      out += '::';
      i += bestLen - 1;
      continue;
    }
    if (out !== '' && !out.endsWith(':')) out += ':';
    // IPv4-compatible and IPv4-mapped addresses end in dotted quad, as inet_ntop prints them.
    if (i === 6 && best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
      break;
    }
    out += (w[i] ?? 0).toString(16);
  }
  return out;
}

/** Parses `addr/len`; a bare address gets the full length (/32, /128), as iproute2 does. */
export function parseCidr(text: string): IpCidr | null {
  const slash = text.indexOf('/');
  const addr = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!addr) return null;
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { ...addr, len: max };
  const lenText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) return null;
  const len = Number(lenText);
  if (len > max) return null;
  return { ...addr, len };
}

/** `addr/len` in canonical text. */
export function formatCidr(c: IpCidr): string {
  return `${formatIp(c)}/${c.len}`;
}

/** The prefix with host bits cleared. */
export function network(c: IpCidr): IpCidr {
  const bytes = new Uint8Array(c.bytes);
  for (let i = 0; i < bytes.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, c.len - 8 * i));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - bitsHere)) & 0xff);
  }
  return { family: c.family, bytes, len: c.len };
}

/** Whether the prefix has no host bits set (what the kernel demands of a route destination). */
export function isNetwork(c: IpCidr): boolean {
  return formatIp(network(c)) === formatIp(c);
}

/** Whether `addr` falls inside the prefix `c`. */
export function contains(c: IpCidr, addr: IpAddr): boolean {
  if (c.family !== addr.family) return false;
  return formatIp(network(c)) === formatIp(network({ ...addr, len: c.len }));
}

/** Compares two addresses bytewise (IPv4 before IPv6), for canonical sort orders. */
export function compareIp(a: IpAddr, b: IpAddr): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.bytes.length; i++) {
    const d = (a.bytes[i] ?? 0) - (b.bytes[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Compares two `addr/len` texts: by address, then length; unparsable text sorts last as text. */
export function compareCidrText(a: string, b: string): number {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  if (!pa || !pb) return pa ? -1 : pb ? 1 : a.localeCompare(b);
  return compareIp(pa, pb) || pa.len - pb.len;
}

/** Whether an IPv6 address is link-local (fe80::/10). */
export function isLinkLocal6(a: IpAddr): boolean {
  return a.family === 6 && a.bytes[0] === 0xfe && ((a.bytes[1] ?? 0) & 0xc0) === 0x80;
}
