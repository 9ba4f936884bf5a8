/**
 * The one way programs (agent, API, CLI) open the config store from a `--store` spec, always with
 * the config check on the config roots, so no entry point can write an unchecked config:
 *
 * - `lmdb:/var/lib/anyedge/store` — the embedded store at a directory (single node, labs);
 * - `etcd:http://10.0.0.1:2379,http://10.0.0.2:2379[#/anyedge]` — an etcd cluster, with the key
 *   prefix after `#` (default `/anyedge`).
 */
import type { Result } from '../lib/result.ts';
import { err, ok } from '../lib/result.ts';
import { CONFIG_ROOTS, validateKeyspace } from '../model/keyspace.ts';
import type { ConfigStore, StoreError, ValidationOptions } from './types.ts';
import { openLmdbStore } from './lmdb.ts';
import { openEtcdStore } from './etcd.ts';

/** A parsed `--store` spec. */
export type StoreSpec =
  | { readonly kind: 'lmdb'; readonly path: string; readonly noSync?: boolean }
  | { readonly kind: 'etcd'; readonly endpoints: readonly string[]; readonly prefix: string; readonly timeoutMs?: number };

/** The default etcd key prefix. */
export const DEFAULT_ETCD_PREFIX = '/anyedge';

/** The validation every program's store runs: the keyspace check over the config roots. */
export const CONFIG_VALIDATION: ValidationOptions = { validator: validateKeyspace, roots: CONFIG_ROOTS };

const USAGE = 'give lmdb:DIR (e.g. lmdb:/var/lib/anyedge/store) or etcd:URL[,URL…][#PREFIX] (e.g. etcd:http://127.0.0.1:2379)';

/** Parses a `--store` spec; the error names the flag and says what a good one looks like. */
export function parseStoreSpec(text: string): Result<StoreSpec, string> {
  const colon = text.indexOf(':');
  const scheme = colon < 0 ? '' : text.slice(0, colon);
  const rest = colon < 0 ? '' : text.slice(colon + 1);
  if (scheme === 'lmdb') {
    if (rest === '') return err(`--store ${text}: the LMDB directory is missing; ${USAGE}`);
    return ok({ kind: 'lmdb', path: rest });
  }
  if (scheme === 'etcd') {
    const hash = rest.indexOf('#');
    const list = hash < 0 ? rest : rest.slice(0, hash);
    const prefix = hash < 0 ? DEFAULT_ETCD_PREFIX : rest.slice(hash + 1);
    const endpoints = list.split(',').filter((e) => e !== '');
    if (endpoints.length === 0) return err(`--store ${text}: no etcd endpoint; ${USAGE}`);
    for (const e of endpoints) {
      let url: URL;
      try {
        url = new URL(e);
      } catch {
        return err(`--store ${text}: endpoint ${JSON.stringify(e)} is not a URL; ${USAGE}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return err(`--store ${text}: endpoint ${e} must be http:// or https://`);
    }
    if (!prefix.startsWith('/')) return err(`--store ${text}: the key prefix after # must start with /, e.g. #/anyedge`);
    return ok({ kind: 'etcd', endpoints, prefix });
  }
  return err(`--store ${text}: unknown store kind ${JSON.stringify(scheme)}; ${USAGE}`);
}

/** Opens the store a spec names, with {@link CONFIG_VALIDATION}. */
export async function openStore(spec: StoreSpec): Promise<Result<ConfigStore, StoreError>> {
  if (spec.kind === 'lmdb') return openLmdbStore({ path: spec.path, validation: CONFIG_VALIDATION, ...(spec.noSync ? { noSync: true } : {}) });
  return openEtcdStore({ endpoints: spec.endpoints, prefix: spec.prefix, validation: CONFIG_VALIDATION, ...(spec.timeoutMs !== undefined ? { timeoutMs: spec.timeoutMs } : {}) });
}
