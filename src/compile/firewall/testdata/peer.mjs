/* global setTimeout, clearTimeout, setImmediate */
// Traffic peer for the kernel tests, run inside a test namespace with `ip netns exec NS node peer.mjs …`.
//   server PORT…        TCP echo on each port, UDP echo on 7, UDP count on 9; prints "ready";
//                       on stdin "report" prints "discard N" (datagrams received on UDP 9).
//   tcp HOST PORT MS    one connection: prints "open" when "hi" comes back, "timeout" or "error CODE".
//   udp HOST PORT N MS  N datagrams one after another, each waiting up to MS for its echo; prints the echo count.
//   flood HOST PORT MS  sends datagrams as fast as it can for MS milliseconds; prints how many.
//   forward             turns on IPv4 and IPv6 forwarding in the namespace it runs in (net sysctls
//                       belong to the namespace of the process that writes them), so the tests need no sysctl tool.
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import dgram from 'node:dgram';
import readline from 'node:readline';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'server') {
  let discard = 0;
  const ports = args.map(Number);
  let pending = ports.length + 2;
  const up = () => {
    if (--pending === 0) console.log('ready');
  };
  for (const port of ports) {
    const srv = net.createServer((s) => {
      s.on('data', (d) => s.write(d));
      s.on('error', () => {});
    });
    srv.listen({ port, host: '::' }, up);
  }
  const echo = dgram.createSocket({ type: 'udp6' });
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  echo.bind(7, '::', up);
  const sink = dgram.createSocket({ type: 'udp6' });
  sink.on('message', () => discard++);
  sink.bind(9, '::', up);
  readline.createInterface({ input: process.stdin }).on('line', (l) => {
    if (l.trim() === 'report') console.log(`discard ${discard}`);
  });
  process.stdin.on('end', () => process.exit(0));
} else if (mode === 'tcp') {
  const [host, port, ms] = args;
  const s = net.connect({ host, port: Number(port) });
  const timer = setTimeout(() => {
    console.log('timeout');
    process.exit(0);
  }, Number(ms));
  s.on('connect', () => s.write('hi'));
  s.on('data', (d) => {
    if (d.toString() === 'hi') {
      clearTimeout(timer);
      console.log('open');
      s.end();
      s.on('close', () => process.exit(0));
    }
  });
  s.on('error', (e) => {
    clearTimeout(timer);
    console.log(`error ${e.code}`);
    process.exit(0);
  });
} else if (mode === 'udp') {
  const [host, port, n, ms] = args;
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  let got = 0;
  let sent = 0;
  let timer;
  const next = () => {
    clearTimeout(timer);
    if (sent === Number(n)) {
      console.log(String(got));
      process.exit(0);
    }
    sock.send(`x${sent++}`, Number(port), host);
    timer = setTimeout(next, Number(ms));
  };
  sock.on('message', () => {
    got++;
    next();
  });
  next();
} else if (mode === 'flood') {
  const [host, port, ms] = args;
  const sock = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  const end = Date.now() + Number(ms);
  let sent = 0;
  const burst = () => {
    if (Date.now() >= end) {
      console.log(String(sent));
      process.exit(0);
    }
    let inflight = 0;
    for (let i = 0; i < 50; i++) {
      inflight++;
      sock.send('x', Number(port), host, () => {
        sent++;
        if (--inflight === 0) setImmediate(burst);
      });
    }
  };
  burst();
} else if (mode === 'forward') {
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  writeFileSync('/proc/sys/net/ipv6/conf/all/forwarding', '1');
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
