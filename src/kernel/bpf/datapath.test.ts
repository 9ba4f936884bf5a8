/**
 * The GRE data path in real namespaces, with the compiled programs attached as a server runs them:
 *
 *   eyeball(e) ── server(s) ──veth── tenant(t) ─gre0(tc encap)─► out via t's uplink
 *                    │ up0 (XDP decap)
 *                    └──── customer router(c) ── customer host(h) 203.0.113.100
 *
 * The customer router has no GRE module either, so it terminates the tunnel with the same two
 * programs and its own maps: that also shows the programs interoperate with a second,
 * independently configured GRE peer. Checks: ping and a TCP exchange from the eyeball to the
 * customer host both ways through the tunnel, and tshark's decoding of the GRE on the wire.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { NetLab } from '../../testkit/netlab.ts';
import { EdgeMaps } from './edge.ts';
import { loadEdge, unloadEdge, type EdgePins } from './loader.ts';
import { missingObjects } from './objects.ts';

const ENDPOINT = '198.51.100.1';
const CUSTOMER_ROUTER = '198.51.100.200';
const HOST = '203.0.113.100';
const EYEBALL = '192.0.2.10';
const KEY = 42;
const MTU = 1476;
const GRE_KEY_HEX = `0x${KEY.toString(16).padStart(8, '0')}`; // how tshark prints gre.key

const lab = new NetLab('D');
const edges: EdgePins[] = [];
let setupError: Error | null = null;

// `ip -n`/`ip netns exec` mount a fresh /sys, hiding the bpffs pins under /sys/fs/bpf; nsenter
// switches only the network namespace, so pinned programs stay reachable.
function nsenter(ns: string, ...argv: string[]): Promise<string> {
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

async function attachTc(ns: string, dev: string, prog: string): Promise<void> {
  await nsenter(ns, 'tc', 'qdisc', 'add', 'dev', dev, 'clsact');
  await nsenter(ns, 'tc', 'filter', 'add', 'dev', dev, 'egress', 'bpf', 'direct-action', 'pinned', prog);
}

async function attachXdp(ns: string, dev: string, prog: string): Promise<void> {
  await nsenter(ns, 'ip', 'link', 'set', 'dev', dev, 'xdpdrv', 'pinned', prog);
}

async function setup(): Promise<void> {
  for (const n of ['e', 's', 't', 'c', 'h']) await lab.addNs(n);
  await lab.veth('e', 'eth0', 's', 'eye0');
  await lab.veth('s', 'up0', 'c', 'wan0');
  await lab.veth('s', 't0', 't', 'u0');
  await lab.veth('c', 'lan0', 'h', 'eth0');
  // Tunnel devices: veth pairs whose peer is never used. Their MTU is the tunnel MTU, so the
  // kernel itself answers oversized DF packets with "fragmentation needed"; NOARP because
  // nothing answers ARP on them, and ARP frames would only be dropped by the encapsulator.
  await lab.veth('t', 'gre0', 't', 'gre0p', { indexA: 3000 });
  await lab.veth('c', 'ctun0', 'c', 'ctun0p', { indexA: 3001 });
  for (const [ns, dev] of [['t', 'gre0'], ['c', 'ctun0']] as const) {
    await lab.ip(ns, 'link', 'set', dev, 'mtu', String(MTU), 'arp', 'off');
    // This tunnel carries IPv4 only: without this the kernel would send its own IPv6 link-local
    // chatter (MLD, neighbour discovery) through it.
    await lab.exec(ns, 'sysctl', ['-qw', `net.ipv6.conf.${dev}.disable_ipv6=1`]);
  }

  await lab.ip('e', 'addr', 'add', '192.0.2.10/30', 'dev', 'eth0');
  await lab.ip('e', 'route', 'add', 'default', 'via', '192.0.2.9');
  await lab.ip('s', 'addr', 'add', '192.0.2.9/30', 'dev', 'eye0');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/30', 'dev', 'up0');
  await lab.ip('s', 'addr', 'add', '192.0.2.13/30', 'dev', 't0');
  await lab.ip('s', 'route', 'add', `${CUSTOMER_ROUTER}/32`, 'via', '192.0.2.2');
  await lab.ip('s', 'route', 'add', '203.0.113.0/25', 'via', '192.0.2.14');
  await lab.ip('t', 'addr', 'add', '192.0.2.14/30', 'dev', 'u0');
  await lab.ip('t', 'route', 'add', 'default', 'via', '192.0.2.13');
  await lab.ip('t', 'route', 'add', '203.0.113.0/25', 'dev', 'gre0');
  await lab.ip('c', 'addr', 'add', '192.0.2.2/30', 'dev', 'wan0');
  await lab.ip('c', 'addr', 'add', '203.0.113.1/25', 'dev', 'lan0');
  await lab.ip('c', 'route', 'add', '192.0.2.8/30', 'dev', 'ctun0');
  await lab.ip('h', 'addr', 'add', `${HOST}/25`, 'dev', 'eth0');
  await lab.ip('h', 'route', 'add', 'default', 'via', '203.0.113.1');
  for (const ns of ['s', 't', 'c']) await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.send_redirects=0']);
  // A veth hands locally generated TCP/UDP on with the checksum left to "hardware" (CHECKSUM_PARTIAL).
  // XDP at the far end of the tunnel sees raw bytes and cannot finish it, so the end hosts compute
  // checksums in software, as a real NIC would have done before the packet crossed the Internet.
  for (const [ns, dev] of [['e', 'eth0'], ['h', 'eth0']] as const) await lab.exec(ns, 'ethtool', ['-K', dev, 'tx', 'off']);

  // Each side loads its own copy: a server and a customer router share nothing.
  for (const side of ['s', 'c']) {
    const pins = await loadEdge(`${lab.prefix}${side}`);
    if (!pins.ok) throw new Error(`${pins.error.op}: ${pins.error.message}`);
    edges.push(pins.value);
  }
  const [srv, cr] = [edges[0]!, edges[1]!];
  const sMaps = new EdgeMaps(srv);
  const cMaps = new EdgeMaps(cr);
  const must = (r: { ok: boolean }) => assert.ok(r.ok, JSON.stringify(r));

  // Server: decap on the uplink into the tenant veth; encap in the tenant namespace out of its uplink.
  must(await sMaps.putEndpoint(ENDPOINT));
  must(
    await sMaps.putDecap(
      { remote: CUSTOMER_ROUTER, local: ENDPOINT, key: KEY },
      { ifindex: await lab.ifindex('s', 't0'), srcMac: await lab.mac('s', 't0'), dstMac: await lab.mac('t', 'u0'), statsIdx: 1 },
    ),
  );
  must(
    await sMaps.putEncap(3000, {
      local: ENDPOINT,
      remote: CUSTOMER_ROUTER,
      key: KEY,
      outIfindex: await lab.ifindex('t', 'u0'),
      mtu: MTU,
      ttl: 64,
      srcMac: await lab.mac('t', 'u0'),
      dstMac: await lab.mac('s', 't0'),
      statsIdx: 1,
    }),
  );
  // Customer router: the mirror image.
  must(await cMaps.putEndpoint(CUSTOMER_ROUTER));
  must(
    await cMaps.putDecap(
      { remote: ENDPOINT, local: CUSTOMER_ROUTER, key: KEY },
      { ifindex: await lab.ifindex('c', 'lan0'), srcMac: await lab.mac('c', 'lan0'), dstMac: await lab.mac('h', 'eth0'), statsIdx: 1 },
    ),
  );
  must(
    await cMaps.putEncap(3001, {
      local: CUSTOMER_ROUTER,
      remote: ENDPOINT,
      key: KEY,
      outIfindex: await lab.ifindex('c', 'wan0'),
      mtu: MTU,
      ttl: 64,
      srcMac: await lab.mac('c', 'wan0'),
      dstMac: await lab.mac('s', 'up0'),
      statsIdx: 1,
    }),
  );

  await attachXdp('s', 'up0', srv.progs.xdpEdge);
  await attachXdp('c', 'wan0', cr.progs.xdpEdge);
  // A veth only accepts XDP-redirected frames when its peer runs an XDP program.
  await attachXdp('t', 'u0', srv.progs.xdpPass);
  await attachXdp('h', 'eth0', cr.progs.xdpPass);
  await attachTc('t', 'gre0', srv.progs.tcGreEncap);
  await attachTc('c', 'ctun0', cr.progs.tcGreEncap);
}

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || !hasTool('tc') || missingObjects().length) return;
  try {
    await setup();
  } catch (e) {
    setupError = e as Error;
  }
});

after(async () => {
  await lab.destroy();
  for (const p of edges) await unloadEdge(p);
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  if (setupError) throw setupError;
  return true;
}

test('ping from an eyeball reaches the customer host through anycast GRE both ways', async (t) => {
  if (!ready(t)) return;
  const out = await lab.exec('e', 'ping', ['-c', '3', '-i', '0.2', '-W', '2', HOST]);
  assert.match(out, /3 packets transmitted, 3 received/);
  const s = await new EdgeMaps(edges[0]!).tunnelStats(1);
  assert.ok(s.ok);
  assert.ok(s.value.encapPackets >= 3n && s.value.decapPackets >= 3n, JSON.stringify(s.value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
});

test('a TCP connection carries data end to end, with the MSS clamped to the tunnel', async (t) => {
  if (!ready(t)) return;
  // The server reports the MSS it learned from the SYN, then echoes.
  const server = lab.spawn('h', process.execPath, [
    '-e',
    `const net=require('net');net.createServer(s=>s.pipe(s)).listen(21,'${HOST}',()=>console.log('listening'))`,
  ]);
  const [line] = (await once(server.stdout!, 'data')) as [Buffer];
  assert.match(line.toString(), /listening/);
  const client = await lab.exec('e', process.execPath, [
    '-e',
    `const s=require('net').connect(21,'${HOST}',()=>s.end('hello through the tunnel'));let d='';s.on('data',b=>d+=b);s.on('close',()=>console.log(d));setTimeout(()=>process.exit(3),5000).unref()`,
  ]);
  assert.equal(client.trim(), 'hello through the tunnel');
  const s = await new EdgeMaps(edges[0]!).tunnelStats(1);
  assert.ok(s.ok);
  assert.ok(s.value.mssClamped >= 1n, 'the SYN toward the customer had its MSS clamped');
});

/** Starts tshark in a namespace and resolves once it is capturing. */
async function capture(ns: string, dev: string, count: number): Promise<() => Promise<string[][]>> {
  const cap = lab.spawn(ns, 'tshark', ['-i', dev, '-l', '-c', String(count),
    // GRE (with a 4-byte key after the 4-byte base header) whose inner packet is ICMP.
    '-f', 'ip proto 47 and ip[37] = 1', '-T', 'fields', '-E', 'separator=;',
    '-e', 'ip.src', '-e', 'ip.dst', '-e', 'gre.key', '-e', 'ip.proto', '-e', 'icmp.type']);
  let text = '';
  cap.stdout!.on('data', (b: Buffer) => (text += b.toString()));
  // tshark says "Capturing on" on stderr once it listens.
  await new Promise<void>((resolve, reject) => {
    cap.stderr!.on('data', (b: Buffer) => {
      if (b.toString().includes('Capturing on')) resolve();
    });
    cap.on('exit', (c) => reject(new Error(`tshark exited early (${c})`)));
  });
  return async () => {
    const timer = setTimeout(() => cap.kill('SIGKILL'), 10_000);
    if (cap.exitCode === null) await once(cap, 'exit');
    clearTimeout(timer);
    return text.trim().split('\n').map((l) => l.split(';'));
  };
}

test('tshark on the customer link decodes the GRE: outer addresses, key and inner packet, both ways', async (t) => {
  if (!ready(t) || !needs(t, { tools: ['tshark'] })) return;
  // XDP consumes what it decapsulates before packet sockets see it, so each side's capture shows
  // what that side sends: the server's requests on up0, the customer router's replies on wan0.
  const requests = await capture('s', 'up0', 1);
  const replies = await capture('c', 'wan0', 1);
  // Several echoes, in case a capture attaches a moment after saying it is listening.
  await lab.exec('e', 'ping', ['-c', '3', '-i', '0.3', '-W', '2', HOST]);
  // ip.src/ip.dst/ip.proto list the outer header, then the inner one.
  assert.deepEqual(await requests(), [[`${ENDPOINT},${EYEBALL}`, `${CUSTOMER_ROUTER},${HOST}`, GRE_KEY_HEX, '47,1', '8']]);
  assert.deepEqual(await replies(), [[`${CUSTOMER_ROUTER},${HOST}`, `${ENDPOINT},${EYEBALL}`, GRE_KEY_HEX, '47,1', '0']]);
});
