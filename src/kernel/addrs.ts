/**
 * Interface addresses, IPv4 and IPv6. Addresses have no ownership mark of their own: they live on
 * links, and the reconciler only manages addresses on links that are ours.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, nsLabel, type KernelError } from './errors.ts';
import { ip, ipJson, voidOf } from './iproute.ts';
import { compareIp, formatCidr, isLinkLocal6, parseCidr, type Family, type IpCidr } from './ipaddr.ts';
import { checkNetnsName, type NsRef } from './netns.ts';
import { checkLinkName, firstInvalid, parseAddrCidr } from './validate.ts';

/** An address on a link. */
export interface Addr {
  readonly link: string;
  readonly family: Family;
  /** `address/prefixlen` in canonical text, e.g. `192.0.2.1/30`, `2001:db8::1/64`. */
  readonly cidr: string;
  /** `global`, `link`, `host` or `site`. */
  readonly scope: string;
}

/** Address operations. */
export interface AddrsApi {
  /** The addresses of a namespace (of one link if given), sorted by link, family, address. */
  list(ns: NsRef, link?: string): Promise<Result<Addr[], KernelError>>;
  /**
   * Adds `cidr` (host bits kept: `192.0.2.1/30`) to a link. `exists` if the link has it already
   * (IPv4: same address and length; IPv6: same address). IPv6 addresses skip duplicate address
   * detection, see linuxAddrs.
   */
  add(ns: NsRef, link: string, cidr: string): Promise<Result<void, KernelError>>;
  /**
   * Removes an address (address and length must match); one already gone is success, a missing
   * link is `not_found`. Removing an IPv4 primary address also removes its secondaries (same
   * subnet and length), as the kernel does with promote_secondaries off.
   */
  delete(ns: NsRef, link: string, cidr: string): Promise<Result<void, KernelError>>;
}

/** The canonical sort order of address lists. */
export function compareAddrs(a: Addr, b: Addr): number {
  if (a.link !== b.link) return a.link < b.link ? -1 : 1;
  const pa = parseCidr(a.cidr) as IpCidr;
  const pb = parseCidr(b.cidr) as IpCidr;
  return compareIp(pa, pb) || pa.len - pb.len;
}

/** The scope the kernel (with iproute2's defaults) gives an address. */
export function defaultScope(c: IpCidr): string {
  if (c.family === 4) return c.bytes[0] === 127 ? 'host' : 'global';
  if (c.bytes.every((b, i) => (i === 15 ? b === 1 : b === 0))) return 'host';
  return isLinkLocal6(c) ? 'link' : 'global';
}

/** Validates the arguments shared by add and delete; returns the parsed address or an error. */
export function checkAddrArgs(op: string, ns: NsRef, link: string, cidr: string): IpCidr | KernelError {
  const parsed = parseAddrCidr(cidr);
  const bad = firstInvalid(op, ns, `${nsLabel(ns)}/link/${link}/addr/${cidr}`, ns === null ? null : checkNetnsName(ns), checkLinkName(link), typeof parsed === 'string' ? parsed : null);
  return bad ?? (parsed as IpCidr);
}

interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  scope?: string;
}

/** The Linux driver: `ip -j addr show`, `ip addr add|del`. */
export function linuxAddrs(): AddrsApi {
  return {
    async list(ns, link) {
      const op = link === undefined ? 'addr show' : `addr show dev ${link}`;
      const bad = firstInvalid(op, ns, undefined, ns === null ? null : checkNetnsName(ns), link === undefined ? null : checkLinkName(link));
      if (bad) return err(bad);
      const res = await ipJson<{ ifname: string; addr_info?: IpAddrInfo[] }>(ns, ['addr', 'show', ...(link === undefined ? [] : ['dev', link])], op);
      if (!res.ok) return res;
      const out: Addr[] = [];
      for (const l of res.value)
        for (const a of l.addr_info ?? []) {
          if (a.family !== 'inet' && a.family !== 'inet6') continue;
          const c = parseCidr(`${a.local}/${a.prefixlen}`);
          if (!c) continue;
          out.push({ link: l.ifname, family: c.family, cidr: formatCidr(c), scope: a.scope ?? 'global' });
        }
      return ok(out.sort(compareAddrs));
    },

    async add(ns, link, cidr) {
      const op = `addr add ${cidr} dev ${link}`;
      const c = checkAddrArgs(op, ns, link, cidr);
      if ('code' in c) return err(c);
      // `nodad`: duplicate address detection would leave the address "tentative" (unusable as a
      // source, routes via it refused) for about a second after every add. Our veths are
      // point-to-point links whose both ends we address ourselves, so a duplicate cannot come
      // from the wire. `noprefixroute` on an IPv6 host address (/128): the kernel would otherwise
      // put a /128 route for it into the main table, which an IPv4 /32 never gets; the server end
      // of a wire must leave the server's main tables alone (its peer is reached via `transit`).
      const v6 = c.family === 6 ? ['nodad', ...(c.len === 128 ? ['noprefixroute'] : [])] : [];
      const args = ['addr', 'add', formatCidr(c), 'dev', link, ...v6];
      return voidOf(await ip(ns, args), op, ns, { path: `${nsLabel(ns)}/link/${link}/addr/${formatCidr(c)}` });
    },

    async delete(ns, link, cidr) {
      const op = `addr del ${cidr} dev ${link}`;
      const c = checkAddrArgs(op, ns, link, cidr);
      if ('code' in c) return err(c);
      const path = `${nsLabel(ns)}/link/${link}/addr/${formatCidr(c)}`;
      const res = await ip(ns, ['addr', 'del', formatCidr(c), 'dev', link]);
      if (res.ok) return ok(undefined);
      // "Address not found" (or EADDRNOTAVAIL on older kernels): already gone, which is success.
      // A missing link is a real error: the caller named something that is not there.
      if (/Address not found|address not found|Cannot assign requested address/.test(res.error.stderr)) return ok(undefined);
      if (/Cannot find device/.test(res.error.stderr))
        return err(kernelError('not_found', op, ns, `no link ${link}`, { path, cause: res.error }));
      return voidOf(res, op, ns, { path });
    },
  };
}
