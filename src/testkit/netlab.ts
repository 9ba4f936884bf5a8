/**
 * A throwaway network of namespaces for tests: every namespace gets a prefix unique to the
 * process, every command is an argv array, and `destroy()` removes all of it (deleting a netns
 * takes its veths with it; processes started with `spawn` are killed first). Tests call
 * `destroy()` in `after`, so nothing is left behind when an assertion fails.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { run } from '../kernel/exec.ts';

export class NetLab {
  /** Short, so `<prefix><name>` stays within Linux's 15-character interface and netns limits. */
  readonly prefix: string;
  private readonly made: string[] = [];
  private readonly procs: ChildProcess[] = [];

  constructor(tag: string) {
    this.prefix = `ae${tag}${(process.pid % 10000).toString(36)}`;
  }

  /** Full netns name of `name`. */
  ns(name: string): string {
    return `${this.prefix}${name}`;
  }

  /** Runs a command and returns stdout; throws with stderr on failure (test setup is code, not input). */
  async sh(cmd: string, args: readonly string[], input?: string): Promise<string> {
    const r = await run(cmd, args, input === undefined ? {} : { input });
    if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
    return r.value.stdout;
  }

  /** `ip -n <ns> …`. */
  ip(ns: string, ...args: string[]): Promise<string> {
    return this.sh('ip', ['-n', this.ns(ns), ...args]);
  }

  /** Runs a command inside a namespace. */
  exec(ns: string, cmd: string, args: readonly string[], input?: string): Promise<string> {
    return this.sh('ip', ['netns', 'exec', this.ns(ns), cmd, ...args], input);
  }

  /** Same, without throwing: for commands expected to fail. */
  async tryExec(ns: string, cmd: string, args: readonly string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
    const r = await run('ip', ['netns', 'exec', this.ns(ns), cmd, ...args]);
    return r.ok ? { ok: true, stdout: r.value.stdout, stderr: r.value.stderr } : { ok: false, stdout: r.error.stdout ?? '', stderr: r.error.stderr };
  }

  /** Creates a namespace with lo up and IPv4 forwarding on. */
  async addNs(name: string): Promise<void> {
    await this.sh('ip', ['netns', 'add', this.ns(name)]);
    this.made.push(this.ns(name));
    await this.ip(name, 'link', 'set', 'dev', 'lo', 'up');
    for (const s of ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv6.conf.all.forwarding=1']) {
      await this.exec(name, 'sysctl', ['-qw', s]);
    }
  }

  /** A veth pair `a`@nsA — `b`@nsB, both up; returns nothing, names are the caller's. */
  async veth(nsA: string, a: string, nsB: string, b: string, opts: { indexA?: number; indexB?: number } = {}): Promise<void> {
    const args = ['link', 'add', 'name', a];
    if (opts.indexA) args.push('index', String(opts.indexA));
    args.push('type', 'veth', 'peer', 'name', b, 'netns', this.ns(nsB));
    if (opts.indexB) args.push('index', String(opts.indexB));
    await this.ip(nsA, ...args);
    await this.ip(nsA, 'link', 'set', 'dev', a, 'up');
    await this.ip(nsB, 'link', 'set', 'dev', b, 'up');
  }

  async ifindex(ns: string, dev: string): Promise<number> {
    const j = JSON.parse(await this.ip(ns, '-j', 'link', 'show', 'dev', dev)) as Array<{ ifindex: number }>;
    return j[0]!.ifindex;
  }

  async mac(ns: string, dev: string): Promise<string> {
    const j = JSON.parse(await this.ip(ns, '-j', 'link', 'show', 'dev', dev)) as Array<{ address: string }>;
    return j[0]!.address;
  }

  /** Starts a long-running process inside a namespace; killed by destroy(). */
  spawn(ns: string, cmd: string, args: readonly string[]): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', this.ns(ns), cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.procs.push(p);
    return p;
  }

  /** Kills what it started and deletes every namespace it made (with their links). */
  async destroy(): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    for (const ns of this.made.reverse()) await run('ip', ['netns', 'delete', ns]);
    this.made.length = 0;
  }
}
