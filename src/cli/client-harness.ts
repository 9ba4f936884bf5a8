/**
 * End-to-end harness for the API commands: the real API (`createApi`) served on 127.0.0.1 port 0
 * over an LMDB store in a fresh temporary directory, an operator token, and `run(...)`, which calls
 * `main` in-process with captured output and a scripted terminal (TTY or not, prompt answers, and
 * a hook that runs while the prompt is open — the moment a race happens in real life).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { createApi } from '../api/app.ts';
import { serveApi } from '../api/serve.ts';
import { openStore } from '../store/open.ts';
import type { ConfigStore } from '../store/types.ts';
import { main } from './main.ts';
import type { TermIo, Terminal } from './terminal.ts';

/** What one run printed and returned. */
export interface RunResult {
  readonly code: number;
  readonly out: string;
  readonly err: string;
  /** The prompts shown. */
  readonly asked: readonly string[];
}

/** How the scripted terminal behaves in one run. */
export interface RunOptions {
  /** stdin (and, unless `outTTY` says otherwise, stdout/stderr) are terminals. */
  readonly tty?: boolean;
  /** Answers to prompts, in order; a prompt past the end gets end-of-input. */
  readonly answers?: readonly string[];
  /** Runs while a prompt is open, before it is answered. */
  readonly whilePrompting?: () => Promise<void>;
  /** Extra environment (ANYEDGE_TOKEN is set to the operator token unless given here). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Leave out `--api URL` (to test ANYEDGE_API or the default). */
  readonly noApiFlag?: boolean;
}

/** A running API over a throwaway store. */
export interface ApiLab {
  readonly url: string;
  readonly store: ConfigStore;
  /** An operator token the API knows. */
  readonly token: string;
  /** Runs `anyedge ...args --api URL` in-process. */
  run(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

/** Starts the API over a new LMDB store; `close()` stops it and removes the directory. */
export async function startApiLab(): Promise<ApiLab> {
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-cli-e2e-'));
  const opened = await openStore({ kind: 'lmdb', path: dir, noSync: true });
  if (!opened.ok) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`store: ${opened.error.message}`);
  }
  const store = opened.value;
  const token = 'ae_' + randomBytes(32).toString('base64url');
  const hash = 'sha256:' + createHash('sha256').update(token, 'utf8').digest('hex');
  let served: Awaited<ReturnType<typeof serveApi>>;
  try {
    served = await serveApi(createApi({ store, operatorTokenHashes: [hash] }), { host: '127.0.0.1', port: 0 });
  } catch (e) {
    await store.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }

  async function run(args: readonly string[], o: RunOptions = {}): Promise<RunResult> {
    const out: string[] = [];
    const err: string[] = [];
    const asked: string[] = [];
    const answers = [...(o.answers ?? [])];
    const term: Terminal = {
      stdinIsTTY: o.tty === true,
      stdoutIsTTY: false,
      stderrIsTTY: false,
      env: { ANYEDGE_TOKEN: token, ...o.env },
      ask: async (q) => {
        asked.push(q);
        if (o.whilePrompting) await o.whilePrompting();
        return answers.shift();
      },
    };
    const io: TermIo = { out: (s) => void out.push(s), err: (s) => void err.push(s), term };
    const code = await main(['node', 'anyedge', ...args, ...(o.noApiFlag ? [] : ['--api', served.url])], io);
    return { code, out: out.join(''), err: err.join(''), asked };
  }

  return {
    url: served.url,
    store,
    token,
    run,
    close: async () => {
      try {
        await served.close();
        await store.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
