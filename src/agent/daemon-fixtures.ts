/**
 * Helpers for the agent daemon's tests: a fake server (kernel, maps, attachments) whose state
 * prints as canonical text, the text a fresh server reaches for a config (what the agent must
 * converge to), writing configs to a store, and waiting for the agent's events.
 */
import assert from 'node:assert/strict';
import { compileServer, type ServerOptions } from '../compile/server.ts';
import type { Config } from '../model/config.ts';
import { configToEntries } from '../model/keyspace.ts';
import { fakeKernel, marksWith, type FakeKernel } from '../kernel/index.ts';
import { fakeBpfMaps } from '../kernel/bpf/maps-api.ts';
import { fakeAttach } from '../kernel/attach.ts';
import type { ConfigStore, StoreError, Watch } from '../store/types.ts';
import type { Result } from '../lib/result.ts';
import { apply, plan, type ReconcileEnv } from './reconcile.ts';
import type { AgentEvent } from './daemon.ts';

/** Ownership marks of the fake servers. */
export const testMarks = marksWith({ prefix: 'ae' });

/** Compile options of the agents under test. */
export const testCompile: Omit<ServerOptions, 'down'> = { marks: testMarks };

/** A fake server: its kernel APIs and its whole state as text. */
export interface FakeServer {
  readonly kernel: FakeKernel;
  readonly env: ReconcileEnv;
  dump(): Promise<string>;
}

/** A freshly booted fake server with its uplink `eth0` (not ours, as a NIC would be). */
export async function fakeServer(): Promise<FakeServer> {
  const kernel = fakeKernel(testMarks);
  assert.ok(kernel.foreign.veth(null, 'eth0', 'eth9').ok);
  assert.ok((await kernel.links.setUp(null, 'eth0', true)).ok);
  const bpf = fakeBpfMaps();
  const attach = fakeAttach(kernel);
  return { kernel, env: { kernel, bpf, attach }, dump: async () => (await attach.sweep(), kernel.dump() + bpf.dump() + attach.dump()) };
}

/** The state a fresh server reaches for `config` as ams/s1 (with `down` tunnels). */
export async function referenceDump(config: Config, down: ReadonlySet<string> = new Set()): Promise<string> {
  const s = await fakeServer();
  const d = compileServer(config, { dc: 'ams', server: 's1' }, { ...testCompile, down });
  if (!d.ok) assert.fail(d.error.message);
  for (let i = 0; i < 3; i++) {
    const p = await plan(s.env, d.value);
    if (!p.ok) assert.fail(p.error.message);
    if (p.value.length === 0) return s.dump();
    const r = await apply(p.value);
    assert.equal(r.failed, undefined, r.failed?.error.message);
  }
  assert.fail('reference server did not converge in 3 passes');
}

/** Writes a whole config in one transaction (puts only); returns its revision. */
export async function writeConfig(store: ConfigStore, config: Config): Promise<number> {
  const then = [...configToEntries(config)].map(([key, value]) => ({ op: 'put' as const, key, value }));
  const r = await store.txn({ then });
  if (!r.ok) assert.fail(r.error.message);
  return r.value.revision;
}

/** Puts one key, failing the test on refusal; returns the revision. */
export async function mustPut(store: ConfigStore, key: string, value: unknown): Promise<number> {
  const r = await store.put(key, value);
  if (!r.ok) assert.fail(r.error.message);
  return r.value.revision;
}

/** Deletes one key, failing the test on refusal; returns the revision. */
export async function mustDelete(store: ConfigStore, key: string): Promise<number> {
  const r = await store.delete(key);
  if (!r.ok) assert.fail(r.error.message);
  return r.value.revision;
}

/** Polls `cond` every 5 ms until it holds, or fails after `ms` saying what was awaited. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Collects an agent's events. */
export class EventLog {
  readonly events: AgentEvent[] = [];
  readonly sink = (e: AgentEvent): void => void this.events.push(e);

  /** Events of one kind. */
  of<K extends AgentEvent['event']>(kind: K): Extract<AgentEvent, { event: K }>[] {
    return this.events.filter((e): e is Extract<AgentEvent, { event: K }> => e.event === kind);
  }

  /** Revisions of the config changes received, in order. */
  changeRevisions(): number[] {
    return this.of('change').map((e) => e.revision);
  }

  /** Text of every event, for failure messages. */
  text(): string {
    return this.events.map((e) => JSON.stringify(e)).join('\n');
  }
}

/**
 * Wraps a store so that the revision of every batch its watches deliver is appended to
 * `delivered`: across reconnects the list proves nothing was repeated or skipped.
 */
export function recordingStore(store: ConfigStore, delivered: number[]): ConfigStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'watch') {
        return (prefix: string, afterRevision: number): Watch => {
          const inner = target.watch(prefix, afterRevision);
          return {
            close: () => inner.close(),
            async *[Symbol.asyncIterator]() {
              for await (const item of inner) {
                if (item.ok) delivered.push(item.value.revision);
                yield item;
              }
            },
          };
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** An opener that records deliveries of every store it opens (see {@link recordingStore}). */
export function recordingOpener(open: () => Promise<Result<ConfigStore, StoreError>>, delivered: number[]): () => Promise<Result<ConfigStore, StoreError>> {
  return async () => {
    const r = await open();
    return r.ok ? { ok: true, value: recordingStore(r.value, delivered) } : r;
  };
}

/** Asserts `revs` is strictly increasing and, when `contiguous`, has no gap. */
export function assertExactlyOnce(revs: readonly number[], contiguous: boolean, what: string): void {
  for (let i = 1; i < revs.length; i++) {
    const [a, b] = [revs[i - 1]!, revs[i]!];
    assert.ok(b > a, `${what}: revision ${b} delivered after ${a} (repeated or out of order): ${revs.join(' ')}`);
    if (contiguous) assert.equal(b, a + 1, `${what}: revisions ${a + 1}…${b - 1} never delivered: ${revs.join(' ')}`);
  }
}
