// buildFrame ↔ decodeFrame: every layer kind round-trips, lengths and next-protocol fields are
// filled, every checksum is right by an independent reference computation, and one corrupted
// checksum is reported on exactly its layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4Bytes, ipv6Bytes } from './addr.ts';
import { type LayerSpec, buildFrame, builtLinkType, tcpFlags } from './build.ts';
import { LinkType } from './decoder.ts';
import { type Frame, type LayerName, decodeFrame, findLayer, formatFrame } from './frame.ts';
import { IpProtocol } from './ip.ts';
import { encodeIpv4Options } from './ipv4.ts';
import { padIpv6Options } from './ipv6ext.ts';
import { TcpFlag } from './tcp.ts';
import { refChecksum, refPseudoHeader } from './testutil.ts';

const GRE_SYN: LayerSpec[] = [
  { kind: 'eth', src: '02:00:5e:00:53:01', dst: '02:00:5e:00:53:02' },
  { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1', ident: 0x1234, df: true, ttl: 61 },
  { kind: 'gre', key: 0xdeadbeef, seq: 7, checksum: true },
  { kind: 'ipv4', src: '192.0.2.10', dst: '203.0.113.5', ttl: 63 },
  { kind: 'tcp', srcPort: 40000, dstPort: 443, flags: 'S', seq: 1000, mss: 1436, options: [{ kind: 'sack_permitted' }, { kind: 'window_scale', shift: 7 }] },
];

function kinds(f: Frame): LayerName[] {
  return f.layers.map((l) => l.kind);
}

function must<K extends LayerName>(f: Frame, kind: K, nth = 0) {
  const l = findLayer(f, kind, nth);
  assert.ok(l, `no ${kind} #${nth} in ${formatFrame(f)}`);
  return l;
}

test('GRE-encapsulated TCP SYN: every field, length and checksum as specified', () => {
  const buf = buildFrame(GRE_SYN, 'hello');
  const f = decodeFrame(buf);
  assert.equal(f.error, null, formatFrame(f));
  assert.deepEqual(kinds(f), ['ethernet', 'ipv4', 'gre', 'ipv4', 'tcp']);
  assert.deepEqual(f.checksumErrors, []);
  const outer = must(f, 'ipv4', 0);
  assert.equal(outer.repr.src, '198.51.100.200');
  assert.equal(outer.repr.protocol, IpProtocol.GRE);
  assert.equal(outer.repr.ident, 0x1234);
  assert.equal(outer.repr.dontFrag, true);
  assert.equal(outer.repr.ttl, 61);
  assert.equal(outer.repr.payloadLen, buf.length - 14 - 20);
  assert.equal(outer.checksum, 'good');
  const gre = must(f, 'gre');
  assert.deepEqual(gre.repr, { protocol: 0x0800, checksum: true, key: 0xdeadbeef, seq: 7, reserved0: 0, reserved1: 0 });
  assert.equal(gre.checksum, 'good');
  assert.equal(gre.headerLen, 16);
  const inner = must(f, 'ipv4', 1);
  assert.equal(inner.repr.dst, '203.0.113.5');
  assert.equal(inner.repr.payloadLen, 20 + 12 + 5);
  const tcp = must(f, 'tcp');
  assert.equal(tcp.repr.flags, TcpFlag.SYN);
  assert.equal(tcp.repr.seq, 1000);
  assert.deepEqual(tcp.repr.options, [{ kind: 'mss', value: 1436 }, { kind: 'sack_permitted' }, { kind: 'window_scale', shift: 7 }, { kind: 'eol' }]);
  assert.equal(tcp.checksum, 'good');
  assert.equal(new TextDecoder().decode(f.payload), 'hello');

  // The same checksums by the slow reference, over the bytes themselves.
  assert.equal(refChecksum(buf.subarray(14, 34)), 0, 'outer IPv4 header');
  assert.equal(refChecksum(buf.subarray(34)), 0, 'GRE checksum covers GRE header and payload');
  const ti = 14 + 20 + 16 + 20;
  assert.equal(refChecksum(refPseudoHeader(ipv4Bytes('192.0.2.10'), ipv4Bytes('203.0.113.5'), 6, buf.length - ti), buf.subarray(ti)), 0, 'TCP');
});

test('a badChecksum layer is the only one reported, with its layer and offset', () => {
  const corrupt = (i: number) => GRE_SYN.map((l, j) => (j === i ? { ...l, badChecksum: true } : l)) as LayerSpec[];
  // `index` is the layer (in the spec and in the decoded frame) whose checksum is wrong.
  const cases: { layers: LayerSpec[]; index: number; bad: LayerName; offset: number }[] = [
    { layers: corrupt(1), index: 1, bad: 'ipv4', offset: 14 + 10 },
    { layers: corrupt(2), index: 2, bad: 'gre', offset: 34 + 4 },
    { layers: corrupt(3), index: 3, bad: 'ipv4', offset: 50 + 10 },
    { layers: corrupt(4), index: 4, bad: 'tcp', offset: 70 + 16 },
    { layers: [{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'udp', srcPort: 1, dstPort: 2, badChecksum: true }], index: 1, bad: 'udp', offset: 26 },
    { layers: [{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'icmp', badChecksum: true }], index: 1, bad: 'icmp', offset: 22 },
    { layers: [{ kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'icmpv6', badChecksum: true }], index: 1, bad: 'icmpv6', offset: 42 },
  ];
  for (const c of cases) {
    const buf = buildFrame(c.layers, 'payload!');
    const f = decodeFrame(buf, builtLinkType(c.layers));
    assert.equal(f.error, null, formatFrame(f));
    assert.equal(f.checksumErrors.length, 1, formatFrame(f));
    const e = f.checksumErrors[0]!;
    assert.equal(e.code, 'bad_checksum');
    assert.equal(e.layer, c.bad);
    assert.equal(e.offset, c.offset);
    f.layers.forEach((l, i) => {
      if ('checksum' in l) assert.equal(l.checksum, i === c.index ? 'bad' : 'good', `layer ${i} in ${formatFrame(f)}`);
    });
    // Verification off: nothing is judged.
    const u = decodeFrame(buf, builtLinkType(c.layers), { verifyChecksums: false });
    assert.deepEqual(u.checksumErrors, []);
  }
});

test('VLAN and QinQ tags carry their TPIDs and inner types', () => {
  const buf = buildFrame([
    { kind: 'eth' },
    { kind: 'vlan', vid: 10, tpid: 0x88a8, pcp: 5 },
    { kind: 'vlan', vid: 4094, dei: true },
    { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' },
    { kind: 'udp', srcPort: 5353, dstPort: 53 },
  ], 'q');
  assert.deepEqual([...buf.subarray(12, 14)], [0x88, 0xa8]);
  const f = decodeFrame(buf);
  assert.equal(f.error, null);
  assert.deepEqual(kinds(f), ['ethernet', 'vlan', 'vlan', 'ipv4', 'udp']);
  const v0 = must(f, 'vlan', 0);
  const v1 = must(f, 'vlan', 1);
  assert.equal(v0.tpid, 0x88a8);
  assert.deepEqual(v0.repr, { pcp: 5, dei: false, vid: 10, etherType: 0x8100 });
  assert.equal(v1.tpid, 0x8100);
  assert.deepEqual(v1.repr, { pcp: 0, dei: true, vid: 4094, etherType: 0x0800 });
  assert.equal(must(f, 'udp').checksum, 'good');
});

test('IPv6 extension headers: chain built, walked, and the SRH final destination used in the TCP pseudo-header', () => {
  const seg0 = ipv6Bytes('2001:db8:ffff::99');
  const srhData = new Uint8Array(4 + 16 * 2); // 4 type-specific bytes (last entry, flags, tag) + 2 segments
  srhData[0] = 1; // last entry
  srhData.set(seg0, 4);
  srhData.set(ipv6Bytes('2001:db8::2'), 20);
  const layers: LayerSpec[] = [
    { kind: 'eth' },
    { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2', flowLabel: 0xabcde, trafficClass: 0x28 },
    { kind: 'ipv6ext', ext: { kind: 'hop_by_hop', options: padIpv6Options([{ type: 5, data: new Uint8Array([0, 0]) }]) } },
    { kind: 'ipv6ext', ext: { kind: 'dest_options', options: padIpv6Options([]) } },
    { kind: 'ipv6ext', ext: { kind: 'routing', routingType: 4, segmentsLeft: 1, data: srhData } },
    { kind: 'ipv6ext', ext: { kind: 'fragment', fragOffset: 0, moreFrags: false, ident: 0x01020304 } },
    { kind: 'tcp', srcPort: 1234, dstPort: 80, flags: 'PA', ack: 5 },
  ];
  const buf = buildFrame(layers, 'GET /');
  const f = decodeFrame(buf);
  assert.equal(f.error, null, formatFrame(f));
  assert.deepEqual(kinds(f), ['ethernet', 'ipv6', 'ipv6ext', 'ipv6ext', 'ipv6ext', 'ipv6ext', 'tcp']);
  const ip = must(f, 'ipv6');
  assert.equal(ip.repr.nextHeader, IpProtocol.HOPOPT);
  assert.equal(ip.repr.flowLabel, 0xabcde);
  assert.equal(ip.repr.trafficClass, 0x28);
  assert.equal(ip.repr.payloadLen, buf.length - 54);
  assert.equal(ip.fragment, 'none', 'an atomic fragment (offset 0, no M) is a whole packet');
  assert.deepEqual(f.layers.slice(2, 6).map((l) => (l.kind === 'ipv6ext' ? [l.repr.kind, l.repr.nextHeader, l.headerLen] : null)), [
    ['hop_by_hop', 60, 8], ['dest_options', 43, 8], ['routing', 44, 40], ['fragment', 6, 8],
  ]);
  const tcp = must(f, 'tcp');
  assert.equal(tcp.checksum, 'good');
  assert.equal(tcp.repr.flags, TcpFlag.PSH | TcpFlag.ACK);
  // Reference: the pseudo-header uses Segment List[0], not the IPv6 destination (RFC 8200 §8.1).
  const ti = tcp.offset;
  assert.equal(refChecksum(refPseudoHeader(ipv6Bytes('2001:db8::1'), seg0, 6, buf.length - ti), buf.subarray(ti)), 0);
  assert.notEqual(refChecksum(refPseudoHeader(ipv6Bytes('2001:db8::1'), ipv6Bytes('2001:db8::2'), 6, buf.length - ti), buf.subarray(ti)), 0);
});

test('IPv4 options and fragments are flagged; later fragments are not decoded as L4', () => {
  const opts = encodeIpv4Options([{ type: 148, data: new Uint8Array([0, 0]) }, { type: 1, data: new Uint8Array(0) }]);
  const first = buildFrame([{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2', options: opts, mf: true, ident: 9 }, { kind: 'udp', srcPort: 7, dstPort: 9 }], new Uint8Array(64));
  let f = decodeFrame(first, LinkType.RAW);
  assert.equal(f.error, null, formatFrame(f));
  const ip = must(f, 'ipv4');
  assert.equal(ip.fragment, 'first');
  assert.deepEqual([...ip.repr.options], [148, 4, 0, 0, 1, 0, 0, 0]);
  assert.equal(ip.headerLen, 28);
  assert.equal(must(f, 'udp').checksum, 'unverified', 'a fragment checksum covers the whole datagram');

  const later = buildFrame([{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2', fragOffset: 1480, protocol: IpProtocol.UDP }], new Uint8Array(16).fill(0xee));
  f = decodeFrame(later, LinkType.RAW);
  assert.equal(f.error, null);
  assert.deepEqual(kinds(f), ['ipv4']);
  assert.equal(must(f, 'ipv4').fragment, 'later');
  assert.equal(must(f, 'ipv4').repr.fragOffset, 1480);
  assert.equal(f.payload.length, 16);
});

test('UDP zero checksum: absent over IPv4, an error over IPv6', () => {
  const v4 = decodeFrame(buildFrame([{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'udp', srcPort: 1, dstPort: 2, zeroChecksum: true }], 'x'), LinkType.RAW);
  assert.equal(must(v4, 'udp').checksum, 'absent');
  assert.deepEqual(v4.checksumErrors, []);
  const v6 = decodeFrame(buildFrame([{ kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'udp', srcPort: 1, dstPort: 2, zeroChecksum: true }], 'x'), LinkType.RAW);
  assert.equal(must(v6, 'udp').checksum, 'bad');
  assert.equal(v6.checksumErrors[0]?.message.includes('zero checksum over IPv6'), true);
});

test('ICMP, ICMPv6, ARP, Ethernet over GRE, padding as trailer', () => {
  const unreach = decodeFrame(buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'icmp', message: { kind: 'dest_unreachable', code: 4, nextHopMtu: 1476 } }], new Uint8Array(28)));
  assert.deepEqual({ ...must(unreach, 'icmp').repr, data: null }, { kind: 'dest_unreachable', code: 4, nextHopMtu: 1476, data: null });
  assert.equal(must(unreach, 'icmp').checksum, 'good');

  const ptb = decodeFrame(buildFrame([{ kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'icmpv6', message: { kind: 'packet_too_big', mtu: 1280 } }], new Uint8Array(48)), LinkType.RAW);
  assert.equal(must(ptb, 'icmpv6').repr.kind, 'packet_too_big');
  assert.equal(must(ptb, 'icmpv6').checksum, 'good');

  const arpBuf = buildFrame([{ kind: 'eth', pad: true, dst: 'ff:ff:ff:ff:ff:ff' }, { kind: 'arp', senderIp: '192.0.2.7', targetIp: '192.0.2.8' }]);
  assert.equal(arpBuf.length, 60);
  const arp = decodeFrame(arpBuf);
  assert.deepEqual(must(arp, 'arp').repr, { op: 1, senderMac: '02:00:00:00:00:01', senderIp: '192.0.2.7', targetMac: '00:00:00:00:00:00', targetIp: '192.0.2.8' });
  assert.equal(arp.trailer.length, 60 - 42);

  const teb = decodeFrame(buildFrame([
    { kind: 'eth' }, { kind: 'ipv4', src: '198.51.100.200', dst: '198.51.100.1' }, { kind: 'gre' },
    { kind: 'eth' }, { kind: 'ipv6', src: '2001:db8::1', dst: '2001:db8::2' }, { kind: 'udp', srcPort: 1, dstPort: 2 },
  ]));
  assert.deepEqual(kinds(teb), ['ethernet', 'ipv4', 'gre', 'ethernet', 'ipv6', 'udp']);
  assert.equal(must(teb, 'gre').repr.protocol, 0x6558);
  assert.equal(must(teb, 'gre').checksum, 'absent');

  const short = buildFrame([{ kind: 'eth', pad: true }, { kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'udp', srcPort: 1, dstPort: 2 }], 'ab');
  const sf = decodeFrame(short);
  assert.equal(short.length, 60);
  assert.equal(sf.trailer.length, 60 - 44);
  assert.equal(new TextDecoder().decode(sf.payload), 'ab');
});

test('builder refuses nonsense layer lists and bad field values', () => {
  assert.throws(() => buildFrame([{ kind: 'eth' }, { kind: 'tcp', srcPort: 1, dstPort: 2 }]), RangeError);
  assert.throws(() => buildFrame([{ kind: 'tcp', srcPort: 1, dstPort: 2 }]), RangeError);
  assert.throws(() => buildFrame([{ kind: 'ipv4', src: '192.0.2.1', dst: '2001:db8::1' }, { kind: 'udp', srcPort: 1, dstPort: 2 }]), RangeError);
  assert.throws(() => buildFrame([{ kind: 'ipv4', src: '192.0.2.01', dst: '192.0.2.1' }]), RangeError);
  assert.throws(() => buildFrame([{ kind: 'ipv4', src: '192.0.2.1', dst: '192.0.2.2' }, { kind: 'tcp', srcPort: 70000, dstPort: 2 }]), RangeError);
  assert.throws(() => tcpFlags('SX'), RangeError);
  assert.equal(tcpFlags('FSRPAUEC'), 0xff);
  assert.equal(tcpFlags('N'), 0x100);
});
