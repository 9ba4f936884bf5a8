// `anyedge apply` and `anyedge plan -f` end to end: in-process against the real API served on
// loopback over a throwaway LMDB store.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiLab } from './client-harness.ts';
import { startApiLab } from './client-harness.ts';
import { parseYaml } from './yaml-source.ts';
import { parseConfig } from '../model/config.ts';
import { CONFIG_ROOTS, configToEntries } from '../model/keyspace.ts';
import { statusKey, type ServerStatus } from '../model/status.ts';

const ACME = 'examples/acme.yaml';
const acmeText = readFileSync(ACME, 'utf8');

let lab: ApiLab;
let dir: string;

before(async () => {
  lab = await startApiLab();
  dir = mkdtempSync(join(tmpdir(), 'anyedge-apply-'));
});

after(async () => {
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Writes a copy of the example with `edits` (exact text replacements, each must match once). */
function variant(name: string, edits: readonly [string, string][]): string {
  let text = acmeText;
  for (const [from, to] of edits) {
    assert.equal(text.split(from).length, 2, `edit must match once: ${from}`);
    text = text.replace(from, to);
  }
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** The config keys in the store, with their values. */
async function configKeys(): Promise<Map<string, unknown>> {
  const out = new Map<string, unknown>();
  for (const root of CONFIG_ROOTS) {
    const l = await lab.store.list(root);
    assert.ok(l.ok);
    for (const e of l.value.entries) out.set(e.key, e.value);
  }
  return out;
}

/** The example's store entries, as the model makes them. */
function expectedEntries(text: string): Map<string, unknown> {
  const src = parseYaml(text);
  assert.ok(src.ok);
  const cfg = parseConfig(src.value.value);
  assert.ok(cfg.ok);
  return configToEntries(cfg.value);
}

const MODIFIED: [string, string][] = [
  ['        customerEndpoint: 198.51.100.200   # Acme\'s router; no GRE key, so MTU defaults to 1476', '        customerEndpoint: 198.51.100.200\n        mtu: 1400'],
  ['          dport: [20-21]\n          action: accept', '          dport: [20-21]\n          action: drop'],
  ['    chargen:\n      description: chargen reflection; nobody needs UDP from port 19\n      match: { protocol: udp, sport: [19] }', '    qotd:\n      match: { protocol: udp, sport: [17] }'],
];

test('apply without a TTY and without --yes shows the diff and refuses, writing nothing', async () => {
  const r = await lab.run(['apply', '-f', ACME]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.out, /^\+ \/anycast$/m);
  assert.match(r.out, /^\+ \/tenants\/acme\/prefixes\/p1\n {4}cidr: "203\.0\.113\.0\/25"$/m);
  const n = expectedEntries(acmeText).size;
  assert.match(r.out, new RegExp(`^${n} changes \\(${n} to create, 0 to update, 0 to delete\\) against store revision \\d+$`, 'm'));
  assert.match(r.err, new RegExp(`refusing to apply ${n} changes without confirmation: stdin is not a terminal; .*pass --yes`));
  assert.deepEqual(r.asked, []);
  assert.equal((await configKeys()).size, 0);
});

test('a file with errors is refused at its lines without contacting the API', async () => {
  const bad = variant('bad.yaml', [['p1: { cidr: 203.0.113.0/25,', 'p1: { cidr: 203.0.113.1/25,']]);
  // An address nothing listens on: a request would fail with "cannot reach".
  const r = await lab.run(['apply', '-f', bad, '--yes', '--api', 'http://127.0.0.1:1'], { noApiFlag: true });
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`^${bad}:\\d+:\\d+: tenants/acme/prefixes/p1\\.cidr: `, 'm'));
  assert.doesNotMatch(r.err, /cannot reach/);
  assert.equal(r.out, '');
});

test('apply --yes writes the whole example; plan then shows nothing to do', async () => {
  const r = await lab.run(['apply', '-f', ACME, '--yes']);
  assert.equal(r.code, 0, r.err);
  const n = expectedEntries(acmeText).size;
  assert.match(r.out, new RegExp(`^applied ${n} changes \\(${n} created, 0 updated, 0 deleted\\) at store revision \\d+$`, 'm'));
  assert.deepEqual(await configKeys(), expectedEntries(acmeText));
  const again = await lab.run(['plan', '-f', ACME]);
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, /^no changes: the store already matches this config \(store revision \d+\)\n$/);
});

test('plan -f of a modified copy shows exactly its changes; apply makes them; --json parses', async () => {
  const file = variant('modified.yaml', MODIFIED);
  const before = await lab.store.status();
  assert.ok(before.ok);
  const plan = await lab.run(['plan', '-f', file]);
  assert.equal(plan.code, 0, plan.err);
  assert.equal(
    plan.out,
    [
      '- /dos/rules/chargen',
      '+ /dos/rules/qotd',
      '    action: "drop"',
      '    match.protocol: "udp"',
      '    match.sport: [17]',
      '~ /tenants/acme/firewall',
      '    rules[ftp].action: "accept" → "drop"',
      '~ /tenants/acme/tunnels/gre1',
      '    mtu: 1476 → 1400',
      `4 changes (1 to create, 2 to update, 1 to delete) against store revision ${before.value.revision}`,
      '',
    ].join('\n'),
  );
  const json = await lab.run(['plan', '-f', file, '--json']);
  const diff = JSON.parse(json.out) as { revision: number; changes: { action: string; key: string; modRevision: number }[] };
  assert.equal(diff.revision, before.value.revision);
  assert.deepEqual(
    diff.changes.map((c) => [c.action, c.key, c.modRevision > 0]),
    [
      ['delete', '/dos/rules/chargen', true],
      ['create', '/dos/rules/qotd', false],
      ['update', '/tenants/acme/firewall', true],
      ['update', '/tenants/acme/tunnels/gre1', true],
    ],
  );

  const applied = await lab.run(['apply', '-f', file, '--yes', '--json']);
  assert.equal(applied.code, 0, applied.err);
  const result = JSON.parse(applied.out) as { revision: number; changes: unknown[]; applied: boolean };
  assert.equal(result.applied, true);
  assert.equal(result.changes.length, 4);
  assert.ok(result.revision > before.value.revision);
  assert.deepEqual(await configKeys(), expectedEntries(readFileSync(file, 'utf8')));
  assert.match(applied.err, /^- \/dos\/rules\/chargen$/m, 'with --json the diff goes to stderr');
});

test('on a TTY apply asks; "n" applies nothing', async () => {
  const keys = await configKeys();
  const r = await lab.run(['apply', '-f', ACME], { tty: true, answers: ['n'] });
  assert.equal(r.code, 1);
  assert.deepEqual(r.asked, ['Apply 4 changes? [y/N] ']);
  assert.match(r.err, /^nothing applied$/m);
  assert.deepEqual(await configKeys(), keys);
});

test('the store changed between the diff and the write: 409, nothing applied, told to run apply again', async () => {
  const keys = await configKeys();
  const gre1 = await lab.store.get('/tenants/acme/tunnels/gre1');
  assert.ok(gre1.ok && gre1.value);
  const r = await lab.run(['apply', '-f', ACME], {
    tty: true,
    answers: ['y'],
    // Someone else changes one of the keys the diff covers while the operator reads it.
    whilePrompting: async () => {
      const w = await lab.store.put('/tenants/acme/tunnels/gre1', { ...(gre1.value!.value as object), mtu: 1300 });
      assert.ok(w.ok, JSON.stringify(w));
    },
  });
  assert.equal(r.code, 1);
  assert.match(r.err, /the config changed since the diff .*; nothing was applied — run apply again to see the new diff/);
  const now = await configKeys();
  assert.equal((now.get('/tenants/acme/tunnels/gre1') as { mtu: number }).mtu, 1300);
  now.set('/tenants/acme/tunnels/gre1', keys.get('/tenants/acme/tunnels/gre1'));
  assert.deepEqual(now, keys, 'nothing else was written');
});

/** A status an agent would write, at `applied`. */
function status(applied: number, extra: Partial<ServerStatus> = {}): ServerStatus {
  const now = new Date().toISOString();
  return { appliedRevision: applied, seenRevision: applied, store: { connected: true, since: now }, tunnels: [], startedAt: now, updatedAt: now, version: '0.1.0', ...extra };
}

test('apply --wait: follows the servers until all applied it, or names those that did not with their last error', async () => {
  const far = 1_000_000;
  for (const [dc, s] of [['ams', 's1'], ['ams', 's2'], ['chi', 's1'], ['chi', 's2']] as const) assert.ok((await lab.store.put(statusKey(dc, s), status(far))).ok);
  const r = await lab.run(['apply', '-f', ACME, '--yes', '--wait', '--timeout', '5']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^all 4 servers applied revision \d+$/m);
  assert.match(r.err, /^waiting: 4\/4 servers applied revision \d+$/m);

  const stuck = status(3, { seenRevision: far + 5, lastError: { at: new Date().toISOString(), message: 'nft: table ae-acme: Operation not permitted' } });
  assert.ok((await lab.store.put(statusKey('chi', 's2'), stuck)).ok);
  const file = variant('wait.yaml', [MODIFIED[0]!]);
  const w = await lab.run(['apply', '-f', file, '--yes', '--wait', '--timeout', '1']);
  assert.equal(w.code, 1);
  assert.match(w.err, /^1 of 4 servers did not apply revision \d+ within 1 s:$/m);
  assert.match(w.err, /^ {2}chi\/s2: applied 3, seen \d+ \(needs \d+\); last error at .*: nft: table ae-acme: Operation not permitted$/m);

  const usage = await lab.run(['apply', '-f', file, '--yes', '--timeout', '5']);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /^--timeout: only means something with --wait/);
  const bad = await lab.run(['apply', '-f', file, '--yes', '--wait', '--timeout', 'soon']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^--timeout "soon": give seconds to wait/);
});

test('plan -f: the kernel plan\'s flags without --server are a usage error', async () => {
  const r = await lab.run(['plan', '-f', ACME, '--netns', 'x', '--link-pool', '192.0.2.128/25']);
  assert.equal(r.code, 2);
  assert.equal(r.err, '--netns, --link-pool: only for the kernel plan of one server; add --server DC/SERVER, or remove them to see the store diff\n');
});

test('no token, a bad token, or no API: exit codes and messages that say what to do', async () => {
  const none = await lab.run(['plan', '-f', ACME], { env: { ANYEDGE_TOKEN: undefined } });
  assert.equal(none.code, 2);
  assert.match(none.err, /^no API token: pass --token-file FILE/);
  const unknown = await lab.run(['plan', '-f', ACME], { env: { ANYEDGE_TOKEN: 'ae_' + 'x'.repeat(43) } });
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /^POST \/v1\/config\/diff: .*\(401\); pass a valid token with --token-file FILE or ANYEDGE_TOKEN$/m);
  const gone = await lab.run(['plan', '-f', ACME], { noApiFlag: true, env: { ANYEDGE_API: 'http://127.0.0.1:1' } });
  assert.equal(gone.code, 1);
  assert.match(gone.err, /^cannot reach the anyedge API at http:\/\/127\.0\.0\.1:1 \(.*\); start it with `anyedge api`, or point to it with --api URL/);
});
