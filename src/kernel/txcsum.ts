/**
 * TX checksum offload of a link, as `ethtool -k` reports it and `ethtool -K DEV tx on|off` sets it.
 *
 * Why the tunnel devices need it off: a TCP packet made inside a tenant namespace (synproxy's SYN
 * to the customer host, the kernel's own replies) leaves with CHECKSUM_PARTIAL — the checksum
 * field holds only the pseudo-header sum and the device is trusted to finish it. tc_gre.c wraps
 * it in GRE and the partial state travels on; whoever decapsulates it without finishing it (an
 * XDP program, which sees bytes, not skb metadata) hands on a segment with a wrong checksum, and
 * the host drops it. With TX checksumming off on the tunnel device the kernel finishes the inner
 * checksum in software when the encapsulated packet is sent (validate_xmit_skb, after TC), so the
 * GRE payload is complete on the wire whatever the next hops offload.
 */

/** Whether `ethtool -k` output says TX checksumming is on; null when the line is missing (pure). */
export function parseTxChecksum(text: string): boolean | null {
  const m = /^tx-checksumming:\s+(on|off)\b/m.exec(text);
  return m ? m[1] === 'on' : null;
}
