/**
 * linuxAttach's TX checksum calls on a real veth in a namespace of this test (prefix ae<C><pid>,
 * removed in `after`): a new veth has TX checksumming on, setTxChecksum(false) turns it off as
 * `ethtool -k` reports it, true turns it back on; a missing link is an error naming the link.
 * Ends of a veth pair are independent (the tunnel device turns off only its own).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { needs } from '../testkit/needs.ts';
import { NetLab } from '../testkit/netlab.ts';
import { linuxAttach } from './attach.ts';

const lab = new NetLab('C');
after(() => lab.destroy());

test('linuxAttach: TX checksum offload read and set with ethtool on a veth, one end at a time', async (t) => {
  if (!needs(t, { root: true, tools: ['ip', 'ethtool', 'nsenter'] })) return;
  await lab.addNs('a');
  await lab.veth('a', 'tun0', 'a', 'out0');
  // No program is attached here, so no pins are needed.
  const attach = linuxAttach({ progs: { xdpEdge: '', xdpPass: '', tcGreEncap: '' } });
  const ns = lab.ns('a');
  const read = async (dev: string) => {
    const r = await attach.txChecksum(ns, dev);
    if (!r.ok) assert.fail(r.error.message);
    return r.value;
  };
  assert.equal(await read('tun0'), true, 'a new veth offloads TX checksums');
  assert.ok((await attach.setTxChecksum(ns, 'tun0', false)).ok);
  assert.equal(await read('tun0'), false);
  assert.equal(await read('out0'), true, 'the other end keeps its own setting');
  assert.match(await lab.exec('a', 'ethtool', ['-k', 'tun0']), /^tx-checksumming: off/m);
  assert.ok((await attach.setTxChecksum(ns, 'tun0', true)).ok);
  assert.equal(await read('tun0'), true);
  const missing = await attach.txChecksum(ns, 'nosuch0');
  assert.ok(!missing.ok, 'a missing link is an error');
  assert.match(missing.error.path ?? '', /nosuch0/);
});
