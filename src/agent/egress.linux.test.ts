/**
 * Soft-unicast egress on the real kernel: the reconciler puts the server's egress address on lo
 * and its SNAT table into the server namespace, and real TCP connections from that address leave
 * from the server's own port slice. With sliceSize 64 (ports 64–127 for the DC's first server):
 * more than 64 concurrent connections to distinct destinations all succeed (the kernel's NAT
 * reuses a source port for different destinations), while more than 64 to ONE destination cannot
 * all get a port (the 5-tuple must be unique).
 *
 *   server(s) eth0 192.0.2.1/30 ── 192.0.2.2/30 inet0 internet(i): 203.0.113.1–100 on lo, a TCP
 *   lo: 198.51.100.64 (egress)                       server answering with the source it sees
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { needs, hasTool, isRoot } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { compileServer, type DesiredServer } from '../compile/server.ts';
import { linuxKernel, marksWith, type Kernel } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import { apply, formatPlan, plan, type ReconcileEnv } from './reconcile.ts';
import { configOf, egressDoc } from '../compile/egress/fixtures.ts';

const lab = new NetLab('G');
// Not a prefix of the lab's namespace names (`aeG…`): our tables and links carry this one.
const marks = marksWith({ prefix: `q${(process.pid % 10000).toString(36)}g` });
const HELPER = fileURLToPath(new URL('./testdata/egress-conns.mjs', import.meta.url));
const EGRESS = '198.51.100.64';
const PORT = 7007;
const DSTS = Array.from({ length: 100 }, (_, i) => `203.0.113.${i + 1}`);

let kernel: Kernel | null = null;
let env: ReconcileEnv | null = null;
let setupError: Error | null = null;

/** lon/s1 of the fixture with the gb-trusted pool at sliceSize 64: slice 1 of 198.51.100.64. */
function desired(assign = true): DesiredServer {
  const doc = egressDoc();
  doc.egress.pools['gb-trusted'].sliceSize = 64;
  doc.egress.assign = assign ? { [EGRESS]: { dc: 'lon' } } : {};
  const d = compileServer(configOf(doc), { dc: 'lon', server: 's1' }, { marks, serverNs: lab.ns('s') });
  if (!d.ok) throw new Error(`${d.error.path}: ${d.error.message}`);
  return d.value;
}

async function pass(d: DesiredServer): Promise<string> {
  assert.ok(env);
  const p = await plan(env, d);
  if (!p.ok) assert.fail(`plan: ${p.error.path}: ${p.error.message}`);
  const r = await apply(p.value);
  if (r.failed) assert.fail(`apply: ${r.failed.step.path}: ${r.failed.error.message}\nplan was:\n${formatPlan(p.value)}`);
  return formatPlan(p.value);
}

async function build(): Promise<void> {
  await lab.addNs('s');
  await lab.addNs('i');
  await lab.veth('s', 'eth0', 'i', 'inet0');
  await lab.ip('s', 'addr', 'add', '192.0.2.1/30', 'dev', 'eth0');
  await lab.ip('i', 'addr', 'add', '192.0.2.2/30', 'dev', 'inet0');
  await lab.ip('s', 'route', 'add', 'default', 'via', '192.0.2.2');
  await lab.ip('i', 'route', 'add', '198.51.100.64/26', 'via', '192.0.2.1');
  for (const d of DSTS) await lab.ip('i', 'addr', 'add', `${d}/32`, 'dev', 'lo');
  const srv = lab.spawn('i', process.execPath, [HELPER, 'server', String(PORT)]);
  await once(srv.stdout!, 'data');
  kernel = linuxKernel(marks);
  env = { kernel, bpf: fakeBpfMaps(), attach: fakeAttach(kernel) };
}

before(async () => {
  if (!isRoot() || !hasTool('nft')) return;
  try {
    await build();
  } catch (e) {
    setupError = e as Error;
  }
});

after(async () => {
  await lab.destroy();
});

function ready(t: Parameters<typeof needs>[0]): boolean {
  if (!needs(t, { root: true, tools: ['ip', 'nft'] })) return false;
  if (setupError) throw setupError;
  return true;
}

/** Opens one connection per destination at once from the egress address; what the far end saw. */
async function connect(dsts: readonly string[], timeoutMs: number): Promise<{ seen: string[]; failed: number }> {
  const out = await lab.exec('s', process.execPath, [HELPER, 'client', EGRESS, String(PORT), String(timeoutMs), ...dsts]);
  return JSON.parse(out) as { seen: string[]; failed: number };
}

test('the reconciler puts the egress address on lo and the SNAT table in; a second plan is empty', async (t) => {
  if (!ready(t)) return;
  const steps = await pass(desired());
  assert.match(steps, /\+ egress\/assign\/198\.51\.100\.64: addr add 198\.51\.100\.64\/32 dev lo/);
  assert.match(steps, new RegExp(`\\+ server/egress/nft: nft -j -f \\(table ip ${marks.prefix}egress`));
  assert.match(await lab.ip('s', 'addr', 'show', 'dev', 'lo'), /inet 198\.51\.100\.64\/32 scope global lo/);
  const table = await lab.exec('s', 'nft', ['list', 'table', 'ip', `${marks.prefix}egress`]);
  assert.match(table, /ip saddr 198\.51\.100\.64 meta l4proto \{ tcp, udp \} counter name "snat_198_51_100_64" snat to 198\.51\.100\.64:64-127/);
  assert.equal(await pass(desired()), 'nothing to do\n');
});

test('100 concurrent connections to 100 destinations all leave from the slice, reusing its 64 ports', async (t) => {
  if (!ready(t)) return;
  await pass(desired());
  const r = await connect(DSTS, 5000);
  assert.equal(r.failed, 0, `failed: ${r.failed}`);
  assert.equal(r.seen.length, 100);
  const ports = r.seen.map((s) => {
    const [ip, port] = s.split(':') as [string, string];
    assert.equal(ip, EGRESS);
    return Number(port);
  });
  assert.ok(ports.every((p) => p >= 64 && p <= 127), `ports outside slice 1 (64–127): ${ports.filter((p) => p < 64 || p > 127).join(', ')}`);
  // 100 connections in 64 ports: some port carries connections to two destinations at once.
  assert.ok(new Set(ports).size < ports.length);
  const counters = await lab.exec('s', 'nft', ['list', 'counter', 'ip', `${marks.prefix}egress`, 'snat_198_51_100_64']);
  assert.match(counters, /packets [1-9]/);
});

test('more than 64 concurrent connections to ONE destination cannot all get a port of the slice', async (t) => {
  if (!ready(t)) return;
  await pass(desired());
  const r = await connect(Array.from({ length: 70 }, () => DSTS[0]!), 3000);
  assert.ok(r.seen.length <= 64, `${r.seen.length} connections to one destination from 64 ports`);
  assert.ok(r.seen.length >= 60, `only ${r.seen.length} of 64 possible connections got through`);
  assert.equal(r.failed, 70 - r.seen.length);
  assert.equal(new Set(r.seen).size, r.seen.length, 'each connection its own port');
});

test('drift is repaired, and the address and table go when the assignment does', async (t) => {
  if (!ready(t)) return;
  await pass(desired());
  await lab.ip('s', 'addr', 'del', '198.51.100.64/32', 'dev', 'lo');
  await lab.exec('s', 'nft', ['delete', 'table', 'ip', `${marks.prefix}egress`]);
  const repair = await pass(desired());
  assert.match(repair, /addr add 198\.51\.100\.64\/32 dev lo/);
  assert.match(repair, /server\/egress\/nft/);
  assert.equal(await pass(desired()), 'nothing to do\n');
  const gone = await pass(desired(false));
  assert.match(gone, /- .*addr del 198\.51\.100\.64\/32 dev lo/);
  assert.match(gone, new RegExp(`nft delete table ip ${marks.prefix}egress`));
  assert.doesNotMatch(await lab.ip('s', 'addr', 'show', 'dev', 'lo'), /198\.51\.100\.64/);
  // lo keeps what is not ours.
  assert.match(await lab.ip('s', 'addr', 'show', 'dev', 'lo'), /127\.0\.0\.1/);
});

test('an address moved away from the server breaks the connections the server had from it', async (t) => {
  if (!ready(t)) return;
  await pass(desired());
  const hold = lab.spawn('s', process.execPath, [HELPER, 'hold', EGRESS, String(PORT), DSTS[1]!]);
  const lines = createInterface({ input: hold.stdout! })[Symbol.asyncIterator]();
  const next = async () => String((await lines.next()).value);
  assert.match(await next(), /^198\.51\.100\.64:(6[4-9]|[7-9]\d|1[01]\d|12[0-7])$/, 'greeting from the slice');
  hold.stdin!.write('send\n');
  assert.equal(await next(), 'echo');
  // The assignment moves to another data center: this server's reconciler takes the address off lo.
  assert.match(await pass(desired(false)), /addr del 198\.51\.100\.64\/32 dev lo/);
  hold.stdin!.write('send\n');
  assert.match(await next(), /^(silent|error \w+)$/, 'the established connection no longer carries data');
  hold.stdin!.end();
});
