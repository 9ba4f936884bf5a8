/**
 * Attaching the edge programs to links, and the one link flag the tunnel devices need (NOARP):
 * what LinksApi does not cover. Linux and fake implementations of one interface.
 *
 * Linux quirk: `ip -n NS` and `ip netns exec` remount /sys inside the namespace and so hide the
 * bpffs pins under /sys/fs/bpf; attaching a pinned program therefore runs through `nsenter
 * --net=/run/netns/NS`, which switches only the network namespace. Reading state needs no pins.
 *
 * Ownership: a program is ours when its id is one of the pinned programs' ids. A link that runs
 * someone else's program is never changed (`invalid`), so an operator's XDP program on the uplink
 * is reported, not replaced.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { fromExec, kernelError, nsLabel, type KernelError } from './errors.ts';
import { run } from './exec.ts';
import { ipJson } from './iproute.ts';
import type { NsRef } from './netns.ts';
import type { Kernel } from './index.ts';
import { checkLinkName, firstInvalid } from './validate.ts';
import type { EdgePins } from './bpf/loader.ts';
import { parseTxChecksum } from './txcsum.ts';

/** The edge programs by role (EdgePins.progs). */
export type EdgeProgName = 'xdpEdge' | 'xdpPass' | 'tcGreEncap';
/** Where a program hangs: native XDP, or TC egress (clsact, direct action). */
export type Hook = 'xdp' | 'tc-egress';

/** Attach operations. */
export interface AttachApi {
  /** The kernel ids of our loaded programs. */
  progIds(): Promise<Result<Record<EdgeProgName, number>, KernelError>>;
  /** Id of the program attached at `hook` of `dev`, or null. `not_found` if the link is missing. */
  attached(ns: NsRef, dev: string, hook: Hook): Promise<Result<number | null, KernelError>>;
  /** Attaches (or replaces ours with) `prog`. */
  attach(ns: NsRef, dev: string, hook: Hook, prog: EdgeProgName): Promise<Result<void, KernelError>>;
  /** Removes the program at `hook`; nothing attached is success. */
  detach(ns: NsRef, dev: string, hook: Hook): Promise<Result<void, KernelError>>;
  /** Whether the link has ARP off. */
  noarp(ns: NsRef, dev: string): Promise<Result<boolean, KernelError>>;
  /** Turns ARP off (true) or on. */
  setNoarp(ns: NsRef, dev: string, on: boolean): Promise<Result<void, KernelError>>;
  /** Whether TX checksum offload is on (see txcsum.ts for why tunnel devices turn it off). */
  txChecksum(ns: NsRef, dev: string): Promise<Result<boolean, KernelError>>;
  /** Turns TX checksum offload on or off (`ethtool -K DEV tx on|off`). */
  setTxChecksum(ns: NsRef, dev: string, on: boolean): Promise<Result<void, KernelError>>;
}

const path = (ns: NsRef, dev: string) => `${nsLabel(ns)}/link/${dev}`;

function check(op: string, ns: NsRef, dev: string): KernelError | null {
  return firstInvalid(op, ns, path(ns, dev), checkLinkName(dev));
}

/** argv running `cmd` in `ns` without hiding bpffs. */
function netnsArgv(ns: NsRef, cmd: string, args: readonly string[]): [string, string[]] {
  return ns === null ? [cmd, [...args]] : ['nsenter', [`--net=/run/netns/${ns}`, cmd, ...args]];
}

interface IpLinkX {
  ifname: string;
  flags?: string[];
  xdp?: { prog?: { id: number } };
}

interface TcFilter {
  kind?: string;
  options?: { prog?: { id: number } };
}

/** The Linux implementation for one loaded edge. */
export function linuxAttach(pins: Pick<EdgePins, 'progs'>): AttachApi {
  const link = async (op: string, ns: NsRef, dev: string): Promise<Result<IpLinkX, KernelError>> => {
    const res = await ipJson<IpLinkX>(ns, ['-d', 'link', 'show'], op);
    if (!res.ok) return res;
    const l = res.value.find((x) => x.ifname === dev);
    return l ? ok(l) : err(kernelError('not_found', op, ns, `no link ${dev}`, { path: path(ns, dev) }));
  };
  const exec = async (op: string, ns: NsRef, dev: string, cmd: string, args: string[]): Promise<Result<void, KernelError>> => {
    const [c, a] = netnsArgv(ns, cmd, args);
    const r = await run(c, a);
    return r.ok ? ok(undefined) : err(fromExec(op, ns, r.error, { path: path(ns, dev) }));
  };
  const api: AttachApi = {
    async progIds() {
      const out: Partial<Record<EdgeProgName, number>> = {};
      for (const [name, pin] of Object.entries(pins.progs) as [EdgeProgName, string][]) {
        const r = await run('bpftool', ['-j', 'prog', 'show', 'pinned', pin]);
        if (!r.ok) return err(fromExec(`prog show ${pin}`, null, r.error, { path: `bpf/${name}`, remedy: 'load the edge programs first (loadEdge)' }));
        out[name] = (JSON.parse(r.value.stdout) as { id: number }).id;
      }
      return ok(out as Record<EdgeProgName, number>);
    },
    async attached(ns, dev, hook) {
      const op = `${hook} show ${dev}`;
      const bad = check(op, ns, dev);
      if (bad) return err(bad);
      const l = await link(op, ns, dev);
      if (!l.ok) return l;
      if (hook === 'xdp') return ok(l.value.xdp?.prog?.id ?? null);
      const [c, a] = netnsArgv(ns, 'tc', ['-j', 'filter', 'show', 'dev', dev, 'egress']);
      const r = await run(c, a);
      if (!r.ok) return err(fromExec(op, ns, r.error, { path: path(ns, dev) }));
      const filters = (r.value.stdout.trim() ? JSON.parse(r.value.stdout) : []) as TcFilter[];
      return ok(filters.find((f) => f.kind === 'bpf' && f.options?.prog?.id !== undefined)?.options?.prog?.id ?? null);
    },
    async attach(ns, dev, hook, prog) {
      const op = `${hook} attach ${prog} ${dev}`;
      const bad = check(op, ns, dev);
      if (bad) return err(bad);
      const pin = pins.progs[prog];
      if (hook === 'xdp') return exec(op, ns, dev, 'ip', ['link', 'set', 'dev', dev, 'xdpdrv', 'pinned', pin]);
      const [c, a] = netnsArgv(ns, 'tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
      const q = await run(c, a);
      if (!q.ok && !/File exists|Exclusivity flag on/.test(q.error.stderr)) return err(fromExec(op, ns, q.error, { path: path(ns, dev) }));
      // A fixed preference and handle: `replace` then swaps our program in place.
      return exec(op, ns, dev, 'tc', ['filter', 'replace', 'dev', dev, 'egress', 'pref', '1', 'handle', '1', 'bpf', 'direct-action', 'pinned', pin]);
    },
    async detach(ns, dev, hook) {
      const op = `${hook} detach ${dev}`;
      const bad = check(op, ns, dev);
      if (bad) return err(bad);
      if (hook === 'xdp') return exec(op, ns, dev, 'ip', ['link', 'set', 'dev', dev, 'xdpdrv', 'off']);
      const [c, a] = netnsArgv(ns, 'tc', ['filter', 'delete', 'dev', dev, 'egress', 'pref', '1', 'handle', '1', 'bpf']);
      const r = await run(c, a);
      if (!r.ok && !/No such file|Cannot find|not found/i.test(r.error.stderr)) return err(fromExec(op, ns, r.error, { path: path(ns, dev) }));
      return ok(undefined);
    },
    async noarp(ns, dev) {
      const l = await link(`link show ${dev}`, ns, dev);
      return l.ok ? ok((l.value.flags ?? []).includes('NOARP')) : l;
    },
    async setNoarp(ns, dev, on) {
      const op = `link set ${dev} arp ${on ? 'off' : 'on'}`;
      const bad = check(op, ns, dev);
      if (bad) return err(bad);
      return exec(op, ns, dev, 'ip', ['link', 'set', 'dev', dev, 'arp', on ? 'off' : 'on']);
    },
    async txChecksum(ns, dev) {
      const op = `ethtool -k ${dev}`;
      const bad = check(op, ns, dev);
      if (bad) return err(bad);
      const [c, a] = netnsArgv(ns, 'ethtool', ['-k', dev]);
      const r = await run(c, a);
      if (!r.ok) return err(fromExec(op, ns, r.error, { path: path(ns, dev) }));
      const on = parseTxChecksum(r.value.stdout);
      if (on === null) return err(kernelError('failed', op, ns, `ethtool -k ${dev} printed no tx-checksumming line`, { path: path(ns, dev), remedy: 'check the installed ethtool' }));
      return ok(on);
    },
    async setTxChecksum(ns, dev, on) {
      const op = `ethtool -K ${dev} tx ${on ? 'on' : 'off'}`;
      const bad = check(op, ns, dev);
      if (bad) return err(bad);
      return exec(op, ns, dev, 'ethtool', ['-K', dev, 'tx', on ? 'on' : 'off']);
    },
  };
  return api;
}

/** Fake program ids. */
export const FAKE_PROG_IDS: Record<EdgeProgName, number> = { xdpEdge: 101, xdpPass: 102, tcGreEncap: 103 };

/** The fake, over a fake kernel's links (state of a link goes when the link is gone), with a dump. */
export function fakeAttach(kernel: Pick<Kernel, 'links'>): AttachApi & { dump(): string; sweep(): Promise<void>; foreign(ns: NsRef, dev: string, hook: Hook, id: number): void } {
  const progs = new Map<string, { ns: NsRef; dev: string; hook: Hook; id: number; ifindex: number }>();
  const noarps = new Map<string, { ns: NsRef; dev: string; ifindex: number }>();
  // Links with TX checksum offload off (a new veth has it on, as on Linux); not in dump().
  const txOffs = new Map<string, { ns: NsRef; dev: string; ifindex: number }>();
  const key = (ns: NsRef, dev: string, what: string) => `${nsLabel(ns)}|${dev}|${what}`;
  /** The link's ifindex, forgetting state of links that went away. */
  const live = async (op: string, ns: NsRef, dev: string): Promise<Result<number, KernelError>> => {
    const l = await kernel.links.get(ns, dev);
    if (!l.ok && l.error.code !== 'not_found') return l;
    if (!l.ok || l.value === null) {
      for (const m of [progs, noarps, txOffs]) for (const [k, v] of m) if (v.ns === ns && v.dev === dev) m.delete(k);
      return err(kernelError('not_found', op, ns, `no link ${dev}`, { path: path(ns, dev) }));
    }
    const index = l.value.ifindex;
    // A link made again under the same name starts bare (-1: placed by `foreign`, kept).
    for (const m of [progs, noarps, txOffs]) for (const [k, v] of m) if (v.ns === ns && v.dev === dev && v.ifindex !== -1 && v.ifindex !== index) m.delete(k);
    return ok(index);
  };
  return {
    progIds: async () => ok({ ...FAKE_PROG_IDS }),
    async attached(ns, dev, hook) {
      const i = await live(`${hook} show ${dev}`, ns, dev);
      if (!i.ok) return i;
      return ok(progs.get(key(ns, dev, hook))?.id ?? null);
    },
    async attach(ns, dev, hook, prog) {
      const i = await live(`${hook} attach ${dev}`, ns, dev);
      if (!i.ok) return i;
      progs.set(key(ns, dev, hook), { ns, dev, hook, id: FAKE_PROG_IDS[prog], ifindex: i.value });
      return ok(undefined);
    },
    async detach(ns, dev, hook) {
      const i = await live(`${hook} detach ${dev}`, ns, dev);
      if (!i.ok) return i;
      progs.delete(key(ns, dev, hook));
      return ok(undefined);
    },
    async noarp(ns, dev) {
      const i = await live(`link show ${dev}`, ns, dev);
      if (!i.ok) return i;
      return ok(noarps.has(key(ns, dev, 'noarp')));
    },
    async setNoarp(ns, dev, on) {
      const i = await live(`link set ${dev} arp`, ns, dev);
      if (!i.ok) return i;
      if (on) noarps.set(key(ns, dev, 'noarp'), { ns, dev, ifindex: i.value });
      else noarps.delete(key(ns, dev, 'noarp'));
      return ok(undefined);
    },
    async txChecksum(ns, dev) {
      const i = await live(`ethtool -k ${dev}`, ns, dev);
      if (!i.ok) return i;
      return ok(!txOffs.has(key(ns, dev, 'txoff')));
    },
    async setTxChecksum(ns, dev, on) {
      const i = await live(`ethtool -K ${dev} tx`, ns, dev);
      if (!i.ok) return i;
      if (on) txOffs.delete(key(ns, dev, 'txoff'));
      else txOffs.set(key(ns, dev, 'txoff'), { ns, dev, ifindex: i.value });
      return ok(undefined);
    },
    /** Forgets the state of links that are gone (as the kernel frees it with the link); call before dump. */
    async sweep() {
      for (const m of [progs, noarps, txOffs]) for (const v of [...m.values()]) if (v.ifindex !== -1) await live('sweep', v.ns, v.dev);
    },
    foreign(ns, dev, hook, id) {
      progs.set(key(ns, dev, hook), { ns, dev, hook, id, ifindex: -1 });
    },
    dump() {
      const names = Object.fromEntries(Object.entries(FAKE_PROG_IDS).map(([n, i]) => [i, n]));
      const lines = [
        ...[...progs.values()].map((p) => `${p.hook} ${nsLabel(p.ns)} ${p.dev} ${names[p.id] ?? `prog ${p.id}`}`),
        ...[...noarps.values()].map((p) => `noarp ${nsLabel(p.ns)} ${p.dev}`),
      ].sort();
      return lines.join('\n') + (lines.length ? '\n' : '');
    },
  };
}
