/**
 * The egress proxy: an HTTP CONNECT endpoint (RFC 9110 §9.3.6) on a service anycast address of
 * this server. Per eyeball connection: read the request head (limits, timeout), find the eyeball's
 * country (GeoIP), pick this server's egress address of the service's class and that country with
 * the most room towards the destination (choose.ts), connect from it (dial.ts), answer 200 and
 * splice bytes both ways (splice.ts). Every refusal is an HTTP status with a one-line reason body.
 *
 * The addresses come from a function, read per request: when the config moves an egress address
 * to another data center it disappears from the list and new tunnels stop using it at once;
 * tunnels already open from it are left alone — see config-follow.ts for what happens to them.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { lookup } from 'node:dns/promises';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { httpError, parseConnect, scanHead, type HttpError } from './connect-request.ts';
import { eligible, rank, type ChoiceRequest } from './choose.ts';
import { dialEgress, netDialer, type Dialer } from './dial.ts';
import type { EgressAddress, EgressClassName } from './egress-address.ts';
import type { GeoTable } from './geoip.ts';
import { SliceLedger } from './ledger.ts';
import { ProxyMetrics } from './metrics.ts';
import { splice } from './splice.ts';

/** Resolves a host name to addresses (a function so tests need no DNS). */
export type Resolver = (host: string) => Promise<Result<ReadonlyArray<{ readonly ip: string; readonly family: 4 | 6 }>, string>>;

/** The system resolver (getaddrinfo, /etc/hosts included). */
export const systemResolver: Resolver = async (host) => {
  try {
    const all = await lookup(host, { all: true, verbatim: true });
    return ok(all.map((a) => ({ ip: a.address, family: a.family === 6 ? 6 : 4 })));
  } catch (e) {
    return err(`cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
};

/** A log event, one JSON line in the CLI. */
export type ProxyEvent = { readonly level: 'info' | 'error' | 'debug'; readonly event: string } & Record<string, unknown>;

/** How the proxy runs. */
export interface ProxyOptions {
  /** The service's class: only egress addresses of this class are used. */
  readonly class: EgressClassName;
  readonly geo: GeoTable;
  /** This server's egress addresses now (read per request). */
  readonly addresses: () => readonly EgressAddress[];
  /** Country to leave from when this server has no address in the eyeball's country; null: refuse. */
  readonly fallbackCountry?: string | null;
  /** Time allowed for the whole request head (default 10 s). */
  readonly headTimeoutMs?: number;
  /** Time allowed per upstream connect from one address (default 5 s). */
  readonly connectTimeoutMs?: number;
  /**
   * How long a closed tunnel's NAT port stays counted towards its destination (conntrack's
   * TIME_WAIT, default 120 s as nf_conntrack_tcp_timeout_time_wait); 0: not at all.
   */
  readonly timeWaitMs?: number;
  /** Close tunnels idle this long; 0 (default) never. */
  readonly idleTimeoutMs?: number;
  readonly dial?: Dialer;
  readonly resolve?: Resolver;
  readonly log?: (e: ProxyEvent) => void;
}

/** Sockets the proxy holds open right now (tests check nothing leaks). */
export interface ProxyStats {
  readonly clients: number;
  readonly upstreams: number;
  readonly tunnels: number;
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

const RESULT_OF: Readonly<Record<number, string>> = { 400: 'bad_request', 405: 'method', 431: 'too_large', 505: 'version' };

/** `::ffff:192.0.2.1` (a dual-stack listener's view of an IPv4 peer) → `192.0.2.1`. */
export function plainAddress(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? (m[1] as string) : ip;
}

/** Linux's default nf_conntrack_tcp_timeout_time_wait. */
export const DEFAULT_TIME_WAIT_MS = 120_000;

/** Most bytes read ahead from an eyeball while its upstream is being connected. */
const EARLY_LIMIT = 65536;

/** What an eyeball sent after its request head and before the tunnel was up. */
interface EarlyBytes {
  /** Stops collecting (the socket is left paused) and hands over the bytes and whether FIN came. */
  take(): { bytes: Buffer; ended: boolean };
}

/**
 * Keeps reading the eyeball during the upstream connect: so that its leaving (a reset) is
 * noticed and the dial aborted, and so that bytes it sends ahead (a TLS ClientHello) are kept for
 * the tunnel. Past {@link EARLY_LIMIT} the socket is paused (TCP flow control holds the rest).
 */
function earlyBytes(client: Socket, rest: Buffer): EarlyBytes {
  const chunks: Buffer[] = rest.length ? [rest] : [];
  let size = rest.length;
  let ended = false;
  const onData = (c: Buffer): void => {
    chunks.push(c);
    size += c.length;
    if (size > EARLY_LIMIT) client.pause();
  };
  const onEnd = (): void => {
    ended = true;
  };
  client.on('data', onData);
  client.on('end', onEnd);
  client.resume();
  return {
    take: () => {
      client.off('data', onData);
      client.off('end', onEnd);
      client.pause();
      return { bytes: Buffer.concat(chunks), ended };
    },
  };
}

/** The proxy. `listen`, then `close` when done. */
export class ProxyServer {
  readonly ledger: SliceLedger;
  readonly metrics: ProxyMetrics;
  readonly #o: ProxyOptions;
  readonly #server: Server;
  readonly #clients = new Set<Socket>();
  readonly #upstreams = new Set<Socket>();
  #tunnels = 0;

  constructor(o: ProxyOptions) {
    this.#o = o;
    this.ledger = new SliceLedger({ lingerMs: o.timeWaitMs ?? DEFAULT_TIME_WAIT_MS });
    this.metrics = new ProxyMetrics(this.ledger, o.addresses);
    this.#server = createServer({ allowHalfOpen: true }, (c) => this.#accept(c));
  }

  /** Listens on host:port (port 0: any free port); resolves with the port bound. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void =>
        reject(new Error(`proxy: cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${e.code ?? e.message}; the service address must be on this host (e.g. on lo) and the port free`, { cause: e }));
      this.#server.once('error', onError);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', onError);
        resolve((this.#server.address() as AddressInfo).port);
      });
    });
  }

  /** Stops listening and closes every client and upstream socket. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const s of [...this.#clients, ...this.#upstreams]) s.destroy();
    });
  }

  stats(): ProxyStats {
    return { clients: this.#clients.size, upstreams: this.#upstreams.size, tunnels: this.#tunnels };
  }

  #log(e: ProxyEvent): void {
    this.#o.log?.(e);
  }

  #accept(client: Socket): void {
    this.#clients.add(client);
    client.once('close', () => this.#clients.delete(client));
    // Errors on the eyeball side end in 'close'; nothing to report beyond that.
    client.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const stop = (): void => {
      done = true;
      client.off('data', onData);
      client.off('end', onEnd);
      client.setTimeout(0);
    };
    const onData = (chunk: Buffer): void => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const s = scanHead(buf);
      if (s.kind === 'more') return;
      stop();
      if (s.kind === 'error') return this.#refuse(client, s.error, 'too_large', 'HTTP/1.1');
      this.#serve(client, s.head, earlyBytes(client, s.rest)).catch((e: unknown) => {
        // A bug, not an input problem: answer and log rather than leave the eyeball hanging.
        this.#log({ level: 'error', event: 'internal', message: (e as Error).stack ?? String(e) });
        this.#refuse(client, httpError(502, `internal error: ${(e as Error).message}`), 'internal', 'HTTP/1.1');
      });
    };
    const onEnd = (): void => {
      if (done) return;
      stop();
      this.#refuse(client, httpError(400, 'the connection was half-closed before the request head was complete (a blank line ends it)'), 'bad_request', 'HTTP/1.1');
    };
    client.on('data', onData);
    client.on('end', onEnd);
    const headMs = this.#o.headTimeoutMs ?? 10_000;
    client.setTimeout(headMs, () => {
      if (done) return;
      stop();
      this.#refuse(client, httpError(408, `the request head did not arrive within ${headMs} ms; send the whole CONNECT request at once`), 'head_timeout', 'HTTP/1.1');
    });
  }

  /** Answers with an error status and a reason, then closes (a lingering client is cut after 2 s). */
  #refuse(client: Socket, e: HttpError, result: string, version: string): void {
    client.removeAllListeners('data');
    this.metrics.requests.inc({ result });
    this.#log({ level: 'info', event: 'refused', status: e.status, result, eyeball: plainAddress(client.remoteAddress ?? ''), reason: e.reason });
    if (client.destroyed || !client.writable) {
      client.destroy();
      return;
    }
    const body = `${e.reason}\n`;
    const extra = Object.entries(e.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    client.end(`${version} ${e.status} ${STATUS_TEXT[e.status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`);
    client.resume();
    client.setTimeout(2000, () => client.destroy());
  }

  async #serve(client: Socket, head: Buffer, early: EarlyBytes): Promise<void> {
    const parsed = parseConnect(head);
    if (!parsed.ok) return this.#refuse(client, parsed.error, RESULT_OF[parsed.error.status] ?? 'bad_request', 'HTTP/1.1');
    const { target, version } = parsed.value;
    const eyeball = plainAddress(client.remoteAddress ?? '');
    const geo = this.#o.geo.lookup(eyeball);
    if (!geo.ok) return this.#refuse(client, httpError(403, geo.error.message), 'geoip', version);

    // The abort reaches a dial in progress when the eyeball leaves meanwhile.
    const abort = new AbortController();
    const onGone = (): void => abort.abort();
    client.once('close', onGone);

    let destinations: ReadonlyArray<{ ip: string; family: 4 | 6 }>;
    if (target.family !== null) destinations = [{ ip: target.host, family: target.family }];
    else {
      const r = await (this.#o.resolve ?? systemResolver)(target.host);
      if (!r.ok || r.value.length === 0) {
        client.off('close', onGone);
        return this.#refuse(client, httpError(502, r.ok ? `${target.host} has no address` : r.error), 'resolve', version);
      }
      destinations = r.value;
    }
    const fallback = this.#o.fallbackCountry ?? null;
    const addresses = this.#o.addresses();
    // The first destination address whose family this server can leave from.
    let choice: { request: ChoiceRequest; eligible: Exclude<ReturnType<typeof eligible>, { ok: false }>['value'] } | null = null;
    let firstError: string | null = null;
    for (const d of destinations) {
      const request: ChoiceRequest = { class: this.#o.class, country: geo.value.country, family: d.family, destination: { ip: d.ip, port: target.port } };
      const e = eligible(addresses, request, fallback);
      if (e.ok) {
        choice = { request, eligible: e.value };
        break;
      }
      firstError ??= e.error.message;
    }
    if (choice === null) {
      client.off('close', onGone);
      return this.#refuse(client, httpError(503, firstError ?? 'no destination address'), 'no_egress', version);
    }
    if (choice.eligible.fallback !== null) this.#log({ level: 'info', event: 'fallback', eyeball, message: choice.eligible.fallback });

    // Slices already full for this destination by our own count are passed over without a dial;
    // those the kernel refuses during the dial are counted in onSkip.
    const fullByCount = rank(choice.eligible.addresses, this.ledger, choice.request.destination).filter((x) => x.free === 0).length;
    if (fullByCount > 0) this.metrics.exhausted.inc(fullByCount);
    const up = await dialEgress({
      request: choice.request,
      eligible: choice.eligible,
      ledger: this.ledger,
      dial: this.#o.dial ?? netDialer,
      timeoutMs: this.#o.connectTimeoutMs ?? 5000,
      signal: abort.signal,
      onSkip: (t) => {
        this.metrics.exhausted.inc();
        this.#log({ level: 'info', event: 'egress_skipped', egress: t.ip, destination: choice.request.destination, why: t.why });
      },
    });
    client.off('close', onGone);
    if (!up.ok) {
      if (up.error.result === 'aborted') {
        this.metrics.requests.inc({ result: 'aborted' });
        client.destroy();
        return;
      }
      return this.#refuse(client, up.error.error, up.error.result, version);
    }
    const { socket: upstream, address, lease } = up.value;
    if (client.destroyed) {
      upstream.destroy();
      lease.release(true);
      return;
    }
    this.#upstreams.add(upstream);
    this.#tunnels++;
    this.metrics.requests.inc({ result: 'tunnel' });
    const headers = [`anyedge-egress-ip: ${address.ip}`, `anyedge-egress-country: ${address.country}`];
    if (choice.eligible.fallback !== null) headers.push(`anyedge-egress-fallback: ${choice.eligible.fallback}`);
    client.write(`${version} 200 Connection established\r\n${headers.join('\r\n')}\r\n\r\n`);
    const { bytes, ended } = early.take();
    if (bytes.length > 0) upstream.write(bytes);
    // The eyeball's FIN came before the tunnel: pass it on (pipe only forwards an end it sees).
    if (ended) upstream.end();
    this.#log({ level: 'debug', event: 'tunnel', eyeball, country: geo.value.country, egress: address.ip, destination: choice.request.destination });
    splice(
      client,
      upstream,
      () => {
        this.#upstreams.delete(upstream);
        this.#tunnels--;
        lease.release(true);
      },
      this.#o.idleTimeoutMs ?? 0,
    );
    client.resume();
  }
}
