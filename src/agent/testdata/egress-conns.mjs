/* global setTimeout, clearTimeout */
// Test helper for agent/egress.linux.test.ts, run inside a test namespace.
//   server PORT            listen on 0.0.0.0:PORT; answer each connection with "<ip>:<port>\n"
//                          (the source it sees) and keep it open; prints "ready" when listening
//                          and echoes whatever comes after
//   client SRC PORT TIMEOUT_MS DST...   one connection from SRC to each DST:PORT at once, all
//                          held open until every one answered or failed; prints JSON
//                          { seen: ["ip:port", …], failed: n }
//   hold SRC PORT DST      one connection, kept open: prints the greeting line, then for each
//                          "send" on stdin writes a line and prints "echo", "silent" (nothing
//                          back within 1.5 s) or "error CODE"; exits when stdin ends
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.write(`${s.remoteAddress}:${s.remotePort}\n`);
    s.on('data', (d) => s.write(d));
  });
  srv.listen(Number(args[0]), '0.0.0.0', () => process.stdout.write('ready\n'));
} else if (mode === 'client') {
  const [src, port, timeout, ...dsts] = args;
  const socks = [];
  const results = await Promise.all(
    dsts.map(
      (dst) =>
        new Promise((resolve) => {
          const s = net.connect({ host: dst, port: Number(port), localAddress: src });
          socks.push(s);
          let buf = '';
          const t = setTimeout(() => resolve(null), Number(timeout));
          s.on('data', (d) => {
            buf += d;
            if (buf.includes('\n')) {
              clearTimeout(t);
              resolve(buf.trim());
            }
          });
          s.on('error', () => {
            clearTimeout(t);
            resolve(null);
          });
        }),
    ),
  );
  for (const s of socks) s.destroy();
  process.stdout.write(JSON.stringify({ seen: results.filter((r) => r !== null), failed: results.filter((r) => r === null).length }) + '\n');
} else if (mode === 'hold') {
  const [src, port, dst] = args;
  const s = net.connect({ host: dst, port: Number(port), localAddress: src });
  let greeted = false;
  let waiting = null;
  let failure = null;
  s.on('error', (e) => {
    failure = e.code ?? 'error';
    if (waiting) waiting(`error ${failure}`);
  });
  s.on('data', (d) => {
    if (!greeted) {
      greeted = true;
      process.stdout.write(String(d).split('\n')[0] + '\n');
      return;
    }
    if (waiting) waiting('echo');
  });
  const lines = (await import('node:readline')).createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (line !== 'send') continue;
    if (failure) {
      process.stdout.write(`error ${failure}\n`);
      continue;
    }
    const answer = await new Promise((resolve) => {
      const t = setTimeout(() => resolve('silent'), 1500);
      waiting = (what) => {
        clearTimeout(t);
        resolve(what);
      };
      s.write('x\n');
    });
    waiting = null;
    process.stdout.write(answer + '\n');
  }
  s.destroy();
} else {
  process.stderr.write('usage: egress-conns.mjs server PORT | client SRC PORT TIMEOUT_MS DST... | hold SRC PORT DST\n');
  process.exit(2);
}
