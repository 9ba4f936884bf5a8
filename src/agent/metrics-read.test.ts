import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFirewall } from '../compile/firewall/compile.ts';
import { mustFirewall } from '../compile/firewall/fixtures.ts';
import type { NftJson } from '../kernel/index.ts';
import { EDGE_COUNTER_SERIES, firewallSeries, KERNEL_COUNTERS } from './metrics-read.ts';
import { EDGE_COUNTERS } from '../kernel/bpf/layout.ts';

test('every named counter a compiled firewall declares maps to one series: rules, rate-limit drops, defaults with their actions, conntrack', () => {
  const fw = mustFirewall({
    default: { ingress: 'drop', egress: 'accept' },
    rules: [
      { id: 'web', direction: 'ingress', protocol: 'tcp', dport: [443], action: 'accept' },
      { id: 'dns-flood', direction: 'ingress', protocol: 'udp', dport: [53], action: 'rate-limit', rateLimit: { pps: 1000 } },
      { id: 'out-smtp', direction: 'egress', protocol: 'tcp', dport: [25], action: 'drop' },
    ],
  });
  const batch = compileFirewall('acme', fw, { uplink: 'aeup', tunnels: ['ae-gre1'], table: 'aefw', stateful: true }) as unknown as NftJson;
  const series = Object.fromEntries([...firewallSeries('acme', batch)].map(([name, s]) => [name, `${s.packets}/${s.bytes} ${JSON.stringify(s.labels)}`]));
  assert.deepEqual(series, {
    ct_established: 'ctP/ctB {"tenant":"acme","state":"established"}',
    ct_invalid: 'ctP/ctB {"tenant":"acme","state":"invalid"}',
    default_egress: 'defaultP/defaultB {"tenant":"acme","direction":"egress","action":"accept"}',
    default_ingress: 'defaultP/defaultB {"tenant":"acme","direction":"ingress","action":"drop"}',
    'over_dns-flood': 'overP/overB {"tenant":"acme","rule":"dns-flood"}',
    no_direction: 'noDirP/noDirB {"tenant":"acme"}',
    'rule_dns-flood': 'ruleP/ruleB {"tenant":"acme","rule":"dns-flood"}',
    'rule_out-smtp': 'ruleP/ruleB {"tenant":"acme","rule":"out-smtp"}',
    rule_web: 'ruleP/ruleB {"tenant":"acme","rule":"web"}',
  });
});

test('every BPF edge counter has a series, and the label sets match the counters they feed', () => {
  assert.deepEqual(Object.keys(EDGE_COUNTER_SERIES).sort(), [...EDGE_COUNTERS].sort());
  for (const s of Object.values(EDGE_COUNTER_SERIES)) assert.deepEqual(Object.keys(s.labels), KERNEL_COUNTERS[s.id].labelNames);
});

test('metric names follow the Prometheus conventions: anyedge_ prefix, unit, _total', () => {
  for (const spec of Object.values(KERNEL_COUNTERS)) assert.match(spec.name, /^anyedge_[a-z_]+_(packets|bytes)_total$/);
  const names = Object.values(KERNEL_COUNTERS).map((c) => c.name);
  assert.equal(new Set(names).size, names.length);
});
