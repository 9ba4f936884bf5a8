// SPDX-License-Identifier: GPL-2.0
/* SYN-flood protection for tenant addresses, answered on the uplink (issue 6). The stage runs
 * after steering (bpf/steer.h), on the server that owns the flow: a cookie is checked with the
 * secret of the host that made it, so SYN and ACK must meet on one server.
 *
 * For a destination inside a protected prefix (syn_v4 / syn_v6, LPM tries filled by the agent
 * from the tenant's prefixes when its synFlood.protection is "xdp"):
 *   - a SYN is answered here with a SYN-ACK whose sequence number is a kernel SYN cookie
 *     (bpf_tcp_raw_gen_syncookie_*), XDP_TX back out of the uplink: the flood costs one helper
 *     call and a rewrite, no socket, no conntrack entry, no trip through the tenant namespace;
 *   - a packet with ACK set of a flow not seen yet must carry a valid cookie
 *     (bpf_tcp_raw_check_syncookie_*): valid → the flow is remembered (syn_flows) and the packet
 *     goes on to the tenant namespace, where nftables' SYNPROXY checks the same cookie (the secret
 *     is the kernel's global syncookie secret) and opens the connection to the customer host;
 *     invalid → dropped here (ACK floods and guessed cookies never reach netfilter);
 *   - an RST of a flow not seen yet is dropped: it can only belong to a handshake that never
 *     completed (the backscatter of a spoofed flood, or a flooding stack resetting our cookie
 *     SYN-ACKs), which the customer host never heard of;
 *   - packets of remembered flows and everything else go on (-1).
 * A SYN-ACK arriving for a protected address is the answer to a connection the customer opened
 * itself: it goes on and its flow is remembered, so the rest of that connection is not taken for
 * an unvalidated ACK.
 *
 * The cookie encodes the MSS and nothing else. When the client offers timestamps, the SYN-ACK
 * offers what nftables' SYNPROXY (`timestamp sack-perm`, compile/firewall/synproxy.ts) would:
 * window scale (the policy's, the same as the namespace's synproxy), SACK if the client asked,
 * and a timestamp whose low bits carry the client's window scale, SACK and ECN the way
 * nf_synproxy_core's synproxy_init_timestamp_cookie does — so the namespace's synproxy, reading
 * them back from the ACK's echo (synproxy_check_timestamp_cookie), opens the connection to the
 * host with the client's real options. Without timestamps only the MSS is offered, as synproxy
 * does. A SYN we cannot answer in place (IPv4 options, IPv6 extension headers, fragments) goes
 * on, and the tenant namespace's synproxy answers it.
 */
#ifndef ANYEDGE_SYNCOOKIE_H
#define ANYEDGE_SYNCOOKIE_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"

/* Key of syn_v4: LPM-trie key, prefix length then the address (network order). */
struct syn_key4 {
	__u32 prefixlen;
	__be32 addr;
};

/* Key of syn_v6. */
struct syn_key6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* syn_policy.flags */
#define SYN_POL_OPTIONS 0x01   /* offer window scale, SACK and timestamps when the client sent timestamps */

/* Value of syn_v4 / syn_v6: how a protected prefix is answered. */
struct syn_policy {
	__u16 mss;          /* MSS option of our SYN-ACK: what the path to the customer host carries */
	__u8 wscale;        /* window scale we offer: the tenant namespace synproxy's (0–14) */
	__u8 flags;         /* SYN_POL_* */
	__u32 tenant_idx;   /* index into syn_tenant_cnt (per-tenant counters) */
};

/* Key of syn_flows: one direction of a TCP flow (client → protected address). */
struct syn_flow_key {
	__u8 saddr[16];     /* IPv4 addresses in the first 4 bytes, the rest zero */
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u32 family;       /* 4 or 6 */
};

/* What the SYN-flood stage did, counted per CPU in syn_counters and per tenant in syn_tenant_cnt. */
enum syn_counter {
	SYN_CNT_SYNACK = 0,      /* SYN answered with a cookie SYN-ACK (XDP_TX) */
	SYN_CNT_ACK_OK,          /* ACK with a valid cookie: flow remembered, passed on */
	SYN_CNT_ACK_BAD,         /* ACK of an unknown flow without a valid cookie: dropped */
	SYN_CNT_FLOW,            /* packet of a remembered flow: passed on */
	SYN_CNT_UNANSWERABLE,    /* SYN we cannot rewrite in place (options, ext headers, fragment): passed on */
	SYN_CNT_OUTBOUND,        /* SYN-ACK to a protected address (a connection the customer opened): passed on */
	SYN_CNT_ERROR,           /* a helper failed: dropped */
	SYN_CNT_RST_BAD,         /* RST of a flow not seen yet: dropped */
	SYN_CNT_MAX,
};

/* The most tenants with their own SYN counters on one server. */
#define SYN_MAX_TENANTS 65536

/* Protected IPv4 prefixes → policy. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct syn_key4);
	__type(value, struct syn_policy);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} syn_v4 SEC(".maps");

/* Protected IPv6 prefixes → policy. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct syn_key6);
	__type(value, struct syn_policy);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} syn_v6 SEC(".maps");

/* Flows whose cookie was valid (or that the customer opened): their later packets pass without a
 * check. LRU: under a flood of valid-looking flows the oldest are forgotten, and a forgotten flow's
 * next bare ACK fails the cookie check (the cookie expires after about two minutes anyway). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 20);
	__type(key, struct syn_flow_key);
	__type(value, __u64);
} syn_flows SEC(".maps");

/* Global SYN-flood stage counters (enum syn_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYN_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} syn_counters SEC(".maps");

/* Per-tenant counters: index tenant_idx * SYN_CNT_MAX + counter. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYN_MAX_TENANTS * SYN_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} syn_tenant_cnt SEC(".maps");

/* Scratch space for syn_send's FIB lookup: the stages' frames together must stay under BPF's
 * 512-byte stack, and the 64-byte lookup struct is what did not fit. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bpf_fib_lookup);
} syn_fib SEC(".maps");

static __always_inline void syn_count(__u32 reason, const struct syn_policy *p)
{
	__u64 *c = bpf_map_lookup_elem(&syn_counters, &reason);
	if (c)
		*c += 1;
	if (p && p->tenant_idx < SYN_MAX_TENANTS) {
		__u32 i = p->tenant_idx * SYN_CNT_MAX + reason;
		c = bpf_map_lookup_elem(&syn_tenant_cnt, &i);
		if (c)
			*c += 1;
	}
}

/* The SYN-ACK's TCP header: 20 bytes and the MSS option (SYN_REPLY_SHORT); with timestamps also
 * SACK-permitted (or two NOPs), the timestamp, and NOP + window scale (or four NOPs). */
struct syn_tcp_reply {
	struct tcphdr th;
	__u8 mss_kind;
	__u8 mss_len;
	__be16 mss;
	__u8 sack_kind;
	__u8 sack_len;
	__u8 ts_kind;
	__u8 ts_len;
	__be32 tsval;
	__be32 tsecr;
	__u8 ws_nop;
	__u8 ws_kind;
	__u8 ws_len;
	__u8 ws;
} __attribute__((packed));
#define SYN_REPLY_SHORT 24
#define SYN_REPLY_LONG 40

/* What the client's SYN offered. */
struct syn_opts {
	__be32 tsval;       /* network order, as it is echoed */
	__u8 has_ts;
	__u8 has_sack;
	__u8 has_ws;
	__u8 ws;
};

/* Per-CPU scratch space of the stage: the TCP header read from the packet and the SYN-ACK's,
 * too big for the 512-byte stack the stages share. */
struct syn_scratch {
	__u8 tbuf[64];
	struct syn_tcp_reply r;
	struct syn_opts opts;
	__u32 opt_at;       /* the option walk: next offset in tbuf */
	__u32 opt_len;      /* and the header's length */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syn_scratch);
} syn_scratch SEC(".maps");

/* tbuf[i], with a bound the verifier sees whatever clang makes of the arithmetic. */
static __always_inline __u8 syn_byte(const __u8 *tbuf, __u32 i)
{
	asm volatile("" : "+r"(i));
	return tbuf[i & 63];
}

/* One step of the option walk (a bpf_loop callback: verified once, not once per iteration and
 * path, which an unrolled 40-step walk of variable-length options blew past the verifier's
 * budget). State in the per-CPU scratch. 1: stop. */
static long syn_opt_step(__u64 index, void *unused)
{
	__u32 zero = 0;
	struct syn_scratch *sc = bpf_map_lookup_elem(&syn_scratch, &zero);
	if (!sc)
		return 1;
	__u32 i = sc->opt_at, tlen = sc->opt_len;
	struct syn_opts *o = &sc->opts;
	if (i >= tlen || i >= 60)
		return 1;
	__u8 kind = syn_byte(sc->tbuf, i);
	if (kind == 0)
		return 1;
	if (kind == 1) {
		sc->opt_at = i + 1;
		return 0;
	}
	if (i + 1 >= tlen)
		return 1;
	__u8 len = syn_byte(sc->tbuf, i + 1);
	if (len < 2 || i + len > tlen)
		return 1;
	if (kind == 3 && len == 3) {
		o->has_ws = 1;
		o->ws = syn_byte(sc->tbuf, i + 2);
	} else if (kind == 4 && len == 2) {
		o->has_sack = 1;
	} else if (kind == 8 && len == 10) {
		o->has_ts = 1;
		o->tsval = bpf_htonl(((__u32)syn_byte(sc->tbuf, i + 2) << 24) | ((__u32)syn_byte(sc->tbuf, i + 3) << 16) |
				     ((__u32)syn_byte(sc->tbuf, i + 4) << 8) | syn_byte(sc->tbuf, i + 5));
	}
	sc->opt_at = i + len;
	return 0;
}

/* Reads the options of the SYN's TCP header in sc->tbuf (length tlen ≤ 60) into sc->opts. */
static __always_inline void syn_parse_opts(struct syn_scratch *sc, __u32 tlen)
{
	__builtin_memset(&sc->opts, 0, sizeof(sc->opts));
	sc->opt_at = 20;
	sc->opt_len = tlen;
	bpf_loop(40, syn_opt_step, 0, 0);
}

static __always_inline __u16 syn_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Sum of the first `len` bytes' 16-bit words of the SYN-ACK's TCP header (checksum field zero). */
static __always_inline __u32 syn_tcp_sum(const struct syn_tcp_reply *r, __u32 len)
{
	const __u16 *w = (const __u16 *)r;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < (int)(sizeof(*r) / 2); i++)
		if ((__u32)i < len / 2)
			sum += w[i];
	return sum;
}

/* Fills the SYN-ACK's TCP header answering `syn` with sequence number `cookie`; returns its
 * length (SYN_REPLY_SHORT or SYN_REPLY_LONG). */
static __always_inline __u32 syn_reply_tcp(struct syn_tcp_reply *r, const struct tcphdr *syn, __u32 cookie,
					   const struct syn_policy *p, const struct syn_opts *o)
{
	__builtin_memset(r, 0, sizeof(*r));
	r->th.source = syn->dest;
	r->th.dest = syn->source;
	r->th.seq = bpf_htonl(cookie);
	r->th.ack_seq = bpf_htonl(bpf_ntohl(syn->seq) + 1);
	r->th.doff = sizeof(*r) / 4;
	r->th.syn = 1;
	r->th.ack = 1;
	/* Window 0, as SYNPROXY does: the client waits for the window update the proxy sends once
	 * the customer host has accepted, instead of sending data nobody can take yet. */
	r->th.window = 0;
	r->mss_kind = 2;
	r->mss_len = 4;
	r->mss = bpf_htons(p->mss);
	if (!o->has_ts || !(p->flags & SYN_POL_OPTIONS)) {
		r->th.doff = SYN_REPLY_SHORT / 4;
		return SYN_REPLY_SHORT;
	}
	r->th.doff = SYN_REPLY_LONG / 4;
	/* nf_synproxy_core's timestamp cookie: milliseconds with the low 6 bits holding the
	 * client's window scale (0xf: none), SACK-permitted (bit 4) and ECN (bit 5, not offered). */
	__u32 tsval = (__u32)(bpf_ktime_get_ns() / 1000000) & ~0x3fU;
	tsval |= o->has_ws ? (o->ws > 14 ? 14 : o->ws) : 0xf;
	if (o->has_sack) {
		tsval |= 1 << 4;
		r->sack_kind = 4;
		r->sack_len = 2;
	} else {
		r->sack_kind = 1;
		r->sack_len = 1;
	}
	r->ts_kind = 8;
	r->ts_len = 10;
	r->tsval = bpf_htonl(tsval);
	r->tsecr = o->tsval;
	r->ws_nop = 1;
	if (o->has_ws) {
		r->ws_kind = 3;
		r->ws_len = 3;
		r->ws = p->wscale;
	} else {
		r->ws_kind = 1;
		r->ws_len = 1;
		r->ws = 1;
	}
	return SYN_REPLY_LONG;
}

/* Reads the TCP header (with options) at `off` into `buf`; returns its length or 0. */
static __always_inline __u32 syn_load_tcp(struct xdp_md *ctx, __u32 off, __u8 *buf, __u8 doff)
{
	__u64 len = (__u64)doff * 4;
	/* Keep clang from folding the bounds into a mask that loses the lower bound the verifier
	 * needs (a zero-sized read is refused). */
	asm volatile("" : "+r"(len));
	if (len > 60)
		return 0;
	asm volatile("" : "+r"(len));
	if (len < sizeof(struct tcphdr))
		return 0;
	if (bpf_xdp_load_bytes(ctx, off, buf, len))
		return 0;
	return len;
}

static __always_inline void syn_remember(struct syn_flow_key *k)
{
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&syn_flows, k, &now, BPF_ANY);
}

/* Sends the SYN-ACK built in place over the SYN. From the router (hop 0) it goes back where the
 * SYN came from: XDP_TX with the MACs swapped. A SYN a peer forwarded (hop 1 or 2, bpf/steer.h)
 * has that peer as its Ethernet source, so the answer goes by the FIB to the client's next hop
 * instead (the peer would have to route a packet from a tenant address it does not hold); only
 * when the FIB has no resolved next hop does it go back to the peer, which routes it on. */
static __always_inline int syn_send(struct xdp_md *ctx, int hop, const struct eth_hdr *in, int v6, const void *client, __u16 len)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *oeth = data;
	if ((void *)(oeth + 1) > data_end)
		return XDP_DROP;
	__u32 zero = 0;
	struct bpf_fib_lookup *fib = hop ? bpf_map_lookup_elem(&syn_fib, &zero) : 0;
	if (fib) {
		__builtin_memset(fib, 0, sizeof(*fib));
		fib->ifindex = ctx->ingress_ifindex;
		fib->l4_protocol = IPPROTO_TCP_;
		fib->tot_len = len;
		if (v6) {
			fib->family = 10; /* AF_INET6 */
			__builtin_memcpy(fib->ipv6_dst, client, 16);
		} else {
			fib->family = 2; /* AF_INET */
			fib->ipv4_dst = *(const __be32 *)client;
		}
		if (bpf_fib_lookup(ctx, fib, sizeof(*fib), 0) == BPF_FIB_LKUP_RET_SUCCESS) {
			__builtin_memcpy(oeth->dst, fib->dmac, 6);
			__builtin_memcpy(oeth->src, fib->smac, 6);
			oeth->proto = in->proto;
			return fib->ifindex == ctx->ingress_ifindex ? XDP_TX : bpf_redirect(fib->ifindex, 0);
		}
	}
	__builtin_memcpy(oeth->dst, in->src, 6);
	__builtin_memcpy(oeth->src, in->dst, 6);
	oeth->proto = in->proto;
	return XDP_TX;
}

/* The decision for a TCP packet to a protected address, once its headers are on the stack. */
enum syn_kind { SYN_K_SYN, SYN_K_SYNACK, SYN_K_ACK, SYN_K_RST, SYN_K_OTHER };

static __always_inline enum syn_kind syn_classify(const struct tcphdr *th)
{
	if (th->rst)
		return SYN_K_RST;
	if (th->syn && !th->ack)
		return th->fin ? SYN_K_OTHER : SYN_K_SYN;
	if (th->syn && th->ack)
		return SYN_K_SYNACK;
	if (th->ack)
		return SYN_K_ACK;
	return SYN_K_OTHER;
}

static __noinline int syn_ipv4(struct xdp_md *ctx, int hop)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = data + ETH_HLEN_;
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_TCP_)
		return -1;
	struct syn_key4 lk = { .prefixlen = 32, .addr = ip->daddr };
	struct syn_policy *pol = bpf_map_lookup_elem(&syn_v4, &lk);
	if (!pol)
		return -1;
	struct syn_policy p = *pol;
	if (ip->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_)) {
		syn_count(SYN_CNT_UNANSWERABLE, &p);
		return -1;
	}

	struct iphdr iph;
	__builtin_memcpy(&iph, ip, sizeof(iph));
	__u32 ihl = iph.ihl * 4;
	if (ihl < sizeof(iph))
		return -1;
	__u32 zero = 0;
	struct syn_scratch *sc = bpf_map_lookup_elem(&syn_scratch, &zero);
	if (!sc)
		return -1;
	__u8 *tbuf = sc->tbuf;
	struct tcphdr *th = (struct tcphdr *)tbuf;
	if (bpf_xdp_load_bytes(ctx, ETH_HLEN_ + ihl, tbuf, sizeof(struct tcphdr)))
		return -1;
	struct syn_flow_key fk = {};
	__builtin_memcpy(fk.saddr, &iph.saddr, 4);
	__builtin_memcpy(fk.daddr, &iph.daddr, 4);
	fk.sport = th->source;
	fk.dport = th->dest;
	fk.family = 4;

	switch (syn_classify(th)) {
	case SYN_K_SYN: {
		if (ihl != sizeof(iph)) {
			syn_count(SYN_CNT_UNANSWERABLE, &p);
			return -1;
		}
		__u32 tlen = syn_load_tcp(ctx, ETH_HLEN_ + ihl, tbuf, th->doff);
		if (!tlen) {
			syn_count(SYN_CNT_UNANSWERABLE, &p);
			return -1;
		}
		__s64 v = bpf_tcp_raw_gen_syncookie_ipv4(&iph, th, tlen);
		if (v < 0) {
			syn_count(SYN_CNT_ERROR, &p);
			return XDP_DROP;
		}
		syn_parse_opts(sc, tlen);
		struct syn_tcp_reply *r = &sc->r;
		__u32 rlen = syn_reply_tcp(r, th, (__u32)v, &p, &sc->opts);

		struct iphdr rip = {};
		rip.version = 4;
		rip.ihl = 5;
		rip.tot_len = bpf_htons(sizeof(rip) + rlen);
		rip.frag_off = bpf_htons(IP_DF_);
		rip.ttl = 64;
		rip.protocol = IPPROTO_TCP_;
		rip.saddr = iph.daddr;
		rip.daddr = iph.saddr;
		rip.check = ipv4_csum(&rip);
		__u32 sum = syn_tcp_sum(r, rlen);
		sum += (iph.daddr & 0xffff) + (iph.daddr >> 16) + (iph.saddr & 0xffff) + (iph.saddr >> 16);
		sum += bpf_htons(IPPROTO_TCP_) + bpf_htons(rlen);
		r->th.check = syn_fold(sum);

		struct eth_hdr eth;
		__builtin_memcpy(&eth, data, sizeof(eth));
		int delta = (int)(ETH_HLEN_ + sizeof(rip) + rlen) - (int)(data_end - data);
		if (delta && bpf_xdp_adjust_tail(ctx, delta)) {
			syn_count(SYN_CNT_ERROR, &p);
			return XDP_DROP;
		}
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + ETH_HLEN_ + sizeof(rip) + SYN_REPLY_SHORT > data_end)
			return XDP_DROP;
		__builtin_memcpy(data + ETH_HLEN_, &rip, sizeof(rip));
		if (rlen == SYN_REPLY_LONG) {
			if (data + ETH_HLEN_ + sizeof(rip) + SYN_REPLY_LONG > data_end)
				return XDP_DROP;
			__builtin_memcpy(data + ETH_HLEN_ + sizeof(rip), r, SYN_REPLY_LONG);
		} else {
			__builtin_memcpy(data + ETH_HLEN_ + sizeof(rip), r, SYN_REPLY_SHORT);
		}
		syn_count(SYN_CNT_SYNACK, &p);
		return syn_send(ctx, hop, &eth, 0, &iph.saddr, sizeof(rip) + rlen);
	}
	case SYN_K_SYNACK:
		syn_remember(&fk);
		syn_count(SYN_CNT_OUTBOUND, &p);
		return -1;
	case SYN_K_ACK:
		if (bpf_map_lookup_elem(&syn_flows, &fk)) {
			syn_count(SYN_CNT_FLOW, &p);
			return -1;
		}
		if (bpf_tcp_raw_check_syncookie_ipv4(&iph, th)) {
			syn_count(SYN_CNT_ACK_BAD, &p);
			return XDP_DROP;
		}
		syn_remember(&fk);
		syn_count(SYN_CNT_ACK_OK, &p);
		return -1;
	case SYN_K_RST:
		if (bpf_map_lookup_elem(&syn_flows, &fk)) {
			syn_count(SYN_CNT_FLOW, &p);
			return -1;
		}
		syn_count(SYN_CNT_RST_BAD, &p);
		return XDP_DROP;
	default:
		return -1;
	}
}

static __noinline int syn_ipv6(struct xdp_md *ctx, int hop)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN_;
	if ((void *)(ip6 + 1) > data_end)
		return -1;
	struct syn_key6 lk = { .prefixlen = 128 };
	__builtin_memcpy(lk.addr, &ip6->daddr, 16);
	struct syn_policy *pol = bpf_map_lookup_elem(&syn_v6, &lk);
	if (!pol)
		return -1;
	struct syn_policy p = *pol;
	if (ip6->nexthdr != IPPROTO_TCP_) {
		/* TCP behind extension headers is left to the tenant namespace's synproxy. */
		if (ip6->nexthdr == 0 || ip6->nexthdr == 43 || ip6->nexthdr == 44 || ip6->nexthdr == 60)
			syn_count(SYN_CNT_UNANSWERABLE, &p);
		return -1;
	}

	struct ipv6hdr iph;
	__builtin_memcpy(&iph, ip6, sizeof(iph));
	__u32 zero = 0;
	struct syn_scratch *sc = bpf_map_lookup_elem(&syn_scratch, &zero);
	if (!sc)
		return -1;
	__u8 *tbuf = sc->tbuf;
	struct tcphdr *th = (struct tcphdr *)tbuf;
	if (bpf_xdp_load_bytes(ctx, ETH_HLEN_ + sizeof(iph), tbuf, sizeof(struct tcphdr)))
		return -1;
	struct syn_flow_key fk = {};
	__builtin_memcpy(fk.saddr, &iph.saddr, 16);
	__builtin_memcpy(fk.daddr, &iph.daddr, 16);
	fk.sport = th->source;
	fk.dport = th->dest;
	fk.family = 6;

	switch (syn_classify(th)) {
	case SYN_K_SYN: {
		__u32 tlen = syn_load_tcp(ctx, ETH_HLEN_ + sizeof(iph), tbuf, th->doff);
		if (!tlen) {
			syn_count(SYN_CNT_UNANSWERABLE, &p);
			return -1;
		}
		__s64 v = bpf_tcp_raw_gen_syncookie_ipv6(&iph, th, tlen);
		if (v < 0) {
			syn_count(SYN_CNT_ERROR, &p);
			return XDP_DROP;
		}
		syn_parse_opts(sc, tlen);
		struct syn_tcp_reply *r = &sc->r;
		__u32 rlen = syn_reply_tcp(r, th, (__u32)v, &p, &sc->opts);

		struct ipv6hdr rip = {};
		rip.version = 6;
		rip.payload_len = bpf_htons(rlen);
		rip.nexthdr = IPPROTO_TCP_;
		rip.hop_limit = 64;
		rip.saddr = iph.daddr;
		rip.daddr = iph.saddr;
		__u32 sum = syn_tcp_sum(r, rlen);
		const __u16 *a = (const __u16 *)&iph.saddr;
		const __u16 *b = (const __u16 *)&iph.daddr;
#pragma unroll
		for (int i = 0; i < 8; i++)
			sum += a[i] + b[i];
		sum += bpf_htons(IPPROTO_TCP_) + bpf_htons(rlen);
		r->th.check = syn_fold(sum);

		struct eth_hdr eth;
		__builtin_memcpy(&eth, data, sizeof(eth));
		int delta = (int)(ETH_HLEN_ + sizeof(rip) + rlen) - (int)(data_end - data);
		if (delta && bpf_xdp_adjust_tail(ctx, delta)) {
			syn_count(SYN_CNT_ERROR, &p);
			return XDP_DROP;
		}
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
		if (data + ETH_HLEN_ + sizeof(rip) + SYN_REPLY_SHORT > data_end)
			return XDP_DROP;
		__builtin_memcpy(data + ETH_HLEN_, &rip, sizeof(rip));
		if (rlen == SYN_REPLY_LONG) {
			if (data + ETH_HLEN_ + sizeof(rip) + SYN_REPLY_LONG > data_end)
				return XDP_DROP;
			__builtin_memcpy(data + ETH_HLEN_ + sizeof(rip), r, SYN_REPLY_LONG);
		} else {
			__builtin_memcpy(data + ETH_HLEN_ + sizeof(rip), r, SYN_REPLY_SHORT);
		}
		syn_count(SYN_CNT_SYNACK, &p);
		return syn_send(ctx, hop, &eth, 1, &iph.saddr, sizeof(rip) + rlen);
	}
	case SYN_K_SYNACK:
		syn_remember(&fk);
		syn_count(SYN_CNT_OUTBOUND, &p);
		return -1;
	case SYN_K_ACK:
		if (bpf_map_lookup_elem(&syn_flows, &fk)) {
			syn_count(SYN_CNT_FLOW, &p);
			return -1;
		}
		if (bpf_tcp_raw_check_syncookie_ipv6(&iph, th)) {
			syn_count(SYN_CNT_ACK_BAD, &p);
			return XDP_DROP;
		}
		syn_remember(&fk);
		syn_count(SYN_CNT_ACK_OK, &p);
		return -1;
	case SYN_K_RST:
		if (bpf_map_lookup_elem(&syn_flows, &fk)) {
			syn_count(SYN_CNT_FLOW, &p);
			return -1;
		}
		syn_count(SYN_CNT_RST_BAD, &p);
		return XDP_DROP;
	default:
		return -1;
	}
}

/* The stage: XDP_TX a cookie SYN-ACK, XDP_DROP an ACK without a valid cookie, or -1 = go on.
 * `hop`: whether a peer forwarded the packet (stage_steer), which decides where the answer goes. */
static __noinline int stage_syncookie(struct xdp_md *ctx, int hop)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->proto == bpf_htons(ETH_P_IP_))
		return syn_ipv4(ctx, hop);
	if (eth->proto == bpf_htons(ETH_P_IPV6_))
		return syn_ipv6(ctx, hop);
	return -1;
}

#endif
