/**
 * Packet fixtures for xdp_edge's SYN-flood stage through BPF_PROG_TEST_RUN: a SYN to a protected
 * address comes back as a cookie SYN-ACK (XDP_TX), and the ACK a client would send for it is
 * accepted by the kernel's own cookie check (the packet goes on), while an ACK with a wrong cookie
 * is dropped; addresses that are not protected go on untouched. IPv4 and IPv6.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { buildFrame, type LayerSpec } from '../../wire/build.ts';
import { decodeFrame, describeFrame, findLayer } from '../../wire/frame.ts';
import { TcpFlag } from '../../wire/tcp.ts';
import { readBtfStructs, compareLayout } from './btf.ts';
import { mapLookupMany, mapUpdate, progRun } from './bpftool.ts';
import { loadEdge, unloadEdge, type EdgePins } from './loader.ts';
import { BPF_OBJECTS, missingObjects } from './objects.ts';
import { SYN_COUNTERS, SYN_KEY4, SYN_POLICY, SYN_SIZES, SynCookieMaps, decodeSynPolicy, encodeSynPolicy, synPrefixKey } from './syncookie.ts';

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_TX = 3;

const CLIENT_MAC = '02:00:00:00:00:0a';
const SERVER_MAC = '02:00:00:00:00:0b';
const TENANT = '203.0.113.0/25';
const TENANT6 = '2001:db8:203::/48';
const TENANT_IDX = 3;
const MSS = 1400;

let pins: EdgePins | undefined;
let maps: SynCookieMaps | undefined;

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || missingObjects().length) return;
  const loaded = await loadEdge(`aeSC${process.pid}`);
  if (!loaded.ok) throw new Error(`${loaded.error.op}: ${loaded.error.message}`);
  pins = loaded.value;
  maps = new SynCookieMaps(pins);
  for (const cidr of [TENANT, TENANT6]) {
    const r = await maps.protect(cidr, { mss: MSS, wscale: 7, tenantIdx: TENANT_IDX });
    if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);
  }
});

after(async () => {
  if (pins) await unloadEdge(pins);
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['bpftool'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(pins && maps, 'edge programs did not load');
  return true;
}

async function xdp(frame: Uint8Array) {
  const r = await progRun(pins!.progs.xdpEdge, Buffer.from(frame));
  assert.ok(r.ok, r.ok ? '' : `${r.error.op}: ${r.error.message}`);
  return r.value;
}

type Fam = { name: string; ip: 'ipv4' | 'ipv6'; client: string; dst: string; other: string };
const FAMILIES: Fam[] = [
  { name: 'IPv4', ip: 'ipv4', client: '192.0.2.10', dst: '203.0.113.100', other: '203.0.113.200' },
  { name: 'IPv6', ip: 'ipv6', client: '2001:db8:c::10', dst: '2001:db8:203::100', other: '2001:db8:204::100' },
];

function frame(f: Fam, dst: string, tcp: Omit<Extract<LayerSpec, { kind: 'tcp' }>, 'kind'>): Uint8Array {
  return buildFrame([{ kind: 'eth', src: CLIENT_MAC, dst: SERVER_MAC }, { kind: f.ip, src: f.client, dst } as LayerSpec, { kind: 'tcp', ...tcp }]);
}

for (const f of FAMILIES) {
  test(`${f.name}: a SYN to a protected address is answered from XDP with a cookie SYN-ACK, and the cookie's ACK passes`, async (t) => {
    if (!ready(t)) return;
    const before = await maps!.tenantCounters(TENANT_IDX);
    assert.ok(before.ok);
    const syn = frame(f, f.dst, { srcPort: 40001, dstPort: 21, flags: 'S', seq: 1000, mss: 1460, options: [{ kind: 'sack_permitted' }, { kind: 'window_scale', shift: 7 }] });
    const out = await xdp(syn);
    assert.equal(out.retval, XDP_TX, `expected XDP_TX, got ${out.retval}: ${describeFrame(out.dataOut)}`);
    const reply = decodeFrame(out.dataOut);
    assert.equal(reply.error, null, describeFrame(out.dataOut));
    assert.deepEqual(reply.checksumErrors, [], describeFrame(out.dataOut));
    const eth = findLayer(reply, 'ethernet')!;
    assert.deepEqual([eth.repr.src, eth.repr.dst], [SERVER_MAC, CLIENT_MAC], 'MACs swapped');
    const ip = f.ip === 'ipv4' ? findLayer(reply, 'ipv4')! : findLayer(reply, 'ipv6')!;
    assert.deepEqual([ip.repr.src, ip.repr.dst], [f.dst, f.client], 'addresses swapped');
    const tcp = findLayer(reply, 'tcp')!;
    assert.equal(tcp.checksum, 'good');
    assert.equal(tcp.repr.flags, TcpFlag.SYN | TcpFlag.ACK);
    assert.deepEqual([tcp.repr.srcPort, tcp.repr.dstPort], [21, 40001]);
    assert.equal(tcp.repr.ack, 1001);
    assert.deepEqual(tcp.repr.options.filter((o) => o.kind === 'mss'), [{ kind: 'mss', value: MSS }]);
    const cookie = tcp.repr.seq;

    // The client's third packet: the kernel's check helper must accept the cookie it made.
    const ack = frame(f, f.dst, { srcPort: 40001, dstPort: 21, flags: 'A', seq: 1001, ack: (cookie + 1) >>> 0 });
    const passed = await xdp(ack);
    assert.equal(passed.retval, XDP_PASS, 'a valid cookie goes on to the tenant namespace');
    assert.deepEqual(Buffer.from(passed.dataOut), Buffer.from(ack), 'and is not modified');
    // Later packets of the flow pass as a known flow, without a cookie check.
    const data = frame(f, f.dst, { srcPort: 40001, dstPort: 21, flags: 'PA', seq: 1001, ack: 12345 });
    assert.equal((await xdp(data)).retval, XDP_PASS, 'a remembered flow passes even with another ack number');

    const after = await maps!.tenantCounters(TENANT_IDX);
    assert.ok(after.ok);
    assert.equal(after.value.synack - before.value.synack, 1n);
    assert.equal(after.value.ackOk - before.value.ackOk, 1n);
    assert.equal(after.value.flow - before.value.flow, 1n);
  });

  test(`${f.name}: with timestamps the SYN-ACK offers what the namespace's synproxy would — window scale, SACK, a timestamp carrying the client's options; without, the MSS alone`, async (t) => {
    if (!ready(t)) return;
    const opts = (o: ReturnType<typeof decodeFrame>) => findLayer(o, 'tcp')!.repr.options.filter((x) => x.kind !== 'nop' && x.kind !== 'eol');
    const withTs = frame(f, f.dst, {
      srcPort: 40011, dstPort: 21, flags: 'S', seq: 2000, mss: 1460,
      options: [{ kind: 'sack_permitted' }, { kind: 'timestamps', tsval: 0x11223344, tsecr: 0 }, { kind: 'nop' }, { kind: 'window_scale', shift: 9 }],
    });
    const out = await xdp(withTs);
    assert.equal(out.retval, XDP_TX);
    const reply = decodeFrame(out.dataOut);
    assert.deepEqual(reply.checksumErrors, [], describeFrame(out.dataOut));
    const got = opts(reply);
    assert.deepEqual(got.filter((o) => o.kind !== 'timestamps'), [{ kind: 'mss', value: MSS }, { kind: 'sack_permitted' }, { kind: 'window_scale', shift: 7 }], 'the policy\'s window scale (the synproxy\'s), not the client\'s');
    const ts = got.find((o) => o.kind === 'timestamps');
    assert.ok(ts && ts.kind === 'timestamps', describeFrame(out.dataOut));
    assert.equal(ts.tsecr, 0x11223344, "the client's timestamp echoed");
    // nf_synproxy's encoding: low 4 bits the client's window scale, bit 4 SACK-permitted, bit 5 ECN (not offered).
    assert.equal(ts.tsval & 0x3f, 9 | 0x10);
    // The cookie still checks out (the options do not enter it).
    const ack = frame(f, f.dst, { srcPort: 40011, dstPort: 21, flags: 'A', seq: 2001, ack: (findLayer(reply, 'tcp')!.repr.seq + 1) >>> 0, options: [{ kind: 'timestamps', tsval: 0x11223345, tsecr: ts.tsval }] });
    assert.equal((await xdp(ack)).retval, XDP_PASS);

    // No window scale from the client: the timestamp says so (0xf), and no window-scale option.
    const noWs = frame(f, f.dst, { srcPort: 40012, dstPort: 21, flags: 'S', seq: 3000, mss: 1460, options: [{ kind: 'timestamps', tsval: 5, tsecr: 0 }] });
    const r2 = decodeFrame((await xdp(noWs)).dataOut);
    const o2 = opts(r2);
    assert.deepEqual(o2.map((o) => o.kind), ['mss', 'timestamps']);
    const ts2 = o2[1];
    assert.ok(ts2?.kind === 'timestamps');
    assert.equal(ts2.tsval & 0x3f, 0x0f);

    // No timestamps: nothing to carry the options in, so only the MSS (as synproxy does).
    const plain = frame(f, f.dst, { srcPort: 40013, dstPort: 21, flags: 'S', seq: 4000, mss: 1460, options: [{ kind: 'sack_permitted' }, { kind: 'window_scale', shift: 9 }] });
    const r3 = decodeFrame((await xdp(plain)).dataOut);
    assert.deepEqual(opts(r3), [{ kind: 'mss', value: MSS }]);
    assert.equal(findLayer(r3, 'tcp')!.headerLen, 24);
  });

  test(`${f.name}: an ACK of an unknown flow with a wrong cookie is dropped in XDP`, async (t) => {
    if (!ready(t)) return;
    const before = await maps!.counters();
    assert.ok(before.ok);
    const syn = frame(f, f.dst, { srcPort: 40002, dstPort: 21, flags: 'S', seq: 5000, mss: 1460 });
    const out = await xdp(syn);
    assert.equal(out.retval, XDP_TX);
    const cookie = findLayer(decodeFrame(out.dataOut), 'tcp')!.repr.seq;
    // Not cookie ± 1..3: the low bits carry the MSS index, so a neighbour is a valid cookie for
    // another MSS (the kernel's design, not ours). These change the hash part.
    for (const wrong of [(cookie + 0x10000) >>> 0, (cookie ^ 0x00ff0000) >>> 0]) {
      const bad = frame(f, f.dst, { srcPort: 40002, dstPort: 21, flags: 'A', seq: 5001, ack: wrong });
      assert.equal((await xdp(bad)).retval, XDP_DROP, `ack ${wrong} (cookie ${cookie}) must be dropped`);
    }
    // The right cookie from another source port: the cookie covers the 4-tuple.
    const moved = frame(f, f.dst, { srcPort: 40003, dstPort: 21, flags: 'A', seq: 5001, ack: (cookie + 1) >>> 0 });
    assert.equal((await xdp(moved)).retval, XDP_DROP, 'a cookie is bound to its flow');
    const after = await maps!.counters();
    assert.ok(after.ok);
    assert.equal(after.value.ackBad - before.value.ackBad, 3n);
  });

  test(`${f.name}: TCP to an address that is not protected goes on untouched`, async (t) => {
    if (!ready(t)) return;
    const before = await maps!.counters();
    assert.ok(before.ok);
    for (const flags of ['S', 'A']) {
      const pkt = frame(f, f.other, { srcPort: 40004, dstPort: 21, flags, seq: 1, ack: 77 });
      const out = await xdp(pkt);
      assert.equal(out.retval, XDP_PASS);
      assert.deepEqual(Buffer.from(out.dataOut), Buffer.from(pkt));
    }
    const after = await maps!.counters();
    assert.ok(after.ok);
    assert.deepEqual(after.value, before.value, 'no counter moved');
  });

  test(`${f.name}: a SYN-ACK to a protected address (a connection the customer opened) passes, and so does the rest of that flow, its RST too; an RST of a flow never seen is dropped`, async (t) => {
    if (!ready(t)) return;
    const synack = frame(f, f.dst, { srcPort: 443, dstPort: 50000, flags: 'SA', seq: 9, ack: 100 });
    assert.equal((await xdp(synack)).retval, XDP_PASS);
    const ack = frame(f, f.dst, { srcPort: 443, dstPort: 50000, flags: 'A', seq: 10, ack: 100 });
    assert.equal((await xdp(ack)).retval, XDP_PASS);
    const before = await maps!.counters();
    assert.ok(before.ok);
    const known = frame(f, f.dst, { srcPort: 443, dstPort: 50000, flags: 'R', seq: 10 });
    assert.equal((await xdp(known)).retval, XDP_PASS, "the RST of the customer's own connection");
    // A flooding stack resets our cookie SYN-ACKs; spoofed floods bring the victims' resets:
    // nobody validated these flows, the host never heard of them.
    const stray = frame(f, f.dst, { srcPort: 443, dstPort: 50001, flags: 'R', seq: 10 });
    assert.equal((await xdp(stray)).retval, XDP_DROP, 'an RST of a flow never seen');
    const after = await maps!.counters();
    assert.ok(after.ok);
    assert.equal(after.value.rstBad - before.value.rstBad, 1n);
    assert.equal(after.value.flow - before.value.flow, 1n);
  });
}

test('IPv4 SYN with IP options is left to the tenant namespace (counted as unanswerable)', async (t) => {
  if (!ready(t)) return;
  const before = await maps!.counters();
  assert.ok(before.ok);
  const pkt = buildFrame([
    { kind: 'eth', src: CLIENT_MAC, dst: SERVER_MAC },
    { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.100', options: Uint8Array.from([0x94, 4, 0, 0]) },
    { kind: 'tcp', srcPort: 40005, dstPort: 21, flags: 'S', seq: 1 },
  ]);
  assert.equal((await xdp(pkt)).retval, XDP_PASS);
  const after = await maps!.counters();
  assert.ok(after.ok);
  assert.equal(after.value.unanswerable - before.value.unanswerable, 1n);
});

test('protect / unprotect / read back: LPM keys and policies round-trip through the kernel', async (t) => {
  if (!ready(t)) return;
  const list = await maps!.protectedPrefixes();
  assert.ok(list.ok);
  assert.deepEqual(list.value.get(TENANT), { mss: MSS, wscale: 7, tenantIdx: TENANT_IDX });
  assert.deepEqual(list.value.get(TENANT6), { mss: MSS, wscale: 7, tenantIdx: TENANT_IDX });
  assert.ok((await maps!.protect('198.51.100.64/26', { mss: 1460, wscale: 7, tenantIdx: 9 })).ok);
  const p = await maps!.policy('198.51.100.64/26');
  assert.ok(p.ok);
  assert.deepEqual(p.value, { mss: 1460, wscale: 7, tenantIdx: 9 });
  assert.ok((await maps!.unprotect('198.51.100.64/26')).ok);
  assert.ok((await maps!.unprotect('198.51.100.64/26')).ok, 'already gone is success');
  const gone = await maps!.policy('198.51.100.64/26');
  assert.ok(gone.ok);
  assert.equal(gone.value, null);
  const bad = await maps!.protect('198.51.100.64/26', { mss: 100, wscale: 7, tenantIdx: 0 });
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /mss 100 is outside 536–9000/);
});

/** The syn_tenant_cnt keys of one tenant index (tenant_idx * SYN_CNT_MAX + counter). */
function blockKeys(idx: number): Buffer[] {
  return SYN_COUNTERS.map((_, i) => {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(idx * SYN_COUNTERS.length + i, 0);
    return k;
  });
}

test('zeroTenantCounters zeroes every counter of one tenant block on every CPU; the neighbouring blocks and the global counters keep theirs', async (t) => {
  if (!ready(t)) return;
  const m = maps!;
  // History on every CPU of blocks 5, 6 and 7 (bpftool copies the one value to each CPU).
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n, 0);
  for (const idx of [5, 6, 7]) for (const k of blockKeys(idx)) assert.ok((await mapUpdate(m.paths.syn_tenant_cnt, k, one)).ok);
  const cpus = await mapLookupMany(m.paths.syn_tenant_cnt, blockKeys(6));
  assert.ok(cpus.ok);
  const ncpu = cpus.value[0]!.perCpu!.length;
  assert.ok(ncpu >= 1);
  const had = await m.tenantCounters(6);
  assert.ok(had.ok);
  assert.equal(had.value.synack, BigInt(ncpu), 'one count on each CPU before');
  const global = await m.counters();
  assert.ok(global.ok);

  const z = await m.zeroTenantCounters(6);
  assert.ok(z.ok, z.ok ? '' : z.error.message);
  const raw = await mapLookupMany(m.paths.syn_tenant_cnt, blockKeys(6));
  assert.ok(raw.ok);
  for (const e of raw.value) for (const v of e.perCpu ?? []) assert.equal(v.readBigUInt64LE(0), 0n, `slot ${e.key.readUInt32LE(0)}: every CPU zero`);
  const all = await m.tenantCountersOf([5, 6, 7]);
  assert.ok(all.ok);
  assert.deepEqual([...all.value.keys()], [5, 6, 7]);
  const zero = Object.fromEntries(SYN_COUNTERS.map((n) => [n, 0n]));
  const full = Object.fromEntries(SYN_COUNTERS.map((n) => [n, BigInt(ncpu)]));
  assert.deepEqual(all.value.get(6), zero);
  assert.deepEqual(all.value.get(5), full, 'the block below is untouched');
  assert.deepEqual(all.value.get(7), full, 'the block above is untouched');
  assert.deepEqual((await m.counters()), global, 'the global counters are untouched');

  const bad = await m.zeroTenantCounters(65536);
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /tenant index 65536 is outside 0–65535/);
});

test('tenantCountersOf reads several blocks in one run, the same as tenantCounters of each', async (t) => {
  if (!ready(t)) return;
  const syn = frame(FAMILIES[0]!, FAMILIES[0]!.dst, { srcPort: 40010, dstPort: 21, flags: 'S', seq: 7, mss: 1460 });
  assert.equal((await xdp(syn)).retval, XDP_TX);
  const many = await maps!.tenantCountersOf([TENANT_IDX, 0, TENANT_IDX]);
  assert.ok(many.ok);
  assert.deepEqual([...many.value.keys()], [TENANT_IDX, 0], 'each index once');
  for (const idx of [TENANT_IDX, 0]) {
    const one = await maps!.tenantCounters(idx);
    assert.ok(one.ok);
    assert.deepEqual(many.value.get(idx), one.value);
  }
  assert.ok((many.value.get(TENANT_IDX)?.synack ?? 0n) >= 1n);
});

test('LPM keys: host-order prefix length, then the address in network order', () => {
  assert.deepEqual(synPrefixKey('203.0.113.0/25'), { map: 'syn_v4', key: Buffer.from([25, 0, 0, 0, 203, 0, 113, 0]) });
  const k6 = synPrefixKey('2001:db8::/32');
  assert.equal(k6.map, 'syn_v6');
  assert.deepEqual([...k6.key.subarray(0, 8)], [32, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8]);
  assert.equal(k6.key.length, 20);
  assert.deepEqual(decodeSynPolicy(encodeSynPolicy({ mss: 1460, wscale: 7, tenantIdx: 7 })), { mss: 1460, wscale: 7, tenantIdx: 7 });
});

test('the TypeScript layouts of the SYN-flood maps match xdp_edge.o BTF', async (t) => {
  if (!needs(t, { tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  const btf = await readBtfStructs(BPF_OBJECTS.xdpEdge);
  assert.ok(btf.ok, btf.ok ? '' : btf.error);
  for (const spec of [SYN_POLICY, SYN_KEY4]) assert.deepEqual(compareLayout(spec, btf.value.get(spec.name)), []);
  for (const [name, size] of Object.entries(SYN_SIZES)) assert.equal(btf.value.get(name)?.size, size, `struct ${name}`);
});
