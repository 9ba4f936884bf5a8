/**
 * The agent against a real etcd (one member on 127.0.0.1) that goes away: the running agent
 * keeps the kernel and reports the loss; a rebooted server (fresh fake kernel, same state dir)
 * comes back with the last known config from its replica while etcd is still down; when etcd
 * returns, changes made since are received exactly once each and applied.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Agent } from './daemon.ts';
import { acmeConfig, acmeDoc, mustConfig } from './fixtures.ts';
import { assertExactlyOnce, EventLog, fakeServer, mustPut, recordingOpener, referenceDump, testCompile, waitFor, writeConfig, type FakeServer } from './daemon-fixtures.ts';
import type { Config } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openEtcdStore, type EtcdConfigStore } from '../store/etcd.ts';
import { EtcdCluster, mustOpenEtcd } from '../store/etcd-harness.ts';
import { needs } from '../testkit/needs.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function acmeFtpPort(port: number): Config {
  const doc = acmeDoc();
  ((doc.tenants.acme as { firewall: { rules: { dport: unknown[] }[] } }).firewall.rules[0] as { dport: unknown[] }).dport = [port];
  return mustConfig(doc);
}
const firewallOf = (c: Config) => configToEntries(c).get('/tenants/acme/firewall');

test('etcd down: the agent keeps the kernel; a rebooted server converges from its replica; changes after etcd returns arrive once each', async (t) => {
  if (!needs(t, { tools: ['etcd'] })) return;
  const cluster = await EtcdCluster.start(1);
  cleanups.push(() => cluster.stop());
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-agent-etcd-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  const prefix = `/anyedge-agent-test/${process.pid}-${randomBytes(3).toString('hex')}`;
  // Short deadlines: a dead member costs the agent half a second per attempt, not five.
  const open = () => openEtcdStore({ endpoints: cluster.endpoints, prefix, validation: CONFIG_VALIDATION, timeoutMs: 500 });
  const writerOf = async (): Promise<EtcdConfigStore> => {
    const w = await mustOpenEtcd({ endpoints: cluster.endpoints, prefix, validation: CONFIG_VALIDATION });
    cleanups.push(() => w.close());
    return w;
  };
  const agentOn = async (server: FakeServer) => {
    const log = new EventLog();
    const delivered: number[] = [];
    const agent = new Agent({ where: { dc: 'ams', server: 's1' }, openStore: recordingOpener(open, delivered), stateDir, env: server.env, compile: testCompile, backoff: { initialMs: 50, maxMs: 300 }, heartbeatMs: 60_000, log: log.sink });
    cleanups.push(() => agent.stop());
    const started = await agent.start();
    if (!started.ok) assert.fail(started.error.message);
    return { agent, log, delivered };
  };

  // Running, with the config applied.
  let writer = await writerOf();
  const rev1 = await writeConfig(writer, acmeConfig());
  const first = await fakeServer();
  const a = await agentOn(first);
  await waitFor(`agent A applied ${rev1}\n${a.log.text()}`, () => a.agent.snapshot().appliedRevision >= rev1, 10_000);
  const rev2 = await mustPut(writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(2121)));
  await waitFor(`agent A applied ${rev2}\n${a.log.text()}`, () => a.agent.snapshot().appliedRevision >= rev2, 10_000);
  const applied = await first.dump();
  assert.equal(applied, await referenceDump(acmeFtpPort(2121)));
  assert.ok(a.agent.snapshot().store.connected);
  assert.ok(rev2 > rev1);
  await writer.close();

  // etcd goes away: A keeps its kernel, says so, and keeps trying.
  await cluster.kill(0);
  await waitFor(`agent A reporting the loss\n${a.log.text()}`, () => a.log.of('disconnected').length >= 2, 15_000);
  const lost = a.agent.snapshot();
  assert.equal(lost.store.connected, false);
  assert.ok((lost.store.error ?? '').length > 0);
  assert.equal(await first.dump(), applied, 'the kernel keeps the applied config');
  const retries = a.log.of('disconnected').map((e) => e.retryInMs);
  assert.ok(retries[1]! > retries[0]! / 2, `backoff grows: ${retries.join(', ')}`);
  await a.agent.stop();
  const aSeen = a.agent.snapshot().seenRevision;

  // The server reboots while etcd is still down: a new agent, an empty kernel, the same state dir.
  const rebooted = await fakeServer();
  const b = await agentOn(rebooted);
  assert.equal(await rebooted.dump(), applied, 'the rebooted server has its last known config back');
  assert.equal(b.agent.snapshot().store.connected, false);
  assert.equal(b.log.of('start')[0]!.replicaRevision, aSeen);
  await waitFor('agent B failing to connect', () => b.log.of('disconnected').length >= 1, 10_000);

  // etcd returns; one change right away (B may still be waiting to retry), one once B is back.
  await cluster.restart(0);
  writer = await writerOf();
  const rev3 = await mustPut(writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(3000)));
  await waitFor(`agent B applied ${rev3}\n${b.log.text()}`, () => b.agent.snapshot().appliedRevision >= rev3, 15_000);
  assert.equal(b.agent.snapshot().store.connected, true);
  assert.equal(await rebooted.dump(), await referenceDump(acmeFtpPort(3000)));
  const rev4 = await mustPut(writer, '/tenants/acme/firewall', firewallOf(acmeFtpPort(4000)));
  await waitFor(`agent B applied ${rev4}\n${b.log.text()}`, () => b.agent.snapshot().appliedRevision >= rev4, 10_000);
  assert.equal(await rebooted.dump(), await referenceDump(acmeFtpPort(4000)));

  // Revisions prove it: A received exactly the writes before the outage, B exactly those after.
  assert.deepEqual(a.log.changeRevisions(), [rev2], a.log.text());
  assert.deepEqual(b.log.changeRevisions(), [rev3, rev4], b.log.text());
  // What etcd delivered: A from its first listing on, B from its replica's revision on, each
  // revision once (this cluster has no other writers, so none is skipped either).
  assert.equal(a.delivered[0], a.log.of('resync')[0]!.toRevision + 1);
  assertExactlyOnce(a.delivered, true, 'agent A');
  assert.equal(b.delivered[0], b.log.of('start')[0]!.replicaRevision + 1);
  assertExactlyOnce(b.delivered, true, 'agent B');
  assert.ok(b.delivered.includes(rev3) && b.delivered.includes(rev4));
  await b.agent.stop();
});
