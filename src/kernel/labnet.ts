/**
 * The lab's own calls into Linux (src/lab/ builds a whole emulated network, with objects the
 * agent never makes: bridges, plain addressed veths, on-link routes, XDP on customer routers).
 * Small typed functions over argv arrays, each returning the command's output or its ExecError;
 * the lab names the node and step when one fails.
 *
 * XDP and tc attach through `nsenter --net` and not `ip -n`: `ip -n`/`ip netns exec` remount
 * /sys for the namespace, which hides the BPF pins under /sys/fs/bpf.
 */
import type { Result } from '../lib/result.ts';
import { ok } from '../lib/result.ts';
import { run, type ExecError } from './exec.ts';

type Out = Promise<Result<string, ExecError>>;

async function ip(ns: string | null, args: readonly string[]): Out {
  const r = await run('ip', ns === null ? args : ['-n', ns, ...args]);
  return r.ok ? ok(r.value.stdout) : r;
}

/** Network namespaces of the machine whose names start with `prefix`. */
export async function listNetns(prefix: string): Promise<Result<string[], ExecError>> {
  const r = await run('ip', ['-j', 'netns', 'list']);
  if (!r.ok) return r;
  const list = r.value.stdout.trim() === '' ? [] : (JSON.parse(r.value.stdout) as Array<{ name: string }>);
  return ok(list.map((n) => n.name).filter((n) => n.startsWith(prefix)).sort());
}

/** `ip netns add`. */
export function addNetns(name: string): Out {
  return ip(null, ['netns', 'add', name]);
}

/** `ip netns delete` (takes its links, and their veth peers, with it). */
export function deleteNetns(name: string): Out {
  return ip(null, ['netns', 'delete', name]);
}

/** A bridge, up, with STP off (nothing loops in the lab; no forwarding delay). */
export async function addBridge(ns: string, dev: string): Out {
  const r = await ip(ns, ['link', 'add', 'name', dev, 'type', 'bridge', 'stp_state', '0']);
  return r.ok ? ip(ns, ['link', 'set', 'dev', dev, 'up']) : r;
}

/** A veth pair `a`@nsA — `b`@nsB, both up. */
export async function addVeth(nsA: string, a: string, nsB: string, b: string): Out {
  const r = await ip(nsA, ['link', 'add', 'name', a, 'type', 'veth', 'peer', 'name', b, 'netns', nsB]);
  if (!r.ok) return r;
  const up = await ip(nsA, ['link', 'set', 'dev', a, 'up']);
  return up.ok ? ip(nsB, ['link', 'set', 'dev', b, 'up']) : up;
}

/** Makes `dev` a port of bridge `master`. */
export function setMaster(ns: string, dev: string, master: string): Out {
  return ip(ns, ['link', 'set', 'dev', dev, 'master', master]);
}

/** `ip link set dev D arp off` and/or `mtu N`. */
export function setLink(ns: string, dev: string, opts: { arp?: 'on' | 'off'; mtu?: number }): Out {
  const args = ['link', 'set', 'dev', dev];
  if (opts.arp) args.push('arp', opts.arp);
  if (opts.mtu !== undefined) args.push('mtu', String(opts.mtu));
  return ip(ns, args);
}

/** `ip link set dev D up|down`. */
export function setLinkUp(ns: string, dev: string, up: boolean): Out {
  return ip(ns, ['link', 'set', 'dev', dev, up ? 'up' : 'down']);
}

/**
 * `ip neigh replace IP dev D nud failed`: the node stops using IP as a next hop at once (with
 * fib_multipath_use_neigh), as a router's health checker would take a dead server out.
 */
export function setNeighFailed(ns: string, dev: string, addr: string): Out {
  return ip(ns, ['neigh', 'replace', addr, 'dev', dev, 'nud', 'failed']);
}

/** `ip neigh flush to IP dev D`: forget IP's entry, so the next packet resolves it afresh (no error when there is none). */
export function flushNeigh(ns: string, dev: string, addr: string): Out {
  return ip(ns, ['neigh', 'flush', 'to', addr, 'dev', dev]);
}

/** Whether a device is administratively up (`ip link` flags). */
export async function linkIsUp(ns: string, dev: string): Promise<Result<boolean, ExecError>> {
  const r = await ip(ns, ['-j', 'link', 'show', 'dev', dev]);
  if (!r.ok) return r;
  const j = JSON.parse(r.value) as Array<{ flags?: string[] }>;
  return ok(j[0]?.flags?.includes('UP') ?? false);
}

/** `ip addr add CIDR dev D`. */
export function addAddr(ns: string, dev: string, cidr: string): Out {
  return ip(ns, ['addr', 'add', cidr, 'dev', dev]);
}

/** A static route: `dst` (`default` or a CIDR) via a gateway and/or out of a device. */
export function addRoute(ns: string, r: { dst: string; via?: string; dev?: string; onlink?: boolean }): Out {
  const args = ['route', 'add', r.dst];
  if (r.via) args.push('via', r.via);
  if (r.dev) args.push('dev', r.dev);
  if (r.onlink) args.push('onlink');
  return ip(ns, args);
}

/** Routes of a namespace's main table, as `ip -j route` prints them. */
export async function routes(ns: string): Promise<Result<Array<Record<string, unknown>>, ExecError>> {
  const r = await ip(ns, ['-j', 'route', 'show']);
  return r.ok ? ok(JSON.parse(r.value || '[]') as Array<Record<string, unknown>>) : r;
}

/** `sysctl -w KEY=VALUE` inside a namespace. */
export async function setSysctl(ns: string, key: string, value: string): Out {
  const r = await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`]);
  return r.ok ? ok(r.value.stdout) : r;
}

/** Several sysctls in one `sysctl -w` call (a lab has hundreds; one exec per namespace). */
export async function setSysctls(ns: string, values: ReadonlyArray<readonly [key: string, value: string]>): Out {
  const r = await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...values.map(([k, v]) => `${k}=${v}`)]);
  return r.ok ? ok(r.value.stdout) : r;
}

/** `ip link set dev lo up`. */
export function loUp(ns: string): Out {
  return ip(ns, ['link', 'set', 'dev', 'lo', 'up']);
}

/** Turns TX checksum offload off on a device (`ethtool -K D tx off`). */
export async function txChecksumOff(ns: string, dev: string): Out {
  const r = await run('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, 'tx', 'off']);
  return r.ok ? ok(r.value.stdout) : r;
}

/** The ifindex and MAC address of a device. */
export async function linkInfo(ns: string, dev: string): Promise<Result<{ ifindex: number; mac: string }, ExecError>> {
  const r = await ip(ns, ['-j', 'link', 'show', 'dev', dev]);
  if (!r.ok) return r;
  const j = JSON.parse(r.value) as Array<{ ifindex: number; address: string }>;
  return ok({ ifindex: j[0]!.ifindex, mac: j[0]!.address });
}

/** Attaches a pinned XDP program in native mode. */
export async function attachXdpPinned(ns: string, dev: string, prog: string): Out {
  const r = await run('nsenter', [`--net=/run/netns/${ns}`, 'ip', 'link', 'set', 'dev', dev, 'xdpdrv', 'pinned', prog]);
  return r.ok ? ok(r.value.stdout) : r;
}

/** Attaches a pinned tc program on a device's egress (clsact qdisc added first). */
export async function attachTcEgressPinned(ns: string, dev: string, prog: string): Out {
  const q = await run('nsenter', [`--net=/run/netns/${ns}`, 'tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
  if (!q.ok) return q;
  const r = await run('nsenter', [`--net=/run/netns/${ns}`, 'tc', 'filter', 'add', 'dev', dev, 'egress', 'bpf', 'direct-action', 'pinned', prog]);
  return r.ok ? ok(r.value.stdout) : r;
}
