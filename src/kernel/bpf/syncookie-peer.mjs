/* global setTimeout, clearTimeout */
// Traffic peer for the SYN-flood test and bench, run inside a test namespace with
// `ip netns exec NS node syncookie-peer.mjs …` (plain JavaScript: no loader needed in the namespace).
//   server PORT            TCP echo on PORT; prints "ready"; on stdin "report" prints "accepted N".
//   clients HOST PORT MS EVERY_MS TIMEOUT_MS
//                          keeps one connection open for MS milliseconds (echo checked at the start
//                          and at the end) and opens a new connection every EVERY_MS, each one
//                          connect → "ping" → echo → close within TIMEOUT_MS; prints one JSON line:
//                          { attempts, ok, failed, errors, latenciesMs, longLived }.
import net from 'node:net';
import readline from 'node:readline';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'server') {
  let accepted = 0;
  const srv = net.createServer((s) => {
    accepted++;
    s.on('data', (d) => s.write(d));
    s.on('error', () => {});
  });
  srv.listen({ port: Number(args[0]), host: '::', backlog: 4096 }, () => console.log('ready'));
  readline.createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() === 'report') console.log(`accepted ${accepted}`);
  });
  process.stdin.on('end', () => process.exit(0));
} else if (mode === 'clients') {
  const [host, port, ms, every, timeout] = args.map((a, i) => (i === 0 ? a : Number(a)));
  const errors = {};
  const latencies = [];
  let attempts = 0;
  let ok = 0;
  let failed = 0;

  /** One echo round trip on a connected socket. */
  const echo = (s, text, limit) =>
    new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), limit);
      s.once('data', (d) => {
        clearTimeout(t);
        resolve(d.toString() === text);
      });
      s.write(text);
    });

  /** connect → ping → echo → close; resolves with the latency in ms or an error code. */
  const once = () =>
    new Promise((resolve) => {
      const start = process.hrtime.bigint();
      const s = net.connect({ host, port });
      const t = setTimeout(() => {
        s.destroy();
        resolve({ error: 'timeout' });
      }, timeout);
      s.on('error', (e) => {
        clearTimeout(t);
        s.destroy();
        resolve({ error: e.code ?? 'error' });
      });
      s.on('connect', async () => {
        const good = await echo(s, 'ping', timeout);
        clearTimeout(t);
        s.destroy();
        resolve(good ? { ms: Number(process.hrtime.bigint() - start) / 1e6 } : { error: 'no-echo' });
      });
    });

  const longLived = { opened: false, echoAtStart: false, echoAtEnd: false, closedEarly: false };
  const keeper = net.connect({ host, port });
  keeper.on('error', () => {
    longLived.closedEarly = true;
  });
  keeper.on('close', () => {
    longLived.closedEarly = true;
  });
  keeper.on('connect', async () => {
    longLived.opened = true;
    longLived.echoAtStart = await echo(keeper, 'start', timeout);
  });

  const pending = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    attempts++;
    pending.push(
      once().then((r) => {
        if (r.ms !== undefined) {
          ok++;
          latencies.push(Math.round(r.ms * 1000) / 1000);
        } else {
          failed++;
          errors[r.error] = (errors[r.error] ?? 0) + 1;
        }
      }),
    );
    await new Promise((r) => setTimeout(r, every));
  }
  await Promise.all(pending);
  if (longLived.opened && !longLived.closedEarly) longLived.echoAtEnd = await echo(keeper, 'end', timeout);
  keeper.removeAllListeners('close');
  keeper.destroy();
  console.log(JSON.stringify({ attempts, ok, failed, errors, latenciesMs: latencies, longLived }));
  process.exit(0);
} else {
  console.error(`usage: syncookie-peer.mjs server PORT | clients HOST PORT MS EVERY_MS TIMEOUT_MS (got ${mode})`);
  process.exit(2);
}
