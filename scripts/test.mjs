#!/usr/bin/env node
// Runs every *.test.ts under src/ (and the files or folders given as arguments) with node's test
// runner through tsx. Node 20's --test takes no globs, so the file list is collected here.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;

function collect(path, out) {
  const st = statSync(path);
  if (st.isFile()) {
    if (path.endsWith('.test.ts')) out.push(path);
    return out;
  }
  for (const name of readdirSync(path).sort()) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    collect(join(path, name), out);
  }
  return out;
}

const targets = process.argv.slice(2);
const files = (targets.length ? targets : ['src']).flatMap((t) => collect(join(root, t), []));
if (files.length === 0) {
  console.error('test: no *.test.ts files found under ' + (targets.join(' ') || 'src'));
  process.exit(2);
}
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', ...files.map((f) => relative(root, f))];
const res = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
process.exit(res.status ?? 1);
