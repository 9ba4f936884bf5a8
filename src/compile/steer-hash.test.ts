import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowBucket, flowHash, jhash3, symmetricFlowHash } from './steer-hash.ts';

test('jhash3 is Linux jhash_3words (values from the kernel implementation)', () => {
  // Reference values: the C of bpf/steer.h steer_jhash_3words (= include/linux/jhash.h) compiled with gcc.
  assert.equal(jhash3(0, 0, 0, 0), 0x1b68e557);
  assert.equal(jhash3(1, 2, 3, 4), 0x8103143f);
});

test('the flow hash depends on every field of the 5-tuple and IPv6 folds to 32 bits', () => {
  const f = { src: '192.0.2.10', dst: '198.51.100.2', proto: 6, sport: 40000, dport: 80 };
  const h = flowHash(f);
  for (const g of [{ ...f, src: '192.0.2.11' }, { ...f, dst: '198.51.100.3' }, { ...f, proto: 17 }, { ...f, sport: 40001 }, { ...f, dport: 81 }]) assert.notEqual(flowHash(g), h);
  const b = flowBucket({ src: '2001:db8::10', dst: '2001:db8:1::2', proto: 6, sport: 1, dport: 2 });
  assert.ok(Number.isInteger(b) && b >= 0 && b < 65537);
});

test('the tenant flow hash is the same both ways and still depends on every field', () => {
  const f = { src: '192.0.2.194', dst: '203.0.113.100', proto: 6, sport: 40000, dport: 7 };
  const back = { src: f.dst, dst: f.src, proto: 6, sport: f.dport, dport: f.sport };
  assert.equal(symmetricFlowHash(back), symmetricFlowHash(f));
  const v6 = { src: '2001:db8::10', dst: '2001:db8:a::2', proto: 6, sport: 1234, dport: 443 };
  assert.equal(symmetricFlowHash({ src: v6.dst, dst: v6.src, proto: 6, sport: v6.dport, dport: v6.sport }), symmetricFlowHash(v6));
  const h = symmetricFlowHash(f);
  for (const g of [{ ...f, src: '192.0.2.195' }, { ...f, dst: '203.0.113.101' }, { ...f, proto: 17 }, { ...f, sport: 40001 }, { ...f, dport: 8 }]) assert.notEqual(symmetricFlowHash(g), h);
  // Not the one-way hash of services: that one differs between the directions.
  assert.notEqual(flowHash(back), flowHash(f));
});
