// `anyedge dos …` end to end against the real API over a real store (in-process).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import type { ApiLab } from './client-harness.ts';
import { startApiLab } from './client-harness.ts';
import { parse } from 'yaml';
import { parseConfig } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { addDetectionSpares } from '../api/detect-samples.ts';
import { proposalKey } from '../model/detection.ts';
import { ruleSummary } from './dos.ts';

let lab: ApiLab;
let acmeToken: string;

before(async () => {
  lab = await startApiLab();
  const d = parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as { tenants: Record<string, Record<string, unknown>> };
  acmeToken = 'ae_' + randomBytes(32).toString('base64url');
  d.tenants.acme!.tokenHash = 'sha256:' + createHash('sha256').update(acmeToken, 'utf8').digest('hex');
  const config = parseConfig(d);
  assert.ok(config.ok);
  const w = await lab.store.txn({ then: [...configToEntries(config.value)].map(([key, value]) => ({ op: 'put' as const, key, value })) });
  assert.ok(w.ok);
});

after(async () => {
  await lab.close();
});

test('dos proposals and events list what detection wrote; a tenant token needs --tenant', async () => {
  await addDetectionSpares(lab.store);
  const p = await lab.run(['dos', 'proposals']);
  assert.equal(p.code, 0, p.err);
  assert.match(p.out, /^ID\s+TENANT\s+STATE/m);
  assert.match(p.out, /spare\s+acme\s+pending\s+203\.0\.113\.100\s+250\.0k\s+drop udp dport 53 payload deadbeef00010000@0 → 203\.0\.113\.100\/32/);
  const ev = await lab.run(['dos', 'events', '--json']);
  assert.equal(ev.code, 0, ev.err);
  assert.deepEqual((JSON.parse(ev.out) as { items: { kind: string }[] }).items.map((e) => e.kind), ['proposed']);
  const asTenant = await lab.run(['dos', 'events'], { env: { ANYEDGE_TOKEN: acmeToken } });
  assert.equal(asTenant.code, 1);
  assert.match(asTenant.err, /403/);
  assert.match(asTenant.err, /anyedge dos events --tenant T/);
  const own = await lab.run(['dos', 'events', '--tenant', 'acme'], { env: { ANYEDGE_TOKEN: acmeToken } });
  assert.equal(own.code, 0, own.err);
  assert.match(own.out, /proposed/);
  const bad = await lab.run(['dos', 'events', '--tenant', 'Not An Id']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--tenant "Not An Id"/);
});

test('dos accept asks (or needs --yes), then writes the rule; dos reject marks the proposal', async () => {
  await addDetectionSpares(lab.store);
  const noTty = await lab.run(['dos', 'accept', 'spare']);
  assert.equal(noTty.code, 1);
  assert.match(noTty.err, /without confirmation: stdin is not a terminal; pass --yes/);
  const no = await lab.run(['dos', 'accept', 'spare'], { tty: true, answers: ['n'] });
  assert.equal(no.code, 1);
  assert.deepEqual(no.asked, ['Accept proposal spare and write its rule for acme? [y/N] ']);
  const unchanged = await lab.store.get('/dos/rules/spare');
  assert.ok(unchanged.ok);
  assert.equal(unchanged.value, undefined, 'nothing written on no');
  const tenant = await lab.run(['dos', 'accept', 'spare', '--yes'], { env: { ANYEDGE_TOKEN: acmeToken } });
  assert.equal(tenant.code, 1);
  assert.match(tenant.err, /403\); this needs an operator token/);
  const yes = await lab.run(['dos', 'accept', 'spare'], { tty: true, answers: ['y'] });
  assert.equal(yes.code, 0, yes.err);
  assert.match(yes.out, /^accepted spare: rule \/dos\/rules\/spare \(drop udp dport 53 payload deadbeef00010000@0 → 203\.0\.113\.100\/32\) until \d{4}-/);
  const rule = await lab.store.get('/dos/rules/spare');
  assert.ok(rule.ok && rule.value, 'the rule is written');
  const gone = await lab.run(['dos', 'accept', 'spare', '--yes']);
  assert.equal(gone.code, 1);
  assert.match(gone.err, /no proposal spare; list them with anyedge dos proposals/);

  await addDetectionSpares(lab.store);
  const rej = await lab.run(['dos', 'reject', 'spare', '--yes']);
  assert.equal(rej.code, 0, rej.err);
  assert.match(rej.out, /rejected spare/);
  const p = await lab.store.get(proposalKey('spare'));
  assert.ok(p.ok);
  assert.equal((p.value?.value as { state: string }).state, 'rejected');
  const ev = await lab.run(['dos', 'events', '--tenant', 'acme', '--json']);
  // Events sort by time: the spare 'proposed' is stamped 2030, the decisions now.
  assert.deepEqual((JSON.parse(ev.out) as { items: { kind: string }[] }).items.map((e) => e.kind), ['accepted', 'rejected', 'proposed']);
});

test('ruleSummary spells a rate limit with flags', () => {
  assert.equal(
    ruleSummary({ match: { dst: ['2001:db8:1::5/128'], protocol: 'tcp', dport: [80], tcpFlags: { set: ['syn'], unset: ['ack'] } }, action: 'rate-limit', rateLimit: { pps: 500, per: 'dst-ip' } }),
    'rate-limit 500 pps per dst-ip tcp dport 80 flags syn,!ack → 2001:db8:1::5/128',
  );
});
