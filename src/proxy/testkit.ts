/**
 * Test helpers for the proxy: an echo server that records who connected, and a CONNECT client
 * that returns the proxy's reply head and the open tunnel. Used by the loopback tests; the
 * namespace test runs the same client and server as child processes (testdata/peer.mjs).
 */
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** An echo server on loopback: echoes every byte, half-closes back after the client's FIN. */
export interface EchoServer {
  readonly port: number;
  /** `ip:port` of every connection accepted, in order. */
  readonly peers: string[];
  connections(): Promise<number>;
  close(): Promise<void>;
}

/** Starts an {@link EchoServer} on host (port 0: any). */
export function echoServer(host = '127.0.0.1'): Promise<EchoServer> {
  const peers: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    peers.push(`${s.remoteAddress}:${s.remotePort}`);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  return new Promise((resolve) => {
    server.listen({ host, port: 0 }, () =>
      resolve({
        port: (server.address() as AddressInfo).port,
        peers,
        connections: () => new Promise((r, j) => server.getConnections((e, n) => (e ? j(e) : r(n)))),
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

/** The proxy's answer to a CONNECT, and the socket (open when status is 200). */
export interface TunnelReply {
  readonly status: number;
  readonly head: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The reply body for an error status (read to the end). */
  readonly body: string;
  readonly socket: Socket;
}

/**
 * Sends `request` (default a CONNECT to target) to the proxy and reads its reply head; for an
 * error status, also the body until the proxy closes. Bytes after a 200 stay in the socket.
 */
export function connectVia(proxy: { host: string; port: number; localAddress?: string }, request: string): Promise<TunnelReply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: proxy.host, port: proxy.port, allowHalfOpen: true, ...(proxy.localAddress ? { localAddress: proxy.localAddress } : {}) });
    let buf = Buffer.alloc(0);
    socket.once('error', reject);
    socket.write(request);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.pause();
      const head = buf.subarray(0, end).toString('latin1');
      const rest = buf.subarray(end + 4);
      const [statusLine = '', ...lines] = head.split('\r\n');
      const status = Number(statusLine.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const c = l.indexOf(':');
        headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
      }
      socket.off('error', reject);
      if (status === 200) {
        if (rest.length) socket.unshift(rest);
        resolve({ status, head, headers, body: '', socket });
        return;
      }
      const body: Buffer[] = [rest];
      socket.on('data', (c: Buffer) => body.push(c));
      socket.on('error', () => {});
      socket.once('close', () => resolve({ status, head, headers, body: Buffer.concat(body).toString('utf8'), socket }));
      socket.resume();
      socket.end();
    };
    socket.on('data', onData);
  });
}

/** `CONNECT host:port HTTP/1.1` with a Host field. */
export function connectRequest(host: string, port: number): string {
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`;
}

/** Writes `payload`, half-closes, and resolves with everything read until the peer's FIN. */
export function echoRoundTrip(socket: Socket, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const got: Buffer[] = [];
    socket.on('data', (c: Buffer) => got.push(c));
    socket.once('error', reject);
    socket.once('end', () => resolve(Buffer.concat(got).toString('utf8')));
    socket.resume();
    socket.end(payload);
  });
}

/** Number of TCP handles this process holds (sockets and servers): the leak check. */
export function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TCPServerWrap').length;
}

/** Waits until `f()` is true, polling; throws with `what` after `ms`. */
export async function until(f: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
