// SPDX-License-Identifier: GPL-2.0
/* GRE encapsulation at TC egress of a tenant's tunnel device.
 *
 * The tenant namespace routes customer-bound packets into a tunnel device (one per tunnel; the
 * kernel's routing picks the tunnel, so ECMP and route priorities stay the kernel's job). The
 * tunnel device is one end of a veth pair whose other end is in the server's namespace. Here we
 * wrap the packet in IPv4 + GRE with the anycast endpoint as outer source and the customer router
 * as outer destination, clamp the TCP MSS of SYNs to what fits the tunnel, and let the frame
 * cross to the server's end (or redirect it to out_ifindex when one is set), where the server
 * routes it to the customer router. No per-flow or per-tunnel state is kept, so every server turns the
 * same packet into the same bytes. Oversized packets with DF set never get here: the tunnel
 * device's MTU equals the tunnel MTU, so the kernel answers them with ICMP "fragmentation
 * needed" / "packet too big" and fragments the rest before TC runs.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "anyedge.h"
#include "maps.h"
#include "parse.h"

#define TCP_FLAGS_OFF 13
#define TCP_CSUM_OFF 16
#define TCP_SYN 0x02
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2

/* Lowers the MSS option of a TCP SYN at l4_off to max_mss. Returns 1 when it changed it. */
static __always_inline int clamp_mss(struct __sk_buff *skb, __u32 l4_off, __u16 max_mss)
{
	__u8 hdr[14];
	if (bpf_skb_load_bytes(skb, l4_off, hdr, sizeof(hdr)))
		return 0;
	if (!(hdr[TCP_FLAGS_OFF] & TCP_SYN))
		return 0;
	__u32 doff = (hdr[12] >> 4) * 4;
	if (doff <= 20)
		return 0;
	__u32 off = l4_off + 20;
	__u32 end = l4_off + doff;
	/* TCP options are at most 40 bytes: the loop bound lets the verifier see it terminates. */
	for (int i = 0; i < 40; i++) {
		if (off >= end)
			return 0;
		__u8 kind;
		if (bpf_skb_load_bytes(skb, off, &kind, 1))
			return 0;
		if (kind == TCPOPT_EOL)
			return 0;
		if (kind == TCPOPT_NOP) {
			off++;
			continue;
		}
		__u8 opt[4];
		if (off + 2 > end || bpf_skb_load_bytes(skb, off, opt, 2))
			return 0;
		if (opt[1] < 2)
			return 0; /* malformed length: leave the packet alone */
		if (kind == TCPOPT_MSS && opt[1] == 4) {
			if (off + 4 > end || bpf_skb_load_bytes(skb, off, opt, 4))
				return 0;
			__u16 mss = ((__u16)opt[2] << 8) | opt[3];
			if (mss <= max_mss)
				return 0;
			__be16 old = bpf_htons(mss), new = bpf_htons(max_mss);
			if (bpf_l4_csum_replace(skb, l4_off + TCP_CSUM_OFF, old, new, sizeof(new)))
				return 0;
			if (bpf_skb_store_bytes(skb, off + 2, &new, sizeof(new), 0))
				return 0;
			return 1;
		}
		off += opt[1];
	}
	return 0;
}

SEC("tc")
int tc_gre_encap(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct gre_encap_info *t = bpf_map_lookup_elem(&gre_encap, &ifindex);
	if (!t) {
		count(CNT_ENCAP_NO_TUNNEL);
		return TC_ACT_SHOT;
	}
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end) {
		count(CNT_ENCAP_NOT_IP);
		return TC_ACT_SHOT;
	}
	__u16 inner_proto = bpf_ntohs(eth->proto);
	__u32 inner_len = skb->len - ETH_HLEN_;
	__u8 tos = 0;
	__be16 id = 0;
	__be16 frag = bpf_htons(IP_DF_);
	__u32 l4_off = 0;
	__u16 max_mss = 0;

	if (inner_proto == ETH_P_IP_) {
		__u8 *ip = (void *)(eth + 1);
		if ((void *)(ip + 20) > data_end) {
			count(CNT_ENCAP_NOT_IP);
			return TC_ACT_SHOT;
		}
		tos = ip[1];
		/* Copying the inner ID and DF keeps the output a pure function of the input. */
		id = *(__be16 *)(ip + 4);
		__be16 inner_frag = *(__be16 *)(ip + 6);
		frag = inner_frag & bpf_htons(IP_DF_);
		if (ip[9] == IPPROTO_TCP_ && !(inner_frag & bpf_htons(IP_MF_ | IP_OFFSET_))) {
			l4_off = ETH_HLEN_ + (ip[0] & 0x0f) * 4;
			max_mss = t->mtu - 40;
		}
	} else if (inner_proto == ETH_P_IPV6_) {
		__u8 *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 40) > data_end) {
			count(CNT_ENCAP_NOT_IP);
			return TC_ACT_SHOT;
		}
		tos = (ip6[0] << 4) | (ip6[1] >> 4);
		if (ip6[6] == IPPROTO_TCP_) {
			l4_off = ETH_HLEN_ + 40;
			max_mss = t->mtu - 60;
		}
	} else {
		count(CNT_ENCAP_NOT_IP);
		return TC_ACT_SHOT;
	}

	__u32 idx = t->stats_idx;
	struct tunnel_stats *st = bpf_map_lookup_elem(&tunnel_stats, &idx);

	if (inner_len > t->mtu && !skb->gso_size) {
		count(CNT_ENCAP_TOO_BIG);
		if (st)
			st->too_big++;
		return TC_ACT_SHOT;
	}
	if (l4_off && clamp_mss(skb, l4_off, max_mss) && st)
		st->mss_clamped++;

	struct ipv4_gre_hdr h = {};
	__u32 olen = (t->flags & TUN_F_KEY) ? 28 : 24;
	h.ver_ihl = 0x45;
	h.tos = tos;
	h.tot_len = bpf_htons(inner_len + olen);
	h.id = id;
	h.frag_off = frag;
	h.ttl = t->ttl;
	h.protocol = IPPROTO_GRE_;
	h.saddr = t->local;
	h.daddr = t->remote;
	h.gre_flags = (t->flags & TUN_F_KEY) ? bpf_htons(GRE_F_KEY) : 0;
	h.gre_proto = bpf_htons(inner_proto);
	h.gre_key = t->key;
	h.check = ipv4_csum(&h);

	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
	if (bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, flags)) {
		count(CNT_ENCAP_FAILED);
		return TC_ACT_SHOT;
	}
	int rc = (olen == 28) ? bpf_skb_store_bytes(skb, ETH_HLEN_, &h, 28, 0)
			      : bpf_skb_store_bytes(skb, ETH_HLEN_, &h, 24, 0);
	struct eth_hdr e;
	__builtin_memcpy(e.dst, t->dst_mac, 6);
	__builtin_memcpy(e.src, t->src_mac, 6);
	e.proto = bpf_htons(ETH_P_IP_);
	if (rc || bpf_skb_store_bytes(skb, 0, &e, sizeof(e), 0)) {
		count(CNT_ENCAP_FAILED);
		return TC_ACT_SHOT;
	}
	count(CNT_ENCAP);
	if (st) {
		st->encap_packets++;
		st->encap_bytes += inner_len;
	}
	/* out_ifindex 0: the frame leaves by the tunnel device itself, to its peer in the server's
	 * namespace, which routes it like any packet. */
	if (!t->out_ifindex)
		return TC_ACT_OK;
	return bpf_redirect(t->out_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
