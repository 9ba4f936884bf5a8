import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../../testkit/needs.ts';
import { readBtfStructs, type BtfStruct } from './btf.ts';
import { DOS_RULE, DOS_STRUCTS, type DosStruct } from './dos-layout.ts';
import { decodeDosKey, decodeDosMask, decodeDosRule, encodeDosKey, encodeDosMask, encodeDosRule, type DosRuleValue } from './dos.ts';
import { BPF_OBJECTS, missingObjects } from './objects.ts';

/** Every difference between a DoS layout and the BTF struct of the same name. */
function differences(spec: DosStruct, btf: BtfStruct | undefined): string[] {
  if (!btf) return [`struct ${spec.name}: not in the object's BTF`];
  const out: string[] = [];
  if (btf.size !== spec.size) out.push(`struct ${spec.name}: size ${spec.size} in TypeScript, ${btf.size} in BTF`);
  if (btf.members.length !== spec.fields.length) out.push(`struct ${spec.name}: ${spec.fields.length} fields in TypeScript, ${btf.members.length} in BTF`);
  for (const f of spec.fields) {
    const m = btf.members.find((x) => x.name === f.name);
    if (!m) out.push(`struct ${spec.name}.${f.name}: not in BTF`);
    else if (m.offset !== f.offset || m.size !== f.size) out.push(`struct ${spec.name}.${f.name}: offset ${f.offset} size ${f.size} in TypeScript, offset ${m.offset} size ${m.size} in BTF`);
  }
  return out;
}

test('the DoS struct layouts match the BTF of xdp_edge.o', async (t) => {
  if (!needs(t, { tools: ['bpftool'] })) return;
  assert.deepEqual(missingObjects(), [], 'BPF objects missing: run npm run build:bpf');
  const btf = await readBtfStructs(BPF_OBJECTS.xdpEdge);
  assert.ok(btf.ok, btf.ok ? '' : btf.error);
  for (const spec of DOS_STRUCTS) assert.deepEqual(differences(spec, btf.value.get(spec.name)), []);
});

test('a drifted DoS field is named', () => {
  const btf: BtfStruct = { name: 'dos_rule', size: 80, members: DOS_RULE.fields.map((f) => ({ name: f.name, offset: f.name === 'gen' ? 20 : f.offset, size: f.size })) };
  assert.deepEqual(differences(DOS_RULE, btf), ['struct dos_rule.gen: offset 16 size 4 in TypeScript, offset 20 size 4 in BTF']);
});

test('DoS keys, masks and rules round-trip through their bytes', () => {
  for (const k of [
    { family: 4, proto: 6, src: '192.0.2.0/24', dst: '203.0.113.100/32', sport: { port: 0, bits: 0 }, dport: { port: 1024, bits: 6 } },
    { family: 6, proto: null, src: '2001:db8:bad::/48', dst: '::/0', sport: { port: 19, bits: 16 }, dport: { port: 0, bits: 0 } },
  ] as const) {
    const b = encodeDosKey(k);
    assert.equal(b.length, 48);
    assert.deepEqual(decodeDosKey(b), k);
  }
  const key = encodeDosKey({ family: 4, proto: 17, src: '0.0.0.0/0', dst: '203.0.113.0/25', sport: { port: 0, bits: 0 }, dport: { port: 53, bits: 16 } });
  assert.deepEqual([...key.subarray(12, 16)], [0, 53, 0xff, 0xff], 'ports and masks in network order');
  assert.deepEqual([...key.subarray(32, 36)], [203, 0, 113, 0]);
  const m = { family: 6, proto: true, srcLen: 48, dstLen: 0, sportBits: 0, dportBits: 6 } as const;
  const mb = encodeDosMask(m);
  assert.deepEqual([...mb.subarray(8, 16)], [255, 255, 255, 255, 255, 255, 0, 0], 'byte mask of /48');
  assert.deepEqual([...mb.subarray(6, 8)], [0xfc, 0x00]);
  assert.deepEqual(decodeDosMask(mb), m);
  assert.equal(decodeDosMask(encodeDosMask(null)), null);
  const r: DosRuleValue = {
    action: 'rate-limit',
    l4: true,
    length: [40, 60],
    ttl: [1, 5],
    tcpFlags: { mask: 0x12, value: 0x02 },
    payload: { offset: 2, bytes: '0100', mask: 'ff0f' },
    rate: { pps: 1000, bps: 8_000_000, per: 'src-prefix', prefix4: 24, prefix6: 48 },
    gen: 0xae811fa1,
    idHash: 0x162c171872909584n,
  };
  assert.deepEqual(decodeDosRule(encodeDosRule(r)), r);
  assert.equal(decodeDosRule(encodeDosRule(null)), null);
});
