/**
 * Parsing `birdc show protocols` (text captured from BIRD 2.0.12), and every generated BIRD
 * configuration accepted by `bird -p` (BIRD's own parser) when BIRD is installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from '../testkit/needs.ts';
import { run } from '../kernel/exec.ts';
import { parseProtocols } from './bgp.ts';
import { planLab } from './topology.ts';

const SHOW = `BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     14:40:01.002  
kernel1    Kernel     master4    up     14:40:01.002  
anycast    Static     master4    up     14:40:01.002  
lon        BGP        ---        up     14:40:02.113  Established   
nyc        BGP        ---        start  14:40:01.002  Active        Socket: Connection refused
`;

test('show protocols: names, protocol, state and info; banner and header skipped', () => {
  assert.deepEqual(parseProtocols(SHOW), [
    { name: 'device1', proto: 'Device', state: 'up', info: '' },
    { name: 'kernel1', proto: 'Kernel', state: 'up', info: '' },
    { name: 'anycast', proto: 'Static', state: 'up', info: '' },
    { name: 'lon', proto: 'BGP', state: 'up', info: 'Established' },
    { name: 'nyc', proto: 'BGP', state: 'start', info: 'Active Socket: Connection refused' },
  ]);
  assert.deepEqual(parseProtocols(''), []);
});

test('bird -p accepts every generated configuration (3×3 and 4×8)', async (t) => {
  if (!needs(t, { tools: ['bird'] })) return;
  const dir = await mkdtemp(join(tmpdir(), 'anyedge-bird-'));
  try {
    for (const size of [{ dcs: 3, servers: 3, cities: 3 }, { dcs: 4, servers: 8, cities: 4 }]) {
      const p = planLab('t9', size);
      if (!p.ok) assert.fail(p.error.message);
      for (const b of p.value.bird) {
        const file = join(dir, `${b.node}.conf`);
        await writeFile(file, b.config);
        const r = await run('bird', ['-p', '-c', file]);
        assert.ok(r.ok, `${b.node}: ${r.ok ? '' : r.error.message}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
