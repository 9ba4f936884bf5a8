/**
 * Steering of protected tenant flows (bpf/steer.h steer_tenant, steer_tunnel) through
 * BPF_PROG_TEST_RUN on the compiled xdp_edge, in the namespace of steer-fixture.ts: both
 * directions of a flow — the client's packets from the Internet and the customer's through its
 * GRE tunnel — land in one bucket (the hash is symmetric; TypeScript's symmetricFlowBucket picks
 * the bucket, so forwarding proves both sides agree), the daisy chain uses the state the
 * SYN-flood stage keeps (syn_flows, the server's own cookies), and a SYN a peer forwarded is
 * answered by the FIB's next hop, not back to the peer. Expected frames are built by src/wire.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { NetLab } from '../../testkit/netlab.ts';
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import { decodeFrame, describeFrame } from '../../wire/frame.ts';
import { symmetricFlowBucket, symmetricFlowHash, type Flow } from '../../compile/steer-hash.ts';
import { EdgeMaps } from './edge.ts';
import { unloadEdge } from './loader.ts';
import { missingObjects } from './objects.ts';
import { linuxSteerMaps } from './steer.ts';
import { SynCookieMaps } from './syncookie.ts';
import type { SteerCounterName } from './steer-layout.ts';
import { buildSteerLab, expectSteerRun, EYEBALL, gueFrame, gueSport, ipOf, MAC_B, MAC_C, MAC_ROUTER, PEER_B, PEER_C, PORT, ROUTER, SELF, type SteerLab } from './steer-fixture.ts';

const XDP_PASS = 2;
const XDP_TX = 3;
const XDP_REDIRECT = 4;

/** The protected tenant prefix and an address in it (not the eyeball's 203.0.113.0/24). */
const TENANT = '198.51.100.128/25';
const HOST = '198.51.100.200';
/** The customer router (outer source of its GRE) and our anycast GRE endpoint. */
const CUSTOMER = '192.0.2.50';
const ENDPOINT = '192.0.2.100';
const MSS = 1400;
/** TCP flag bits. */
const SYN = 0x02;
const ACK = 0x10;

const lab = new NetLab('ST');
let s: SteerLab | undefined;
const maps = () => linuxSteerMaps(s!.pins);

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  s = await buildSteerLab(lab);
  // The eyeball is reached through the router: where a forwarded SYN's answer must go.
  await lab.ip('a', 'route', 'add', 'default', 'via', ROUTER);
  const w = await maps().write([
    { op: 'cfg', value: { self: SELF, port: PORT, enabled: true } },
    ...[SELF, PEER_B, PEER_C].map((ip) => ({ op: 'peer-put' as const, ip })),
    { op: 'tenant-put', cidr: TENANT },
  ]);
  if (!w.ok) throw new Error(`${w.error.op}: ${w.error.message}`);
  const edge = new EdgeMaps(s.pins);
  for (const r of [
    await edge.putEndpoint(ENDPOINT),
    // The tunnel's inner packets go to up0 itself: any device does for a redirect verdict.
    await edge.putDecap({ remote: CUSTOMER, local: ENDPOINT }, { ifindex: s.uplink, srcMac: '02:ae:00:00:01:01', dstMac: '02:ae:00:00:01:02', statsIdx: 0 }),
    await new SynCookieMaps(s.pins).protect(TENANT, { mss: MSS, wscale: 7, tenantIdx: 0 }),
  ])
    if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);
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

/** Client → tenant host, as it comes from the Internet. */
const inbound = (sport: number): Flow => ({ src: EYEBALL, dst: HOST, proto: 6, sport, dport: 7 });

interface Seg {
  readonly flags: string;
  readonly seq?: number;
  readonly ack?: number;
}
function ipLayer(src: string, dst: string): LayerSpec {
  return { kind: 'ipv4', src, dst, ttl: 60, df: true };
}
/** The client's segment, from the router. */
function fromClient(f: Flow, seg: Seg): Uint8Array {
  return buildFrame([{ kind: 'eth', src: MAC_ROUTER, dst: s!.selfMac }, ipLayer(f.src, f.dst), { kind: 'tcp', srcPort: f.sport, dstPort: f.dport, flags: seg.flags, seq: seg.seq ?? 100, ack: seg.ack ?? 0, ...(seg.flags === 'S' ? { mss: 1460 } : {}) }], seg.flags === 'S' ? '' : 'hello');
}
/** The host's segment of the same flow, through the customer's GRE tunnel. */
function fromTunnel(f: Flow, seg: Seg): Uint8Array {
  return buildFrame(
    [
      { kind: 'eth', src: MAC_ROUTER, dst: s!.selfMac },
      { kind: 'ipv4', src: CUSTOMER, dst: ENDPOINT, ttl: 60 },
      { kind: 'gre' },
      ipLayer(f.dst, f.src),
      { kind: 'tcp', srcPort: f.dport, dstPort: f.sport, flags: seg.flags, seq: seg.seq ?? 500, ack: seg.ack ?? 0 },
    ],
    seg.flags.includes('S') ? '' : 'reply',
  );
}

async function setBucket(f: Flow, first: string | null, second: string | null = null): Promise<void> {
  const w = await maps().write([{ op: 'bucket', index: symmetricFlowBucket(f), value: { first, second } }]);
  assert.ok(w.ok, w.ok ? '' : w.error.message);
}

/** Runs a frame; checks the verdict, the exact output when given, and which steering counters moved. */
const expectRun = (frame: Uint8Array, verdict: number, out: Uint8Array | null, moved: Partial<Record<SteerCounterName, number>>): Promise<Uint8Array> =>
  expectSteerRun(lab, s!, frame, verdict, out, moved);

/** The TCP header of a frame's innermost TCP layer. */
function tcpOf(frame: Uint8Array) {
  const d = decodeFrame(frame);
  assert.equal(d.error, null, describeFrame(frame));
  const tcp = d.layers.findLast((l) => l.kind === 'tcp');
  assert.ok(tcp && tcp.kind === 'tcp', describeFrame(frame));
  return { layers: d.layers, tcp: tcp.repr };
}

test("a client's SYN to a protected tenant goes to its flow's owner, in GUE, by the symmetric hash", async (t) => {
  if (!ready(t)) return;
  const f = inbound(41001);
  await setBucket(f, PEER_B);
  const frame = fromClient(f, { flags: 'S' });
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_B, src: SELF, dst: PEER_B, sport: gueSport(symmetricFlowHash(f)), hop: 1, inner: ipOf(frame) });
  await expectRun(frame, XDP_TX, want, { tenant_forward: 1 });
});

test("the host's answer through the GRE tunnel goes, still encapsulated, to the same owner", async (t) => {
  if (!ready(t)) return;
  const f = inbound(41002);
  await setBucket(f, PEER_C);
  const frame = fromTunnel(f, { flags: 'SA', ack: 101 });
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_C, src: SELF, dst: PEER_C, sport: gueSport(symmetricFlowHash(f)), hop: 1, inner: ipOf(frame) });
  await expectRun(frame, XDP_TX, want, { tunnel_forward: 1 });
});

test('owned here: the SYN is answered with a cookie from XDP; its ACK stays here although the bucket has a second choice', async (t) => {
  if (!ready(t)) return;
  const f = inbound(41003);
  await setBucket(f, SELF, PEER_B);
  const synack = await expectRun(fromClient(f, { flags: 'S', seq: 1000 }), XDP_TX, null, { tenant_local: 1 });
  const { tcp } = tcpOf(synack);
  assert.equal(tcp.flags & (SYN | ACK), SYN | ACK);
  assert.equal(tcp.ack, 1001);
  // The ACK of our own cookie: known here, not sent to the second choice; the SYN stage passes it.
  await expectRun(fromClient(f, { flags: 'A', seq: 1001, ack: (tcp.seq + 1) >>> 0 }), XDP_PASS, null, { tenant_local: 1 });
  // A later segment of the flow: remembered (syn_flows).
  await expectRun(fromClient(f, { flags: 'PA', seq: 1006, ack: (tcp.seq + 1) >>> 0 }), XDP_PASS, null, { tenant_local: 1 });
});

test('daisy chain: a segment this server holds no state for goes once to the second choice; from a peer as second choice it stays', async (t) => {
  if (!ready(t)) return;
  const f = inbound(41004);
  await setBucket(f, SELF, PEER_B);
  const frame = fromClient(f, { flags: 'A', seq: 1, ack: 12345 });
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_B, src: SELF, dst: PEER_B, sport: gueSport(symmetricFlowHash(f)), hop: 2, inner: ipOf(frame) });
  await expectRun(frame, XDP_TX, want, { tenant_forward_second: 1 });
  // The customer's side of such a flow too.
  const back = fromTunnel(f, { flags: 'A', seq: 9, ack: 2 });
  const wantBack = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_B, src: SELF, dst: PEER_B, sport: gueSport(symmetricFlowHash(f)), hop: 2, inner: ipOf(back) });
  await expectRun(back, XDP_TX, wantBack, { tunnel_forward_second: 1 });
  // Arriving as the second choice (hop 2) it is never forwarded again: decapsulated and on to
  // the SYN stage, which drops an ACK without state or a valid cookie.
  const g = inbound(41005);
  await setBucket(g, PEER_C, SELF);
  const fwd = gueFrame({ ethSrc: MAC_C, ethDst: s!.selfMac, src: PEER_C, dst: SELF, sport: 49999, hop: 2, inner: ipOf(fromClient(g, { flags: 'A', seq: 1, ack: 777 })) });
  await expectRun(fwd, 1 /* XDP_DROP by the SYN stage */, null, { decap: 1, tenant_local: 1 });
});

test("the customer's own SYN through the tunnel is decapsulated here and makes the flow known, so the remote's answers stay", async (t) => {
  if (!ready(t)) return;
  const f = inbound(41006);
  await setBucket(f, SELF, PEER_B);
  // The host opens a connection to the eyeball (here: the flow's "client" side is the host).
  const out = await expectRun(fromTunnel(f, { flags: 'S', seq: 70 }), XDP_REDIRECT, null, { tunnel_local: 1 });
  assert.equal(decodeFrame(out).layers[1]?.kind, 'ipv4', 'decapsulated: the inner packet after a fresh Ethernet header');
  // The remote's SYN-ACK from the Internet, then an ACK: known, local, never the second choice.
  await expectRun(fromClient(f, { flags: 'SA', seq: 3000, ack: 71 }), XDP_PASS, null, { tenant_local: 1 });
  await expectRun(fromClient(f, { flags: 'A', seq: 3001, ack: 71 }), XDP_PASS, null, { tenant_local: 1 });
});

test('a SYN a peer forwarded is answered here, and the SYN-ACK goes to the next hop toward the client, not back to the peer', async (t) => {
  if (!ready(t)) return;
  const f = inbound(41007);
  await setBucket(f, SELF, PEER_B);
  const fwd = gueFrame({ ethSrc: MAC_B, ethDst: s!.selfMac, src: PEER_B, dst: SELF, sport: 49999, hop: 1, inner: ipOf(fromClient(f, { flags: 'S', seq: 5000 })) });
  const out = await expectRun(fwd, XDP_TX, null, { decap: 1, tenant_local: 1 });
  const { layers, tcp } = tcpOf(out);
  const eth = layers[0];
  assert.ok(eth?.kind === 'ethernet');
  assert.equal(eth.repr.dst, MAC_ROUTER, 'to the router, the FIB next hop toward the eyeball');
  assert.equal(eth.repr.src, s!.selfMac);
  const ip = layers[1];
  assert.ok(ip?.kind === 'ipv4');
  assert.deepEqual([ip.repr.src, ip.repr.dst], [HOST, EYEBALL]);
  assert.equal(tcp.ack, 5001);
  assert.equal(tcp.flags & (SYN | ACK), SYN | ACK);
});

test('a packet that is not TCP/UDP to a protected prefix is steered by addresses, and an unprotected destination is left alone', async (t) => {
  if (!ready(t)) return;
  const f: Flow = { src: EYEBALL, dst: HOST, proto: 1, sport: 0, dport: 0 };
  await setBucket(f, PEER_B);
  const ping = buildFrame([{ kind: 'eth', src: MAC_ROUTER, dst: s!.selfMac }, ipLayer(EYEBALL, HOST), { kind: 'icmp', message: { kind: 'echo_request', ident: 1, seq: 1 } }], 'ping');
  const want = gueFrame({ ethSrc: s!.selfMac, ethDst: MAC_B, src: SELF, dst: PEER_B, sport: gueSport(symmetricFlowHash(f)), hop: 1, inner: ipOf(ping) });
  await expectRun(ping, XDP_TX, want, { tenant_forward: 1 });
  const other = fromClient({ ...inbound(41008), dst: '198.51.100.20' }, { flags: 'S' });
  await expectRun(other, XDP_PASS, other, {});
});
