import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portBlocks } from './ports.ts';

const covered = (lo: number, hi: number) => portBlocks(lo, hi).flatMap((b) => Array.from({ length: 2 ** (16 - b.bits) }, (_, i) => b.port + i));

test('portBlocks: a single port is one /16 block, the whole range one /0 block', () => {
  assert.deepEqual(portBlocks(80, 80), [{ port: 80, bits: 16 }]);
  assert.deepEqual(portBlocks(0, 65535), [{ port: 0, bits: 0 }]);
});

test('portBlocks: 1024-65535 is six aligned blocks', () => {
  assert.deepEqual(portBlocks(1024, 65535), [
    { port: 1024, bits: 6 },
    { port: 2048, bits: 5 },
    { port: 4096, bits: 4 },
    { port: 8192, bits: 3 },
    { port: 16384, bits: 2 },
    { port: 32768, bits: 1 },
  ]);
});

test('portBlocks covers exactly the range, with aligned blocks, for awkward ranges', () => {
  for (const [lo, hi] of [[20, 21], [1, 65534], [3, 17], [1000, 1999], [65535, 65535], [0, 0]] as const) {
    const ports = covered(lo, hi);
    assert.deepEqual(ports, Array.from({ length: hi - lo + 1 }, (_, i) => lo + i), `${lo}-${hi}`);
    for (const b of portBlocks(lo, hi)) assert.equal(b.port % 2 ** (16 - b.bits), 0, `${lo}-${hi}: block ${b.port}/${b.bits} aligned`);
  }
});
