// The geofeed, checked by a reader that follows RFC 8805 §2.1 to the letter, and the merging of
// adjacent same-country addresses into the fewest prefixes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COUNTRY_CODES } from '../../model/egress.ts';
import { cidrEnd, parseCidr } from '../../model/net.ts';
import { geofeedCsv, geofeedEntries, rangeToCidrs } from './geofeed.ts';
import { configOf, egressDoc } from './fixtures.ts';

/**
 * Reads a geofeed as RFC 8805 §2.1 describes it and throws on anything the RFC does not allow:
 * UTF-8 text; a line is empty, a comment (`#` first) or an entry of at most five comma-separated
 * fields ip_prefix,alpha2code,region,city,postal_code; the prefix a CIDR prefix (§2.1.1.1, here
 * also canonical); alpha2code empty or an ISO 3166-1 alpha-2 code (§2.1.1.2); region empty or an
 * ISO 3166-2 code of that country (§2.1.1.3); city free text (§2.1.1.4); postal code empty, as
 * §2.1.1.5 deprecates it. Entries must not repeat or overlap each other (§3.1's "no duplicates").
 */
function readGeofeed(text: string): { prefix: string; country: string; region: string; city: string }[] {
  assert.equal(Buffer.from(text, 'utf8').toString('utf8'), text, 'UTF-8');
  assert.ok(text.endsWith('\n'), 'every line ends with a newline');
  const out: { prefix: string; country: string; region: string; city: string }[] = [];
  const seen: { start: bigint; end: bigint; family: number; line: number }[] = [];
  for (const [i, line] of text.slice(0, -1).split('\n').entries()) {
    if (line === '' || line.startsWith('#')) continue;
    assert.ok(!line.includes('\r'), `line ${i + 1}: bare LF line ends`);
    const fields = line.split(',');
    assert.ok(fields.length <= 5, `line ${i + 1}: at most 5 fields, got ${fields.length}`);
    const [prefix = '', country = '', region = '', city = '', postal = ''] = fields;
    const c = parseCidr(prefix);
    assert.ok(c.ok, `line ${i + 1}: ${prefix} is not a CIDR prefix: ${c.ok ? '' : c.error}`);
    assert.ok(country === '' || (/^[A-Z]{2}$/.test(country) && COUNTRY_CODES.has(country)), `line ${i + 1}: ${country} is not an upper-case ISO 3166-1 alpha-2 code`);
    assert.ok(region === '' || new RegExp(`^${country}-[A-Z0-9]{1,3}$`).test(region), `line ${i + 1}: ${region} is not an ISO 3166-2 code of ${country}`);
    assert.ok(!/["\n]/.test(city), `line ${i + 1}: city`);
    assert.equal(postal, '', `line ${i + 1}: postal codes are deprecated (RFC 8805 §2.1.1.5)`);
    const span = { start: c.value.start, end: cidrEnd(c.value), family: c.value.family, line: i + 1 };
    const clash = seen.find((s) => s.family === span.family && s.start <= span.end && span.start <= s.end);
    assert.equal(clash, undefined, `line ${i + 1}: ${prefix} overlaps line ${clash?.line}`);
    seen.push(span);
    out.push({ prefix, country, region, city });
  }
  return out;
}

test('every pool prefix with its country, in RFC 8805 form', () => {
  const csv = geofeedCsv(configOf(egressDoc()), { comments: ['anyedge egress geofeed (RFC 8805): prefix,country,region,city,postal'] });
  assert.equal(
    csv,
    [
      '# anyedge egress geofeed (RFC 8805): prefix,country,region,city,postal',
      '198.51.100.64/28,GB,,,',
      '198.51.100.80/28,FR,,,',
      '2001:db8:e0::/64,GB,,,',
      '',
    ].join('\n'),
  );
  assert.equal(readGeofeed(csv).length, 3);
});

test('adjacent addresses of one country merge into the fewest prefixes, whatever their class or pool', () => {
  const doc = egressDoc();
  doc.egress.pools = {
    'gb-a': { cidrs: ['198.51.100.64/28'], tags: { class: 'trusted', country: 'GB' } },
    'gb-b': { cidrs: ['198.51.100.80/29', '198.51.100.88/29'], tags: { class: 'untrusted', country: 'GB' } },
    'gb-c': { cidrs: ['198.51.100.96/30'], tags: { class: 'trusted', country: 'GB' } },
    fr: { cidrs: ['198.51.100.100/30'], tags: { class: 'trusted', country: 'FR' } },
    'gb-d': { cidrs: ['198.51.100.104/29'], tags: { class: 'trusted', country: 'GB' } },
  };
  doc.egress.assign = {};
  const csv = geofeedCsv(configOf(doc));
  assert.deepEqual(readGeofeed(csv), [
    // .64–.99 is GB: a /27 and a /30.
    { prefix: '198.51.100.64/27', country: 'GB', region: '', city: '' },
    { prefix: '198.51.100.96/30', country: 'GB', region: '', city: '' },
    { prefix: '198.51.100.100/30', country: 'FR', region: '', city: '' },
    { prefix: '198.51.100.104/29', country: 'GB', region: '', city: '' },
  ]);
});

test('assigned only: the assigned addresses, merged', () => {
  const entries = geofeedEntries(configOf(egressDoc()), { assignedOnly: true });
  assert.deepEqual(
    entries.map((e) => `${e.prefix},${e.country}`),
    ['198.51.100.64/31,GB', '198.51.100.66/32,GB', '198.51.100.80/31,FR', '2001:db8:e0::1/128,GB'],
  );
  readGeofeed(geofeedCsv(configOf(egressDoc()), { assignedOnly: true }));
});

test('a range becomes the fewest aligned prefixes that cover exactly it', () => {
  const v = (s: string) => {
    const c = parseCidr(`${s}/32`);
    assert.ok(c.ok);
    return c.value.start;
  };
  assert.deepEqual(rangeToCidrs(4, v('192.0.2.1'), v('192.0.2.6')), ['192.0.2.1/32', '192.0.2.2/31', '192.0.2.4/31', '192.0.2.6/32']);
  assert.deepEqual(rangeToCidrs(4, v('0.0.0.0'), v('255.255.255.255')), ['0.0.0.0/0']);
  assert.deepEqual(rangeToCidrs(4, v('192.0.2.0'), v('192.0.2.255')), ['192.0.2.0/24']);
});

test('the reader refuses what RFC 8805 does not allow (it is not a test that cannot fail)', () => {
  assert.throws(() => readGeofeed('198.51.100.65/28,GB,,,\n'), /not a CIDR prefix/);
  assert.throws(() => readGeofeed('198.51.100.64/28,UK,,,\n'), /ISO 3166-1/);
  assert.throws(() => readGeofeed('198.51.100.64/28,GB,FR-75,,\n'), /ISO 3166-2/);
  assert.throws(() => readGeofeed('198.51.100.64/28,GB,,,1011\n'), /postal/);
  assert.throws(() => readGeofeed('198.51.100.64/28,GB,,,\n198.51.100.64/29,GB,,,\n'), /overlaps/);
  assert.throws(() => readGeofeed('198.51.100.64/28,GB,,,,extra\n'), /at most 5 fields/);
});
