/**
 * The lab's config document with seed rules held back (what `lab demo` brings up): the rule is
 * gone from that tenant only, the document still validates, and `labRule` gives back exactly the
 * seed's rule for the API to add.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../model/config.ts';
import { formatIssue } from '../model/issue.ts';
import { LAB_CUSTOMERS, labRule, labRules } from './config-doc.ts';
import { planLab } from './topology.ts';

type Doc = { tenants: Record<string, { firewall: { default: { ingress: string }; rules: Array<{ id: string }> } }> };

test('withoutRules drops acme/ftp from Acme only; the document still validates', () => {
  const full = planLab('t1', { dcs: 2, servers: 2, cities: 2 });
  const held = planLab('t1', { dcs: 2, servers: 2, cities: 2 }, { withoutRules: ['acme/ftp'] });
  if (!full.ok || !held.ok) assert.fail('plan');
  const rules = (p: typeof full, t: string): string[] => ((p.ok ? p.value.config : {}) as Doc).tenants[t]!.firewall.rules.map((r) => r.id);
  assert.deepEqual(rules(full, 'acme'), ['ftp', 'ping']);
  assert.deepEqual(rules(held, 'acme'), ['ping']);
  assert.deepEqual(rules(held, 'globex'), ['ftp', 'ping']);
  assert.equal((held.value.config as Doc).tenants.acme!.firewall.default.ingress, 'drop');
  const parsed = parseConfig(held.value.config);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.map(formatIssue).join('\n'));
  // Everything but the held rule is the same plan.
  assert.deepEqual({ ...held.value, config: null }, { ...full.value, config: null });
});

test('labRule gives the seed rule (TCP 20–21 to 203.0.113.100 for Acme) and nothing for unknown names', () => {
  assert.deepEqual(labRule('acme/ftp'), { id: 'ftp', description: 'the TCP service on 203.0.113.100', direction: 'ingress', dst: ['203.0.113.100'], protocol: 'tcp', dport: ['20-21'], action: 'accept' });
  assert.deepEqual(labRule('acme/ftp'), labRules(LAB_CUSTOMERS[0]!)[0]);
  assert.equal(labRule('acme/ssh'), undefined);
  assert.equal(labRule('initech/ftp'), undefined);
  assert.equal(labRule('acme'), undefined);
});
