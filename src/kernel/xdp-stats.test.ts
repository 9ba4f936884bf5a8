import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXdpStats } from './xdp-stats.ts';

test('parseXdpStats sums the XDP verdicts of every receive queue and ignores the rest', () => {
  // veth's `ethtool -S` layout (kernel 6.x), two queues.
  const text = [
    'NIC statistics:',
    '     peer_ifindex: 7',
    '     rx_queue_0_xdp_packets: 100',
    '     rx_queue_0_xdp_bytes: 6000',
    '     rx_queue_0_drops: 3',
    '     rx_queue_0_xdp_redirect: 4',
    '     rx_queue_0_xdp_drops: 90',
    '     rx_queue_0_xdp_tx: 5',
    '     rx_queue_0_xdp_tx_errors: 1',
    '     rx_queue_1_xdp_packets: 10',
    '     rx_queue_1_xdp_drops: 7',
    '     tx_queue_0_xdp_xmit: 1000',
    '     tx_queue_0_xdp_xmit_errors: 2',
  ].join('\n');
  assert.deepEqual(parseXdpStats(text), { packets: 110, drops: 97, tx: 5, redirects: 4 });
  assert.deepEqual(parseXdpStats('no stats available\n'), { packets: 0, drops: 0, tx: 0, redirects: 0 });
});
