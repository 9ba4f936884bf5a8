/**
 * Input checks shared by the Linux driver and the fake, run before anything reaches the kernel.
 * Two reasons: every argument ends up in an `ip` argv, so a name that looks like an option or a
 * keyword must never get there; and the fake must refuse exactly what Linux refuses, which is
 * easiest when both refuse it here, with the same message.
 */
import { kernelError, type KernelError } from './errors.ts';
import { formatCidr, isNetwork, parseCidr, parseIp, type IpAddr, type IpCidr } from './ipaddr.ts';

/** A check: null when the value is fine, else the reason. */
type Check = string | null;

/** Netns names become files under /run/netns; no slashes, no leading dot or dash. */
export function checkNetnsName(name: string): Check {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name) ? null : `netns name ${JSON.stringify(name)} must be 1–64 of A–Z a–z 0–9 _ . - and start with a letter or digit`;
}

/** Interface names: IFNAMSIZ is 16 with the NUL, so at most 15 characters. */
export function checkLinkName(name: string): Check {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/.test(name) ? null : `link name ${JSON.stringify(name)} must be 1–15 of A–Z a–z 0–9 _ . - and start with a letter or digit`;
}

function checkInt(what: string, n: number, min: number, max: number): Check {
  return Number.isInteger(n) && n >= min && n <= max ? null : `${what} ${n} must be an integer in ${min}–${max}`;
}

/** MTU: 68 is the IPv4 minimum (RFC 791); 65536 is the loopback default, the largest the kernel lets any link have. */
export const checkMtu = (n: number): Check => checkInt('mtu', n, 68, 65536);
/** Interface index: positive and a signed 32-bit int in the kernel. */
export const checkIfindex = (n: number): Check => checkInt('ifindex', n, 1, 0x7fffffff);
/** Route table id: 0 means "unspecified" to the kernel, so it cannot name a table. */
export const checkTable = (n: number): Check => checkInt('table', n, 1, 0xffffffff);
/** Route metric (priority). */
export const checkMetric = (n: number): Check => checkInt('metric', n, 0, 0xffffffff);
/** Multipath weight: the kernel stores weight-1 in one byte. */
export const checkWeight = (n: number): Check => checkInt('weight', n, 1, 256);
/** Rule priority. */
export const checkPriority = (n: number): Check => checkInt('rule priority', n, 0, 0xffffffff);
/** fwmark or its mask: 32 bits. */
export const checkMark = (what: string, n: number): Check => checkInt(what, n, 0, 0xffffffff);

/** Lower-case unicast MAC; the kernel refuses multicast and all-zero addresses on Ethernet links. */
export function checkMac(mac: string): Check {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) return `mac ${JSON.stringify(mac)} must be six lower-case hex bytes like 02:00:5e:00:00:01`;
  if (parseInt(mac.slice(0, 2), 16) & 1) return `mac ${mac} is a multicast address; use a unicast one (first byte even, e.g. 02:…)`;
  if (mac === '00:00:00:00:00:00') return 'mac 00:00:00:00:00:00 is not a valid station address';
  return null;
}

/**
 * Owner names go into the link alias `anyedge:<owner>`. They are ids (a tenant id, `agent`):
 * lower-case letters, digits and `-`, as the model's ids are.
 */
export function checkOwner(owner: string): Check {
  return /^[a-z0-9][a-z0-9-]{0,62}$/.test(owner) ? null : `owner ${JSON.stringify(owner)} must be an id: 1–63 of a–z 0–9 - starting with a letter or digit`;
}

/** Aliases: IFALIASZ is 256 with the NUL; no control characters, which would break `ip` output. */
export function checkAlias(alias: string): Check {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(alias)) return 'alias must not contain control characters';
  return Buffer.byteLength(alias) <= 255 ? null : 'alias must be at most 255 bytes';
}

/** An interface address `addr/len`, host bits allowed. */
export function parseAddrCidr(text: string): IpCidr | string {
  const c = text.includes('/') ? parseCidr(text) : null;
  return c ?? `address ${JSON.stringify(text)} must be addr/len, e.g. 192.0.2.1/30 or 2001:db8::1/64`;
}

/** A route destination `net/len` with no host bits (the kernel refuses them for IPv4). */
export function parseRouteDst(text: string): IpCidr | string {
  const c = parseCidr(text);
  if (!c) return `route destination ${JSON.stringify(text)} must be net/len, e.g. 203.0.113.0/25`;
  if (!isNetwork(c)) return `route destination ${text} has host bits set; the network is ${formatCidr({ ...c, bytes: maskBytes(c) })}`;
  return c;
}

function maskBytes(c: IpCidr): Uint8Array {
  const b = new Uint8Array(c.bytes);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, c.len - 8 * i));
    b[i] = (b[i] ?? 0) & ((0xff << (8 - bits)) & 0xff);
  }
  return b;
}

/** A gateway address of the given family. */
export function parseGateway(text: string, family: 4 | 6): IpAddr | string {
  const a = parseIp(text);
  if (!a) return `gateway ${JSON.stringify(text)} is not an IP address`;
  if (a.family !== family) return `gateway ${text} is IPv${a.family} but the destination is IPv${family}`;
  return a;
}

/** Runs checks; the first failure becomes an `invalid` KernelError for `op`. */
export function firstInvalid(op: string, ns: string | null, path: string | undefined, ...checks: Check[]): KernelError | null {
  const reason = checks.find((c) => c !== null);
  if (reason === undefined || reason === null) return null;
  return kernelError('invalid', op, ns, reason, { ...(path !== undefined ? { path } : {}), remedy: 'nothing was changed; correct the value and retry' });
}
