/**
 * Cost of steering the flows of tenants with SYN-flood protection (bpf/steer.h `steer_tenant`,
 * `steer_tunnel`; the SYN-cookie stage runs after it, on the flow's owner, bpf/syncookie.h), per
 * packet, through BPF_PROG_TEST_RUN of the whole xdp_edge in the fixture namespace of
 * src/kernel/bpf/steer-fixture.ts (a real uplink, a default route via the router and permanent
 * neighbours, so bpf_fib_lookup does its real work), with the tenant set up as in
 * src/kernel/bpf/steer-tenant.linux.test.ts.
 *
 *   node --import tsx bench/steer-tenant.bench.ts [ROUNDS]        (root; default 11 rounds)
 *
 * Every case rewrites its packet (cookie SYN-ACK, GUE encapsulation, decapsulation) except the
 * unsteered baseline, and a test run with `repeat` does not reset the packet between iterations:
 * from the second iteration on it would time the program on its own output. So, as in
 * bench/steer.bench.ts, the cases are timed as WARM single runs (repeat 1) from one process calling
 * the bpf syscall in a loop (bench/steer/testrun-interleaved.py: the original packet every time,
 * warm caches, and a per-call overhead on top), here with the cases taken in turn, so that load from
 * other work on the machine hits every case alike. The baseline is also timed with repeat =
 * 100,000 (the kernel's mean, no per-call overhead); the difference between its two figures is that
 * overhead, and "program" below is a case's warm median minus it. The table gives each case's
 * median round of ROUNDS and the range.
 *
 * Before timing, one run of each case (a bpftool run) checks its verdict and which steering and
 * SYN counters it moved, so every row times the path it names (a setup error, not a speed check).
 * Namespaces and pins are removed on success, on failure and on SIGINT/SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { buildFrame, type LayerSpec } from '../src/wire/build.ts';
import { NetLab } from '../src/testkit/netlab.ts';
import { symmetricFlowBucket, type Flow } from '../src/compile/steer-hash.ts';
import { EdgeMaps } from '../src/kernel/bpf/edge.ts';
import { edgePins, unloadEdge } from '../src/kernel/bpf/loader.ts';
import { BPF_OBJECTS } from '../src/kernel/bpf/objects.ts';
import { linuxSteerMaps, type SteerWrite } from '../src/kernel/bpf/steer.ts';
import { SynCookieMaps, type SynCounterName } from '../src/kernel/bpf/syncookie.ts';
import type { SteerCounterName } from '../src/kernel/bpf/steer-layout.ts';
import { buildSteerLab, xdpCtx, EYEBALL, gueFrame, ipOf, MAC_B, MAC_C, MAC_ROUTER, PEER_B, PEER_C, PORT, ROUTER, runOnUplink, SELF, type SteerLab } from '../src/kernel/bpf/steer-fixture.ts';

/** A count from the command line or the environment; anything else ends the bench before it builds anything. */
function count(what: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${what}: ${JSON.stringify(text)} is not a positive integer`);
    process.exit(2);
  }
  return n;
}
const ROUNDS = count('ROUNDS (first argument)', process.argv[2] ?? '11');
const WARM = count('STEER_BENCH_WARM', process.env.STEER_BENCH_WARM ?? '20000');
const REPEAT = 100_000;
const TESTRUN = new URL('./steer/testrun-interleaved.py', import.meta.url).pathname;

const XDP_DROP = 1;
const XDP_PASS = 2;
const XDP_TX = 3;
const XDP_REDIRECT = 4;
const VERDICT: Record<number, string> = { 1: 'XDP_DROP', 2: 'XDP_PASS', 3: 'XDP_TX', 4: 'XDP_REDIRECT' };

/** Protected and steered (steer_tenant + syn_v4), as in steer-tenant.linux.test.ts. */
const TENANT = '198.51.100.128/25';
const HOST = '198.51.100.200';
/** Protected but not steered: what the cookie alone costs (the SYN stage before steering). */
const COOKIE_ONLY = '198.51.100.96/28';
const COOKIE_HOST = '198.51.100.100';
/** In no prefix of any stage: an unprotected tenant's address. */
const PLAIN_HOST = '198.51.100.90';
/** The protected customer's router, an unprotected customer's router, our anycast GRE endpoint. */
const CUSTOMER = '192.0.2.50';
const CUSTOMER_PLAIN = '192.0.2.51';
const ENDPOINT = '192.0.2.100';
/** The cookie SYN-ACK's MSS, and the window scale it offers to clients that send timestamps. */
const POLICY = { mss: 1400, wscale: 7 };
const PAYLOAD = 'x'.repeat(64);

const lab = new NetLab('TB');

/** Removes the pins (by path, so also a half-built lab's) and the namespaces; safe to call twice. */
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await unloadEdge(edgePins(lab.prefix));
    await lab.destroy();
  })();
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: removing the bench's namespaces and pins`);
    void cleanup().finally(() => process.exit(130));
  });
}
// An error thrown outside main's try (a stream's error event) would end the process before the
// finally ran: clean up first. A reader that goes away (`| head`) is no reason to stop at all.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});
process.once('uncaughtException', (e) => {
  console.error(e);
  void cleanup().finally(() => process.exit(1));
});

interface Case {
  readonly key: string;
  readonly name: string;
  readonly frame: Uint8Array;
  readonly verdict: number;
  /** Steering and SYN counters one run must move (exactly these). */
  readonly moved: Readonly<Record<string, number>>;
  /** Ethernet destination the output must have, when the case is about where the packet goes. */
  readonly ethDst?: string;
}

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** One round: `WARM` single runs of every case, the cases in turn, from one process (median, p10). */
async function warmRound(s: SteerLab, cases: readonly Case[]): Promise<Array<{ median: number; p10: number }>> {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const args = cases.flatMap((c) => [hex(c.frame), hex(xdpCtx(s.uplink, c.frame.length))]);
  const out = await lab.sh('nsenter', [`--net=/run/netns/${lab.ns('a')}`, 'python3', TESTRUN, s.pins.progs.xdpEdge, String(WARM), ...args]);
  const rs = JSON.parse(out) as Array<{ retval: number; median_ns: number; p10_ns: number }>;
  return cases.map((c, i) => {
    const r = rs[i]!;
    if (r.retval !== c.verdict) throw new Error(`case ${c.key}: verdict ${VERDICT[r.retval] ?? r.retval}, expected ${VERDICT[c.verdict]}`);
    return { median: r.median_ns, p10: r.p10_ns };
  });
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

async function main(): Promise<void> {
  try {
    const s = await buildSteerLab(lab);
    // The eyeball is reached through the router: where a forwarded SYN's answer goes (FIB).
    await lab.ip('a', 'route', 'add', 'default', 'via', ROUTER);
    const steer = linuxSteerMaps(s.pins);
    const syn = new SynCookieMaps(s.pins);
    const edge = new EdgeMaps(s.pins);

    const flow = (sport: number): Flow => ({ src: EYEBALL, dst: HOST, proto: 6, sport, dport: 443 });
    const local = flow(42001); // owned here: cases 1 and 3
    const remote = flow(42002); // owned by PEER_B: case 2
    const tunLocal = flow(42004); // the host's side through GRE, owned here: case 4a
    const tunRemote = flow(42005); // ... owned by PEER_B: case 4b
    const chain = flow(42006); // owned here, second choice PEER_C: case 5
    const second = flow(42007); // owned by PEER_C, second choice here: case 6
    // Every bucket has a second choice, as the agent's steering table gives every bucket of a DC
    // of two or more servers (maglev.ts steeringTable): the daisy-chain checks run as in production.
    const buckets: Array<[Flow, string, string]> = [
      [local, SELF, PEER_B],
      [remote, PEER_B, PEER_C],
      [tunLocal, SELF, PEER_B],
      [tunRemote, PEER_B, PEER_C],
      [chain, SELF, PEER_C],
      [second, PEER_C, SELF],
    ];
    const seen = new Map<number, number>();
    for (const [f] of buckets) {
      const b = symmetricFlowBucket(f);
      if (seen.has(b)) throw new Error(`flows with source ports ${seen.get(b)} and ${f.sport} share bucket ${b}: pick other ports`);
      seen.set(b, f.sport);
    }
    const writes: SteerWrite[] = [
      { op: 'cfg', value: { self: SELF, port: PORT, enabled: true } },
      ...[SELF, PEER_B, PEER_C].map((ip) => ({ op: 'peer-put' as const, ip })),
      { op: 'tenant-put', cidr: TENANT },
      ...buckets.map(([f, first, second]) => ({ op: 'bucket' as const, index: symmetricFlowBucket(f), value: { first, second } })),
    ];
    const w = await steer.write(writes);
    if (!w.ok) throw new Error(`${w.error.op}: ${w.error.message}`);
    const decapTo = { ifindex: s.uplink, srcMac: '02:ae:00:00:01:01', dstMac: '02:ae:00:00:01:02', statsIdx: 0 };
    for (const r of [
      await edge.putEndpoint(ENDPOINT),
      await edge.putDecap({ remote: CUSTOMER, local: ENDPOINT }, decapTo),
      await edge.putDecap({ remote: CUSTOMER_PLAIN, local: ENDPOINT }, { ...decapTo, statsIdx: 1 }),
      await syn.protect(TENANT, { ...POLICY, tenantIdx: 0 }),
      await syn.protect(COOKIE_ONLY, { ...POLICY, tenantIdx: 1 }),
    ])
      if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);

    const eth: LayerSpec = { kind: 'eth', src: MAC_ROUTER, dst: s.selfMac };
    const ip = (src: string, dst: string): LayerSpec => ({ kind: 'ipv4', src, dst, ttl: 60, df: true });
    // A Linux client's SYN (MSS, SACK, timestamps, window scale), as bench/synflood.bench.ts sends.
    const synTo = (f: Flow) =>
      buildFrame([eth, ip(f.src, f.dst), { kind: 'tcp', srcPort: f.sport, dstPort: f.dport, flags: 'S', seq: 1000, mss: 1460, options: [{ kind: 'sack_permitted' }, { kind: 'timestamps', tsval: 1, tsecr: 0 }, { kind: 'window_scale', shift: 7 }] }]);
    const dataFrom = (f: Flow) => buildFrame([eth, ip(f.src, f.dst), { kind: 'tcp', srcPort: f.sport, dstPort: f.dport, flags: 'PA', seq: 1001, ack: 12345 }], PAYLOAD);
    /** The host's segment of flow `f`, through its customer's GRE tunnel to our endpoint. */
    const tunnel = (customer: string, f: Flow, flags: string) =>
      buildFrame([eth, { kind: 'ipv4', src: customer, dst: ENDPOINT, ttl: 60 }, { kind: 'gre' }, ip(f.dst, f.src), { kind: 'tcp', srcPort: f.dport, dstPort: f.sport, flags, seq: 500, ack: 1001 }], flags.includes('S') ? '' : PAYLOAD);
    const forwarded = gueFrame({ ethSrc: MAC_B, ethDst: s.selfMac, src: PEER_B, dst: SELF, sport: 0xc000 | 1234, hop: 1, inner: ipOf(synTo(local)) });
    const forwardedPlain = gueFrame({ ethSrc: MAC_B, ethDst: s.selfMac, src: PEER_B, dst: SELF, sport: 0xc000 | 1234, hop: 1, inner: ipOf(synTo({ ...local, dst: PLAIN_HOST })) });
    // A flood ACK (no cookie of ours in it) of flow `second`, as its first owner sends it on.
    const ackFrom = (f: Flow) => buildFrame([eth, ip(f.src, f.dst), { kind: 'tcp', srcPort: f.sport, dstPort: f.dport, flags: 'A', seq: 1001, ack: 777 }]);
    const chained = gueFrame({ ethSrc: MAC_C, ethDst: s.selfMac, src: PEER_C, dst: SELF, sport: 0xc000 | 4321, hop: 2, inner: ipOf(ackFrom(second)) });
    const plain: Flow = { ...tunLocal, dst: PLAIN_HOST };

    // The host's flow of case 4a is known here: its SYN-ACK (answering the connection the
    // tenant namespace's synproxy opened) came through the tunnel, and steer_tunnel remembered it.
    await probe(s, { key: 'prime', name: "4a's flow: the host's SYN-ACK through the tunnel", frame: tunnel(CUSTOMER, tunLocal, 'SA'), verdict: XDP_REDIRECT, moved: { tunnel_local: 1 } });

    const cases: Case[] = [
      { key: 'B0', name: 'baseline: SYN to an unprotected address (not steered, no cookie) → XDP_PASS', frame: synTo({ ...local, dst: PLAIN_HOST }), verdict: XDP_PASS, moved: {} },
      { key: 'B1', name: 'baseline: SYN to a protected, unsteered prefix: cookie SYN-ACK, XDP_TX back (the SYN stage alone)', frame: synTo({ ...local, dst: COOKIE_HOST }), verdict: XDP_TX, moved: { synack: 1 } },
      { key: 'B2', name: 'baseline: ACK without a valid cookie to a protected, unsteered prefix: cookie check → XDP_DROP (the SYN stage alone)', frame: ackFrom({ ...local, dst: COOKIE_HOST }), verdict: XDP_DROP, moved: { ackBad: 1 } },
      { key: '1', name: 'client SYN, owner = self: cookie SYN-ACK, XDP_TX back to the router', frame: synTo(local), verdict: XDP_TX, moved: { tenant_local: 1, synack: 1 }, ethDst: MAC_ROUTER },
      { key: '2', name: 'client SYN, owner = a peer: GUE encap + FIB + XDP_TX (the receiving server)', frame: synTo(remote), verdict: XDP_TX, moved: { tenant_forward: 1 }, ethDst: MAC_B },
      { key: 'D', name: 'forwarded SYN (GUE, hop 1) to an unprotected address: decap only → XDP_PASS (baseline for 3)', frame: forwardedPlain, verdict: XDP_PASS, moved: { decap: 1 } },
      { key: '3', name: 'forwarded SYN (GUE, hop 1) on the owner: decap + cookie + FIB lookup toward the client', frame: forwarded, verdict: XDP_TX, moved: { decap: 1, tenant_local: 1, synack: 1 }, ethDst: MAC_ROUTER },
      { key: '4a', name: 'GRE from the customer, protected prefix, owned here (flow known): steer_tunnel + decap', frame: tunnel(CUSTOMER, tunLocal, 'PA'), verdict: XDP_REDIRECT, moved: { tunnel_local: 1 } },
      { key: '4b', name: 'GRE from the customer, protected prefix, owned by a peer: forwarded still in GRE (GUE encap + FIB)', frame: tunnel(CUSTOMER, tunRemote, 'PA'), verdict: XDP_TX, moved: { tunnel_forward: 1 }, ethDst: MAC_B },
      { key: '4c', name: 'GRE from an unprotected tenant: decap (baseline for 4a/4b)', frame: tunnel(CUSTOMER_PLAIN, plain, 'PA'), verdict: XDP_REDIRECT, moved: {} },
      { key: '5', name: 'non-SYN with no state on the first owner: syn_flows miss + cookie check + GUE to the second choice', frame: dataFrom(chain), verdict: XDP_TX, moved: { tenant_forward_second: 1 } },
      { key: '6', name: 'the same (an ACK without state) arriving as the second choice (GUE, hop 2): decap + syn_flows miss + cookie check → XDP_DROP', frame: chained, verdict: XDP_DROP, moved: { decap: 1, tenant_local: 1, ackBad: 1 } },
    ];
    for (const c of cases) await probe(s, c);

    const base = cases[0]!;
    const rounds: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
    const floors: Record<string, number[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
    const repeats: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const rs = await warmRound(s, cases);
      cases.forEach((c, i) => {
        rounds[c.key]!.push(rs[i]!.median);
        floors[c.key]!.push(rs[i]!.p10);
      });
      const r = await runOnUplink(lab, s, base.frame, REPEAT);
      if (!r.ok) throw new Error(`${r.error.op}: ${r.error.message}`);
      if (r.value.retval !== base.verdict) throw new Error(`baseline with repeat: verdict ${r.value.retval}`);
      repeats.push(r.value.durationNs);
    }
    const warmOf = (k: string) => median(rounds[k]!);
    const overhead = warmOf('B0') - median(repeats);
    const prog = (k: string) => Math.max(0, warmOf(k) - overhead);

    const obj = createHash('sha256').update(readFileSync(BPF_OBJECTS.xdpEdge)).digest('hex').slice(0, 12);
    console.log(`xdp_edge.o sha256 ${obj}… built ${statSync(BPF_OBJECTS.xdpEdge).mtime.toISOString()}, ${sourceState()}`);
    console.log(`per round: ${WARM} warm single runs of every case, the cases in turn, from one process; ${ROUNDS} rounds; the baseline also with repeat ${REPEAT} after each round`);
    console.log(`baseline B0: warm single runs ${warmOf('B0')} ns, repeat ${REPEAT} ${median(repeats)} ns (rounds ${repeats.join(', ')}) → per-call overhead ${overhead} ns\n`);
    console.log('| # | case | verdict | warm single runs, ns (median round) | rounds min–max | p10 (median round) | program ns (warm − overhead) | over B0, ns |');
    console.log('|---|---|---|---:|---:|---:|---:|---:|');
    for (const c of cases) {
      const xs = rounds[c.key]!;
      console.log(`| ${c.key} | ${c.name} | ${VERDICT[c.verdict]} | ${warmOf(c.key)} | ${Math.min(...xs)}–${Math.max(...xs)} | ${median(floors[c.key]!)} | ${prog(c.key)} | ${warmOf(c.key) - warmOf('B0')} |`);
    }

    // A flood SYN lands on any server of the DC (the router's ECMP hash knows nothing of the
    // table): on its owner with probability 1/N (case 1), elsewhere with (N−1)/N, where it costs
    // the receiving server case 2 and the owner case 3.
    console.log('\nper flood SYN in a DC of N servers, XDP program time only (the forwarded SYN also crosses the wire and is received twice; not in these figures):');
    for (const n of [1, 2, 10]) {
      const cost = prog('1') / n + ((n - 1) / n) * (prog('2') + prog('3'));
      console.log(`  N = ${String(n).padStart(2)}: ${Math.round(cost)} ns per SYN (${(cost / prog('B1')).toFixed(2)}× the SYN stage alone, B1 ${prog('B1')} ns)`);
    }
    // A flood ACK without a cookie of ours: on a server that is not its owner it is forwarded (the
    // path of case 2, timed with a SYN), the owner sends it to the second choice (5), which drops
    // it (6). Before steering the receiving server dropped it (B2).
    console.log('per flood ACK (no valid cookie) in a DC of N servers, XDP program time only, forward of a non-owner taken from case 2:');
    for (const n of [1, 2, 10]) {
      const chainCost = n === 1 ? prog('B2') : prog('5') + prog('6');
      const cost = chainCost / n + ((n - 1) / n) * (prog('2') + chainCost);
      console.log(`  N = ${String(n).padStart(2)}: ${Math.round(cost)} ns per ACK (${(cost / prog('B2')).toFixed(2)}× the SYN stage alone, B2 ${prog('B2')} ns)`);
    }
  } finally {
    await cleanup();
  }
}

/** Which sources bpf/out was (presumably) built from: the checkout's commit and whether bpf/ differs from it. */
function sourceState(): string {
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', cwd: new URL('..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const dirty = git('status', '--porcelain', '--', 'bpf');
    return `checkout ${git('rev-parse', '--short', 'HEAD')}${dirty ? `, bpf/ has uncommitted changes: ${dirty.replace(/\n/g, '; ')}` : ''}`;
  } catch {
    return 'not a git checkout';
  }
}

/** One run of a case: its verdict, the counters it moved and, when given, where its output goes. */
async function probe(s: SteerLab, c: Case): Promise<void> {
  const steer = linuxSteerMaps(s.pins);
  const syn = new SynCookieMaps(s.pins);
  const read = async (): Promise<Record<string, bigint>> => {
    const a = await steer.counters();
    if (!a.ok) throw new Error(`${a.error.op}: ${a.error.message}`);
    const b = await syn.counters();
    if (!b.ok) throw new Error(`${b.error.op}: ${b.error.message}`);
    return { ...(a.value as Record<SteerCounterName, bigint>), ...(b.value as Record<SynCounterName, bigint>) };
  };
  const c0 = await read();
  const r = await runOnUplink(lab, s, c.frame);
  if (!r.ok) throw new Error(`case ${c.key}: ${r.error.op}: ${r.error.message}`);
  const c1 = await read();
  const moved = Object.fromEntries(Object.keys(c1).flatMap((k) => (c1[k] !== c0[k] ? [[k, Number(c1[k]! - c0[k]!)]] : [])));
  const want = JSON.stringify(Object.fromEntries(Object.entries(c.moved).sort()));
  const got = JSON.stringify(Object.fromEntries(Object.entries(moved).sort()));
  if (r.value.retval !== c.verdict || want !== got) {
    throw new Error(`case ${c.key} (${c.name}) takes another path: verdict ${VERDICT[r.value.retval] ?? r.value.retval}, counters ${got}; expected ${VERDICT[c.verdict]}, ${want}`);
  }
  if (c.ethDst && !r.value.dataOut.subarray(0, 6).equals(macBytes(c.ethDst))) {
    throw new Error(`case ${c.key} (${c.name}): output goes to ${[...r.value.dataOut.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':')}, expected ${c.ethDst}`);
  }
}

await main();
