/**
 * The steering stage (bpf/steer.h) through BPF_PROG_TEST_RUN on the compiled xdp_edge, Katran's
 * way: {frame in, verdict, exact frame out, counter}. The run happens in a namespace with a real
 * uplink, routes and permanent neighbours, so bpf_fib_lookup and bpf_skc_lookup_tcp see a real
 * network stack (steer-fixture.ts). Expected frames are built by src/wire, not by the C.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { NetLab } from '../../testkit/netlab.ts';
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import { flowBucket, flowHash, type Flow } from '../../compile/steer-hash.ts';
import { unloadEdge } from './loader.ts';
import { missingObjects } from './objects.ts';
import { linuxSteerMaps, type SteerWrite } from './steer.ts';
import type { SteerCounterName } from './steer-layout.ts';
import {
  buildSteerLab,
  EGRESS,
  EYEBALL,
  FAR,
  gueFrame,
  gueSport,
  ipOf,
  MAC_B,
  MAC_C,
  MAC_ROUTER,
  PEER_B,
  PEER_C,
  PORT,
  SELF,
  SERVICE,
  SERVICE6,
  expectSteerRun,
  type SteerLab,
} from './steer-fixture.ts';

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_TX = 3;

const lab = new NetLab('SF');
let s: SteerLab | undefined;
const maps = () => linuxSteerMaps(s!.pins);

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  s = await buildSteerLab(lab);
  const w = await maps().write([
    { op: 'cfg', value: { self: SELF, port: PORT, enabled: true } },
    { op: 'svc-put', ip: SERVICE },
    { op: 'svc-put', ip: SERVICE6 },
    ...[SELF, PEER_B, PEER_C, FAR].map((ip): SteerWrite => ({ op: 'peer-put', ip })),
    { op: 'egress-put', ip: EGRESS, value: { kind: 'slices', sliceSize: 2048 } },
    { op: 'slice-put', ip: EGRESS, slice: 1, server: SELF },
    { op: 'slice-put', ip: EGRESS, slice: 2, server: PEER_B },
    { op: 'slice-put', ip: EGRESS, slice: 3, server: FAR },
  ]);
  if (!w.ok) throw new Error(`${w.error.op}: ${w.error.message}`);
});

after(async () => {
  if (s) await unloadEdge(s.pins);
  await lab.destroy();
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['bpftool'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(s, 'steer lab did not come up');
  return true;
}

const eyeEth = () => ({ kind: 'eth', src: MAC_ROUTER, dst: s!.selfMac }) as const;
function tcpFrame(f: Flow, flags: string): Uint8Array {
  const ip: LayerSpec = f.src.includes(':') ? { kind: 'ipv6', src: f.src, dst: f.dst } : { kind: 'ipv4', src: f.src, dst: f.dst, ttl: 60, df: true };
  return buildFrame([eyeEth(), ip, { kind: 'tcp', srcPort: f.sport, dstPort: f.dport, flags, seq: 100, ack: flags.includes('A') ? 200 : 0 }], 'hello');
}
function udpFrame(f: Flow): Uint8Array {
  return buildFrame([eyeEth(), { kind: 'ipv4', src: f.src, dst: f.dst, ttl: 60 }, { kind: 'udp', srcPort: f.sport, dstPort: f.dport }], 'reply');
}

async function setBucket(b: number, first: string | null, second: string | null = null): Promise<void> {
  const w = await maps().write([{ op: 'bucket', index: b, value: { first, second } }]);
  assert.ok(w.ok, w.ok ? '' : w.error.message);
}

/** Runs a frame; checks verdict, exact output and which counters moved by how much. */
async function expectRun(frame: Uint8Array, verdict: number, out: Uint8Array | null, moved: Partial<Record<SteerCounterName, number>>): Promise<void> {
  await expectSteerRun(lab, s!, frame, verdict, out, moved);
}

const flow = (sport: number, over: Partial<Flow> = {}): Flow => ({ src: EYEBALL, dst: SERVICE, proto: 6, sport, dport: 443, ...over });

test('owner local: the packet goes on unchanged (to the stack) and counts as local', async (t) => {
  if (!ready(t)) return;
  const f = flow(40001);
  await setBucket(flowBucket(f), SELF);
  const frame = tcpFrame(f, 'S');
  await expectRun(frame, XDP_PASS, frame, { local: 1 });
});

test('owner remote: GUE to the owner with the exact outer headers, sent back out of the uplink (XDP_TX)', async (t) => {
  if (!ready(t)) return;
  const f = flow(40002);
  // Only the bucket TypeScript computes points elsewhere: forwarding proves both hashes agree.
  await setBucket(flowBucket(f), PEER_B);
  const frame = tcpFrame(f, 'S');
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_B, src: SELF, dst: PEER_B, sport: gueSport(flowHash(f)), hop: 1, inner: ipOf(frame) });
  await expectRun(frame, XDP_TX, want, { forward: 1 });
  // The neighbouring bucket is not ours to forward.
  const g = flow(40003);
  // Another bucket (still empty): not forwarded.
  if (flowBucket(g) !== flowBucket(f)) await expectRun(tcpFrame(g, 'S'), XDP_PASS, null, { local: 1 });
});

test('owner in another DC: the outer frame goes to the FIB next hop (the router)', async (t) => {
  if (!ready(t)) return;
  const f = flow(40004);
  await setBucket(flowBucket(f), FAR);
  const frame = tcpFrame(f, 'S');
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_ROUTER, src: SELF, dst: FAR, sport: gueSport(flowHash(f)), hop: 1, inner: ipOf(frame) });
  await expectRun(frame, XDP_TX, want, { forward: 1 });
});

test('IPv6 service flows are steered too, with GUE protocol 41', async (t) => {
  if (!ready(t)) return;
  const f = flow(40005, { src: '2001:db8:5::50', dst: SERVICE6 });
  await setBucket(flowBucket(f), PEER_C);
  const frame = tcpFrame(f, 'S');
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_C, src: SELF, dst: PEER_C, sport: gueSport(flowHash(f)), hop: 1, inner: ipOf(frame), innerProto: 41 });
  await expectRun(frame, XDP_TX, want, { forward: 1 });
});

test('a forwarded packet from a peer is decapsulated and passed on, addressed to us', async (t) => {
  if (!ready(t)) return;
  const f = flow(40006);
  await setBucket(flowBucket(f), SELF);
  const inner = tcpFrame(f, 'S');
  const gue = gueFrame({ ethSrc: MAC_B, ethDst: s!.selfMac, src: PEER_B, dst: SELF, sport: gueSport(flowHash(f)), hop: 1, inner: ipOf(inner) });
  const want = buildFrame([{ kind: 'eth', src: MAC_B, dst: s!.selfMac, etherType: 0x0800 }], ipOf(inner));
  await expectRun(gue, XDP_PASS, want, { decap: 1, local: 1 });
});

test('GUE from a source that is not a fleet server is dropped and counted; a bad magic too', async (t) => {
  if (!ready(t)) return;
  const inner = tcpFrame(flow(40007), 'S');
  const spoofed = gueFrame({ ethSrc: MAC_ROUTER, ethDst: s!.selfMac, src: '192.0.2.99', dst: SELF, sport: 50000, hop: 1, inner: ipOf(inner) });
  await expectRun(spoofed, XDP_DROP, null, { bad_peer: 1 });
  const bad = Buffer.from(gueFrame({ ethSrc: MAC_B, ethDst: s!.selfMac, src: PEER_B, dst: SELF, sport: 50000, hop: 1, inner: ipOf(inner) }));
  bad[14 + 28 + 4] = 0x12; // first byte of the private data: not our magic
  await expectRun(bad, XDP_DROP, null, { malformed: 1 });
});

test('daisy chain: a non-SYN segment without a local socket goes to the second choice (hop 2); a SYN stays', async (t) => {
  if (!ready(t)) return;
  const f = flow(40008);
  await setBucket(flowBucket(f), SELF, PEER_C);
  const ack = tcpFrame(f, 'A');
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_C, src: SELF, dst: PEER_C, sport: gueSport(flowHash(f)), hop: 2, inner: ipOf(ack) });
  await expectRun(ack, XDP_TX, want, { forward_second: 1 });
  await expectRun(tcpFrame(f, 'S'), XDP_PASS, null, { local: 1 });
  // Forwarded to us as first owner (hop 1), the same segment takes the second step too…
  const hop1 = gueFrame({ ethSrc: MAC_B, ethDst: s!.selfMac, src: PEER_B, dst: SELF, sport: 50000, hop: 1, inner: ipOf(ack) });
  await expectRun(hop1, XDP_TX, want, { decap: 1, forward_second: 1 });
  // …but never a third: arriving as second choice (hop 2), it is ours.
  const hop2 = gueFrame({ ethSrc: MAC_B, ethDst: s!.selfMac, src: PEER_B, dst: SELF, sport: 50000, hop: 2, inner: ipOf(ack) });
  await expectRun(hop2, XDP_PASS, null, { decap: 1, local: 1 });
});

test('daisy chain: a segment of a connection this server has stays here; a bare listener does not count', async (t) => {
  if (!ready(t)) return;
  // A real connection into namespace "a" (the test run's stack): the eyeball in the router's
  // namespace, the service on a's loopback. XDP is not attached; only the test runs use it.
  await lab.ip('a', 'addr', 'add', `${SERVICE}/32`, 'dev', 'lo');
  await lab.ip('a', 'route', 'add', `${EYEBALL}/32`, 'via', '192.0.2.30');
  await lab.ip('r', 'addr', 'add', `${EYEBALL}/32`, 'dev', 'lo');
  await lab.ip('r', 'route', 'add', `${SERVICE}/32`, 'via', SELF);
  const py = (code: string) => ['-c', code];
  const srv = lab.spawn('a', 'python3', py(`import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('${SERVICE}', 443))\ns.listen()\nprint('ready', flush=True)\nc,_=s.accept()\ntime.sleep(60)`));
  const lines = (p: typeof srv) => new Promise<void>((resolve, reject) => {
    p.stdout?.once('data', () => resolve());
    p.once('exit', (c) => reject(new Error(`exited ${c}`)));
  });
  await lines(srv);
  const cli = lab.spawn('r', 'python3', py(`import socket,time\nc=socket.socket()\nc.bind(('${EYEBALL}', 40012))\nc.connect(('${SERVICE}', 443))\nprint('connected', flush=True)\ntime.sleep(60)`));
  try {
    await lines(cli);
    const est = flow(40012);
    await setBucket(flowBucket(est), SELF, PEER_C);
    await expectRun(tcpFrame(est, 'A'), XDP_PASS, null, { local: 1 });
    const stray = flow(40013);
    await setBucket(flowBucket(stray), SELF, PEER_C);
    await expectRun(tcpFrame(stray, 'A'), XDP_TX, null, { forward_second: 1 });
  } finally {
    srv.kill('SIGKILL');
    cli.kill('SIGKILL');
  }
});

test('egress replies: slice owner elsewhere → forwarded; owner here → passed; slice 0 or unowned → passed and counted', async (t) => {
  if (!ready(t)) return;
  const to = (port: number): Flow => ({ src: '192.0.2.200', dst: EGRESS, proto: 17, sport: 53, dport: port });
  const remote = udpFrame(to(2 * 2048 + 5));
  await expectRun(remote, XDP_TX, gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_B, src: SELF, dst: PEER_B, sport: gueSport(flowHash(to(2 * 2048 + 5))), hop: 1, inner: ipOf(remote) }), { egress_forward: 1 });
  const far = udpFrame(to(3 * 2048));
  await expectRun(far, XDP_TX, gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_ROUTER, src: SELF, dst: FAR, sport: gueSport(flowHash(to(3 * 2048))), hop: 1, inner: ipOf(far) }), { egress_forward: 1 });
  const mine = udpFrame(to(2048 + 7));
  await expectRun(mine, XDP_PASS, mine, { egress_local: 1 });
  await expectRun(udpFrame(to(80)), XDP_PASS, null, { egress_unowned: 1 });
  await expectRun(udpFrame(to(9 * 2048)), XDP_PASS, null, { egress_unowned: 1 });
  // Forwarded to us, an egress reply is ours whatever our own slice table says: no ping-pong.
  const back = gueFrame({ ethSrc: MAC_B, ethDst: s!.selfMac, src: PEER_B, dst: SELF, sport: 50000, hop: 1, inner: ipOf(remote) });
  await expectRun(back, XDP_PASS, null, { decap: 1, egress_local: 1 });
});

test('no route to the owner: dropped and counted; traffic to other addresses is not the stage\'s business', async (t) => {
  if (!ready(t)) return;
  const f = flow(40010);
  await setBucket(flowBucket(f), '203.0.113.77');
  await expectRun(tcpFrame(f, 'S'), XDP_DROP, null, { no_route: 1 });
  const other = tcpFrame({ ...flow(40011), dst: '198.51.100.9' }, 'S');
  await expectRun(other, XDP_PASS, other, {});
});
