/**
 * Accounting of live upstream connections: per egress address, and per (egress address,
 * destination ip, destination port). The second count is what the NAT is bounded by: a
 * connection to a destination needs a source port of the slice no other live connection to the
 * SAME destination uses, so a slice of N ports holds N connections per destination but far more
 * in total. A lease is taken before the connect starts (so concurrent requests see each other)
 * and given back exactly once when the upstream socket is gone.
 */

/** A destination: IP (canonical text) and port. */
export interface Destination {
  readonly ip: string;
  readonly port: number;
}

/** Text key of a destination, `ip|port` (IPv6 text holds colons, so not `ip:port`). */
export function destinationKey(d: Destination): string {
  return `${d.ip}|${d.port}`;
}

/** One counted connection; `release` is idempotent. */
export interface Lease {
  readonly ip: string;
  readonly destination: Destination;
  release(): void;
}

/** The counts. */
export class SliceLedger {
  readonly #perIp = new Map<string, number>();
  readonly #perDst = new Map<string, Map<string, number>>();

  /** Counts one connection from `ip` to `destination` until the lease is released. */
  acquire(ip: string, destination: Destination): Lease {
    const key = destinationKey(destination);
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    const dsts = this.#perDst.get(ip) ?? new Map<string, number>();
    this.#perDst.set(ip, dsts);
    dsts.set(key, (dsts.get(key) ?? 0) + 1);
    let released = false;
    return {
      ip,
      destination,
      release: () => {
        if (released) return;
        released = true;
        const n = (this.#perIp.get(ip) ?? 1) - 1;
        if (n === 0) this.#perIp.delete(ip);
        else this.#perIp.set(ip, n);
        const m = (dsts.get(key) ?? 1) - 1;
        if (m === 0) dsts.delete(key);
        else dsts.set(key, m);
        if (dsts.size === 0) this.#perDst.delete(ip);
      },
    };
  }

  /** Live connections from `ip`. */
  live(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /** Live connections from `ip` to `destination`. */
  liveTo(ip: string, destination: Destination): number {
    return this.#perDst.get(ip)?.get(destinationKey(destination)) ?? 0;
  }

  /** The most live connections from `ip` to any one destination (0 when none). */
  maxPerDestination(ip: string): number {
    let max = 0;
    for (const n of this.#perDst.get(ip)?.values() ?? []) if (n > max) max = n;
    return max;
  }

  /** Every address with live connections. */
  addresses(): string[] {
    return [...this.#perIp.keys()];
  }
}
