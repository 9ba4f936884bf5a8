/**
 * Accounting of live upstream connections: per egress address, and per (egress address,
 * destination ip, destination port). The second count is what the NAT is bounded by: a
 * connection to a destination needs a source port of the slice no other live connection to the
 * SAME destination uses, so a slice of N ports holds N connections per destination but far more
 * in total. A lease is taken before the connect starts (so concurrent requests see each other)
 * and given back exactly once when the upstream socket is gone.
 *
 * A closed connection keeps its NAT port towards its destination for a while: conntrack holds the
 * tuple in TIME_WAIT (nf_conntrack_tcp_timeout_time_wait, 120 s by default) and the NAT does not
 * hand that port to a new connection to the same destination meanwhile (server.linux.test.ts
 * shows it on the real kernel: 63 live + 1 closed in a 64-port slice, a 65th connection to the
 * destination gets no port and times out — or, on 6.18 at times, the NAT evicts the TIME_WAIT
 * tuple and reuses that port, so counting it is the cautious choice; `--time-wait 0` turns it off).
 * So a released lease of a connection that was established stays counted towards its destination
 * for `lingerMs` ("held"), while it no longer counts as live.
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
  /**
   * Gives the lease back. `linger` (default true): the connection was established, so its NAT
   * port stays held towards the destination for the ledger's `lingerMs`; false for a connect that
   * never got through (no conntrack entry was confirmed).
   */
  release(linger?: boolean): void;
}

/** The counts. */
export class SliceLedger {
  /** How long a closed connection's port stays held towards its destination (0: not at all). */
  readonly lingerMs: number;
  readonly #perIp = new Map<string, number>();
  // Held (live + lingering) per destination, and the lingering part of it.
  readonly #perDst = new Map<string, Map<string, number>>();
  readonly #lingering = new Map<string, Map<string, number>>();

  constructor(opts: { readonly lingerMs?: number } = {}) {
    this.lingerMs = opts.lingerMs ?? 0;
  }

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
      release: (linger = true) => {
        if (released) return;
        released = true;
        bump(this.#perIp, ip, -1);
        if (!linger || this.lingerMs <= 0) return this.#unhold(ip, key);
        const l = this.#lingering.get(ip) ?? new Map<string, number>();
        this.#lingering.set(ip, l);
        bump(l, key, 1);
        const t = setTimeout(() => {
          bump(l, key, -1);
          if (l.size === 0 && this.#lingering.get(ip) === l) this.#lingering.delete(ip);
          this.#unhold(ip, key);
        }, this.lingerMs);
        // The proxy's shutdown must not wait for these.
        t.unref();
      },
    };
  }

  #unhold(ip: string, key: string): void {
    const dsts = this.#perDst.get(ip);
    if (!dsts) return;
    bump(dsts, key, -1);
    if (dsts.size === 0) this.#perDst.delete(ip);
  }

  /** Live connections from `ip`. */
  live(ip: string): number {
    return this.#perIp.get(ip) ?? 0;
  }

  /** NAT ports of `ip` held towards `destination`: live connections plus lingering closed ones. */
  heldTo(ip: string, destination: Destination): number {
    return this.#perDst.get(ip)?.get(destinationKey(destination)) ?? 0;
  }

  /** Closed connections from `ip` to `destination` whose port is still held (see lingerMs). */
  lingeringTo(ip: string, destination: Destination): number {
    return this.#lingering.get(ip)?.get(destinationKey(destination)) ?? 0;
  }

  /** Live connections from `ip` to `destination`. */
  liveTo(ip: string, destination: Destination): number {
    return this.heldTo(ip, destination) - this.lingeringTo(ip, destination);
  }

  /** The most ports of `ip` held towards any one destination (0 when none). */
  maxPerDestination(ip: string): number {
    let max = 0;
    for (const n of this.#perDst.get(ip)?.values() ?? []) if (n > max) max = n;
    return max;
  }

  /** Every address with live connections or held ports. */
  addresses(): string[] {
    return [...new Set([...this.#perIp.keys(), ...this.#perDst.keys()])];
  }
}

function bump(m: Map<string, number>, key: string, by: number): void {
  const n = (m.get(key) ?? 0) + by;
  if (n <= 0) m.delete(key);
  else m.set(key, n);
}
