/**
 * Network namespaces: one per tenant on every server. A namespace is named by a file under
 * /run/netns (what `ip netns add` makes); ours are the ones whose name starts with the mark prefix.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, type KernelError } from './errors.ts';
import { ip, ipJson, voidOf } from './iproute.ts';
import type { Marks } from './marks.ts';
import { checkNetnsName, firstInvalid } from './validate.ts';

/** Re-exported: the drivers import the netns name check together with NsRef. */
export { checkNetnsName };

/**
 * A namespace to act in: a name under /run/netns, or null for the namespace the agent itself
 * runs in (the host's default namespace, where the `transit` table lives).
 */
export type NsRef = string | null;

/** Namespace operations. */
export interface NetnsApi {
  /** Our namespaces (named with our prefix), sorted. Others' are never listed, so never touched. */
  list(): Promise<Result<string[], KernelError>>;
  /** Whether a namespace of that name exists, ours or not. */
  exists(name: string): Promise<Result<boolean, KernelError>>;
  /** Creates a namespace; the name must carry our prefix. `exists` if it is already there. */
  add(name: string): Promise<Result<void, KernelError>>;
  /**
   * Deletes one of our namespaces; one already gone is success. Its links go with it, and so do
   * the other ends of its veth pairs, wherever they are.
   */
  delete(name: string): Promise<Result<void, KernelError>>;
  /** Deletes our namespaces (by prefix) not in `keep`; returns the names deleted. */
  prune(keep: readonly string[]): Promise<Result<string[], KernelError>>;
}

/** Checks a name for add/delete: valid, and carrying our prefix. */
export function checkOurNetns(m: Marks, op: string, name: string): KernelError | null {
  const bad = firstInvalid(op, null, `netns/${name}`, checkNetnsName(name));
  if (bad) return bad;
  if (!name.startsWith(m.prefix))
    return kernelError('invalid', op, null, `netns ${name} does not start with our prefix ${JSON.stringify(m.prefix)}`, {
      path: `netns/${name}`,
      remedy: 'anyedge only creates and deletes namespaces carrying its prefix; name it accordingly or manage it by hand',
    });
  return null;
}

/** The Linux driver: `ip netns`. */
export function linuxNetns(m: Marks): NetnsApi {
  const api: NetnsApi = {
    async list() {
      const res = await ipJson<{ name: string }>(null, ['netns', 'list'], 'netns list');
      if (!res.ok) return res;
      return ok(
        res.value
          .map((n) => n.name)
          .filter((n) => n.startsWith(m.prefix))
          .sort(),
      );
    },
    async exists(name) {
      const bad = firstInvalid('netns exists', null, `netns/${name}`, checkNetnsName(name));
      if (bad) return err(bad);
      const res = await ipJson<{ name: string }>(null, ['netns', 'list'], 'netns list');
      return res.ok ? ok(res.value.some((n) => n.name === name)) : res;
    },
    async add(name) {
      const op = `netns add ${name}`;
      const bad = checkOurNetns(m, op, name);
      if (bad) return err(bad);
      return voidOf(await ip(null, ['netns', 'add', name]), op, null, { path: `netns/${name}` });
    },
    async delete(name) {
      const op = `netns delete ${name}`;
      const bad = checkOurNetns(m, op, name);
      if (bad) return err(bad);
      const res = voidOf(await ip(null, ['netns', 'delete', name]), op, null, { path: `netns/${name}` });
      if (!res.ok && res.error.code === 'not_found') return ok(undefined);
      return res;
    },
    async prune(keep) {
      const all = await api.list();
      if (!all.ok) return all;
      const gone: string[] = [];
      for (const name of all.value) {
        if (keep.includes(name)) continue;
        const res = await api.delete(name);
        if (!res.ok) return res;
        gone.push(name);
      }
      return ok(gone);
    },
  };
  return api;
}
