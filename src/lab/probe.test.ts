/**
 * The TCP flow client on loopback (its namespace-less mode; in the lab it runs the same script
 * through `ip netns exec`): an echo server echoes every flow, each from its own source port; a
 * closed port is refused; a server that never answers times out; one that answers something else
 * is a wrong reply. And the one-line summary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { summarizeFlows, tcpFlows } from './probe.ts';

async function listen(onConn: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

async function close(x: { server: Server; sockets: Socket[] }): Promise<void> {
  for (const s of x.sockets) s.destroy();
  await new Promise<void>((r) => x.server.close(() => r()));
}

test('echoed, refused, timeout and wrong reply, each flow from its own source port', async () => {
  const echo = await listen((s) => s.pipe(s));
  const silent = await listen(() => {});
  const liar = await listen((s) => s.end('something else'));
  const closed = await listen(() => {});
  await close(closed);
  try {
    const ok = await tcpFlows({ ns: null, host: '127.0.0.1', port: echo.port, payloads: ['a', 'b', 'c'], timeoutMs: 2000 });
    assert.deepEqual(ok.map((f) => [f.payload, f.outcome]), [['a', 'echoed'], ['b', 'echoed'], ['c', 'echoed']]);
    assert.equal(new Set(ok.map((f) => f.localPort)).size, 3);
    assert.equal(summarizeFlows(ok), '3/3 echoed');
    const refused = await tcpFlows({ ns: null, host: '127.0.0.1', port: closed.port, payloads: ['x'], timeoutMs: 2000 });
    assert.deepEqual(refused.map((f) => [f.outcome, f.code]), [['refused', 'ECONNREFUSED']]);
    const quiet = await tcpFlows({ ns: null, host: '127.0.0.1', port: silent.port, payloads: ['x', 'y'], timeoutMs: 300 });
    assert.deepEqual(quiet.map((f) => f.outcome), ['timeout', 'timeout']);
    assert.ok(quiet.every((f) => f.ms >= 290));
    const wrong = await tcpFlows({ ns: null, host: '127.0.0.1', port: liar.port, payloads: ['x'], timeoutMs: 2000 });
    assert.deepEqual(wrong.map((f) => f.outcome), ['wrong-reply']);
    assert.equal(summarizeFlows([...ok, ...quiet, ...refused]), '3/6 echoed (2 timeout, 1 refused)');
  } finally {
    await close(echo);
    await close(silent);
    await close(liar);
  }
});
