/**
 * Real etcd clusters for tests: members on 127.0.0.1 with ports picked free per run, data dirs
 * under one new `/tmp/anyedge-etcd-*` directory, started, health-checked, killed, restarted and
 * always removed. Also the etcd {@link StoreFactory} of the contract suite and `openForChild` for
 * its child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import type { HarnessOptions, StoreFactory, StoreHarness } from './contract.ts';
import { openEtcdStore, type EtcdConfigStore, type EtcdStoreOptions } from './etcd.ts';
import type { ConfigStore, JsonValue } from './types.ts';
import { freePorts } from '../lib/ports.ts';

/** One member: its name, URLs and data directory. */
export interface EtcdMember {
  readonly name: string;
  /** Client URL, e.g. `http://127.0.0.1:40123`: what stores connect to. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
}

interface Running {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  /** Last few KiB of its log, for failure messages. */
  log: string;
}

/** Every member process of this test process, killed synchronously if it exits without cleanup. */
const allProcs = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of allProcs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

async function fetchJson(url: string, body?: unknown, ms = 1000): Promise<unknown> {
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(ms),
  });
  return res.json();
}

/** A local etcd cluster of real `etcd` processes. Create with {@link EtcdCluster.start}; always {@link EtcdCluster.stop}. */
export class EtcdCluster {
  readonly members: readonly EtcdMember[];
  readonly #dir: string;
  readonly #token: string;
  readonly #running = new Map<number, Running>();

  private constructor(dir: string, members: EtcdMember[]) {
    this.#dir = dir;
    this.members = members;
    this.#token = 'anyedge-test-' + randomBytes(4).toString('hex');
  }

  /**
   * Starts `size` members and waits until every one reports healthy (has a leader), or fails
   * after `deadlineMs` with the members' logs; a failed start cleans up after itself.
   */
  static async start(size: number, deadlineMs = 20_000): Promise<EtcdCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'anyedge-etcd-'));
    const ports = await freePorts(2 * size);
    const members = Array.from({ length: size }, (_, i) => ({
      name: `m${i}`,
      clientUrl: `http://127.0.0.1:${ports[2 * i]}`,
      peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
      dataDir: join(dir, `m${i}`),
    }));
    const cluster = new EtcdCluster(dir, members);
    try {
      for (let i = 0; i < size; i++) cluster.#spawn(i, 'new');
      await cluster.waitHealthy(members.map((_, i) => i), deadlineMs);
    } catch (e) {
      await cluster.stop();
      throw e;
    }
    return cluster;
  }

  /** Client URLs of all members, in member order. */
  get endpoints(): string[] {
    return this.members.map((m) => m.clientUrl);
  }

  #spawn(i: number, state: 'new' | 'existing'): void {
    const m = this.members[i]!;
    const args = [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl,
      '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', this.members.map((x) => `${x.name}=${x.peerUrl}`).join(','),
      '--initial-cluster-state', state,
      '--initial-cluster-token', this.#token,
      // Loopback: elections in about half a second instead of the default one to two seconds,
      // so a killed leader costs the tests little time.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      // A whole-config apply is one transaction of one op per object (plus the store's own):
      // etcd's default of 128 ops refuses a config of a few dozen tenants.
      '--max-txn-ops', '16384',
      '--logger', 'zap',
      '--log-level', 'warn',
    ];
    const proc = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    allProcs.add(proc);
    const running: Running = {
      proc,
      log: '',
      exited: new Promise<void>((resolve) => proc.once('exit', () => (allProcs.delete(proc), resolve()))),
    };
    proc.once('error', (e) => (running.log += `spawn failed: ${e.message}\n`));
    proc.stderr?.on('data', (d: Buffer) => (running.log = (running.log + d.toString()).slice(-4096)));
    this.#running.set(i, running);
  }

  /** Whether member `i` has a live process. */
  isRunning(i: number): boolean {
    const r = this.#running.get(i);
    return r !== undefined && r.proc.exitCode === null && r.proc.signalCode === null;
  }

  /** Waits until each of `members` answers /health with true, polling until `deadlineMs`. */
  async waitHealthy(members: readonly number[], deadlineMs = 15_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (const i of members) {
      let last = 'no answer yet';
      for (;;) {
        if (!this.isRunning(i)) throw new Error(`etcd member m${i} exited while starting:\n${this.#running.get(i)?.log ?? ''}`);
        try {
          const h = (await fetchJson(`${this.members[i]!.clientUrl}/health`)) as { health?: string };
          if (h.health === 'true') break;
          last = JSON.stringify(h);
        } catch (e) {
          last = (e as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`etcd member m${i} not healthy within ${deadlineMs} ms (${last}):\n${this.#running.get(i)?.log ?? ''}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  /** Index of the current leader, as running member `asking` sees it (only running members are asked). */
  async leader(asking: number): Promise<number> {
    const status = async (i: number): Promise<{ header: { member_id: string }; leader: string }> =>
      (await fetchJson(`${this.members[i]!.clientUrl}/v3/maintenance/status`, {})) as { header: { member_id: string }; leader: string };
    const st = await status(asking);
    for (let i = 0; i < this.members.length; i++) {
      if (this.isRunning(i) && (await status(i)).header.member_id === st.leader) return i;
    }
    throw new Error(`member m${asking} names leader ${st.leader}, which is not a running member`);
  }

  /** Kills member `i` with SIGKILL (a crash: no clean shutdown) and waits until it is gone. */
  async kill(i: number): Promise<void> {
    const r = this.#running.get(i);
    if (!r) return;
    if (this.isRunning(i)) r.proc.kill('SIGKILL');
    await r.exited;
    this.#running.delete(i);
  }

  /** Starts member `i` again on its data directory and waits until it is healthy. */
  async restart(i: number, deadlineMs = 15_000): Promise<void> {
    if (this.isRunning(i)) throw new Error(`etcd member m${i} is still running`);
    this.#spawn(i, 'existing');
    await this.waitHealthy([i], deadlineMs);
  }

  /**
   * Restarts every member that is not running (a test that failed midway left it down), all at
   * once: with a majority down none can become healthy alone.
   */
  async restartStopped(deadlineMs = 15_000): Promise<void> {
    const stopped = this.members.map((_, i) => i).filter((i) => !this.isRunning(i));
    for (const i of stopped) this.#spawn(i, 'existing');
    await this.waitHealthy(stopped, deadlineMs);
  }

  /** Stops every member (SIGTERM, SIGKILL after 2 s) and removes the data directories. Idempotent. */
  async stop(): Promise<void> {
    const all = [...this.#running.values()];
    this.#running.clear();
    for (const r of all) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const r of all) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill('SIGKILL');
    }, 2000);
    try {
      await Promise.all(all.map((r) => r.exited));
    } finally {
      clearTimeout(timer);
      await rm(this.#dir, { recursive: true, force: true });
    }
  }
}

/** Opens a store or throws: in tests a store that will not open is a setup bug. */
export async function mustOpenEtcd(options: EtcdStoreOptions): Promise<EtcdConfigStore> {
  const r = await openEtcdStore(options);
  if (!r.ok) throw new Error(r.error.message, { cause: r.error });
  return r.value;
}

let harnesses = 0;

/**
 * The etcd {@link StoreFactory}: each harness is a new namespace prefix on the cluster `cluster()`
 * returns (started once per test file), so tests share members but never data.
 */
export function etcdFactory(cluster: () => EtcdCluster): StoreFactory {
  return async (options: HarnessOptions): Promise<StoreHarness> => {
    const endpoints = cluster().endpoints;
    const prefix = `/anyedge-test/${process.pid}-${harnesses++}-${randomBytes(3).toString('hex')}`;
    const opened: EtcdConfigStore[] = [];
    const openOne = async (o: HarnessOptions = {}): Promise<EtcdConfigStore> => {
      const s = await mustOpenEtcd({ endpoints, prefix, ...(o.validation ? { validation: o.validation } : {}) });
      opened.push(s);
      return s;
    };
    const store = await openOne(options);
    return {
      store,
      reopen: async (o: HarnessOptions = {}) => openOne(o),
      child: { module: fileURLToPath(import.meta.url), spec: { endpoints, prefix } },
      cleanup: async () => {
        for (const s of opened) await s.close();
      },
    };
  };
}

/** Opens the store a parent process named (`spec.endpoints`, `spec.prefix`): the child-module half of the harness. */
export async function openForChild(spec: JsonValue): Promise<ConfigStore> {
  const { endpoints, prefix } = spec as { endpoints: string[]; prefix: string };
  return mustOpenEtcd({ endpoints, prefix });
}
