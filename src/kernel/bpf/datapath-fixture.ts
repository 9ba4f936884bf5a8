/**
 * The GRE data path built by hand in namespaces, as a server and a customer router run it:
 *
 *   eyeball(e) ── server(s) ──t0/u0── tenant(t)        (Internet side of the tenant)
 *                   │ │ gre0s ◄──veth──► gre0          (tunnel device: tc encap out, XDP-redirected in)
 *                   │ up0 (XDP decap)
 *                   └── wan0 customer router(c) ctun0 ── lan0 ── host(h) 203.0.113.100
 *
 * Shared by datapath.test.ts and bench/datapath.bench.ts. The customer router has no GRE module
 * either, so it terminates the tunnel with the same two programs and its own maps.
 */
import assert from 'node:assert/strict';
import type { NetLab } from '../../testkit/netlab.ts';
import { EdgeMaps } from './edge.ts';
import { loadEdge, type EdgePins } from './loader.ts';

export const ENDPOINT = '198.51.100.1';
export const CUSTOMER_ROUTER = '198.51.100.200';
export const HOST = '203.0.113.100';
export const EYEBALL = '192.0.2.10';
export const KEY = 42;
// GRE with a key over a 1500-byte path: 1500 - 20 - 8 (the model's default for keyed tunnels).
export const MTU = 1472;
export const INNER_OURS = '192.0.2.252';
export const INNER_PEER = '192.0.2.253';
export const GRE_KEY_HEX = `0x${KEY.toString(16).padStart(8, '0')}`; // how tshark prints gre.key

// `ip -n`/`ip netns exec` mount a fresh /sys, hiding the bpffs pins under /sys/fs/bpf; nsenter
// switches only the network namespace, so pinned programs stay reachable.
function nsenter(lab: NetLab, ns: string, ...argv: string[]): Promise<string> {
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

async function attachTc(lab: NetLab, ns: string, dev: string, prog: string): Promise<void> {
  await nsenter(lab, ns, 'tc', 'qdisc', 'add', 'dev', dev, 'clsact');
  await nsenter(lab, ns, 'tc', 'filter', 'add', 'dev', dev, 'egress', 'bpf', 'direct-action', 'pinned', prog);
}

async function attachXdp(lab: NetLab, ns: string, dev: string, prog: string): Promise<void> {
  await nsenter(lab, ns, 'ip', 'link', 'set', 'dev', dev, 'xdpdrv', 'pinned', prog);
}

export async function buildGreLab(lab: NetLab, edges: EdgePins[]): Promise<void> {
  for (const n of ['e', 's', 't', 'c', 'h']) await lab.addNs(n);
  await lab.veth('e', 'eth0', 's', 'eye0');
  await lab.veth('s', 'up0', 'c', 'wan0');
  await lab.veth('s', 't0', 't', 'u0');
  await lab.veth('c', 'lan0', 'h', 'eth0');
  // Tunnel devices: veth pairs, the tunnel end where the routes point and the other end where
  // outer packets come out (the server namespace for the tenant; the router itself for the
  // customer side). The tunnel end's MTU is the tunnel MTU, so the kernel itself answers
  // oversized DF packets with "fragmentation needed". NOARP: nothing answers ARP there.
  await lab.veth('t', 'gre0', 's', 'gre0s', { indexA: 3000 });
  await lab.veth('c', 'ctun0', 'c', 'ctun0p', { indexA: 3001 });
  for (const [ns, dev] of [['t', 'gre0'], ['s', 'gre0s'], ['c', 'ctun0'], ['c', 'ctun0p']] as const) {
    await lab.ip(ns, 'link', 'set', dev, 'arp', 'off');
    // The tunnels carry IPv4 only: without this the kernel would send its own IPv6 link-local
    // chatter (MLD, neighbour discovery) through them.
    await lab.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
  }
  await lab.ip('t', 'link', 'set', 'gre0', 'mtu', String(MTU));
  await lab.ip('c', 'link', 'set', 'ctun0', 'mtu', String(MTU));

  await lab.ip('e', 'addr', 'add', '192.0.2.10/30', 'dev', 'eth0');
  await lab.ip('e', 'route', 'add', 'default', 'via', '192.0.2.9');
  await lab.ip('s', 'addr', 'add', '192.0.2.9/30', 'dev', 'eye0');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/30', 'dev', 'up0');
  await lab.ip('s', 'addr', 'add', '192.0.2.13/30', 'dev', 't0');
  await lab.ip('s', 'route', 'add', `${CUSTOMER_ROUTER}/32`, 'via', '192.0.2.2');
  await lab.ip('s', 'route', 'add', '203.0.113.0/25', 'via', '192.0.2.14');
  await lab.ip('t', 'addr', 'add', '192.0.2.14/30', 'dev', 'u0');
  await lab.ip('t', 'route', 'add', 'default', 'via', '192.0.2.13');
  await lab.ip('t', 'route', 'add', '203.0.113.0/25', 'dev', 'gre0');
  await lab.ip('c', 'addr', 'add', '192.0.2.2/30', 'dev', 'wan0');
  await lab.ip('c', 'addr', 'add', '203.0.113.1/25', 'dev', 'lan0');
  await lab.ip('c', 'route', 'add', `${ENDPOINT}/32`, 'via', '192.0.2.1');
  await lab.ip('c', 'route', 'add', '192.0.2.8/30', 'dev', 'ctun0');
  await lab.ip('h', 'addr', 'add', `${HOST}/25`, 'dev', 'eth0');
  await lab.ip('h', 'route', 'add', 'default', 'via', '203.0.113.1');
  // Inner tunnel addresses, a /31 as customers configure them: what health probes ping.
  await lab.ip('t', 'addr', 'add', `${INNER_OURS}/31`, 'dev', 'gre0');
  await lab.ip('c', 'addr', 'add', `${INNER_PEER}/31`, 'dev', 'ctun0');
  for (const ns of ['s', 't', 'c']) await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.send_redirects=0']);
  // A veth hands locally generated TCP/UDP on with the checksum left to "hardware" (CHECKSUM_PARTIAL).
  // XDP at the far end of the tunnel sees raw bytes and cannot finish it, so the end hosts compute
  // checksums in software, as a real NIC would have done before the packet crossed the Internet.
  for (const [ns, dev] of [['e', 'eth0'], ['h', 'eth0']] as const) await lab.exec(ns, 'ethtool', ['-K', dev, 'tx', 'off']);

  // Each side loads its own copy: a server and a customer router share nothing.
  for (const side of ['s', 'c']) {
    const pins = await loadEdge(`${lab.prefix}${side}`);
    if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
    edges.push(pins.value);
  }
  const [srv, cr] = [edges[0]!, edges[1]!];
  const sMaps = new EdgeMaps(srv);
  const cMaps = new EdgeMaps(cr);
  const must = (r: { ok: boolean }) => assert.ok(r.ok, JSON.stringify(r));

  // Each side: decapsulate on the uplink into the tunnel pair's outer end, so the inner packet
  // enters through the tunnel device; encapsulate on the tunnel device and let the outer packet
  // leave by its pair, to be routed like any other.
  const sides = [
    { maps: sMaps, ns: 's', local: ENDPOINT, remote: CUSTOMER_ROUTER, tunNs: 't', tun: 'gre0', outerNs: 's', outer: 'gre0s', index: 3000 },
    { maps: cMaps, ns: 'c', local: CUSTOMER_ROUTER, remote: ENDPOINT, tunNs: 'c', tun: 'ctun0', outerNs: 'c', outer: 'ctun0p', index: 3001 },
  ] as const;
  for (const x of sides) {
    const tunMac = await lab.mac(x.tunNs, x.tun);
    const outerMac = await lab.mac(x.outerNs, x.outer);
    must(await x.maps.putEndpoint(x.local));
    must(
      await x.maps.putDecap(
        { remote: x.remote, local: x.local, key: KEY },
        { ifindex: await lab.ifindex(x.outerNs, x.outer), srcMac: outerMac, dstMac: tunMac, statsIdx: 1 },
      ),
    );
    must(await x.maps.putEncap(x.index, { local: x.local, remote: x.remote, key: KEY, outIfindex: 0, mtu: MTU, ttl: 64, srcMac: tunMac, dstMac: outerMac, statsIdx: 1 }));
  }

  await attachXdp(lab, 's', 'up0', srv.progs.xdpEdge);
  await attachXdp(lab, 'c', 'wan0', cr.progs.xdpEdge);
  // A veth only accepts XDP-redirected frames when its peer runs an XDP program.
  await attachXdp(lab, 't', 'gre0', srv.progs.xdpPass);
  await attachXdp(lab, 'c', 'ctun0', cr.progs.xdpPass);
  await attachTc(lab, 't', 'gre0', srv.progs.tcGreEncap);
  await attachTc(lab, 'c', 'ctun0', cr.progs.tcGreEncap);
}
