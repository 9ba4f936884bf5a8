/**
 * Puts the API on a TCP socket with @hono/node-server. Port 0 takes any free port; the answer
 * says which, so tests and labs never race for a fixed one.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';

/** A listening API. */
export interface ServedApi {
  /** The port it listens on (the one chosen, when 0 was asked for). */
  readonly port: number;
  /** `http://HOST:PORT`, IPv6 hosts in brackets. */
  readonly url: string;
  /** Stops listening and ends open connections; resolves when the socket is closed. */
  close(): Promise<void>;
}

/**
 * How long a client may take to send one request, headers and body: long enough for a 1 MiB
 * config over a slow link, short enough that idle half-sent requests do not pile up.
 */
const REQUEST_TIMEOUT_MS = 30_000;

/** Serves `app` on `host:port`; rejects when the socket cannot be bound (port taken, bad address). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any hono app, whatever its env type
export function serveApi(app: Hono<any>, where: { readonly host: string; readonly port: number }): Promise<ServedApi> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: app.fetch, hostname: where.host, port: where.port, serverOptions: { requestTimeout: REQUEST_TIMEOUT_MS } }) as Server;
    const failed = (e: Error): void => reject(new Error(`listen on ${where.host}:${where.port}: ${e.message}`, { cause: e }));
    server.once('error', failed);
    server.once('listening', () => {
      server.off('error', failed);
      const port = (server.address() as AddressInfo).port;
      const host = where.host.includes(':') ? `[${where.host}]` : where.host;
      resolve({
        port,
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
