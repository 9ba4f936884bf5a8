/**
 * Steering on the real kernel: a DC router namespace with an L4-hashed ECMP route for an anycast
 * service over three server namespaces on one bridge; each server runs xdp_edge on its uplink
 * with steering maps written by the agent's step (planSteer over the Linux maps), and a TCP
 * service on the anycast address that greets with its server's name and echoes.
 *
 *   eyeball e ── r (DC router, ECMP 198.51.100.2 via .17 .18 .19) ── br0 ─┬─ s1 up0 192.0.2.17
 *                                                                         ├─ s2 up0 192.0.2.18
 *                                                                         ├─ s3 up0 192.0.2.19
 *                                                                         └─ s4 up0 192.0.2.20 (spare)
 *
 * Live connections are opened, then the router's ECMP set changes (s3 leaves it) and then s2 is
 * drained through the config: every existing connection must still echo, and new connections
 * must land on the owners the new Maglev table names (never on the drained server). Then s2
 * comes back and the spare s4 is added to the config as active and to the router's ECMP set:
 * every established connection must still echo (the new server hands the flows of the buckets
 * it took to their previous owner), and new ones spread over all four servers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { mustConfig } from './fixtures.ts';
import { apply } from './reconcile.ts';
import { planSteer } from './steer.ts';
import { compileSteer } from '../compile/steer.ts';
import { flowBucket } from '../compile/steer-hash.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { linuxSteerMaps } from '../kernel/bpf/steer.ts';
import type { SteerCounterName } from '../kernel/bpf/steer-layout.ts';
import type { ServerState } from '../model/dc.ts';

const SERVICE = '198.51.100.2';
const PORT = 7007;
const EYEBALL = '192.0.2.1';
const SERVERS = [
  { id: 's1', ip: '192.0.2.17' },
  { id: 's2', ip: '192.0.2.18' },
  { id: 's3', ip: '192.0.2.19' },
  { id: 's4', ip: '192.0.2.20' },
] as const;
/** Servers in the config and the router's ECMP set until the second test adds the spare s4. */
const FIRST = 3;

const lab = new NetLab('SE');
const pins: EdgePins[] = [];
/** One maps handle per server, kept: it remembers the table it wrote (no 65,537-bucket re-read). */
const steerMaps: ReturnType<typeof linuxSteerMaps>[] = [];
let client: { proc: ChildProcess; lines: AsyncIterator<string> } | undefined;

const SERVER_PY = `
import socket, sys, threading
name = sys.argv[1]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${SERVICE}', ${PORT}))
s.listen(256)
print('ready', flush=True)
def serve(c):
    c.sendall((name + '\\n').encode())
    while True:
        d = c.recv(4096)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

const CLIENT_PY = `
import socket, sys
conns = {}
def open_one(p):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(('${EYEBALL}', p))
    c.settimeout(5)
    c.connect(('${SERVICE}', ${PORT}))
    name = b''
    while not name.endswith(b'\\n'):
        d = c.recv(100)
        if not d:
            raise Exception('closed')
        name += d
    return c, name.decode().strip()
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == 'open':
        for p in range(int(args[0]), int(args[1])):
            try:
                c, n = open_one(p)
                conns[p] = c
                print('open', p, n, flush=True)
            except Exception as e:
                print('open', p, 'ERR', type(e).__name__, flush=True)
    elif cmd == 'close':
        for c in conns.values():
            c.close()
        conns.clear()
    elif cmd == 'echo':
        for p, c in sorted(conns.items()):
            try:
                msg = b'ping %d' % p
                c.sendall(msg)
                d = b''
                while len(d) < len(msg):
                    x = c.recv(100)
                    if not x:
                        break
                    d += x
                print('echo', p, 'ok' if d == msg else 'BAD', flush=True)
            except Exception as e:
                print('echo', p, 'ERR', type(e).__name__, flush=True)
    print('done', flush=True)
`;

function configWith(states: Partial<Record<string, ServerState>>, servers = FIRST) {
  return mustConfig({
    dcs: {
      dc1: {
        name: 'DC one',
        backbone: ['192.0.2.2/30'],
        servers: Object.fromEntries(SERVERS.slice(0, servers).map((s) => [s.id, { uplink: 'up0', addresses: [`${s.ip}/28`], state: states[s.id] ?? 'active' }])),
      },
    },
    anycast: { ranges: ['198.51.100.0/28'], services: [SERVICE] },
  });
}

/** What every server's agent step would do: plan the steering maps and apply them. */
async function applySteering(states: Partial<Record<string, ServerState>>, servers = FIRST): Promise<void> {
  const cfg = configWith(states, servers);
  for (const [i, s] of SERVERS.slice(0, servers).entries()) {
    const d = compileSteer(cfg, { dc: 'dc1', server: s.id });
    if (!d.ok) throw new Error(`${d.error.path}: ${d.error.message}`);
    const maps = (steerMaps[i] ??= linuxSteerMaps(pins[i]!));
    const p = await planSteer(maps, d.value);
    if (!p.ok) throw new Error(p.error.message);
    const r = await apply([...p.value.adds, ...p.value.dels]);
    if (r.failed) throw new Error(`${r.failed.step.what}: ${r.failed.error.message}`);
    const again = await planSteer(maps, d.value);
    assert.ok(again.ok && again.value.adds.length + again.value.dels.length === 0, 'a second plan has nothing to do');
  }
}

/** The server the Maglev table of `states` gives a new flow from the eyeball's port. */
function ownerOf(sport: number, states: Partial<Record<string, ServerState>>, servers = FIRST): string {
  const d = compileSteer(configWith(states, servers), { dc: 'dc1', server: 's1' });
  assert.ok(d.ok);
  const b = flowBucket({ src: EYEBALL, dst: SERVICE, proto: 6, sport, dport: PORT });
  return (d.value.owners[d.value.first[b] as number]?.id ?? '?').split('/')[1] as string;
}

async function ask(cmd: string): Promise<string[]> {
  assert.ok(client);
  client.proc.stdin?.write(`${cmd}\n`);
  const out: string[] = [];
  for (;;) {
    const next = await client.lines.next();
    if (next.done) throw new Error(`client exited during ${cmd}; got ${out.join(' | ')}`);
    if (next.value === 'done') return out;
    out.push(next.value);
  }
}

async function nsenter(ns: string, ...argv: string[]): Promise<string> {
  return lab.sh('nsenter', [`--net=/run/netns/${lab.ns(ns)}`, ...argv]);
}

async function counters(i: number): Promise<Record<SteerCounterName, bigint>> {
  const c = await linuxSteerMaps(pins[i]!).counters();
  assert.ok(c.ok, c.ok ? '' : c.error.message);
  return c.value;
}

/** The DC router's L4-hashed multipath route for the service over the first `servers` servers. */
async function ecmp(servers: number): Promise<void> {
  await lab.ip('r', 'route', 'replace', `${SERVICE}/32`, ...SERVERS.slice(0, servers).flatMap((s) => ['nexthop', 'via', s.ip, 'dev', 'br0']));
}

before(async () => {
  if (!isRoot() || !hasTool('bpftool') || !hasTool('python3') || missingObjects().length) return;
  for (const n of ['e', 'r', ...SERVERS.map((s) => s.id)]) await lab.addNs(n);
  await lab.veth('e', 'eth0', 'r', 'e0');
  await lab.ip('e', 'addr', 'add', `${EYEBALL}/30`, 'dev', 'eth0');
  await lab.ip('e', 'route', 'add', 'default', 'via', '192.0.2.2');
  await lab.ip('r', 'addr', 'add', '192.0.2.2/30', 'dev', 'e0');
  // The eyeball computes its checksums: XDP on the servers sees raw bytes (a NIC would have).
  await lab.exec('e', 'ethtool', ['-K', 'eth0', 'tx', 'off']);
  await lab.ip('r', 'link', 'add', 'br0', 'mtu', '1600', 'type', 'bridge');
  await lab.ip('r', 'link', 'set', 'br0', 'up');
  await lab.ip('r', 'addr', 'add', '192.0.2.30/28', 'dev', 'br0');
  await lab.exec('r', 'sysctl', ['-qw', 'net.ipv4.fib_multipath_hash_policy=1']);
  for (const [i, s] of SERVERS.entries()) {
    await lab.veth(s.id, 'up0', 'r', `p${i}`);
    // The server LAN carries GUE (36 bytes more than what eyeballs send): a larger MTU inside.
    await lab.ip(s.id, 'link', 'set', 'up0', 'mtu', '1600');
    await lab.ip('r', 'link', 'set', `p${i}`, 'mtu', '1600', 'master', 'br0');
    await lab.ip(s.id, 'addr', 'add', `${s.ip}/28`, 'dev', 'up0');
    await lab.ip(s.id, 'addr', 'add', `${SERVICE}/32`, 'dev', 'lo');
    await lab.ip(s.id, 'route', 'add', 'default', 'via', '192.0.2.30');
    await lab.exec(s.id, 'ethtool', ['-K', 'up0', 'tx', 'off']);
    const p = await loadEdge(`${lab.prefix}${s.id}`);
    if (!p.ok) throw new Error(`${p.error.op}: ${p.error.message}`);
    pins.push(p.value);
  }
  await ecmp(FIRST);
  // Servers know each other's MACs, as servers on one LAN that talk do.
  for (const a of SERVERS) for (const b of SERVERS) if (a !== b) await lab.exec(a.id, 'ping', ['-c', '1', '-W', '2', b.ip]);
  await applySteering({});
  for (const [i, s] of SERVERS.entries()) {
    await nsenter(s.id, 'ip', 'link', 'set', 'dev', 'up0', 'xdpdrv', 'pinned', pins[i]!.progs.xdpEdge);
    // A veth delivers XDP_TX frames to its peer only when the peer runs an XDP program (veth's
    // flush kicks the peer's NAPI only then; GRO alone leaves them queued until other traffic
    // comes): the DC router's bridge ports get xdp_pass, as the GRE lab's tunnel pairs do.
    await nsenter('r', 'ip', 'link', 'set', 'dev', `p${i}`, 'xdpdrv', 'pinned', pins[i]!.progs.xdpPass);
    const srv = lab.spawn(s.id, 'python3', ['-c', SERVER_PY, s.id]);
    await new Promise<void>((resolve, reject) => {
      srv.stdout?.once('data', () => resolve());
      srv.once('exit', (c) => reject(new Error(`service on ${s.id} exited ${c}`)));
    });
  }
  const proc = lab.spawn('e', 'python3', ['-c', CLIENT_PY]);
  client = { proc, lines: createInterface({ input: proc.stdout! })[Symbol.asyncIterator]() };
});

after(async () => {
  client?.proc.stdin?.end();
  await lab.destroy();
  for (const p of pins) await unloadEdge(p);
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['bpftool', 'python3', 'ethtool'] })) return false;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  assert.ok(client, 'the steering lab did not come up');
  return true;
}

const parse = (lines: string[]) => new Map(lines.map((l) => l.split(' ')).map(([, p, v]) => [Number(p), v as string]));

test('connections land on their Maglev owner, survive an ECMP change and a drained server; new ones follow the new table', async (t) => {
  if (!ready(t)) return;
  const c0 = await Promise.all(SERVERS.map((_, i) => counters(i)));
  // 1. Live connections, each on the server the table names, whichever server ECMP picked.
  const opened = parse(await ask('open 41000 41024'));
  assert.equal(opened.size, 24);
  for (const [p, who] of opened) assert.equal(who, ownerOf(p, {}), `port ${p}: landed on ${who}`);
  assert.deepEqual([...new Set(opened.values())].sort(), ['s1', 's2', 's3'], 'flows spread over every server');
  const c1 = await Promise.all(SERVERS.map((_, i) => counters(i)));
  const sum = (cs: Record<SteerCounterName, bigint>[], k: SteerCounterName) => cs.reduce((a, c) => a + c[k], 0n);
  assert.ok(sum(c1, 'forward') - sum(c0, 'forward') > 0n, 'some flows were forwarded to their owner');
  assert.equal(sum(c1, 'decap') - sum(c0, 'decap'), sum(c1, 'forward') - sum(c0, 'forward'), 'every forwarded packet was decapsulated by its owner');

  // 2. The router's ECMP set changes: s3 leaves it. Its flows now arrive at s1/s2 and are forwarded.
  await lab.ip('r', 'route', 'replace', `${SERVICE}/32`, 'nexthop', 'via', SERVERS[0].ip, 'dev', 'br0', 'nexthop', 'via', SERVERS[1].ip, 'dev', 'br0');
  const echo1 = parse(await ask('echo'));
  assert.deepEqual([...echo1.entries()].filter(([, v]) => v !== 'ok'), [], 'every live connection still echoes after the ECMP change');

  // 3. s2 is drained through the config: its buckets move, with s2 as their second choice.
  await applySteering({ s2: 'draining' });
  const c2 = await Promise.all(SERVERS.map((_, i) => counters(i)));
  const echo2 = parse(await ask('echo'));
  assert.deepEqual([...echo2.entries()].filter(([, v]) => v !== 'ok'), [], 'every live connection still echoes after s2 is drained');
  const c3 = await Promise.all(SERVERS.map((_, i) => counters(i)));
  if ([...opened.values()].includes('s2')) assert.ok(sum(c3, 'forward_second') - sum(c2, 'forward_second') > 0n, "s2's connections reached it as second choice");
  const fresh = parse(await ask('open 42000 42024'));
  assert.equal(fresh.size, 24);
  for (const [p, who] of fresh) {
    assert.notEqual(who, 'ERR', `port ${p}: new connection failed`);
    assert.equal(who, ownerOf(p, { s2: 'draining' }), `port ${p}: a new connection landed on ${who}`);
  }
  assert.ok(![...fresh.values()].includes('s2'), 'no new connection on the drained server');
  const echo3 = parse(await ask('echo'));
  assert.equal(echo3.size, 48);
  assert.deepEqual([...echo3.entries()].filter(([, v]) => v !== 'ok'), []);
});

test('a server added as active takes new flows and hands the established flows of its buckets to their previous owner', async (t) => {
  if (!ready(t)) return;
  const sum = (cs: Record<SteerCounterName, bigint>[], k: SteerCounterName) => cs.reduce((a, c) => a + c[k], 0n);
  const bad = (m: Map<number, string>) => [...m.entries()].filter(([, v]) => v !== 'ok');
  // 1. s2 back from draining (an add too: its buckets' flows opened meanwhile live elsewhere) and
  //    the router's full set again: the previous test's connections all still echo.
  await applySteering({});
  await ecmp(FIRST);
  assert.deepEqual(bad(parse(await ask('echo'))), [], 'every live connection still echoes after s2 is active again');

  // 2. Fresh connections on three servers.
  await ask('close');
  const live = parse(await ask('open 43000 43032'));
  assert.equal(live.size, 32);
  for (const [p, who] of live) assert.equal(who, ownerOf(p, {}), `port ${p}: landed on ${who}`);
  const taken = [...live.keys()].filter((p) => ownerOf(p, {}, FIRST + 1) === 's4');
  assert.ok(taken.length > 0, 'the test needs live flows in buckets the new server takes');
  assert.ok(taken.length < live.size, 'and live flows in buckets it does not take');

  // 3. s4 joins: first the config (every server's maps, s4's own included), then the router.
  const c0 = await Promise.all(SERVERS.map((_, i) => counters(i)));
  await applySteering({}, FIRST + 1);
  await ecmp(FIRST + 1);
  const echo = parse(await ask('echo'));
  assert.equal(echo.size, 32);
  assert.deepEqual(bad(echo), [], `every established connection still echoes after s4 is added (${taken.length} of them in buckets s4 took)`);
  const c1 = await Promise.all(SERVERS.map((_, i) => counters(i)));
  assert.ok(sum(c1, 'forward_second') - sum(c0, 'forward_second') >= BigInt(taken.length), 'the flows of the buckets s4 took went on to their previous owner as second choice');
  assert.ok(c1[3]!.forward_second - c0[3]!.forward_second > 0n, 's4 itself handed flows it has no socket for to their previous owner');

  // 4. New connections follow the four-server table, s4 included; everything still echoes.
  const fresh = parse(await ask('open 44000 44032'));
  assert.equal(fresh.size, 32);
  for (const [p, who] of fresh) {
    assert.notEqual(who, 'ERR', `port ${p}: new connection failed`);
    assert.equal(who, ownerOf(p, {}, FIRST + 1), `port ${p}: a new connection landed on ${who}`);
  }
  assert.deepEqual([...new Set(fresh.values())].sort(), ['s1', 's2', 's3', 's4'], 'new flows spread over every server, the new one included');
  const all = parse(await ask('echo'));
  assert.equal(all.size, 64);
  assert.deepEqual(bad(all), []);
});
