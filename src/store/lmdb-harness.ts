/**
 * How the contract suite (and the benchmark) get LMDB stores: a fresh temporary directory per
 * harness, every handle closed and the directory removed on cleanup, and `openForChild` for the
 * suite's child processes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HarnessOptions, StoreFactory, StoreHarness } from './contract.ts';
import { openLmdbStore, type LmdbConfigStore, type LmdbStoreOptions } from './lmdb.ts';
import type { ConfigStore, JsonValue } from './types.ts';

/**
 * Poll interval for cross-process watches in tests: shorter than the default so the multi-process
 * case finishes quickly; in-process delivery does not depend on it.
 */
const TEST_POLL_MS = 5;

/** Opens a store or throws: in tests and benchmarks a store that will not open is a setup bug. */
export function mustOpen(options: LmdbStoreOptions): LmdbConfigStore {
  const r = openLmdbStore(options);
  if (!r.ok) throw new Error(r.error.message, { cause: r.error });
  return r.value;
}

/** The LMDB {@link StoreFactory}: each harness owns a new `anyedge-store-*` temporary directory. */
export const lmdbFactory: StoreFactory = async (options: HarnessOptions): Promise<StoreHarness> => {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-store-'));
  const opened: LmdbConfigStore[] = [];
  const openOne = (o: HarnessOptions): LmdbConfigStore => {
    const s = mustOpen({ path: dir, pollIntervalMs: TEST_POLL_MS, ...(o.validation ? { validation: o.validation } : {}) });
    opened.push(s);
    return s;
  };
  let store: LmdbConfigStore;
  try {
    store = openOne(options);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    store,
    reopen: async (o: HarnessOptions = {}) => openOne(o),
    child: { module: fileURLToPath(import.meta.url), spec: { path: dir } },
    cleanup: async () => {
      try {
        for (const s of opened) await s.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
};

/** Opens the store a parent process named (`spec.path`): the child-module half of the harness. */
export async function openForChild(spec: JsonValue): Promise<ConfigStore> {
  const { path } = spec as { path: string };
  return mustOpen({ path, pollIntervalMs: TEST_POLL_MS });
}
