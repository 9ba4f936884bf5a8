import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../../testkit/needs.ts';
import { readBtfStructs, compareLayout } from './btf.ts';
import { BPF_OBJECTS, missingObjects } from './objects.ts';
import { decodeBucket, decodeCfg, decodeEgress, decodeSliceKey, decodeTenantKey, encodeBucket, encodeCfg, encodeEgress, encodeSliceKey, encodeTenantKey, readSteerIp, steerIp, STEER_IP_SIZE, STEER_STRUCTS, STEER_TENANT_KEY_SIZE } from './steer-layout.ts';

test("the steering layouts match xdp_edge.o's BTF", async (t) => {
  if (!needs(t, { tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  const btf = await readBtfStructs(BPF_OBJECTS.xdpEdge);
  assert.ok(btf.ok, btf.ok ? '' : btf.error);
  for (const spec of STEER_STRUCTS) assert.deepEqual(compareLayout(spec, btf.value.get(spec.name)), []);
  assert.equal(btf.value.get('steer_ip')?.size, STEER_IP_SIZE);
  const tk = btf.value.get('steer_tenant_key');
  assert.equal(tk?.size, STEER_TENANT_KEY_SIZE);
  assert.deepEqual(tk?.members.map((m) => m.name), ['prefixlen', 'addr']);
});

test('encoders round-trip; addresses and the port in network order; IPv4 keys as ::ffff:a.b.c.d', () => {
  const cfg = { self: '192.0.2.17', port: 6080, enabled: true };
  const c = encodeCfg(cfg);
  assert.deepEqual([...c], [192, 0, 2, 17, 0x17, 0xc0, 1, 0]);
  assert.deepEqual(decodeCfg(c), cfg);
  const b = { first: '192.0.2.18', second: null };
  assert.deepEqual([...encodeBucket(b)], [192, 0, 2, 18, 0, 0, 0, 0]);
  assert.deepEqual(decodeBucket(encodeBucket(b)), b);
  for (const e of [{ kind: 'slices', sliceSize: 2048 }, { kind: 'server', server: '192.0.2.19' }] as const) assert.deepEqual(decodeEgress(encodeEgress(e)), e);
  assert.equal(encodeEgress({ kind: 'slices', sliceSize: 2048 })[5], 11);
  assert.deepEqual(decodeSliceKey(encodeSliceKey('198.51.100.64', 3)), { ip: '198.51.100.64', slice: 3 });
  assert.deepEqual([...steerIp('198.51.100.2')], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 2]);
  for (const ip of ['198.51.100.2', '2001:db8:100::2']) assert.equal(readSteerIp(steerIp(ip)), ip);
  // Tenant prefixes: IPv4 lengths count the 96 bits of ::ffff: in front (host-order u32 first).
  const k4 = encodeTenantKey('203.0.113.0/24');
  assert.equal(k4.length, 20);
  assert.equal(k4.readUInt32LE(0) === 120 || k4.readUInt32BE(0) === 120, true);
  assert.deepEqual([...k4.subarray(4)], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 0]);
  for (const c of ['203.0.113.0/24', '203.0.113.128/25', '2001:db8:203::/48']) assert.equal(decodeTenantKey(encodeTenantKey(c)), c);
});
