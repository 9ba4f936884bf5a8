/**
 * `anyedge agent` on the real kernel, as a child process: a namespace plays the server, an LMDB
 * store in a temporary directory holds the Acme example, and the agent provisions it; a changed
 * firewall rule reaches nftables; SIGTERM stops the agent with exit 0 and leaves the kernel as it
 * is (a restarted agent must not disturb traffic). Its /metrics (--metrics) counts the reconciles.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { acmeConfig, acmeDoc, mustConfig } from '../agent/fixtures.ts';
import { mustPut, waitFor, writeConfig } from '../agent/daemon-fixtures.ts';
import { configToEntries } from '../model/keyspace.ts';
import { serverStatusSchema, statusKey } from '../model/status.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { mustOpen } from '../store/lmdb-harness.ts';
import type { LmdbConfigStore } from '../store/lmdb.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { edgePins, unloadEdge } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const lab = new NetLab('G');
// Not a prefix of the lab's namespaces (`aeG…`), nor of other tests' marks.
const prefix = `g${(process.pid % 10000).toString(36)}s`;
const bpfName = `${lab.prefix}agent`;
let child: ChildProcess | null = null;
let dir: string | null = null;
let writer: LmdbConfigStore | null = null;

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  await writer?.close();
  await linuxKernel(marksWith({ prefix })).netns.prune([]);
  await lab.destroy();
  await unloadEdge(edgePins(bpfName));
  if (dir) await rm(dir, { recursive: true, force: true });
});

function firewallWithFtpPort(port: number): unknown {
  const doc = acmeDoc();
  ((doc.tenants.acme as { firewall: { rules: { dport: unknown[] }[] } }).firewall.rules[0] as { dport: unknown[] }).dport = [port];
  return configToEntries(mustConfig(doc)).get('/tenants/acme/firewall');
}

test('anyedge agent provisions the store\'s config, follows a firewall change, and leaves the kernel on SIGTERM', async (t) => {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool', 'nsenter', 'nft'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  await lab.addNs('s');
  await lab.addNs('x');
  await lab.veth('s', 'eth0', 'x', 'eth0');
  dir = await mkdtemp(join(tmpdir(), 'anyedge-agent-cli-'));
  writer = mustOpen({ path: join(dir, 'store'), validation: CONFIG_VALIDATION, noSync: true });
  const rev1 = await writeConfig(writer, acmeConfig());

  const args = [
    join(root, 'bin/anyedge.mjs'), 'agent',
    '--server', 'ams/s1',
    '--store', `lmdb:${join(dir, 'store')}`,
    '--state-dir', join(dir, 'state'),
    '--netns', lab.ns('s'),
    '--prefix', prefix,
    '--bpf', bpfName,
    '--log-level', 'debug',
    '--metrics', '127.0.0.1:0',
  ];
  const proc = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  child = proc;
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const log = () => `agent stderr:\n${stderr}`;

  const tenantNs = `${prefix}-acme`;
  const table = `${prefix}fw`;
  const nsList = async () => (await lab.sh('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
  const ruleset = async () => {
    const r = await lab.sh('ip', ['netns', 'exec', tenantNs, 'nft', '-j', 'list', 'table', 'inet', table]).catch(() => '');
    return r;
  };
  const status = async () => {
    const s = await writer!.get(statusKey('ams', 's1'));
    return s.ok && s.value ? serverStatusSchema.parse(s.value.value) : null;
  };

  await waitFor(`the tenant namespace ${tenantNs}\n${log()}`, async () => (await nsList()).includes(tenantNs), 30_000);
  await waitFor(`the firewall table ${table} in ${tenantNs}\n${log()}`, async () => (await ruleset()).includes('"dport"'), 30_000);
  await waitFor(`the status key reporting revision ${rev1}\n${log()}`, async () => ((await status())?.appliedRevision ?? 0) >= rev1, 30_000);
  const s1 = await status();
  assert.equal(s1?.store.connected, true);
  assert.equal(s1?.lastError, undefined, s1?.lastError?.message);
  assert.ok(!(await ruleset()).includes('2121'));

  const rev2 = await mustPut(writer, '/tenants/acme/firewall', firewallWithFtpPort(2121));
  await waitFor(`the FTP rule on port 2121\n${log()}`, async () => (await ruleset()).includes('2121'), 15_000);
  await waitFor(`the status key reporting revision ${rev2}\n${log()}`, async () => ((await status())?.appliedRevision ?? 0) >= rev2, 15_000);

  const lines = stderr.trim().split('\n').map((l) => JSON.parse(l) as { event: string; level: string; revision?: number; steps?: number });
  assert.ok(lines.some((l) => l.event === 'start'), log());
  assert.ok(lines.some((l) => l.event === 'connected'), log());
  assert.ok(lines.some((l) => l.event === 'applied' && (l.steps ?? 0) > 0), log());
  assert.ok(lines.some((l) => l.event === 'change' && l.revision === rev2), log());

  // --metrics: the agent's reconciles are on its /metrics.
  const url = /"event":"metrics","url":"([^"]+)"/.exec(stderr)?.[1];
  assert.ok(url, log());
  const metrics = await (await fetch(url)).text();
  const ok = /^anyedge_reconcile_duration_seconds_count\{outcome="ok"\} (\d+)/m.exec(metrics);
  assert.ok(ok && Number(ok[1]) >= 2, `reconciles on /metrics:\n${metrics.split('\n').filter((l) => l.includes('reconcile')).join('\n')}`);

  const before = await ruleset();
  proc.kill('SIGTERM');
  const [code, signal] = await exited;
  assert.equal(signal, null, log());
  assert.equal(code, 0, log());
  assert.match(stderr, /"event":"stopping","signal":"SIGTERM"/);
  assert.match(stderr, /"event":"stopped"/);
  // The kernel stays as the agent left it.
  assert.ok((await nsList()).includes(tenantNs), 'the tenant namespace survives the agent');
  assert.equal(await ruleset(), before, 'the firewall survives the agent');
});
