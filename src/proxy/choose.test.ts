import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EgressAddress } from './egress-address.ts';
import { eligible, exhausted, nextAddress, rank, type ChoiceRequest } from './choose.ts';
import { SliceLedger } from './ledger.ts';

function addr(ip: string, country: string, cls: 'trusted' | 'untrusted' = 'trusted', sliceSize: number | null = 64): EgressAddress {
  const family = ip.includes(':') ? 6 : 4;
  return sliceSize === null
    ? { ip, family, pool: `${country}-${cls}`, class: cls, country, portLo: 1024, portHi: 65535, sliceSize: null }
    : { ip, family, pool: `${country}-${cls}`, class: cls, country, portLo: sliceSize, portHi: 2 * sliceSize - 1, sliceSize };
}

const ADDRS = [addr('198.51.100.64', 'NL'), addr('198.51.100.65', 'NL'), addr('198.51.100.96', 'US', 'untrusted'), addr('198.51.100.70', 'DE'), addr('2001:db8:e::1', 'NL', 'trusted', null)];
const DST = { ip: '203.0.113.10', port: 443 };
const req = (over: Partial<ChoiceRequest> = {}): ChoiceRequest => ({ class: 'trusted', country: 'NL', family: 4, destination: DST, ...over });

test('eligible: class, family and country must all match', () => {
  const r = eligible(ADDRS, req(), null);
  assert.ok(r.ok);
  assert.deepEqual(r.value.addresses.map((a) => a.ip), ['198.51.100.64', '198.51.100.65']);
  assert.equal(r.value.fallback, null);
  const v6 = eligible(ADDRS, req({ family: 6, destination: { ip: '2001:db8:5::1', port: 443 } }), null);
  assert.ok(v6.ok);
  assert.deepEqual(v6.value.addresses.map((a) => a.ip), ['2001:db8:e::1']);
  const us = eligible(ADDRS, req({ class: 'untrusted', country: 'US' }), null);
  assert.ok(us.ok);
  assert.deepEqual(us.value.addresses.map((a) => a.ip), ['198.51.100.96']);
});

test('eligible: the fallback country is used only when the eyeball\'s has no address, and says so', () => {
  const fr = eligible(ADDRS, req({ country: 'FR' }), 'NL');
  assert.ok(fr.ok);
  assert.equal(fr.value.country, 'NL');
  assert.deepEqual(fr.value.addresses.map((a) => a.ip), ['198.51.100.64', '198.51.100.65']);
  assert.match(fr.value.fallback ?? '', /no trusted IPv4 egress address in FR on this server; leaving from the fallback country NL/);
  const de = eligible(ADDRS, req({ country: 'DE' }), 'NL');
  assert.ok(de.ok);
  assert.equal(de.value.fallback, null);
  assert.deepEqual(de.value.addresses.map((a) => a.ip), ['198.51.100.70']);
});

test('eligible: the errors name what is missing and what to do', () => {
  const noCountry = eligible(ADDRS, req({ country: 'FR' }), null);
  assert.ok(!noCountry.ok);
  assert.equal(noCountry.error.code, 'no_egress');
  assert.match(noCountry.error.message, /no trusted IPv4 egress address in FR on this server \(it has trusted addresses in DE, NL\); add a pool tagged trusted\/FR, or start the proxy with --fallback-country/);
  const noFallback = eligible(ADDRS, req({ country: 'FR' }), 'SG');
  assert.ok(!noFallback.ok);
  assert.match(noFallback.error.message, /in FR nor in the fallback country SG/);
  const noV6 = eligible(ADDRS, req({ class: 'untrusted', country: 'US', family: 6 }), null);
  assert.ok(!noV6.ok);
  assert.match(noV6.error.message, /no untrusted IPv6 egress address is assigned to this server \(it has 5 egress addresses in all\)/);
  assert.equal(noV6.error.path, 'class=untrusted country=US IPv6 → [203.0.113.10]:443');
});

test('rank: most free capacity towards the destination first, then the less loaded address', () => {
  const ledger = new SliceLedger();
  const nl = ADDRS.slice(0, 2);
  for (let i = 0; i < 10; i++) ledger.acquire('198.51.100.64', DST);
  assert.deepEqual(rank(nl, ledger, DST).map((x) => [x.address.ip, x.free]), [['198.51.100.65', 64], ['198.51.100.64', 54]]);
  // Towards another destination both are empty: the one with fewer live connections in total first.
  const other = { ip: '203.0.113.11', port: 443 };
  assert.deepEqual(rank(nl, ledger, other).map((x) => [x.address.ip, x.free]), [['198.51.100.65', 64], ['198.51.100.64', 64]]);
  for (let i = 0; i < 3; i++) ledger.acquire('198.51.100.65', other);
  assert.deepEqual(rank(nl, ledger, other).map((x) => [x.address.ip, x.free, x.live]), [['198.51.100.64', 64, 10], ['198.51.100.65', 61, 3]]);
});

test('a slice is full for a destination at sliceSize live connections to it, not in total', () => {
  const ledger = new SliceLedger();
  const nl = ADDRS.slice(0, 2);
  // 64 destinations × 2 connections each from .64: 128 live, none full.
  for (let d = 0; d < 64; d++) for (let k = 0; k < 2; k++) ledger.acquire('198.51.100.64', { ip: '203.0.113.20', port: 1000 + d });
  assert.equal(ledger.live('198.51.100.64'), 128);
  assert.equal(nextAddress([nl[0]!], ledger, { ip: '203.0.113.20', port: 1000 }, new Set())?.free, 62);
  // 64 to one destination: .64 is full for it, the next choice is .65.
  const leases = Array.from({ length: 64 }, () => ledger.acquire('198.51.100.64', DST));
  assert.equal(ledger.maxPerDestination('198.51.100.64'), 64);
  assert.equal(nextAddress(nl, ledger, DST, new Set())?.address.ip, '198.51.100.65');
  assert.equal(nextAddress(nl, ledger, DST, new Set(['198.51.100.65'])), null, 'refused by the kernel and the other full: nothing left');
  leases[0]!.release();
  leases[0]!.release(); // idempotent
  assert.equal(ledger.liveTo('198.51.100.64', DST), 63);
  assert.equal(nextAddress(nl, ledger, DST, new Set(['198.51.100.65']))?.address.ip, '198.51.100.64');
});

test('exhausted: the message names the tags, the destination and every slice tried', () => {
  const ledger = new SliceLedger();
  const nl = ADDRS.slice(0, 2);
  for (let i = 0; i < 64; i++) ledger.acquire('198.51.100.64', DST);
  const e = eligible(nl, req(), null);
  assert.ok(e.ok);
  const x = exhausted(req(), e.value, ledger, [{ ip: '198.51.100.65', why: 'the kernel refused the address (EADDRNOTAVAIL)' }]);
  assert.equal(x.code, 'exhausted');
  assert.equal(
    x.message,
    'every eligible egress slice is full for class=trusted country=NL IPv4 → 203.0.113.10:443: 2 slices tried (198.51.100.64 ports 64–127: 64/64 live to it; 198.51.100.65 ports 64–127: the kernel refused the address (EADDRNOTAVAIL)); retry when connections to this destination close, or add addresses to a trusted/NL pool',
  );
});

test('IPv6 addresses have no slice: their capacity per destination is their whole port range', () => {
  const ledger = new SliceLedger();
  const v6 = ADDRS.filter((a) => a.family === 6);
  assert.equal(rank(v6, ledger, { ip: '2001:db8:5::1', port: 443 })[0]?.free, 64512);
});
