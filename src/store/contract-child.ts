/**
 * Child process of the contract suite's multi-process test (`contract.ts`). Not a test file: it is
 * started as `node --import tsx contract-child.ts '<json>'`, opens the store the parent names
 * through the backend's child module (`openForChild(spec)`: `lmdb-harness.ts` opens the LMDB
 * directory, `etcd-harness.ts` the same namespace on the same etcd endpoints), and plays one role:
 *
 * - `writer`: waits for `go` on stdin, then `count` times increments `/mp/counter` by
 *   compare-and-set with retry and puts `/mp/w<id>/k<i>`; prints `{"done":true,"retries":n}`.
 * - `watcher`: watches everything after `after`, prints `{"ready":true}` once the watch runs, and
 *   when told `{"until":R}` on stdin and it has seen revision R, prints what it saw.
 * - `resumer`: a consumer that persists its progress the way an agent must: every batch is
 *   appended to `file` as one JSON line `{r, e}` (revision, events), so the events and the
 *   revision they bring the consumer to are saved together. On start it resumes after the last
 *   complete line (dropping a line torn by a kill) and prints `{"ready":true,"after":n}`; after
 *   each batch it prints `{"rev":n}`; told `{"until":R}` it prints `{"done":true}` once past R.
 *
 * Protocol: one JSON object per line on stdout; a failure prints `{"error":…}` and exits 1.
 */
import { appendFileSync, readFileSync, truncateSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { ABSENT, type ConfigStore, type JsonValue } from './types.ts';

/** What the parent passes as the one argument (JSON). */
export interface ChildArgs {
  /** Absolute path of the backend's child module, which exports `openForChild(spec)`. */
  readonly module: string;
  readonly spec: JsonValue;
  readonly role: 'writer' | 'watcher' | 'resumer';
  /** writer: its id, used in its keys. */
  readonly id?: number;
  /** writer: increments and distinct keys to write. */
  readonly count?: number;
  /** watcher, resumer: watch revisions after this one (resumer: when `file` has no line yet). */
  readonly after?: number;
  /** resumer: the file it persists batches to. */
  readonly file?: string;
  /** resumer: the prefix it watches. */
  readonly prefix?: string;
  /**
   * resumer: time each batch takes to apply before it is saved, in ms (an agent programming the
   * kernel), so the parent can kill it with batches still unread and one possibly half applied.
   */
  readonly applyMs?: number;
}

/** One line of a resumer's file: a batch's revision and its events as `put /k` / `delete /k`. */
export interface ResumerLine {
  readonly r: number;
  readonly e: readonly string[];
}

/** What the watcher prints at the end. */
export interface WatcherReport {
  /** Revision of every batch, in arrival order. */
  readonly revisions: number[];
  /** Values of `/mp/counter` put events, in arrival order. */
  readonly counterValues: number[];
  /** Keys of other put events, in arrival order. */
  readonly keys: string[];
}

function say(obj: unknown): Promise<void> {
  return new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', () => resolve()));
}

async function fail(error: unknown): Promise<never> {
  await say({ error: error instanceof Error ? error.stack : error });
  process.exit(1);
}

/** Increments `key` by compare-and-set, retrying on conflict; returns the retries and the write's revision. */
async function increment(store: ConfigStore, key: string): Promise<{ retries: number; revision: number }> {
  for (let retries = 0; ; retries++) {
    const cur = await store.get(key);
    if (!cur.ok) return fail(cur.error);
    const n = cur.value ? (cur.value.value as number) : 0;
    const r = await store.put(key, n + 1, cur.value ? { modRevision: cur.value.modRevision } : ABSENT);
    if (r.ok) return { retries, revision: r.value.revision };
    if (r.error.code !== 'cas_failed') return fail(r.error);
  }
}

async function writer(store: ConfigStore, args: ChildArgs, lines: AsyncIterator<string>): Promise<void> {
  await say({ ready: true });
  await lines.next(); // "go": both writers start together, so they really contend
  let retries = 0;
  // Revision of every successful write, so the parent can prove no two writes shared one.
  const revisions: number[] = [];
  for (let i = 0; i < (args.count ?? 0); i++) {
    const inc = await increment(store, '/mp/counter');
    retries += inc.retries;
    revisions.push(inc.revision);
    const r = await store.put(`/mp/w${args.id}/k${i}`, { i, by: args.id });
    if (!r.ok) return fail(r.error);
    revisions.push(r.value.revision);
  }
  await say({ done: true, retries, revisions });
}

/**
 * Reads the resumer's file: its complete lines, and the revision to resume after. A last line
 * without its newline was torn by a kill mid-write: it is cut off, as if never written, which is
 * right because its revision was not saved either.
 */
function loadProgress(file: string, fallback: number): { lines: ResumerLine[]; after: number } {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  if (complete.length !== text.length) truncateSync(file, Buffer.byteLength(complete));
  const lines = complete
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ResumerLine);
  return { lines, after: lines.at(-1)?.r ?? fallback };
}

async function resumer(store: ConfigStore, args: ChildArgs, lines: AsyncIterator<string>): Promise<void> {
  const file = args.file ?? '';
  const { after } = loadProgress(file, args.after ?? 0);
  let until = Infinity;
  let last = after;
  const w = store.watch(args.prefix ?? '', after);
  let finished = false;
  const finish = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    await say({ done: true });
    w.close();
  };
  void (async () => {
    const line = await lines.next();
    if (line.done) return; // the parent killed us or went away
    until = (JSON.parse(line.value) as { until: number }).until;
    if (last >= until) await finish();
  })();
  await say({ ready: true, after });
  for await (const item of w) {
    if (!item.ok) return fail(item.error);
    const b = item.value;
    if (args.applyMs) await new Promise((resolve) => setTimeout(resolve, args.applyMs));
    const record: ResumerLine = { r: b.revision, e: b.events.map((e) => `${e.type} ${e.key}`) };
    // One write(2) of one line: the batch and its revision are saved together or (torn) not at all.
    appendFileSync(file, JSON.stringify(record) + '\n');
    last = b.revision;
    await say({ rev: last });
    if (last >= until) return finish();
  }
}

async function watcher(store: ConfigStore, args: ChildArgs, lines: AsyncIterator<string>): Promise<void> {
  const report: WatcherReport = { revisions: [], counterValues: [], keys: [] };
  let until = Infinity;
  let last = args.after ?? 0;
  const w = store.watch('', args.after ?? 0);
  let finished = false;
  // Report first, then close the watch: the loop below ends and main() closes the store.
  const finish = async (): Promise<void> => {
    if (finished) return;
    finished = true;
    await say({ report });
    w.close();
  };
  void (async () => {
    const line = await lines.next();
    if (line.done) return fail('stdin closed before "until"');
    until = (JSON.parse(line.value) as { until: number }).until;
    if (last >= until) await finish();
  })();
  await say({ ready: true });
  for await (const item of w) {
    if (!item.ok) return fail(item.error);
    const b = item.value;
    report.revisions.push(b.revision);
    last = b.revision;
    for (const e of b.events) {
      if (e.type !== 'put') continue;
      if (e.key === '/mp/counter') report.counterValues.push(e.value as number);
      else report.keys.push(e.key);
    }
    if (last >= until) return finish();
  }
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as ChildArgs;
  const mod = (await import(pathToFileURL(args.module).href)) as { openForChild(spec: JsonValue): Promise<ConfigStore> };
  const store = await mod.openForChild(args.spec);
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  if (args.role === 'writer') await writer(store, args, lines);
  else if (args.role === 'resumer') await resumer(store, args, lines);
  else await watcher(store, args, lines);
  await store.close();
  process.exit(0);
}

main().catch(fail);
