import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTxChecksum } from './txcsum.ts';

const VETH_ON = `Features for aelh70-gre1:
rx-checksumming: on
tx-checksumming: on
	tx-checksum-ipv4: off [fixed]
	tx-checksum-ip-generic: on
scatter-gather: on
`;

test('tx-checksumming is read from ethtool -k, not from its sub-features', () => {
  assert.equal(parseTxChecksum(VETH_ON), true);
  assert.equal(parseTxChecksum(VETH_ON.replace('tx-checksumming: on', 'tx-checksumming: off')), false);
  // ethtool prints "off [fixed]" for a device that cannot offload at all.
  assert.equal(parseTxChecksum('tx-checksumming: off [fixed]\n'), false);
});

test('output without the line is unknown, not "on"', () => {
  assert.equal(parseTxChecksum('Features for x:\nrx-checksumming: on\n\ttx-checksum-ip-generic: on\n'), null);
  assert.equal(parseTxChecksum(''), null);
});
