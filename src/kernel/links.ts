/**
 * Network links: list what a namespace has, create veth pairs between namespaces, set them up or
 * down, set MTU and alias, delete. Only veth is created here: the production kernel has no
 * dummy/GRE/IPIP link types to rely on (GRE is done in eBPF), and veth is all the tenant plumbing
 * needs.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, nsLabel, type KernelError } from './errors.ts';
import { ip, ipJson, voidOf } from './iproute.ts';
import { LINK_GROUP, linkOwner, ownerAlias, type Marks } from './marks.ts';
import { checkNetnsName, type NsRef } from './netns.ts';
import { checkAlias, checkIfindex, checkLinkName, checkMac, checkMtu, checkOwner, firstInvalid } from './validate.ts';

/** The other end of a veth pair. */
export interface VethPeer {
  /** Its namespace; null when it has no name under /run/netns (normally the host's). */
  readonly ns: NsRef;
  readonly ifindex: number;
}

/** A link as the kernel reports it. */
export interface Link {
  readonly name: string;
  readonly ifindex: number;
  /** `veth`, `loopback`, `bridge` … (the rtnetlink kind); `device` for hardware without one. */
  readonly kind: string;
  readonly mtu: number;
  /** Lower-case MAC. */
  readonly mac: string;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  /** Carrier (IFF_LOWER_UP): for veth, both ends are up. */
  readonly carrier: boolean;
  readonly alias: string | null;
  /** For veth: the other end. */
  readonly peer: VethPeer | null;
  /** Carries our mark (see marks.ts). */
  readonly owned: boolean;
  /** For our links, the `<owner>` of alias `anyedge:<owner>`; '' if the alias is missing. */
  readonly owner: string | null;
}

/** One end of a veth pair to create. */
export interface VethEnd {
  readonly ns: NsRef;
  /** Must start with the mark prefix; at most 15 characters. */
  readonly name: string;
  /**
   * Explicit interface index. The BPF maps key tenants by ifindex and treat it as unique across
   * the server, so the agent allocates them itself instead of taking the kernel's per-namespace
   * counter.
   */
  readonly ifindex?: number;
  readonly mac?: string;
  readonly mtu?: number;
}

/** A veth pair to create, for `owner` (a tenant id, or `agent`). */
export interface VethSpec {
  readonly a: VethEnd;
  readonly b: VethEnd;
  readonly owner: string;
}

/** Link operations. */
export interface LinksApi {
  /** Every link of a namespace, ours or not, sorted by ifindex. */
  list(ns: NsRef): Promise<Result<Link[], KernelError>>;
  /** One link by name, or null. */
  get(ns: NsRef, name: string): Promise<Result<Link | null, KernelError>>;
  /**
   * Creates a veth pair with ends `a` and `b` (each in its namespace), marked as ours, both down,
   * without IPv6 link-local autoconfiguration (see linuxLinks). `exists` if a name or index is
   * taken; `not_found` if a namespace is missing.
   */
  addVeth(spec: VethSpec): Promise<Result<void, KernelError>>;
  /** Sets a link administratively up or down (any link, e.g. `lo`). */
  setUp(ns: NsRef, name: string, up: boolean): Promise<Result<void, KernelError>>;
  /** Sets the MTU of a link. */
  setMtu(ns: NsRef, name: string, mtu: number): Promise<Result<void, KernelError>>;
  /**
   * Sets or clears (null) the alias. On our links the `anyedge:<owner>` alias is the owner
   * mark; they stay ours without it (the group mark), but lose the owner.
   */
  setAlias(ns: NsRef, name: string, alias: string | null): Promise<Result<void, KernelError>>;
  /**
   * Moves one of our links to another namespace (null: the host's). The kernel keeps its ifindex
   * when that index is free there, and drops its addresses and routes: the link arrives down and
   * bare. `exists` if the target has a link of that name; `not_found` if the link or a namespace
   * is missing.
   */
  move(ns: NsRef, name: string, to: NsRef): Promise<Result<void, KernelError>>;
  /** Deletes one of our links (and its veth peer); one already gone is success. */
  delete(ns: NsRef, name: string): Promise<Result<void, KernelError>>;
  /**
   * Deletes our links of a namespace not named in `keep`; returns the names deleted. A veth
   * whose peer in the same namespace is kept is kept too, since deleting one end deletes both.
   */
  prune(ns: NsRef, keep: readonly string[]): Promise<Result<string[], KernelError>>;
}

/** Checks a veth spec; shared by the Linux driver and the fake so both refuse the same things. */
export function checkVeth(m: Marks, spec: VethSpec, op: string): KernelError | null {
  const { a, b } = spec;
  const path = `${nsLabel(a.ns)}/link/${a.name}`;
  const endChecks = (e: VethEnd) => [
    e.ns === null ? null : checkNetnsName(e.ns),
    checkLinkName(e.name),
    e.name.startsWith(m.prefix) ? null : `link name ${e.name} does not start with our prefix ${JSON.stringify(m.prefix)}, so it could not be told apart from links made by others`,
    e.ifindex === undefined ? null : checkIfindex(e.ifindex),
    e.mac === undefined ? null : checkMac(e.mac),
    e.mtu === undefined ? null : checkMtu(e.mtu),
    e.mtu !== undefined && e.mtu > 65535 ? `mtu ${e.mtu} is above the veth maximum 65535` : null,
  ];
  return firstInvalid(
    op,
    a.ns,
    path,
    ...endChecks(a),
    ...endChecks(b),
    checkOwner(spec.owner),
    a.ns === b.ns && a.name === b.name ? `both ends are named ${a.name} in the same namespace` : null,
  );
}

/** The `ip link add` / `link delete` wording of an op, for messages. */
export function vethOp(spec: VethSpec): string {
  return `link add ${spec.a.name} type veth peer ${spec.b.name}`;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu: number;
  address?: string;
  ifalias?: string;
  group?: string;
  link?: string;
  link_index?: number;
  link_netnsid?: number;
  link_type?: string;
  linkinfo?: { info_kind?: string };
}

/** The Linux driver: `ip -d -j link show`, `ip link add … type veth`, `ip link set`. */
export function linuxLinks(m: Marks): LinksApi {
  const api: LinksApi = {
    async list(ns) {
      const op = 'link show';
      if (ns !== null) {
        const bad = firstInvalid(op, ns, undefined, checkNetnsName(ns));
        if (bad) return err(bad);
      }
      const res = await ipJson<IpLink>(ns, ['-d', 'link', 'show'], op);
      if (!res.ok) return res;
      const raw = res.value;
      // Peers in other namespaces are reported by netns id; resolve ids to names only if needed.
      let nsNames = new Map<number, string>();
      if (raw.some((l) => l.link_netnsid !== undefined)) {
        // `ip netns list` run inside `ns` gives each named namespace's id as `ns` sees it. Not
        // `netns list-id`: iproute2 6.1 returns only the first ~130 ids of that dump, so a server
        // with a few hundred tenants would lose its veth peers' names.
        const ids = await ipJson<{ name: string; id?: number }>(ns, ['netns', 'list'], 'netns list');
        if (!ids.ok) return ids;
        nsNames = new Map(ids.value.filter((i) => i.id !== undefined).map((i) => [i.id as number, i.name]));
      }
      const byName = new Map(raw.map((l) => [l.ifname, l]));
      const links = raw.map((l): Link => {
        const flags = l.flags ?? [];
        const alias = l.ifalias ?? null;
        const group = l.group === undefined || l.group === 'default' ? 0 : /^\d+$/.test(l.group) ? Number(l.group) : -1;
        const kind = l.linkinfo?.info_kind ?? (l.link_type === 'loopback' ? 'loopback' : 'device');
        let peer: VethPeer | null = null;
        if (kind === 'veth') {
          if (l.link !== undefined) peer = { ns, ifindex: byName.get(l.link)?.ifindex ?? 0 };
          else if (l.link_index !== undefined)
            peer = { ns: l.link_netnsid === undefined ? ns : (nsNames.get(l.link_netnsid) ?? null), ifindex: l.link_index };
        }
        const owner = linkOwner(m, l.ifname, alias, group);
        return {
          name: l.ifname,
          ifindex: l.ifindex,
          kind,
          mtu: l.mtu,
          mac: (l.address ?? '').toLowerCase(),
          up: flags.includes('UP'),
          carrier: flags.includes('LOWER_UP'),
          alias,
          peer,
          owned: owner !== null,
          owner,
        };
      });
      return ok(links.sort((x, y) => x.ifindex - y.ifindex));
    },

    async get(ns, name) {
      const res = await api.list(ns);
      return res.ok ? ok(res.value.find((l) => l.name === name) ?? null) : res;
    },

    async addVeth(spec) {
      const op = vethOp(spec);
      const bad = checkVeth(m, spec, op);
      if (bad) return err(bad);
      const { a, b } = spec;
      const end = (e: VethEnd) => [
        'name',
        e.name,
        ...(e.ifindex !== undefined ? ['index', String(e.ifindex)] : []),
        ...(e.mtu !== undefined ? ['mtu', String(e.mtu)] : []),
        ...(e.mac !== undefined ? ['address', e.mac] : []),
        'group',
        String(LINK_GROUP),
      ];
      // The peer goes to b's namespace by name, or to the host's through our own pid (the host
      // namespace has no name); `ip -n a` runs the whole command inside a's namespace.
      const peerNs = a.ns === b.ns ? [] : ['netns', b.ns ?? String(process.pid)];
      const path = `${nsLabel(a.ns)}/link/${a.name}`;
      const created = await ip(a.ns, ['link', 'add', ...end(a), 'type', 'veth', 'peer', ...end(b), ...peerNs]);
      if (!created.ok) return voidOf(created, op, a.ns, { path });
      // The alias cannot be set by `ip link add` (the kernel ignores it on creation), so it is a
      // second step. `addrgenmode none` keeps the kernel from adding an fe80:: address the moment
      // the link gets carrier: our veths are addressed explicitly by the reconciler, and an
      // address it did not ask for would be drift it has to explain.
      for (const e of [a, b]) {
        const marked = await ip(e.ns, ['link', 'set', 'dev', e.name, 'alias', ownerAlias(spec.owner), 'addrgenmode', 'none']);
        if (!marked.ok) {
          await ip(a.ns, ['link', 'delete', 'dev', a.name]);
          return voidOf(marked, op, e.ns, { path: `${nsLabel(e.ns)}/link/${e.name}`, remedy: 'the pair was removed again; fix the cause and retry' });
        }
      }
      return ok(undefined);
    },

    async setUp(ns, name, up) {
      const op = `link set ${name} ${up ? 'up' : 'down'}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), checkLinkName(name));
      if (bad) return err(bad);
      return voidOf(await ip(ns, ['link', 'set', 'dev', name, up ? 'up' : 'down']), op, ns, { path: `${nsLabel(ns)}/link/${name}` });
    },

    async setMtu(ns, name, mtu) {
      const op = `link set ${name} mtu ${mtu}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), checkLinkName(name), checkMtu(mtu));
      if (bad) return err(bad);
      return voidOf(await ip(ns, ['link', 'set', 'dev', name, 'mtu', String(mtu)]), op, ns, {
        path: `${nsLabel(ns)}/link/${name}`,
        remedy: 'the link refuses this MTU (veth allows 68–65535)',
      });
    },

    async setAlias(ns, name, alias) {
      const op = `link set ${name} alias ${JSON.stringify(alias ?? '')}`;
      const bad = firstInvalid(op, ns, undefined, nsCheck(ns), checkLinkName(name), alias === null ? null : checkAlias(alias));
      if (bad) return err(bad);
      // An empty alias clears it (the kernel removes IFLA_IFALIAS when given a zero-length one).
      return voidOf(await ip(ns, ['link', 'set', 'dev', name, 'alias', alias ?? '']), op, ns, { path: `${nsLabel(ns)}/link/${name}` });
    },

    async move(ns, name, to) {
      const op = `link set ${name} netns ${nsLabel(to)}`;
      const path = `${nsLabel(ns)}/link/${name}`;
      const bad = checkMove(op, ns, name, to);
      if (bad) return err(bad);
      const cur = await api.get(ns, name);
      if (!cur.ok) return cur;
      if (cur.value === null) return err(kernelError('not_found', op, ns, `no link ${name}`, { path }));
      if (!cur.value.owned) return err(notOurs(op, ns, path));
      // The host namespace has no name; our own pid names it (the agent runs there).
      const moved = await ip(ns, ['link', 'set', 'dev', name, 'netns', to ?? String(process.pid)]);
      if (!moved.ok) return voidOf(moved, op, ns, { path });
      // The link's IPv6 settings are made anew in the target namespace with its defaults, so
      // `addrgenmode none` (see addVeth) has to be set again.
      return voidOf(await ip(to, ['link', 'set', 'dev', name, 'addrgenmode', 'none']), op, to, { path: `${nsLabel(to)}/link/${name}` });
    },

    async delete(ns, name) {
      const op = `link delete ${name}`;
      const path = `${nsLabel(ns)}/link/${name}`;
      const bad = firstInvalid(op, ns, path, nsCheck(ns), checkLinkName(name));
      if (bad) return err(bad);
      const cur = await api.get(ns, name);
      if (!cur.ok) return cur;
      if (cur.value === null) return ok(undefined);
      if (!cur.value.owned) return err(notOurs(op, ns, path));
      const res = voidOf(await ip(ns, ['link', 'delete', 'dev', name]), op, ns, { path });
      return !res.ok && res.error.code === 'not_found' ? ok(undefined) : res;
    },

    async prune(ns, keep) {
      return pruneLinks(api, ns, keep);
    },
  };
  return api;
}

/** Checks the arguments of a move; shared by the drivers. */
export function checkMove(op: string, ns: NsRef, name: string, to: NsRef): KernelError | null {
  return firstInvalid(
    op,
    ns,
    `${nsLabel(ns)}/link/${name}`,
    ns === null ? null : checkNetnsName(ns),
    to === null ? null : checkNetnsName(to),
    checkLinkName(name),
    ns === to ? `link ${name} is already in ${nsLabel(to)}` : null,
  );
}

/** The error for touching a link that is not ours. */
export function notOurs(op: string, ns: NsRef, path: string): KernelError {
  return kernelError('invalid', op, ns, 'the link does not carry the anyedge mark (prefix and alias or group), so it was made by someone else', {
    path,
    remedy: 'anyedge only deletes its own links; delete it by hand if it really should go',
  });
}

/** Prune over any LinksApi: list, then delete ours that are not kept. */
export async function pruneLinks(api: LinksApi, ns: NsRef, keep: readonly string[]): Promise<Result<string[], KernelError>> {
  const all = await api.list(ns);
  if (!all.ok) return all;
  const byIndex = new Map(all.value.map((l) => [l.ifindex, l]));
  const gone: string[] = [];
  for (const l of all.value) {
    if (!l.owned || keep.includes(l.name)) continue;
    const peer = l.peer !== null && l.peer.ns === ns ? byIndex.get(l.peer.ifindex) : undefined;
    if (peer !== undefined && keep.includes(peer.name)) continue;
    if (gone.includes(l.name)) continue;
    const res = await api.delete(ns, l.name);
    if (!res.ok) return res;
    gone.push(l.name);
    if (peer !== undefined && peer.owned) gone.push(peer.name);
  }
  return ok(gone.sort());
}

/** The netns name check, or none for the host. */
export function nsCheck(ns: NsRef): string | null {
  return ns === null ? null : checkNetnsName(ns);
}
