/**
 * Packet fixtures through BPF_PROG_TEST_RUN: the compiled GRE encapsulator (tc_gre_encap) and
 * decapsulator (xdp_edge stage 3), fed frames built by src/wire and checked by decoding what
 * they return. Two independently loaded copies stand for two servers with the same config.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import { decodeFrame, findLayer } from '../../wire/frame.ts';
import { progRun } from './bpftool.ts';
import { EdgeMaps, type EncapEntry } from './edge.ts';
import { loadEdge, unloadEdge, type EdgePins } from './loader.ts';
import { missingObjects } from './objects.ts';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;
const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_REDIRECT = 4;

// bpftool runs skb programs on "lo" unless told otherwise, and lo is ifindex 1 in every netns:
// so the fixture tunnel device is ifindex 1.
const TUNNEL_IFINDEX = 1;
const ENDPOINT = '198.51.100.1';
const CUSTOMER_ROUTER = '198.51.100.200';
const TENANT_VETH = 7;

const tunnel: EncapEntry = {
  local: ENDPOINT,
  remote: CUSTOMER_ROUTER,
  key: 42,
  outIfindex: 3,
  mtu: 1476,
  ttl: 64,
  srcMac: '02:ae:00:00:00:01',
  dstMac: '02:ae:00:00:00:02',
  statsIdx: 5,
};

const servers: Array<{ pins: EdgePins; maps: EdgeMaps }> = [];
const ready = () => servers.length === 2;

before(async () => {
  // Loading needs root and bpftool; each test reports the missing requirement itself.
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  for (const n of ['a', 'b']) {
    const pins = await loadEdge(`aeGT${process.pid}${n}`);
    if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
    const maps = new EdgeMaps(pins.value);
    servers.push({ pins: pins.value, maps });
    for (const r of [
      await maps.putEncap(TUNNEL_IFINDEX, tunnel),
      await maps.putEndpoint(ENDPOINT),
      await maps.putDecap({ remote: CUSTOMER_ROUTER, local: ENDPOINT, key: 42 }, { ifindex: TENANT_VETH, srcMac: '02:ae:00:00:01:01', dstMac: '02:ae:00:00:01:02', statsIdx: 5 }),
      await maps.putDecap({ remote: '198.51.100.201', local: ENDPOINT }, { ifindex: TENANT_VETH + 1, srcMac: '02:ae:00:00:02:01', dstMac: '02:ae:00:00:02:02', statsIdx: 6 }),
    ]) {
      if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);
    }
  }
});

after(async () => {
  for (const s of servers) await unloadEdge(s.pins);
});

function requirements(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['bpftool'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(ready(), 'edge programs did not load');
  return true;
}

const s0 = () => servers[0]!;

async function run(prog: 'tc' | 'xdp', frame: Uint8Array, server = s0()) {
  const path = prog === 'tc' ? server.pins.progs.tcGreEncap : server.pins.progs.xdpEdge;
  const r = await progRun(path, Buffer.from(frame));
  assert.ok(r.ok, r.ok ? '' : `${r.error.op}: ${r.error.message}`);
  return r.value;
}

const inner: LayerSpec[] = [
  { kind: 'eth', src: '02:00:00:00:00:0a', dst: '02:00:00:00:00:0b' },
  { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.100', ident: 7, df: true, ttl: 63 },
  { kind: 'tcp', srcPort: 40000, dstPort: 21, flags: 'S', mss: 1460, seq: 1000 },
];

test('tc_gre_encap wraps a SYN in IPv4+GRE with key, anycast source, TTL 64 and a clamped MSS', async (t) => {
  if (!requirements(t)) return;
  const before = await s0().maps.tunnelStats(tunnel.statsIdx);
  const out = await run('tc', buildFrame(inner));
  assert.equal(out.retval, TC_ACT_REDIRECT);
  const f = decodeFrame(out.dataOut);
  assert.equal(f.error, null);
  assert.deepEqual(f.checksumErrors, []);
  assert.deepEqual(f.layers.map((l) => l.kind), ['ethernet', 'ipv4', 'gre', 'ipv4', 'tcp']);
  const eth = findLayer(f, 'ethernet')!;
  assert.equal(eth.repr.src, tunnel.srcMac);
  assert.equal(eth.repr.dst, tunnel.dstMac);
  const outer = findLayer(f, 'ipv4', 0)!;
  assert.equal(outer.repr.src, ENDPOINT);
  assert.equal(outer.repr.dst, CUSTOMER_ROUTER);
  assert.equal(outer.repr.ttl, 64);
  assert.equal(outer.repr.dontFrag, true, 'DF copied from the inner packet');
  assert.equal(outer.repr.ident, 7, 'ID copied: output is a function of the input only');
  assert.equal(outer.checksum, 'good');
  const gre = findLayer(f, 'gre')!;
  assert.equal(gre.repr.key, 42);
  assert.equal(gre.repr.seq, null);
  assert.equal(gre.repr.protocol, 0x0800);
  const innerIp = findLayer(f, 'ipv4', 1)!;
  assert.equal(innerIp.repr.src, '192.0.2.10');
  assert.equal(innerIp.repr.dst, '203.0.113.100');
  assert.equal(innerIp.repr.ttl, 63);
  const tcp = findLayer(f, 'tcp')!;
  assert.equal(tcp.checksum, 'good', 'TCP checksum fixed up after the MSS rewrite');
  assert.deepEqual(tcp.repr.options.filter((o) => o.kind === 'mss'), [{ kind: 'mss', value: 1476 - 40 }]);
  assert.equal(outer.end - outer.offset, 24 + 4 + (innerIp.end - innerIp.offset), 'outer length = IPv4 + GRE with key + inner');
  const afterStats = await s0().maps.tunnelStats(tunnel.statsIdx);
  assert.ok(before.ok && afterStats.ok);
  assert.equal(afterStats.value.encapPackets - before.value.encapPackets, 1n);
  assert.equal(afterStats.value.mssClamped - before.value.mssClamped, 1n);
});

test('tc_gre_encap leaves a small MSS, and non-SYN segments, untouched', async (t) => {
  if (!requirements(t)) return;
  for (const tcpSpec of [
    { kind: 'tcp', srcPort: 40000, dstPort: 21, flags: 'S', mss: 1200 },
    { kind: 'tcp', srcPort: 40000, dstPort: 21, flags: 'A', mss: 1460 },
  ] as const) {
    const out = await run('tc', buildFrame([inner[0]!, inner[1]!, tcpSpec]));
    assert.equal(out.retval, TC_ACT_REDIRECT);
    const tcp = findLayer(decodeFrame(out.dataOut), 'tcp')!;
    assert.deepEqual(tcp.repr.options.filter((o) => o.kind === 'mss'), [{ kind: 'mss', value: tcpSpec.mss }]);
    assert.equal(tcp.checksum, 'good');
  }
});

test('tc_gre_encap carries IPv6 inside IPv4 GRE and clamps its MSS to mtu - 60', async (t) => {
  if (!requirements(t)) return;
  const out = await run(
    'tc',
    buildFrame([{ kind: 'eth' }, { kind: 'ipv6', src: '2001:db8:1::10', dst: '2001:db8:2::100' }, { kind: 'tcp', srcPort: 40000, dstPort: 21, flags: 'S', mss: 1440 }]),
  );
  assert.equal(out.retval, TC_ACT_REDIRECT);
  const f = decodeFrame(out.dataOut);
  assert.deepEqual(f.layers.map((l) => l.kind), ['ethernet', 'ipv4', 'gre', 'ipv6', 'tcp']);
  assert.equal(findLayer(f, 'gre')!.repr.protocol, 0x86dd);
  const tcp = findLayer(f, 'tcp')!;
  assert.equal(tcp.checksum, 'good');
  assert.deepEqual(tcp.repr.options.filter((o) => o.kind === 'mss'), [{ kind: 'mss', value: 1476 - 60 }]);
});

test('tc_gre_encap drops a packet larger than the tunnel MTU and counts it', async (t) => {
  if (!requirements(t)) return;
  const c0 = await s0().maps.counters();
  const big = buildFrame([inner[0]!, inner[1]!, { kind: 'udp', srcPort: 5000, dstPort: 5001 }], new Uint8Array(1476 - 28 + 1));
  const out = await run('tc', big);
  assert.equal(out.retval, TC_ACT_SHOT);
  const c1 = await s0().maps.counters();
  assert.ok(c0.ok && c1.ok);
  assert.equal(c1.value.encap_too_big - c0.value.encap_too_big, 1n);
  // Exactly the MTU fits.
  const fits = buildFrame([inner[0]!, inner[1]!, { kind: 'udp', srcPort: 5000, dstPort: 5001 }], new Uint8Array(1476 - 28));
  assert.equal((await run('tc', fits)).retval, TC_ACT_REDIRECT);
});

test("xdp_edge decapsulates GRE for a known (source, key) and redirects to the tunnel's device pair", async (t) => {
  if (!requirements(t)) return;
  const innerBytes = buildFrame(inner);
  const encapped = buildFrame([
    { kind: 'eth' },
    { kind: 'ipv4', src: CUSTOMER_ROUTER, dst: ENDPOINT },
    { kind: 'gre', key: 42, seq: 9, checksum: true },
    ...inner.slice(1),
  ]);
  const c0 = await s0().maps.counters();
  const out = await run('xdp', encapped);
  assert.equal(out.retval, XDP_REDIRECT);
  // What the tenant sees: the inner IP packet unchanged behind a new Ethernet header.
  assert.deepEqual(out.dataOut.subarray(14), Buffer.from(innerBytes.subarray(14)));
  const f = decodeFrame(out.dataOut);
  assert.equal(findLayer(f, 'ethernet')!.repr.dst, '02:ae:00:00:01:02');
  assert.equal(findLayer(f, 'ethernet')!.repr.etherType, 0x0800);
  const c1 = await s0().maps.counters();
  assert.ok(c0.ok && c1.ok);
  assert.equal(c1.value.gre_decap - c0.value.gre_decap, 1n);
});

test('xdp_edge tells keyed and keyless tunnels apart and drops unknown tunnels, counting them', async (t) => {
  if (!requirements(t)) return;
  const gre = (src: string, key?: number) =>
    buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src, dst: ENDPOINT }, { kind: 'gre', ...(key === undefined ? {} : { key }) }, ...inner.slice(1)]);
  const c0 = await s0().maps.counters();
  assert.equal((await run('xdp', gre('198.51.100.201'))).retval, XDP_REDIRECT, 'keyless tunnel');
  assert.equal((await run('xdp', gre('198.51.100.201', 42))).retval, XDP_DROP, 'a key on a keyless tunnel');
  assert.equal((await run('xdp', gre(CUSTOMER_ROUTER))).retval, XDP_DROP, 'no key on a keyed tunnel');
  assert.equal((await run('xdp', gre(CUSTOMER_ROUTER, 43))).retval, XDP_DROP, 'wrong key');
  assert.equal((await run('xdp', gre('192.0.2.99', 42))).retval, XDP_DROP, 'unknown source');
  const c1 = await s0().maps.counters();
  assert.ok(c0.ok && c1.ok);
  assert.equal(c1.value.gre_no_tunnel - c0.value.gre_no_tunnel, 4n);
});

test('xdp_edge drops malformed or unsupported GRE to the endpoint and passes everything else', async (t) => {
  if (!requirements(t)) return;
  const c0 = await s0().maps.counters();
  const ok = buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: CUSTOMER_ROUTER, dst: ENDPOINT }, { kind: 'gre', key: 42 }, ...inner.slice(1)]);
  // Truncated inside the GRE key.
  assert.equal((await run('xdp', ok.subarray(0, 14 + 20 + 6))).retval, XDP_DROP);
  // GRE version 1 (PPTP).
  const v1 = Buffer.from(ok);
  v1[14 + 20 + 1] = (v1[14 + 20 + 1] ?? 0) | 1;
  assert.equal((await run('xdp', v1)).retval, XDP_DROP);
  // A fragment of a GRE packet: stateless decap cannot reassemble.
  const frag = buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: CUSTOMER_ROUTER, dst: ENDPOINT, mf: true }, { kind: 'gre', key: 42 }, ...inner.slice(1)]);
  assert.equal((await run('xdp', frag)).retval, XDP_DROP);
  const c1 = await s0().maps.counters();
  assert.ok(c0.ok && c1.ok);
  assert.equal(c1.value.gre_malformed - c0.value.gre_malformed, 1n);
  assert.equal(c1.value.gre_unsupported - c0.value.gre_unsupported, 1n);
  assert.equal(c1.value.gre_fragment - c0.value.gre_fragment, 1n);
  // GRE to another address, and plain TCP to the endpoint, are not ours to judge.
  const other = buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: CUSTOMER_ROUTER, dst: '198.51.100.9' }, { kind: 'gre', key: 42 }, ...inner.slice(1)]);
  assert.equal((await run('xdp', other)).retval, XDP_PASS);
  assert.equal((await run('xdp', buildFrame(inner))).retval, XDP_PASS);
});

test('two servers with the same config turn the same packets into byte-identical output', async (t) => {
  if (!requirements(t)) return;
  const frames = [
    buildFrame(inner),
    buildFrame([inner[0]!, inner[1]!, { kind: 'udp', srcPort: 53, dstPort: 5353 }], 'payload'),
    buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: CUSTOMER_ROUTER, dst: ENDPOINT }, { kind: 'gre', key: 42 }, ...inner.slice(1)]),
  ];
  for (const [i, fr] of frames.entries()) {
    const prog = i < 2 ? 'tc' : 'xdp';
    const a = await run(prog, fr, servers[0]);
    const b = await run(prog, fr, servers[1]);
    assert.equal(a.retval, b.retval);
    assert.ok(a.dataOut.length > 0);
    assert.deepEqual(a.dataOut, b.dataOut, `frame ${i} differs between servers`);
  }
});

test('tc_gre_encap without out_ifindex lets the frame leave by the tunnel device, same bytes', async (t) => {
  if (!requirements(t)) return;
  const redirected = await run('tc', buildFrame(inner));
  assert.ok((await s0().maps.putEncap(TUNNEL_IFINDEX, { ...tunnel, outIfindex: 0 })).ok);
  try {
    const out = await run('tc', buildFrame(inner));
    assert.equal(out.retval, TC_ACT_OK);
    assert.deepEqual(out.dataOut, redirected.dataOut);
  } finally {
    assert.ok((await s0().maps.putEncap(TUNNEL_IFINDEX, tunnel)).ok);
  }
});

test('EdgeMaps reads back what it wrote, and deletes', async (t) => {
  if (!requirements(t)) return;
  const m = servers[1]!.maps;
  const enc = await m.listEncap();
  assert.ok(enc.ok);
  assert.deepEqual([...enc.value], [[TUNNEL_IFINDEX, tunnel]]);
  const eps = await m.listEndpoints();
  assert.ok(eps.ok);
  assert.deepEqual(eps.value, [ENDPOINT]);
  const dec = await m.listDecap();
  assert.ok(dec.ok);
  assert.deepEqual(
    dec.value.map((d) => d.key).sort((a, b) => a.remote.localeCompare(b.remote)),
    [{ remote: CUSTOMER_ROUTER, local: ENDPOINT, key: 42 }, { remote: '198.51.100.201', local: ENDPOINT }],
  );
  assert.ok((await m.deleteDecap({ remote: '198.51.100.201', local: ENDPOINT })).ok);
  assert.ok((await m.deleteDecap({ remote: '198.51.100.201', local: ENDPOINT })).ok, 'deleting what is gone is success');
  const dec2 = await m.listDecap();
  assert.ok(dec2.ok);
  assert.equal(dec2.value.length, 1);
  assert.ok((await m.deleteEncap(TUNNEL_IFINDEX)).ok);
  const enc2 = await m.listEncap();
  assert.ok(enc2.ok);
  assert.equal(enc2.value.size, 0);
});
