/**
 * A customer router's end of its anycast GRE tunnel. The lab has no GRE kernel module to rely on,
 * so the customer router runs its own copy of our edge programs with its own maps, as
 * agent/reconcile.linux.test.ts does: a veth pair ctun0/ctun0p inside the router is the tunnel
 * device (ctun0: inner side, addresses and routes; ctun0p: the outer side), tc on ctun0's egress
 * encapsulates toward the anycast GRE endpoint and the packet comes out of ctun0p to be routed
 * out of wan0; XDP on wan0 decapsulates GRE from the endpoint and redirects it into ctun0p, so it
 * arrives on ctun0.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { EdgeMaps } from '../kernel/bpf/edge.ts';
import { loadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { addAddr, addVeth, attachTcEgressPinned, attachXdpPinned, linkInfo, setLink, setSysctl } from '../kernel/labnet.ts';
import type { ExecError } from '../kernel/exec.ts';
import type { LabError } from './errors.ts';
import { LAB_ANYCAST } from './config-doc.ts';
import type { LabSite } from './topology.ts';

/** The stats slot the customer side counts its tunnel in. */
const STATS_IDX = 1;

/** Builds the tunnel end of `site` in its router's namespace `ns`; returns its pins. */
export async function buildCustomerTunnel(site: LabSite, ns: string): Promise<Result<EdgePins, LabError>> {
  const path = `sites/${site.tenant}/tunnel`;
  const endpoint = LAB_ANYCAST.greEndpoints[0];
  const fail = (e: { message: string }, what: string): Result<never, LabError> => err({ code: 'failed', path, message: `${what}: ${e.message}`, cause: e });
  const step = async (what: string, r: Promise<Result<unknown, ExecError>>): Promise<ExecError | null> => {
    const x = await r;
    return x.ok ? null : { ...x.error, message: `${what}: ${x.error.message}` };
  };
  const pins = await loadEdge(site.bpf);
  if (!pins.ok) return fail(pins.error, 'load the edge programs');
  // GRE without a key costs 24 bytes of a 1500-byte path, with one 28.
  const mtu = 1476 - (site.key !== undefined ? 4 : 0);
  const e =
    (await step('tunnel veth', addVeth(ns, 'ctun0', ns, 'ctun0p'))) ??
    (await step('arp off ctun0', setLink(ns, 'ctun0', { arp: 'off', mtu }))) ??
    (await step('arp off ctun0p', setLink(ns, 'ctun0p', { arp: 'off' }))) ??
    (await step('ipv6 off ctun0', setSysctl(ns, 'net.ipv6.conf.ctun0.disable_ipv6', '1'))) ??
    (await step('ipv6 off ctun0p', setSysctl(ns, 'net.ipv6.conf.ctun0p.disable_ipv6', '1'))) ??
    // Encapsulated packets come out of ctun0p with the router's own public address as source;
    // without accept_local the kernel drops them as martians instead of routing them out.
    (await step('accept_local ctun0p', setSysctl(ns, 'net.ipv4.conf.ctun0p.accept_local', '1'))) ??
    (site.inner ? await step('inner address', addAddr(ns, 'ctun0', site.inner.theirs)) : null);
  if (e) return fail(e, 'tunnel device');
  const tun = await linkInfo(ns, 'ctun0');
  const outer = await linkInfo(ns, 'ctun0p');
  if (!tun.ok) return fail(tun.error, 'read ctun0');
  if (!outer.ok) return fail(outer.error, 'read ctun0p');
  const m = new EdgeMaps(pins.value);
  const key = site.key !== undefined ? { key: site.key } : {};
  const maps = [
    await m.putEndpoint(site.routerIp),
    await m.putDecap({ remote: endpoint, local: site.routerIp, ...key }, { ifindex: outer.value.ifindex, srcMac: outer.value.mac, dstMac: tun.value.mac, statsIdx: STATS_IDX }),
    await m.putEncap(tun.value.ifindex, { local: site.routerIp, remote: endpoint, ...key, outIfindex: 0, mtu, ttl: 64, srcMac: tun.value.mac, dstMac: outer.value.mac, statsIdx: STATS_IDX }),
  ];
  for (const r of maps) if (!r.ok) return fail(r.error, 'BPF maps');
  const a =
    (await step('XDP on wan0', attachXdpPinned(ns, 'wan0', pins.value.progs.xdpEdge))) ??
    // A veth only takes XDP-redirected frames when its peer runs XDP too.
    (await step('XDP on ctun0', attachXdpPinned(ns, 'ctun0', pins.value.progs.xdpPass))) ??
    (await step('tc on ctun0', attachTcEgressPinned(ns, 'ctun0', pins.value.progs.tcGreEncap)));
  if (a) return fail(a, 'attach');
  return ok(pins.value);
}
