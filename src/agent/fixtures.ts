/**
 * Configs for the reconciler's tests: the Acme example (examples/acme.yaml) and generated ones.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig, type Config } from '../model/config.ts';

/** Parses a config document, failing loudly (test input is code). */
export function mustConfig(doc: unknown): Config {
  const c = parseConfig(doc);
  if (!c.ok) throw new Error(`bad test config: ${JSON.stringify(c.error.slice(0, 3))}`);
  return c.value;
}

/** examples/acme.yaml as a plain document, to be edited by tests before parsing. */
export function acmeDoc(): Record<string, unknown> & { tenants: Record<string, Record<string, unknown>> } {
  return parse(readFileSync(new URL('../../examples/acme.yaml', import.meta.url), 'utf8')) as ReturnType<typeof acmeDoc>;
}

/** examples/acme.yaml, parsed. */
export function acmeConfig(): Config {
  return mustConfig(acmeDoc());
}

/** A config with `n` (at most 256) tenants, tenant i owning 203.0.113.i/32 with one keyed tunnel and a one-rule firewall. */
export function manyTenants(n: number): Config {
  const doc = acmeDoc();
  const tenants: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const cidr = `203.0.113.${i}/32`;
    tenants[`t${i}`] = {
      name: `Tenant ${i}`,
      prefixes: { p: { cidr } },
      tunnels: { gre1: { customerEndpoint: '198.51.100.200', key: 1000 + i } },
      routes: { r: { prefix: cidr, via: [{ tunnel: 'gre1' }] } },
      firewall: { default: { ingress: 'accept', egress: 'accept' }, rules: [{ id: 'ssh', direction: 'ingress', protocol: 'tcp', dport: [22], action: 'drop' }] },
    };
  }
  return mustConfig({ ...doc, tenants });
}
