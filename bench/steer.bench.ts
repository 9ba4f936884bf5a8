/**
 * XDP steering cost per packet (bpf/steer.h inside the whole xdp_edge program), measured with
 * BPF_PROG_TEST_RUN in the fixture namespace of src/kernel/bpf/steer-fixture.ts (a real uplink,
 * routes and neighbours, so bpf_fib_lookup and the socket lookup do their real work).
 *
 *   node --import tsx bench/steer.bench.ts        (root)
 *
 * A test run with `repeat` does not reset the packet between iterations, so a packet the program
 * rewrites (encapsulates, decapsulates) would be measured on its own output from the second
 * iteration on. Every case is therefore timed as WARM single runs (repeat 1) in a loop inside one
 * process (bench/steer/testrun.py calls the bpf syscall; median of the kernel-reported
 * durations), and as RUNS single runs of one bpftool process each (cold: a fixed overhead of
 * a few µs in every row). Rows that leave the packet alone are also timed with repeat = 100,000
 * (the kernel's average).
 */
import { buildFrame } from '../src/wire/build.ts';
import { NetLab } from '../src/testkit/netlab.ts';
import { flowBucket, flowHash, type Flow } from '../src/compile/steer-hash.ts';
import { unloadEdge } from '../src/kernel/bpf/loader.ts';
import { linuxSteerMaps } from '../src/kernel/bpf/steer.ts';
import { buildSteerLab, xdpCtx, EGRESS, EYEBALL, FAR, gueFrame, gueSport, ipOf, MAC_B, MAC_ROUTER, PEER_B, PEER_C, PORT, runOnUplink, SELF, SERVICE, type SteerLab } from '../src/kernel/bpf/steer-fixture.ts';

const RUNS = Number(process.env.STEER_BENCH_RUNS ?? 200);
const WARM = Number(process.env.STEER_BENCH_WARM ?? 20000);
const TESTRUN = new URL('./steer/testrun.py', import.meta.url).pathname;
const lab = new NetLab('SB');

async function median(s: SteerLab, frame: Uint8Array, verdict: number): Promise<number> {
  const d: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await runOnUplink(lab, s, frame);
    if (!r.ok) throw new Error(r.error.message);
    if (r.value.retval !== verdict) throw new Error(`verdict ${r.value.retval}, expected ${verdict}`);
    d.push(r.value.durationNs);
  }
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)] as number;
}

async function warm(s: SteerLab, frame: Uint8Array, verdict: number): Promise<number> {
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  const out = await lab.sh('nsenter', [`--net=/run/netns/${lab.ns('a')}`, 'python3', TESTRUN, s.pins.progs.xdpEdge, hex(frame), hex(xdpCtx(s.uplink, frame.length)), String(WARM)]);
  const r = JSON.parse(out) as { retval: number; median_ns: number };
  if (r.retval !== verdict) throw new Error(`verdict ${r.retval}, expected ${verdict}`);
  return r.median_ns;
}

async function repeated(s: SteerLab, frame: Uint8Array): Promise<number> {
  const r = await runOnUplink(lab, s, frame, 100_000);
  if (!r.ok) throw new Error(r.error.message);
  return r.value.durationNs;
}

async function main(): Promise<void> {
  const s = await buildSteerLab(lab);
  try {
    const maps = linuxSteerMaps(s.pins);
    const flow = (sport: number): Flow => ({ src: EYEBALL, dst: SERVICE, proto: 6, sport, dport: 443 });
    const local = flow(50001);
    const remote = flow(50002);
    const chain = flow(50003);
    const w = await maps.write([
      { op: 'cfg', value: { self: SELF, port: PORT, enabled: true } },
      { op: 'svc-put', ip: SERVICE },
      ...[SELF, PEER_B, PEER_C, FAR].map((ip) => ({ op: 'peer-put' as const, ip })),
      { op: 'egress-put', ip: EGRESS, value: { kind: 'slices', sliceSize: 2048 } },
      { op: 'slice-put', ip: EGRESS, slice: 2, server: PEER_B },
      { op: 'bucket', index: flowBucket(local), value: { first: SELF, second: null } },
      { op: 'bucket', index: flowBucket(remote), value: { first: PEER_B, second: null } },
      { op: 'bucket', index: flowBucket(chain), value: { first: SELF, second: PEER_C } },
    ]);
    if (!w.ok) throw new Error(w.error.message);
    const eth = { kind: 'eth', src: MAC_ROUTER, dst: s.selfMac } as const;
    const tcp = (f: Flow, flags: string) => buildFrame([eth, { kind: 'ipv4', src: f.src, dst: f.dst, ttl: 60, df: true }, { kind: 'tcp', srcPort: f.sport, dstPort: f.dport, flags }], 'x'.repeat(64));
    const other = tcp({ ...local, dst: '198.51.100.9' }, 'S');
    const mine = tcp(local, 'S');
    const fromPeer = gueFrame({ ethSrc: MAC_B, ethDst: s.selfMac, src: PEER_B, dst: SELF, sport: gueSport(flowHash(local)), hop: 1, inner: ipOf(mine) });
    const egress = buildFrame([eth, { kind: 'ipv4', src: '192.0.2.200', dst: EGRESS }, { kind: 'udp', srcPort: 53, dstPort: 2 * 2048 + 1 }], 'x'.repeat(64));
    const rows: Array<[string, Uint8Array, number, boolean]> = [
      ['not steered (another destination): the whole xdp_edge, baseline', other, 2, true],
      ['service flow owned here (SYN): passed', mine, 2, true],
      ['service flow owned elsewhere: GUE encap + FIB + XDP_TX', tcp(remote, 'S'), 3, false],
      ['forwarded from a peer: GUE decap, owned here', fromPeer, 2, false],
      ['non-SYN, no local socket: socket lookup + encap to the second choice', tcp(chain, 'A'), 3, false],
      ['egress reply, slice owned elsewhere: encap + FIB + XDP_TX', egress, 3, false],
    ];
    console.log(`per case: ${WARM} warm single runs in one process (median), ${RUNS} bpftool runs (median), repeat 100,000 (mean) where the packet is left alone\n`);
    console.log('| case | warm single runs (ns) | repeat 100,000 (ns) | cold bpftool runs (ns) |');
    console.log('|---|---:|---:|---:|');
    for (const [name, frame, verdict, rep] of rows) {
      const w = await warm(s, frame, verdict);
      const r = rep ? `${await repeated(s, frame)}` : '—';
      const m = await median(s, frame, verdict);
      console.log(`| ${name} | ${w} | ${r} | ${m} |`);
    }
  } finally {
    await unloadEdge(s.pins);
    await lab.destroy();
  }
}

await main();
