/**
 * The proxy end to end on loopback: eyeball sockets → ProxyServer → echo server, with egress
 * addresses from 127.0.0.0/8 (all on lo, no root needed). The real-kernel NAT is in
 * server.linux.test.ts.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { err, ok } from '../lib/result.ts';
import type { EgressAddress } from './egress-address.ts';
import { GeoTable, parseGeofeed } from './geoip.ts';
import { ProxyServer, type ProxyEvent, type ProxyOptions } from './server.ts';
import { connectRequest, connectVia, echoRoundTrip, echoServer, tcpHandles, until, type EchoServer, type TunnelReply } from './testkit.ts';

function geo(csv: string, def: string | null = null): GeoTable {
  const rows = parseGeofeed(csv);
  if (!rows.ok) throw new Error('bad test geofeed');
  return new GeoTable(rows.value, def);
}

function addr(ip: string, country: string, sliceSize: number, cls: 'trusted' | 'untrusted' = 'trusted'): EgressAddress {
  return { ip, family: 4, pool: `${cls}-${country}`, class: cls, country, portLo: sliceSize, portHi: 2 * sliceSize - 1, sliceSize };
}

let echo: EchoServer;
let baseline: number;

before(async () => {
  baseline = tcpHandles();
  echo = await echoServer();
});

after(async () => {
  await echo.close();
});

async function withProxy(o: Partial<ProxyOptions> & Pick<ProxyOptions, 'addresses'>, body: (p: ProxyServer, at: { host: string; port: number }, events: ProxyEvent[]) => Promise<void>): Promise<void> {
  const events: ProxyEvent[] = [];
  // No TIME_WAIT accounting unless a test asks: loopback has no NAT holding ports.
  const p = new ProxyServer({ class: 'trusted', geo: geo('127.0.0.0/8,NL\n'), log: (e) => events.push(e), timeWaitMs: 0, ...o });
  const port = await p.listen('127.0.0.1', 0);
  try {
    await body(p, { host: '127.0.0.1', port }, events);
  } finally {
    await p.close();
  }
}

test('200 concurrent tunnels echo correctly, leave from the egress addresses, and leave no socket open', async () => {
  const addresses = [addr('127.0.0.2', 'NL', 2048), addr('127.0.0.3', 'NL', 2048), addr('127.0.0.4', 'US', 2048)];
  await withProxy({ addresses: () => addresses }, async (p, at) => {
    const peersBefore = echo.peers.length;
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const r = await connectVia(at, connectRequest('127.0.0.1', echo.port));
        assert.equal(r.status, 200, r.head);
        const payload = `tunnel ${i} ${'x'.repeat(i * 37)}`;
        return { payload, echoed: await echoRoundTrip(r.socket, payload), egress: r.headers['anyedge-egress-ip'] };
      }),
    );
    for (const r of results) assert.equal(r.echoed, r.payload);
    const seen = echo.peers.slice(peersBefore).map((x) => x.split(':')[0]);
    assert.equal(seen.length, 200);
    // Only NL addresses, spread over both (most free capacity first: they alternate).
    assert.deepEqual([...new Set(seen)].sort(), ['127.0.0.2', '127.0.0.3']);
    assert.deepEqual([...new Set(results.map((r) => r.egress))].sort(), ['127.0.0.2', '127.0.0.3']);
    await until(() => p.stats().tunnels === 0 && p.stats().clients === 0 && p.stats().upstreams === 0, `the proxy to drop every socket (${JSON.stringify(p.stats())})`);
    await until(async () => (await echo.connections()) === 0, 'the echo server to see every tunnel closed');
    assert.equal(p.ledger.live('127.0.0.2') + p.ledger.live('127.0.0.3'), 0);
    const metrics = await p.metrics.registry.metrics();
    assert.match(metrics, /anyedge_proxy_requests_total\{result="tunnel"\} 200/);
  });
  await until(() => tcpHandles() === baseline + 1, `TCP handles back to the baseline plus the echo server (now ${tcpHandles()}, baseline ${baseline})`);
});

test('bytes sent right behind the request head go through, and half-close works both ways', async () => {
  await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 2048)] }, async (p, at) => {
    const r = await connectVia(at, connectRequest('127.0.0.1', echo.port) + 'early bytes|');
    assert.equal(r.status, 200);
    // Our FIN reaches the echo server, which then ends its side: we read everything, then end.
    assert.equal(await echoRoundTrip(r.socket, 'after the 200'), 'early bytes|after the 200');
    await until(() => p.stats().tunnels === 0, 'the tunnel to close');
    // Request, data and FIN at once, before any reply: all of it reaches the destination.
    const raw = await new Promise<string>((resolve) => {
      const s = new Socket({ allowHalfOpen: true });
      const got: Buffer[] = [];
      s.on('data', (c: Buffer) => got.push(c));
      s.once('end', () => resolve(Buffer.concat(got).toString()));
      s.connect(at.port, at.host, () => s.end(connectRequest('127.0.0.1', echo.port) + 'then FIN'));
    });
    assert.match(raw, /^HTTP\/1.1 200 Connection established\r\n[\s\S]*\r\n\r\nthen FIN$/);
    await until(() => p.stats().tunnels === 0, 'the tunnel to close');
  });
});

async function refusal(at: { host: string; port: number }, request: string): Promise<TunnelReply> {
  const r = await connectVia(at, request);
  assert.notEqual(r.status, 200, `expected a refusal of ${JSON.stringify(request)}`);
  return r;
}

test('malformed requests and other methods are refused over the wire with a reason body', async () => {
  await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 2048)] }, async (p, at) => {
    const get = await refusal(at, 'GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'CONNECT');
    assert.match(get.body, /only opens tunnels with CONNECT/);
    const bad = await refusal(at, 'CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n');
    assert.equal(bad.status, 400);
    assert.match(bad.body, /the port is missing/);
    assert.equal(bad.headers['content-length'], String(Buffer.byteLength(bad.body)));
    const big = await refusal(at, `CONNECT 127.0.0.1:1 HTTP/1.1\r\nX: ${'a'.repeat(9000)}\r\n\r\n`);
    assert.equal(big.status, 431);
    await until(() => p.stats().clients === 0, 'refused clients closed');
    const m = await p.metrics.registry.metrics();
    assert.match(m, /anyedge_proxy_requests_total\{result="method"\} 1/);
    assert.match(m, /anyedge_proxy_requests_total\{result="bad_request"\} 1/);
    assert.match(m, /anyedge_proxy_requests_total\{result="too_large"\} 1/);
  });
});

test('a head that does not arrive in time is 408, a head cut by FIN is 400', async () => {
  await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 2048)], headTimeoutMs: 200 }, async (p, at) => {
    const slow = await refusal(at, 'CONNECT 127.0.0.1:1 HTTP/1.1\r\n');
    assert.equal(slow.status, 408);
    assert.match(slow.body, /did not arrive within 200 ms/);
    const cut = await new Promise<string>((resolve) => {
      const s = new Socket({ allowHalfOpen: true });
      const got: Buffer[] = [];
      s.on('data', (c: Buffer) => got.push(c));
      s.once('close', () => resolve(Buffer.concat(got).toString()));
      s.connect(at.port, at.host, () => s.end('CONNECT 127.0.0.1:1 HTTP/1.1\r\n'));
    });
    assert.match(cut, /^HTTP\/1.1 400 Bad Request\r\n[\s\S]*half-closed before the request head was complete/);
    await until(() => p.stats().clients === 0, 'clients closed');
  });
});

test('an eyeball outside the GeoIP table is 403 without a default country; with one it is served', async () => {
  await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 2048)], geo: geo('192.0.2.0/24,NL\n') }, async (_p, at) => {
    const r = await refusal(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(r.status, 403);
    assert.match(r.body, /eyeball 127\.0\.0\.1 is in no prefix of the GeoIP table.*--default-country/);
  });
  await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 2048)], geo: geo('192.0.2.0/24,US\n', 'NL') }, async (_p, at) => {
    const r = await connectVia(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(r.status, 200);
    assert.equal(await echoRoundTrip(r.socket, 'hi'), 'hi');
  });
});

test('no address of the class or country is 503 naming what is missing; the fallback country is used and announced', async () => {
  const addresses = [addr('127.0.0.2', 'US', 2048), addr('127.0.0.4', 'NL', 2048, 'untrusted')];
  await withProxy({ addresses: () => addresses }, async (_p, at) => {
    const r = await refusal(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(r.status, 503);
    assert.match(r.body, /no trusted IPv4 egress address in NL on this server \(it has trusted addresses in US\)/);
    const v6 = await refusal(at, connectRequest('::1', echo.port));
    assert.equal(v6.status, 503);
    assert.match(v6.body, /no trusted IPv6 egress address is assigned to this server/);
  });
  await withProxy({ addresses: () => addresses, fallbackCountry: 'US' }, async (_p, at, events) => {
    const r = await connectVia(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(r.status, 200);
    assert.equal(r.headers['anyedge-egress-ip'], '127.0.0.2');
    assert.equal(r.headers['anyedge-egress-country'], 'US');
    assert.match(r.headers['anyedge-egress-fallback'] ?? '', /no trusted IPv4 egress address in NL on this server; leaving from the fallback country US/);
    assert.equal(await echoRoundTrip(r.socket, 'x'), 'x');
    assert.ok(events.some((e) => e.event === 'fallback'));
  });
});

test('a slice holds sliceSize tunnels to one destination; then the next address; all full is 503 naming tags, destination and slices', async () => {
  const addresses = [addr('127.0.0.2', 'NL', 64), addr('127.0.0.3', 'NL', 64)];
  await withProxy({ addresses: () => addresses }, async (p, at) => {
    const open: TunnelReply[] = [];
    for (let i = 0; i < 128; i++) {
      const r = await connectVia(at, connectRequest('127.0.0.1', echo.port));
      assert.equal(r.status, 200, `tunnel ${i}: ${r.body}`);
      open.push(r);
    }
    assert.equal(p.ledger.liveTo('127.0.0.2', { ip: '127.0.0.1', port: echo.port }), 64);
    assert.equal(p.ledger.liveTo('127.0.0.3', { ip: '127.0.0.1', port: echo.port }), 64);
    const full = await refusal(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(full.status, 503);
    assert.equal(
      full.body.trim(),
      `every eligible egress slice is full for class=trusted country=NL IPv4 → 127.0.0.1:${echo.port}: 2 slices tried (127.0.0.2 ports 64–127: 64/64 live to it; 127.0.0.3 ports 64–127: 64/64 live to it); retry when connections to this destination close, or add addresses to a trusted/NL pool`,
    );
    // Another destination (the same host, another port) still has room on the same slices.
    const other = await echoServer();
    try {
      const r = await connectVia(at, connectRequest('127.0.0.1', other.port));
      assert.equal(r.status, 200);
      assert.equal(await echoRoundTrip(r.socket, 'other'), 'other');
    } finally {
      await other.close();
    }
    const m = await p.metrics.registry.metrics();
    assert.match(m, /anyedge_proxy_connections\{egress_ip="127\.0\.0\.2"\} 64/);
    assert.match(m, /anyedge_proxy_slice_usage_ratio\{egress_ip="127\.0\.0\.3"\} 1/);
    // The 128th tunnel found 127.0.0.2 full (64 vs 63) and took 127.0.0.3; the 129th found both.
    assert.match(m, /anyedge_proxy_slice_exhausted_total 3/);
    assert.match(m, /anyedge_proxy_requests_total\{result="exhausted"\} 1/);
    // One closes: that address has room again.
    await echoRoundTrip(open.pop()!.socket, 'bye');
    await until(() => p.ledger.liveTo('127.0.0.3', { ip: '127.0.0.1', port: echo.port }) + p.ledger.liveTo('127.0.0.2', { ip: '127.0.0.1', port: echo.port }) === 127, 'the ledger to count the close');
    const again = await connectVia(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(again.status, 200);
    open.push(again);
    await Promise.all(open.map((r) => echoRoundTrip(r.socket, 'end')));
    await until(() => p.stats().tunnels === 0 && p.ledger.addresses().length === 0, 'every tunnel closed and uncounted');
  });
});

test('the kernel refusing an address (EADDRNOTAVAIL) moves the tunnel to the next one and is counted', async () => {
  // 198.51.100.99 is on no interface of this host: bind() fails before any packet is sent.
  const addresses = [addr('198.51.100.99', 'NL', 64), addr('127.0.0.2', 'NL', 64)];
  await withProxy({ addresses: () => addresses }, async (p, at, events) => {
    // Make 127.0.0.2 the second choice (it carries one connection elsewhere).
    const held = p.ledger.acquire('127.0.0.2', { ip: '127.0.0.9', port: 9 });
    const r = await connectVia(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['anyedge-egress-ip'], '127.0.0.2');
    assert.equal(await echoRoundTrip(r.socket, 'moved'), 'moved');
    const skipped = events.find((e) => e.event === 'egress_skipped');
    assert.equal(skipped?.egress, '198.51.100.99');
    assert.match(String(skipped?.why), /EADDRNOTAVAIL/);
    assert.match(await p.metrics.registry.metrics(), /anyedge_proxy_slice_exhausted_total 1/);
    held.release();
  });
  // Only the refused address: 503 with the kernel's reason in the list.
  await withProxy({ addresses: () => [addr('198.51.100.99', 'NL', 64)] }, async (_p, at) => {
    const r = await refusal(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(r.status, 503);
    assert.match(r.body, /1 slice tried \(198\.51\.100\.99 ports 64–127: the kernel refused the address \(EADDRNOTAVAIL\)\)/);
  });
});

test('upstream refusal is 502; upstream silence on every address is 504; names resolve', async () => {
  const closedPort = await (async () => {
    const e = await echoServer();
    const port = e.port;
    await e.close();
    return port;
  })();
  await withProxy(
    {
      addresses: () => [addr('127.0.0.2', 'NL', 64)],
      resolve: async (host) => (host === 'echo.test' ? ok([{ ip: '127.0.0.1', family: 4 as const }]) : err(`cannot resolve ${host}: ENOTFOUND`)),
    },
    async (_p, at) => {
      const r = await refusal(at, connectRequest('127.0.0.1', closedPort));
      assert.equal(r.status, 502);
      assert.match(r.body, new RegExp(`127\\.0\\.0\\.1:${closedPort} refused the connection \\(ECONNREFUSED\\) from 127\\.0\\.0\\.2`));
      const named = await connectVia(at, connectRequest('echo.test', echo.port));
      assert.equal(named.status, 200);
      assert.equal(await echoRoundTrip(named.socket, 'by name'), 'by name');
      const unknown = await refusal(at, connectRequest('nowhere.test', echo.port));
      assert.equal(unknown.status, 502);
      assert.match(unknown.body, /cannot resolve nowhere\.test: ENOTFOUND/);
    },
  );
  // A dialer whose sockets never connect stands in for a SYN the NAT drops.
  const silent: Socket[] = [];
  await withProxy(
    {
      addresses: () => [addr('127.0.0.2', 'NL', 64), addr('127.0.0.3', 'NL', 64)],
      connectTimeoutMs: 100,
      dial: () => {
        const s = new Socket();
        silent.push(s);
        return s;
      },
    },
    async (p, at) => {
      const r = await refusal(at, connectRequest('127.0.0.1', echo.port));
      assert.equal(r.status, 504);
      assert.match(r.body, /did not answer within 100 ms from any of 2 trusted\/NL egress addresses \(127\.0\.0\.2, 127\.0\.0\.3\)/);
      assert.equal(p.ledger.addresses().length, 0, 'failed dials hold no lease');
    },
  );
  assert.equal(silent.length, 2);
  assert.ok(silent.every((s) => s.destroyed));
});

test('an eyeball leaving during the upstream connect releases everything', async () => {
  await withProxy(
    { addresses: () => [addr('127.0.0.2', 'NL', 64)], connectTimeoutMs: 5000, dial: () => new Socket() },
    async (p, at) => {
      const s = new Socket();
      await new Promise<void>((r) => s.connect(at.port, at.host, () => r()));
      s.write(connectRequest('127.0.0.1', echo.port));
      await until(() => p.ledger.live('127.0.0.2') === 1, 'the dial to start');
      // A reset: a FIN alone would be a half-close the tunnel must carry, not a departure.
      s.resetAndDestroy();
      await until(() => p.ledger.live('127.0.0.2') === 0 && p.stats().clients === 0, 'the lease and the client released');
      assert.match(await p.metrics.registry.metrics(), /anyedge_proxy_requests_total\{result="aborted"\} 1/);
    },
  );
});

test('addresses are read per request: one removed from the list is no longer used', async () => {
  let addresses = [addr('127.0.0.2', 'NL', 64), addr('127.0.0.3', 'NL', 64)];
  await withProxy({ addresses: () => addresses }, async (p, at) => {
    const first = await connectVia(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(first.status, 200);
    const kept = first.headers['anyedge-egress-ip'];
    addresses = addresses.filter((a) => a.ip !== kept);
    const egress = new Set<string | undefined>();
    for (let i = 0; i < 5; i++) {
      const r = await connectVia(at, connectRequest('127.0.0.1', echo.port));
      egress.add(r.headers['anyedge-egress-ip']);
      assert.equal(await echoRoundTrip(r.socket, 'n'), 'n');
    }
    assert.deepEqual([...egress], [addresses[0]!.ip]);
    // The tunnel opened from the removed address is left alone and still works.
    assert.equal(await echoRoundTrip(first.socket, 'still here'), 'still here');
    await until(() => p.stats().tunnels === 0, 'all closed');
  });
});

test('a closed tunnel keeps its port counted towards its destination for the TIME_WAIT time', async () => {
  await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 64)], timeWaitMs: 400 }, async (p, at) => {
    const dst = { ip: '127.0.0.1', port: echo.port };
    const open = await Promise.all(Array.from({ length: 64 }, () => connectVia(at, connectRequest('127.0.0.1', echo.port))));
    assert.ok(open.every((r) => r.status === 200));
    await echoRoundTrip(open.pop()!.socket, 'closing');
    await until(() => p.ledger.liveTo('127.0.0.2', dst) === 63, 'the close to be counted');
    assert.equal(p.ledger.heldTo('127.0.0.2', dst), 64);
    const held = await refusal(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(held.status, 503);
    assert.match(held.body, /127\.0\.0\.2 ports 64–127: 64\/64 taken to it \(63 live, 1 closed less than 400 ms ago, their ports held in TIME_WAIT\)/);
    assert.match(await p.metrics.registry.metrics(), /anyedge_proxy_connections\{egress_ip="127\.0\.0\.2"\} 63/);
    await until(() => p.ledger.heldTo('127.0.0.2', dst) === 63, 'the TIME_WAIT time to pass', 2000);
    const again = await connectVia(at, connectRequest('127.0.0.1', echo.port));
    assert.equal(again.status, 200);
    open.push(again);
    await Promise.all(open.map((r) => echoRoundTrip(r.socket, 'end')));
    await until(() => p.stats().tunnels === 0, 'all closed');
  });
});

test('IPv6: an egress address without slices carries a tunnel to an IPv6 destination', async () => {
  const e6 = await echoServer('::1');
  try {
    const v6: EgressAddress = { ip: '::1', family: 6, pool: 'v6', class: 'trusted', country: 'NL', portLo: 1024, portHi: 65535, sliceSize: null };
    await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 64), v6] }, async (p, at) => {
      const r = await connectVia(at, connectRequest('::1', e6.port));
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers['anyedge-egress-ip'], '::1');
      assert.equal(await echoRoundTrip(r.socket, 'six'), 'six');
      assert.equal(e6.peers[0]?.startsWith('::1:'), true);
      const m = await p.metrics.registry.metrics();
      assert.match(m, /anyedge_proxy_slice_usage_ratio\{egress_ip="::1"\} 0/);
    });
  } finally {
    await e6.close();
  }
});

test('a reset on the upstream side closes the tunnel and releases everything; an idle tunnel is closed after idleTimeoutMs', async () => {
  const { createServer } = await import('node:net');
  const resetter = createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.resetAndDestroy());
  });
  await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', () => r()));
  const port = (resetter.address() as { port: number }).port;
  try {
    await withProxy({ addresses: () => [addr('127.0.0.2', 'NL', 64)], idleTimeoutMs: 150 }, async (p, at) => {
      const r = await connectVia(at, connectRequest('127.0.0.1', port));
      assert.equal(r.status, 200);
      // The eyeball socket is half-open capable: the proxy's FIN shows as 'end', a reset as 'close'.
      const closed = new Promise<void>((res) => {
        r.socket.once('end', () => res());
        r.socket.once('close', () => res());
      });
      r.socket.on('error', () => {});
      r.socket.resume();
      r.socket.write('boom');
      await closed;
      await until(() => p.stats().tunnels === 0 && p.stats().upstreams === 0 && p.stats().clients === 0 && p.ledger.live('127.0.0.2') === 0, 'the reset tunnel released');

      const idle = await connectVia(at, connectRequest('127.0.0.1', echo.port));
      assert.equal(idle.status, 200);
      const t0 = Date.now();
      await new Promise<void>((res) => {
        idle.socket.on('error', () => {});
        idle.socket.resume();
        idle.socket.once('end', () => res());
        idle.socket.once('close', () => res());
      });
      assert.ok(Date.now() - t0 >= 100, `closed after ${Date.now() - t0} ms, before the idle timeout`);
      await until(() => p.stats().tunnels === 0, 'the idle tunnel released');
      r.socket.destroy();
      idle.socket.destroy();
    });
  } finally {
    await new Promise<void>((r) => resetter.close(() => r()));
  }
});
