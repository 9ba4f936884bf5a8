/**
 * Provisioning benchmark (root): time and memory for the reconciler to build N tenants (each 1
 * prefix, 1 GRE tunnel, 20 firewall rules) from empty into a namespace playing the server, a
 * pass with nothing to do, and next to it the raw cost of `ip netns add` + one veth per tenant
 * for the same count. On the real kernel: N = 1 and 100 with IPv4 tenant prefixes (a /32 each of
 * 203.0.113.0/24), N = 100 and 1,000 with IPv6 ones (the i-th /48 from 2001:db8:1000::, clear of
 * the platform's 2001:db8:100::/48; the lab's IPv4 documentation ranges hold only 768 /32s). The
 * wires are unnumbered, so they need no more addresses as N grows. N = 1,000 (IPv6) also on the
 * fake kernel: the control plane's own cost.
 *
 *   node --import tsx bench/provision.bench.ts
 */
import { readFileSync } from 'node:fs';
import { compileServer, type DesiredServer } from '../src/compile/server.ts';
import { mustConfig, acmeDoc } from '../src/agent/fixtures.ts';
import { apply, formatPlan, plan, type ReconcileEnv } from '../src/agent/reconcile.ts';
import { fakeKernel, linuxKernel, marksWith, type Marks } from '../src/kernel/index.ts';
import { fakeBpfMaps, linuxBpfMaps } from '../src/kernel/bpf/maps-api.ts';
import { fakeAttach, linuxAttach } from '../src/kernel/attach.ts';
import { edgePins, loadEdge, unloadEdge } from '../src/kernel/bpf/loader.ts';
import { NetLab } from '../src/testkit/netlab.ts';

function config(n: number, prefixAt: (i: number) => string) {
  const doc = acmeDoc();
  const tenants: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const cidr = prefixAt(i);
    tenants[`t${i}`] = {
      name: `Tenant ${i}`,
      prefixes: { p: { cidr } },
      tunnels: { gre1: { customerEndpoint: '198.51.100.200', key: 1000 + i } },
      routes: { r: { prefix: cidr, via: [{ tunnel: 'gre1' }] } },
      firewall: {
        default: { ingress: 'drop', egress: 'accept' },
        rules: Array.from({ length: 20 }, (_, k) => ({ id: `r${k}`, direction: 'ingress', protocol: k % 2 ? 'udp' : 'tcp', dport: [1000 + k], action: 'accept' })),
      },
    };
  }
  return mustConfig({ ...doc, tenants });
}

function memAvailableKiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function pass(env: ReconcileEnv, d: DesiredServer): Promise<number> {
  const p = await plan(env, d);
  if (!p.ok) throw new Error(p.error.message);
  const r = await apply(p.value);
  if (r.failed) throw new Error(r.failed.error.message);
  return p.value.length;
}

function compile(n: number, marks: Marks, serverNs: string | null, prefixAt: (i: number) => string, linkPool = '192.0.2.0/24'): DesiredServer {
  const d = compileServer(config(n, prefixAt), { dc: 'ams', server: 's1' }, { marks, serverNs, linkPool });
  if (!d.ok) throw new Error(d.error.message);
  return d.value;
}

const rows: string[] = [];

function row(r: string): void {
  rows.push(r);
  console.error(r); // as it comes: a 1,000-tenant run takes minutes
}

type Fam = 'IPv4' | 'IPv6';
const prefixOf = (fam: Fam) => (i: number) => (fam === 'IPv4' ? `203.0.113.${i}/32` : `2001:db8:${(0x1000 + i).toString(16)}::/48`);

async function real(n: number, fam: Fam): Promise<void> {
  const lab = new NetLab('P');
  const marks = marksWith({ prefix: `p${(process.pid % 10000).toString(36)}s` });
  const bpfName = `${lab.prefix}srv`;
  try {
    await lab.addNs('s');
    await lab.addNs('x');
    await lab.veth('s', 'eth0', 'x', 'eth0');
    const pins = await loadEdge(bpfName);
    if (!pins.ok) throw new Error(pins.error.message);
    const env: ReconcileEnv = { kernel: linuxKernel(marks), bpf: linuxBpfMaps(pins.value), attach: linuxAttach(pins.value) };
    const d = compile(n, marks, lab.ns('s'), prefixOf(fam));
    const mem0 = memAvailableKiB();
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const steps = await pass(env, d);
    const t1 = performance.now();
    const again = await plan(env, d);
    const t2 = performance.now();
    if (!again.ok) throw new Error(again.error.message);
    if (again.value.length) throw new Error(`second pass is not empty (${again.value.length} steps):\n${formatPlan(again.value.slice(0, 30))}`);
    const kernelMiB = (mem0 - memAvailableKiB()) / 1024;
    const rssMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
    await pass(env, compile(0, marks, lab.ns('s'), () => ''));
    // Raw cost: the namespaces and veths alone, one ip command each.
    const t3 = performance.now();
    for (let i = 0; i < n; i++) {
      await lab.sh('ip', ['netns', 'add', `${lab.prefix}r${i}`]);
      await lab.ip('s', 'link', 'add', 'name', `rw${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${lab.prefix}r${i}`);
    }
    const t4 = performance.now();
    for (let i = 0; i < n; i++) await lab.sh('ip', ['netns', 'delete', `${lab.prefix}r${i}`]);
    row(
      `| ${n} | ${fam} | real | ${steps} | ${((t1 - t0) / 1000).toFixed(2)} | ${((t2 - t1) / 1000).toFixed(2)} | ${((t4 - t3) / 1000).toFixed(2)} | ${kernelMiB.toFixed(0)} | ${rssMiB.toFixed(0)} |`,
    );
  } finally {
    await linuxKernel(marks).netns.prune([]);
    for (let i = 0; i < n; i++) await lab.sh('ip', ['netns', 'delete', `${lab.prefix}r${i}`]).catch(() => {});
    await lab.destroy();
    await unloadEdge(edgePins(bpfName));
  }
}

async function fake(n: number, fam: Fam): Promise<void> {
  const marks = marksWith({ prefix: 'pf' });
  const kernel = fakeKernel(marks);
  // The fake plays the host itself, with its uplink.
  if (!kernel.foreign.veth(null, 'eth0', 'eth9').ok) throw new Error('fake uplink');
  const env: ReconcileEnv = { kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel) };
  const d = compile(n, marks, null, prefixOf(fam));
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const steps = await pass(env, d);
  const t1 = performance.now();
  const again = await plan(env, d);
  const t2 = performance.now();
  if (!again.ok || again.value.length) throw new Error('second pass is not empty');
  row(`| ${n} | ${fam} | fake | ${steps} | ${((t1 - t0) / 1000).toFixed(2)} | ${((t2 - t1) / 1000).toFixed(2)} | – | – | ${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} |`);
}

// Rows as `N:FAMILY[:fake]` arguments (e.g. `1000:IPv6`), all of them by default.
const wanted = process.argv.slice(2);
const runs: [number, Fam, 'real' | 'fake'][] = [
  [1, 'IPv4', 'real'],
  [100, 'IPv4', 'real'],
  [100, 'IPv6', 'real'],
  [1000, 'IPv6', 'real'],
  [1000, 'IPv6', 'fake'],
];
for (const [n, fam, kind] of runs) {
  if (wanted.length && !wanted.includes(kind === 'real' ? `${n}:${fam}` : `${n}:${fam}:fake`)) continue;
  await (kind === 'real' ? real(n, fam) : fake(n, fam));
}
console.log('| tenants | prefixes | kernel | plan steps | first apply s | no-change pass s | raw netns+veth s | kernel MiB | agent RSS MiB |');
console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
