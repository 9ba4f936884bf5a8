/**
 * The agent's metrics endpoint: `GET /metrics` in the Prometheus text format, 404 for every other
 * path, bound only where the operator said (a loopback or management address, never all by
 * default). One route needs no router, so this is node:http itself.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** Where to listen; port 0 takes any free port. */
export interface MetricsListen {
  readonly host: string;
  readonly port: number;
}

/** A running endpoint. */
export interface MetricsServer {
  /** The port bound (the one chosen by the system when 0 was asked). */
  readonly port: number;
  /** Stops listening and drops open connections (a scraper's keep-alive would hold close() otherwise). */
  close(): Promise<void>;
}

function text(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(body);
}

async function handle(registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') return text(res, 404, `not found: ${path}; this endpoint serves only /metrics\n`);
  if (req.method !== 'GET' && req.method !== 'HEAD') return text(res, 405, `method ${req.method} not allowed on /metrics; use GET\n`, { allow: 'GET, HEAD' });
  let body: string;
  try {
    body = await registry.metrics();
  } catch (e) {
    // A collector that throws is a bug (kernel read failures are counted, not thrown); say so
    // rather than serve a partial page a scraper would take as complete.
    return text(res, 500, `metrics collection failed: ${(e as Error).message}\n`);
  }
  res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Serves `registry` on `listen`. Rejects, naming the address and the reason, when it cannot
 * listen (address in use, not an address of this host, no permission for the port).
 */
export function serveMetrics(registry: Registry, listen: MetricsListen): Promise<MetricsServer> {
  if (!Number.isInteger(listen.port) || listen.port < 0 || listen.port > 65535)
    return Promise.reject(new Error(`metrics: listen port ${String(listen.port)} must be an integer 0–65535 (0: any free port)`));
  if (typeof listen.host !== 'string' || listen.host === '')
    return Promise.reject(new Error('metrics: listen host is empty; give the address to bind, e.g. 127.0.0.1'));
  const server = createServer((req, res) => {
    handle(registry, req, res).catch((e: unknown) => {
      if (!res.headersSent) text(res, 500, `metrics endpoint failed: ${(e as Error).message}\n`);
      else res.destroy();
    });
  });
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(new Error(`metrics: cannot listen on ${listen.host}:${listen.port}: ${e.code ?? e.message}; choose a free port and an address of this host for the metrics listener`, { cause: e }));
    server.once('error', onError);
    server.listen({ host: listen.host, port: listen.port }, () => {
      server.off('error', onError);
      const port = (server.address() as AddressInfo).port;
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
