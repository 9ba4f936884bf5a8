/**
 * Runs every benchmark in bench/ (files named *.bench.ts, or those given as arguments), one at a
 * time so they do not compete for the two cores, and prints what each printed. Record the numbers
 * in bench/RESULTS.md with the machine and the date.
 */
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

const dir = new URL('.', import.meta.url).pathname;
const wanted = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();

console.log(`# anyedge benchmarks — ${new Date().toISOString()} — node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}\n`);
let failed = 0;
for (const f of files) {
  console.log(`## ${f}\n`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${f}`], { stdio: 'inherit' });
  if (res.status !== 0) {
    failed++;
    console.log(`\n${f} failed with exit code ${res.status}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
