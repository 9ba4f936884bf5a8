/**
 * The proxy's egress addresses, kept equal to the config store: list the config once, then watch
 * from that revision (as the agent does) and recompute this server's addresses with
 * `serverEgress` whenever a config key changes. A config that does not validate or compile keeps
 * the last good addresses (and says why in the log); a store that is unreachable or compacted is
 * listed again after a pause, keeping the addresses meanwhile.
 *
 * What happens to a tunnel when its egress address leaves this server (the address is assigned
 * to another data center, or its pool is deleted): the proxy stops choosing it at once, and
 * leaves the tunnels already open from it alone — they are not cut. Their fate is the network's:
 * once the agent removes the address from `lo` and its SNAT rule, the replies to it are no longer
 * local here (and are steered to the address's new owner, which has no state for them), so these
 * connections stall and end by the client's, the destination's or the proxy's idle timeout.
 * Draining them first is the operator's choice: move an address only when its usage gauge is low.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { CONFIG_ROOTS, entriesToConfig } from '../model/keyspace.ts';
import { formatIssue } from '../model/issue.ts';
import { serverEgress } from '../compile/egress/server.ts';
import type { ConfigStore, JsonValue, StoreError } from '../store/types.ts';
import type { EgressAddress } from './egress-address.ts';
import type { ProxyEvent } from './server.ts';

/** Where the follower reads from and reports to. */
export interface FollowOptions {
  readonly openStore: () => Promise<Result<ConfigStore, StoreError>>;
  readonly dc: string;
  readonly server: string;
  readonly log?: (e: ProxyEvent) => void;
  /** Pause before listing again after a store failure (default 1 s). */
  readonly retryMs?: number;
}

function isConfigKey(key: string): boolean {
  return CONFIG_ROOTS.some((root) => key.startsWith(root));
}

function same(a: readonly EgressAddress[], b: readonly EgressAddress[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Follows the store; `addresses()` is what the proxy reads per request. */
export class ConfigFollower {
  readonly #o: FollowOptions;
  #addresses: readonly EgressAddress[] = [];
  #revision = 0;
  #stopped = false;
  #store: ConfigStore | null = null;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  readonly #changed = new Set<(revision: number) => void>();

  constructor(o: FollowOptions) {
    this.#o = o;
  }

  /** This server's egress addresses as of the last good config. */
  addresses(): readonly EgressAddress[] {
    return this.#addresses;
  }

  /** Store revision the follower has read up to (0: none read yet). */
  revision(): number {
    return this.#revision;
  }

  /**
   * Opens the store, reads the config and starts following it. Resolves after the first read:
   * an error when the store cannot be opened or the first config gives this server no addresses
   * because it is invalid or does not know this server (the proxy then should not start).
   */
  async start(): Promise<Result<void, string>> {
    const opened = await this.#o.openStore();
    if (!opened.ok) return err(`store: ${opened.error.message}`);
    this.#store = opened.value;
    const first = await this.#relist(opened.value);
    const problem = !first.ok ? first.error : !first.value.set.ok ? first.value.set.error : null;
    if (problem !== null || !first.ok) {
      await opened.value.close();
      this.#store = null;
      return err(problem ?? 'unreachable');
    }
    this.#loop = this.#follow(opened.value, first.value.entries);
    return ok(undefined);
  }

  /** Stops following and closes the store. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#store?.close();
    await this.#loop;
    this.#store = null;
  }

  /** Calls `f` after each change of the addresses (tests and logs). */
  onChange(f: (revision: number) => void): () => void {
    this.#changed.add(f);
    return () => this.#changed.delete(f);
  }

  #set(entries: ReadonlyMap<string, JsonValue>, revision: number): Result<void, string> {
    const config = entriesToConfig(entries);
    if (!config.ok) return err(`config at revision ${revision} is invalid (${config.error.length} issue${config.error.length === 1 ? '' : 's'}, first: ${formatIssue(config.error[0]!)}); keeping the last good egress addresses`);
    const mine = serverEgress(config.value, this.#o.dc, this.#o.server);
    if (!mine.ok) return err(`config at revision ${revision}: ${mine.error.path}: ${mine.error.message}; keeping the last good egress addresses`);
    if (same(mine.value, this.#addresses)) return ok(undefined);
    this.#addresses = mine.value;
    this.#o.log?.({ level: 'info', event: 'addresses', revision, addresses: mine.value.map((a) => `${a.ip} ${a.class}/${a.country} ${a.portLo}-${a.portHi}`) });
    for (const f of this.#changed) f(revision);
    return ok(undefined);
  }

  /**
   * Reads every config entry. The entries (and the revision to watch from) are taken even when
   * the config they make is refused: the next change is then applied to a whole copy.
   */
  async #relist(store: ConfigStore): Promise<Result<{ entries: Map<string, JsonValue>; set: Result<void, string> }, string>> {
    const l = await store.list('/');
    if (!l.ok) return err(`store: ${l.error.message}`);
    const entries = new Map<string, JsonValue>();
    for (const e of l.value.entries) if (isConfigKey(e.key)) entries.set(e.key, e.value);
    this.#revision = l.value.revision;
    return ok({ entries, set: this.#set(entries, l.value.revision) });
  }

  async #pause(): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, this.#o.retryMs ?? 1000);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.#wake = null;
  }

  async #follow(store: ConfigStore, initial: Map<string, JsonValue>): Promise<void> {
    let entries = initial;
    while (!this.#stopped) {
      const watch = store.watch('/', this.#revision);
      let failure: string | null = null;
      for await (const item of watch) {
        if (this.#stopped) break;
        if (!item.ok) {
          failure = item.error.message;
          break;
        }
        let touched = false;
        for (const ev of item.value.events) {
          if (!isConfigKey(ev.key)) continue;
          touched = true;
          if (ev.type === 'put') entries.set(ev.key, ev.value);
          else entries.delete(ev.key);
        }
        this.#revision = item.value.revision;
        if (!touched) continue;
        const r = this.#set(entries, item.value.revision);
        // The entries follow the store even when the config is refused, so that the next good
        // revision is read whole; only the addresses stay at the last good one.
        if (!r.ok) this.#o.log?.({ level: 'error', event: 'config', message: r.error });
      }
      watch.close();
      if (this.#stopped) return;
      this.#o.log?.({ level: 'error', event: 'store', message: `${failure ?? 'the watch ended'}; listing again`, addresses: this.#addresses.length });
      for (;;) {
        await this.#pause();
        if (this.#stopped) return;
        const again = await this.#relist(store);
        if (again.ok) {
          entries = again.value.entries;
          if (!again.value.set.ok) this.#o.log?.({ level: 'error', event: 'config', message: again.value.set.error });
          break;
        }
        this.#o.log?.({ level: 'error', event: 'store', message: again.error });
      }
    }
  }
}
