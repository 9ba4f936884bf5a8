/**
 * `lab demo` on the real kernel at 2 DCs × 2 servers (etcd store), asserting on each step's
 * result, which comes from real traffic and the kernel's counters:
 * - the rule is written through the REST API (201) and every agent applies it;
 * - before it, a connection to Acme's 203.0.113.100:21 gets no answer and the default drop counts it;
 * - after it, payloads are echoed end to end from two cities, each landing in its own DC (rule
 *   counters move there only) and crossing Acme's anycast GRE tunnel both ways;
 * - port 22 is dropped (no answer, drop counter moved);
 * - with the first city's DC failed, the same eyeball is served by the other DC, echoed, through
 *   the tunnel, and the BGP re-convergence time is measured (> 0) and reported;
 * - with a server failed, the flows that were spread over both servers all go to the other one;
 * - teardown leaves no namespace (so no veth or bridge), BPF pin or process of the lab.
 * A unique lab id per run; `lab down` also runs in `after`, so a failure leaves nothing behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { listNetns } from '../kernel/labnet.ts';
import { labDown, labPins } from './down.ts';
import { BLOCKED_PORT, runDemo } from './demo.ts';
import { labPrefix } from './names.ts';
import { findMarked } from './procs.ts';
import { requiredTools } from './up.ts';

// Two base-36 characters from the pid, offset from lab.linux.test.ts's choice of the same pid.
const id = ((process.pid + 648) % 1296).toString(36).padStart(2, '0');
const prefix = labPrefix(id);
let runDir: string | null = null;

after(async () => {
  if (runDir) {
    await labDown({ id, runDir });
    await rm(runDir, { recursive: true, force: true });
  }
});

test('lab demo 2×2: API provisioning, two cities in two DCs through the tunnel, a blocked port, DC and server failures, nothing left', async (t) => {
  if (!needs(t, { root: true, tools: requiredTools('etcd') })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  runDir = await mkdtemp(join(tmpdir(), 'anyedge-demo-'));
  const lines: string[] = [];
  const r = await runDemo({ id, size: { dcs: 2, servers: 2 }, store: 'etcd', runDir, log: (l) => void lines.push(l) });
  t.diagnostic(lines.join('\n'));
  if (!r.ok) assert.fail(`${r.error.path}: ${r.error.message}\n${lines.join('\n')}`);
  const d = r.value;

  // The API accepted the rule and every server applied it.
  assert.equal(d.api.status, 201);
  assert.ok(d.api.revision > 0);
  assert.deepEqual(d.api.rulesBefore, ['ping'], 'the lab came up without the FTP rule');

  // Before: no answer, counted by the default drop where lon lands (ams).
  assert.deepEqual(d.before.flows.map((f) => f.outcome), ['timeout']);
  assert.ok((d.before.perDc.ams?.dropped ?? 0) >= 1, JSON.stringify(d.before.perDc));
  assert.equal(d.before.perDc.ams?.accepted, 0);

  // After: echoed from two cities via two DCs, inside the tunnel.
  assert.deepEqual(d.cities.map((c) => [c.city, c.landedIn]), [['lon', ['ams']], ['nyc', ['chi']]]);
  for (const c of d.cities) {
    assert.deepEqual(c.flows.map((f) => f.outcome), ['echoed', 'echoed', 'echoed'], c.city);
    assert.ok((c.perDc[c.expectedDc]?.accepted ?? 0) >= 9, `${c.city}: SYN, ACK, data per flow at least: ${JSON.stringify(c.perDc)}`);
    assert.ok((c.perDc[c.expectedDc]?.greOut ?? 0) >= 9, `${c.city}: into Acme's tunnel in ${c.expectedDc}: ${JSON.stringify(c.perDc)}`);
    assert.ok(c.evidence.customer.greIn >= 9 && c.evidence.customer.greOut >= 9, `${c.city}: the customer router decapsulated and encapsulated: ${JSON.stringify(c.evidence.customer)}`);
    // Replies come back by anycast into the DC Acme's own city (lon) prefers.
    assert.ok((c.perDc.ams?.greIn ?? 0) >= 9, `${c.city}: replies decapsulated in ams: ${JSON.stringify(c.perDc)}`);
  }

  // Port 22: dropped, no answer, drop counter moved.
  assert.equal(d.blocked.port, BLOCKED_PORT);
  assert.deepEqual(d.blocked.flows.map((f) => f.outcome), ['timeout']);
  assert.ok((d.blocked.perDc.ams?.dropped ?? 0) >= 1, JSON.stringify(d.blocked.perDc));

  // A DC fails: lon re-routed to chi, echoed there through the tunnel; times measured.
  assert.equal(d.dcFailure.dc, 'ams');
  assert.equal(d.dcFailure.movedTo, 'chi');
  assert.ok(d.dcFailure.reconvergeSeconds !== null && d.dcFailure.reconvergeSeconds > 0, `re-convergence measured: ${d.dcFailure.reconvergeSeconds}`);
  assert.ok(d.dcFailure.healSeconds !== null && d.dcFailure.healSeconds > 0);
  assert.deepEqual(d.dcFailure.flows.map((f) => f.outcome), ['echoed', 'echoed', 'echoed']);
  assert.ok((d.dcFailure.perDc.chi?.accepted ?? 0) >= 9 && d.dcFailure.perDc.ams?.accepted === 0, JSON.stringify(d.dcFailure.perDc));
  assert.ok(d.dcFailure.customer.greIn >= 9 && d.dcFailure.customer.greOut >= 9, JSON.stringify(d.dcFailure.customer));
  t.diagnostic(`ams withdrawn: lon on chi after ${d.dcFailure.reconvergeSeconds} s; back on ams after ${d.dcFailure.healSeconds} s`);

  // A server fails: flows spread over both servers before, all on the other one after.
  const sf = d.serverFailure;
  const other = sf.server === 'ams-s1' ? 'ams-s2' : 'ams-s1';
  assert.ok(Object.values(sf.serversBefore).filter((n) => n > 0).length === 2, `ECMP spread: ${JSON.stringify(sf.serversBefore)}`);
  assert.ok(sf.flowsAfter.every((f) => f.outcome === 'echoed'));
  assert.equal(sf.serversAfter[sf.server], 0);
  assert.ok((sf.serversAfter[other] ?? 0) >= 3 * sf.flowsAfter.length, JSON.stringify(sf.serversAfter));
  assert.ok(new Set(sf.flowsAfter.map((f) => f.localPort)).size === sf.flowsAfter.length, 'distinct source ports: distinct flows');
  t.diagnostic(`server ${sf.server} failed: all flows on ${other} after ${sf.movedSeconds.toFixed(1)} s (${sf.lostWhileDetecting} lost meanwhile)`);

  // Teardown: nothing left, checked again here.
  assert.deepEqual(d.teardown, { ...d.teardown, netns: [], pins: [], processes: [], problems: [] });
  const left = await listNetns(prefix);
  assert.ok(left.ok, left.ok ? '' : left.error.message);
  assert.deepEqual(left.value, []);
  assert.deepEqual(labPins(prefix), []);
  assert.deepEqual(findMarked(prefix), []);
  assert.ok(d.seconds < 120, `the demo took ${d.seconds} s`);
});
