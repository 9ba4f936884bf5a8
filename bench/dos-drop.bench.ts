/**
 * Cost of dropping the same DoS rule's packets — UDP to 203.0.113.10 port 53 — in three places of
 * the same receive path, in one run (root):
 *
 *   node --import tsx bench/dos-drop.bench.ts
 *
 * (a) XDP: our xdp_edge on the receiving veth, the rule as an entry of the DoS helper's maps;
 * (b) nftables: a netdev ingress chain on that veth;
 * (c) iptables raw PREROUTING: the classic x_tables path (iptables-legacy), and the same rule
 *     through iptables-nft (what Debian's `iptables` is), which is nftables at the prerouting hook.
 *
 * Generator: BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (bench/dos-drop/gen.c loading
 * gen.bpf.c): the kernel replays one frame in a loop and XDP_REDIRECTs every copy out of the
 * sending veth, so the receiving veth gets xdp_frames, as from a NIC, at several Mpps — far more
 * than any of the three drop paths handles, so each case is measured saturated (the surplus is
 * refused by the veth's 256-slot ring and shows as xdp_xmit_errors on the sender).
 *
 * Cores: the generator runs on CPU 0 (taskset). The receiving veth has GRO on, which gives it a
 * NAPI instance even without an XDP program (so redirected frames are accepted in the nftables
 * and iptables cases too), and threaded NAPI, whose kthread is pinned to CPU 1. So in every case
 * the whole receive path — XDP, or skb build + GRO + ingress hook, or + ip_rcv + PREROUTING —
 * runs in that one thread on CPU 1, and nothing else of the benchmark does.
 *
 * The figure: CPU time of that thread (/proc/<pid>/schedstat) per packet the rule's own counter
 * dropped. On a shared machine the thread gets only part of CPU 1 (the "busy" column), so drops
 * per wall-clock second mostly measure the neighbours; CPU ns per drop does not. The cases run in
 * turn, several rounds, and the median is kept; ratios are against iptables-legacy.
 */
import { mkdtemp, rm, writeFile, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFrame } from '../src/wire/build.ts';
import { NetLab } from '../src/testkit/netlab.ts';
import { run } from '../src/kernel/exec.ts';
import { loadEdge, unloadEdge, type EdgePins } from '../src/kernel/bpf/loader.ts';
import { linuxDosMaps, type DosOp } from '../src/kernel/bpf/dos.ts';
import { compileDos } from '../src/compile/dos/compile.ts';
import { configWithRules } from '../src/compile/dos/fixtures.ts';

const GEN_CPU = 0;
const RX_CPU = 1;
/** Frames per case: ~3 s of generator time at the ~7 Mpps this VM's generator offers. */
const REPEAT = Number(process.env.DOS_BENCH_REPEAT ?? 20_000_000);
const TARGET = '203.0.113.10';
const SRC = '192.0.2.1';
const PORT = 53;
const GEN_MAC = '02:00:00:00:00:01';
const RX_MAC = '02:00:00:00:00:02';

const here = new URL('./dos-drop/', import.meta.url).pathname;

async function must(cmd: string, args: readonly string[]): Promise<string> {
  const r = await run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return r.value.stdout;
}

/** Builds the generator (BPF object and loader) into `dir`. */
async function buildGenerator(dir: string): Promise<{ obj: string; bin: string }> {
  const arch = (await must('gcc', ['-print-multiarch'])).trim() || 'x86_64-linux-gnu';
  const obj = join(dir, 'gen.bpf.o');
  const bin = join(dir, 'gen');
  await must('clang', ['-O2', '-g', '-Wall', '-Werror', '-target', 'bpf', `-I/usr/include/${arch}`, '-c', join(here, 'gen.bpf.c'), '-o', obj]);
  await must('gcc', ['-O2', '-Wall', '-Werror', '-o', bin, join(here, 'gen.c'), '-lbpf']);
  return { obj, bin };
}

/** The PID of the NAPI kthread of `dev` (threaded NAPI names it napi/<dev>-<id>). */
async function napiThread(dev: string): Promise<number> {
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.startsWith(`napi/${dev}-`)) return Number(pid);
  }
  throw new Error(`no NAPI thread napi/${dev}-*: threaded NAPI did not start (is GRO on?)`);
}

/** Nanoseconds a thread has run on a CPU (first field of /proc/<pid>/schedstat). */
async function cpuNs(pid: number): Promise<number> {
  return Number((await readFile(`/proc/${pid}/schedstat`, 'utf8')).split(' ')[0]);
}

interface CaseResult {
  readonly label: string;
  readonly dropped: number;
  readonly seconds: number;
  /** CPU time the receiving NAPI thread used meanwhile (schedstat), ns. */
  readonly cpuNs: number;
  readonly offered: number;
  readonly refused: number;
}

class Bench {
  readonly lab = new NetLab('D');
  private ifindex = 0;
  private gen: { obj: string; bin: string } = { obj: '', bin: '' };
  private frameHex = '';

  async setup(tmp: string): Promise<void> {
    this.gen = await buildGenerator(tmp);
    await this.lab.addNs('g');
    await this.lab.addNs('r');
    await this.lab.veth('g', 'g0', 'r', 'r0');
    await this.lab.ip('g', 'link', 'set', 'dev', 'g0', 'address', GEN_MAC);
    await this.lab.ip('r', 'link', 'set', 'dev', 'r0', 'address', RX_MAC);
    await this.lab.ip('r', 'addr', 'add', '192.0.2.2/30', 'dev', 'r0');
    await this.lab.exec('r', 'ethtool', ['-K', 'r0', 'gro', 'on']);
    await this.lab.exec('r', 'sh', ['-c', 'echo 1 > /sys/class/net/r0/threaded']);
    await must('taskset', ['-pc', String(RX_CPU), String(await napiThread('r0'))]);
    this.ifindex = await this.lab.ifindex('g', 'g0');
    this.frameHex = Buffer.from(
      buildFrame([{ kind: 'eth', src: GEN_MAC, dst: RX_MAC }, { kind: 'ipv4', src: SRC, dst: TARGET }, { kind: 'udp', srcPort: 1024, dstPort: PORT }], 'A'.repeat(18)),
    ).toString('hex');
  }

  private async refusedSoFar(): Promise<number> {
    const out = await this.lab.exec('g', 'ethtool', ['-S', 'g0']);
    return Number(/xdp_xmit_errors:\s*(\d+)/.exec(out)?.[1] ?? 0);
  }

  /** Runs the generator on GEN_CPU; `count` reads the rule's counter. */
  async measure(label: string, count: () => Promise<number>): Promise<CaseResult> {
    // Re-pin: attaching XDP may have restarted the NAPI instance.
    const napi = await napiThread('r0');
    await must('taskset', ['-pc', String(RX_CPU), String(napi)]);
    const before = await count();
    const cpu0 = await cpuNs(napi);
    const refused0 = await this.refusedSoFar();
    const out = await this.lab.exec('g', 'taskset', ['-c', String(GEN_CPU), this.gen.bin, this.gen.obj, String(this.ifindex), String(REPEAT), this.frameHex]);
    const g = JSON.parse(out) as { repeat: number; ns: number };
    await new Promise((r) => setTimeout(r, 200)); // the ring's last few frames
    const cpuUsed = (await cpuNs(napi)) - cpu0;
    const dropped = (await count()) - before;
    return { label, dropped, seconds: g.ns / 1e9, cpuNs: cpuUsed, offered: g.repeat, refused: (await this.refusedSoFar()) - refused0 };
  }

  async nftIngress(): Promise<CaseResult> {
    const table = `${this.lab.prefix}dos`;
    await this.lab.exec('r', 'nft', ['-f', '-'], `table netdev ${table} {\n chain in {\n  type filter hook ingress device r0 priority -500;\n  ip daddr ${TARGET} udp dport ${PORT} counter drop\n }\n}\n`);
    try {
      return await this.measure('nftables netdev ingress on the veth', async () => {
        const j = JSON.parse(await this.lab.exec('r', 'nft', ['-j', 'list', 'chain', 'netdev', table, 'in'])) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> };
        return j.nftables.flatMap((x) => x.rule?.expr ?? []).find((e) => e.counter)?.counter?.packets ?? 0;
      });
    } finally {
      await this.lab.exec('r', 'nft', ['delete', 'table', 'netdev', table]);
    }
  }

  async iptablesRaw(tool: 'iptables-legacy' | 'iptables-nft'): Promise<CaseResult> {
    const rule = ['-d', `${TARGET}/32`, '-p', 'udp', '--dport', String(PORT), '-j', 'DROP'];
    await this.lab.exec('r', tool, ['-t', 'raw', '-A', 'PREROUTING', ...rule]);
    try {
      return await this.measure(`iptables raw PREROUTING (${tool})`, async () => {
        const out = await this.lab.exec('r', tool, ['-t', 'raw', '-L', 'PREROUTING', '-v', '-x', '-n']);
        const line = out.split('\n').find((l) => l.includes('DROP'));
        return Number(line?.trim().split(/\s+/)[0] ?? 0);
      });
    } finally {
      await this.lab.exec('r', tool, ['-t', 'raw', '-D', 'PREROUTING', ...rule]);
    }
  }

  /** Loads xdp_edge under `pinName` and puts the rule into its DoS maps; a text when it cannot. */
  async prepareXdp(pinName: string, edges: EdgePins[]): Promise<XdpCase | string> {
    const pins = await loadEdge(pinName);
    if (!pins.ok) return `cannot load xdp_edge: ${pins.error.message}`;
    edges.push(pins.value);
    return xdpDosRule(pins.value);
  }

  /** One XDP measurement: xdp_edge attached to the receiving veth for its duration. */
  async xdp(c: XdpCase): Promise<CaseResult> {
    const ns = `--net=/run/netns/${this.lab.ns('r')}`;
    await must('nsenter', [ns, 'ip', 'link', 'set', 'dev', 'r0', 'xdpdrv', 'pinned', c.pins.progs.xdpEdge]);
    try {
      return await this.measure('XDP: xdp_edge, the rule as a DoS map entry', c.dropped);
    } finally {
      await must('nsenter', [ns, 'ip', 'link', 'set', 'dev', 'r0', 'xdpdrv', 'off']);
    }
  }
}

/**
 * The XDP row: the rule compiled by the DoS compiler (src/compile/dos) into the DoS stage's maps
 * of our xdp_edge (bpf/dos.h), written as the agent writes them (linuxDosMaps); counted by the
 * rule's own per-CPU counter (dos_stats: packets it dropped).
 */
interface XdpCase {
  readonly pins: EdgePins;
  /** The rule's drop counter. */
  readonly dropped: () => Promise<number>;
}

async function xdpDosRule(pins: EdgePins): Promise<XdpCase | string> {
  const config = configWithRules({ bench: { match: { dst: [`${TARGET}/32`], protocol: 'udp', dport: [PORT] }, action: 'drop' } });
  const tables = compileDos(config, { dc: Object.keys(config.dcs)[0]!, now: Date.now() });
  if (!tables.ok) return `the DoS compiler refused the rule: ${tables.error.map((e) => e.message).join('; ')}`;
  const maps = linuxDosMaps(pins.root);
  const t = tables.value;
  const ops: DosOp[] = [
    ...t.masks.map((mask, index) => ({ kind: 'mask' as const, index, mask })),
    ...t.rules.map((r) => ({ kind: 'rule' as const, slot: r.slot, rule: r.value })),
    ...t.entries.map((e) => ({ kind: 'entry' as const, key: e.key, slots: e.slots })),
    // Last: the stage looks at nothing until nmasks says the masks are there.
    { kind: 'conf' as const, conf: { nmasks: t.masks.length, cpus: maps.cpus() } },
  ];
  const w = await maps.write(ops);
  if (!w.ok) return `writing the DoS maps: ${w.error.message}`;
  const slot = t.rules[0]!.slot;
  return {
    pins,
    dropped: async () => {
      const st = await maps.stats([slot]);
      if (!st.ok) throw new Error(`dos_stats: ${st.error.message}`);
      return Number(st.value.get(slot)?.dropped ?? 0n);
    },
  };
}

/** CPU time of the receive path per dropped packet. */
const nsPerDrop = (r: CaseResult): number => r.cpuNs / Math.max(1, r.dropped);
const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function row(label: string, rs: readonly CaseResult[], baseNs: number): string {
  const ns = median(rs.map(nsPerDrop));
  const best = rs.reduce((a, x) => (x.dropped / x.seconds > a.dropped / a.seconds ? x : a));
  const busy = median(rs.map((r) => r.cpuNs / (r.seconds * 1e9)));
  const offered = median(rs.map((r) => r.offered / r.seconds));
  const refused = median(rs.map((r) => r.refused / r.offered));
  return `| ${label} | ${ns.toFixed(0)} | ${(baseNs / ns).toFixed(2)}× | ${(best.dropped / best.seconds / 1e6).toFixed(3)} | ${(100 * busy).toFixed(0)} % | ${(offered / 1e6).toFixed(2)} | ${(100 * refused).toFixed(0)} % | ${rs.map((r) => nsPerDrop(r).toFixed(0)).join(', ')} |`;
}

/** Rounds of all cases in turn: other work on the machine hits every case alike, and the best round of each is kept. */
const ROUNDS = Number(process.env.DOS_BENCH_ROUNDS ?? 3);

const tmp = await mkdtemp(join(tmpdir(), 'anyedge-dos-bench-'));
const b = new Bench();
const edges: EdgePins[] = [];
try {
  await writeFile(join(tmp, 'README'), 'bench/dos-drop.bench.ts build directory\n');
  await b.setup(tmp);
  const xdp = await b.prepareXdp(`${b.lab.prefix}dos`, edges);
  const runs = new Map<string, CaseResult[]>();
  const keep = (r: CaseResult): void => void runs.set(r.label, [...(runs.get(r.label) ?? []), r]);
  for (let i = 0; i < ROUNDS; i++) {
    if (typeof xdp !== 'string') keep(await b.xdp(xdp));
    keep(await b.nftIngress());
    keep(await b.iptablesRaw('iptables-legacy'));
    keep(await b.iptablesRaw('iptables-nft'));
  }
  const legacy = [...runs].find(([label]) => label.includes('iptables-legacy'))![1];
  const baseNs = median(legacy.map(nsPerDrop));
  console.log(`Rule: UDP to ${TARGET} dport ${PORT}; 60-byte frames; generator on CPU ${GEN_CPU}, receive path (threaded NAPI) on CPU ${RX_CPU}; ${ROUNDS} rounds of every case in turn, ${REPEAT.toLocaleString('en')} frames each.\n`);
  console.log('| drop path | CPU ns per drop (median) | cheaper than iptables-legacy raw | drops Mpps (best round) | NAPI thread busy | offered Mpps | refused by the ring | ns per drop, every round |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---|');
  if (typeof xdp === 'string') console.log(`| XDP: xdp_edge, the rule as a DoS map entry | ${xdp} | | | | | | |`);
  for (const [label, rs] of runs) console.log(row(label, rs, baseNs));
} finally {
  await b.lab.destroy();
  for (const p of edges) await unloadEdge(p);
  await rm(tmp, { recursive: true, force: true });
}
