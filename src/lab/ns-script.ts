/**
 * Runs a small Node script (the lab's TCP clients) inside a namespace and takes its one JSON
 * result from stdout. The script's argument is JSON text; stderr is kept for the error message.
 */
import { spawn } from 'node:child_process';

/** What to run: `ns` null runs it in this process's namespace; `who` names it in errors. */
export interface NsScript {
  readonly ns: string | null;
  readonly script: string;
  readonly args: string;
  readonly who: string;
}

/** Resolves with the script's parsed stdout; rejects when it cannot run or prints no JSON. */
export function runJsonScript<T>(o: NsScript): Promise<T> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, '-e', o.script, o.args];
    const [cmd, ...rest] = o.ns === null ? argv : ['ip', 'netns', 'exec', o.ns, ...argv];
    const child = spawn(cmd as string, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errs = '';
    const where = `${o.who} in ${o.ns ?? 'this namespace'}`;
    child.stdout.on('data', (b: Buffer) => void (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => void (errs += b.toString()));
    child.on('error', (e) => reject(new Error(`${where}: ${e.message}`, { cause: e })));
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        reject(new Error(`${where} exited ${code} without a result: ${errs.trim() || out.trim() || '(no output)'}`));
      }
    });
  });
}
