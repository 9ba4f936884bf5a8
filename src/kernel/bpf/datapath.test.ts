/**
 * The GRE data path in real namespaces, with the compiled programs attached as a server runs them:
 *
 *   eyeball(e) ── server(s) ──veth── tenant(t) ─gre0(tc encap)─► out via t's uplink
 *                    │ up0 (XDP decap)
 *                    └──── customer router(c) ── customer host(h) 203.0.113.100
 *
 * (built by datapath-fixture.ts). The customer router runs its own copy of the programs with its
 * own maps: that also shows they interoperate with a second, independently configured GRE peer.
 * Checks: ping and a TCP exchange from the eyeball to the
 * customer host both ways through the tunnel, and tshark's decoding of the GRE on the wire.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { needs, hasTool, isRoot } from '../../testkit/needs.ts';
import { NetLab } from '../../testkit/netlab.ts';
import { HealthMonitor, type HealthChange } from '../../agent/health.ts';
import { pingProber } from '../../agent/ping-prober.ts';
import { buildGreLab, CUSTOMER_ROUTER, ENDPOINT, EYEBALL, GRE_KEY_HEX, HOST, INNER_OURS, INNER_PEER, KEY } from './datapath-fixture.ts';
import { EdgeMaps } from './edge.ts';
import { unloadEdge, type EdgePins } from './loader.ts';
import { missingObjects } from './objects.ts';

const lab = new NetLab('D');
const edges: EdgePins[] = [];
let setupError: Error | null = null;

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || !hasTool('tc') || missingObjects().length) return;
  try {
    await buildGreLab(lab, edges);
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

test('a health probe through the tunnel passes, fails when the customer side stops decapsulating, and recovers', async (t) => {
  if (!ready(t)) return;
  const target = { path: 'tenants/acme/tunnels/gre1', netns: lab.ns('t'), device: 'gre0', source: INNER_OURS, peer: INNER_PEER };
  const first = await pingProber.probe(target, 1000);
  assert.equal(first.ok, true, first.error);
  assert.ok(first.rttMs !== undefined && first.rttMs > 0);
  const cr = new EdgeMaps(edges[1]!);
  const key = { remote: ENDPOINT, local: CUSTOMER_ROUTER, key: KEY };
  const saved = await cr.listDecap();
  assert.ok(saved.ok);
  assert.ok((await cr.deleteDecap(key)).ok);
  const failed = await pingProber.probe(target, 300);
  assert.equal(failed.ok, false);
  assert.match(failed.error ?? '', /no answer from 192\.0\.2\.253 within 300 ms/);
  assert.ok((await cr.putDecap(key, saved.value.find((d) => d.key.remote === ENDPOINT)!.value)).ok);
  assert.equal((await pingProber.probe(target, 1000)).ok, true);
});

test('the health monitor marks the real tunnel down and up again, and reports when', async (t) => {
  if (!ready(t)) return;
  const changes: HealthChange[] = [];
  const m = new HealthMonitor(pingProber, (c) => changes.push(c));
  const path = 'tenants/acme/tunnels/gre1';
  m.setTargets([
    {
      target: { path, netns: lab.ns('t'), device: 'gre0', source: INNER_OURS, peer: INNER_PEER },
      check: { enabled: true, intervalMs: 200, timeoutMs: 150, upThreshold: 2, downThreshold: 2 },
    },
  ]);
  const until = async (state: string) => {
    const deadline = Date.now() + 10_000;
    while (m.status()[0]!.state !== state) {
      assert.ok(Date.now() < deadline, `still ${m.status()[0]!.state}, waiting for ${state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  m.start(20);
  try {
    await until('up');
    const cr = new EdgeMaps(edges[1]!);
    const key = { remote: ENDPOINT, local: CUSTOMER_ROUTER, key: KEY };
    const entry = await cr.listDecap();
    assert.ok(entry.ok);
    const value = entry.value.find((d) => d.key.remote === ENDPOINT)!.value;
    const brokenAt = Date.now();
    assert.ok((await cr.deleteDecap(key)).ok);
    await until('down');
    const downAfter = changes.at(-1)!.at - brokenAt;
    assert.ok((await cr.putDecap(key, value)).ok);
    await until('up');
    assert.deepEqual(changes.map((c) => `${c.from}->${c.to}`), ['unknown->up', 'up->down', 'down->up']);
    // Two misses 200 ms apart: down within about 2 intervals plus the timeout.
    assert.ok(downAfter < 2000, `down after ${downAfter} ms`);
  } finally {
    m.stop();
  }
});

test('a packet too big for the tunnel with DF set gets ICMP "fragmentation needed" with the tunnel MTU', async (t) => {
  if (!ready(t)) return;
  // 1460 bytes of ICMP data + 8 + 20 = 1488 > 1472: the tenant namespace's route into the tunnel
  // device refuses it and tells the sender; 1444 + 28 = 1472 fits exactly, and its encapsulation
  // (1472 + 28) exactly fills the 1500-byte links.
  const tooBig = await lab.tryExec('e', 'ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', '1460', HOST]);
  assert.equal(tooBig.ok, false);
  assert.match(tooBig.stdout, /Frag needed and DF set \(mtu = 1472\)/);
  const fits = await lab.exec('e', 'ping', ['-c', '1', '-W', '2', '-M', 'do', '-s', '1444', HOST]);
  assert.match(fits, /1 received/);
});
