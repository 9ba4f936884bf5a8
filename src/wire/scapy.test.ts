// Cross-check with an independent encoder: scapy builds a variety of packets (VLAN/QinQ, IPv4
// with options and fragments, IPv6 with extension headers, TCP with options, UDP, ICMP,
// ICMPv6, GRE with key+sequence+checksum, ARP), writes them to a pcap and prints the field
// values it put in as JSON. We read the pcap and must (1) decode every frame to those values,
// (2) find every checksum scapy computed good, and (3) emit the very same bytes when we rebuild
// the frame from what we decoded — so our emitter's lengths and checksums match scapy's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { type LayerSpec, buildFrame } from './build.ts';
import { toHex } from './bytes.ts';
import { type Frame, type Layer, decodeFrame, formatFrame } from './frame.ts';
import { readPcap } from './pcap.ts';
import { type TcpOption } from './tcp.ts';
import { tempDir } from './testutil.ts';

/** Python run by /usr/bin/python3 (the one with scapy): argv[1] is the pcap to write. */
const SCRIPT = String.raw`
import sys, json
from scapy.all import Ether, Dot1Q, Dot1AD, ARP, IP, IPOption_RR, IPOption_Router_Alert, TCP, UDP, ICMP, GRE, Raw, wrpcap, raw
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrSegmentRouting, IPv6ExtHdrFragment, ICMPv6EchoRequest, ICMPv6EchoReply, ICMPv6PacketTooBig, RouterAlert

E = dict(src='02:00:5e:00:53:01', dst='02:00:5e:00:53:02')
pkts = [
  Ether(**E)/Dot1Q(vlan=100, prio=3)/IP(src='192.0.2.1', dst='192.0.2.2', id=7, ttl=33, tos=0xb8, flags='DF', options=[IPOption_RR(routers=['198.51.100.9']), IPOption_Router_Alert()])/TCP(sport=40000, dport=443, seq=123456, flags='S', window=64240, options=[('MSS', 1460), ('NOP', None), ('WScale', 7), ('SAckOK', b''), ('Timestamp', (11, 0))]),
  Ether(**E)/IP(src='192.0.2.1', dst='192.0.2.2')/TCP(sport=443, dport=40000, seq=5, ack=123457, flags='PA', options=[('NOP', None), ('NOP', None), ('SAck', (100, 200, 300, 400))])/(b'GET / HTTP/1.1\r\n' * 3),
  Ether(**E)/IP(src='198.51.100.200', dst='198.51.100.1')/GRE(key_present=1, key=0xdeadbeef, seqnum_present=1, sequence_number=77, chksum_present=1)/IP(src='192.0.2.10', dst='203.0.113.5')/TCP(sport=1234, dport=80, flags='S', options=[('MSS', 1436)]),
  Ether(**E)/IP(src='198.51.100.200', dst='198.51.100.1')/GRE(key_present=1, key=42)/IPv6(src='2001:db8::10', dst='2001:db8::20')/UDP(sport=53, dport=5353)/b'dns',
  Ether(**E)/IPv6(src='2001:db8::1', dst='2001:db8::2', tc=0x28, fl=0x12345, hlim=9)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/IPv6ExtHdrDestOpt()/IPv6ExtHdrSegmentRouting(addresses=['2001:db8:ffff::1', '2001:db8::2'], segleft=1)/IPv6ExtHdrFragment(id=0x01020304)/TCP(sport=1, dport=2, flags='SA', options=[('MSS', 1220)])/b'v6',
  Ether(**E)/IPv6(src='2001:db8::1', dst='2001:db8::2')/IPv6ExtHdrFragment(id=5, m=1)/UDP(sport=7, dport=9)/(b'z' * 40),
  Ether(**E)/IPv6(src='2001:db8::1', dst='2001:db8::2')/ICMPv6EchoRequest(id=0x1234, seq=7, data=b'ping6'),
  Ether(**E)/IPv6(src='2001:db8::1', dst='2001:db8::2')/ICMPv6PacketTooBig(mtu=1280)/IPv6(src='2001:db8::2', dst='2001:db8::3')/UDP(sport=1, dport=2),
  Ether(**E)/IP(src='192.0.2.1', dst='192.0.2.2')/ICMP(type=8, id=0xbeef, seq=3)/b'ping',
  Ether(**E)/IP(src='192.0.2.1', dst='192.0.2.2')/ICMP(type=3, code=4, nexthopmtu=1400)/IP(src='192.0.2.2', dst='192.0.2.9')/UDP(sport=1, dport=2),
  Ether(**E)/IP(src='192.0.2.1', dst='192.0.2.2', flags='MF', id=99)/UDP(sport=1000, dport=2000)/(b'f' * 24),
  Ether(**E)/IP(src='192.0.2.1', dst='192.0.2.2', frag=185, id=99, proto=17)/(b'g' * 16),
  Ether(**E)/IP(src='192.0.2.1', dst='192.0.2.2')/UDP(sport=1, dport=2)/b'',
  Ether(**E)/Dot1AD(vlan=10)/Dot1Q(vlan=20, id=1)/IPv6(src='2001:db8::1', dst='2001:db8::2')/UDP(sport=3, dport=4)/b'qinq',
  Ether(src='02:00:5e:00:53:01', dst='ff:ff:ff:ff:ff:ff')/ARP(op=2, hwsrc='02:00:5e:00:53:01', psrc='192.0.2.1', hwdst='02:00:5e:00:53:02', pdst='192.0.2.2'),
]
# Rebuild each from its bytes so every computed field (lengths, checksums) is filled in.
pkts = [Ether(raw(p)) for p in pkts]
wrpcap(sys.argv[1], pkts)

NAMES = {0: 'hop_by_hop', 60: 'dest_options', 43: 'routing', 44: 'fragment'}
def tcp_opts(opts):
    out = []
    for k, v in opts:
        if k == 'MSS': out.append({'kind': 'mss', 'value': v})
        elif k == 'NOP': out.append({'kind': 'nop'})
        elif k == 'EOL': out.append({'kind': 'eol'})
        elif k == 'WScale': out.append({'kind': 'window_scale', 'shift': v})
        elif k == 'SAckOK': out.append({'kind': 'sack_permitted'})
        elif k == 'Timestamp': out.append({'kind': 'timestamps', 'tsval': v[0], 'tsecr': v[1]})
        elif k == 'SAck': out.append({'kind': 'sack', 'blocks': [{'left': v[i], 'right': v[i + 1]} for i in range(0, len(v), 2)]})
        else: raise Exception('option ' + str(k))
    return out

def layers(p):
    out = []
    l = p
    prev_nh = None
    while l is not None and l.name != 'NoPayload':
        if isinstance(l, Ether): out.append({'kind': 'ethernet', 'src': l.src, 'dst': l.dst, 'etherType': l.type})
        elif isinstance(l, (Dot1Q, Dot1AD)): out.append({'kind': 'vlan', 'vid': l.vlan, 'pcp': l.prio, 'dei': bool(l.id), 'etherType': l.type})
        elif isinstance(l, ARP): out.append({'kind': 'arp', 'op': l.op, 'senderMac': l.hwsrc, 'senderIp': l.psrc, 'targetMac': l.hwdst, 'targetIp': l.pdst})
        elif isinstance(l, IP):
            out.append({'kind': 'ipv4', 'src': l.src, 'dst': l.dst, 'ttl': l.ttl, 'ident': l.id, 'protocol': l.proto, 'dscp': l.tos >> 2, 'ecn': l.tos & 3,
                        'df': bool(l.flags.DF), 'mf': bool(l.flags.MF), 'fragOffset': l.frag * 8, 'options': raw(l)[20:l.ihl * 4].hex(), 'payloadLen': l.len - l.ihl * 4})
            if l.frag: break  # scapy shows a later fragment's bytes as Raw; so do we (payload)
        elif isinstance(l, IPv6):
            out.append({'kind': 'ipv6', 'src': l.src, 'dst': l.dst, 'hopLimit': l.hlim, 'trafficClass': l.tc, 'flowLabel': l.fl, 'nextHeader': l.nh, 'payloadLen': l.plen})
            prev_nh = l.nh
        elif isinstance(l, (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrSegmentRouting, IPv6ExtHdrFragment)):
            e = {'kind': 'ipv6ext', 'type': NAMES[prev_nh], 'nextHeader': l.nh, 'headerLen': 8 if isinstance(l, IPv6ExtHdrFragment) else (l.len + 1) * 8}
            if isinstance(l, IPv6ExtHdrFragment): e.update({'fragOffset': l.offset * 8, 'moreFrags': bool(l.m), 'ident': l.id})
            if isinstance(l, IPv6ExtHdrSegmentRouting): e.update({'routingType': l.type, 'segmentsLeft': l.segleft})
            out.append(e)
            prev_nh = l.nh
        elif isinstance(l, TCP): out.append({'kind': 'tcp', 'srcPort': l.sport, 'dstPort': l.dport, 'seq': l.seq, 'ack': l.ack, 'flags': int(l.flags), 'window': l.window, 'urgent': l.urgptr, 'options': tcp_opts(l.options)})
        elif isinstance(l, UDP): out.append({'kind': 'udp', 'srcPort': l.sport, 'dstPort': l.dport, 'length': l.len})
        elif isinstance(l, ICMP):
            e = {'kind': 'icmp', 'type': l.type, 'code': l.code}
            if l.type in (0, 8): e.update({'ident': l.id, 'seq': l.seq})
            if l.type == 3: e['nextHopMtu'] = l.nexthopmtu
            out.append(e)
            break  # the quoted packet is ICMP data to us
        elif isinstance(l, (ICMPv6EchoRequest, ICMPv6EchoReply)):
            out.append({'kind': 'icmpv6', 'type': l.type, 'code': l.code, 'ident': l.id, 'seq': l.seq}); break
        elif isinstance(l, ICMPv6PacketTooBig):
            out.append({'kind': 'icmpv6', 'type': l.type, 'code': l.code, 'mtu': l.mtu}); break
        elif isinstance(l, GRE):
            out.append({'kind': 'gre', 'protocol': l.proto, 'checksum': bool(l.chksum_present), 'key': l.key if l.key_present else None, 'seq': l.sequence_number if l.seqnum_present else None})
        elif isinstance(l, Raw) or out[-1]['kind'] in ('tcp', 'udp'): break  # application data (scapy may dissect it as DNS…)
        else: raise Exception('layer ' + l.name)
        l = l.payload
    return out

print(json.dumps([{'len': len(raw(p)), 'hex': raw(p).hex(), 'layers': layers(p)} for p in pkts]))
`;

interface ScapyPacket {
  len: number;
  hex: string;
  layers: Record<string, unknown>[];
}

const IPV6EXT_NAMES = { hop_by_hop: 'hop_by_hop', dest_options: 'dest_options', routing: 'routing', fragment: 'fragment', auth: 'auth' } as const;

/** Our decoded layer in the shape the script prints. */
function shape(l: Layer): Record<string, unknown> {
  switch (l.kind) {
    case 'ethernet': return { kind: l.kind, src: l.repr.src, dst: l.repr.dst, etherType: l.repr.etherType };
    case 'vlan': return { kind: l.kind, vid: l.repr.vid, pcp: l.repr.pcp, dei: l.repr.dei, etherType: l.repr.etherType };
    case 'arp': return { kind: l.kind, ...l.repr };
    case 'ipv4': {
      const r = l.repr;
      return { kind: l.kind, src: r.src, dst: r.dst, ttl: r.ttl, ident: r.ident, protocol: r.protocol, dscp: r.dscp, ecn: r.ecn, df: r.dontFrag, mf: r.moreFrags, fragOffset: r.fragOffset, options: toHex(r.options), payloadLen: r.payloadLen };
    }
    case 'ipv6': {
      const r = l.repr;
      return { kind: l.kind, src: r.src, dst: r.dst, hopLimit: r.hopLimit, trafficClass: r.trafficClass, flowLabel: r.flowLabel, nextHeader: r.nextHeader, payloadLen: r.payloadLen };
    }
    case 'ipv6ext': {
      const r = l.repr;
      const e: Record<string, unknown> = { kind: l.kind, type: IPV6EXT_NAMES[r.kind], nextHeader: r.nextHeader, headerLen: l.headerLen };
      if (r.kind === 'fragment') Object.assign(e, { fragOffset: r.fragOffset, moreFrags: r.moreFrags, ident: r.ident });
      if (r.kind === 'routing') Object.assign(e, { routingType: r.routingType, segmentsLeft: r.segmentsLeft });
      return e;
    }
    case 'tcp': {
      const r = l.repr;
      return { kind: l.kind, srcPort: r.srcPort, dstPort: r.dstPort, seq: r.seq, ack: r.ack, flags: r.flags, window: r.window, urgent: r.urgent, options: r.options };
    }
    case 'udp': return { kind: l.kind, srcPort: l.repr.srcPort, dstPort: l.repr.dstPort, length: l.end - l.offset };
    case 'icmp': {
      const r = l.repr;
      switch (r.kind) {
        case 'echo_request':
        case 'echo_reply': return { kind: l.kind, type: r.kind === 'echo_request' ? 8 : 0, code: 0, ident: r.ident, seq: r.seq };
        case 'dest_unreachable': return { kind: l.kind, type: 3, code: r.code, nextHopMtu: r.nextHopMtu };
        case 'time_exceeded': return { kind: l.kind, type: 11, code: r.code };
        case 'other': return { kind: l.kind, type: r.type, code: r.code };
      }
      break;
    }
    case 'icmpv6': {
      const r = l.repr;
      switch (r.kind) {
        case 'echo_request':
        case 'echo_reply': return { kind: l.kind, type: r.kind === 'echo_request' ? 128 : 129, code: 0, ident: r.ident, seq: r.seq };
        case 'packet_too_big': return { kind: l.kind, type: 2, code: 0, mtu: r.mtu };
        case 'dest_unreachable': return { kind: l.kind, type: 1, code: r.code };
        case 'time_exceeded': return { kind: l.kind, type: 3, code: r.code };
        case 'other': return { kind: l.kind, type: r.type, code: r.code };
      }
      break;
    }
    case 'gre': return { kind: l.kind, protocol: l.repr.protocol, checksum: l.repr.checksum, key: l.repr.key, seq: l.repr.seq };
  }
  return {};
}

/** The builder spec that should reproduce a decoded frame byte for byte. */
function respec(f: Frame): LayerSpec[] {
  return f.layers.map((l): LayerSpec => {
    switch (l.kind) {
      case 'ethernet': return { kind: 'eth', src: l.repr.src, dst: l.repr.dst, etherType: l.repr.etherType };
      case 'vlan': return { kind: 'vlan', vid: l.repr.vid, pcp: l.repr.pcp, dei: l.repr.dei, tpid: l.tpid, etherType: l.repr.etherType };
      case 'arp': return { kind: 'arp', ...l.repr };
      case 'ipv4': {
        const r = l.repr;
        return { kind: 'ipv4', src: r.src, dst: r.dst, ttl: r.ttl, dscp: r.dscp, ecn: r.ecn, ident: r.ident, df: r.dontFrag, mf: r.moreFrags, fragOffset: r.fragOffset, reservedFlag: r.reservedFlag, options: r.options, protocol: r.protocol };
      }
      case 'ipv6': {
        const r = l.repr;
        return { kind: 'ipv6', src: r.src, dst: r.dst, hopLimit: r.hopLimit, trafficClass: r.trafficClass, flowLabel: r.flowLabel, nextHeader: r.nextHeader };
      }
      case 'ipv6ext': return { kind: 'ipv6ext', ext: l.repr };
      case 'tcp': {
        const r = l.repr;
        return { kind: 'tcp', srcPort: r.srcPort, dstPort: r.dstPort, seq: r.seq, ack: r.ack, flags: r.flags, window: r.window, urgent: r.urgent, options: r.options as TcpOption[] };
      }
      case 'udp': return { kind: 'udp', srcPort: l.repr.srcPort, dstPort: l.repr.dstPort, zeroChecksum: l.repr.zeroChecksum };
      case 'icmp': {
        const { data: _data, ...message } = l.repr;
        return { kind: 'icmp', message };
      }
      case 'icmpv6': {
        const { data: _data, ...message } = l.repr;
        return { kind: 'icmpv6', message };
      }
      case 'gre': return { kind: 'gre', protocol: l.repr.protocol, checksum: l.repr.checksum, ...(l.repr.key !== null ? { key: l.repr.key } : {}), ...(l.repr.seq !== null ? { seq: l.repr.seq } : {}) };
    }
  });
}

test('frames scapy built decode to scapy\'s values, verify, and re-emit byte for byte', (t) => {
  if (!needs(t, { python: ['scapy'] })) return;
  const dir = tempDir(t, 'wire-scapy');
  const file = join(dir, 'scapy.pcap');
  // cwd is the temp dir so nothing in the repository can shadow a Python module.
  const res = spawnSync('/usr/bin/python3', ['-c', SCRIPT, file], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  assert.equal(res.status, 0, `scapy script failed: ${res.stderr}`);
  const expected = JSON.parse(res.stdout) as ScapyPacket[];
  const pcap = readPcap(readFileSync(file));
  assert.ok(pcap.ok, JSON.stringify(pcap));
  assert.equal(pcap.value.linkType, 1);
  assert.equal(pcap.value.records.length, expected.length);
  expected.forEach((want, n) => {
    const data = pcap.value.records[n]!.data;
    assert.equal(toHex(data), want.hex, `frame ${n}: pcap bytes differ from what scapy printed`);
    const f = decodeFrame(data);
    const ctx = `frame ${n}: ${formatFrame(f)}`;
    assert.equal(f.error, null, ctx);
    assert.deepEqual(f.checksumErrors, [], ctx);
    for (const l of f.layers) if ('checksum' in l) assert.ok(l.checksum === 'good' || l.checksum === 'absent' || (l.checksum === 'unverified' && (n === 5 || n === 10)), `${l.kind} ${l.checksum}: ${ctx}`);
    assert.deepEqual(f.layers.slice(0, want.layers.length).map(shape), want.layers, ctx);
    // Emit side: rebuilding from our decode gives scapy's bytes exactly (lengths and checksums
    // included), except for fragments, whose L4 length/checksum cover bytes not in this frame.
    if (n !== 5 && n !== 10) {
      const rebuilt = buildFrame(respec(f), f.payload);
      assert.equal(toHex(rebuilt), want.hex, `frame ${n} rebuilt: ${formatFrame(decodeFrame(rebuilt))}`);
    }
  });
});
