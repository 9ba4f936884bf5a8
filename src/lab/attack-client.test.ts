/**
 * The legitimate client on loopback (no namespace): against an echo server every new connection
 * is echoed and the long connection survives; a server that cuts connections breaks the long
 * one; a closed port makes every new connection fail as refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { runLegitClient, successRate } from './attack-client.ts';

async function listen(onConn: (s: Socket) => void): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

const opts = { ns: null, host: '127.0.0.1', seconds: 1.5, newEveryMs: 100, lineEveryMs: 50, timeoutMs: 1000 } as const;

test('against an echo service: every new connection echoed, the long connection survives', async () => {
  const { server, port } = await listen((s) => s.pipe(s));
  try {
    const r = await runLegitClient({ ...opts, port }).done;
    assert.ok(r.short.attempted >= 10 && r.short.attempted <= 16, `about 15 attempts in 1.5 s: ${r.short.attempted}`);
    assert.equal(r.short.echoed, r.short.attempted, JSON.stringify(r.short));
    assert.equal(successRate(r), 1);
    assert.ok(r.long.connected && r.long.survived, JSON.stringify(r.long));
    assert.ok(r.long.sent >= 20 && r.long.echoed === r.long.sent, JSON.stringify(r.long));
  } finally {
    server.close();
  }
});

test('a server that resets its connections after a moment breaks the long connection', async () => {
  const { server, port, sockets } = await listen((s) => s.pipe(s));
  const cut = setTimeout(() => {
    for (const s of sockets) s.resetAndDestroy();
  }, 500);
  try {
    const r = await runLegitClient({ ...opts, port }).done;
    assert.equal(r.long.survived, false);
    assert.ok(r.long.error, JSON.stringify(r.long));
  } finally {
    clearTimeout(cut);
    server.close();
  }
});

test('a closed port: every new connection refused, success rate 0', async () => {
  const { server, port } = await listen(() => {});
  await new Promise<void>((r) => server.close(() => r()));
  const r = await runLegitClient({ ...opts, port, seconds: 0.5 }).done;
  assert.ok(r.short.attempted > 0);
  assert.equal(r.short.echoed, 0);
  assert.equal(r.short.failures.refused, r.short.attempted, JSON.stringify(r.short));
  assert.equal(successRate(r), 0);
  assert.equal(r.long.survived, false);
});
