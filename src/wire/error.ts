/**
 * Wire errors: expected failures of parsing untrusted bytes, as values.
 *
 * Two shapes, so the hot path never allocates:
 * - {@link WireFault}: a frozen constant made once per (layer, reason) at module load. The
 *   zero-allocation views and {@link FrameDecoder} return these and record the offending byte
 *   offset in a mutable field of their own.
 * - {@link WireError}: a fault plus the absolute byte offset, made on the cold path (the
 *   allocating `parseX` functions, `decodeFrame`, the pcap reader).
 */

/** Why decoding failed. */
export type WireCode =
  /** The bytes end before the header (or the length a header claims) does. */
  | 'truncated'
  /** A field holds a value the protocol forbids (bad version, length below the minimum…). */
  | 'malformed'
  /** Valid on the wire but not decoded by us (GRE version 1, ARP over non-Ethernet…). */
  | 'unsupported'
  /** A checksum does not verify. */
  | 'bad_checksum'
  /** A bound we impose was hit (VLAN tags, IPv6 extension headers, encapsulation depth). */
  | 'limit_exceeded';

/** Which codec reported the failure. */
export type WireLayer =
  | 'addr'
  | 'pcap'
  | 'frame'
  | 'ethernet'
  | 'vlan'
  | 'arp'
  | 'ipv4'
  | 'ipv6'
  | 'ipv6ext'
  | 'tcp'
  | 'udp'
  | 'icmp'
  | 'icmpv6'
  | 'gre';

/** A preallocated, frozen failure reason without a position (see the module comment). */
export interface WireFault {
  /** Machine-readable reason. */
  readonly code: WireCode;
  /** The codec that failed. */
  readonly layer: WireLayer;
  /** Human reason, naming the field and, where there is one, the remedy. */
  readonly message: string;
}

/** A failure with its absolute byte offset in the buffer handed to the parser. */
export interface WireError extends WireFault {
  /** Offset of the offending byte (or of the header that fails) from the start of the buffer. */
  readonly offset: number;
}

/** Makes a frozen {@link WireFault}; call at module load only, never per packet. */
export function fault(code: WireCode, layer: WireLayer, message: string): WireFault {
  return Object.freeze({ code, layer, message });
}

/** Turns a fault into a positioned error; `detail` (observed values) is appended to the message. */
export function wireError(f: WireFault, offset: number, detail?: string): WireError {
  return { code: f.code, layer: f.layer, offset, message: detail ? `${f.message} (${detail})` : f.message };
}

/** `ipv4 truncated at byte 14: …` — the one way wire errors are printed. */
export function formatWireError(e: WireError): string {
  return `${e.layer} ${e.code} at byte ${e.offset}: ${e.message}`;
}

const CODES: ReadonlySet<string> = new Set<WireCode>(['truncated', 'malformed', 'unsupported', 'bad_checksum', 'limit_exceeded']);
const LAYERS: ReadonlySet<string> = new Set<WireLayer>([
  'addr', 'pcap', 'frame', 'ethernet', 'vlan', 'arp', 'ipv4', 'ipv6', 'ipv6ext', 'tcp', 'udp', 'icmp', 'icmpv6', 'gre',
]);

/** Whether a value is a well-formed {@link WireError} (used by tests to check every failure). */
export function isWireError(x: unknown): x is WireError {
  if (typeof x !== 'object' || x === null) return false;
  const e = x as Record<string, unknown>;
  return (
    typeof e.code === 'string' && CODES.has(e.code) &&
    typeof e.layer === 'string' && LAYERS.has(e.layer) &&
    typeof e.offset === 'number' && Number.isInteger(e.offset) && e.offset >= 0 &&
    typeof e.message === 'string' && e.message.length > 0
  );
}
