/**
 * The options every API command shares — `--api URL`, `--token-file FILE`, `--json` — and how they
 * become a client: flags first, then the environment (`ANYEDGE_API`, `ANYEDGE_TOKEN`, which holds
 * the token itself), then the default API address. Mistakes name the flag or variable and say
 * what a good value looks like; a token is never echoed.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import type { ApiClient } from './client.ts';
import { createClient } from './client.ts';

/** Where the API is when neither --api nor ANYEDGE_API says. */
export const DEFAULT_API = 'http://127.0.0.1:8080';

/** Token text: `ae_` and 43 base64url characters (32 random bytes). */
const TOKEN_RE = /^ae_[A-Za-z0-9_-]{43}$/;

/** The shared options as commander hands them over. */
export interface ClientFlags {
  readonly api?: string;
  readonly tokenFile?: string;
  readonly json?: boolean;
}

/** Adds the shared options to a command. */
export function withClientOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', `API address (default: env ANYEDGE_API, else ${DEFAULT_API})`)
    .option('--token-file <file>', 'file holding the API token (default: env ANYEDGE_TOKEN, which holds the token itself)')
    .option('--json', 'print the API objects as JSON instead of tables');
}

/** A checked `--api` base URL, without a trailing slash. */
export function parseApiUrl(text: string, from: string): Result<string, string> {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return err(`${from} ${JSON.stringify(text)}: not a URL; give the API address, e.g. ${DEFAULT_API}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return err(`${from} ${text}: must start with http:// or https://, e.g. ${DEFAULT_API}`);
  if (url.search || url.hash) return err(`${from} ${text}: give the API's base address without ?query or #fragment, e.g. ${DEFAULT_API}`);
  return ok(url.toString().replace(/\/+$/, ''));
}

/** Checks token text; `from` names where it came from, for the message. */
export function checkToken(text: string, from: string): Result<string, string> {
  const token = text.trim();
  if (token === '') return err(`${from}: empty; it must hold an API token (ae_ followed by 43 characters)`);
  if (!TOKEN_RE.test(token))
    return err(`${from}: does not hold an anyedge API token: expected ae_ followed by 43 characters from A–Z, a–z, 0–9, "-" and "_" (one line, nothing else)`);
  return ok(token);
}

/** Resolves the flags and the environment into a client; the error says which flag and what to do. */
export async function clientFrom(flags: ClientFlags, env: Readonly<Record<string, string | undefined>>): Promise<Result<ApiClient, string>> {
  const apiText = flags.api ?? env.ANYEDGE_API;
  const from = flags.api !== undefined ? '--api' : 'ANYEDGE_API';
  const baseUrl = apiText === undefined || apiText === '' ? ok(DEFAULT_API) : parseApiUrl(apiText, from);
  if (!baseUrl.ok) return baseUrl;

  let token: Result<string, string>;
  if (flags.tokenFile !== undefined) {
    let text: string;
    try {
      text = await readFile(flags.tokenFile, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (e as Error).message;
      return err(`--token-file ${flags.tokenFile}: cannot read: ${why}`);
    }
    token = checkToken(text, `--token-file ${flags.tokenFile}`);
  } else if (env.ANYEDGE_TOKEN !== undefined && env.ANYEDGE_TOKEN !== '') {
    token = checkToken(env.ANYEDGE_TOKEN, 'ANYEDGE_TOKEN');
  } else {
    return err('no API token: pass --token-file FILE (a file holding the token) or set ANYEDGE_TOKEN to the token');
  }
  if (!token.ok) return token;
  return ok(createClient({ baseUrl: baseUrl.value, token: token.value }));
}
