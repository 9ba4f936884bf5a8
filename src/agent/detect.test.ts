/**
 * The detector on synthetic sample streams: rate estimates (sampling and lost samples), top
 * lists, per-tenant thresholds, and the rule chosen for each kind of attack.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rng } from '../testkit/random.ts';
import type { Sample } from '../kernel/bpf/sample.ts';
import { defaultDetectionPolicy, type DetectionPolicy } from '../model/detection.ts';
import { mustCidr } from '../model/net.ts';
import { dosRuleSchema } from '../model/dos.ts';
import { analyseWindow, isDetectedRuleId, ruleIdOf, signature, sourcePrefix, TenantIndex, type DetectTenant } from './detect.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');

function policy(p: Partial<DetectionPolicy['thresholds']> = {}, more: Partial<DetectionPolicy> = {}): DetectionPolicy {
  const d = defaultDetectionPolicy();
  return { ...d, ...more, thresholds: { ...d.thresholds, ...p } };
}

const acme: DetectTenant = { id: 'acme', prefixes: [mustCidr('203.0.113.0/25'), mustCidr('2001:db8:1::/48')], policy: policy({ pps: 1000, bps: 1e9, synPps: 500 }) };
const globex: DetectTenant = { id: 'globex', prefixes: [mustCidr('203.0.113.128/25')], policy: policy({ pps: 50_000 }) };

const base: Sample = { family: 4, proto: 17, src: '192.0.2.10', dst: '203.0.113.5', sport: 4000, dport: 53, len: 100, ttl: 60, tcpFlags: 0, payload: '' };
/** Spoofed sources: every one in its own /64 (the documentation ranges hold only three IPv4 /24s). */
const spoofed = (i: number): Partial<Sample> => ({ family: 6, src: `2001:db8:a:${i.toString(16)}::1`, dst: '2001:db8:1::5' });
const many = (n: number, f: (i: number) => Partial<Sample>): Sample[] => Array.from({ length: n }, (_, i) => ({ ...base, ...f(i) }));

test('rates are samples × N over the window, lost samples spread over the kept ones', () => {
  const r = analyseWindow({ samples: many(100, () => ({})), lost: 100, every: 10, seconds: 2 }, [acme], NOW);
  // 200 samples written × 10 / 2 s = 1000 pps; 100 bytes each = 800 kbit/s.
  assert.equal(r.pps, 1000);
  assert.equal(r.bps, 800_000);
  assert.deepEqual(r.topDestinations, [{ key: '203.0.113.5', pps: 1000, bps: 800_000 }]);
  assert.deepEqual(r.attacks, [], '1000 pps is not over a threshold of 1000');
  const empty = analyseWindow({ samples: [], lost: 0, every: 10, seconds: 1 }, [acme], NOW);
  assert.equal(empty.pps, 0);
  assert.deepEqual(empty.attacks, []);
});

test('top lists: destinations, sources by /24 and /64, signatures; at most five, deterministic', () => {
  const samples = [
    ...many(50, (i) => ({ dst: `203.0.113.${1 + (i % 7)}`, src: `198.51.100.${i}` })),
    ...many(30, () => ({ family: 6, src: '2001:db8:9:1::7', dst: '2001:db8:1::5' })),
  ];
  const r = analyseWindow({ samples, lost: 0, every: 1, seconds: 1 }, [acme], NOW);
  assert.equal(r.topDestinations.length, 5);
  assert.deepEqual(r.topDestinations[0], { key: '2001:db8:1::5', pps: 30, bps: 24_000 });
  assert.deepEqual(r.topSources.map((s) => s.key), ['198.51.100.0/24', '2001:db8:9:1::/64']);
  assert.deepEqual(r.topSignatures.map((s) => s.key), ['udp dport 53']);
  assert.equal(sourcePrefix('2001:db8:9:1:2:3:4:5'), '2001:db8:9:1::/64');
  assert.equal(signature({ ...base, proto: 6, dport: 80, tcpFlags: 0x12, payload: '474554202f20485454' }), 'tcp dport 80 flags SA payload 474554202f204854');
});

test('a UDP flood with a common payload is dropped exactly: protocol, port and payload to the address', () => {
  const samples = many(300, (i) => ({ ...spoofed(i), sport: 1024 + i, payload: '0123456789abcdef0011' }));
  const r = analyseWindow({ samples, lost: 0, every: 10, seconds: 1 }, [acme, globex], NOW);
  assert.equal(r.attacks.length, 1);
  const a = r.attacks[0]!;
  assert.equal(a.tenant, 'acme');
  assert.deepEqual(a.observation.crossed, ['pps']);
  assert.equal(a.observation.pps, 3000);
  assert.deepEqual(a.rule, {
    description: 'detected UDP flood to port 53 with payload 0123456789abcdef to 2001:db8:1::5',
    match: { dst: ['2001:db8:1::5/128'], protocol: 'udp', dport: [53], payload: { offset: 0, bytes: '0123456789abcdef' } },
    action: 'drop',
    scope: { tenant: 'acme' },
    expires: '2030-01-01T00:10:00.000Z',
  });
  assert.ok(dosRuleSchema.safeParse(a.rule).success);
  assert.ok(isDetectedRuleId(a.ruleId), a.ruleId);
});

test('a SYN flood from spoofed sources is rate-limited per destination at the SYN threshold', () => {
  const next = rng(7);
  const samples = many(200, () => ({ ...spoofed(Math.floor(next() * 65536)), proto: 6, tcpFlags: 0x02, dport: 80, len: 60 }));
  samples.push(...many(40, (i) => ({ ...spoofed(i), proto: 6, tcpFlags: 0x10, dport: 80, len: 1500 })));
  const r = analyseWindow({ samples, lost: 0, every: 5, seconds: 1 }, [acme], NOW);
  assert.equal(r.attacks.length, 1);
  const a = r.attacks[0]!;
  assert.deepEqual(a.observation.crossed, ['pps', 'synPps']);
  assert.equal(a.observation.synPps, 1000);
  assert.deepEqual(a.rule.match, { dst: ['2001:db8:1::5/128'], protocol: 'tcp', dport: [80], tcpFlags: { set: ['syn'], unset: ['ack'] } });
  assert.equal(a.rule.action, 'rate-limit');
  assert.deepEqual(a.rule.rateLimit, { pps: 500, per: 'dst-ip' });
});

test('a flood from one /24 is dropped by source prefix', () => {
  const samples = many(200, (i) => ({ src: `198.51.100.${i % 200}`, dport: 1000 + i, payload: '' }));
  const r = analyseWindow({ samples, lost: 0, every: 10, seconds: 1 }, [acme], NOW);
  assert.deepEqual(r.attacks[0]?.rule.match, { src: ['198.51.100.0/24'], dst: ['203.0.113.5/32'], protocol: 'udp' });
  assert.equal(r.attacks[0]?.rule.action, 'drop');
});

test('a mixed flood is rate-limited on what it has in common; bps alone also counts', () => {
  const next = rng(11);
  const mixed = many(300, (i) => ({ ...spoofed(Math.floor(next() * 65536)), proto: i % 2 ? 17 : 58, dport: i % 2 ? Math.floor(next() * 65535) : 0 }));
  const r = analyseWindow({ samples: mixed, lost: 0, every: 10, seconds: 1 }, [acme], NOW);
  assert.deepEqual(r.attacks[0]?.rule.match, { dst: ['2001:db8:1::5/128'] });
  assert.deepEqual(r.attacks[0]?.rule.rateLimit, { pps: 1000, per: 'dst-ip' });
  // 50 pps of 1500-byte packets = 600 kbit/s over a 500 kbit/s threshold.
  const big: DetectTenant = { ...acme, policy: policy({ pps: 1e6, bps: 500_000 }) };
  const b = analyseWindow({ samples: many(50, (i) => ({ ...spoofed(i), len: 1500, dport: 443, proto: 17 })), lost: 0, every: 1, seconds: 1 }, [big], NOW);
  assert.deepEqual(b.attacks[0]?.observation.crossed, ['bps']);
  assert.deepEqual(b.attacks[0]?.rule.match, { dst: ['2001:db8:1::5/128'], protocol: 'udp', dport: [443] });
});

test('thresholds are per tenant; traffic outside every tenant and disabled tenants are never attacks', () => {
  const toGlobex = many(300, (i) => ({ dst: '203.0.113.200', src: `192.0.2.${i % 250}` }));
  assert.deepEqual(analyseWindow({ samples: toGlobex, lost: 0, every: 10, seconds: 1 }, [acme, globex], NOW).attacks, [], '3000 pps is under globex 50 000');
  const outside = many(300, (i) => ({ dst: '198.51.100.1', src: `192.0.2.${i % 250}` }));
  const r = analyseWindow({ samples: outside, lost: 0, every: 100, seconds: 1 }, [acme, globex], NOW);
  assert.deepEqual(r.attacks, []);
  assert.equal(r.topDestinations[0]?.key, '198.51.100.1', 'still in the top list');
  const off: DetectTenant = { ...acme, policy: policy({ pps: 1 }, { enabled: false }) };
  assert.deepEqual(analyseWindow({ samples: many(300, () => ({})), lost: 0, every: 10, seconds: 1 }, [off], NOW).attacks, []);
});

test('the same attack seen by two servers (different samples) gives the same rule id; another attack another id', () => {
  const a = analyseWindow({ samples: many(300, (i) => ({ ...spoofed(i), payload: 'aabbccddeeff00112233' })), lost: 0, every: 10, seconds: 1 }, [acme], NOW);
  const b = analyseWindow({ samples: many(180, (i) => ({ ...spoofed(i * 7 + 1000), payload: 'aabbccddeeff0011ffff' })), lost: 20, every: 10, seconds: 1 }, [acme], NOW + 5000);
  assert.ok(a.attacks[0]);
  assert.equal(a.attacks[0]?.ruleId, b.attacks[0]?.ruleId);
  const c = analyseWindow({ samples: many(300, (i) => ({ ...spoofed(i), dport: 123 })), lost: 0, every: 10, seconds: 1 }, [acme], NOW);
  assert.notEqual(a.attacks[0]?.ruleId, c.attacks[0]?.ruleId);
  // Key order does not matter; a long tenant id still gives a valid id.
  assert.equal(ruleIdOf('acme', { a: 1, b: { c: 2, d: 3 } }), ruleIdOf('acme', { b: { d: 3, c: 2 }, a: 1 }));
  const long = ruleIdOf('a-very-long-tenant-name-of-32-ch', { x: 1 });
  assert.ok(long.length <= 32 && isDetectedRuleId(long), long);
});

test('TenantIndex finds the longest matching prefix of either family', () => {
  const ix = new TenantIndex([acme, globex]);
  assert.equal(ix.lookup('203.0.113.127')?.id, 'acme');
  assert.equal(ix.lookup('203.0.113.128')?.id, 'globex');
  assert.equal(ix.lookup('2001:db8:1:ffff::1')?.id, 'acme');
  assert.equal(ix.lookup('192.0.2.1'), undefined);
  assert.equal(ix.lookup('not an ip'), undefined);
});
