/**
 * `lab trace` on the real kernel, on a 2×2 lab (LMDB store, the quicker one to start): from lon
 * to Acme's port 21 the hops name ams, an ams server, rule ftp, the tunnel both ways and the echo;
 * from nyc the flow enters in chi and the replies come back through ams (Acme's own city's DC);
 * port 22 is decided by the default ingress and times out; an unknown eyeball or an address in no
 * tenant's prefix is refused naming the flag. A unique lab id; lab down in `after`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { listNetns } from '../kernel/labnet.ts';
import { labDown } from './down.ts';
import { labPrefix } from './names.ts';
import { labTrace } from './trace.ts';
import { labUp, requiredTools } from './up.ts';

// Two base-36 characters from the pid, offset from the other lab tests' choice of the same pid.
const id = ((process.pid + 324) % 1296).toString(36).padStart(2, '0');
let runDir: string | null = null;

after(async () => {
  if (runDir) {
    await labDown({ id, runDir });
    await rm(runDir, { recursive: true, force: true });
  }
});

test('lab trace 2×2: which DC, server and rule, the tunnel both ways, a drop, bad targets', async (t) => {
  if (!needs(t, { root: true, tools: requiredTools('lmdb') })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  runDir = await mkdtemp(join(tmpdir(), 'anyedge-trace-'));
  const up = await labUp({ id, size: { dcs: 2, servers: 2, cities: 2 }, store: 'lmdb', runDir, waitMs: 90_000 });
  if (!up.ok) assert.fail(`${up.error.path}: ${up.error.message}`);

  const lon = await labTrace(id, runDir, 'lon-e1', '203.0.113.100:21');
  if (!lon.ok) assert.fail(lon.error.message);
  t.diagnostic(JSON.stringify(lon.value.hops));
  assert.equal(lon.value.flow.outcome, 'echoed');
  assert.equal(lon.value.tenant, 'acme');
  assert.equal(lon.value.landedIn, 'ams');
  assert.equal(lon.value.decidedBy, 'rule ftp');
  assert.equal(lon.value.servers.length, 1, 'one flow, one server');
  assert.match(lon.value.servers[0]!, /^ams-s[12]$/);
  assert.ok(lon.value.returnServers.every((s) => s.startsWith('ams-')) && lon.value.returnServers.length >= 1);
  const fwd = lon.value.hops.find((h) => h.node === lon.value.servers[0] && 'rule_ftp' in h.evidence);
  assert.ok(fwd && (fwd.evidence.rule_ftp ?? 0) >= 3 && (fwd.evidence.greOut ?? 0) >= 3, JSON.stringify(lon.value.hops));
  const cust = lon.value.hops.find((h) => h.node === 'acme');
  assert.ok(cust && (cust.evidence.greIn ?? 0) >= 3 && (cust.evidence.greOut ?? 0) >= 2, JSON.stringify(cust));

  const nyc = await labTrace(id, runDir, 'nyc-e1', '203.0.113.100:21');
  if (!nyc.ok) assert.fail(nyc.error.message);
  assert.equal(nyc.value.flow.outcome, 'echoed');
  assert.equal(nyc.value.landedIn, 'chi');
  assert.ok(nyc.value.servers.length === 1 && nyc.value.servers[0]!.startsWith('chi-'), JSON.stringify(nyc.value.servers));
  assert.ok(nyc.value.returnServers.length >= 1 && nyc.value.returnServers.every((s) => s.startsWith('ams-')), `replies by anycast into Acme's DC: ${JSON.stringify(nyc.value.returnServers)}`);

  const blocked = await labTrace(id, runDir, 'lon-e1', '203.0.113.100:22');
  if (!blocked.ok) assert.fail(blocked.error.message);
  assert.equal(blocked.value.flow.outcome, 'timeout');
  assert.equal(blocked.value.decidedBy, 'default ingress');
  assert.deepEqual(blocked.value.returnServers, []);
  assert.ok(!blocked.value.hops.some((h) => h.node === 'acme'), 'nothing entered the tunnel');

  const badFrom = await labTrace(id, runDir, 'acme-h', '203.0.113.100:21');
  assert.ok(!badFrom.ok && badFrom.error.path === 'from' && /is not an eyeball; eyeballs: lon-e1, nyc-e1/.test(badFrom.error.message));
  const badTo = await labTrace(id, runDir, 'lon-e1', '198.51.100.2:21');
  assert.ok(!badTo.ok && badTo.error.path === 'to' && /in no tenant's prefix/.test(badTo.error.message));

  const down = await labDown({ id, runDir });
  assert.deepEqual(down.problems, []);
  const left = await listNetns(labPrefix(id));
  assert.ok(left.ok);
  assert.deepEqual(left.value, []);
});
