/**
 * Per-packet cost of xdp_edge's DoS stage by number of rules (root): BPF_PROG_TEST_RUN with
 * `repeat` (the kernel times the runs and reports the mean), for a packet a rule drops and a
 * packet no rule matches (it goes on through the later stages to XDP_PASS), with 0, 1, 100 and
 * 10,000 drop rules installed the way the agent installs them (compile → plan → bpftool batch).
 *
 *   node --import tsx bench/dos-rules.bench.ts
 *
 * The rules are UDP to 203.0.113.100 on one port each, so they share one mask: the cost should
 * not move with their number (one hash lookup per mask). The last row spreads 10,000 rules over
 * 32 (source, destination) prefix-length pairs, the most masks the compiler allows: every mask
 * is looked up for the packet, the worst case of the loop.
 * Runs are pinned to CPU 0; the median of 5 runs of REPEAT packets is reported.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEdge, unloadEdge } from '../src/kernel/bpf/loader.ts';
import { linuxDosMaps } from '../src/kernel/bpf/dos.ts';
import { run } from '../src/kernel/exec.ts';
import { buildFrame } from '../src/wire/build.ts';
import { configWithRules } from '../src/compile/dos/fixtures.ts';
import { apply } from '../src/agent/reconcile.ts';
import { lastDosTables, planDos } from '../src/agent/dos-reconcile.ts';

const REPEAT = 1_000_000;
const RUNS = 5;
const NOW = Date.now();

const frame = (dst: string, dport: number) => buildFrame([{ kind: 'eth' }, { kind: 'ipv4', src: '192.0.2.10', dst }, { kind: 'udp', srcPort: 40000, dstPort: dport }], new Uint8Array(18));

function rules(n: number, spread: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    // Spread: 32 (source, destination) prefix-length pairs within the documentation ranges
    // (/24 … /32 each side, around the benchmark packet's addresses), each pair its own mask.
    const pair = i % 32;
    const match = spread
      ? { protocol: 'udp', src: [prefixOf('192.0.2.10', 24 + (pair % 8))], dst: [prefixOf('203.0.113.100', 24 + Math.floor(pair / 8))], dport: 10_000 + i }
      : { protocol: 'udp', dst: ['203.0.113.100/32'], dport: 10_000 + i };
    out[`r${String(i).padStart(5, '0')}`] = { match, action: 'drop' };
  }
  return out;
}

function prefixOf(ip: string, len: number): string {
  const v = ip.split('.').reduce((a, x) => (a << 8) + Number(x), 0) >>> 0;
  const m = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const n = (v & m) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.')}/${len}`;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('dos-rules.bench needs root (BPF)');
  const loaded = await loadEdge(`aeDB${process.pid}`);
  if (!loaded.ok) throw new Error(`${loaded.error.op}: ${loaded.error.message}`);
  const pins = loaded.value;
  const dos = linuxDosMaps(pins.root);
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-dosbench-'));
  try {
    const install = async (r: Record<string, unknown>): Promise<number> => {
      const t0 = performance.now();
      for (const want of [{}, r]) {
        const s = await planDos(dos, { config: configWithRules(want), dc: 'ams', now: NOW });
        if (!s.ok) throw new Error(`${s.error.path}: ${s.error.message}`);
        const a = await apply([...s.value.adds, ...s.value.dels]);
        if (a.failed) throw new Error(a.failed.error.message);
      }
      return performance.now() - t0;
    };
    const cost = async (f: Uint8Array, want: number): Promise<number> => {
      const file = join(dir, 'in.bin');
      await writeFile(file, f);
      const ns: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await run('taskset', ['-c', '0', 'bpftool', '-j', 'prog', 'run', 'pinned', pins.progs.xdpEdge, 'data_in', file, 'repeat', String(REPEAT)], { timeoutMs: 120_000 });
        if (!r.ok) throw new Error(r.error.message);
        const j = JSON.parse(r.value.stdout) as { retval: number; duration: number };
        if (j.retval !== want) throw new Error(`verdict ${j.retval}, expected ${want}`);
        ns.push(j.duration);
      }
      return ns.sort((a, b) => a - b)[Math.floor(RUNS / 2)]!;
    };
    const rows: string[] = [];
    for (const [n, spread] of [[0, false], [1, false], [100, false], [10_000, false], [10_000, true]] as const) {
      const ms = await install(rules(n, spread));
      const t = lastDosTables(dos)!;
      const hit = n === 0 ? null : await cost(frame('203.0.113.100', 10_000 + Math.floor(n / 2)), 1);
      const miss = await cost(frame('203.0.113.100', 9_999), 2);
      rows.push(`| ${n.toLocaleString('en')} | ${t.masks.length} | ${t.entries.length.toLocaleString('en')} | ${hit === null ? '—' : hit} | ${miss} | ${(ms / 1000).toFixed(1)} |`);
      console.log(rows[rows.length - 1]);
    }
    console.log('\n| rules | masks | entries | ns/packet, dropped by a rule | ns/packet, no rule matches (→ XDP_PASS) | install (empty → rules), s |');
    console.log('|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) console.log(r);
    await install({});
  } finally {
    await rm(dir, { recursive: true, force: true });
    await unloadEdge(pins);
  }
}

await main();
