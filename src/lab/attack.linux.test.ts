/**
 * `lab attack` on the real kernel, 2 DCs × 2 servers × 3 cities (LMDB store): ber-e1 floods
 * Acme's 203.0.113.100 with hping3 (bounded: 6 s, at most 6 × 20,000 packets; hping3 reaches a few thousand a second here) while lon-e1 — whose
 * city lands in the same DC, ams — keeps one connection echoing and opens ten new ones a second.
 * The mitigation goes in through the REST API before the flood. For the UDP flood (a drop rule on
 * the flood's payload signature) and the SYN flood (the per-source SYN rate limit) each:
 * ≥ 99 % of the new connections echoed, the long connection alive, ≥ 90 % of the flood's packets
 * dropped by XDP on ams's servers (the veth driver's own XDP counters) and counted by the rule's
 * own DoS counters, the rule removed after.
 * A unique lab id; lab down in `after`, so a failure leaves nothing behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';
import { labDown } from './down.ts';
import { labUp, requiredTools } from './up.ts';
import { labAttack } from './attack.ts';
import { formatAttack, type AttackReport } from './attack-report.ts';
import type { FloodKind } from './attack-flood.ts';

// Two base-36 characters from the pid, offset from the other lab tests' choices of the same pid.
const id = ((process.pid + 972) % 1296).toString(36).padStart(2, '0');
let runDir: string | null = null;
let upError: string | null = null;


after(async () => {
  if (runDir) {
    await labDown({ id, runDir });
    await rm(runDir, { recursive: true, force: true });
  }
});

async function ensureLab(): Promise<void> {
  if (runDir || upError) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  runDir = await mkdtemp(join(tmpdir(), 'anyedge-attack-'));
  const up = await labUp({ id, size: { dcs: 2, servers: 2, cities: 3 }, store: 'lmdb', runDir, waitMs: 90_000 });
  if (!up.ok) upError = `${up.error.path}: ${up.error.message}`;
}

function check(r: AttackReport, kind: FloodKind, pps: number): void {
  assert.equal(r.kind, kind);
  assert.equal(r.attacker.eyeball, 'ber-e1');
  assert.equal(r.legit.eyeball, 'lon-e1');
  assert.equal(r.attacker.dc, 'ams');
  assert.equal(r.legit.dc, 'ams');
  assert.ok(r.flood.transmitted >= 5000, `a real flood: ${r.flood.transmitted} packets`);
  assert.ok(r.flood.transmitted <= 6 * pps, 'bounded by -c');
  assert.ok(r.client.short.attempted >= 50, `new connections all along: ${r.client.short.attempted}`);
  assert.ok(r.verdict.successRate >= 0.99, `legitimate success rate ${r.verdict.successRate}: ${JSON.stringify(r.client.short)}`);
  assert.ok(r.client.long.survived, `long connection: ${JSON.stringify(r.client.long)}`);
  assert.ok(r.client.long.echoed >= 50, JSON.stringify(r.client.long));
  // The kernel's own count of XDP drops on the servers' uplinks, all in ams (where ber lands).
  assert.ok(r.totals.xdpDrops + r.totals.xdpTx >= 0.9 * r.flood.transmitted, `XDP stopped ${r.totals.xdpDrops}+${r.totals.xdpTx} of ${r.flood.transmitted}`);
  assert.ok(Object.keys(r.totals.dropsByServer).every((s) => s.startsWith('ams-')), JSON.stringify(r.totals.dropsByServer));
  // The rule's own counters in the DoS stage agree: it is the rule that dropped them.
  assert.ok(r.totals.rule.dropped >= 0.9 * r.flood.transmitted, `rule counters: ${JSON.stringify(r.totals.rule)} of ${r.flood.transmitted}`);
  assert.ok(r.totals.rule.dropped <= r.totals.xdpDrops, 'every drop the rule counted is an XDP drop');
  assert.ok(r.verdict.ok, r.verdict.problems.join('; '));
  assert.ok(r.ruleRemoved, 'the mitigation rule is removed after the run');
}

const PPS = 20_000;

for (const kind of ['udp', 'syn'] as const) {
  test(`lab attack ${kind}${kind === 'syn' ? ' (rate-limit)' : ''}: hping3 from ber-e1 while lon-e1 keeps using Acme's echo service; ≥ 99 % legitimate, the flood dropped in XDP`, async (t) => {
    if (!needs(t, { root: true, tools: [...requiredTools('lmdb'), 'hping3', 'ethtool', 'timeout'] })) return;
    await ensureLab();
    if (upError) assert.fail(`lab up: ${upError}`);
    const lines: string[] = [];
    const r = await labAttack({ id, runDir: runDir!, kind, seconds: 6, pps: PPS, syn: 'rate-limit', log: (l) => void lines.push(l) });
    t.diagnostic(lines.join('\n'));
    if (!r.ok) assert.fail(`${r.error.path}: ${r.error.message}`);
    t.diagnostic(formatAttack(r.value));
    check(r.value, kind, PPS);
  });
}
