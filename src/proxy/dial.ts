/**
 * Connecting upstream from an egress address: bind to the address (`localAddress`), let the
 * kernel pick the port (the server's nftables SNAT then maps it into this server's slice, reusing
 * a port for distinct destinations), and move on to the next eligible address when this one
 * cannot take the connection — full by our count, refused by the kernel (EADDRNOTAVAIL: the
 * address is not on this host any more) or silent (a SYN the NAT could not map is dropped, so a
 * full slice in the kernel shows up as a connect timeout). A destination that answers with a
 * refusal or is unreachable is the destination's fault, not the address's: that ends the attempt
 * at once with 502.
 */
import { connect, type Socket } from 'node:net';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { exhausted, nextAddress, type ChoiceRequest, type Eligible, type Tried } from './choose.ts';
import type { EgressAddress } from './egress-address.ts';
import type { Lease, SliceLedger } from './ledger.ts';
import { httpError, type HttpError } from './connect-request.ts';

/** Opens a TCP connection from `localAddress` (a function so tests can stand in for the kernel). */
export type Dialer = (o: { readonly host: string; readonly port: number; readonly localAddress: string; readonly family: 4 | 6 }) => Socket;

/** The real one: node:net with half-close kept, so a tunnel can carry a one-way FIN. */
export const netDialer: Dialer = (o) => connect({ host: o.host, port: o.port, localAddress: o.localAddress, family: o.family, allowHalfOpen: true });

/** A connected upstream and what it counts against. */
export interface Upstream {
  readonly socket: Socket;
  readonly address: EgressAddress;
  readonly lease: Lease;
}

/** A failed dial: the reply to send and the metrics result. */
export interface DialFailure {
  readonly result: 'exhausted' | 'upstream_timeout' | 'upstream_refused' | 'upstream_error' | 'aborted';
  readonly error: HttpError;
}

/** What the dial needs. */
export interface DialRequest {
  readonly request: ChoiceRequest;
  readonly eligible: Eligible;
  readonly ledger: SliceLedger;
  readonly dial: Dialer;
  readonly timeoutMs: number;
  /** Aborted when the eyeball goes away during the dial. */
  readonly signal: AbortSignal;
  /** Told about each address given up on (for the log). */
  readonly onSkip?: (t: Tried) => void;
}

type Attempt = { readonly kind: 'connected'; readonly socket: Socket } | { readonly kind: 'address' | 'timeout' | 'refused' | 'other' | 'aborted'; readonly code: string };

// The kernel refusing the source address: it is not (or no longer) on this host, or no port is left.
const ADDRESS_CODES = new Set(['EADDRNOTAVAIL', 'EADDRINUSE']);

function attempt(d: DialRequest, address: EgressAddress): Promise<Attempt> {
  return new Promise((resolve) => {
    const { ip, port } = d.request.destination;
    const socket = d.dial({ host: ip, port, localAddress: address.ip, family: d.request.family });
    let settled = false;
    const settle = (a: Attempt): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      d.signal.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (a.kind !== 'connected') socket.destroy();
      // Until the splice takes it over, an error on the connected socket must not go unheard
      // (an 'error' without a listener ends the process); the splice destroys both on errors.
      else socket.on('error', () => {});
      resolve(a);
    };
    const onConnect = (): void => settle({ kind: 'connected', socket });
    const onError = (e: NodeJS.ErrnoException): void => {
      const code = e.code ?? e.message;
      settle({ kind: ADDRESS_CODES.has(code) ? 'address' : code === 'ECONNREFUSED' ? 'refused' : 'other', code });
    };
    const onAbort = (): void => settle({ kind: 'aborted', code: 'aborted' });
    const timer = setTimeout(() => settle({ kind: 'timeout', code: 'ETIMEDOUT' }), d.timeoutMs);
    socket.once('connect', onConnect);
    socket.once('error', onError);
    if (d.signal.aborted) onAbort();
    else d.signal.addEventListener('abort', onAbort, { once: true });
  });
}

function hostPort(r: ChoiceRequest): string {
  return r.family === 6 ? `[${r.destination.ip}]:${r.destination.port}` : `${r.destination.ip}:${r.destination.port}`;
}

/**
 * Connects to the destination from the best eligible address that can take it, trying the next
 * one after a full slice or a kernel refusal; the lease is held by the returned upstream.
 */
export async function dialEgress(d: DialRequest): Promise<Result<Upstream, DialFailure>> {
  const tried = new Set<string>();
  const refused: Tried[] = [];
  let timeouts = 0;
  const skip = (t: Tried): void => {
    tried.add(t.ip);
    refused.push(t);
    d.onSkip?.(t);
  };
  for (;;) {
    const next = nextAddress(d.eligible.addresses, d.ledger, d.request.destination, tried);
    if (next === null) break;
    const lease = d.ledger.acquire(next.address.ip, d.request.destination);
    const a = await attempt(d, next.address);
    if (a.kind === 'connected') return ok({ socket: a.socket, address: next.address, lease });
    lease.release(false);
    const from = `from ${next.address.ip}`;
    switch (a.kind) {
      case 'address':
        skip({ ip: next.address.ip, why: `the kernel refused the address (${a.code})` });
        continue;
      case 'timeout':
        timeouts++;
        skip({ ip: next.address.ip, why: `no answer within ${d.timeoutMs} ms (no free NAT port for this destination, or the destination is silent)` });
        continue;
      case 'aborted':
        return err({ result: 'aborted', error: httpError(502, 'the client closed the connection during the upstream connect') });
      case 'refused':
        return err({ result: 'upstream_refused', error: httpError(502, `${hostPort(d.request)} refused the connection (ECONNREFUSED) ${from}; nothing listens there`) });
      default:
        return err({ result: 'upstream_error', error: httpError(502, `cannot connect to ${hostPort(d.request)} ${from}: ${a.code}`) });
    }
  }
  if (timeouts > 0 && timeouts === d.eligible.addresses.length)
    return err({
      result: 'upstream_timeout',
      error: httpError(504, `${hostPort(d.request)} did not answer within ${d.timeoutMs} ms from any of ${timeouts} ${d.request.class}/${d.eligible.country} egress address${timeouts === 1 ? '' : 'es'} (${refused.map((t) => t.ip).join(', ')}); the destination may be down, or every slice has run out of NAT ports for it`),
    });
  return err({ result: 'exhausted', error: httpError(503, exhausted(d.request, d.eligible, d.ledger, refused).message) });
}
