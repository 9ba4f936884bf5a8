/* global setTimeout, clearTimeout */
// Test helper for agent/egress.linux.test.ts, run inside a test namespace.
//   server PORT            listen on 0.0.0.0:PORT; answer each connection with "<ip>:<port>\n"
//                          (the source it sees) and keep it open; prints "ready" when listening
//   client SRC PORT TIMEOUT_MS DST...   one connection from SRC to each DST:PORT at once, all
//                          held open until every one answered or failed; prints JSON
//                          { seen: ["ip:port", …], failed: n }
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    s.write(`${s.remoteAddress}:${s.remotePort}\n`);
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
} else {
  process.stderr.write('usage: egress-conns.mjs server PORT | client SRC PORT TIMEOUT_MS DST...\n');
  process.exit(2);
}
