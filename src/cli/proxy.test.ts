import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.ts';
import { runProxy } from './proxy.ts';
import type { Io } from './io.ts';
import { configOf, egressDoc } from '../compile/egress/fixtures.ts';
import { configToEntries } from '../model/keyspace.ts';
import { CONFIG_VALIDATION } from '../store/open.ts';
import { openLmdbStore } from '../store/lmdb.ts';
import { connectRequest, connectVia } from '../proxy/testkit.ts';

function capture(): Io & { outText(): string; errText(): string } {
  let out = '';
  let err = '';
  return { out: (t) => void (out += t), err: (t) => void (err += t), outText: () => out, errText: () => err };
}

async function withStoreDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ae-cli-proxy-'));
  try {
    const doc = egressDoc();
    doc.egress.pools['gb-trusted'].sliceSize = 2048;
    const s = openLmdbStore({ path: join(dir, 'store'), validation: CONFIG_VALIDATION });
    if (!s.ok) throw new Error(s.error.message);
    const w = await s.value.txn({ then: [...configToEntries(configOf(doc))].map(([key, value]) => ({ op: 'put' as const, key, value })) });
    await s.value.close();
    assert.ok(w.ok);
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const BASE = ['--listen', '127.0.0.1:0', '--class', 'trusted', '--store', 'lmdb:/nonexistent', '--server', 'lon/s1'];

function withFlag(flag: string, value: string): string[] {
  const i = BASE.indexOf(flag);
  if (i < 0) return [...BASE, flag, value];
  const out = [...BASE];
  out[i + 1] = value;
  return out;
}

test('every bad flag is refused with exit 2 and a message naming it', async () => {
  const cases: Array<[string[], RegExp]> = [
    [withFlag('--class', 'gold'), /--class gold: use one of trusted, untrusted/],
    [withFlag('--listen', '198.51.100.2'), /--listen 198\.51\.100\.2: give HOST:PORT, e\.g\. 198\.51\.100\.2:3128/],
    [withFlag('--server', 'lon'), /--server lon: give it as DC\/SERVER/],
    [withFlag('--store', 'redis:x'), /--store redis:x: unknown store kind/],
    [withFlag('--default-country', 'UK'), /--default-country: "UK" is not an ISO 3166-1 alpha-2 country code/],
    [withFlag('--fallback-country', 'XX'), /--fallback-country: "XX" is not/],
    [withFlag('--geoip', '/nonexistent/geo.csv'), /--geoip \/nonexistent\/geo\.csv: geoip: cannot read .*ENOENT/],
    [withFlag('--connect-timeout', '5s'), /--connect-timeout 5s: give a whole number of milliseconds/],
    [withFlag('--idle-timeout', '-1'), /--idle-timeout -1: give a whole number of seconds/],
    [withFlag('--time-wait', '2m'), /--time-wait 2m: give a whole number of seconds/],
    [withFlag('--metrics', 'nowhere'), /--metrics nowhere: give HOST:PORT/],
    [withFlag('--log-level', 'loud'), /--log-level loud: use debug or info/],
  ];
  for (const [args, re] of cases) {
    const io = capture();
    assert.equal(await main(['node', 'anyedge', 'proxy', ...args], io), 2, args.join(' '));
    assert.match(io.errText(), re);
  }
  const io = capture();
  assert.equal(await main(['node', 'anyedge', 'proxy', '--listen', '127.0.0.1:0'], io), 2);
  assert.match(io.errText(), /required option/);
});

test('a bad GeoIP file is refused with its line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ae-cli-geo-'));
  try {
    const file = join(dir, 'geo.csv');
    await writeFile(file, '192.0.2.0/24,NL\n192.0.2.0/33,US\n');
    const io = capture();
    assert.equal(await main(['node', 'anyedge', 'proxy', ...withFlag('--geoip', file)], io), 2);
    assert.match(io.errText(), /geo\.csv:2: /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a server the config does not know: exit 1 with the reason', async () => {
  await withStoreDir(async (dir) => {
    const io = capture();
    const code = await runProxy({ listen: '127.0.0.1:0', class: 'trusted', store: `lmdb:${join(dir, 'store')}`, server: 'lon/s9' }, io, { until: new Promise(() => {}) });
    assert.equal(code, 1);
    assert.match(io.errText(), /"stage":"config".*lon has no server \\"s9\\"/);
  });
});

test('the proxy runs from the store until stopped: its addresses, a refusal naming them, metrics, exit 0', async () => {
  await withStoreDir(async (dir) => {
    const io = capture();
    let stop: (why: string) => void = () => {};
    const until = new Promise<string>((r) => (stop = r));
    let port = 0;
    const listening = new Promise<void>((r) => {
      void runProxy(
        { listen: '127.0.0.1:0', class: 'trusted', store: `lmdb:${join(dir, 'store')}`, server: 'lon/s1', defaultCountry: 'GB', metrics: '127.0.0.1:0' },
        io,
        {
          until,
          listening: (p) => {
            port = p;
            r();
          },
        },
      ).then((code) => (exit = code));
    });
    let exit: number | null = null;
    await listening;
    const line = io.errText().split('\n').find((l) => l.includes('"event":"listening"'));
    assert.ok(line, io.errText());
    const info = JSON.parse(line) as { metricsPort: number; addresses: number; server: string };
    assert.equal(info.server, 'lon/s1');
    assert.ok(info.addresses >= 1);
    // lon/s1's trusted GB addresses (198.51.100.64/.65) are not on this host's lo: the kernel
    // refuses each as a source, and the reply lists them.
    const r = await connectVia({ host: '127.0.0.1', port }, connectRequest('127.0.0.1', 9));
    assert.equal(r.status, 503);
    assert.match(r.body, /every eligible egress slice is full for class=trusted country=GB IPv4 → 127\.0\.0\.1:9: 2 slices tried \(198\.51\.100\.64 ports [0-9]+–[0-9]+: the kernel refused the address \(EADDRNOTAVAIL\); 198\.51\.100\.65/);
    const metrics = await (await fetch(`http://127.0.0.1:${info.metricsPort}/metrics`)).text();
    assert.match(metrics, /anyedge_proxy_connections\{egress_ip="198\.51\.100\.64"\} 0/);
    assert.match(metrics, /anyedge_proxy_slice_exhausted_total 2/);
    assert.match(metrics, /anyedge_proxy_requests_total\{result="exhausted"\} 1/);
    stop('test');
    while (exit === null) await new Promise((res) => setTimeout(res, 10));
    assert.equal(exit, 0);
    assert.match(io.errText(), /"event":"stopping","signal":"test"/);
  });
});
