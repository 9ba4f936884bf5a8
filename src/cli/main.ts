/**
 * The `anyedge` command line: wires commander to one file per command and turns every outcome
 * into an exit code. Commander's own failures (unknown command, missing argument) are usage
 * errors, exit 2, like a file that cannot be read.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import type { Io } from './io.ts';
import { processIo } from './io.ts';
import { EXIT_OK, EXIT_USAGE, runValidate } from './validate.ts';
import { runPlan, type PlanOptions } from './plan.ts';
import { registerClientCommands } from './client-commands.ts';
import { runPlanDiff } from './config-cmds.ts';
import { terminalOf } from './terminal.ts';
import { withClientOptions, type ClientFlags } from './client-options.ts';
import { registerAgentCommand } from './agent.ts';
import { registerApiCommand } from './api.ts';
import { registerTokenCommand } from './token.ts';
import { registerLabCommand } from './lab.ts';
import { registerProxyCommand } from './proxy.ts';
import { registerDosCommand } from './dos.ts';
import { registerEgressCommand } from './egress.ts';

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Runs the CLI with `argv` as `process.argv` gives it (node, script, arguments…) and returns the
 * exit code; never calls `process.exit`, so it can run inside tests and other programs.
 */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code = EXIT_OK;
  const program = new Command('anyedge')
    .description('Open-source anycast edge: customer network functions on every server of every data center.')
    .version(version())
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(run anyedge --help for usage)')
    .exitOverride();

  program
    .command('validate')
    .description('check a declarative config file (YAML) and print every problem with its line and column')
    .argument('<file>', 'config file, e.g. examples/acme.yaml')
    .action(async (file: string) => {
      code = await runValidate(file, io);
    });

  for (const [name, doApply, what] of [
    ['plan', false, 'print what would change (read-only): with --server, in this machine\'s kernel for that server; without, in the config store (what apply -f would do, through the API)'],
    ['apply-local', true, 'make this machine\'s kernel match the config for one server, then print what was done'],
  ] as const) {
    const cmd = program
      .command(name)
      .description(what)
      .requiredOption('-f, --file <file>', 'config file, e.g. examples/acme.yaml')
      // plan without --server is the store diff through the API (config-cmds.ts).
      .addOption(new Option('--server <dc/server>', 'which server this machine is, e.g. ams/s1').makeOptionMandatory(doApply))
      .option('--netns <ns>', 'act on this namespace as the server\'s default namespace (labs, tests)')
      .option('--prefix <prefix>', 'ownership prefix of everything made (default ae)')
      .option('--bpf <name>', 'bpffs directory of the edge programs (default anyedge)')
      .option('--link-pool <cidr>', 'reserved IPv4 pool for server↔tenant links (default 192.0.2.128/25)')
      .action(async (o: ClientFlags & { file: string; server?: string; netns?: string; prefix?: string; bpf?: string; linkPool?: string }) => {
        if (o.server === undefined) {
          code = await runPlanDiff(o, io, terminalOf(io));
          return;
        }
        const opts: PlanOptions = { file: o.file, server: o.server, ...(o.netns ? { netns: o.netns } : {}), ...(o.prefix ? { prefix: o.prefix } : {}), ...(o.bpf ? { bpf: o.bpf } : {}), ...(o.linkPool ? { linkPool: o.linkPool } : {}) };
        code = await runPlan(opts, io, doApply);
      });
    if (!doApply) withClientOptions(cmd);
  }

  registerClientCommands(program, io, (c) => {
    code = c;
  });
  registerAgentCommand(program, io, (c) => {
    code = c;
  });
  registerApiCommand(program, io, (c) => {
    code = c;
  });
  registerTokenCommand(program, io, (c) => {
    code = c;
  });
  registerLabCommand(program, io, (c) => {
    code = c;
  });
  registerProxyCommand(program, io, (c) => {
    code = c;
  });
  registerDosCommand(program, io, (c) => {
    code = c;
  });
  registerEgressCommand(program, io, (c) => {
    code = c;
  });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    throw e;
  }
  return code;
}
