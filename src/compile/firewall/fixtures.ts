/**
 * Test fixtures: `testdata/<name>.yaml` holds a tenant id, compiler options and a firewall as a
 * user would write it. Loading validates the firewall through the model, so the compiler is only
 * ever tested on what the model lets through. Used by the golden and kernel tests.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { firewallSchema, type Firewall } from '../../model/firewall.ts';
import { parseAt } from '../../model/schema.ts';
import type { FirewallOptions } from './compile.ts';

/** The folder of inputs and golden outputs. */
export const TESTDATA = fileURLToPath(new URL('./testdata/', import.meta.url));

/** A parsed fixture. */
export interface Fixture {
  readonly name: string;
  readonly tenant: string;
  readonly options: FirewallOptions;
  readonly firewall: Firewall;
}

/** Names of all fixtures, sorted. */
export function fixtureNames(): string[] {
  return readdirSync(TESTDATA)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** Validates a raw firewall through the model; throws with the issues when it is refused. */
export function mustFirewall(raw: unknown, where = 'firewall'): Firewall {
  const res = parseAt(firewallSchema, raw, ['tenants', where, 'firewall']);
  if (!res.ok) throw new Error(`${where}: ${res.error.map((i) => `${i.field.join('.')}: ${i.message}`).join('; ')}`);
  return res.value;
}

/** Loads and validates `testdata/<name>.yaml`. */
export function loadFixture(name: string): Fixture {
  const doc = parse(readFileSync(`${TESTDATA}${name}.yaml`, 'utf8')) as { tenant: string; options: FirewallOptions; firewall: unknown };
  return { name, tenant: doc.tenant, options: doc.options, firewall: mustFirewall(doc.firewall, name) };
}
