/**
 * Reading a declarative config file for the commands that send it to the API (`apply`, `plan`):
 * checked locally first, with every problem at its line and column exactly as `anyedge validate`
 * prints it, so a broken file never reaches the API. Field errors the API returns are placed on
 * the file's lines the same way.
 */
import { readFile } from 'node:fs/promises';
import type { Io } from './io.ts';
import type { YamlSource } from './yaml-source.ts';
import { isKeyIssue, parseYaml } from './yaml-source.ts';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import type { Config } from '../model/config.ts';
import { parseConfig } from '../model/config.ts';
import type { Issue } from '../model/issue.ts';
import { formatIssue } from '../model/issue.ts';
import { plural } from '../model/text.ts';
import type { ApiIssue } from './client.ts';
import { EXIT_INVALID, EXIT_USAGE } from './validate.ts';

/** A config file that passed every local check. */
export interface ConfigFile {
  readonly file: string;
  /** The document as written (decoded YAML): what is sent to the API. */
  readonly document: unknown;
  /** The same document parsed and normalised. */
  readonly config: Config;
  readonly source: YamlSource;
}

/**
 * Reads and checks `file`. On failure the problems are already printed to `io.err` and the error
 * is the exit code: 2 unreadable or not YAML, 1 an invalid config.
 */
export async function loadConfigFile(file: string, io: Io): Promise<Result<ConfigFile, number>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' ? 'permission denied' : String((e as Error).message);
    io.err(`-f ${file}: cannot read: ${why}\n`);
    return err(EXIT_USAGE);
  }
  const src = parseYaml(text);
  if (!src.ok) {
    for (const p of src.error) io.err(`${file}:${p.at.line}:${p.at.col}: YAML syntax: ${p.message}\n`);
    io.err(`${file}: not valid YAML (${plural(src.error.length, 'error')}); nothing was sent\n`);
    return err(EXIT_USAGE);
  }
  const parsed = parseConfig(src.value.value);
  const issues = [...src.value.issues, ...(parsed.ok ? [] : parsed.error)];
  if (issues.length > 0 || !parsed.ok) {
    printIssuesAtLines(file, src.value, issues, io);
    io.err(`${file}: invalid (${plural(issues.length, 'error')}); nothing was sent — fix the file (anyedge validate ${file} shows the same)\n`);
    return err(EXIT_INVALID);
  }
  return ok({ file, document: src.value.value, config: parsed.value, source: src.value });
}

/** Prints issues as `FILE:LINE:COL: path.field: reason`, in file order. */
export function printIssuesAtLines(file: string, source: YamlSource, issues: readonly Issue[], io: Io): void {
  const located = issues.map((issue, i) => ({ issue, i, at: source.locate([...issue.path, ...issue.field], isKeyIssue(issue)) }));
  // File order, so the output reads top to bottom like the file; ties keep the reported order.
  located.sort((a, b) => a.at.line - b.at.line || a.at.col - b.at.col || a.i - b.i);
  for (const { issue, at } of located) {
    const text = issue.path.length || issue.field.length ? formatIssue(issue) : issue.message;
    io.err(`${file}:${at.line}:${at.col}: ${text}\n`);
  }
}

/** An API field error as a model issue, so it can be placed on the file's lines. */
export function issueFromApi(i: ApiIssue): Issue {
  const split = (s: string, sep: string): string[] => (s === '' ? [] : s.split(sep));
  return { code: i.code, path: split(i.path.replace(/^\//, ''), '/'), field: split(i.field, '.'), message: i.message };
}
