import type { Issue } from '../model/issue.ts';

/**
 * Checks a whole keyspace (store key → decoded JSON value) as it would be after a write. The store
 * calls it inside its write transaction with every key under its validated roots, so cross-object
 * rules (prefix overlap, a route naming an existing tunnel) see a consistent snapshot. An empty
 * result means the write may commit; anything else refuses the whole write.
 *
 * The map and its values belong to the store: they are deeply frozen and valid only during the
 * call (copy what you keep). The LMDB backend hands over the same value object for a key until
 * that key is written again, so a validator may memoise per-object work (schema parsing) in a
 * `WeakMap` keyed by value and so cost O(changed objects) plus its cross-object checks.
 */
export type KeyspaceValidator = (entries: ReadonlyMap<string, unknown>) => readonly Issue[];
