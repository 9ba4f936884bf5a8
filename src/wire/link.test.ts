// Link layer: Ethernet II, 802.1Q/802.1ad tags, Ethernet/IPv4 ARP — fixtures, round trips,
// typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emitArp, parseArp } from './arp.ts';
import { fromHex, toHex } from './bytes.ts';
import { emitEthernet, parseEthernet } from './ethernet.ts';
import { emitVlan, isVlanTpid, parseVlan } from './vlan.ts';
import { a5 } from './testutil.ts';

test('Ethernet header round trip and truncation', () => {
  const b = fromHex('ffffffffffff 02005e005301 0806');
  const r = parseEthernet(b);
  assert.ok(r.ok);
  assert.deepEqual(r.value, { dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:5e:00:53:01', etherType: 0x0806 });
  const out = a5(14);
  emitEthernet(r.value, out);
  assert.equal(toHex(out), toHex(b));
  const t = parseEthernet(b.subarray(0, 13));
  assert.ok(!t.ok && t.error.layer === 'ethernet' && t.error.code === 'truncated' && t.error.offset === 0);
});

test('VLAN tag: PCP, DEI, VID packed in the TCI', () => {
  const b = fromHex('b064 0800'); // pcp 5, dei 1, vid 100
  const r = parseVlan(b);
  assert.ok(r.ok);
  assert.deepEqual(r.value, { pcp: 5, dei: true, vid: 100, etherType: 0x0800 });
  const out = a5(4);
  emitVlan(r.value, out);
  assert.equal(toHex(out), 'b0640800');
  assert.ok(isVlanTpid(0x8100) && isVlanTpid(0x88a8) && isVlanTpid(0x9100) && !isVlanTpid(0x0800));
  const t = parseVlan(b.subarray(0, 3), 0);
  assert.ok(!t.ok && t.error.layer === 'vlan' && t.error.code === 'truncated');
  assert.throws(() => emitVlan({ ...r.value, vid: 4096 }, a5(4)), RangeError);
});

test('ARP reply round trip; other hardware/protocol types unsupported', () => {
  const b = fromHex('0001 0800 06 04 0002 02005e005301 c0000201 02005e005302 c0000202');
  const r = parseArp(b);
  assert.ok(r.ok);
  assert.deepEqual(r.value, { op: 2, senderMac: '02:00:5e:00:53:01', senderIp: '192.0.2.1', targetMac: '02:00:5e:00:53:02', targetIp: '192.0.2.2' });
  const out = a5(28);
  emitArp(r.value, out);
  assert.equal(toHex(out), toHex(b));
  const ib = b.slice();
  ib[1] = 6; // IEEE 802 hardware
  const u = parseArp(ib);
  assert.ok(!u.ok && u.error.code === 'unsupported' && u.error.layer === 'arp');
  const t = parseArp(b.subarray(0, 27));
  assert.ok(!t.ok && t.error.code === 'truncated');
});
