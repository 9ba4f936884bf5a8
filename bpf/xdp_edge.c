// SPDX-License-Identifier: GPL-2.0
/* The XDP program on every server uplink. Stages, in order (DESIGN §1):
 *   [1] volumetric DoS drop / rate limit        (dos.h; sampling for detection in sample.h)
 *   [2] steering to the flow's owner             (steer.h: Maglev + GUE, Unimog's daisy chain)
 *   [2b] SYN cookies for protected tenants       (syncookie.h, on the flow's owner)
 *   [3] GRE decapsulation for the anycast endpoint
 * Anything not handled here goes on to the kernel stack (XDP_PASS).
 *
 * Decapsulation is stateless: the tunnel is identified by (outer source, outer destination, key)
 * alone, so any server of any data center handles any GRE packet the same way.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "anyedge.h"
#include "maps.h"
#include "parse.h"
#include "sample.h"
#include "dos.h"
#include "syncookie.h"
#include "steer.h"

static __always_inline int stage_gre_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->proto != bpf_htons(ETH_P_IP_))
		return XDP_PASS;
	__u8 *ip = (void *)(eth + 1);
	if ((void *)(ip + 20) > data_end)
		return XDP_PASS;
	if (ip[9] != IPPROTO_GRE_)
		return XDP_PASS;
	__be32 daddr = *(__be32 *)(ip + 16);
	if (!bpf_map_lookup_elem(&gre_endpoints, &daddr))
		return XDP_PASS; /* GRE for someone else: not ours to judge */

	/* From here on the packet is addressed to our endpoint: it is decapsulated or dropped. */
	__u32 ihl = (ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20 || ihl > 60) {
		count(CNT_GRE_MALFORMED);
		return XDP_DROP;
	}
	if (*(__be16 *)(ip + 6) & bpf_htons(IP_MF_ | IP_OFFSET_)) {
		count(CNT_GRE_FRAGMENT);
		return XDP_DROP;
	}
	__u8 *gre = ip + ihl;
	if ((void *)(gre + 4) > data_end) {
		count(CNT_GRE_MALFORMED);
		return XDP_DROP;
	}
	__u16 gflags = bpf_ntohs(*(__be16 *)gre);
	__u16 gproto = bpf_ntohs(*(__be16 *)(gre + 2));
	if ((gflags & (GRE_F_RESERVED | GRE_VERSION_MASK)) ||
	    (gproto != ETH_P_IP_ && gproto != ETH_P_IPV6_)) {
		count(CNT_GRE_UNSUPPORTED);
		return XDP_DROP;
	}
	__u32 glen = 4;
	if (gflags & GRE_F_CSUM)
		glen += 4;
	struct gre_decap_key k = {};
	k.remote = *(__be32 *)(ip + 12);
	k.local = daddr;
	if (gflags & GRE_F_KEY) {
		__u8 *kp = gre + glen;
		if ((void *)(kp + 4) > data_end) {
			count(CNT_GRE_MALFORMED);
			return XDP_DROP;
		}
		k.key = *(__be32 *)kp;
		k.has_key = 1;
		glen += 4;
	}
	if (gflags & GRE_F_SEQ)
		glen += 4; /* sequence numbers need per-tunnel state to check: carried, not enforced */
	__u32 outer = ihl + glen;
	if ((void *)(ip + outer + 1) > data_end) {
		count(CNT_GRE_MALFORMED);
		return XDP_DROP;
	}
	struct gre_decap_info *t = bpf_map_lookup_elem(&gre_decap, &k);
	if (!t) {
		count(CNT_GRE_NO_TUNNEL);
		return XDP_DROP;
	}
	__u32 inner_len = (__u32)(data_end - (void *)ip) - outer;

	/* Drop the outer IPv4 + GRE headers and write a fresh Ethernet header in front of the inner
	 * packet, addressed to the tenant-namespace end of the veth. */
	if (bpf_xdp_adjust_head(ctx, (int)outer)) {
		count(CNT_GRE_MALFORMED);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(eth->dst, t->dst_mac, 6);
	__builtin_memcpy(eth->src, t->src_mac, 6);
	eth->proto = bpf_htons(gproto);

	count(CNT_GRE_DECAP);
	__u32 idx = t->stats_idx;
	struct tunnel_stats *st = bpf_map_lookup_elem(&tunnel_stats, &idx);
	if (st) {
		st->decap_packets++;
		st->decap_bytes += inner_len;
	}
	return bpf_redirect(t->ifindex, 0);
}

SEC("xdp")
int xdp_edge(struct xdp_md *ctx)
{
	dos_sample(ctx); /* detection: looks, never drops */
	int v = stage_dos(ctx); /* DoS rules: XDP_DROP or -1 */
	if (v >= 0)
		return v;
	/* Steering before SYN cookies: a cookie is checked with the secret of the host that made
	 * it, so a protected tenant's SYN is answered by the server its flow belongs to. */
	int hop;
	v = stage_steer(ctx, &hop); /* steering: forward to the flow's owner (XDP_TX/REDIRECT), decap from peers, or -1 */
	if (v >= 0)
		return v;
	v = stage_syncookie(ctx, hop); /* SYN-flood: cookie SYN-ACK (XDP_TX), bad ACK (XDP_DROP) or -1 */
	if (v >= 0)
		return v;
	return stage_gre_decap(ctx);
}

/* Attached to the receiving end of a veth that xdp_edge redirects into: native XDP on veth only
 * accepts redirected frames when the peer runs an XDP program. */
SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
