/**
 * `anyedge lab up|down|status|exec`: the emulated multi-data-center network of src/lab/ on this
 * machine (root). Exit codes: 0 done, 1 failed (the message says what to do), 2 a flag is wrong.
 *
 * ```sh
 * anyedge lab up [--dcs 3 --servers 3 --cities 3 --store etcd|lmdb --id a0] [--dry-run]
 * anyedge lab status [--json]
 * anyedge lab exec lon-e1 -- ping -c 1 203.0.113.100
 * anyedge lab fail dc ams        # then: lab heal dc ams (also server ams-s1, link ams|lon)
 * anyedge lab down
 * anyedge lab demo [--dcs 3 --servers 3 --store etcd|lmdb] [--json]   # up, the story on real traffic, down
 * anyedge lab trace --from lon-e1 --to 203.0.113.100:21 [--json]
 * anyedge lab attack syn|udp [--seconds 10 --pps 10000 --from nyc-e1 --legit lon-e1] [--json]
 * ```
 */
import { spawn } from 'node:child_process';
import type { Command } from 'commander';
import type { Io } from './io.ts';
import { renderTable } from './table-view.ts';
import { terminalOf } from './terminal.ts';
import { EXIT_INVALID, EXIT_OK, EXIT_USAGE } from './validate.ts';
import { checkLabId, DEFAULT_LAB_ID, labPrefix } from '../lab/names.ts';
import { formatLabError } from '../lab/errors.ts';
import { DEFAULT_SIZE, findNode, planLab, type LabSize } from '../lab/topology.ts';
import { formatPlan } from '../lab/format.ts';
import { labUp } from '../lab/up.ts';
import { labDown } from '../lab/down.ts';
import { labStatus, type LabStatus } from '../lab/status.ts';
import { DEFAULT_RUN_DIR, labDir, readState } from '../lab/state.ts';
import { FAIL_KINDS, labFailHeal, type FailKind, type FailReport } from '../lab/fail.ts';
import { runLabDemo, type DemoFlags } from './lab-demo.ts';
import { runLabTrace, type TraceFlags } from './lab-trace.ts';
import { ATTACK_DEFAULTS, runLabAttack, type AttackFlags } from './lab-attack.ts';

interface CommonFlags {
  readonly id?: string;
  readonly runDir?: string;
}

interface UpFlags extends CommonFlags {
  readonly dcs?: string;
  readonly servers?: string;
  readonly cities?: string;
  readonly store?: string;
  readonly dryRun?: boolean;
  readonly keepOnFailure?: boolean;
  readonly timeout?: string;
}

function common(o: CommonFlags, io: Io): { id: string; runDir: string } | null {
  const id = checkLabId(o.id ?? DEFAULT_LAB_ID);
  if (!id.ok) {
    io.err(`--${formatLabError(id.error)}\n`);
    return null;
  }
  return { id: id.value, runDir: o.runDir ?? DEFAULT_RUN_DIR };
}

function int(flag: string, text: string | undefined, dflt: number, io: Io): number | null {
  if (text === undefined) return dflt;
  if (!/^\d+$/.test(text)) {
    io.err(`--${flag} ${text}: give a whole number\n`);
    return null;
  }
  return Number(text);
}

/** `lab up`. */
export async function runLabUp(o: UpFlags, io: Io): Promise<number> {
  const c = common(o, io);
  if (!c) return EXIT_USAGE;
  const dcs = int('dcs', o.dcs, DEFAULT_SIZE.dcs, io);
  const servers = int('servers', o.servers, DEFAULT_SIZE.servers, io);
  const cities = int('cities', o.cities, Math.max(2, dcs ?? 2), io);
  const timeout = int('timeout', o.timeout, 120, io);
  if (dcs === null || servers === null || cities === null || timeout === null) return EXIT_USAGE;
  const store = o.store ?? 'etcd';
  if (store !== 'etcd' && store !== 'lmdb') {
    io.err(`--store ${store}: use etcd (a local etcd member, the default) or lmdb (the embedded single-node store)\n`);
    return EXIT_USAGE;
  }
  const size: LabSize = { dcs, servers, cities };
  if (o.dryRun) {
    const p = planLab(c.id, size);
    if (!p.ok) {
      io.err(`lab up: ${p.error.message}\n`);
      return EXIT_USAGE;
    }
    io.out(formatPlan(p.value));
    return EXIT_OK;
  }
  const r = await labUp({ id: c.id, size, store, runDir: c.runDir, waitMs: timeout * 1000, keepOnFailure: o.keepOnFailure === true, log: (l) => io.err(`${l}\n`) });
  if (!r.ok) {
    const usage = r.error.code === 'invalid' && ['dcs', 'servers', 'cities', 'id'].includes(r.error.path);
    io.err(`lab up: ${usage ? r.error.message : formatLabError(r.error)}\n`);
    return usage ? EXIT_USAGE : EXIT_INVALID;
  }
  const p = r.value.plan;
  io.out(`lab ${p.prefix} up in ${r.value.seconds.toFixed(1)} s: ${p.size.dcs} DCs × ${p.size.servers} servers, ${p.size.cities} cities, store ${store} (${r.value.state.store.spec}), config revision ${r.value.state.configRevision ?? '?'}\n`);
  for (const city of p.cities) io.out(`  ${city.eyeball} (${city.eyeballIp}) → ${city.prefers[0]}\n`);
  for (const s of p.sites) io.out(`  ${s.tenant}: ${s.hostIp}:${s.port} behind ${s.router} (${s.routerIp})\n`);
  io.out(`try: anyedge lab exec ${p.cities[0]?.eyeball} -- ping -c 1 ${p.sites[0]?.hostIp}    state: ${labDir(c.runDir, p.prefix)}/state.json\n`);
  return EXIT_OK;
}

/** `lab down`. */
export async function runLabDown(o: CommonFlags, io: Io): Promise<number> {
  const c = common(o, io);
  if (!c) return EXIT_USAGE;
  const r = await labDown(c);
  io.out(`lab ${labPrefix(c.id)} down: ${r.processes.length} process(es) stopped, ${r.pins.length} BPF pin dir(s) and ${r.netns.length} namespace(s) removed\n`);
  for (const p of r.problems) io.err(`lab down: ${p}\n`);
  return r.problems.length ? EXIT_INVALID : EXIT_OK;
}

function renderStatus(s: LabStatus, tty: boolean): string {
  const st = s.state;
  const out: string[] = [];
  out.push(`lab ${st.prefix}: ${st.phase}${st.upSeconds !== undefined ? ` (up in ${st.upSeconds.toFixed(1)} s)` : ''}, ${st.size.dcs} DCs × ${st.size.servers} servers, store ${st.store.spec}, config revision ${st.configRevision ?? '?'}\n`);
  out.push(renderTable({
    head: ['server', 'agent', 'applied', 'seen', 'store', 'tunnels', 'error'],
    rows: s.servers.map((v) => [
      `${v.dc}/${v.server}`,
      v.agentRunning ? 'running' : 'STOPPED',
      String(v.status?.appliedRevision ?? '-'),
      String(v.status?.seenRevision ?? '-'),
      v.status ? (v.status.store.connected ? 'connected' : 'DISCONNECTED') : '-',
      v.status ? v.status.tunnels.map((t) => `${t.tenant}/${t.tunnel}:${t.state}`).join(' ') : '-',
      v.status?.lastError?.message ?? '',
    ]),
  }, tty));
  out.push(renderTable({ head: ['router', 'neighbor', 'bgp'], rows: s.bgp.map((b) => [b.router, b.neighbor, b.established ? 'Established' : b.info || 'down']) }, tty));
  out.push(renderTable({ head: ['city', 'eyeball', 'lands in', 'preference'], rows: s.cities.map((c) => [c.city, c.eyeball, c.landsIn ?? 'NOWHERE', c.prefers]) }, tty));
  out.push(renderTable({
    head: ['tenant', 'prefix', 'service', 'tunnel', 'customer router', 'health (servers up/down/unknown)'],
    rows: s.tenants.map((t) => [t.tenant, t.prefix, t.host, t.tunnel, t.router, t.probed ? `${t.tunnelsUp}/${t.tunnelsDown}/${t.tunnelsUnknown}` : 'not probed']),
  }, tty));
  for (const p of s.problems) out.push(`problem: ${p}\n`);
  return out.join('\n');
}

/** `lab status`: exit 0 when every agent runs and every BGP session is established. */
export async function runLabStatus(o: CommonFlags & { json?: boolean }, io: Io): Promise<number> {
  const c = common(o, io);
  if (!c) return EXIT_USAGE;
  const s = await labStatus(c.id, c.runDir);
  if (!s.ok) {
    io.err(`lab status: ${formatLabError(s.error)}\n`);
    return EXIT_INVALID;
  }
  if (o.json) io.out(`${JSON.stringify(s.value, null, 2)}\n`);
  else io.out(renderStatus(s.value, terminalOf(io).stdoutIsTTY));
  const healthy = s.value.problems.length === 0 && s.value.bgp.every((b) => b.established) && s.value.servers.every((v) => v.agentRunning && v.status !== null);
  return healthy ? EXIT_OK : EXIT_INVALID;
}

/** `lab exec NODE -- CMD…`: runs CMD (argv, no shell) in the node's namespace; its exit code. */
export async function runLabExec(node: string, argv: readonly string[], o: CommonFlags, io: Io): Promise<number> {
  const c = common(o, io);
  if (!c) return EXIT_USAGE;
  if (argv.length === 0) {
    io.err('lab exec: give a command after the node, e.g. anyedge lab exec lon-e1 -- ping -c 1 203.0.113.100\n');
    return EXIT_USAGE;
  }
  const st = readState(labDir(c.runDir, labPrefix(c.id)));
  if (!st.ok) {
    io.err(`lab exec: ${formatLabError(st.error)}\n`);
    return EXIT_INVALID;
  }
  const plan = planLab(st.value.id, st.value.size);
  const n = plan.ok ? findNode(plan.value, node) : undefined;
  if (!plan.ok || !n) {
    io.err(`lab exec: no node ${JSON.stringify(node)} in lab ${st.value.prefix}; nodes: ${plan.ok ? plan.value.nodes.map((x) => x.name).join(', ') : ''}\n`);
    return EXIT_USAGE;
  }
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', n.ns, ...argv], { stdio: ['inherit', 'pipe', 'pipe'] });
    child.stdout.on('data', (b: Buffer) => io.out(b.toString()));
    child.stderr.on('data', (b: Buffer) => io.err(b.toString()));
    child.on('error', (e) => {
      io.err(`lab exec: ${e.message}\n`);
      resolve(EXIT_INVALID);
    });
    child.on('close', (code) => resolve(code ?? EXIT_INVALID));
  });
}

function renderMoves(r: FailReport): string {
  const out = [`${r.action} ${r.kind} ${r.target}: ${r.devices.join(', ')} ${r.action === 'fail' ? 'down' : 'up'}\n`];
  for (const c of r.cities) {
    const where = c.before === c.after ? `${c.after ?? 'nowhere'} (unchanged)` : `${c.before ?? 'nowhere'} → ${c.after ?? 'nowhere'}`;
    out.push(`  ${c.city}: ${where}${c.seconds === null ? ' NOT CONVERGED' : c.before === c.after ? '' : ` in ${c.seconds.toFixed(2)} s`}\n`);
  }
  return out.join('');
}

/** `lab fail|heal KIND TARGET`: exit 0 when every city converged where expected. */
export async function runLabFailHeal(action: 'fail' | 'heal', kind: string, target: string, o: CommonFlags & { timeout?: string; json?: boolean }, io: Io): Promise<number> {
  const c = common(o, io);
  if (!c) return EXIT_USAGE;
  if (!(FAIL_KINDS as readonly string[]).includes(kind)) {
    io.err(`lab ${action}: ${JSON.stringify(kind)}: use one of ${FAIL_KINDS.join(', ')}\n`);
    return EXIT_USAGE;
  }
  const timeout = int('timeout', o.timeout, 20, io);
  if (timeout === null) return EXIT_USAGE;
  const r = await labFailHeal(c.id, c.runDir, action, kind as FailKind, target, timeout * 1000);
  if (!r.ok) {
    io.err(`lab ${action}: ${formatLabError(r.error)}\n`);
    return r.error.path === 'target' ? EXIT_USAGE : EXIT_INVALID;
  }
  io.out(o.json ? `${JSON.stringify(r.value, null, 2)}\n` : renderMoves(r.value));
  return r.value.converged ? EXIT_OK : EXIT_INVALID;
}

/** Adds `anyedge lab …` to the program; `done` receives the exit code. */
export function registerLabCommand(program: Command, io: Io, done: (code: number) => void): void {
  const lab = program.command('lab').description('an emulated multi-data-center network on this machine (root): data centers with BIRD and agents, eyeball cities, customers');
  const withCommon = (cmd: Command): Command =>
    cmd.option('--id <id>', `lab id, 2 characters a–z0–9 (default ${DEFAULT_LAB_ID}); everything is named ael<id>…`).option('--run-dir <dir>', `state, logs and store (default ${DEFAULT_RUN_DIR})`);
  withCommon(lab.command('up').description('build the lab and wait until BGP is established and every agent applied the config'))
    .option('--dcs <n>', `data centers (default ${DEFAULT_SIZE.dcs})`)
    .option('--servers <n>', `servers per data center (default ${DEFAULT_SIZE.servers})`)
    .option('--cities <n>', 'eyeball cities (default: one per data center, at least 2)')
    .option('--store <kind>', 'etcd (default) or lmdb')
    .option('--timeout <s>', 'seconds to wait for BGP and the agents (default 120)')
    .option('--dry-run', 'print the plan and build nothing')
    .option('--keep-on-failure', 'leave a failed lab in place to look at (then lab down)')
    .action(async (o: UpFlags) => done(await runLabUp(o, io)));
  withCommon(lab.command('demo').description('the lab\'s story on real traffic: up, Acme provisioned through the API, two cities in two DCs, a blocked port, a DC and a server failing; then down (also on Ctrl-C)'))
    .option('--dcs <n>', `data centers (default ${DEFAULT_SIZE.dcs}, at least 2)`)
    .option('--servers <n>', `servers per data center (default ${DEFAULT_SIZE.servers}, at least 2)`)
    .option('--store <kind>', 'etcd (default) or lmdb')
    .option('--json', 'print the report as JSON (the narrative goes to stderr)')
    .action(async (o: DemoFlags) => done(await runLabDemo(o, io)));
  withCommon(lab.command('trace').description('send one real TCP connection and report hop by hop which DC, which server and which rule handled it (counters as evidence)'))
    .option('--from <eyeball>', 'the eyeball node, e.g. lon-e1')
    .option('--to <host:port>', 'e.g. 203.0.113.100:21')
    .option('--json', 'print JSON')
    .action(async (o: TraceFlags) => done(await runLabTrace(o, io)));
  withCommon(lab.command('attack').description('a bounded hping3 SYN or UDP flood from one eyeball against Acme while another keeps using it; the mitigation installed through the REST API; judged by the servers\' XDP counters'))
    .argument('<kind>', 'syn | udp')
    .option('--seconds <s>', `how long the flood lasts at most (default ${ATTACK_DEFAULTS.seconds})`)
    .option('--pps <n>', `packets per second asked of hping3 (default ${ATTACK_DEFAULTS.pps})`)
    .option('--from <eyeball>', 'the attacking eyeball (default: another city landing in the legitimate client\'s DC, if any)')
    .option('--legit <eyeball>', 'the legitimate client\'s eyeball (default: the first city\'s)')
    .option('--syn-mitigation <how>', 'syn: xdp (default: the tenant\'s SYN cookies in XDP), synproxy (nftables in the tenant namespace) or rate-limit (a DoS rule per source)')
    .option('--keep-rule', 'leave the mitigation in the store (a DoS rule expires after 10 minutes)')
    .option('--json', 'print the report as JSON')
    .action(async (kind: string, o: AttackFlags) => done(await runLabAttack(kind, o, io)));
  withCommon(lab.command('down').description('remove the lab: its processes, BPF pins, namespaces and files (also after a crash)'))
    .action(async (o: CommonFlags) => done(await runLabDown(o, io)));
  withCommon(lab.command('status').description('data centers, servers and their agents, BGP sessions, where each city lands, tenants and tunnels'))
    .option('--json', 'print JSON')
    .action(async (o: CommonFlags & { json?: boolean }) => done(await runLabStatus(o, io)));
  withCommon(lab.command('exec').description('run a command in a lab node\'s namespace, e.g. lab exec lon-e1 -- ping 203.0.113.100'))
    .argument('<node>', 'node name (ams, ams-s1, lon, lon-e1, acme, acme-h, …) or its netns')
    .argument('[command...]', 'the command and its arguments, after --')
    .action(async (node: string, argv: string[], o: CommonFlags) => done(await runLabExec(node, argv, o, io)));
  for (const action of ['fail', 'heal'] as const) {
    withCommon(lab.command(action).description(action === 'fail'
      ? 'break part of the lab (dc X: all its servers; server DC-S: one uplink; link R: a router\'s exchange port) and time the cities\' BGP re-convergence'
      : 'mend what lab fail broke and time the cities\' return'))
      .argument('<kind>', FAIL_KINDS.join(' | '))
      .argument('<target>', 'e.g. ams, ams-s1, lon')
      .option('--timeout <s>', 'seconds to wait for the cities to converge (default 20)')
      .option('--json', 'print JSON')
      .action(async (kind: string, target: string, o: CommonFlags & { timeout?: string; json?: boolean }) => done(await runLabFailHeal(action, kind, target, o, io)));
  }
}
