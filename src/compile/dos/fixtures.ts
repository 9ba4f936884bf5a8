/**
 * Test configs for the DoS compiler: examples/acme.yaml with its DoS rules replaced, and the
 * golden fixtures of testdata/ (`dc`, `now` and `rules` per file).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { parseConfig, type Config } from '../../model/config.ts';

/** The testdata folder. */
export const TESTDATA = new URL('./testdata/', import.meta.url).pathname;

/** examples/acme.yaml with `rules` as its DoS rules; throws on an invalid result (test input is code). */
export function configWithRules(rules: Record<string, unknown>, edit?: (doc: Record<string, unknown>) => void): Config {
  const doc = parse(readFileSync(new URL('../../../examples/acme.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
  doc.dos = { rules };
  edit?.(doc);
  const c = parseConfig(doc);
  if (!c.ok) throw new Error(`bad test config: ${c.error.slice(0, 3).map((i) => JSON.stringify(i)).join('; ')}`);
  return c.value;
}

/** Names of the golden fixtures (testdata/<name>.yaml). */
export function fixtureNames(): string[] {
  return readdirSync(TESTDATA)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** One fixture: the config and where/when to compile it. */
export function loadFixture(name: string): { config: Config; dc: string; now: number } {
  const fx = parse(readFileSync(`${TESTDATA}${name}.yaml`, 'utf8')) as { dc: string; now: string; rules: Record<string, unknown> };
  return { config: configWithRules(fx.rules ?? {}), dc: fx.dc, now: Date.parse(fx.now) };
}
