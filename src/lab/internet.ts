/**
 * The Internet host's services, the destinations of proxied egress: an HTTP server that answers
 * every request with the client address and port it saw (so a test learns, per connection, which
 * egress address and source port the platform used) and a TCP echo service (long-lived
 * connections that must survive a drain or an egress address moving). Each accepted connection
 * is logged as one JSON line `{"svc","peer","port","path"?}`.
 *
 * It runs as a Node one-liner in the Internet host's namespace (no file to install): `lab up`
 * starts it like the customers' echo services.
 */
import type { LabInternet } from './topology.ts';

/** The JavaScript source of the Internet host's server (for `node -e`). */
export function internetServerScript(i: Pick<LabInternet, 'ip' | 'httpPort' | 'echoPort'>): string {
  const ip = JSON.stringify(i.ip);
  return [
    "const net=require('net'),http=require('http');",
    'const log=(o)=>process.stdout.write(JSON.stringify(o)+"\\n");',
    // Kept alive for ten minutes: a test holds its tunnels open after the answer, to look at the
    // servers' sockets while they are.
    `const h=http.createServer((q,r)=>{const peer=q.socket.remoteAddress,port=q.socket.remotePort;log({svc:'http',peer,port,path:q.url});r.end(JSON.stringify({peer,port,path:q.url})+"\\n")});h.keepAliveTimeout=600000;`,
    `const e=net.createServer(s=>{log({svc:'echo',peer:s.remoteAddress,port:s.remotePort});s.on('error',()=>{});s.pipe(s)});`,
    // Many eyeballs' connections at once: a deep accept backlog.
    `let up=0;const ready=()=>{if(++up===2)console.log('listening')};`,
    `h.listen({host:${ip},port:${i.httpPort},backlog:4096},ready);e.listen({host:${ip},port:${i.echoPort},backlog:4096},ready);`,
  ].join('');
}
