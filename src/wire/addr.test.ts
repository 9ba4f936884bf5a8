// Address text ↔ bytes: strict parsing, RFC 5952 canonical IPv6 output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIpv4Addr, formatIpv6Addr, formatMac, parseIpv4Addr, parseIpv6Addr, parseMac } from './addr.ts';

test('IPv4 round-trips and refuses ambiguous text', () => {
  const r = parseIpv4Addr('198.51.100.255');
  assert.ok(r.ok);
  assert.deepEqual([...r.value], [198, 51, 100, 255]);
  assert.equal(formatIpv4Addr(r.value), '198.51.100.255');
  for (const bad of ['1.2.3', '1.2.3.4.5', '1.2.3.256', '01.2.3.4', '1.2.3.-1', '1.2.3.a', '']) {
    const e = parseIpv4Addr(bad);
    assert.ok(!e.ok, bad);
    assert.equal(e.error.layer, 'addr');
    assert.equal(e.error.code, 'malformed');
  }
});

test('IPv6 text is parsed in every RFC 4291 form and printed per RFC 5952', () => {
  const cases: [string, string][] = [
    ['2001:db8::1', '2001:db8::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs (§4.2.3)
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not "::" (§4.2.2)
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [text, canon] of cases) {
    const r = parseIpv6Addr(text);
    assert.ok(r.ok, text);
    assert.equal(formatIpv6Addr(r.value), canon, text);
  }
  for (const bad of ['1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '12345::', '::g', '1:2:3:4:5:6:7::8']) {
    assert.ok(!parseIpv6Addr(bad).ok, bad);
  }
});

test('MACs in either separator style', () => {
  const r = parseMac('02-00-5E-00-53-01');
  assert.ok(r.ok);
  assert.equal(formatMac(r.value), '02:00:5e:00:53:01');
  assert.ok(!parseMac('02:00:5e:00:53').ok);
  assert.ok(!parseMac('02:00-5e:00:53:01').ok);
});
