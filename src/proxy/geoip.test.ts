import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GeoTable, labGeoTable, loadGeoTable, parseGeofeed } from './geoip.ts';

function table(csv: string, def: string | null = null): GeoTable {
  const rows = parseGeofeed(csv);
  assert.ok(rows.ok, rows.ok ? '' : rows.error.map((e) => e.message).join('; '));
  return new GeoTable(rows.value, def);
}

test('the longest prefix wins, in both families', () => {
  const t = table('192.0.2.0/24,NL\n192.0.2.128/25,US\n192.0.2.200/32,DE\n2001:db8::/32,NL\n2001:db8:1::/48,SG\n');
  const at = (ip: string): string => {
    const r = t.lookup(ip);
    assert.ok(r.ok, JSON.stringify(r));
    return `${r.value.country} ${r.value.from}`;
  };
  assert.equal(at('192.0.2.1'), 'NL 192.0.2.0/24');
  assert.equal(at('192.0.2.129'), 'US 192.0.2.128/25');
  assert.equal(at('192.0.2.200'), 'DE 192.0.2.200/32');
  assert.equal(at('2001:db8::5'), 'NL 2001:db8::/32');
  assert.equal(at('2001:db8:1:2::5'), 'SG 2001:db8:1::/48');
});

test('an address in no row gets the default country, or an error saying how to fix it', () => {
  assert.deepEqual(table('192.0.2.0/25,NL', 'US').lookup('198.51.100.7'), { ok: true, value: { country: 'US', from: 'default' } });
  const r = table('192.0.2.0/25,NL').lookup('198.51.100.7');
  assert.ok(!r.ok);
  assert.match(r.error.message, /eyeball 198\.51\.100\.7 is in no prefix of the GeoIP table \(1 rows\).*--default-country/);
  const bad = table('192.0.2.0/25,NL').lookup('not-an-ip');
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /not an IPv4 address/);
});

test('the RFC 8805 layout: extra columns, comments, blank lines and case are accepted', () => {
  const t = table('# geofeed\n\n192.0.2.0/25,nl,NL-NH,Amsterdam,\n 2001:db8::/32 , us ,,,\n192.0.2.130,DE\n');
  assert.deepEqual(t.entries.map((e) => e.country), ['NL', 'US', 'DE']);
  assert.equal(t.entries[2]?.cidr.len, 32);
});

test('every bad row is reported with its line and reason', () => {
  const r = parseGeofeed('192.0.2.0/25,NL\n192.0.2.0/33,NL\n192.0.2.128/25,UK\nlonely\n192.0.2.0/25,US\n192.0.2.1/24,NL\n', 'feed.csv');
  assert.ok(!r.ok);
  const msgs = r.error.map((e) => e.message);
  assert.equal(msgs.length, 5, msgs.join('\n'));
  assert.match(msgs[0]!, /^feed\.csv:2: .*33/);
  assert.match(msgs[1]!, /^feed\.csv:3: "UK" is not an ISO 3166-1 alpha-2 country code/);
  assert.match(msgs[2]!, /^feed\.csv:4: "lonely" is not "prefix,country"/);
  assert.match(msgs[3]!, /^feed\.csv:5: 192\.0\.2\.0\/25 is already listed on line 1/);
  assert.match(msgs[4]!, /^feed\.csv:6: .*host bits/);
});

test('loadGeoTable reads a file and names a missing one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ae-geo-'));
  try {
    const file = join(dir, 'geo.csv');
    writeFileSync(file, '192.0.2.0/24,SG\n');
    const t = loadGeoTable(file, null);
    assert.ok(t.ok);
    const r = t.value.lookup('192.0.2.9');
    assert.ok(r.ok && r.value.country === 'SG');
    const missing = loadGeoTable(join(dir, 'nope.csv'), null);
    assert.ok(!missing.ok);
    assert.match(missing.error[0]!.message, /cannot read .*nope\.csv: ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the built-in lab table splits 192.0.2.0/24 and 2001:db8::/32 into NL and US', () => {
  const t = labGeoTable(null);
  const c = (ip: string): string | undefined => {
    const r = t.lookup(ip);
    return r.ok ? r.value.country : undefined;
  };
  assert.deepEqual([c('192.0.2.10'), c('192.0.2.140'), c('2001:db8::10'), c('2001:db8:8000::10'), c('203.0.113.1')], ['NL', 'US', 'NL', 'US', undefined]);
});
