/**
 * Data-path benchmark in real namespaces (root): UDP packets per second through a tenant's
 * firewall namespace, and through the anycast GRE tunnel versus plain forwarding.
 *
 *   node --import tsx bench/datapath.bench.ts
 *
 * Firewall: client → fw (the tenant namespace, running compileFirewall's table) → server, 64-byte
 * UDP datagrams from iperf3 at full speed for a few seconds each; what the server receives per
 * second is the figure. Rule sets, all letting the benchmark's own traffic through after
 * being evaluated:
 * - 10 rules: ten single-port drop rules (ports the traffic does not use), then accept;
 * - 10,000 ports in one rule: one drop rule whose port list compiles to a set (one lookup);
 * - 10,000 rules: the same ports as 10,000 single-port rules, which the compiler keeps as
 *   10,000 rules (each has its own counter): a linear chain.
 * GRE: eyeball → server → tenant → tunnel → customer router → host, the programs of bpf/
 * attached as in src/kernel/bpf/datapath.test.ts, against the same path with plain routes.
 *
 * Both cores are shared by sender, receiver and the forwarding softirqs, so the absolute numbers
 * are this VM's; the ratios are the point.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileFirewall, stringifyNft } from '../src/compile/firewall/index.ts';
import { mustFirewall } from '../src/compile/firewall/fixtures.ts';
import { buildGreLab, HOST } from '../src/kernel/bpf/datapath-fixture.ts';
import { unloadEdge, type EdgePins } from '../src/kernel/bpf/loader.ts';
import { NetLab } from '../src/testkit/netlab.ts';

const SECONDS = 4;

interface IperfResult {
  readonly pps: number;
  readonly sentPps: number;
}

async function iperfUdp(lab: NetLab, from: string, to: string, addr: string): Promise<IperfResult> {
  const server = lab.spawn(to, 'iperf3', ['-s', '-1', '-B', addr]);
  await new Promise((r) => setTimeout(r, 500));
  const out = await lab.exec(from, 'iperf3', ['-c', addr, '-u', '-b', '0', '-l', '64', '-t', String(SECONDS), '-J']);
  server.kill();
  const j = JSON.parse(out) as { end: { sum: { packets: number; lost_packets: number; seconds: number } } };
  const s = j.end.sum;
  return { pps: (s.packets - s.lost_packets) / s.seconds, sentPps: s.packets / s.seconds };
}

function rulesFirewall(kind: 'none' | 'ten' | 'set' | 'linear'): unknown {
  const ports = Array.from({ length: 10_000 }, (_, i) => 10_000 + 2 * i); // every other port: no range merging
  const rules =
    kind === 'none'
      ? []
      : kind === 'ten'
        ? ports.slice(0, 10).map((p) => ({ id: `r${p}`, direction: 'ingress', protocol: 'udp', dport: [p], action: 'drop' }))
        : kind === 'set'
          ? [{ id: 'many', direction: 'ingress', protocol: 'udp', dport: ports, action: 'drop' }]
          : ports.map((p) => ({ id: `r${p}`, direction: 'ingress', protocol: 'udp', dport: [p], action: 'drop' }));
  return { default: { ingress: 'accept', egress: 'accept' }, rules };
}

async function firewallBench(): Promise<void> {
  const lab = new NetLab('B');
  const tmp = await mkdtemp(join(tmpdir(), 'anyedge-bench-'));
  try {
    for (const n of ['c', 'f', 's']) await lab.addNs(n);
    await lab.veth('c', 'eth0', 'f', 'upl');
    await lab.veth('f', 'tun', 's', 'eth0');
    await lab.ip('c', 'addr', 'add', '192.0.2.1/30', 'dev', 'eth0');
    await lab.ip('c', 'route', 'add', 'default', 'via', '192.0.2.2');
    await lab.ip('f', 'addr', 'add', '192.0.2.2/30', 'dev', 'upl');
    await lab.ip('f', 'addr', 'add', '203.0.113.1/25', 'dev', 'tun');
    await lab.ip('s', 'addr', 'add', '203.0.113.100/25', 'dev', 'eth0');
    await lab.ip('s', 'route', 'add', 'default', 'via', '203.0.113.1');
    console.log('| firewall in the tenant namespace | nft rules | received kpps | sent kpps |');
    console.log('|---|---:|---:|---:|');
    for (const [kind, label] of [
      ['none', 'no table'],
      ['ten', '10 rules'],
      ['set', '10,000 ports in one rule (set)'],
      ['linear', '10,000 single-port rules (linear chain)'],
    ] as const) {
      let nrules = 0;
      if (kind !== 'none') {
        const batch = compileFirewall('bench', mustFirewall(rulesFirewall(kind)), { uplink: 'upl', tunnels: ['tun'] });
        nrules = batch.nftables.filter((c) => typeof c === 'object' && c !== null && 'add' in c && typeof c.add === 'object' && c.add !== null && 'rule' in c.add).length;
        const file = join(tmp, `${kind}.json`);
        await writeFile(file, stringifyNft(batch));
        await lab.exec('f', 'nft', ['-j', '-f', file]);
      }
      const r = await iperfUdp(lab, 'c', 's', '203.0.113.100');
      console.log(`| ${label} | ${nrules} | ${(r.pps / 1000).toFixed(0)} | ${(r.sentPps / 1000).toFixed(0)} |`);
      await lab.exec('f', 'nft', ['flush', 'ruleset']);
    }
  } finally {
    await lab.destroy();
    await rm(tmp, { recursive: true, force: true });
  }
}

async function greBench(): Promise<void> {
  const lab = new NetLab('G');
  const edges: EdgePins[] = [];
  try {
    await buildGreLab(lab, edges);
    console.log('\n| path eyeball → customer host (64-byte UDP) | received kpps | sent kpps |');
    console.log('|---|---:|---:|');
    const gre = await iperfUdp(lab, 'e', 'h', HOST);
    console.log(`| anycast GRE: server → tenant → tc encap → server → XDP decap → customer router → host | ${(gre.pps / 1000).toFixed(0)} | ${(gre.sentPps / 1000).toFixed(0)} |`);
    // The same hops without the tunnel: the tenant sends the packet back to the server (over its
    // uplink veth instead of the tunnel pair), which by a rule on that veth forwards it to the
    // customer router, which routes it to the host.
    await lab.ip('t', 'route', 'replace', '203.0.113.0/25', 'via', '192.0.2.13');
    await lab.ip('s', 'rule', 'add', 'iif', 't0', 'lookup', '100', 'priority', '100');
    await lab.ip('s', 'route', 'add', '203.0.113.0/25', 'via', '192.0.2.2', 'table', '100');
    await lab.ip('c', 'route', 'replace', '192.0.2.8/30', 'via', '192.0.2.1');
    const plain = await iperfUdp(lab, 'e', 'h', HOST);
    console.log(`| plain forwarding over the same namespaces and links | ${(plain.pps / 1000).toFixed(0)} | ${(plain.sentPps / 1000).toFixed(0)} |`);
  } finally {
    await lab.destroy();
    for (const p of edges) await unloadEdge(p);
  }
}

await firewallBench();
await greBench();
