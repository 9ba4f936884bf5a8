/**
 * nftables through its JSON interface (`nft -j`). A batch of commands goes to one `nft -j -f`
 * (from a private temporary file, see nftFile) and the kernel applies it as one transaction: all
 * of it or nothing. Rulesets are built as
 * JSON objects by the compiler, never as nft text from strings, so a tenant's rule can not smuggle
 * syntax into another's table. Our tables are the ones whose name starts with the mark prefix,
 * and a batch may only touch those.
 */
import { err, ok, type Result } from '../lib/result.ts';
import { kernelError, nsLabel, reasonOf, classify, type KernelError } from './errors.ts';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecError, ExecOutput } from './exec.ts';
import { inNs } from './iproute.ts';
import type { Marks } from './marks.ts';
import { checkNetnsName, type NsRef } from './netns.ts';
import { firstInvalid } from './validate.ts';

/** A JSON value, as nft reads and prints it. */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** One command of a batch: `{ "add": { "rule": {…} } }`. */
export type NftCommand = { readonly [verb: string]: Json };

/** A batch, or a listing: nft's top-level `{ "nftables": [ … ] }`. */
export interface NftJson {
  readonly nftables: readonly NftCommand[];
}

/** nftables address families. */
export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';

/** Names a table. */
export interface NftTableRef {
  readonly family: NftFamily;
  readonly name: string;
}

/** A table as listed. */
export interface NftTableInfo extends NftTableRef {
  /** Name carries our prefix. */
  readonly owned: boolean;
}

/**
 * An object of a table in nft's list form, without a verb: `{ "chain": {…} }`, `{ "rule": {…} }`,
 * `{ "set": {…} }`, `{ "counter": {…} }` … Each names its table with `family` and `table`.
 */
export type NftObject = { readonly [kind: string]: { readonly [key: string]: Json } };

/** A whole table: what `applyTable` makes the kernel hold, replacing what was there. */
export interface NftTableSpec extends NftTableRef {
  /** In dependency order: chains, sets and named counters before the rules that use them. */
  readonly objects: readonly NftObject[];
}

/** A counter read back: a named counter object, or a rule's anonymous `counter` statement. */
export interface NftCounter {
  readonly kind: 'named' | 'rule';
  /** The counter's name, or for a rule its comment, else `<chain>#<handle>`. */
  readonly name: string;
  /** For rules: the chain and the rule handle. */
  readonly chain?: string;
  readonly handle?: number;
  readonly packets: number;
  readonly bytes: number;
}

/** nftables operations. */
export interface NftApi {
  /**
   * Makes the table exactly `spec`, as one transaction: `add table; delete table; add table;
   * add <object>…` in one `nft -j -f`. Either the new table is in place or, if any object is
   * refused, the previous one is untouched. Applying the same spec twice leaves the same table
   * (handles and counters start anew: a re-apply resets counters).
   */
  applyTable(ns: NsRef, spec: NftTableSpec): Promise<Result<void, KernelError>>;
  /** The counters of one of our tables, named ones first, then rules in listing order. */
  counters(ns: NsRef, table: NftTableRef): Promise<Result<NftCounter[], KernelError>>;
  /**
   * Applies a batch as one transaction; if any command fails nothing changes. Every command
   * must name one of our tables (`flush ruleset` and the like are refused before nft runs).
   */
  apply(ns: NsRef, batch: NftJson): Promise<Result<void, KernelError>>;
  /**
   * A table with its sets, chains and rules as nft lists them (rule counters included, with
   * handles), without the `metainfo` header. `not_found` if it does not exist.
   */
  listTable(ns: NsRef, table: NftTableRef): Promise<Result<NftJson, KernelError>>;
  /** All tables of the namespace, ours or not, sorted by family and name. */
  listTables(ns: NsRef): Promise<Result<NftTableInfo[], KernelError>>;
  /** Deletes one of our tables; one already gone is success. */
  deleteTable(ns: NsRef, table: NftTableRef): Promise<Result<void, KernelError>>;
  /** Deletes our tables not in `keep`; returns them. */
  prune(ns: NsRef, keep: readonly NftTableRef[]): Promise<Result<NftTableRef[], KernelError>>;
}

const FAMILIES: readonly string[] = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'];
const VERBS: readonly string[] = ['add', 'create', 'insert', 'replace', 'delete', 'flush'];

/** Whether a value is a JSON object (not an array, not null). */
export function isObj(v: unknown): v is { readonly [key: string]: Json } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A command taken apart: verb, object kind, and the object. */
export interface ParsedCommand {
  readonly verb: string;
  readonly kind: string;
  readonly obj: { readonly [key: string]: Json };
  readonly family: NftFamily;
  readonly table: string;
}

/**
 * Checks a batch: every command is `{verb: {kind: {family, table|name, …}}}`, with a known verb
 * and one of our tables. Shared by the drivers, so both refuse the same batches.
 */
export function parseBatch(m: Marks, op: string, ns: NsRef, batch: NftJson): ParsedCommand[] | KernelError {
  const path = `${nsLabel(ns)}/nft`;
  const fail = (reason: string) =>
    kernelError('invalid', op, ns, reason, { path, remedy: 'nothing was applied; a batch may only add, change or delete objects of our own tables (names starting with the prefix)' });
  if (!isObj(batch) || !Array.isArray(batch.nftables)) return fail('the batch must be {"nftables": [ … ]}');
  const out: ParsedCommand[] = [];
  for (const [i, cmd] of batch.nftables.entries()) {
    const verbs = isObj(cmd) ? Object.keys(cmd) : [];
    if (verbs.length === 1 && verbs[0] === 'metainfo') continue;
    const verb = verbs[0] ?? '';
    const body = isObj(cmd) ? cmd[verb] : undefined;
    const kinds = isObj(body) ? Object.keys(body) : [];
    const kind = kinds[0] ?? '';
    const obj = isObj(body) ? body[kind] : undefined;
    const table = isObj(obj) ? (kind === 'table' ? obj.name : obj.table) : undefined;
    const family = isObj(obj) ? obj.family : undefined;
    if (verbs.length !== 1 || !VERBS.includes(verb) || kinds.length !== 1 || !isObj(obj) || typeof table !== 'string' || typeof family !== 'string' || !FAMILIES.includes(family))
      return fail(`command ${i} (${JSON.stringify(cmd).slice(0, 120)}) is not {add|create|insert|replace|delete|flush: {kind: {family, table, …}}} for one table`);
    if (!table.startsWith(m.prefix)) return fail(`command ${i} touches table ${family} ${table}, which is not ours`);
    out.push({ verb, kind, obj, family: family as NftFamily, table });
  }
  return out;
}

/**
 * Turns a table spec into its one-transaction batch, checking that every object belongs to that
 * table. The leading `add table` makes the `delete table` valid when the table is new.
 */
export function tableBatch(m: Marks, op: string, ns: NsRef, spec: NftTableSpec): NftJson | KernelError {
  const ref = { family: spec.family, name: spec.name };
  const bad = checkTableRef(op, ns, ref);
  if (bad) return bad;
  if (!spec.name.startsWith(m.prefix)) return foreignTable(op, ns, ref);
  const table = { table: { family: spec.family, name: spec.name } };
  const cmds: NftCommand[] = [{ add: table }, { delete: table }, { add: table }];
  for (const [i, o] of spec.objects.entries()) {
    const kinds = isObj(o) ? Object.keys(o) : [];
    const kind = kinds[0] ?? '';
    const body = isObj(o) ? o[kind] : undefined;
    if (kinds.length !== 1 || !isObj(body) || kind === 'table' || body.family !== spec.family || body.table !== spec.name)
      return kernelError('invalid', op, ns, `object ${i} (${JSON.stringify(o).slice(0, 120)}) is not {kind: {family: ${JSON.stringify(spec.family)}, table: ${JSON.stringify(spec.name)}, …}}`, {
        path: `${nsLabel(ns)}/nft/${spec.family}/${spec.name}`,
        remedy: 'nothing was applied; every object of the spec must name the table being applied',
      });
    cmds.push({ add: { [kind]: body } });
  }
  return { nftables: cmds };
}

/** Reads the counters out of a table listing (named counters first, then rule counters). */
export function countersOf(listing: NftJson): NftCounter[] {
  const named: NftCounter[] = [];
  const rules: NftCounter[] = [];
  for (const entry of listing.nftables) {
    const c = entry.counter;
    if (isObj(c) && typeof c.name === 'string') named.push({ kind: 'named', name: c.name, packets: Number(c.packets ?? 0), bytes: Number(c.bytes ?? 0) });
    const r = entry.rule;
    if (!isObj(r) || !Array.isArray(r.expr)) continue;
    for (const stmt of r.expr as readonly Json[]) {
      const rc = isObj(stmt) ? stmt.counter : undefined;
      if (!isObj(rc)) continue;
      const chain = String(r.chain);
      const handle = Number(r.handle ?? 0);
      rules.push({ kind: 'rule', name: typeof r.comment === 'string' ? r.comment : `${chain}#${handle}`, chain, handle, packets: Number(rc.packets ?? 0), bytes: Number(rc.bytes ?? 0) });
    }
  }
  return [...named.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)), ...rules];
}

/**
 * A listing without what changes on its own: handles removed and counter values zeroed. Two
 * listings of the same ruleset compare equal after this, which is how drift is detected.
 */
export function stableListing(listing: NftJson): NftJson {
  const strip = (v: Json, inCounter: boolean): Json => {
    if (Array.isArray(v)) return (v as readonly Json[]).map((x) => strip(x, false));
    if (!isObj(v)) return v;
    const out: { [key: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === 'handle') continue;
      if ((k === 'packets' || k === 'bytes') && inCounter) out[k] = 0;
      else out[k] = strip(x, k === 'counter');
    }
    return out;
  };
  return { nftables: listing.nftables.filter((c) => !('metainfo' in c)).map((c) => strip(c, false) as NftCommand) };
}

/** Maps an nft failure: its JSON parser's complaints are invalid requests. */
function nftError(op: string, ns: NsRef, e: ExecError, path: string): KernelError {
  const code = e.code === 'exec_not_found' ? 'unsupported' : /Unknown|Parsing|syntax error|Invalid|invalid/.test(e.stderr) && classify(e.stderr) !== 'not_found' ? 'invalid' : classify(e.stderr);
  const remedies: Record<string, string> = {
    not_found: 'the batch refers to a table, chain or set that does not exist (create it earlier in the same batch); nothing was applied',
    exists: 'a `create` met an existing object (use `add`, which is idempotent); nothing was applied',
    invalid: 'nft or the kernel refused a command; nothing was applied; check it with `nft -j -c -f`',
  };
  return kernelError(code, op, ns, e.code === 'exec_not_found' ? e.message : reasonOf(e), { path, cause: e, ...(remedies[code] ? { remedy: remedies[code] } : {}) });
}

/** Checks a table reference. */
export function checkTableRef(op: string, ns: NsRef, t: NftTableRef): KernelError | null {
  return firstInvalid(
    op,
    ns,
    `${nsLabel(ns)}/nft/${t.family}/${t.name}`,
    ns === null ? null : checkNetnsName(ns),
    FAMILIES.includes(t.family) ? null : `nft family ${JSON.stringify(t.family)} must be one of ${FAMILIES.join(', ')}`,
    /^[A-Za-z][A-Za-z0-9_.-]{0,255}$/.test(t.name) ? null : `nft table name ${JSON.stringify(t.name)} must start with a letter and use A–Z a–z 0–9 _ . -`,
  );
}

/** The refusal to touch a table that is not ours. */
export function foreignTable(op: string, ns: NsRef, t: NftTableRef): KernelError {
  return kernelError('invalid', op, ns, `table ${t.family} ${t.name} does not carry our prefix`, {
    path: `${nsLabel(ns)}/nft/${t.family}/${t.name}`,
    remedy: 'anyedge only deletes its own tables; remove it by hand if it really should go',
  });
}

/** Table order in lists. */
export function compareTables(a: NftTableRef, b: NftTableRef): number {
  return a.family === b.family ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.family < b.family ? -1 : 1;
}

/**
 * Runs `nft -j -f FILE` inside the namespace with the batch in a private temporary file: one
 * batch, one transaction. Not `-f -`: nft reads `-` by opening /dev/stdin, and node gives a
 * child a socket, not a pipe, as stdin, which Linux refuses to open ("No such device or
 * address"). The file is mode 0600 in a fresh mkdtemp directory and removed afterwards.
 */
async function nftFile(ns: NsRef, batch: NftJson): Promise<Result<ExecOutput, ExecError>> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-nft-'));
  try {
    const file = join(dir, 'batch.json');
    await writeFile(file, JSON.stringify(batch), { mode: 0o600 });
    return await inNs(ns, 'nft', ['-j', '-f', file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The Linux driver: `nft -j` inside the namespace. */
export function linuxNft(m: Marks): NftApi {
  const nft = (ns: NsRef, args: string[], input?: string) => inNs(ns, 'nft', ['-j', ...args], input);
  const api: NftApi = {
    async apply(ns, batch) {
      const op = `nft -j -f (${Array.isArray(batch?.nftables) ? batch.nftables.length : 0} commands)`;
      if (ns !== null) {
        const bad = firstInvalid(op, ns, undefined, checkNetnsName(ns));
        if (bad) return err(bad);
      }
      const cmds = parseBatch(m, op, ns, batch);
      if ('code' in cmds) return err(cmds);
      if (cmds.length === 0) return ok(undefined);
      const res = await nftFile(ns, { nftables: batch.nftables.filter((c) => !('metainfo' in c)) });
      return res.ok ? ok(undefined) : err(nftError(op, ns, res.error, `${nsLabel(ns)}/nft`));
    },

    async applyTable(ns, spec) {
      const op = `nft apply table ${spec.family} ${spec.name}`;
      const batch = tableBatch(m, op, ns, spec);
      if ('code' in batch) return err(batch);
      const res = await api.apply(ns, batch);
      return res.ok ? res : err({ ...res.error, op, message: res.error.message.replace(/^nft -j -f \(\d+ commands\)/, op) });
    },

    async counters(ns, t) {
      const res = await api.listTable(ns, t);
      return res.ok ? ok(countersOf(res.value)) : res;
    },

    async listTable(ns, t) {
      const op = `nft list table ${t.family} ${t.name}`;
      const bad = checkTableRef(op, ns, t);
      if (bad) return err(bad);
      const res = await nft(ns, ['list', 'table', t.family, t.name]);
      if (!res.ok) return err(nftError(op, ns, res.error, `${nsLabel(ns)}/nft/${t.family}/${t.name}`));
      try {
        const v = JSON.parse(res.value.stdout) as NftJson;
        return ok({ nftables: v.nftables.filter((c) => !('metainfo' in c)) });
      } catch (e) {
        return err(kernelError('failed', op, ns, `unreadable nft output: ${(e as Error).message}`, { remedy: 'report this with the nft version (nft --version)', cause: e as Error }));
      }
    },

    async listTables(ns) {
      const op = 'nft list tables';
      if (ns !== null) {
        const bad = firstInvalid(op, ns, undefined, checkNetnsName(ns));
        if (bad) return err(bad);
      }
      const res = await nft(ns, ['list', 'tables']);
      if (!res.ok) return err(nftError(op, ns, res.error, `${nsLabel(ns)}/nft`));
      try {
        const v = JSON.parse(res.value.stdout) as { nftables: Array<{ table?: { family: NftFamily; name: string } }> };
        const tables = v.nftables.flatMap((c) => (c.table ? [{ family: c.table.family, name: c.table.name, owned: c.table.name.startsWith(m.prefix) }] : []));
        return ok(tables.sort(compareTables));
      } catch (e) {
        return err(kernelError('failed', op, ns, `unreadable nft output: ${(e as Error).message}`, { remedy: 'report this with the nft version (nft --version)', cause: e as Error }));
      }
    },

    async deleteTable(ns, t) {
      const op = `nft delete table ${t.family} ${t.name}`;
      const bad = checkTableRef(op, ns, t);
      if (bad) return err(bad);
      if (!t.name.startsWith(m.prefix)) return err(foreignTable(op, ns, t));
      // nft 1.0.6 has no `destroy` (delete-if-exists); a missing table answers ENOENT, which is
      // success here.
      const res = await nftFile(ns, { nftables: [{ delete: { table: { family: t.family, name: t.name } } }] });
      if (res.ok) return ok(undefined);
      const e = nftError(op, ns, res.error, `${nsLabel(ns)}/nft/${t.family}/${t.name}`);
      return e.code === 'not_found' ? ok(undefined) : err(e);
    },

    async prune(ns, keep) {
      return pruneTables(api, ns, keep);
    },
  };
  return api;
}

/** Prune over any NftApi. */
export async function pruneTables(api: NftApi, ns: NsRef, keep: readonly NftTableRef[]): Promise<Result<NftTableRef[], KernelError>> {
  const all = await api.listTables(ns);
  if (!all.ok) return all;
  const gone: NftTableRef[] = [];
  for (const t of all.value) {
    if (!t.owned || keep.some((k) => k.family === t.family && k.name === t.name)) continue;
    const res = await api.deleteTable(ns, t);
    if (!res.ok) return res;
    gone.push({ family: t.family, name: t.name });
  }
  return ok(gone);
}
