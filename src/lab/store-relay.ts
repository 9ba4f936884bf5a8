/**
 * Lets processes inside the servers' namespaces reach the lab's etcd, which listens on the host's
 * 127.0.0.1 only (etcd is never exposed beyond loopback). The egress proxies must run inside a
 * server's namespace (they listen on its service address and bind its egress addresses), where
 * 127.0.0.1 is the namespace's own loopback; the agents do not need this, they run in the host's
 * namespace and enter the server's only for kernel work.
 *
 * One relay process per lab, in the host's namespace: for each server it starts a short-lived
 * child inside the server's namespace that opens a listening socket on that namespace's
 * 127.0.0.1:<etcd port> and hands the socket to the relay over the IPC channel (Node passes the
 * descriptor); a socket keeps the namespace it was made in, so the relay accepts connections made
 * inside the server's namespace and connects each to the real etcd on the host's loopback. The
 * proxies then use the same store spec as everything else.
 */

/** The relay's JavaScript source (for `node -e`); argv: JSON {port, namespaces}. */
export const STORE_RELAY_SCRIPT = String.raw`
const cp = require('child_process'), net = require('net');
const o = JSON.parse(process.argv[1]);
const CHILD = "const s=require('net').createServer();s.listen({host:'127.0.0.1',port:" + o.port + "},()=>process.send('server',s,()=>process.exit(0)));s.on('error',e=>{console.error(e.message);process.exit(1)})";
let ready = 0;
for (const ns of o.namespaces) {
  const c = cp.spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CHILD], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  c.on('message', (m, server) => {
    if (m !== 'server' || !server) return;
    server.on('connection', (s) => {
      const up = net.connect({ host: '127.0.0.1', port: o.port });
      s.on('error', () => up.destroy());
      up.on('error', () => s.destroy());
      s.pipe(up).pipe(s);
    });
    if (++ready === o.namespaces.length) console.log('relaying');
  });
  c.on('exit', (code) => { if (code) { console.error('relay child in ' + ns + ' exited ' + code); process.exit(1); } });
}
`;
