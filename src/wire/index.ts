/**
 * The packet codecs' public entry points, for code outside src/wire:
 * - `buildFrame(layers, payload?)` — bytes of a frame from a layer list, every length and
 *   checksum filled (build.ts);
 * - `decodeFrame(bytes, linkType?)` — readable layers, typed errors, checksum verdicts, never
 *   throws (frame.ts); `findLayer`, `formatFrame`, `describeFrame` to pick and print;
 * - `FrameDecoder` — the zero-allocation walker for per-packet loops (decoder.ts);
 * - `readPcap` / `writePcap` / `PcapReader` — classic pcap files (pcap.ts);
 * - per-protocol `parseX` / `emitX` / `xHeaderLen` and zero-allocation views live in their own
 *   files (ipv4.ts, tcp.ts, gre.ts …) and are imported from there.
 */
export { type LayerSpec, buildFrame, builtLinkType, tcpFlags } from './build.ts';
export { CkStatus, FragState, FrameDecoder, LayerKind, LinkType, MAX_ENCAP_DEPTH } from './decoder.ts';
export { type WireCode, type WireError, type WireLayer, formatWireError, isWireError } from './error.ts';
export { type ChecksumStatus, type DecodeOptions, type Frame, type FragmentState, type Layer, type LayerName, decodeFrame, describeFrame, findLayer, formatFrame, formatLayer } from './frame.ts';
export { type PcapFile, type PcapRecord, type PcapWriteRecord, PcapReader, readPcap, writePcap } from './pcap.ts';
