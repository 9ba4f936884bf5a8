/**
 * The request head of an HTTP CONNECT (RFC 9110 §9.3.6, message syntax RFC 9112): parsed from the
 * first bytes an eyeball sends, with limits, into the tunnel's target or an HTTP error that names
 * what was wrong and what to send instead. Only CONNECT is served: this is a tunnel endpoint, not
 * a caching forward proxy, so every other method is refused with 405 and `Allow: CONNECT`.
 *
 * The parser is incremental: `scanHead` says "need more bytes" until the blank line ending the
 * head arrives (or the limit is passed), so a slow client never makes it parse half a request.
 * Bytes after the head (a TLS ClientHello sent without waiting for the 200) are kept and
 * forwarded into the tunnel.
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { formatIp, parseIp } from '../model/net.ts';

/** Largest request head accepted, in bytes; a CONNECT head is a few hundred bytes in practice. */
export const HEAD_LIMIT = 8192;
/** Most header fields accepted. */
export const FIELD_LIMIT = 64;

/** Where the tunnel goes: an IP literal (canonical text) or a host name to resolve, and the port. */
export interface ConnectTarget {
  readonly host: string;
  /** 4 or 6 for an IP literal, null for a name. */
  readonly family: 4 | 6 | null;
  readonly port: number;
}

/** A parsed CONNECT request. */
export interface ConnectRequest {
  readonly target: ConnectTarget;
  /** `HTTP/1.0` or `HTTP/1.1`; the reply uses the same. */
  readonly version: 'HTTP/1.0' | 'HTTP/1.1';
  /** Header fields, names lower case, in order. */
  readonly fields: ReadonlyArray<readonly [name: string, value: string]>;
}

/** A refusal: the status to answer with and a sentence saying why and what to do. */
export interface HttpError {
  readonly code: 'http';
  readonly status: 400 | 403 | 405 | 408 | 431 | 502 | 503 | 504 | 505;
  readonly reason: string;
  /** Extra reply headers (e.g. `Allow` for 405). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Builds an {@link HttpError}. */
export function httpError(status: HttpError['status'], reason: string, headers?: Record<string, string>): HttpError {
  return headers ? { code: 'http', status, reason, headers } : { code: 'http', status, reason };
}

/** Outcome of looking for the end of the head in the bytes received so far. */
export type HeadScan =
  | { readonly kind: 'more' }
  | { readonly kind: 'head'; readonly head: Buffer; readonly rest: Buffer }
  | { readonly kind: 'error'; readonly error: HttpError };

const TOO_LARGE = (): HttpError => httpError(431, `the request head is over ${HEAD_LIMIT} bytes; a CONNECT request needs only its request line and a few fields`);

/**
 * Looks for the blank line ending the head (CRLF CRLF, or LF LF from lenient clients, RFC 9112
 * §2.2). Returns the head, the bytes after it, "more" to wait, or 431 past {@link HEAD_LIMIT}.
 */
export function scanHead(buf: Buffer): HeadScan {
  // Leading empty lines before the request line are ignored (RFC 9112 §2.2).
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  for (let i = start; i < buf.length && i < start + HEAD_LIMIT; i++) {
    if (buf[i] !== 0x0a) continue;
    const next = buf[i + 1];
    if (next === 0x0a) return { kind: 'head', head: buf.subarray(start, i + 1), rest: buf.subarray(i + 2) };
    if (next === 0x0d && buf[i + 2] === 0x0a) return { kind: 'head', head: buf.subarray(start, i + 1), rest: buf.subarray(i + 3) };
  }
  if (buf.length - start >= HEAD_LIMIT) return { kind: 'error', error: TOO_LARGE() };
  return { kind: 'more' };
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// A field value: visible ASCII, obs-text and inner spaces/tabs (RFC 9110 §5.5); never CR, LF or NUL.
const VALUE_RE = /^[\t\x20-\x7e\x80-\xff]*$/;
// reg-name of RFC 3986 as DNS uses it: labels of letters, digits and hyphens.
const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

const EXAMPLE = 'e.g. "CONNECT 203.0.113.10:443 HTTP/1.1"';

/** Parses an authority-form request target `host:port` (RFC 9112 §3.2.3). */
export function parseAuthority(text: string): Result<ConnectTarget, HttpError> {
  const bad = (why: string): Result<ConnectTarget, HttpError> => err(httpError(400, `request target ${JSON.stringify(text)}: ${why}`));
  if (text.includes('/') || text.includes('@')) return bad(`CONNECT takes host:port (authority form), not a URL or userinfo; ${EXAMPLE}`);
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return bad('an IPv6 address opened with "[" is not closed with "]"; e.g. [2001:db8::1]:443');
    host = text.slice(1, close);
    if (text[close + 1] !== ':') return bad('the port is missing after the IPv6 address; e.g. [2001:db8::1]:443');
    portText = text.slice(close + 2);
    const ip = parseIp(host);
    if (!ip.ok || ip.value.family !== 6) return bad(`${JSON.stringify(host)} inside [] is not an IPv6 address`);
    host = formatIp(ip.value);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return bad(`the port is missing; CONNECT needs host:port, ${EXAMPLE}`);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return bad('an IPv6 address must be written in brackets, e.g. [2001:db8::1]:443');
    if (host === '') return bad(`the host is empty; ${EXAMPLE}`);
  }
  if (!/^\d{1,5}$/.test(portText)) return bad(`port ${JSON.stringify(portText)} is not a number 1–65535`);
  const port = Number(portText);
  if (port < 1 || port > 65535) return bad(`port ${port} is outside 1–65535`);
  if (text.startsWith('[')) return ok({ host, family: 6, port });
  if (/^[0-9.]+$/.test(host)) {
    const ip = parseIp(host);
    if (!ip.ok) return bad(ip.error);
    return ok({ host: formatIp(ip.value), family: 4, port });
  }
  if (!HOSTNAME_RE.test(host)) return bad(`${JSON.stringify(host)} is neither an IP address nor a host name (letters, digits, "-" and "." only)`);
  return ok({ host: host.toLowerCase(), family: null, port });
}

/**
 * Parses a complete head (as {@link scanHead} cut it): the request line, then the fields. The
 * error is the reply to send: 405 for another method, 505 for another HTTP version, 400 for
 * anything malformed, 431 for too many fields.
 */
export function parseConnect(head: Buffer): Result<ConnectRequest, HttpError> {
  // latin1 keeps every byte as one character, so obs-text survives and the checks see raw bytes.
  const text = head.toString('latin1');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [i, raw] of lines.entries()) {
    const body = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (body.includes('\r')) return err(httpError(400, `line ${i + 1} holds a bare CR; end lines with CRLF`));
    if (body.includes('\0')) return err(httpError(400, `line ${i + 1} holds a NUL byte`));
    lines[i] = body;
  }
  const requestLine = lines[0] ?? '';
  const parts = requestLine.split(' ');
  if (parts.length !== 3 || parts.some((p) => p === '')) return err(httpError(400, `request line ${JSON.stringify(requestLine)} is not "METHOD TARGET HTTP/1.1" with single spaces; ${EXAMPLE}`));
  const [method, target, version] = parts as [string, string, string];
  if (!TOKEN_RE.test(method)) return err(httpError(400, `method ${JSON.stringify(method)} is not a token`));
  if (method !== 'CONNECT') {
    const hint = method.toUpperCase() === 'CONNECT' ? ' (methods are case-sensitive: write CONNECT)' : '; plain HTTP proxying is not offered: open a tunnel with CONNECT host:port';
    return err(httpError(405, `method ${method} is not allowed: this proxy only opens tunnels with CONNECT${hint}`, { allow: 'CONNECT' }));
  }
  if (!/^HTTP\/\d\.\d$/.test(version)) return err(httpError(400, `${JSON.stringify(version)} is not an HTTP version; end the request line with HTTP/1.1`));
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return err(httpError(505, `${version} is not supported; CONNECT here speaks HTTP/1.1 (or HTTP/1.0)`));
  const authority = parseAuthority(target);
  if (!authority.ok) return authority;

  const fields: Array<[string, string]> = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith(' ') || line.startsWith('\t')) return err(httpError(400, `line ${i + 1}: folded header lines (obs-fold) are not accepted (RFC 9112 §5.2); put each field on one line`));
    const colon = line.indexOf(':');
    if (colon < 0) return err(httpError(400, `line ${i + 1}: ${JSON.stringify(line.slice(0, 60))} is not a header field "Name: value"`));
    const name = line.slice(0, colon);
    if (!TOKEN_RE.test(name)) return err(httpError(400, `line ${i + 1}: field name ${JSON.stringify(name.slice(0, 60))} is not a token (no spaces before the colon)`));
    const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!VALUE_RE.test(value)) return err(httpError(400, `line ${i + 1}: field ${name} has control characters in its value`));
    fields.push([name.toLowerCase(), value]);
    if (fields.length > FIELD_LIMIT) return err(httpError(431, `more than ${FIELD_LIMIT} header fields; a CONNECT request needs only a few`));
  }
  const hosts = fields.filter(([n]) => n === 'host');
  if (hosts.length > 1) return err(httpError(400, 'more than one Host field; send one (RFC 9112 §3.2)'));
  // A CONNECT request has no content (RFC 9110 §9.3.6): a body length would be read as tunnel bytes.
  if (fields.some(([n]) => n === 'transfer-encoding')) return err(httpError(400, 'Transfer-Encoding on CONNECT: a CONNECT request has no content (RFC 9110 §9.3.6); remove the field'));
  const lengths = fields.filter(([n]) => n === 'content-length');
  if (lengths.some(([, v]) => v !== '0')) return err(httpError(400, 'Content-Length other than 0 on CONNECT: a CONNECT request has no content (RFC 9110 §9.3.6); remove the field'));
  return ok({ target: authority.value, version, fields });
}
