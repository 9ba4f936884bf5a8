/**
 * What the API commands need from the terminal besides `Io`: whether each stream is a TTY (to
 * colour, to draw progress bars, and to know whether a person can answer a prompt), a way to ask
 * that person, and the environment (`ANYEDGE_API`, `ANYEDGE_TOKEN`). A test hands these in on its
 * `Io` as `term`, so `main(argv, io)` stays the only entry point and nothing reads `process`
 * behind the test's back.
 */
import { createInterface } from 'node:readline/promises';
import type { Io } from './io.ts';
import { processIo } from './io.ts';

/** The terminal of one command run. */
export interface Terminal {
  /** A person can type answers on stdin. Without it, confirmations need `--yes`. */
  readonly stdinIsTTY: boolean;
  /** stdout is a terminal: human output may be coloured. */
  readonly stdoutIsTTY: boolean;
  /** stderr is a terminal: progress is drawn as a bar there; otherwise printed as lines. */
  readonly stderrIsTTY: boolean;
  /** Environment variables (`process.env` for the real terminal). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Shows `question` and reads one line of answer; undefined when stdin ended. */
  ask(question: string): Promise<string | undefined>;
  /** The stream progress bars draw on (stderr); only used when `stderrIsTTY`. */
  readonly progressStream?: NodeJS.WritableStream;
}

/** An `Io` that carries its terminal (tests, embedding programs). */
export interface TermIo extends Io {
  readonly term?: Terminal;
}

/** The process's own terminal. */
export function processTerminal(): Terminal {
  return {
    stdinIsTTY: process.stdin.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
    progressStream: process.stderr,
    async ask(question) {
      // The question goes to stderr so that stdout stays clean for `--json` and pipes.
      const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY === true });
      try {
        return await new Promise<string | undefined>((resolve) => {
          rl.once('close', () => resolve(undefined));
          rl.question(question).then(resolve, () => resolve(undefined));
        });
      } finally {
        rl.close();
      }
    },
  };
}

/** No TTY anywhere, no environment: what a test or a pipe gets unless it says otherwise. */
export const NO_TERMINAL: Terminal = {
  stdinIsTTY: false,
  stdoutIsTTY: false,
  stderrIsTTY: false,
  env: {},
  ask: async () => undefined,
};

/**
 * The terminal behind `io`: the one it carries, the process's own for the process streams, and
 * otherwise none (an `Io` that captures output is not a person at a terminal).
 */
export function terminalOf(io: Io): Terminal {
  const carried = (io as TermIo).term;
  if (carried) return carried;
  return io === processIo ? processTerminal() : NO_TERMINAL;
}

/** Whether an answer to a `[y/N]` prompt is yes. Anything else, including nothing, is no. */
export function isYes(answer: string | undefined): boolean {
  return answer !== undefined && /^\s*(y|yes)\s*$/i.test(answer);
}

/** ANSI colours, used only when the stream is a TTY. */
export type Colour = 'red' | 'green' | 'yellow' | 'bold' | 'dim';

const CODES: Record<Colour, [number, number]> = { red: [31, 39], green: [32, 39], yellow: [33, 39], bold: [1, 22], dim: [2, 22] };

/** `text` in `colour` when `on`, else unchanged. */
export function paint(on: boolean, colour: Colour, text: string): string {
  if (!on) return text;
  const [open, close] = CODES[colour];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}
