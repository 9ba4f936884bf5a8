/**
 * The systemd unit in deploy/ against the CLI: every flag its ExecStart passes must be one
 * `anyedge agent` accepts, every required flag must be there, and every variable it uses must be
 * set by the example environment file, so the unit cannot drift from the command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readFileSync } from 'node:fs';
import { Command } from 'commander';
import { main } from './main.ts';
import { registerAgentCommand } from './agent.ts';

const root = new URL('../../', import.meta.url);
const unit = readFileSync(new URL('deploy/anyedge-agent.service', root), 'utf8');
const envExample = readFileSync(new URL('deploy/agent.env.example', root), 'utf8');

/** `Key=value` lines of one section, continuation lines joined. */
function section(text: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) current = line;
    else if (current === `[${name}]` && line && !line.startsWith('#')) {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return out;
}

const service = section(unit, 'Service');
const execStart = (service.get('ExecStart') ?? [''])[0]!.replace(/^[-@:+!]+/, '').split(/\s+/);

/** The options `anyedge agent` declares. */
function agentOptions() {
  const program = new Command('anyedge');
  registerAgentCommand(program, { out: () => {}, err: () => {} }, () => {});
  const cmd = program.commands.find((c) => c.name() === 'agent');
  assert.ok(cmd, 'registerAgentCommand adds agent');
  return cmd.options.map((o) => ({ long: o.long as string, mandatory: o.mandatory, takesValue: o.required || o.optional }));
}

test('ExecStart runs bin/anyedge.mjs agent, and the script is executable', () => {
  assert.equal(service.get('ExecStart')?.length, 1, 'one ExecStart');
  assert.match(execStart[0]!, /\/bin\/anyedge\.mjs$/);
  assert.equal(execStart[1], 'agent');
  accessSync(new URL('bin/anyedge.mjs', root), constants.X_OK);
});

test('every ExecStart flag is one `anyedge agent` accepts, with a value where it takes one; every required flag is given', () => {
  const options = agentOptions();
  const args = execStart.slice(2);
  const given: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) {
      // Unbraced $VAR: systemd splits it into more arguments (optional flags from agent.env).
      assert.match(a, /^\$[A-Z_]+$/, `stray argument ${a} in ExecStart`);
      continue;
    }
    const o = options.find((x) => x.long === a);
    assert.ok(o, `ExecStart passes ${a}, which anyedge agent does not accept (it accepts ${options.map((x) => x.long).join(', ')})`);
    if (o.takesValue) {
      const v = args[++i];
      assert.ok(v !== undefined && !v.startsWith('--'), `${a} needs a value in ExecStart`);
    }
    given.push(a);
  }
  for (const o of options.filter((x) => x.mandatory)) assert.ok(given.includes(o.long), `ExecStart lacks the required ${o.long}`);
});

test('the command the unit runs is registered in main, with the same flags in its help', async () => {
  let help = '';
  const code = await main(['node', 'anyedge', 'agent', '--help'], { out: (t) => void (help += t), err: (t) => void (help += t) });
  assert.equal(code, 0);
  for (const o of agentOptions()) assert.ok(help.includes(o.long), `help of anyedge agent lacks ${o.long}`);
});

test('every variable ExecStart uses is set by agent.env.example (or a default in the unit)', () => {
  const vars = [...execStart.join(' ').matchAll(/\$\{?([A-Z_]+)\}?/g)].map((m) => m[1]!);
  assert.ok(vars.includes('ANYEDGE_SERVER') && vars.includes('ANYEDGE_STORE'));
  const defined = new Set([...envExample.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]!));
  for (const e of service.get('Environment') ?? []) defined.add(e.split('=')[0]!);
  for (const v of vars) assert.ok(defined.has(v), `ExecStart uses $${v}, which nothing defines`);
});

test('the unit restarts forever, keeps state in /var/lib/anyedge and reads /etc/anyedge/agent.env', () => {
  const one = (k: string) => (service.get(k) ?? [])[0];
  assert.equal(one('Type'), 'simple');
  assert.equal(one('Restart'), 'always');
  assert.ok(Number(one('RestartSec')) > 0);
  assert.equal(one('EnvironmentFile'), '/etc/anyedge/agent.env');
  assert.equal(one('StateDirectory'), 'anyedge');
  assert.equal(execStart[execStart.indexOf('--state-dir') + 1], '/var/lib/anyedge');
  const caps = (one('CapabilityBoundingSet') ?? '').split(/\s+/);
  for (const c of ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN', 'CAP_BPF']) assert.ok(caps.includes(c), `CapabilityBoundingSet lacks ${c}`);
  // Settings that would hide /run/netns or /sys/fs/bpf behind a private mount namespace.
  for (const k of ['ProtectSystem', 'PrivateTmp', 'PrivateMounts', 'ProtectKernelTunables', 'MemoryDenyWriteExecute']) assert.equal(service.get(k), undefined, `${k} breaks the agent (see the unit's comment)`);
});
