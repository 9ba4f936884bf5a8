/**
 * Where commands write. Commands take an `Io` instead of touching `process` so that their output
 * is a value a test can read; `main` passes the process streams.
 */
export interface Io {
  /** Normal output (stdout). */
  out(text: string): void;
  /** Errors and diagnostics (stderr). */
  err(text: string): void;
}

/** The process's stdout and stderr. */
export const processIo: Io = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};
