/**
 * The lab on the real kernel, through the CLI: `lab up` at 2 DCs × 2 servers (etcd store), then
 * - every BGP session is established and `lab status` says so;
 * - from the eyeball of city lon and from the one of city nyc, a TCP connection to Acme's
 *   203.0.113.100:21 carries data end to end through the anycast GRE tunnel (the payload comes
 *   back from the echo service), and the two cities land in two different DCs: the Acme firewall
 *   rule counter (`rule_ftp`) moves on the servers of the DC each city prefers, and only there;
 * - a connection to port 22 is dropped (no answer at all; the default-ingress counter moves);
 * - `lab fail dc ams` withdraws ams (lon moves to chi, its TCP goes through chi) and
 *   `lab heal dc ams` brings it back; both convergence times are reported;
 * - `lab down` leaves no namespace, veth or bridge (they live only in our namespaces), BPF pin,
 *   process or file of the lab.
 * A unique lab id per run; `lab down` also runs in `after`, so a failure leaves nothing behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { main } from '../cli/main.ts';
import type { Io } from '../cli/io.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { addNetns, listNetns } from '../kernel/labnet.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { labDown, labPins } from './down.ts';
import { labPrefix } from './names.ts';
import { findMarked } from './procs.ts';
import { labDir } from './state.ts';
import { labStatus } from './status.ts';
import { planLab, type LabPlan } from './topology.ts';
import { requiredTools } from './up.ts';

// Two base-36 characters from the pid: unique among concurrent runs on this machine.
const id = (process.pid % 1296).toString(36).padStart(2, '0');
const prefix = labPrefix(id);
let runDir: string | null = null;

after(async () => {
  if (runDir) {
    await labDown({ id, runDir });
    await rm(runDir, { recursive: true, force: true });
  }
});

function capture(): Io & { text(): string; errors(): string } {
  let out = '';
  let errs = '';
  return { out: (t) => void (out += t), err: (t) => void (errs += t), text: () => out, errors: () => errs };
}

/** `anyedge lab SUB --id … --run-dir … ARGS…` in-process (the flags before the args: exec passes what follows `--`). */
async function cli(sub: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await main(['node', 'anyedge', 'lab', sub, '--id', id, '--run-dir', runDir as string, ...args], io);
  return { code, out: io.text(), err: io.errors() };
}

/** A TCP client in an eyeball: sends a line and prints what comes back, or the error code. */
async function tcp(eyeball: string, host: string, port: number, payload: string): Promise<string> {
  const script = `const s=require('net').connect(${port},'${host}',()=>s.end(${JSON.stringify(payload)}));let d='';s.on('data',b=>d+=b);s.on('close',()=>{console.log('echo:'+d);process.exit(0)});s.on('error',e=>{console.log('error:'+e.code);process.exit(2)});setTimeout(()=>{console.log('timeout');process.exit(3)},3000).unref()`;
  const r = await cli('exec', eyeball, '--', process.execPath, '-e', script);
  return r.out.trim();
}

/** Per DC: the sum over its servers of an Acme firewall counter (`rule_ftp`, `default_ingress`). */
async function acmeCounter(plan: LabPlan, name: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const a of plan.agents) {
    const k = linuxKernel(marksWith({ prefix: a.prefix }));
    const c = await k.nft.counters(`${a.prefix}-acme`, { family: 'inet', name: `${a.prefix}fw` });
    if (!c.ok) assert.fail(`${a.node}: ${c.error.message}`);
    const n = c.value.find((x) => x.kind === 'named' && x.name === name)?.packets ?? 0;
    out.set(a.dc, (out.get(a.dc) ?? 0) + n);
  }
  return out;
}

function delta(before: Map<string, number>, now: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...now].map(([dc, n]) => [dc, n - (before.get(dc) ?? 0)]));
}

test('lab up 2×2: BGP, TCP through anycast GRE from two cities landing in two DCs, port 22 dropped, DC withdrawal and return, lab down leaves nothing', async (t) => {
  if (!needs(t, { root: true, tools: requiredTools('etcd') })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  runDir = await mkdtemp(join(tmpdir(), 'anyedge-lab-'));
  const p = planLab(id, { dcs: 2, servers: 2, cities: 2 });
  if (!p.ok) assert.fail(p.error.message);
  const plan = p.value;

  const started = Date.now();
  const up = await cli('up', '--dcs', '2', '--servers', '2', '--timeout', '90');
  assert.equal(up.code, 0, `lab up failed:\n${up.err}\n${up.out}`);
  t.diagnostic(`lab up 2×2 took ${((Date.now() - started) / 1000).toFixed(1)} s:\n${up.err}`);

  // BGP: every session of every router is established; each city's route to Acme goes to its DC.
  const st = await labStatus(id, runDir);
  if (!st.ok) assert.fail(st.error.message);
  // Each DC router with both cities and the Internet host, each city and the Internet host with both DCs.
  assert.equal(st.value.bgp.length, 12, JSON.stringify(st.value.bgp));
  assert.ok(st.value.bgp.every((b) => b.established), JSON.stringify(st.value.bgp));
  assert.deepEqual(st.value.cities.map((c) => [c.city, c.landsIn]), [['lon', 'ams'], ['nyc', 'chi']]);
  const status = await cli('status', '--json');
  assert.equal(status.code, 0, status.err + status.out);
  assert.equal((JSON.parse(status.out) as { servers: unknown[] }).servers.length, 4);

  // TCP with data from each city, and where it landed.
  for (const city of plan.cities) {
    const before = await acmeCounter(plan, 'rule_ftp');
    const payload = `hello from ${city.id}`;
    assert.equal(await tcp(city.eyeball, '203.0.113.100', 21, payload), `echo:${payload}`);
    const d = delta(before, await acmeCounter(plan, 'rule_ftp'));
    const home = city.prefers[0] as string;
    // SYN, ACK, data, FIN, ACK: at least 3 packets toward the host, all through the home DC.
    assert.ok((d[home] ?? 0) >= 3, `${city.id} should land in ${home}: ${JSON.stringify(d)}`);
    for (const dc of plan.dcs) if (dc.id !== home) assert.equal(d[dc.id], 0, `${city.id} should not reach ${dc.id}: ${JSON.stringify(d)}`);
  }
  assert.notEqual(plan.cities[0]?.prefers[0], plan.cities[1]?.prefers[0], 'the two cities prefer two different DCs');

  // Port 22: the default ingress drops it, so the client hears nothing (no RST) and times out.
  const before = await acmeCounter(plan, 'default_ingress');
  assert.equal(await tcp('lon-e1', '203.0.113.100', 22, 'x'), 'timeout');
  const dropped = delta(before, await acmeCounter(plan, 'default_ingress'));
  assert.ok((dropped.ams ?? 0) >= 1, `the SYN to port 22 was dropped in ams: ${JSON.stringify(dropped)}`);

  // Failing every server of ams: its DC router withdraws, lon moves to chi and its TCP still
  // works, now through chi; healing brings lon back. Both convergence times are reported.
  const fail = await cli('fail', 'dc', 'ams', '--json');
  assert.equal(fail.code, 0, fail.err + fail.out);
  const failed = JSON.parse(fail.out) as { cities: Array<{ city: string; before: string; after: string; seconds: number }> };
  assert.deepEqual(failed.cities.map((c) => [c.city, c.before, c.after]), [['lon', 'ams', 'chi'], ['nyc', 'chi', 'chi']]);
  const moved = await acmeCounter(plan, 'rule_ftp');
  assert.equal(await tcp('lon-e1', '203.0.113.100', 21, 'via chi'), 'echo:via chi');
  const d = delta(moved, await acmeCounter(plan, 'rule_ftp'));
  assert.ok((d.chi ?? 0) >= 3 && d.ams === 0, `lon's connection should go through chi now: ${JSON.stringify(d)}`);
  const heal = await cli('heal', 'dc', 'ams', '--json');
  assert.equal(heal.code, 0, heal.err + heal.out);
  const healed = JSON.parse(heal.out) as typeof failed;
  assert.deepEqual(healed.cities.map((c) => [c.city, c.after]), [['lon', 'ams'], ['nyc', 'chi']]);
  t.diagnostic(`ams withdrawn: lon re-converged on chi in ${failed.cities[0]?.seconds} s; ams back: lon on ams again in ${healed.cities[0]?.seconds} s`);
  assert.equal(await tcp('lon-e1', '203.0.113.100', 21, 'back in ams'), 'echo:back in ams');

  // lab down: nothing of ours remains.
  const down = await cli('down');
  assert.equal(down.code, 0, down.err + down.out);
  const nss = await listNetns(prefix);
  assert.ok(nss.ok);
  assert.deepEqual(nss.value, [], 'namespaces left (their veths and bridges with them)');
  assert.deepEqual(labPins(prefix), [], 'BPF pins left');
  assert.deepEqual(findMarked(prefix), [], 'processes left');
  assert.ok(!existsSync(labDir(runDir, prefix)), 'the lab directory is left');
  // Idempotent.
  const again = await cli('down');
  assert.equal(again.code, 0, again.err);
});

test('lab down after a crash: with the state file gone, the sweep by prefix still removes everything (LMDB store, 1×1)', async (t) => {
  if (!needs(t, { root: true, tools: requiredTools('lmdb') })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  runDir ??= await mkdtemp(join(tmpdir(), 'anyedge-lab-'));
  const up = await cli('up', '--dcs', '1', '--servers', '1', '--store', 'lmdb', '--timeout', '60');
  assert.equal(up.code, 0, `lab up failed:\n${up.err}\n${up.out}`);
  // Through the one DC from both cities, on the embedded store.
  assert.equal(await tcp('nyc-e1', '203.0.113.100', 21, 'over lmdb'), 'echo:over lmdb');
  const nss = await listNetns(prefix);
  assert.ok(nss.ok && nss.value.length > 0);
  assert.ok(findMarked(prefix).length >= 5, 'BIRD ×3, the agent, the echo services ×2');
  // The crash: the record is lost (the processes, pins and namespaces stay).
  await rm(join(labDir(runDir, prefix), 'state.json'));
  const down = await cli('down');
  assert.equal(down.code, 0, down.err + down.out);
  const left = await listNetns(prefix);
  assert.ok(left.ok);
  assert.deepEqual(left.value, []);
  assert.deepEqual(labPins(prefix), []);
  assert.deepEqual(findMarked(prefix), []);
});

test('lab up refuses a lab id already in use, touching nothing, and lab down removes the leftover', async (t) => {
  if (!needs(t, { root: true, tools: requiredTools('lmdb') })) return;
  runDir ??= await mkdtemp(join(tmpdir(), 'anyedge-lab-'));
  const made = await addNetns(`${prefix}-ix`);
  assert.ok(made.ok, made.ok ? '' : made.error.message);
  const up = await cli('up', '--dcs', '1', '--servers', '1', '--store', 'lmdb');
  assert.equal(up.code, 1, up.err);
  assert.match(up.err, new RegExp(`lab ${prefix} already exists \\(1 namespaces.*run anyedge lab down --id ${id} first`));
  const still = await listNetns(prefix);
  assert.ok(still.ok);
  assert.deepEqual(still.value, [`${prefix}-ix`], 'the refused lab up left the existing namespace alone and made nothing');
  const down = await cli('down');
  assert.equal(down.code, 0, down.err);
  const after = await listNetns(prefix);
  assert.ok(after.ok);
  assert.deepEqual(after.value, []);
});
