/**
 * The SYN-flood table: golden files for both modes (`testdata/synproxy/<name>.golden.json`, the
 * batch for `nft -j -f -`, and `.golden.nft`, what `anyedge plan` shows; UPDATE_GOLDEN=1 rewrites
 * them), and the rules' properties checked directly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseAt } from '../../model/schema.ts';
import { synFloodSchema, type SynFlood } from '../../model/synflood.ts';
import { stringifyNft } from './compile.ts';
import { formatNft } from './format.ts';
import { TESTDATA } from './fixtures.ts';
import { compileSynproxy, needsSynproxy } from './synproxy.ts';

const update = process.env.UPDATE_GOLDEN === '1';
const DIR = `${TESTDATA}synproxy/`;

function setting(raw: unknown): SynFlood {
  const r = parseAt(synFloodSchema, raw, ['tenants', 'acme', 'synFlood']);
  assert.ok(r.ok);
  return r.value;
}

function checkGolden(path: string, actual: string): void {
  if (update) {
    writeFileSync(path, actual);
    return;
  }
  assert.ok(existsSync(path), `${path} is missing; run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(actual, readFileSync(path, 'utf8'), `${path} differs; if the change is intended, run with UPDATE_GOLDEN=1 and review the diff`);
}

const CASES = {
  // The seed's Acme with an IPv6 prefix too; overlapping and unsorted prefixes on purpose.
  'xdp-dual-stack': { setting: { protection: 'xdp' }, prefixes: ['2001:db8:203::/48', '203.0.113.0/25', '203.0.113.64/26'] },
  'synproxy-v4': { setting: { protection: 'synproxy', mss: 1400, wscale: 9 }, prefixes: ['203.0.113.128/25'] },
} as const;

for (const [name, c] of Object.entries(CASES)) {
  test(`golden: synproxy/${name}`, () => {
    const json = compileSynproxy(setting(c.setting), { uplink: 'aeup', prefixes: c.prefixes, table: 'aesyn' });
    checkGolden(`${DIR}${name}.golden.json`, stringifyNft(json));
    checkGolden(`${DIR}${name}.golden.nft`, formatNft(json));
  });
}

test('both modes need the nft half; off needs none and refuses to compile', () => {
  assert.equal(needsSynproxy(setting({ protection: 'xdp' })), true);
  assert.equal(needsSynproxy(setting({ protection: 'synproxy' })), true);
  assert.equal(needsSynproxy(setting({})), false);
  assert.throws(() => compileSynproxy(setting({}), { uplink: 'aeup', prefixes: ['203.0.113.0/25'], table: 'aesyn' }), /protection is off/);
  assert.throws(() => compileSynproxy(setting({ protection: 'xdp' }), { uplink: 'a b', prefixes: ['203.0.113.0/25'], table: 'aesyn' }), /invalid uplink/);
});

test('SYNs are untracked before conntrack, the proxy runs after the firewall, only from the uplink to the prefixes', () => {
  const json = compileSynproxy(setting({ protection: 'synproxy' }), { uplink: 'aeup', prefixes: ['203.0.113.0/25'], table: 'aesyn' });
  const chains = json.nftables.flatMap((c) => ('add' in c && (c.add as { chain?: unknown }).chain ? [(c.add as { chain: { name: string; hook: string; prio: number } }).chain] : []));
  assert.deepEqual(chains.map((c) => [c.name, c.hook, c.prio]), [['raw', 'prerouting', -300], ['proxy', 'forward', 10]]);
  const text = formatNft(json);
  assert.match(text, /iifname "aeup" ip daddr 203\.0\.113\.0\/25 tcp flags & \(fin \| syn \| rst \| ack\) == syn counter name "syn_notrack" json\(\{"notrack":null\}\)/);
  assert.match(text, /ct state invalid,untracked,new counter name "syn_proxied" json\(\{"synproxy":\{"mss":1460,"wscale":7,"flags":\["timestamp","sack-perm"\]\}\}\)/);
  assert.doesNotMatch(text, /ip6/, 'no IPv6 rules without IPv6 prefixes');
});

test('IPv6 gets the IPv4 MSS minus the 20 bytes of its longer header', () => {
  const text = formatNft(compileSynproxy(setting({ protection: 'xdp', mss: 1400 }), { uplink: 'aeup', prefixes: ['2001:db8::/32'], table: 'aesyn' }));
  assert.match(text, /"mss":1380/);
});
