/**
 * `anyedge validate FILE.yaml`: checks a declarative config file without touching any store and
 * prints every problem as `FILE:LINE:COL: path.field: reason`, the form editors and CI logs turn
 * into links. Exit codes: 0 valid, 1 invalid config, 2 the file could not be read or is not YAML.
 */
import { readFile } from 'node:fs/promises';
import type { Io } from './io.ts';
import { parseYaml, isKeyIssue } from './yaml-source.ts';
import { parseConfig, configStats } from '../model/config.ts';
import type { Config } from '../model/config.ts';
import type { Issue } from '../model/issue.ts';
import { formatIssue } from '../model/issue.ts';
import { plural } from '../model/text.ts';

/** Exit codes of commands. */
export const EXIT_OK = 0;
/** The input was read but is not a valid config. */
export const EXIT_INVALID = 1;
/** Usage error, unreadable file, or not YAML. */
export const EXIT_USAGE = 2;

/** Runs the command on `file`; returns the exit code. */
export async function runValidate(file: string, io: Io): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' ? 'permission denied' : String((e as Error).message);
    io.err(`${file}: cannot read: ${why}\n`);
    return EXIT_USAGE;
  }

  const src = parseYaml(text);
  if (!src.ok) {
    for (const p of src.error) io.err(`${file}:${p.at.line}:${p.at.col}: YAML syntax: ${p.message}\n`);
    io.err(`${file}: not valid YAML (${plural(src.error.length, 'error')}); nothing was checked\n`);
    return EXIT_USAGE;
  }

  const parsed = parseConfig(src.value.value);
  const issues = [...src.value.issues, ...(parsed.ok ? [] : parsed.error)];
  if (issues.length === 0 && parsed.ok) {
    io.out(`${file}: valid — ${summary(parsed.value)}\n`);
    return EXIT_OK;
  }
  const located = issues.map((issue, i) => ({ issue, i, at: src.value.locate([...issue.path, ...issue.field], isKeyIssue(issue)) }));
  // In file order, so the output reads top to bottom like the file; ties keep validation order.
  located.sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col || a.i - b.i);
  for (const { issue, at } of located) io.err(`${file}:${at.line}:${at.col}: ${describeIssue(issue)}\n`);
  io.err(`${file}: invalid (${plural(issues.length, 'error')})\n`);
  return EXIT_INVALID;
}

/** `formatIssue`, except that an issue of the whole document has no path to show. */
function describeIssue(issue: Issue): string {
  return issue.path.length || issue.field.length ? formatIssue(issue) : issue.message;
}

function summary(c: Config): string {
  const s = configStats(c);
  return [
    `${plural(s.dcs, 'data center')} (${plural(s.servers, 'server')})`,
    plural(s.tenants, 'tenant'),
    plural(s.prefixes, 'prefix', 'prefixes'),
    plural(s.tunnels, 'tunnel'),
    plural(s.routes, 'route'),
    plural(s.firewallRules, 'firewall rule'),
    plural(s.dosRules, 'DoS rule'),
    `${plural(s.egressPools, 'egress pool')} (${plural(s.egressAssignments, 'address', 'addresses')} assigned)`,
  ].join(', ');
}
