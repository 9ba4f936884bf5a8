// FrameDecoder: the zero-allocation walker's bounds (VLAN tags, extension headers, nesting),
// link types, and in-place rewriting through its views with incremental checksum updates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type LayerSpec, buildFrame } from './build.ts';
import { updateChecksum16 } from './checksum.ts';
import { CkStatus, FrameDecoder, LayerKind, LinkType, MAX_ENCAP_DEPTH } from './decoder.ts';
import { decodeFrame, findLayer, formatFrame } from './frame.ts';
import { padIpv6Options } from './ipv6ext.ts';
import { TcpOptionKind } from './tcp.ts';
import { MAX_VLAN_TAGS } from './vlan.ts';
import { MAX_IPV6_EXT_HEADERS } from './ipv6ext.ts';

const V4: LayerSpec = { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' };
const UDP: LayerSpec = { kind: 'udp', srcPort: 1, dstPort: 2 };

test('VLAN tags: up to the bound decoded, one more is limit_exceeded', () => {
  const tags = (n: number): LayerSpec[] => Array.from({ length: n }, (_, i) => ({ kind: 'vlan', vid: i + 1 }));
  const ok = decodeFrame(buildFrame([{ kind: 'eth' }, ...tags(MAX_VLAN_TAGS), V4, UDP]));
  assert.equal(ok.error, null);
  const over = decodeFrame(buildFrame([{ kind: 'eth' }, ...tags(MAX_VLAN_TAGS + 1), V4, UDP]));
  assert.equal(over.error?.code, 'limit_exceeded');
  assert.equal(over.error?.layer, 'vlan');
  assert.equal(over.error?.offset, 14 + 4 * MAX_VLAN_TAGS);
});

test('IPv6 extension headers: bounded count, hop-by-hop only first', () => {
  const dst = (n: number): LayerSpec[] => Array.from({ length: n }, () => ({ kind: 'ipv6ext', ext: { kind: 'dest_options', options: padIpv6Options([]) } }));
  const v6: LayerSpec = { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' };
  assert.equal(decodeFrame(buildFrame([v6, ...dst(MAX_IPV6_EXT_HEADERS), UDP]), LinkType.RAW).error, null);
  const over = decodeFrame(buildFrame([v6, ...dst(MAX_IPV6_EXT_HEADERS + 1), UDP]), LinkType.RAW);
  assert.equal(over.error?.code, 'limit_exceeded');
  assert.equal(over.error?.offset, 40 + 8 * MAX_IPV6_EXT_HEADERS);
  const hbh: LayerSpec = { kind: 'ipv6ext', ext: { kind: 'hop_by_hop', options: padIpv6Options([]) } };
  const late = decodeFrame(buildFrame([v6, ...dst(1), hbh, UDP]), LinkType.RAW);
  assert.equal(late.error?.code, 'malformed');
  assert.equal(late.error?.layer, 'ipv6ext');
  assert.equal(late.error?.offset, 48);
});

test('encapsulation depth is bounded (GRE in GRE …), and the bound is configurable', () => {
  const nest = (n: number): LayerSpec[] => {
    const l: LayerSpec[] = [{ kind: 'eth' }, V4];
    for (let i = 0; i < n; i++) l.push({ kind: 'gre', key: i }, V4);
    return [...l, UDP];
  };
  assert.equal(decodeFrame(buildFrame(nest(MAX_ENCAP_DEPTH))).error, null);
  const over = decodeFrame(buildFrame(nest(MAX_ENCAP_DEPTH + 1)));
  assert.equal(over.error?.code, 'limit_exceeded');
  assert.equal(over.error?.layer, 'frame');
  const strict = decodeFrame(buildFrame(nest(1)), LinkType.ETHERNET, { maxEncapDepth: 0 });
  assert.equal(strict.error?.code, 'limit_exceeded');
  assert.deepEqual(strict.layers.map((l) => l.kind), ['ethernet', 'ipv4', 'gre'], 'layers before the failure are kept');
  // IP-in-IP counts too.
  const ipip = decodeFrame(buildFrame([V4, V4, UDP]), LinkType.RAW, { maxEncapDepth: 0 });
  assert.equal(ipip.error?.code, 'limit_exceeded');
});

test('link types: raw picks the version from the first nibble; others are typed errors', () => {
  const v4 = buildFrame([V4, UDP]);
  const v6 = buildFrame([{ kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, UDP]);
  const dec = new FrameDecoder();
  assert.ok(dec.decode(v4, LinkType.RAW));
  assert.equal(dec.kinds[0], LayerKind.IPV4);
  assert.ok(dec.decode(v6, LinkType.RAW));
  assert.equal(dec.kinds[0], LayerKind.IPV6);
  assert.ok(dec.decode(v4, LinkType.IPV4));
  assert.ok(dec.decode(v6, LinkType.IPV6));
  assert.ok(!dec.decode(v4, LinkType.IPV6));
  assert.equal(dec.fault?.layer, 'ipv6');
  assert.equal(decodeFrame(new Uint8Array(0), LinkType.RAW).error?.code, 'truncated');
  assert.equal(decodeFrame(new Uint8Array([0x50]), LinkType.RAW).error?.code, 'malformed');
  assert.equal(decodeFrame(v4, 147).error?.code, 'unsupported');
});

test('decodes a sub-range of a larger buffer and reports offsets in it', () => {
  const frame = buildFrame([{ kind: 'eth' }, V4, UDP], 'abc');
  const big = new Uint8Array(100 + frame.length + 50).fill(0x45);
  big.set(frame, 100);
  const dec = new FrameDecoder();
  assert.ok(dec.decode(big, LinkType.ETHERNET, 100, 100 + frame.length));
  assert.deepEqual([...dec.offsets.subarray(0, dec.count)], [100, 114, 134]);
  assert.equal(dec.payloadOffset, 142);
  assert.equal(dec.payloadEnd, 145);
  assert.equal(dec.trailerOffset, 145);
});

test('in-place rewrite through the views: TTL decrement and MSS clamp with incremental checksums', () => {
  const buf = buildFrame([
    { kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' }, { kind: 'gre', key: 5 },
    { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5', ttl: 64 }, { kind: 'tcp', srcPort: 1, dstPort: 2, mss: 1460 },
  ]);
  const dec = new FrameDecoder();
  assert.ok(dec.decode(buf, LinkType.ETHERNET));
  const inner = dec.find(LayerKind.IPV4, dec.find(LayerKind.IPV4) + 1);
  const ip = dec.ipv4.reset(buf, dec.offsets[inner]!, dec.ends[inner]!);
  // TTL shares a 16-bit word with the protocol: update the checksum for that word.
  const oldWord = (ip.ttl << 8) | ip.protocol;
  ip.ttl = ip.ttl - 1;
  ip.checksum = updateChecksum16(ip.checksum, oldWord, (ip.ttl << 8) | ip.protocol);
  const t = dec.find(LayerKind.TCP);
  const tcp = dec.tcp.reset(buf, dec.offsets[t]!, dec.ends[t]!);
  const at = tcp.findOption(TcpOptionKind.MSS, 4);
  const oldMss = (buf[at + 2]! << 8) | buf[at + 3]!;
  buf[at + 2] = 1436 >>> 8;
  buf[at + 3] = 1436 & 0xff;
  tcp.checksum = updateChecksum16(tcp.checksum, oldMss, 1436);
  const f = decodeFrame(buf);
  assert.deepEqual(f.checksumErrors, [], formatFrame(f));
  assert.equal(findLayer(f, 'ipv4', 1)?.repr.ttl, 63);
  assert.deepEqual(findLayer(f, 'tcp')?.repr.options[0], { kind: 'mss', value: 1436 });
  // And the decoder agrees without the Repr path.
  assert.ok(dec.decode(buf, LinkType.ETHERNET));
  for (let i = 0; i < dec.count; i++) assert.notEqual(dec.checksums[i], CkStatus.BAD);
});

test('the one-line printer names every layer and the error', () => {
  const buf = buildFrame([{ kind: 'eth' }, { kind: 'vlan', vid: 7 }, V4, { kind: 'gre', key: 42, checksum: true }, V4, { kind: 'tcp', srcPort: 40000, dstPort: 80, flags: 'S', mss: 1400 }]);
  assert.equal(
    formatFrame(decodeFrame(buf)),
    'eth 02:00:00:00:00:01 > 02:00:00:00:00:02 type 802.1q | vlan 7 | ipv4 192.0.2.1 > 192.0.2.2 ttl 64 id 0x0000 proto gre len 76 | ' +
      'gre proto ipv4 key 42 csum | ipv4 192.0.2.1 > 192.0.2.2 ttl 64 id 0x0000 proto tcp len 44 | tcp 40000 > 80 [S] seq 1 win 65535 <mss 1400> len 0 | payload 0',
  );
  assert.match(formatFrame(decodeFrame(buf.subarray(0, 30))), /!! ipv4 truncated at byte 18/);
});

/** Runs `fn` `n` times synchronously; returns how many GCs started meanwhile (after a forced one). */
async function gcsDuring(n: number, fn: () => unknown): Promise<number> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const times: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) times.push(e.startTime);
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    for (let i = 0; i < 10_000; i++) fn(); // warm up: compile before measuring
    gc();
    await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) fn();
    const t1 = performance.now();
    await new Promise((r) => setTimeout(r, 50)); // GC entries are delivered asynchronously
    return times.filter((t) => t >= t0 && t <= t1).length;
  } finally {
    obs.disconnect();
  }
}

test('FrameDecoder.decode does not allocate: 300k GRE frames, no GC (decodeFrame, which does, shows GCs)', async () => {
  const buf = buildFrame([
    { kind: 'eth' }, { kind: 'vlan', vid: 3 }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' }, { kind: 'gre', key: 5, checksum: true },
    { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5' }, { kind: 'tcp', srcPort: 1, dstPort: 2, mss: 1460 },
  ], new Uint8Array(100));
  const dec = new FrameDecoder();
  assert.equal(await gcsDuring(300_000, () => dec.decode(buf, LinkType.ETHERNET)), 0);
  // The probe itself works: the allocating path fills the young generation many times over.
  assert.ok((await gcsDuring(30_000, () => decodeFrame(buf))) > 0);
});
