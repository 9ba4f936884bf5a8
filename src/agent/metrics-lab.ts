/**
 * A server namespace provisioned by the real reconciler with the Acme tenant of the example
 * (examples/acme.yaml), and Acme's side of the Internet, for tests that need customer traffic
 * through the real data path:
 *
 *   eyeball(e) eth0 ── eye0 server(s) eth0 (XDP xdp_edge) ── wan0 acme router(c) lan0 ── eth0 acme host(h)
 *   192.0.2.10             │ <P>-acme: tenant namespace,          ctun0: its end of      203.0.113.100
 *                          │ made by the reconciler                the tunnel
 *
 * The customer router has no GRE module either: it terminates the tunnel with its own copy of
 * the edge programs and maps, as kernel/bpf/datapath.test.ts and agent/reconcile.linux.test.ts do.
 * Everything is named from the NetLab's prefix (namespaces, BPF pins) and the marks' prefix (what
 * the reconciler makes); `destroyAcmeLab` removes all of it and is safe after a half-built lab.
 */
import assert from 'node:assert/strict';
import type { NetLab } from '../testkit/netlab.ts';
import { acmeDoc, mustConfig } from './fixtures.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import { linuxKernel, type Kernel, type Marks } from '../kernel/index.ts';
import { linuxBpfMaps } from '../kernel/bpf/maps-api.ts';
import { linuxAttach } from '../kernel/attach.ts';
import { EdgeMaps } from '../kernel/bpf/edge.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { formatPlan, plan, apply, type ReconcileEnv } from './reconcile.ts';

/** The anycast GRE endpoint (examples/acme.yaml). */
export const ENDPOINT = '198.51.100.1';
/** Acme's router: its tunnel's customer endpoint. */
export const ACME_ROUTER = '198.51.100.200';
/** Acme's server behind its router, inside 203.0.113.0/25. */
export const ACME_HOST = '203.0.113.100';
/** An eyeball on the Internet side of the server. */
export const EYEBALL = '192.0.2.10';
/** ifindex of the customer router's tunnel device (its own encap map key). */
const ROUTER_TUNNEL_INDEX = 3001;

/** The provisioned lab. */
export interface AcmeLab {
  readonly kernel: Kernel;
  /** What the agent would hand its metrics and reconciler: kernel, the server's maps, attachments. */
  readonly env: ReconcileEnv;
  /** Acme (only) compiled for ams/s1 into the server namespace; already applied. */
  readonly desired: DesiredServer;
}

/** Runs a command in a lab namespace switching only the network namespace (pinned BPF objects stay visible). */
export function nsenter(lab: NetLab, ns: string, ...argv: string[]): Promise<string> {
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

/** The customer router's end of the tunnel: its own programs and maps, to the anycast endpoint. */
async function acmeRouter(lab: NetLab, pins: EdgePins): Promise<void> {
  const ns = 'c';
  await lab.veth(ns, 'ctun0', ns, 'ctun0p', { indexA: ROUTER_TUNNEL_INDEX });
  for (const dev of ['ctun0', 'ctun0p']) {
    await lab.ip(ns, 'link', 'set', dev, 'arp', 'off');
    await lab.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
  }
  // The example's tunnel has no key: MTU 1476 on our side; the router's side matches it.
  await lab.ip(ns, 'link', 'set', 'ctun0', 'mtu', '1476');
  await lab.ip(ns, 'addr', 'add', '192.0.2.253/31', 'dev', 'ctun0');
  // Replies to the eyeball go back into the tunnel.
  await lab.ip(ns, 'route', 'add', '192.0.2.8/30', 'dev', 'ctun0');
  const m = new EdgeMaps(pins);
  const tunMac = await lab.mac(ns, 'ctun0');
  const outerMac = await lab.mac(ns, 'ctun0p');
  const must = (r: { ok: boolean }) => assert.ok(r.ok, JSON.stringify(r));
  must(await m.putEndpoint(ACME_ROUTER));
  must(await m.putDecap({ remote: ENDPOINT, local: ACME_ROUTER }, { ifindex: await lab.ifindex(ns, 'ctun0p'), srcMac: outerMac, dstMac: tunMac, statsIdx: 1 }));
  must(await m.putEncap(ROUTER_TUNNEL_INDEX, { local: ACME_ROUTER, remote: ENDPOINT, outIfindex: 0, mtu: 1476, ttl: 64, srcMac: tunMac, dstMac: outerMac, statsIdx: 1 }));
  await nsenter(lab, ns, 'ip', 'link', 'set', 'dev', 'wan0', 'xdpdrv', 'pinned', pins.progs.xdpEdge);
  await nsenter(lab, ns, 'ip', 'link', 'set', 'dev', 'ctun0', 'xdpdrv', 'pinned', pins.progs.xdpPass);
  await nsenter(lab, ns, 'tc', 'qdisc', 'add', 'dev', 'ctun0', 'clsact');
  await nsenter(lab, ns, 'tc', 'filter', 'add', 'dev', 'ctun0', 'egress', 'bpf', 'direct-action', 'pinned', pins.progs.tcGreEncap);
}

/**
 * Builds the lab and provisions Acme into the server namespace with the real reconciler. `edges`
 * receives the loaded programs as they are loaded (server first, then the router), so the caller
 * can unload them even when building fails half-way.
 */
export async function buildAcmeLab(lab: NetLab, marks: Marks, edges: EdgePins[]): Promise<AcmeLab> {
  for (const n of ['e', 's', 'c', 'h']) await lab.addNs(n);
  await lab.veth('e', 'eth0', 's', 'eye0');
  await lab.veth('s', 'eth0', 'c', 'wan0');
  await lab.veth('c', 'lan0', 'h', 'eth0');
  await lab.ip('e', 'addr', 'add', `${EYEBALL}/30`, 'dev', 'eth0');
  await lab.ip('e', 'route', 'add', 'default', 'via', '192.0.2.9');
  await lab.ip('s', 'addr', 'add', '192.0.2.9/30', 'dev', 'eye0');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/30', 'dev', 'eth0');
  await lab.ip('s', 'route', 'add', `${ACME_ROUTER}/32`, 'via', '192.0.2.2');
  await lab.ip('c', 'addr', 'add', '192.0.2.2/30', 'dev', 'wan0');
  await lab.ip('c', 'addr', 'add', '203.0.113.1/25', 'dev', 'lan0');
  await lab.ip('c', 'route', 'add', `${ENDPOINT}/32`, 'via', '192.0.2.1');
  await lab.ip('h', 'addr', 'add', `${ACME_HOST}/25`, 'dev', 'eth0');
  await lab.ip('h', 'route', 'add', 'default', 'via', '203.0.113.1');
  for (const ns of ['s', 'c']) await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.send_redirects=0']);
  // End hosts compute TCP checksums in software: XDP at the far end of the tunnel sees raw bytes
  // and cannot finish a checksum a veth left to "hardware" (see kernel/bpf/datapath-fixture.ts).
  for (const ns of ['e', 'h']) await lab.exec(ns, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  for (const side of ['s', 'c']) {
    const pins = await loadEdge(`${lab.prefix}${side}`);
    if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
    edges.push(pins.value);
  }
  const [server, router] = edges as [EdgePins, EdgePins];
  await acmeRouter(lab, router);

  const doc = acmeDoc();
  const config = mustConfig({ ...doc, tenants: { acme: doc.tenants.acme } });
  const d = compileServer(config, { dc: 'ams', server: 's1' }, { marks, serverNs: lab.ns('s'), linkPool: '192.0.2.64/26' });
  if (!d.ok) throw new Error(`${d.error.path}: ${d.error.message}`);
  const kernel = linuxKernel(marks);
  const env: ReconcileEnv = { kernel, bpf: linuxBpfMaps(server), attach: linuxAttach(server) };
  const p = await plan(env, d.value);
  if (!p.ok) throw new Error(`plan: ${p.error.path}: ${p.error.message}`);
  const r = await apply(p.value);
  if (r.failed) throw new Error(`apply: ${r.failed.step.path}: ${r.failed.error.message}\nplan was:\n${formatPlan(p.value)}`);
  return { kernel, env, desired: d.value };
}

/** Removes what `buildAcmeLab` made: the reconciler's namespaces, the lab, the pinned programs. */
export async function destroyAcmeLab(lab: NetLab, marks: Marks, edges: readonly EdgePins[]): Promise<void> {
  await linuxKernel(marks).netns.prune([]);
  await lab.destroy();
  for (const p of edges) await unloadEdge(p);
}
