// The egress SNAT table and lo addresses of one server, as goldens (JSON for the kernel, text for
// people), and the rules they follow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkGolden } from '../../testkit/golden.ts';
import { compileEgressNft, egressNftText, loCidr } from './nft.ts';
import { compileServerEgress } from './desired.ts';
import { serverEgress } from './server.ts';
import { configOf, egressDoc } from './fixtures.ts';

const TESTDATA = new URL('./testdata/', import.meta.url).pathname;

test('golden: lon/s2 — one SNAT rule per IPv4 address into its slice, IPv6 only on lo', () => {
  const c = configOf(egressDoc());
  const r = compileServerEgress(c, { dc: 'lon', server: 's2' }, 'ae', null);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const addrs = serverEgress(c, 'lon', 's2');
  assert.ok(addrs.ok);
  checkGolden(`${TESTDATA}lon-s2.golden.nft`, egressNftText('aeegress', addrs.value));
  checkGolden(`${TESTDATA}lon-s2.golden.json`, JSON.stringify({ egress: { ...r.value.egress, ns: null }, nft: r.value.nft }, null, 2) + '\n');
  assert.deepEqual(
    r.value.egress.addrs.map((a) => a.cidr),
    ['198.51.100.64/32', '198.51.100.80/32', '2001:db8:e0::1/128'],
  );
  assert.deepEqual(r.value.egress.owned, ['198.51.100.64/26', '2001:db8:e0::/48']);
});

test('a server with only IPv6 egress, or none, gets no SNAT table', () => {
  const doc = egressDoc();
  doc.egress.assign = { '2001:db8:e0::1': { dc: 'lon', server: 's2' } };
  const r = compileServerEgress(configOf(doc), { dc: 'lon', server: 's2' }, 'ae', null);
  assert.ok(r.ok);
  assert.equal(r.value.nft, null);
  assert.deepEqual(r.value.egress.addrs, [{ path: 'egress/assign/2001:db8:e0::1', cidr: '2001:db8:e0::1/128' }]);
  const none = compileServerEgress(configOf(doc), { dc: 'par', server: 's1' }, 'ae', null);
  assert.ok(none.ok);
  assert.equal(none.value.nft, null);
  assert.deepEqual(none.value.egress.addrs, []);
});

test('the batch replaces the table atomically and maps only TCP and UDP', () => {
  const batch = compileEgressNft('t', [{ ip: '198.51.100.64', family: 4, pool: 'p', class: 'trusted', country: 'GB', portLo: 64, portHi: 127, sliceSize: 64 }]);
  const verbs = batch.nftables.slice(0, 3).map((c) => Object.keys(c)[0]);
  assert.deepEqual(verbs, ['add', 'delete', 'add']);
  const rule = JSON.stringify(batch.nftables.at(-1));
  assert.match(rule, /"l4proto"/);
  assert.match(rule, /"set":\["tcp","udp"\]/);
  assert.match(rule, /"snat":\{"addr":"198.51.100.64","port":\{"range":\[64,127\]\}\}/);
  assert.equal(loCidr({ ip: '2001:db8::1', family: 6 }), '2001:db8::1/128');
});

test('an egress error of the server stops its compile with the error', () => {
  const c = structuredClone(configOf(egressDoc())) as { egress: { assign: Record<string, unknown> } };
  c.egress.assign['2001:db8:e0::2'] = { dc: 'lon' };
  const r = compileServerEgress(c as never, { dc: 'lon', server: 's1' }, 'ae', null);
  assert.equal(r.ok, false);
});
