/**
 * Test configs for egress: two data centers, tagged IPv4 pools with small slices (so a handful of
 * servers already needs several addresses) and an IPv6 pool.
 */
import { parseConfig } from '../../model/config.ts';
import type { Config } from '../../model/config.ts';
import { formatIssue } from '../../model/issue.ts';

/** A document as plain data, for a test to change before parsing. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Doc = any;

/** `n` servers s1…sn with addresses from 192.0.2.<base+i>. */
function servers(n: number, base: number, state: Record<string, string> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 1; i <= n; i++) out[`s${i}`] = { uplink: 'eth0', addresses: [`192.0.2.${base + i}/24`], ...(state[`s${i}`] ? { state: state[`s${i}`] } : {}) };
  return out;
}

/**
 * lon: 4 servers; par: 2 servers. Pools: gb-trusted 198.51.100.64/28 (sliceSize 16384 → 3
 * servers per address), fr-untrusted 198.51.100.80/28 (2048), v6-gb 2001:db8:e0::/64.
 */
export function egressDoc(): Doc {
  return {
    dcs: {
      lon: { name: 'London', backbone: ['192.0.2.1/30'], servers: servers(4, 10) },
      par: { name: 'Paris', backbone: ['192.0.2.5/30'], servers: servers(2, 20) },
    },
    anycast: { ranges: ['198.51.100.0/28'], egressRanges: ['198.51.100.64/26', '2001:db8:e0::/48'], greEndpoints: ['198.51.100.1'], services: ['198.51.100.2'] },
    egress: {
      pools: {
        'gb-trusted': { cidrs: ['198.51.100.64/28'], tags: { class: 'trusted', country: 'gb' }, sliceSize: 16384 },
        'fr-untrusted': { cidrs: ['198.51.100.80/28'], tags: { class: 'untrusted', country: 'FR' } },
        'v6-gb': { cidrs: ['2001:db8:e0::/64'], tags: { class: 'trusted', country: 'GB' } },
      },
      assign: {
        '198.51.100.64': { dc: 'lon' },
        '198.51.100.65': { dc: 'lon' },
        '198.51.100.66': { dc: 'par' },
        '198.51.100.80': { dc: 'lon' },
        '198.51.100.81': { dc: 'par' },
        '2001:db8:e0::1': { dc: 'lon', server: 's2' },
      },
    },
  };
}

/** Parses a document that must be valid. */
export function configOf(doc: Doc): Config {
  const r = parseConfig(doc);
  if (!r.ok) throw new Error(`fixture is invalid:\n${r.error.map(formatIssue).join('\n')}`);
  return r.value;
}
