/* Steering: `stage_steer(ctx)`, the XDP stage that sends a packet to the server that owns its flow
 * (DESIGN §1 [2]; Unimog, Cloudflare 2020). Three kinds of flow are steered:
 *
 *  - anycast service addresses (steer_svc): the flow hash picks one of STEER_BUCKETS buckets of
 *    the DC's Maglev table (steer_table, compiled by src/compile/maglev.ts); the bucket's first
 *    owner gets the packet. The table is the same on every server of the DC, so however the DC
 *    router's ECMP hash spreads flows, each flow ends on one server. Daisy chain: on the first
 *    owner, a TCP segment without SYN for which no local socket exists goes once more, to the
 *    bucket's second choice (the owner before a server was drained or added: maglev.ts
 *    `steeringTable`), so established flows survive table changes. SYNs always stay with the first owner: new flows go to the new table.
 *  - soft-unicast egress addresses (steer_egress): a reply to an egress address goes to the
 *    server owning the address's port slice (IPv4) or the whole address (IPv6), in this DC or
 *    another, wherever the FIB routes the owner's address.
 *  - tenant prefixes whose flows hold per-server state (steer_tenant: SYN-flood protection on):
 *    both directions of a flow go to one server of the DC, so the SYN cookie is checked with the
 *    secret that made it and synproxy's connection state sees every packet. From the Internet the
 *    packet is steered by its own 5-tuple; from the customer it arrives as GRE to the anycast
 *    endpoint (wherever the customer router's ECMP put the tunnel) and is steered, still
 *    encapsulated, by the inner 5-tuple. The hash is symmetric (endpoints in a fixed order), so
 *    client → tenant and tenant → client land in the same bucket. Daisy chain as for services,
 *    with the state these flows have instead of a socket: a non-SYN TCP segment the first owner
 *    holds no state for (not in syn_flows, and from the Internet not the ACK of one of this
 *    server's cookies) goes once to the second choice. A SYN from the customer's side (its own
 *    connection, or the host's SYN-ACK to a proxied one) is remembered in syn_flows, so the rest
 *    of that flow is known here.
 *
 * Encapsulation: GUE (variant 0) over UDP/IPv4, 36 bytes: outer IPv4 (src = this server,
 * dst = the owner), UDP (dst = steer_cfg.port, src = 49152 + 14 bits of the flow hash), GUE
 * header with the PRIV flag and 4 bytes of private data holding our magic and the hop number.
 * Why GUE and not IP-in-IP: the UDP source port carries the flow's entropy, so the receiving
 * NIC's RSS spreads forwarded flows over its queues (IP-in-IP from one peer lands on one queue
 * on most NICs), and the private data carries the hop (1 = to the first owner, 2 = to the
 * second choice) that stops a packet from being forwarded in circles when two servers briefly
 * disagree about a table; the 16 bytes more than IP-in-IP are the price.
 *
 * On the receiving side, GUE to our address and port is accepted only from fleet servers
 * (steer_peers); anything else is dropped and counted (STEER_BAD_PEER), so nobody outside can
 * inject packets past the DoS stage by wrapping them. A packet that arrives with hop 2 is never
 * forwarded again; hop 1 may take the daisy-chain step only.
 *
 * The forwarded packet is sent with bpf_fib_lookup's next hop: XDP_TX when it leaves by the
 * interface it came in on (a server's uplink), bpf_redirect otherwise. When the next hop's
 * neighbour entry is not resolved yet, the encapsulated packet is handed to the kernel, which
 * resolves it and forwards the packet (STEER_VIA_STACK); the flow's next packets go by XDP.
 *
 * Returns an XDP verdict, or -1: not steered here, go on with the next stage. Packets a peer
 * forwarded that stay here also return -1: the later stages see them as if the router had sent
 * them (the SYN-flood stage answers a forwarded SYN; GRE is decapsulated).
 */
#ifndef ANYEDGE_STEER_H
#define ANYEDGE_STEER_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "maps.h"
#include "syncookie.h"

/* Buckets of the Maglev table: the prime 65,537 (src/compile/maglev.ts MAGLEV_SIZE). */
#define STEER_BUCKETS 65537
/* Outer IPv4 (20) + UDP (8) + GUE header (4) + GUE private data (4). */
#define STEER_ENCAP_LEN 36
/* GUE flags word: PRIV (private data present), as Linux's include/net/gue.h GUE_FLAG_PRIV. */
#define STEER_GUE_FLAG_PRIV 0x0001
/* Private data: magic in the upper 24 bits, hop in the lowest byte. */
#define STEER_MAGIC 0x0ae55e00
#define STEER_MAGIC_MASK 0xffffff00
#define IPPROTO_UDP_ 17
#define IPPROTO_IPIP_ 4
#define IPPROTO_IPV6_ 41
#define AF_INET_ 2
#define AF_INET6_ 10
#define TCP_FLAG_SYN_ 0x02
#define TCP_FLAG_ACK_ 0x10
#define TCP_FLAG_RST_ 0x04

/* What the agent tells the stage (steer_cfg[0]). */
struct steer_cfg {
	__be32 self;        /* this server's address: outer source it sends from, outer destination it accepts */
	__be16 port;        /* GUE UDP port, network order */
	__u8 enabled;       /* 0: the stage steers nothing */
	__u8 _pad;
};

/* One bucket of the Maglev table: owner addresses, network order; 0 = none. */
struct steer_bucket {
	__be32 first;       /* the active server that owns the bucket */
	__be32 second;      /* where a non-SYN without a local socket goes: the owner before a drain, else the owner without `first`, or 0 */
};

/* An address as a map key: IPv6, or IPv4 as ::ffff:a.b.c.d. */
struct steer_ip {
	__u8 addr[16];
};

/* steer_egress.kind */
#define STEER_EG_SLICES 1   /* IPv4: dst port >> shift is the slice, steer_slices says who owns it */
#define STEER_EG_SERVER 2   /* the whole address belongs to one server (IPv6) */

/* Who owns an egress address. */
struct steer_egress {
	__be32 server;      /* the owner's address (kind SERVER); 0 for SLICES */
	__u8 kind;          /* STEER_EG_* */
	__u8 shift;         /* log2(slice size), kind SLICES */
	__u16 _pad;
};

/* Key of steer_slices: (egress address, slice number). */
struct steer_slice_key {
	__be32 ip;
	__u32 slice;
};

/* Outcomes, counted per CPU in steer_cnt. */
enum steer_counter {
	STEER_LOCAL = 0,         /* service flow owned here: passed on */
	STEER_FORWARD,           /* service flow sent to its first owner */
	STEER_FORWARD_2ND,       /* non-SYN without a local socket sent to the second choice */
	STEER_DECAP,             /* forwarded packet from a peer, decapsulated */
	STEER_BAD_PEER,          /* GUE to our port from a non-fleet source: dropped */
	STEER_MALFORMED,         /* GUE from a peer we cannot read (version, magic, inner protocol): dropped */
	STEER_EGRESS_LOCAL,      /* reply to an egress address owned here: passed on */
	STEER_EGRESS_FORWARD,    /* reply to an egress address sent to its owner */
	STEER_EGRESS_UNOWNED,    /* reply to slice 0 or to a slice nobody owns: passed, not forwarded */
	STEER_NO_ROUTE,          /* no FIB route to the owner: dropped */
	STEER_VIA_STACK,         /* owner's neighbour unresolved: encapsulated packet handed to the kernel */
	STEER_TENANT_LOCAL,      /* packet to a stateful tenant prefix, flow owned here: passed on */
	STEER_TENANT_FORWARD,    /* ... sent to its first owner */
	STEER_TENANT_FORWARD_2ND,/* ... non-SYN this server holds no state for, sent to the second choice */
	STEER_TUNNEL_LOCAL,      /* GRE from a customer of a stateful tenant prefix, flow owned here: decapsulated */
	STEER_TUNNEL_FORWARD,    /* ... sent (still GRE) to its first owner */
	STEER_TUNNEL_FORWARD_2ND,/* ... non-SYN this server holds no state for, sent to the second choice */
	STEER_CNT_MAX,
};

/* This server's address and port (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_cfg);
} steer_cfg SEC(".maps");

/* The DC's Maglev table: bucket → first owner and second choice. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, STEER_BUCKETS);
	__type(key, __u32);
	__type(value, struct steer_bucket);
} steer_table SEC(".maps");

/* Anycast service addresses whose flows are steered by steer_table. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct steer_ip);
	__type(value, __u32);
} steer_svc SEC(".maps");

/* Fleet servers (every DC), outer source address → 1: whose GUE packets are accepted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __be32);
	__type(value, __u32);
} steer_peers SEC(".maps");

/* Egress addresses and who owns them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct steer_ip);
	__type(value, struct steer_egress);
} steer_egress SEC(".maps");

/* (egress IPv4 address, slice) → the owning server's address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct steer_slice_key);
	__type(value, __be32);
} steer_slices SEC(".maps");

/* Key of steer_tenant: LPM-trie key over struct steer_ip (IPv4 as ::ffff:a.b.c.d, length + 96). */
struct steer_tenant_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Tenant prefixes whose flows are steered (SYN-flood protection keeps state per server) → 1. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct steer_tenant_key);
	__type(value, __u32);
} steer_tenant SEC(".maps");

/* Outcome counters (enum steer_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STEER_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} steer_cnt SEC(".maps");

static __always_inline void steer_count(__u32 what)
{
	__u64 *c = bpf_map_lookup_elem(&steer_cnt, &what);
	if (c)
		*c += 1;
}

/* Linux's jhash_3words (include/linux/jhash.h); src/compile/steer-hash.ts computes the same. */
#define STEER_ROL32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))
static __always_inline __u32 steer_jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += 0xdeadbeef + (3 << 2) + initval;
	b += 0xdeadbeef + (3 << 2) + initval;
	c += 0xdeadbeef + (3 << 2) + initval;
	c ^= b; c -= STEER_ROL32(b, 14);
	a ^= c; a -= STEER_ROL32(c, 11);
	b ^= a; b -= STEER_ROL32(a, 25);
	c ^= b; c -= STEER_ROL32(b, 16);
	a ^= c; a -= STEER_ROL32(c, 4);
	b ^= a; b -= STEER_ROL32(a, 14);
	c ^= b; c -= STEER_ROL32(b, 24);
	return c;
}

/* The flow of the packet at data, as steering needs it. */
struct steer_flow {
	struct steer_ip src;
	struct steer_ip dst;
	__u32 hash;
	__u32 sfold;         /* addresses folded to 32 bits, host order: for the symmetric hash */
	__u32 dfold;
	__be32 saddr4;       /* IPv4 only */
	__be32 daddr4;
	__be16 sport;        /* 0 when not TCP/UDP or a non-first fragment */
	__be16 dport;
	__u8 family;         /* 4 or 6 */
	__u8 proto;
	__u8 tcp_flags;
	__u8 l4_ok;          /* the TCP/UDP header is in the packet at l4_off */
	__u16 l3_off;        /* 14 (no VLAN on uplinks), or the inner packet's offset in a GRE packet */
	__u16 l4_off;
};

/* The largest offset of an inner packet steer_parse_l3 reads: Ethernet, IPv4 with options, GRE
 * with checksum, key and sequence number (14 + 60 + 16). */
#define STEER_MAX_L3 90

/* Parses the IPv4 (v6 = 0) or IPv6 packet at `l3` and its ports, and hashes the 5-tuple. -1: too
 * short to be IP. */
static __always_inline int steer_parse_l3(struct xdp_md *ctx, struct steer_flow *f, __u32 l3, int v6)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	if (l3 > STEER_MAX_L3)
		return -1;
	__u8 *ip = data + l3;
	__u32 l4_off = 0; /* from ip; 0: no transport header to read */
	f->l3_off = l3;
	if (!v6) {
		if ((void *)(ip + 20) > data_end)
			return -1;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		if (ihl < 20)
			return -1;
		f->family = 4;
		f->proto = ip[9];
		f->saddr4 = *(__be32 *)(ip + 12);
		f->daddr4 = *(__be32 *)(ip + 16);
		__builtin_memset(f->src.addr, 0, 10);
		f->src.addr[10] = 0xff;
		f->src.addr[11] = 0xff;
		__builtin_memcpy(&f->src.addr[12], ip + 12, 4);
		__builtin_memset(f->dst.addr, 0, 10);
		f->dst.addr[10] = 0xff;
		f->dst.addr[11] = 0xff;
		__builtin_memcpy(&f->dst.addr[12], ip + 16, 4);
		f->sfold = bpf_ntohl(f->saddr4);
		f->dfold = bpf_ntohl(f->daddr4);
		/* A non-first fragment has no ports: it hashes on addresses alone. */
		if (!(*(__be16 *)(ip + 6) & bpf_htons(IP_OFFSET_ | IP_MF_)))
			l4_off = ihl;
	} else {
		if ((void *)(ip + 40) > data_end)
			return -1;
		f->family = 6;
		f->proto = ip[6];
		__builtin_memcpy(f->src.addr, ip + 8, 16);
		__builtin_memcpy(f->dst.addr, ip + 24, 16);
		f->sfold = bpf_ntohl(*(__u32 *)(ip + 8) ^ *(__u32 *)(ip + 12) ^ *(__u32 *)(ip + 16) ^ *(__u32 *)(ip + 20));
		f->dfold = bpf_ntohl(*(__u32 *)(ip + 24) ^ *(__u32 *)(ip + 28) ^ *(__u32 *)(ip + 32) ^ *(__u32 *)(ip + 36));
		/* Extension headers are not walked: such packets hash on addresses alone. */
		l4_off = 40;
	}
	if (l4_off && l4_off <= 60 && (f->proto == IPPROTO_TCP_ || f->proto == IPPROTO_UDP_)) {
		__u8 *l4 = ip + l4_off;
		if (f->proto == IPPROTO_TCP_ && (void *)(l4 + 20) <= data_end) {
			f->sport = *(__be16 *)l4;
			f->dport = *(__be16 *)(l4 + 2);
			f->tcp_flags = l4[13];
			f->l4_ok = 1;
		} else if (f->proto == IPPROTO_UDP_ && (void *)(l4 + 8) <= data_end) {
			f->sport = *(__be16 *)l4;
			f->dport = *(__be16 *)(l4 + 2);
			f->l4_ok = 1;
		}
		f->l4_off = l3 + l4_off;
	}
	f->hash = steer_jhash_3words(f->sfold, f->dfold, ((__u32)bpf_ntohs(f->sport) << 16) | bpf_ntohs(f->dport), f->proto);
	return 0;
}

/* Parses the Ethernet frame's IPv4/IPv6 packet. -1: not IP. */
static __always_inline int steer_parse(struct xdp_md *ctx, struct steer_flow *f)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->proto == bpf_htons(ETH_P_IP_))
		return steer_parse_l3(ctx, f, ETH_HLEN_, 0);
	if (eth->proto == bpf_htons(ETH_P_IPV6_))
		return steer_parse_l3(ctx, f, ETH_HLEN_, 1);
	return -1;
}

/* The flow hash with the endpoints in a fixed order, the same for both directions of a flow:
 * what tenant flows are steered by (src/compile/steer-hash.ts `symmetricFlowHash`). */
static __always_inline __u32 steer_sym_hash(const struct steer_flow *f)
{
	__u32 a = f->sfold < f->dfold ? f->sfold : f->dfold;
	__u32 b = f->sfold < f->dfold ? f->dfold : f->sfold;
	__u32 sp = bpf_ntohs(f->sport), dp = bpf_ntohs(f->dport);
	__u32 lo = sp < dp ? sp : dp, hi = sp < dp ? dp : sp;
	return steer_jhash_3words(a, b, (lo << 16) | hi, f->proto);
}

/* Whether `ip` (struct steer_ip) is inside a stateful tenant prefix. */
static __always_inline int steer_is_tenant(const struct steer_ip *ip)
{
	struct steer_tenant_key k = { .prefixlen = 128 };
	__builtin_memcpy(k.addr, ip->addr, 16);
	return bpf_map_lookup_elem(&steer_tenant, &k) != 0;
}

/* The syn_flows key (bpf/syncookie.h: outside → protected address) of a tenant flow. `inbound`:
 * the packet goes from the outside to the tenant (else it comes from the tenant, through GRE). */
static __always_inline void steer_syn_key(const struct steer_flow *f, int inbound, struct syn_flow_key *k)
{
	const struct steer_ip *out = inbound ? &f->src : &f->dst;
	const struct steer_ip *in = inbound ? &f->dst : &f->src;
	if (f->family == 4) {
		__builtin_memcpy(k->saddr, &out->addr[12], 4);
		__builtin_memcpy(k->daddr, &in->addr[12], 4);
	} else {
		__builtin_memcpy(k->saddr, out->addr, 16);
		__builtin_memcpy(k->daddr, in->addr, 16);
	}
	k->sport = inbound ? f->sport : f->dport;
	k->dport = inbound ? f->dport : f->sport;
	k->family = f->family;
}

/* Whether this server holds state for a tenant flow's packet from the outside: the flow is in
 * syn_flows, or the packet is the ACK of a SYN cookie this server made (the kernel's secret is
 * per host: XDP's cookies and synproxy's alike). */
static __always_inline int steer_tenant_known(struct xdp_md *ctx, const struct steer_flow *f)
{
	struct syn_flow_key k = {};
	steer_syn_key(f, 1, &k);
	if (bpf_map_lookup_elem(&syn_flows, &k))
		return 1;
	if ((f->tcp_flags & (TCP_FLAG_ACK_ | TCP_FLAG_RST_ | TCP_FLAG_SYN_)) != TCP_FLAG_ACK_)
		return 0;
	struct tcphdr th;
	if (bpf_xdp_load_bytes(ctx, f->l4_off, &th, sizeof(th)))
		return 0;
	if (f->family == 4) {
		struct iphdr iph;
		if (bpf_xdp_load_bytes(ctx, f->l3_off, &iph, sizeof(iph)))
			return 0;
		return bpf_tcp_raw_check_syncookie_ipv4(&iph, &th) == 0;
	}
	struct ipv6hdr ip6;
	if (bpf_xdp_load_bytes(ctx, f->l3_off, &ip6, sizeof(ip6)))
		return 0;
	return bpf_tcp_raw_check_syncookie_ipv6(&ip6, &th) == 0;
}

/* Whether a TCP segment belongs to a connection on this server: an established, time-wait or
 * request socket; or a listener when the segment is the ACK of one of its SYN cookies. */
static __always_inline int steer_has_socket(struct xdp_md *ctx, struct steer_flow *f)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct bpf_sock_tuple t = {};
	__u32 tlen;
	__u8 *ip = data + ETH_HLEN_;
	if (f->family == 4) {
		t.ipv4.saddr = f->saddr4;
		t.ipv4.daddr = f->daddr4;
		t.ipv4.sport = f->sport;
		t.ipv4.dport = f->dport;
		tlen = sizeof(t.ipv4);
	} else {
		if ((void *)(ip + 40) > data_end)
			return 0;
		__builtin_memcpy(t.ipv6.saddr, ip + 8, 16);
		__builtin_memcpy(t.ipv6.daddr, ip + 24, 16);
		t.ipv6.sport = f->sport;
		t.ipv6.dport = f->dport;
		tlen = sizeof(t.ipv6);
	}
	struct bpf_sock *sk = bpf_skc_lookup_tcp(ctx, &t, tlen, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 0;
	int found = 1;
	if (sk->state == BPF_TCP_LISTEN) {
		/* A listener matches any segment to its port; only a valid cookie ACK is ours. */
		found = 0;
		/* Constant offsets: the helper wants bounds the verifier can see (no IP options). */
		if (f->family == 4 && f->l4_off == ETH_HLEN_ + 20) {
			__u8 *th = ip + 20;
			if ((void *)(th + 20) <= data_end)
				found = bpf_tcp_check_syncookie(sk, ip, 20, (void *)th, 20) == 0;
		} else if (f->family == 6) {
			__u8 *th = ip + 40;
			if ((void *)(th + 20) <= data_end)
				found = bpf_tcp_check_syncookie(sk, ip, 40, (void *)th, 20) == 0;
		}
	}
	bpf_sk_release(sk);
	return found;
}

/* Wraps the packet in IPv4 + UDP + GUE to `to` and sends it. Always returns a verdict. */
static __always_inline int steer_forward(struct xdp_md *ctx, const struct steer_cfg *cfg, __be32 to, __u8 hop,
					 __u32 hash, __u8 inner_family, __u32 outcome)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 inner_len = (__u32)(data_end - data) - ETH_HLEN_;
	__u16 tot_len = inner_len + STEER_ENCAP_LEN;

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET_;
	fib.l4_protocol = IPPROTO_UDP_;
	fib.tot_len = tot_len;
	fib.ifindex = ctx->ingress_ifindex;
	fib.ipv4_src = cfg->self;
	fib.ipv4_dst = to;
	long rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) {
		steer_count(STEER_NO_ROUTE);
		return XDP_DROP;
	}

	struct eth_hdr old;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(&old, eth, sizeof(old));
	if (bpf_xdp_adjust_head(ctx, -STEER_ENCAP_LEN)) {
		steer_count(STEER_NO_ROUTE);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	__u8 *ip = data + ETH_HLEN_;
	if ((void *)(ip + STEER_ENCAP_LEN) > data_end)
		return XDP_DROP;

	__u8 hdr[20] = {};
	hdr[0] = 0x45;
	*(__be16 *)(hdr + 2) = bpf_htons(tot_len);
	*(__be16 *)(hdr + 6) = bpf_htons(IP_DF_);
	hdr[8] = 64;
	hdr[9] = IPPROTO_UDP_;
	*(__be32 *)(hdr + 12) = cfg->self;
	*(__be32 *)(hdr + 16) = to;
	*(__u16 *)(hdr + 10) = ipv4_csum(hdr);
	__builtin_memcpy(ip, hdr, 20);

	__u8 *udp = ip + 20;
	/* Source port from the flow hash: entropy for the receiver's RSS, fixed per flow. */
	*(__be16 *)udp = bpf_htons(0xc000 | (hash & 0x3fff));
	*(__be16 *)(udp + 2) = cfg->port;
	*(__be16 *)(udp + 4) = bpf_htons(tot_len - 20);
	*(__be16 *)(udp + 6) = 0; /* no UDP checksum over IPv4 (RFC 768); the inner packet has its own */
	__u8 *gue = udp + 8;
	gue[0] = 0x01; /* version 0, C 0, hlen 1 (the private data word) */
	gue[1] = inner_family == 4 ? IPPROTO_IPIP_ : IPPROTO_IPV6_;
	*(__be16 *)(gue + 2) = bpf_htons(STEER_GUE_FLAG_PRIV);
	*(__be32 *)(gue + 4) = bpf_htonl(STEER_MAGIC | hop);

	eth->proto = bpf_htons(ETH_P_IP_);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		/* Still addressed to us: the kernel routes it, resolving the neighbour on the way. */
		__builtin_memcpy(eth->dst, old.dst, 6);
		__builtin_memcpy(eth->src, old.src, 6);
		steer_count(STEER_VIA_STACK);
		steer_count(outcome);
		return XDP_PASS;
	}
	__builtin_memcpy(eth->dst, fib.dmac, 6);
	__builtin_memcpy(eth->src, fib.smac, 6);
	steer_count(outcome);
	if (fib.ifindex == ctx->ingress_ifindex)
		return XDP_TX;
	return bpf_redirect(fib.ifindex, 0);
}

/* GUE to our port: from a peer, strip the outer headers and return the hop (1 or 2); otherwise a
 * verdict (drop) as a negative number -(verdict+1). */
static __always_inline int steer_decap(struct xdp_md *ctx, __u8 *ip, void *data_end)
{
	__be32 src = *(__be32 *)(ip + 12);
	if (!bpf_map_lookup_elem(&steer_peers, &src)) {
		steer_count(STEER_BAD_PEER);
		return -(XDP_DROP + 1);
	}
	__u8 *gue = ip + 28;
	if ((void *)(gue + 8) > data_end) {
		steer_count(STEER_MALFORMED);
		return -(XDP_DROP + 1);
	}
	__u32 priv = bpf_ntohl(*(__be32 *)(gue + 4));
	__u8 inner = gue[1];
	if (gue[0] != 0x01 || *(__be16 *)(gue + 2) != bpf_htons(STEER_GUE_FLAG_PRIV) ||
	    (priv & STEER_MAGIC_MASK) != STEER_MAGIC || (inner != IPPROTO_IPIP_ && inner != IPPROTO_IPV6_)) {
		steer_count(STEER_MALFORMED);
		return -(XDP_DROP + 1);
	}
	__u8 hop = priv & 0xff;
	struct eth_hdr old;
	__builtin_memcpy(&old, ip - ETH_HLEN_, sizeof(old));
	if (bpf_xdp_adjust_head(ctx, STEER_ENCAP_LEN)) {
		steer_count(STEER_MALFORMED);
		return -(XDP_DROP + 1);
	}
	void *data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -(XDP_DROP + 1);
	__builtin_memcpy(eth->dst, old.dst, 6);
	__builtin_memcpy(eth->src, old.src, 6);
	eth->proto = bpf_htons(inner == IPPROTO_IPIP_ ? ETH_P_IP_ : ETH_P_IPV6_);
	steer_count(STEER_DECAP);
	return hop ? hop : 1;
}

/* The Maglev bucket of `hash`, or 0 when the table has no owner for it. */
static __always_inline struct steer_bucket *steer_bucket_of(__u32 hash)
{
	__u32 bucket = hash % STEER_BUCKETS;
	struct steer_bucket *b = bpf_map_lookup_elem(&steer_table, &bucket);
	return b && b->first ? b : 0;
}

/* GRE to one of our anycast endpoints whose inner packet comes from a stateful tenant prefix:
 * forwarded, still encapsulated, to the owner of the inner flow; or -1 (decapsulate here, in the
 * GRE stage). Anything we cannot read is left to the GRE stage, which counts and drops it. */
static __always_inline int steer_tunnel(struct xdp_md *ctx, const struct steer_cfg *cfg, __u8 *ip, void *data_end, int hop)
{
	__u32 ihl = (ip[0] & 0x0f) * 4;
	if ((ip[0] >> 4) != 4 || ihl < 20 || ihl > 60 || (*(__be16 *)(ip + 6) & bpf_htons(IP_MF_ | IP_OFFSET_)))
		return -1;
	__u8 *gre = ip + ihl;
	if ((void *)(gre + 4) > data_end)
		return -1;
	__u16 gflags = bpf_ntohs(*(__be16 *)gre);
	__u16 gproto = bpf_ntohs(*(__be16 *)(gre + 2));
	if ((gflags & (GRE_F_RESERVED | GRE_VERSION_MASK)) || (gproto != ETH_P_IP_ && gproto != ETH_P_IPV6_))
		return -1;
	__u32 glen = 4;
	if (gflags & GRE_F_CSUM)
		glen += 4;
	if (gflags & GRE_F_KEY)
		glen += 4;
	if (gflags & GRE_F_SEQ)
		glen += 4;
	struct steer_flow f = {};
	if (steer_parse_l3(ctx, &f, ETH_HLEN_ + ihl + glen, gproto == ETH_P_IPV6_) < 0)
		return -1;
	if (!steer_is_tenant(&f.src))
		return -1;
	__u32 hash = steer_sym_hash(&f);
	struct steer_bucket *b = steer_bucket_of(hash);
	if (b && hop == 0 && b->first != cfg->self)
		return steer_forward(ctx, cfg, b->first, 1, hash, 4, STEER_TUNNEL_FORWARD);
	if (b && hop < 2 && f.proto == IPPROTO_TCP_ && f.l4_ok && !(f.tcp_flags & TCP_FLAG_SYN_) &&
	    b->second && b->second != cfg->self) {
		struct syn_flow_key k = {};
		steer_syn_key(&f, 0, &k);
		if (!bpf_map_lookup_elem(&syn_flows, &k))
			return steer_forward(ctx, cfg, b->second, 2, hash, 4, STEER_TUNNEL_FORWARD_2ND);
	}
	if (f.proto == IPPROTO_TCP_ && f.l4_ok && (f.tcp_flags & TCP_FLAG_SYN_) && !(f.tcp_flags & TCP_FLAG_RST_)) {
		/* The customer's side opens a flow (its SYN) or accepts a proxied one (its SYN-ACK):
		 * the flow's state is here from now on. */
		struct syn_flow_key k = {};
		steer_syn_key(&f, 0, &k);
		__u64 now = bpf_ktime_get_ns();
		bpf_map_update_elem(&syn_flows, &k, &now, BPF_ANY);
	}
	steer_count(STEER_TUNNEL_LOCAL);
	return -1;
}

/* The stage. *hop_out: 0 when the packet came from the router, 1 or 2 when a peer forwarded it
 * (the SYN-flood stage then routes its answer by the FIB instead of back to the sender). */
static __noinline int stage_steer(struct xdp_md *ctx, int *hop_out)
{
	*hop_out = 0;
	__u32 zero = 0;
	struct steer_cfg *cfg = bpf_map_lookup_elem(&steer_cfg, &zero);
	if (!cfg || !cfg->enabled)
		return -1;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	/* hop: 0 arrived from the router; 1 forwarded to us as first owner; 2 as second choice. */
	int hop = 0;
	if (eth->proto == bpf_htons(ETH_P_IP_)) {
		__u8 *ip = (void *)(eth + 1);
		if ((void *)(ip + 28) <= data_end && ip[9] == IPPROTO_UDP_ && ip[0] == 0x45 &&
		    *(__be32 *)(ip + 16) == cfg->self && *(__be16 *)(ip + 22) == cfg->port &&
		    !(*(__be16 *)(ip + 6) & bpf_htons(IP_MF_ | IP_OFFSET_))) {
			hop = steer_decap(ctx, ip, data_end);
			if (hop < 0)
				return -hop - 1;
			*hop_out = hop;
		}
	}
	/* Whatever a peer forwarded and is not forwarded again goes on through the later stages
	 * (SYN cookies, GRE decapsulation) as if it had arrived from the router. */

	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return -1;
	if (eth->proto == bpf_htons(ETH_P_IP_)) {
		__u8 *ip = (void *)(eth + 1);
		if ((void *)(ip + 20) <= data_end && ip[9] == IPPROTO_GRE_) {
			__be32 daddr = *(__be32 *)(ip + 16);
			if (bpf_map_lookup_elem(&gre_endpoints, &daddr))
				return steer_tunnel(ctx, cfg, ip, data_end, hop);
		}
	}

	struct steer_flow f = {};
	if (steer_parse(ctx, &f) < 0)
		return -1;

	if (bpf_map_lookup_elem(&steer_svc, &f.dst)) {
		struct steer_bucket *b = steer_bucket_of(f.hash);
		if (!b) {
			steer_count(STEER_LOCAL);
			return -1;
		}
		if (hop == 0 && b->first != cfg->self)
			return steer_forward(ctx, cfg, b->first, 1, f.hash, f.family, STEER_FORWARD);
		/* We are the first owner (or were sent the packet as such). */
		if (hop < 2 && f.proto == IPPROTO_TCP_ && f.l4_ok && !(f.tcp_flags & TCP_FLAG_SYN_) &&
		    b->second && b->second != cfg->self && !steer_has_socket(ctx, &f))
			return steer_forward(ctx, cfg, b->second, 2, f.hash, f.family, STEER_FORWARD_2ND);
		steer_count(STEER_LOCAL);
		return -1;
	}

	if (steer_is_tenant(&f.dst)) {
		__u32 hash = steer_sym_hash(&f);
		struct steer_bucket *b = steer_bucket_of(hash);
		if (b && hop == 0 && b->first != cfg->self)
			return steer_forward(ctx, cfg, b->first, 1, hash, f.family, STEER_TENANT_FORWARD);
		if (b && hop < 2 && f.proto == IPPROTO_TCP_ && f.l4_ok && !(f.tcp_flags & TCP_FLAG_SYN_) &&
		    b->second && b->second != cfg->self && !steer_tenant_known(ctx, &f))
			return steer_forward(ctx, cfg, b->second, 2, hash, f.family, STEER_TENANT_FORWARD_2ND);
		steer_count(STEER_TENANT_LOCAL);
		return -1;
	}

	struct steer_egress *e = bpf_map_lookup_elem(&steer_egress, &f.dst);
	if (!e)
		return -1;
	__be32 owner = 0;
	if (e->kind == STEER_EG_SERVER) {
		owner = e->server;
	} else if (e->kind == STEER_EG_SLICES && f.family == 4 && f.l4_ok) {
		struct steer_slice_key k = {};
		k.ip = f.daddr4;
		k.slice = (__u32)bpf_ntohs(f.dport) >> (e->shift & 15);
		__be32 *o = k.slice ? bpf_map_lookup_elem(&steer_slices, &k) : 0;
		if (o)
			owner = *o;
	}
	if (!owner) {
		steer_count(STEER_EGRESS_UNOWNED);
		return -1;
	}
	if (hop || owner == cfg->self) {
		steer_count(STEER_EGRESS_LOCAL);
		return -1;
	}
	return steer_forward(ctx, cfg, owner, 1, f.hash, f.family, STEER_EGRESS_FORWARD);
}

#endif
