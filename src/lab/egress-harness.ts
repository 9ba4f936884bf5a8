/**
 * Helpers of the lab's egress tests (egress*.linux.test.ts): run a command in a lab node, read a
 * device's packet counters, fetch from the Internet host, capture on it with tshark, and list
 * the TCP connections a server holds. All through argv (no shell), inside the lab's namespaces.
 */
import { spawn } from 'node:child_process';
import type { EgressOwnership } from '../compile/egress/ownership.ts';
import { BPFFS } from '../kernel/bpf/loader.ts';
import { linuxSteerMaps } from '../kernel/bpf/steer.ts';
import type { SteerCounterName } from '../kernel/bpf/steer-layout.ts';
import { run, type ExecOutput } from '../kernel/exec.ts';
import { cidrContains, mustCidr } from '../model/net.ts';
import { LAB_EGRESS_POOLS } from './config-doc.ts';
import { nodeNs } from './names.ts';
import type { LabPlan } from './topology.ts';

/** Runs argv in a lab node's namespace; throws with the output when it fails (tests only). */
export async function inNode(plan: LabPlan, node: string, argv: readonly string[], timeoutMs = 15_000): Promise<ExecOutput> {
  const r = await run('ip', ['netns', 'exec', nodeNs(plan.prefix, node), ...argv], { timeoutMs });
  if (!r.ok) throw new Error(`${node}: ${argv.join(' ')}: ${r.error.message}`);
  return r.value;
}

/** Packets a device received and sent (`ip -s -j link show`). */
export async function devPackets(plan: LabPlan, node: string, dev: string): Promise<{ rx: number; tx: number }> {
  const out = await inNode(plan, node, ['ip', '-s', '-j', 'link', 'show', 'dev', dev]);
  const [link] = JSON.parse(out.stdout) as Array<{ stats64?: { rx: { packets: number }; tx: { packets: number } } }>;
  return { rx: link?.stats64?.rx.packets ?? 0, tx: link?.stats64?.tx.packets ?? 0 };
}

/** One HTTP GET from a node to the Internet host: what it answered (the address and port it saw). */
export async function whoami(plan: LabPlan, node: string, path: string): Promise<{ peer: string; port: number; path: string }> {
  const { ip, httpPort } = plan.internet;
  const script = `require('http').get({host:'${ip}',port:${httpPort},path:${JSON.stringify(path)},agent:false},r=>{let d='';r.on('data',b=>d+=b);r.on('end',()=>{process.stdout.write(d);process.exit(0)})}).on('error',e=>{console.error(e.code);process.exit(2)});setTimeout(()=>{console.error('timeout');process.exit(3)},5000).unref()`;
  const out = await inNode(plan, node, [process.execPath, '-e', script]);
  return JSON.parse(out.stdout) as { peer: string; port: number; path: string };
}

/** A tshark capture running on the Internet host. */
export interface Capture {
  /**
   * Stops it and returns one row per packet: the fields asked for, tab-separated. With `until`,
   * it first waits (at most `ms`) for the rows to satisfy it: tshark dissects what dumpcap
   * captured with a lag, and a loaded machine can still hold the last packets when SIGINT comes.
   */
  stop(until?: { readonly seen: (rows: string[][]) => boolean; readonly ms: number }): Promise<string[][]>;
}

/**
 * Starts tshark on the Internet host's exchange interface with a capture filter, printing
 * `fields` per packet; resolves once it captures (tshark says so on stderr).
 */
export function captureOnInternet(plan: LabPlan, filter: string, fields: readonly string[]): Promise<Capture> {
  const argv = ['netns', 'exec', nodeNs(plan.prefix, plan.internet.node), 'tshark', '-n', '-l', '-i', plan.internet.dev, '-f', filter, '-T', 'fields', ...fields.flatMap((f) => ['-e', f])];
  const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let errs = '';
  child.stdout.on('data', (b: Buffer) => void (out += b.toString()));
  const rows = (): string[][] => out.split('\n').filter((l) => l.trim() !== '').map((l) => l.split('\t'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start capturing within 15 s: ${errs.trim()}`)), 15_000);
    child.stderr.on('data', (b: Buffer) => {
      errs += b.toString();
      if (/Capturing on/.test(errs)) {
        clearTimeout(timer);
        resolve({
          stop: async (until) => {
            if (until) {
              const deadline = Date.now() + until.ms;
              while (!until.seen(rows()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
            }
            return new Promise((done) => {
              child.on('close', () => done(rows()));
              // SIGINT: tshark flushes what it has before it exits.
              child.kill('SIGINT');
            });
          },
        });
      }
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** The established TCP connections of a node: local and peer address:port (`ss -Htn`). */
export async function tcpConnections(plan: LabPlan, node: string): Promise<Array<{ local: string; peer: string }>> {
  const out = await inNode(plan, node, ['ss', '-Htn', 'state', 'established']);
  return out.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 4)
    // Recv-Q Send-Q Local Peer (the state column is left out when a state is asked for).
    .map((f) => ({ local: f[2] as string, peer: f[3] as string }));
}

/** Who owns (ip, port) by the config: its data center and the server whose slice holds the port. */
export interface SliceOwner {
  readonly dc: string;
  readonly server: string | null;
  readonly slice: number;
}

/** The owner of every assigned egress address's ports, from `egressOwnership` (compile/egress). */
export function sliceOwners(ownership: readonly EgressOwnership[]): (ip: string, port: number) => SliceOwner | null {
  const byIp = new Map(ownership.map((o) => [o.ip, o]));
  return (ip, port) => {
    const o = byIp.get(ip);
    if (!o) return null;
    if (o.owner.kind === 'server') return { dc: o.dc, server: o.owner.server, slice: 0 };
    const slice = Math.floor(port / o.owner.sliceSize);
    return { dc: o.dc, server: o.owner.slices.find((s) => s.slice === slice)?.server ?? null, slice };
  };
}

/** The lab pool (config-doc.ts) an address is in, or undefined. */
export function labPoolOf(ip: string): (typeof LAB_EGRESS_POOLS)[number] | undefined {
  return LAB_EGRESS_POOLS.find((p) => cidrContains(mustCidr(p.cidr), mustCidr(`${ip}/32`)));
}

/**
 * Routes the Internet host sends each egress address's replies by: `ip route replace IP/32 via
 * DC` for each entry (more specific than the /26 BGP gives, and not BIRD's, so BIRD leaves it).
 * `null` removes the address's route, leaving BGP's choice.
 */
export async function routeEgressVia(plan: LabPlan, routesByIp: ReadonlyMap<string, string | null>): Promise<void> {
  for (const [ip, dc] of routesByIp) {
    if (dc === null) {
      await run('ip', ['netns', 'exec', nodeNs(plan.prefix, plan.internet.node), 'ip', 'route', 'del', `${ip}/32`]);
      continue;
    }
    const via = plan.dcs.find((d) => d.id === dc)?.ixIp;
    if (!via) throw new Error(`no data center ${dc}`);
    await inNode(plan, plan.internet.node, ['ip', 'route', 'replace', `${ip}/32`, 'via', via]);
  }
}

/** The XDP steering outcome counters of every server, by node. */
export async function steerCounters(plan: LabPlan): Promise<Map<string, Record<SteerCounterName, bigint>>> {
  const out = new Map<string, Record<SteerCounterName, bigint>>();
  for (const a of plan.agents) {
    const c = await linuxSteerMaps({ root: `${BPFFS}/${a.bpf}` }).counters();
    if (!c.ok) throw new Error(`${a.node}: steering counters: ${c.error.message}`);
    out.set(a.node, c.value);
  }
  return out;
}

/** How much a counter moved per node between two reads. */
export function counterDelta(before: ReadonlyMap<string, Record<SteerCounterName, bigint>>, now: ReadonlyMap<string, Record<SteerCounterName, bigint>>, name: SteerCounterName): Record<string, number> {
  return Object.fromEntries([...now].map(([node, c]) => [node, Number(c[name] - (before.get(node)?.[name] ?? 0n))]));
}
