/**
 * `anyedge token new [--json]`: prints a fresh API token and its hash. The token is shown once,
 * for its holder; only the hash is ever stored — in the API's operator hash file, or as a
 * tenant's `tokenHash` (the API's POST /v1/tenants/{t}/token does that itself).
 */
import type { Command } from 'commander';
import type { Io } from './io.ts';
import { EXIT_OK } from './validate.ts';
import { generateToken } from '../api/tokens.ts';

/** Prints a new token and its hash; `json` prints `{ "token", "hash" }`. */
export function runTokenNew(io: Io, json: boolean): number {
  const { token, hash } = generateToken();
  if (json) io.out(JSON.stringify({ token, hash }) + '\n');
  else {
    io.out(`token  ${token}\nhash   ${hash}\n`);
    io.err('The token is shown only now: hand it to its holder. Store only the hash (e.g. one line of the API\'s --operator-token-hash-file).\n');
  }
  return EXIT_OK;
}

/** Registers `token new`. */
export function registerTokenCommand(program: Command, io: Io, setCode: (code: number) => void): void {
  const token = program.command('token').description('API tokens');
  token
    .command('new')
    .description('print a fresh API token and its sha256 hash (store only the hash)')
    .option('--json', 'print {"token","hash"} as one JSON line')
    .action((o: { json?: boolean }) => {
      setCode(runTokenNew(io, o.json === true));
    });
}
