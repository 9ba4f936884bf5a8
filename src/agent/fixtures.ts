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

/**
 * The Acme example with IPv6 space: Acme owns 2001:db8:a::/48 and Globex 2001:db8:b::/48, each
 * routed into its GRE tunnel (IPv4 outer); Acme's firewall opens FTP and ping for its IPv6 host
 * 2001:db8:a::100 as it does for 203.0.113.100.
 */
export function acmeDoc6(): ReturnType<typeof acmeDoc> {
  const doc = acmeDoc();
  const acme = doc.tenants.acme as Record<string, Record<string, unknown>> & { firewall: { rules: unknown[] } };
  const globex = doc.tenants.globex as Record<string, Record<string, unknown>>;
  acme.prefixes = { ...acme.prefixes, p6: { cidr: '2001:db8:a::/48' } };
  acme.routes = { ...acme.routes, r6: { prefix: '2001:db8:a::/48', via: [{ tunnel: 'gre1' }] } };
  acme.firewall.rules.push(
    { id: 'ftp6', direction: 'ingress', dst: ['2001:db8:a::100'], protocol: 'tcp', dport: ['20-21'], action: 'accept' },
    { id: 'ping6', direction: 'ingress', protocol: 'icmpv6', icmp: { type: 'echo-request' }, action: 'accept' },
  );
  globex.prefixes = { ...globex.prefixes, p6: { cidr: '2001:db8:b::/48' } };
  globex.routes = { ...globex.routes, r6: { prefix: '2001:db8:b::/48', via: [{ tunnel: 'gre1' }] } };
  return doc;
}
