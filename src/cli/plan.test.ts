// `anyedge plan` and `anyedge apply-local` through the real bin: usage errors, config errors, and
// (as root) a full apply into a test namespace standing in for the server, then "nothing to do".
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needs } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { linuxKernel, marksWith } from '../kernel/index.ts';
import { edgePins, unloadEdge } from '../kernel/bpf/loader.ts';
import { missingObjects } from '../kernel/bpf/objects.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'anyedge.mjs');

function anyedge(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('plan: --server must be DC/SERVER (exit 2); an unknown server names its path (exit 1); a missing file is exit 2', () => {
  const a = anyedge('plan', '-f', 'examples/acme.yaml', '--server', 'ams');
  assert.equal(a.code, 2);
  assert.match(a.err, /give it as DC\/SERVER/);
  const b = anyedge('plan', '-f', 'examples/acme.yaml', '--server', 'ams/s9');
  assert.equal(b.code, 1);
  assert.match(b.err, /^dcs\/ams\/servers\/s9: no server s9/);
  const c = anyedge('plan', '-f', 'examples/nosuch.yaml', '--server', 'ams/s1');
  assert.equal(c.code, 2);
  assert.match(c.err, /cannot read/);
});

const lab = new NetLab('P');
const prefix = `p${(process.pid % 10000).toString(36)}s`;
const bpfName = `${lab.prefix}cli`;

after(async () => {
  await linuxKernel(marksWith({ prefix })).netns.prune([]);
  await lab.destroy();
  await unloadEdge(edgePins(bpfName));
});

test('apply-local provisions the example into a namespace playing the server; then plan says nothing to do', async (t) => {
  if (!needs(t, { root: true, tools: ['ip', 'tc', 'bpftool', 'nsenter', 'nft'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  await lab.addNs('s');
  await lab.addNs('x');
  await lab.veth('s', 'eth0', 'x', 'eth0');
  const args = ['-f', 'examples/acme.yaml', '--server', 'ams/s1', '--netns', lab.ns('s'), '--prefix', prefix, '--bpf', bpfName];
  const before = anyedge('plan', ...args);
  assert.equal(before.code, 1, 'plan does not load programs');
  assert.match(before.err, /not loaded/);
  const applied = anyedge('apply-local', ...args);
  assert.equal(applied.code, 0, applied.err);
  assert.match(applied.out, new RegExp(`^\\+ tenants/acme/netns: netns add ${prefix}-acme$`, 'm'));
  assert.match(applied.out, /^applied \d+ steps$/m);
  const again = anyedge('plan', ...args);
  assert.equal(again.code, 0, again.err);
  assert.equal(again.out, 'nothing to do\n');
});
