/* global setTimeout, clearTimeout, Buffer */
// Test peers for proxy/server.linux.test.ts, each run inside a test namespace.
//   server PORT   listen on 0.0.0.0:PORT; tell each connection "<ip>:<port>\n" (the source it sees,
//                 i.e. the egress address and NAT port), then echo; prints "ready" when listening
//   eyeball       JSON commands on stdin, one per line, answered on stdout by id:
//     {"op":"open","id":1,"proxy":"198.51.100.2:3128","src":"192.0.2.10","target":"203.0.113.1:7007","timeoutMs":5000}
//        → {"id":1,"status":200,"egress":"198.51.100.64","seen":"198.51.100.64:70"} or {"id":1,"status":503,"body":"…"}
//     {"op":"echo","id":1,"text":"hi","timeoutMs":2000} → {"id":1,"echo":"hi"} or {"id":1,"error":"timeout"}
//     {"op":"close","id":1}                             → {"id":1,"closed":true}
//   dial SRC DST PORT TIMEOUT_MS   one direct connection from SRC (no proxy); prints {"seen":"ip:port"}
//                 or {"error":"timeout"} — what the kernel's NAT alone allows
import net from 'node:net';
import readline from 'node:readline';

const [mode, ...args] = process.argv.slice(2);

function lineReader(socket, onLine) {
  let buf = '';
  const onData = (d) => {
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      onLine(line);
    }
  };
  socket.on('data', onData);
  return () => socket.off('data', onData);
}

if (mode === 'server') {
  const srv = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => s.destroy());
    s.write(`${s.remoteAddress}:${s.remotePort}\n`);
    s.pipe(s);
  });
  srv.listen(Number(args[0]), '0.0.0.0', () => process.stdout.write('ready\n'));
} else if (mode === 'eyeball') {
  const sockets = new Map();
  const reply = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  const open = (c) => {
    const [host, port] = c.proxy.split(':');
    const s = net.connect({ host, port: Number(port), localAddress: c.src, allowHalfOpen: true });
    sockets.set(c.id, s);
    let head = Buffer.alloc(0);
    let done = false;
    const finish = (o) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reply({ id: c.id, ...o });
    };
    const timer = setTimeout(() => finish({ status: 0, error: 'timeout' }), c.timeoutMs ?? 5000);
    s.on('error', (e) => finish({ status: 0, error: e.code ?? e.message }));
    s.write(`CONNECT ${c.target} HTTP/1.1\r\nHost: ${c.target}\r\n\r\n`);
    const onHead = (d) => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onHead);
      const text = head.subarray(0, end).toString('latin1');
      const rest = head.subarray(end + 4);
      const status = Number(text.split(' ')[1]);
      const egress = /anyedge-egress-ip: (\S+)/i.exec(text)?.[1] ?? null;
      if (status !== 200) {
        let body = rest.toString();
        s.on('data', (x) => (body += x.toString()));
        s.on('close', () => finish({ status, body: body.trim() }));
        s.end();
        return;
      }
      // The far end's first line: the source address and port it saw.
      const stop = lineReader(s, (line) => {
        stop();
        finish({ status, egress, seen: line });
      });
      if (rest.length) s.emit('data', rest);
    };
    s.on('data', onHead);
  };
  const echo = (c) => {
    const s = sockets.get(c.id);
    if (!s) return reply({ id: c.id, error: 'no such tunnel' });
    const timer = setTimeout(() => {
      stop();
      reply({ id: c.id, error: 'timeout' });
    }, c.timeoutMs ?? 2000);
    const stop = lineReader(s, (line) => {
      if (line !== c.text) return;
      clearTimeout(timer);
      stop();
      reply({ id: c.id, echo: line });
    });
    s.write(c.text + '\n');
  };
  const close = (c) => {
    const s = sockets.get(c.id);
    if (!s) return reply({ id: c.id, closed: true });
    sockets.delete(c.id);
    if (s.destroyed) return reply({ id: c.id, closed: true });
    s.once('close', () => reply({ id: c.id, closed: true }));
    s.resume();
    s.end();
    // A tunnel whose far side is gone never sends its FIN back: cut it after a while.
    setTimeout(() => s.destroy(), c.timeoutMs ?? 2000).unref();
  };
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === '') return;
    const c = JSON.parse(line);
    if (c.op === 'open') open(c);
    else if (c.op === 'echo') echo(c);
    else if (c.op === 'close') close(c);
  });
  process.stdin.on('end', () => process.exit(0));
  reply({ ready: true });
} else if (mode === 'dial') {
  const [src, dst, port, timeout] = args;
  const s = net.connect({ host: dst, port: Number(port), localAddress: src });
  const done = (o) => {
    process.stdout.write(JSON.stringify(o) + '\n');
    s.destroy();
    process.exit(0);
  };
  setTimeout(() => done({ error: 'timeout' }), Number(timeout));
  s.on('error', (e) => done({ error: e.code ?? e.message }));
  lineReader(s, (line) => done({ seen: line }));
} else {
  process.stderr.write('usage: peer.mjs server PORT | eyeball | dial SRC DST PORT TIMEOUT_MS\n');
  process.exit(2);
}
