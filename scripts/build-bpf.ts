/**
 * Builds the eBPF programs in bpf/ into bpf/out/*.o with clang. Run by scripts/setup.sh and CI;
 * `npm run build:bpf` by hand. Fails loudly when clang or the libbpf headers are missing.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'bpf');
const out = join(src, 'out');
mkdirSync(out, { recursive: true });

// Debian keeps asm/types.h under the multiarch include folder, which clang -target bpf does not
// search on its own.
const arch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim() || 'x86_64-linux-gnu';

let failed = 0;
for (const file of readdirSync(src).filter((f) => f.endsWith('.c')).sort()) {
  const obj = join(out, file.replace(/\.c$/, '.o'));
  const args = ['-O2', '-g', '-Wall', '-Werror', '-target', 'bpf', `-I/usr/include/${arch}`, '-c', join(src, file), '-o', obj];
  const res = spawnSync('clang', args, { stdio: 'inherit' });
  if (res.error) {
    console.error(`build-bpf: cannot run clang (${res.error.message}); install clang and libbpf-dev (scripts/setup.sh)`);
    process.exit(1);
  }
  if (res.status !== 0) failed++;
  else console.log(`build-bpf: ${file} → bpf/out/${file.replace(/\.c$/, '.o')}`);
}
process.exit(failed ? 1 : 0);
