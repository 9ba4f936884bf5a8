import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../../testkit/needs.ts';
import { readBtfStructs, compareLayout } from './btf.ts';
import { STRUCTS, GRE_ENCAP_INFO, encodeStruct, decodeStruct } from './layout.ts';
import { BPF_OBJECTS, missingObjects } from './objects.ts';

test('TypeScript struct layouts match the BTF of every compiled object', async (t) => {
  if (!needs(t, { tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  for (const obj of Object.values(BPF_OBJECTS)) {
    const btf = await readBtfStructs(obj);
    assert.ok(btf.ok, btf.ok ? '' : btf.error);
    for (const spec of STRUCTS) assert.deepEqual(compareLayout(spec, btf.value.get(spec.name)), [], `${obj}`);
  }
});

test('compareLayout names the field that drifted', () => {
  const btf = {
    name: 'gre_encap_info',
    size: 40,
    members: GRE_ENCAP_INFO.fields.map((f) => ({ name: f.name, offset: f.name === 'mtu' ? 18 : f.offset, size: f.kind === 'mac' ? 6 : f.kind === 'u8' ? 1 : f.kind === 'u16' ? 2 : 4 })),
  };
  assert.deepEqual(compareLayout(GRE_ENCAP_INFO, btf), [
    'struct gre_encap_info: size 36 in TypeScript, 40 in BTF',
    'struct gre_encap_info.mtu: offset 16 in TypeScript, 18 in BTF',
  ]);
});

test('encodeStruct and decodeStruct round-trip, addresses in network order', () => {
  const v = { local: '198.51.100.1', remote: '198.51.100.200', key: 0x01020304, out_ifindex: 7, mtu: 1476, flags: 1, ttl: 64, src_mac: '02:00:00:00:00:01', dst_mac: '02:00:00:00:00:02', stats_idx: 3 };
  const buf = encodeStruct(GRE_ENCAP_INFO, v);
  assert.equal(buf.length, 36);
  assert.deepEqual([...buf.subarray(0, 4)], [198, 51, 100, 1]);
  assert.deepEqual([...buf.subarray(8, 12)], [1, 2, 3, 4]);
  assert.deepEqual(decodeStruct(GRE_ENCAP_INFO, buf), { ...v, key: '1.2.3.4' });
  assert.throws(() => encodeStruct(GRE_ENCAP_INFO, { nope: 1 }), /no field nope/);
});
