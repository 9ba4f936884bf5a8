/**
 * The steering stage's packet fixtures, shared by steer-fixtures.linux.test.ts and
 * bench/steer.bench.ts: one namespace standing for a server, with its uplink, a router and
 * permanent neighbour entries for the peers (so bpf_fib_lookup resolves them without ARP), the
 * edge programs loaded, and frames built by src/wire — including the GUE encapsulation the stage
 * must produce, built here independently of the C.
 *
 *   server ns "a": up0 192.0.2.17/28 ──veth── rt0 (ns "r", 192.0.2.30/28)
 *     peers on the LAN: 192.0.2.18 (B), 192.0.2.19 (C) — neighbours only, no namespaces
 *     a far server 192.0.2.40 (another DC), routed via 192.0.2.30
 */
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import type { NetLab } from '../../testkit/netlab.ts';
import { loadEdge, type EdgePins } from './loader.ts';
import { progRun, type ProgRunResult, type BpfError } from './bpftool.ts';
import type { Result } from '../../lib/result.ts';
import { hostU32, type SteerCounterName } from './steer-layout.ts';
import { linuxSteerMaps } from './steer.ts';
import assert from 'node:assert/strict';
import { describeFrame } from '../../wire/frame.ts';

export const SELF = '192.0.2.17';
export const ROUTER = '192.0.2.30';
export const PEER_B = '192.0.2.18';
export const PEER_C = '192.0.2.19';
export const FAR = '192.0.2.40';
export const MAC_B = '02:ae:00:00:00:b0';
export const MAC_C = '02:ae:00:00:00:c0';
export const MAC_ROUTER = '02:ae:00:00:00:30';
export const SERVICE = '198.51.100.2';
export const SERVICE6 = '2001:db8:100::2';
export const EGRESS = '198.51.100.64';
export const EYEBALL = '203.0.113.50';
export const PORT = 6080;

/** What buildSteerLab made. */
export interface SteerLab {
  readonly pins: EdgePins;
  /** ifindex of up0 in "a", the ingress device of every run. */
  readonly uplink: number;
  readonly selfMac: string;
}

/** Builds the namespaces and loads the edge programs under `${lab.prefix}`. */
export async function buildSteerLab(lab: NetLab): Promise<SteerLab> {
  await lab.addNs('a');
  await lab.addNs('r');
  await lab.veth('a', 'up0', 'r', 'rt0');
  await lab.ip('a', 'addr', 'add', `${SELF}/28`, 'dev', 'up0');
  await lab.ip('r', 'addr', 'add', `${ROUTER}/28`, 'dev', 'rt0');
  await lab.ip('r', 'link', 'set', 'dev', 'rt0', 'address', MAC_ROUTER);
  for (const [ip, mac] of [[PEER_B, MAC_B], [PEER_C, MAC_C], [ROUTER, MAC_ROUTER]] as const) await lab.ip('a', 'neigh', 'replace', ip, 'lladdr', mac, 'dev', 'up0', 'nud', 'permanent');
  await lab.ip('a', 'route', 'add', `${FAR}/32`, 'via', ROUTER);
  const pins = await loadEdge(lab.prefix);
  if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
  return { pins: pins.value, uplink: await lab.ifindex('a', 'up0'), selfMac: await lab.mac('a', 'up0') };
}

/** A `struct xdp_md` for ctx_in: the whole packet, arriving on `ifindex`. */
export function xdpCtx(ifindex: number, len: number): Buffer {
  return Buffer.concat([hostU32(0), hostU32(len), hostU32(0), hostU32(ifindex), hostU32(0), hostU32(0)]);
}

/** Runs xdp_edge on a frame as if it arrived on the server's uplink. */
export function runOnUplink(lab: NetLab, s: SteerLab, frame: Uint8Array, repeat = 1): Promise<Result<ProgRunResult, BpfError>> {
  return progRun(s.pins.progs.xdpEdge, Buffer.from(frame), { ctxIn: xdpCtx(s.uplink, frame.length), netns: lab.ns('a'), repeat });
}

/** The GUE header with our private data: version 0, hlen 1, PRIV flag, magic and hop. */
export function gueHeader(innerProto: 4 | 41, hop: number): Uint8Array {
  const b = Buffer.alloc(8);
  b[0] = 0x01;
  b[1] = innerProto;
  b.writeUInt16BE(0x0001, 2);
  b.writeUInt32BE((0x0ae55e00 | hop) >>> 0, 4);
  return b;
}

/** A GUE-encapsulated frame as the stage sends it: outer IPv4 DF TTL 64 ID 0, UDP without checksum. */
export function gueFrame(o: { ethSrc: string; ethDst: string; src: string; dst: string; sport: number; hop: number; inner: Uint8Array; innerProto?: 4 | 41 }): Uint8Array {
  const layers: LayerSpec[] = [
    { kind: 'eth', src: o.ethSrc, dst: o.ethDst },
    { kind: 'ipv4', src: o.src, dst: o.dst, ttl: 64, df: true, ident: 0 },
    { kind: 'udp', srcPort: o.sport, dstPort: PORT, zeroChecksum: true },
  ];
  return buildFrame(layers, Buffer.concat([gueHeader(o.innerProto ?? 4, o.hop), o.inner]));
}

/** The IP packet of an Ethernet frame (what GUE carries). */
export function ipOf(frame: Uint8Array): Uint8Array {
  return frame.subarray(14);
}

/** The UDP source port the stage picks for a flow hash. */
export function gueSport(hash: number): number {
  return 0xc000 | (hash & 0x3fff);
}

/** steer_cnt of the lab's edge, summed over CPUs (tests: fails the test when unreadable). */
export async function steerCounters(s: SteerLab): Promise<Record<SteerCounterName, bigint>> {
  const c = await linuxSteerMaps(s.pins).counters();
  assert.ok(c.ok, c.ok ? '' : c.error.message);
  return c.value;
}

/**
 * Runs a frame through xdp_edge on the uplink and checks the verdict, the exact output when
 * given, and which steering counters moved by how much (none other). Returns the output frame.
 */
export async function expectSteerRun(lab: NetLab, s: SteerLab, frame: Uint8Array, verdict: number, out: Uint8Array | null, moved: Partial<Record<SteerCounterName, number>>): Promise<Uint8Array> {
  const c0 = await steerCounters(s);
  const r = await runOnUplink(lab, s, frame);
  assert.ok(r.ok, r.ok ? '' : `${r.error.op}: ${r.error.message}`);
  assert.equal(r.value.retval, verdict, `verdict ${r.value.retval}, expected ${verdict}; out:\n${describeFrame(r.value.dataOut)}`);
  if (out) {
    const got = Buffer.from(r.value.dataOut);
    assert.ok(got.equals(Buffer.from(out)), `output differs\n got:\n${describeFrame(got)}\n want:\n${describeFrame(out)}`);
  }
  const c1 = await steerCounters(s);
  const delta = Object.fromEntries(Object.keys(c1).map((k) => [k, Number(c1[k as SteerCounterName] - c0[k as SteerCounterName])]).filter(([, v]) => v !== 0));
  assert.deepEqual(delta, moved);
  return r.value.dataOut;
}
