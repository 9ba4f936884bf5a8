/**
 * Real-kernel tests: compiled batches loaded with `nft -j -f -` into namespaces this test creates
 * (names `aeF<pid><x>`), with real traffic between a client ("the Internet") and a server ("the
 * customer") through a firewall namespace that routes between two veths:
 *
 *   client 192.0.2.2, 2001:db8:2::2 ── eth0 | up0 ─ firewall ─ tun0 | eth0 ── server 203.0.113.100, 2001:db8:113::100
 *
 * Every command is an argv array and every batch goes on stdin; the root namespace's nftables is
 * never touched. The namespaces and the server process are removed in `finally`, also on failure.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../../testkit/needs.ts';
import { compileFirewall, type FirewallOptions } from './compile.ts';
import { formatNft } from './format.ts';
import type { Json, NftCommand, NftJson } from './nft.ts';
import { fixtureNames, loadFixture, mustFirewall } from './fixtures.ts';

const PEER = fileURLToPath(new URL('./testdata/peer.mjs', import.meta.url));
const TAG = `aeF${process.pid % 10_000_000}`;
const NS = { cli: `${TAG}c`, fw: `${TAG}f`, srv: `${TAG}s`, scratch: `${TAG}x` } as const;
const TABLE = 'aefw';
const OPTS: FirewallOptions = { uplink: 'up0', tunnels: ['tun0'], table: TABLE };
const SRV4 = '203.0.113.100';
const SRV6 = '2001:db8:113::100';

interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs argv with `input` on stdin; never a shell. The input goes through a temporary file opened
 * as stdin, not a pipe: node's stdio pipes are socketpairs, and nft 1.0.6 reads `-f -` by opening
 * /dev/stdin, which fails on a socket with ENXIO ("No such device or address").
 */
function run(cmd: string, args: readonly string[], input = '', timeoutMs = 30_000): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'aeF-'));
  const file = join(dir, 'stdin');
  writeFileSync(file, input, { mode: 0o600 });
  const fd = openSync(file, 'r');
  return new Promise<RunResult>((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: [fd, 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  }).finally(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
}

async function must(cmd: string, args: readonly string[], input = ''): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${String(r.code)}: ${r.stderr.trim()}`);
  return r.stdout;
}

const inNs = (ns: string, argv: readonly string[]): string[] => ['netns', 'exec', ns, ...argv];
const nft = (ns: string, args: readonly string[], input = ''): Promise<RunResult> => run('ip', inNs(ns, ['nft', ...args]), input);
const apply = (ns: string, batch: NftJson): Promise<RunResult> => nft(ns, ['-j', '-f', '-'], JSON.stringify(batch));
const peer = (args: readonly string[]): Promise<string> => must('ip', inNs(NS.cli, [process.execPath, PEER, ...args])).then((s) => s.trim());

/** Per-counter packets, from `nft -j list counters table inet <table>`. */
async function counters(ns: string): Promise<Map<string, number>> {
  const out = JSON.parse(await must('ip', inNs(ns, ['nft', '-j', 'list', 'counters', 'table', 'inet', TABLE]))) as { nftables: { counter?: { name: string; packets: number } }[] };
  return new Map(out.nftables.flatMap((c) => (c.counter ? [[c.counter.name, c.counter.packets] as const] : [])));
}

async function listTable(ns: string): Promise<string> {
  return must('ip', inNs(ns, ['nft', '-j', 'list', 'table', 'inet', TABLE]));
}

const TRAFFIC_FIREWALL = {
  default: { ingress: 'drop', egress: 'accept' },
  rules: [
    { id: 'ftp', description: 'the seed rule', direction: 'ingress', dst: [SRV4], protocol: 'tcp', dport: ['20-21'], action: 'accept' },
    { id: 'ftp6', direction: 'ingress', dst: [SRV6], protocol: 'tcp', dport: ['20-21'], action: 'accept' },
    { id: 'echo', direction: 'ingress', dst: [SRV4, SRV6], protocol: 'udp', dport: [7], action: 'accept' },
  ],
};

/** The same, with SSH (22) allowed instead of FTP: the "new" ruleset of the change tests. */
const SSH_FIREWALL = {
  default: { ingress: 'drop', egress: 'accept' },
  rules: [
    { id: 'ssh', direction: 'ingress', dst: [SRV4], protocol: 'tcp', dport: [22], action: 'accept' },
    { id: 'echo', direction: 'ingress', dst: [SRV4, SRV6], protocol: 'udp', dport: [7], action: 'accept' },
  ],
};

async function setup(): Promise<void> {
  for (const ns of Object.values(NS)) await must('ip', ['netns', 'add', ns]);
  // Created inside the firewall namespace with the peer placed directly in its own namespace, so
  // no interface of ours ever exists in the root namespace.
  await must('ip', ['-n', NS.fw, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.cli]);
  await must('ip', ['-n', NS.fw, 'link', 'add', 'tun0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.srv]);
  const addrs: [string, string, string][] = [
    [NS.cli, 'eth0', '192.0.2.2/24'],
    [NS.cli, 'eth0', '2001:db8:2::2/64'],
    [NS.fw, 'up0', '192.0.2.1/24'],
    [NS.fw, 'up0', '2001:db8:2::1/64'],
    [NS.fw, 'tun0', '203.0.113.1/24'],
    [NS.fw, 'tun0', '2001:db8:113::1/64'],
    [NS.srv, 'eth0', `${SRV4}/24`],
    [NS.srv, 'eth0', `${SRV6}/64`],
  ];
  // nodad: duplicate address detection would hold IPv6 addresses back for a second or two.
  for (const [ns, dev, a] of addrs) await must('ip', ['-n', ns, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : [])]);
  for (const [ns, dev] of [[NS.cli, 'eth0'], [NS.cli, 'lo'], [NS.fw, 'up0'], [NS.fw, 'tun0'], [NS.fw, 'lo'], [NS.srv, 'eth0'], [NS.srv, 'lo'], [NS.scratch, 'lo']] as const)
    await must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  await must('ip', ['-n', NS.cli, 'route', 'add', 'default', 'via', '192.0.2.1']);
  await must('ip', ['-n', NS.cli, '-6', 'route', 'add', 'default', 'via', '2001:db8:2::1']);
  await must('ip', ['-n', NS.srv, 'route', 'add', 'default', 'via', '203.0.113.1']);
  await must('ip', ['-n', NS.srv, '-6', 'route', 'add', 'default', 'via', '2001:db8:113::1']);
  await must('ip', inNs(NS.fw, [process.execPath, PEER, 'forward']));
}

/** Starts the server peer; resolves once it listens. */
function startServer(): Promise<ChildProcessWithoutNullStreams> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', inNs(NS.srv, [process.execPath, PEER, 'server', '20', '21', '22']), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 10_000);
    p.on('error', reject);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(p);
      }
    });
  });
}

/** Asks the server how many datagrams reached its UDP 9 sink. */
function discarded(server: ChildProcessWithoutNullStreams): Promise<number> {
  return new Promise((resolve) => {
    const onData = (d: Buffer): void => {
      const m = /discard (\d+)/.exec(d.toString());
      if (m) {
        server.stdout.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    server.stdout.on('data', onData);
    server.stdin.write('report\n');
  });
}

async function cleanup(server: ChildProcessWithoutNullStreams | undefined): Promise<void> {
  if (server && server.exitCode === null) {
    server.stdin.end();
    server.kill('SIGKILL');
  }
  // Deleting a namespace removes its veths (and their peers) with it.
  for (const ns of Object.values(NS)) await run('ip', ['netns', 'del', ns]);
}

test('firewall in a real kernel', { timeout: 180_000 }, async (t: TestContext) => {
  if (!needs(t, { root: true, tools: ['ip', 'nft'] })) return;
  let server: ChildProcessWithoutNullStreams | undefined;
  try {
    await setup();
    server = await startServer();
    const srv = server;

    await t.test('every golden batch loads, replacing the previous one', async () => {
      for (const name of fixtureNames()) {
        const fx = loadFixture(name);
        const batch = compileFirewall(fx.tenant, fx.firewall, fx.options);
        const r = await apply(NS.scratch, batch);
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        // Replacement, not accumulation: the table holds exactly the batch's rules and counters.
        const table = fx.options.table ?? 'aefw';
        const listed = JSON.parse(await must('ip', inNs(NS.scratch, ['nft', '-j', 'list', 'table', 'inet', table]))) as { nftables: Record<string, unknown>[] };
        const count = (kind: string, cmds: readonly Record<string, unknown>[]): number => cmds.filter((c) => kind in c).length;
        const sent = batch.nftables.flatMap((c) => (c.add && typeof c.add === 'object' ? [c.add as Record<string, unknown>] : []));
        for (const kind of ['rule', 'counter', 'chain', 'set', 'map']) assert.equal(count(kind, listed.nftables), count(kind, sent), `${name}: ${kind}s`);
        // The kernel's listing renders to the same text as the batch (the plan): what `anyedge
        // plan` shows is what the kernel holds. Only the header and counter values differ.
        const body = (text: string): string => text.split('\n').slice(1).filter((l) => !l.includes('packets ')).join('\n');
        assert.equal(body(formatNft(listed as unknown as NftJson)), body(formatNft(batch)), `${name}: listing and plan differ`);
      }
    });

    await t.test('the seed rule is `ip daddr 203.0.113.100 tcp dport 20-21 accept` in the kernel', async () => {
      const fx = loadFixture('seed-ftp');
      const batch = compileFirewall(fx.tenant, fx.firewall, fx.options);
      assert.equal((await apply(NS.scratch, batch)).code, 0);
      const text = await must('ip', inNs(NS.scratch, ['nft', 'list', 'chain', 'inet', 'aefw', 'ingress_tcp']));
      const line = text.split('\n').map((l) => l.trim()).find((l) => l.includes('comment "ftp"'));
      assert.equal(line, 'ip daddr 203.0.113.100 tcp dport 20-21 counter name "rule_ftp" accept comment "ftp"');
      // Our text rendering prints the same line as nft does.
      assert.ok(formatNft(batch).split('\n').map((l) => l.trim()).includes(line), 'formatNft renders the seed rule as nft lists it');
      // And the kernel holds exactly the expressions we sent.
      const listed = JSON.parse(await must('ip', inNs(NS.scratch, ['nft', '-j', 'list', 'chain', 'inet', 'aefw', 'ingress_tcp']))) as { nftables: { rule?: { comment?: string; expr: Json } }[] };
      const sent = batch.nftables.flatMap((c) => {
        const rule = (c.add as { rule?: { chain: string; comment?: string; expr: Json } } | undefined)?.rule;
        return rule && rule.comment === 'ftp' ? [rule.expr] : [];
      });
      assert.deepEqual(listed.nftables.flatMap((c) => (c.rule?.comment === 'ftp' ? [c.rule.expr] : [])), sent);
    });

    await t.test('traffic: allowed ports pass, others are dropped, counters count them', async () => {
      const fw = mustFirewall(TRAFFIC_FIREWALL);
      const r = await apply(NS.fw, compileFirewall('acme', fw, OPTS));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await peer(['tcp', SRV4, '21', '3000']), 'open');
      assert.equal(await peer(['tcp', SRV4, '22', '1000']), 'timeout');
      assert.equal(await peer(['tcp', SRV6, '21', '3000']), 'open');
      assert.equal(await peer(['tcp', SRV6, '22', '1000']), 'timeout');
      assert.equal(await peer(['udp', SRV4, '7', '3', '2000']), '3');
      assert.equal(await peer(['udp', SRV6, '7', '2', '2000']), '2');
      const c = await counters(NS.fw);
      // Exactly the five datagrams, across both families' nft rules of one tenant rule.
      assert.equal(c.get('rule_echo'), 5);
      // SYN, the ACK with "hi", FIN at least; nothing else hits these rules.
      assert.ok((c.get('rule_ftp') ?? 0) >= 3, `rule_ftp ${String(c.get('rule_ftp'))}`);
      assert.ok((c.get('rule_ftp6') ?? 0) >= 3, `rule_ftp6 ${String(c.get('rule_ftp6'))}`);
      // The SYNs to port 22 (and their retransmissions) went to the default.
      assert.ok((c.get('default_ingress') ?? 0) >= 2, `default_ingress ${String(c.get('default_ingress'))}`);
      assert.ok((c.get('default_egress') ?? 0) >= 5, 'replies went out through the egress default');
      assert.equal(c.get('no_direction'), 0);
    });

    await t.test('a batch failing in the middle leaves the old ruleset intact and working', async (st) => {
      assert.equal((await apply(NS.fw, compileFirewall('acme', mustFirewall(TRAFFIC_FIREWALL), OPTS))).code, 0);
      const before = await listTable(NS.fw);
      const good = compileFirewall('acme', mustFirewall(SSH_FIREWALL), OPTS);
      // A rule jumping to a chain that does not exist, placed after the table was deleted and
      // half of the new one built: the kernel refuses it mid-transaction.
      const cmds = [...good.nftables];
      const bad: NftCommand = { add: { rule: { family: 'inet', table: TABLE, chain: 'ingress', expr: [{ jump: { target: 'no_such_chain' } }] } } };
      cmds.splice(Math.floor(cmds.length * 0.75), 0, bad);
      const r = await apply(NS.fw, { nftables: cmds });
      assert.notEqual(r.code, 0, 'the broken batch must be refused');
      st.diagnostic(`nft refused the broken batch: ${r.stderr.trim().split('\n')[0] ?? ''}`);
      assert.equal(await listTable(NS.fw), before, 'the table is exactly as before, handles included');
      assert.equal(await peer(['tcp', SRV4, '21', '3000']), 'open');
      assert.equal(await peer(['tcp', SRV4, '22', '1000']), 'timeout');
      // The same change without the broken command applies, and traffic follows it.
      assert.equal((await apply(NS.fw, good)).code, 0);
      assert.equal(await peer(['tcp', SRV4, '22', '3000']), 'open');
      assert.equal(await peer(['tcp', SRV4, '21', '1000']), 'timeout');
    });

    await t.test('replacing the table never lets a packet through unfiltered', async (st) => {
      const batch = compileFirewall('acme', mustFirewall(TRAFFIC_FIREWALL), OPTS);
      assert.equal((await apply(NS.fw, batch)).code, 0);
      // While UDP 9 (dropped by the default) is flooded, the table is replaced over and over. A
      // moment without the table would forward datagrams to the server's UDP 9 sink.
      const loop = async (b: (i: number) => Promise<void>): Promise<{ leaked: number; sent: number }> => {
        const start = await discarded(srv);
        const flood = peer(['flood', SRV4, '9', '3000']);
        for (let i = 0; i < 25; i++) await b(i);
        const sent = Number(await flood);
        await peer(['udp', SRV4, '7', '1', '1000']); // a round trip, so the sink has seen all that passed
        return { leaked: (await discarded(srv)) - start, sent };
      };
      const atomic = await loop(async () => {
        const r = await apply(NS.fw, batch);
        assert.equal(r.code, 0, r.stderr);
      });
      assert.ok(atomic.sent > 1000, `the flood sent only ${atomic.sent} datagrams`);
      assert.equal(atomic.leaked, 0, `${atomic.leaked} of ${atomic.sent} datagrams got through during replacement`);
      // Control: the same replacement split into two transactions (delete, then recreate) does let
      // datagrams through, so the probe above can see a gap when there is one.
      const del: NftJson = { nftables: batch.nftables.slice(0, 3) };
      const recreate: NftJson = { nftables: batch.nftables.slice(3) };
      const split = await loop(async () => {
        assert.equal((await apply(NS.fw, del)).code, 0);
        assert.equal((await apply(NS.fw, recreate)).code, 0);
      });
      st.diagnostic(`atomic: ${atomic.leaked}/${atomic.sent} leaked; split control: ${split.leaked}/${split.sent} leaked`);
      assert.ok(split.leaked > 0, `the non-atomic control leaked nothing (${split.sent} sent); the probe is blind`);
    });
  } finally {
    await cleanup(server);
  }
});
