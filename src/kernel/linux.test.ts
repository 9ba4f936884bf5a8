/**
 * The contract suite on the real kernel. Root only (skipped with the reason otherwise, a failure
 * under CI). Everything happens in namespaces this run creates, named with a prefix unique to
 * the process (`aeT` + pid in base 36 + a random letter, 8 characters, so link names built on it
 * stay within 15); `after` deletes every namespace carrying it, and the host's namespace is
 * never changed.
 */
import { after } from 'node:test';
import { run } from './exec.ts';
import { contractSuite, type Backend } from './contract.ts';
import { linuxKernel } from './index.ts';
import { marksWith } from './marks.ts';
import { needs } from '../testkit/needs.ts';

const tag = process.pid.toString(36).padStart(4, '0').slice(-4) + String.fromCharCode(97 + Math.floor(Math.random() * 26));
const prefix = `aeT${tag}`;
/** Foreign namespaces: same run, but a prefix our marks do not match. */
const foreignPrefix = `aeF${tag}`;

async function sh(cmd: string, args: string[]): Promise<void> {
  const res = await run(cmd, args);
  if (!res.ok) throw new Error(`test setup failed: ${res.error.message}`);
}

/** Deletes every namespace of this run; veth pairs go with their namespaces. */
async function cleanup(): Promise<void> {
  const res = await run('ip', ['-j', 'netns', 'list']);
  if (!res.ok) return;
  const names = res.value.stdout.trim() === '' ? [] : (JSON.parse(res.value.stdout) as { name: string }[]).map((n) => n.name);
  for (const name of names) if (name.startsWith(prefix) || name.startsWith(foreignPrefix)) await run('ip', ['netns', 'delete', name]);
}

after(cleanup);

contractSuite({
  name: 'linux',
  available: (t) => needs(t, { root: true, tools: ['ip', 'nft', 'ping'] }),
  make(): Backend {
    return {
      kernel: linuxKernel(marksWith({ prefix })),
      foreignNetnsName: (t) => `${foreignPrefix}-${t}`,
      foreign: {
        netns: (name) => sh('ip', ['netns', 'add', name]),
        veth: (ns, a, b) => sh('ip', ['-n', ns, 'link', 'add', a, 'type', 'veth', 'peer', 'name', b]),
        route: (ns, r) =>
          sh('ip', ['-n', ns, 'route', 'add', r.dst, 'dev', r.dev, 'table', String(r.table), 'proto', String(r.protocol), ...(r.metric !== undefined ? ['metric', String(r.metric)] : [])]),
        rule: (ns, r) => sh('ip', ['-n', ns, `-${r.family}`, 'rule', 'add', 'pref', String(r.priority), 'lookup', String(r.table)]),
        nftTable: (ns, t) => sh('ip', ['netns', 'exec', ns, 'nft', 'add', 'table', t.family, t.name]),
      },
      async ping(ns, addr, count) {
        const res = await run('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.2', '-W', '1', addr]);
        return res.ok;
      },
      cleanup,
    };
  },
});
