// One server's egress addresses with its port ranges.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serverEgress } from './server.ts';
import { configOf, egressDoc } from './fixtures.ts';

test('a server gets its slice of each address of its data center, and its own IPv6 address', () => {
  const c = configOf(egressDoc());
  assert.deepEqual(serverEgress(c, 'lon', 's2'), {
    ok: true,
    value: [
      { ip: '198.51.100.64', family: 4, pool: 'gb-trusted', class: 'trusted', country: 'GB', portLo: 32768, portHi: 49151, sliceSize: 16384 },
      { ip: '198.51.100.80', family: 4, pool: 'fr-untrusted', class: 'untrusted', country: 'FR', portLo: 4096, portHi: 6143, sliceSize: 2048 },
      { ip: '2001:db8:e0::1', family: 6, pool: 'v6-gb', class: 'trusted', country: 'GB', portLo: 1024, portHi: 65535, sliceSize: null },
    ],
  });
  assert.deepEqual(serverEgress(c, 'lon', 's4'), {
    ok: true,
    value: [
      { ip: '198.51.100.65', family: 4, pool: 'gb-trusted', class: 'trusted', country: 'GB', portLo: 16384, portHi: 32767, sliceSize: 16384 },
      { ip: '198.51.100.80', family: 4, pool: 'fr-untrusted', class: 'untrusted', country: 'FR', portLo: 8192, portHi: 10239, sliceSize: 2048 },
    ],
  });
});

test('no server ever gets slice 0 (the well-known ports), and no two servers share a port of an address', () => {
  const c = configOf(egressDoc());
  const seen = new Map<string, string>();
  for (const dc of ['lon', 'par'])
    for (const s of Object.keys(c.dcs[dc]!.servers)) {
      const r = serverEgress(c, dc, s);
      assert.ok(r.ok);
      for (const a of r.value.filter((x) => x.family === 4)) {
        assert.ok(a.portLo >= a.sliceSize!, `${dc}/${s} ${a.ip} ${a.portLo}`);
        assert.equal(a.portHi - a.portLo + 1, a.sliceSize);
        const key = `${a.ip}:${a.portLo}`;
        assert.equal(seen.get(key), undefined, `${key} given twice`);
        seen.set(key, `${dc}/${s}`);
      }
    }
  assert.equal(seen.size, 4 + 2 + 4 + 2);
});

test('an unknown data center or server is an error naming it', () => {
  const c = configOf(egressDoc());
  assert.deepEqual(serverEgress(c, 'ams', 's1'), { ok: false, error: { code: 'not_found', path: 'dcs/ams', message: 'no data center "ams"; known: lon, par' } });
  assert.deepEqual(serverEgress(c, 'par', 's3'), { ok: false, error: { code: 'not_found', path: 'dcs/par/servers/s3', message: 'data center par has no server "s3"; known: s1, s2' } });
});

test('a data center without egress addresses gives its servers none', () => {
  const doc = egressDoc();
  doc.egress.assign = {};
  assert.deepEqual(serverEgress(configOf(doc), 'lon', 's1'), { ok: true, value: [] });
});
