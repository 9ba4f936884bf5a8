/**
 * Registers the commands that talk to the REST API — `apply`, `get`, `delete`, `status` — on the
 * `anyedge` program (`plan -f FILE` without `--server` is wired in main.ts, beside the kernel plan
 * it shares its name with). Each command's work is in its own file; this one only maps flags.
 */
import type { Command } from 'commander';
import type { Io } from './io.ts';
import { terminalOf } from './terminal.ts';
import type { ClientFlags } from './client-options.ts';
import { withClientOptions } from './client-options.ts';
import { DEFAULT_WAIT_SECONDS, runApply } from './config-cmds.ts';
import { runGet } from './get.ts';
import { runDelete } from './delete.ts';
import { runStatus } from './status.ts';
import { KINDS } from './kinds.ts';

const KIND_LIST = KINDS.map((k) => k.name).join(', ');

/** Adds the API commands; `done(code)` receives each run's exit code. */
export function registerClientCommands(program: Command, io: Io, done: (code: number) => void): void {
  withClientOptions(
    program
      .command('apply')
      .description('make the config store match a declarative file through the API: shows the diff, asks, applies it as one transaction')
      .requiredOption('-f, --file <file>', 'config file, e.g. examples/acme.yaml')
      .option('--yes', 'apply without asking (needed when stdin is not a terminal)')
      .option('--wait', 'then wait until every server has applied it; exit 1 if some did not in time')
      .option('--timeout <seconds>', `how long --wait waits (default ${DEFAULT_WAIT_SECONDS})`),
  ).action(async (o: ClientFlags & { file: string; yes?: boolean; wait?: boolean; timeout?: string }) => {
    done(await runApply(o, io, terminalOf(io)));
  });

  withClientOptions(
    program
      .command('get')
      .description(`show objects from the API as a table (or --json): ${KIND_LIST}`)
      .argument('<kind>', KIND_LIST)
      .argument('[id]', 'one object; servers are DC/SERVER (or DC for one data center\'s)')
      .option('--tenant <tenant>', 'the tenant owning prefixes, tunnels, routes, firewall (default: every tenant you can see)'),
  ).action(async (kind: string, id: string | undefined, o: ClientFlags & { tenant?: string }) => {
    done(await runGet({ ...o, kind, ...(id === undefined ? {} : { id }) }, io, terminalOf(io)));
  });

  withClientOptions(
    program
      .command('delete')
      .description(`delete one object through the API, after showing it and asking: ${KIND_LIST}`)
      .argument('<kind>', KIND_LIST)
      .argument('<id>', 'the object; servers are DC/SERVER, firewall takes a rule id')
      .option('--tenant <tenant>', 'the tenant owning the prefix, tunnel, route or firewall rule')
      .option('--yes', 'delete without asking (needed when stdin is not a terminal)'),
  ).action(async (kind: string, id: string, o: ClientFlags & { tenant?: string; yes?: boolean }) => {
    done(await runDelete({ ...o, kind, id }, io, terminalOf(io)));
  });

  withClientOptions(
    program
      .command('status')
      .description('every server as its agent reports it: applied revision, lag, store connection, last error, tunnel health; exit 0 only when all are in sync and healthy'),
  ).action(async (o: ClientFlags) => {
    done(await runStatus(o, io, terminalOf(io)));
  });
}
