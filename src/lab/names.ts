/**
 * Names of everything a lab creates. One lab id gives one ownership prefix `ael<id>` that starts
 * every global name (netns, BPF pin directories, the run directory) and appears in the command
 * line of every process, so `lab down` can find all of it again after a crash.
 *
 * Budget (Linux limits netns and interface names to 15 characters):
 * - lab prefix `ael` + 2-character id = 5 characters;
 * - lab nodes `ael<id>-<node>`, node names ≤ 9 characters (`ams-s12`, `lon-e1`, `globex-h`);
 * - agents get `--prefix ael<id><c>` (6 characters, the agent's maximum) with one base-36
 *   character per server, so their tenant namespaces `ael<id><c>-acme` start with the lab prefix
 *   but never with another agent's prefix, and no lab node starts with an agent prefix (lab nodes
 *   have `-` where agents have `<c>`): an agent's prune cannot touch a lab node or another agent.
 */
import { err, ok, type Result } from '../lib/result.ts';
import type { LabError } from './errors.ts';

/** First characters of every lab prefix. */
export const LAB_MARK = 'ael';

/** Data-center ids, in order: `--dcs N` takes the first N. */
export const LAB_DCS = ['ams', 'chi', 'fra', 'sin', 'syd', 'gru', 'nrt', 'jnb'] as const;

/** Display names of the data centers above. */
export const LAB_DC_NAMES: Readonly<Record<string, string>> = {
  ams: 'Amsterdam', chi: 'Chicago', fra: 'Frankfurt', sin: 'Singapore', syd: 'Sydney', gru: 'São Paulo', nrt: 'Tokyo', jnb: 'Johannesburg',
};

/** Eyeball cities, in order: `--cities N` takes the first N. */
export const LAB_CITIES = ['lon', 'nyc', 'ber', 'hkg', 'mel', 'rio', 'osa', 'cpt'] as const;

/**
 * The country of each city's eyeballs (ISO 3166-1 alpha-2, as egress pools are tagged): every
 * city is its own country, so two cities are two countries, and a proxy picks egress addresses
 * by the eyeball's country.
 */
export const LAB_CITY_COUNTRIES: Readonly<Record<(typeof LAB_CITIES)[number], string>> = {
  lon: 'GB', nyc: 'US', ber: 'DE', hkg: 'HK', mel: 'AU', rio: 'BR', osa: 'JP', cpt: 'ZA',
};

/** Characters of agent prefixes: one per server, so at most 36 servers per lab. */
const AGENT_CHARS = '0123456789abcdefghijklmnopqrstuvwxyz';

/** Largest lab: every server needs its own agent prefix character. */
export const MAX_SERVERS_TOTAL = AGENT_CHARS.length;

/** The default lab id (`lab up` and `lab down` without `--id`). */
export const DEFAULT_LAB_ID = 'a0';

/** Checks a lab id: exactly two characters from a–z and 0–9. */
export function checkLabId(id: string): Result<string, LabError> {
  if (!/^[a-z0-9]{2}$/.test(id))
    return err({ code: 'invalid', path: 'id', message: `lab id ${JSON.stringify(id)}: use exactly 2 characters from a–z and 0–9, e.g. a0 (it makes the prefix ${LAB_MARK}<id> of every netns, which Linux limits to 15 characters)` });
  return ok(id);
}

/** `ael<id>`: the ownership prefix of lab `id`. */
export function labPrefix(id: string): string {
  return `${LAB_MARK}${id}`;
}

/** Full netns name of a lab node. */
export function nodeNs(prefix: string, node: string): string {
  return `${prefix}-${node}`;
}

/** The `--prefix` of the agent of the `index`-th server (0-based, over the whole lab). */
export function agentPrefix(prefix: string, index: number): string {
  const c = AGENT_CHARS[index];
  if (c === undefined) throw new Error(`server index ${index} beyond ${MAX_SERVERS_TOTAL}: the plan checks sizes first`);
  return `${prefix}${c}`;
}
