/* DoS stage of xdp_edge: drop and rate-limit rules as data (issue 6, DESIGN §1 stage [1]).
 *
 * Classifier: tuple-space search, as Open vSwitch's megaflow classifier. The compiler
 * (src/compile/dos/) turns every rule into entries of dos_match keyed by the *masked* header
 * fields (family, protocol, source and destination prefix, source and destination port blocks:
 * a port range becomes aligned power-of-two blocks), the mask itself being part of the key. The
 * distinct masks in use are listed in dos_masks (at most DOS_MAX_MASKS). Per packet: one bounded
 * loop over the masks in use, one hash lookup each, so the cost is O(#masks) and does not grow
 * with the number of rules. What is a range or needs a compare (IP length, TTL, TCP flags under
 * a mask, payload bytes under a mask) is checked on the hit entry's rules (dos_rules[slot]).
 *
 * Verdict: a drop rule beats a rate-limit rule; among rules of the same action the lowest slot
 * wins. Only the winning rule counts the packet (dos_stats[slot]).
 *
 * Rate limits: token buckets in a per-CPU LRU hash keyed by (slot, generation, destination
 * address) or (slot, generation, source prefix). Per-CPU, with the rate split evenly over the
 * CPUs (dos_conf.cpus, written by the agent), because the kernel refuses bpf_spin_lock in LRU
 * maps (EOPNOTSUPP) and LRU eviction is what bounds an attacker who spreads over many sources;
 * a per-CPU value is only ever touched by its own CPU with preemption off, so no update is lost.
 * The price: one flow pinned to one CPU by RSS gets only its CPU's share. Buckets hold one
 * second of (the CPU's share of) the rate, at least one packet; credits are kept in picoseconds
 * of transmission time so pps up to 2^32 and bps up to 10^13 fit 64-bit arithmetic.
 *
 * Map names are at most 15 characters. Layouts are checked against BTF by
 * src/kernel/bpf/dos-layout.test.ts.
 */
#ifndef ANYEDGE_DOS_H
#define ANYEDGE_DOS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"

#define DOS_MAX_MASKS 32        /* distinct masks: the per-packet loop bound */
#define DOS_MAX_RULES 16384     /* rule slots */
#define DOS_MAX_ENTRIES 131072  /* dos_match entries (port ranges and prefix lists expand) */
#define DOS_SLOTS_PER_KEY 7     /* rules sharing one masked key */
#define DOS_PAYLOAD_MAX 16      /* payload bytes a rule may compare */
#define DOS_MAX_BUCKETS 65536   /* rate-limit buckets, LRU */

/* dos_rule.action */
#define DOS_ACT_NONE 0          /* free slot */
#define DOS_ACT_DROP 1
#define DOS_ACT_RATE 2

/* dos_rule.flags: compares done on a hit, and how a rate limit keys its buckets */
#define DOS_F_LEN 0x01          /* len_lo <= IP length <= len_hi */
#define DOS_F_TTL 0x02          /* ttl_lo <= TTL / hop limit <= ttl_hi */
#define DOS_F_TCPFLAGS 0x04     /* (flags & tcp_mask) == tcp_value */
#define DOS_F_PAYLOAD 0x08      /* (payload[off..] & pay_mask) == pay_bytes */
#define DOS_F_PER_SRC 0x10      /* buckets per source prefix (else per destination address) */
#define DOS_F_L4 0x20           /* needs the transport header (ports, flags, payload) */

/* Key of dos_match: the packet's fields under one mask, plus the mask's own description, so
 * equal masked values under two different masks never meet. Addresses in network order; an
 * IPv4 address fills the first 4 bytes. */
struct dos_key {
	__u8 family;            /* 4 or 6 */
	__u8 proto;             /* IP protocol, 0 when has_proto is 0 */
	__u8 src_len;           /* source prefix length of the mask */
	__u8 dst_len;
	__u8 has_proto;
	__u8 pad[3];
	__be16 sport;           /* port & port mask */
	__be16 sport_mask;
	__be16 dport;
	__be16 dport_mask;
	__u8 src[16];           /* address & prefix mask */
	__u8 dst[16];
};

/* A mask in use (value of dos_masks); family 0: unused index. */
struct dos_mask {
	__u8 family;
	__u8 has_proto;
	__u8 src_len;
	__u8 dst_len;
	__be16 sport_mask;
	__be16 dport_mask;
	__u8 src[16];           /* byte masks of the prefix lengths */
	__u8 dst[16];
};

/* Value of dos_match: the rules whose match has this masked key. */
struct dos_slots {
	__u16 n;
	__u16 slot[DOS_SLOTS_PER_KEY];
};

/* One rule (value of dos_rules, indexed by its slot). */
struct dos_rule {
	__u8 action;            /* DOS_ACT_* */
	__u8 flags;             /* DOS_F_* */
	__u8 tcp_mask;
	__u8 tcp_value;
	__u8 ttl_lo;
	__u8 ttl_hi;
	__u8 src_plen4;         /* per source prefix: prefix lengths */
	__u8 src_plen6;
	__u16 len_lo;
	__u16 len_hi;
	__u16 pay_off;          /* from the end of the TCP/UDP header */
	__u8 pay_len;
	__u8 pad;
	__u32 gen;              /* hash of the rule id and its rate: part of the bucket key */
	__u32 reserved;
	__u64 id_hash;          /* hash of the rule id: tells the agent which rule holds the slot */
	__u64 pps;              /* 0: no packet rate */
	__u64 bps;              /* 0: no bit rate */
	__u8 pay_bytes[DOS_PAYLOAD_MAX];
	__u8 pay_mask[DOS_PAYLOAD_MAX];
};

/* Per-rule counters, per CPU; the agent sums the CPUs. */
struct dos_stats {
	__u64 packets;          /* matched (this rule won) */
	__u64 bytes;            /* IP bytes of those */
	__u64 dropped;
};

/* dos_conf[0]. */
struct dos_conf {
	__u32 nmasks;           /* dos_masks indexes below this are looked at */
	__u32 cpus;             /* CPUs sharing a rate (0 is read as 1) */
};

/* Key of dos_buckets. */
struct dos_bkey {
	__u16 slot;
	__u8 family;
	__u8 pad;
	__u32 gen;
	__u8 addr[16];          /* destination address, or source prefix */
};

/* Value of dos_buckets (per CPU). */
struct dos_bucket {
	__u64 last_ns;
	__u64 pkt_credit;       /* picoseconds of packet budget */
	__u64 byte_credit;      /* picoseconds of byte budget */
};

/* Masks in use, by index (the agent keeps an index while its mask is in use). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DOS_MAX_MASKS);
	__type(key, __u32);
	__type(value, struct dos_mask);
} dos_masks SEC(".maps");

/* Masked packet key → rules. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DOS_MAX_ENTRIES);
	__type(key, struct dos_key);
	__type(value, struct dos_slots);
} dos_match SEC(".maps");

/* Rule slot → what the rule compares and does. A hash, not an array, although slots are small
 * numbers: the agent reads it whole on every pass, and a dump holds only the slots in use. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DOS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct dos_rule);
} dos_rules SEC(".maps");

/* Rule slot → counters (zeroed by the agent when a slot is assigned). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DOS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct dos_stats);
} dos_stats SEC(".maps");

/* Global settings of the stage. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dos_conf);
} dos_conf SEC(".maps");

/* Token buckets of rate-limit rules. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, DOS_MAX_BUCKETS);
	__type(key, struct dos_bkey);
	__type(value, struct dos_bucket);
} dos_buckets SEC(".maps");

/* What the stage knows of a packet. */
struct dos_pkt {
	struct xdp_md *ctx;
	__u8 family;
	__u8 proto;
	__u8 ttl;
	__u8 tcp_flags;
	__u8 has_l4;
	__u8 pad;
	__u16 len;              /* IP length */
	__be16 sport;
	__be16 dport;
	__u32 payload_off;      /* from the start of the frame */
	__u8 src[16];
	__u8 dst[16];
	/* best verdicts so far (slot + 1; 0 = none) */
	__u32 drop_slot;
	__u32 rate_slot;
	__u32 nmasks;
};

#define IPPROTO_UDP_ 17
#define IPPROTO_SCTP_ 132
#define IPPROTO_DCCP_ 33
#define IPPROTO_UDPLITE_ 136

static __always_inline int dos_has_ports(__u8 p)
{
	return p == IPPROTO_TCP_ || p == IPPROTO_UDP_ || p == IPPROTO_SCTP_ || p == IPPROTO_DCCP_ || p == IPPROTO_UDPLITE_;
}

/* Reads ports, TCP flags and the payload offset of the transport header at `off`. */
static __always_inline void dos_parse_l4(struct dos_pkt *p, void *data, void *data_end, __u32 off)
{
	if (!dos_has_ports(p->proto) || off > 1024)
		return;
	__u8 *l4 = data + off;
	if ((void *)(l4 + 8) > data_end)
		return;
	p->sport = *(__be16 *)l4;
	p->dport = *(__be16 *)(l4 + 2);
	p->has_l4 = 1;
	if (p->proto == IPPROTO_TCP_) {
		if ((void *)(l4 + 20) > data_end) {
			p->has_l4 = 0;
			return;
		}
		p->tcp_flags = l4[13];
		p->payload_off = off + ((l4[12] >> 4) * 4);
	} else {
		p->payload_off = off + 8;
	}
}

static __always_inline int dos_parse(struct dos_pkt *p, void *data, void *data_end)
{
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	__u8 *ip = (void *)(eth + 1);
	if (eth->proto == bpf_htons(ETH_P_IP_)) {
		if ((void *)(ip + 20) > data_end || (ip[0] >> 4) != 4)
			return -1;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		if (ihl < 20)
			return -1;
		p->family = 4;
		p->ttl = ip[8];
		p->proto = ip[9];
		p->len = bpf_ntohs(*(__be16 *)(ip + 2));
		__builtin_memcpy(p->src, ip + 12, 4);
		__builtin_memcpy(p->dst, ip + 16, 4);
		/* A later fragment has no transport header: rules needing one do not match it. */
		if (bpf_ntohs(*(__be16 *)(ip + 6)) & IP_OFFSET_)
			return 0;
		dos_parse_l4(p, data, data_end, ETH_HLEN_ + ihl);
		return 0;
	}
	if (eth->proto == bpf_htons(ETH_P_IPV6_)) {
		if ((void *)(ip + 40) > data_end || (ip[0] >> 4) != 6)
			return -1;
		p->family = 6;
		p->ttl = ip[7];
		p->len = bpf_ntohs(*(__be16 *)(ip + 4)) + 40;
		__builtin_memcpy(p->src, ip + 8, 16);
		__builtin_memcpy(p->dst, ip + 24, 16);
		__u8 nh = ip[6];
		__u32 off = ETH_HLEN_ + 40;
		/* Walk a few extension headers to the transport header. */
#pragma unroll
		for (int i = 0; i < 4; i++) {
			if (nh != 0 && nh != 43 && nh != 60 && nh != 44 && nh != 51)
				break;
			if (off > 512)
				return 0;
			__u8 *h = data + off;
			if ((void *)(h + 8) > data_end)
				return 0;
			if (nh == 44) {
				if (bpf_ntohs(*(__be16 *)(h + 2)) & 0xfff8)
					return 0; /* later fragment */
				nh = h[0];
				off += 8;
			} else if (nh == 51) {
				nh = h[0];
				off += ((__u32)h[1] + 2) * 4;
			} else {
				nh = h[0];
				off += ((__u32)h[1] + 1) * 8;
			}
		}
		p->proto = nh;
		dos_parse_l4(p, data, data_end, off);
		return 0;
	}
	return -1;
}

/* Whether rule `r` accepts the packet beyond its masked key. */
static __always_inline int dos_rule_matches(struct dos_pkt *p, struct dos_rule *r)
{
	__u8 f = r->flags;
	if ((f & DOS_F_L4) && !p->has_l4)
		return 0;
	if ((f & DOS_F_LEN) && (p->len < r->len_lo || p->len > r->len_hi))
		return 0;
	if ((f & DOS_F_TTL) && (p->ttl < r->ttl_lo || p->ttl > r->ttl_hi))
		return 0;
	if ((f & DOS_F_TCPFLAGS) && (p->proto != IPPROTO_TCP_ || (p->tcp_flags & r->tcp_mask) != r->tcp_value))
		return 0;
	if (f & DOS_F_PAYLOAD) {
		__u8 buf[DOS_PAYLOAD_MAX] = {};
		__u32 n = r->pay_len;
		if (n < 1 || n > DOS_PAYLOAD_MAX)
			return 0;
		__u32 off = p->payload_off + r->pay_off;
		if (bpf_xdp_load_bytes(p->ctx, off, buf, n))
			return 0; /* the packet ends before the signature */
#pragma unroll
		for (int i = 0; i < DOS_PAYLOAD_MAX; i++)
			if ((buf[i] & r->pay_mask[i]) != r->pay_bytes[i])
				return 0;
	}
	return 1;
}

/* One mask: build the masked key, look it up, judge the rules of the hit. */
static long dos_try_mask(__u32 i, void *arg)
{
	struct dos_pkt *p = arg;
	if (i >= p->nmasks)
		return 1;
	struct dos_mask *m = bpf_map_lookup_elem(&dos_masks, &i);
	if (!m || m->family != p->family)
		return 0;
	struct dos_key k = {};
	k.family = p->family;
	if (m->has_proto) {
		k.has_proto = 1;
		k.proto = p->proto;
	}
	k.src_len = m->src_len;
	k.dst_len = m->dst_len;
	k.sport_mask = m->sport_mask;
	k.dport_mask = m->dport_mask;
	k.sport = p->sport & m->sport_mask;
	k.dport = p->dport & m->dport_mask;
#pragma unroll
	for (int w = 0; w < 16; w += 4) {
		*(__u32 *)&k.src[w] = *(__u32 *)&p->src[w] & *(__u32 *)&m->src[w];
		*(__u32 *)&k.dst[w] = *(__u32 *)&p->dst[w] & *(__u32 *)&m->dst[w];
	}
	struct dos_slots *s = bpf_map_lookup_elem(&dos_match, &k);
	if (!s)
		return 0;
#pragma unroll
	for (int j = 0; j < DOS_SLOTS_PER_KEY; j++) {
		if (j >= s->n)
			break;
		__u32 slot = s->slot[j];
		struct dos_rule *r = bpf_map_lookup_elem(&dos_rules, &slot);
		if (!r || r->action == DOS_ACT_NONE)
			continue;
		if (r->action == DOS_ACT_DROP) {
			if (p->drop_slot && p->drop_slot <= slot + 1)
				continue;
		} else if (p->drop_slot || (p->rate_slot && p->rate_slot <= slot + 1)) {
			continue;
		}
		if (!dos_rule_matches(p, r))
			continue;
		if (r->action == DOS_ACT_DROP)
			p->drop_slot = slot + 1;
		else
			p->rate_slot = slot + 1;
	}
	return 0;
}

/* ps of budget per second: buckets hold one second of rate. */
#define DOS_PS_PER_S 1000000000000ULL

/* Takes one packet of `bytes` from the rule's bucket for this packet; 1 = within the rate. */
static __always_inline int dos_take(struct dos_pkt *p, __u32 slot, struct dos_rule *r)
{
	struct dos_bkey bk = {};
	bk.slot = slot;
	bk.family = p->family;
	bk.gen = r->gen;
	if (r->flags & DOS_F_PER_SRC) {
		__u32 plen = p->family == 4 ? r->src_plen4 : r->src_plen6;
#pragma unroll
		for (int b = 0; b < 16; b++) {
			__u32 bit = b * 8;
			__u8 mask = plen >= bit + 8 ? 0xff : plen <= bit ? 0 : (__u8)(0xff << (8 - (plen - bit)));
			bk.addr[b] = p->src[b] & mask;
		}
	} else {
		__builtin_memcpy(bk.addr, p->dst, 16);
	}
	__u32 zero = 0;
	struct dos_conf *c = bpf_map_lookup_elem(&dos_conf, &zero);
	__u64 cpus = c && c->cpus ? c->cpus : 1;
	struct dos_bucket *b = bpf_map_lookup_elem(&dos_buckets, &bk);
	if (!b) {
		struct dos_bucket nb = {};
		bpf_map_update_elem(&dos_buckets, &bk, &nb, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&dos_buckets, &bk);
		if (!b)
			return 1; /* no room even after eviction: let it through rather than guess */
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 elapsed = now - b->last_ns;
	if (b->last_ns == 0 || elapsed > 1000000000ULL)
		elapsed = 1000000000ULL;
	b->last_ns = now;
	__u64 add = elapsed * 1000; /* ns → ps */
	__u64 pcost = 0, bcost = 0, pcap = DOS_PS_PER_S, bcap = DOS_PS_PER_S;
	__u64 pc = b->pkt_credit, bc = b->byte_credit;
	if (r->pps) {
		pcost = DOS_PS_PER_S * cpus / r->pps;
		if (pcost > pcap)
			pcap = pcost;
		pc = pc + add > pcap ? pcap : pc + add;
	}
	if (r->bps) {
		__u64 q = 8 * DOS_PS_PER_S * cpus;
		__u64 bytes = p->len;
		__u64 per_byte = q / r->bps;
		/* Only an absurd rate (well under a bit per second per CPU) gets here; it keeps the
		 * product below 2^62 and still admits nothing but the first packet of a second. */
		if (per_byte > (1ULL << 46))
			per_byte = 1ULL << 46;
		bcost = bytes * per_byte + bytes * (q % r->bps) / r->bps;
		if (bcost > bcap)
			bcap = bcost;
		bc = bc + add > bcap ? bcap : bc + add;
	}
	int pass = pc >= pcost && bc >= bcost;
	if (pass) {
		pc -= pcost;
		bc -= bcost;
	}
	b->pkt_credit = pc;
	b->byte_credit = bc;
	return pass;
}

/* Stage [1]: XDP_DROP for a packet a drop rule matches or a rate limit finds in excess; -1 to go
 * on with the next stage otherwise. Never drops a packet it cannot parse (not its job). */
static __noinline int stage_dos(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct dos_conf *c = bpf_map_lookup_elem(&dos_conf, &zero);
	if (!c || c->nmasks == 0)
		return -1;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct dos_pkt p = {};
	p.ctx = ctx;
	if (dos_parse(&p, data, data_end))
		return -1;
	p.nmasks = c->nmasks > DOS_MAX_MASKS ? DOS_MAX_MASKS : c->nmasks;
	bpf_loop(DOS_MAX_MASKS, dos_try_mask, &p, 0);
	__u32 slot;
	int drop;
	if (p.drop_slot) {
		slot = p.drop_slot - 1;
		drop = 1;
	} else if (p.rate_slot) {
		slot = p.rate_slot - 1;
		struct dos_rule *r = bpf_map_lookup_elem(&dos_rules, &slot);
		drop = r ? !dos_take(&p, slot, r) : 0;
	} else {
		return -1;
	}
	struct dos_stats *st = bpf_map_lookup_elem(&dos_stats, &slot);
	if (st) {
		st->packets++;
		st->bytes += p.len;
		if (drop)
			st->dropped++;
	}
	return drop ? XDP_DROP : -1;
}

#endif
