/**
 * Egress address budget (issue 7): IPv4 addresses needed for 300 data centers × 100 servers ×
 * 40 tags under the three designs of the seed post ("Cloudflare servers don't own IPs anymore"):
 *
 * 1. a specialised IP on every server: every server holds an address of every tag;
 * 2. a specialised IP per data center (soft-unicast): a data center holds, per tag,
 *    ceil(servers / S) addresses shared by port slices, S = 65536/sliceSize − 1;
 * 3. a specialised IP on one server: one address per tag, everything else forwarded to it.
 *
 * Design 2 is counted with the compiler's own rule (compile/egress/slices.ts `addressesNeeded`)
 * at three slice sizes, and cross-checked by running the real allocator
 * (compile/egress/allocate.ts) on a config small enough for the documentation ranges (12 data
 * centers × 100 servers × 4 tags): its plan must assign exactly what the rule counts, and every
 * server must get a slice of each tag (ownership). Pure computation, no kernel; a few seconds.
 *
 *   node --import tsx bench/egress.bench.ts
 */
import { performance } from 'node:perf_hooks';
import { parseConfig, type Config } from '../src/model/config.ts';
import { formatIssue } from '../src/model/issue.ts';
import { slicesPerAddress } from '../src/model/egress.ts';
import { addressesNeeded } from '../src/compile/egress/slices.ts';
import { allocateEgress, applyAllocation } from '../src/compile/egress/allocate.ts';
import { egressOwnership } from '../src/compile/egress/ownership.ts';

const DCS = 300;
const SERVERS = 100;
const TAGS = 40;

const fmt = (n: number) => n.toLocaleString('en-US');

console.log(`### egress: IPv4 addresses for ${DCS} DCs × ${SERVERS} servers × ${TAGS} tags (\`bench/egress.bench.ts\`)\n`);
console.log('| design | IPv4 addresses | per server | egress path |');
console.log('|---|---:|---:|---|');
const everyServer = DCS * SERVERS * TAGS;
console.log(`| specialised IP on every server | ${fmt(everyServer)} | ${TAGS} | local |`);
for (const size of [2048, 1024, 512]) {
  const perDc = DCS * TAGS * addressesNeeded(SERVERS, size);
  console.log(`| per data center, soft-unicast, sliceSize ${size} (${slicesPerAddress(size)} servers/address, ${addressesNeeded(SERVERS, size)} per DC and tag) | ${fmt(perDc)} | ${(perDc / (DCS * SERVERS)).toFixed(2)} | local |`);
}
console.log(`| specialised IP on one server | ${fmt(TAGS)} | ${(TAGS / (DCS * SERVERS)).toFixed(4)} | forwarded (all but one server) |`);
console.log(`\nsoft-unicast at sliceSize 2048 needs ${(everyServer / (DCS * TAGS * addressesNeeded(SERVERS, 2048))).toFixed(0)}× fewer addresses than an address per server.\n`);

// Cross-check with the allocator on a config that fits the documentation ranges.
const X_DCS = 12;
const X_TAGS = 4;
function crossConfig(): Config {
  const dcs: Record<string, unknown> = {};
  for (let d = 0; d < X_DCS; d++) {
    const servers: Record<string, unknown> = {};
    for (let s = 0; s < SERVERS; s++) servers[`s${String(s).padStart(3, '0')}`] = { uplink: 'eth0', addresses: [`2001:db8:${(d + 1).toString(16)}:${(s + 1).toString(16)}::2/64`] };
    dcs[`dc${String(d).padStart(2, '0')}`] = { name: `DC ${d}`, backbone: [`2001:db8:0:${(d + 1).toString(16)}::1/64`], servers };
  }
  // Four tags of 64 addresses each: 198.51.100.0/26, .64/26, .128/26 and 203.0.113.0/26.
  const cidrs = ['198.51.100.0/26', '198.51.100.64/26', '198.51.100.128/26', '203.0.113.0/26'];
  const tags = [
    { class: 'trusted', country: 'GB' },
    { class: 'untrusted', country: 'GB' },
    { class: 'trusted', country: 'DE' },
    { class: 'untrusted', country: 'DE' },
  ];
  const pools = Object.fromEntries(cidrs.map((c, i) => [`p${i}`, { cidrs: [c], tags: tags[i] }]));
  const r = parseConfig({ dcs, anycast: { egressRanges: ['198.51.100.0/24', '203.0.113.0/24'] }, egress: { pools, assign: {} } });
  if (!r.ok) throw new Error(r.error.slice(0, 3).map(formatIssue).join('\n'));
  return r.value;
}
const config = crossConfig();
const t0 = performance.now();
const plan = allocateEgress(config);
const t1 = performance.now();
if (!plan.ok) throw new Error(plan.error.message);
const expected = X_DCS * X_TAGS * addressesNeeded(SERVERS, 2048);
const assigned = plan.value.changes.filter((c) => c.action === 'assign').length;
const after = applyAllocation(config, plan.value);
const t2 = performance.now();
const own = egressOwnership(after);
const t3 = performance.now();
if (!own.ok) throw new Error(own.error.message);
const slices = own.value.reduce((n, o) => n + (o.owner.kind === 'slices' ? o.owner.slices.length : 0), 0);
console.log(`cross-check (${X_DCS} DCs × ${SERVERS} servers × ${X_TAGS} tags, sliceSize 2048): the allocator assigned ${assigned} addresses, the rule counts ${expected}${assigned === expected ? ' (equal)' : ' — MISMATCH'}; ` +
  `${slices} slices = ${X_DCS * SERVERS * X_TAGS} servers × tags${slices === X_DCS * SERVERS * X_TAGS ? ' (every server has one per tag)' : ' — MISMATCH'}; ` +
  `allocate ${(t1 - t0).toFixed(1)} ms, ownership ${(t3 - t2).toFixed(1)} ms.`);
if (assigned !== expected || slices !== X_DCS * SERVERS * X_TAGS) process.exitCode = 1;
