import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probeTargets } from './targets.ts';
import { acmeConfig } from './fixtures.ts';
import { compileServer } from '../compile/server.ts';
import { marksWith } from '../kernel/marks.ts';

test('probe targets: acme\'s tunnel (inner 192.0.2.252/31) is probed in its namespace; globex\'s (no inner address) is not', () => {
  const d = compileServer(acmeConfig(), { dc: 'ams', server: 's1' }, { marks: marksWith({ prefix: 'ae' }) });
  assert.ok(d.ok);
  assert.deepEqual(
    probeTargets(d.value).map((x) => x.target),
    [{ path: 'tenants/acme/tunnels/gre1', netns: 'ae-acme', device: 'ae-gre1', source: '192.0.2.252', peer: '192.0.2.253' }],
  );
});
