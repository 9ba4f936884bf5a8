/* Traffic sampling for attack detection: `dos_sample(ctx)`, the first call of xdp_edge. It never
 * drops or changes a packet.
 *
 * Why a per-CPU array ring and not a BPF ring buffer or per-CPU LRU counters:
 * - the agent is Node, which cannot mmap a BPF_MAP_TYPE_RINGBUF; it reads maps through bpftool,
 *   one process per read, so the map must be readable with one `map dump`;
 * - counters keyed by destination or source would have to pick the keys (dst, src /24, ports,
 *   payload signature …) in C and would fill up under a spoofed-source flood; header summaries
 *   let the agent group samples any way it likes (top destinations, sources by /24 and /64,
 *   signatures) and build the most specific rule, with the work done once a second in
 *   TypeScript instead of per packet in XDP.
 * 1 packet in N (smp_config.every, 0 = off) is summarised into the next slot of its CPU's ring
 * (SMP_SLOTS slots); per-CPU maps need no locks, so concurrent CPUs never contend. Each record
 * carries a per-CPU sequence number at its start and again at its end: the reader takes the
 * records newer than its last read, drops a record whose two copies differ (read while being
 * written), and learns from the gap between sequence numbers how many samples the ring
 * overwrote, so rates stay right (samples × N) even when it kept only part of them.
 *
 * Cost when not sampling: one array lookup (inlined by the verifier) and one prandom call.
 */
#ifndef ANYEDGE_SAMPLE_H
#define ANYEDGE_SAMPLE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "parse.h"

/* Slots per CPU; a power of two so the slot is seq & (SMP_SLOTS - 1). At one read a second this
 * keeps every sample up to 1,024 samples/s per CPU (e.g. 10 Mpps per CPU at 1 in 10,000). */
#define SMP_SLOTS 1024
/* Payload bytes kept after the transport header: what a DoS rule can match (model/dos.ts). */
#define SMP_PAYLOAD 16

/* What the agent tells the sampler. */
struct dos_sample_cfg {
	__u32 every;         /* sample 1 packet in `every`; 0: sampling off */
	__u32 _pad;
};

/* One sampled packet's header summary. Addresses in network order (IPv4: first 4 bytes). */
struct dos_sample_rec {
	__u64 seq;           /* this CPU's sample count when written (1, 2, …); 0: empty slot */
	__u64 ktime;         /* bpf_ktime_get_ns() */
	__u8 src[16];
	__u8 dst[16];
	__be16 sport;        /* TCP/UDP ports, network order; 0 for other protocols and fragments */
	__be16 dport;
	__u16 len;           /* IP packet length: IPv4 total length, IPv6 payload length + 40 */
	__u8 family;         /* 4 or 6 */
	__u8 proto;          /* IPv4 protocol / IPv6 next header */
	__u8 ttl;            /* TTL / hop limit */
	__u8 tcp_flags;      /* TCP flag byte (fin 0x01 … cwr 0x80); 0 for others */
	__u8 payload_len;    /* bytes of payload kept, 0–16 */
	__u8 _pad[5];
	__u8 payload[SMP_PAYLOAD]; /* the first bytes after the TCP (with options) or UDP header */
	__u64 seq_end;       /* = seq once the record is complete */
};

/* Sampling rate (index 0). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dos_sample_cfg);
} smp_config SEC(".maps");

/* Samples written per CPU (index 0): the next record's seq is this + 1. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} smp_cursor SEC(".maps");

/* The per-CPU rings of header summaries, slot = seq % SMP_SLOTS. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SMP_SLOTS);
	__type(key, __u32);
	__type(value, struct dos_sample_rec);
} smp_ring SEC(".maps");

/* Copies up to SMP_PAYLOAD bytes from p, as far as the packet goes. */
static __always_inline __u8 smp_copy_payload(__u8 *out, __u8 *p, void *data_end)
{
	__u8 n = 0;
#pragma unroll
	for (int i = 0; i < SMP_PAYLOAD; i++) {
		if ((void *)(p + i + 1) > data_end)
			break;
		out[i] = p[i];
		n++;
	}
	return n;
}

/* Fills ports, TCP flags and payload from the transport header at l4. */
static __always_inline void smp_l4(struct dos_sample_rec *r, __u8 *l4, void *data_end)
{
	if (r->proto == IPPROTO_TCP_) {
		if ((void *)(l4 + 20) > data_end)
			return;
		r->sport = *(__be16 *)l4;
		r->dport = *(__be16 *)(l4 + 2);
		r->tcp_flags = l4[13];
		__u32 doff = (l4[12] >> 4) * 4;
		if (doff < 20)
			return;
		r->payload_len = smp_copy_payload(r->payload, l4 + doff, data_end);
	} else if (r->proto == 17 /* UDP */) {
		if ((void *)(l4 + 8) > data_end)
			return;
		r->sport = *(__be16 *)l4;
		r->dport = *(__be16 *)(l4 + 2);
		r->payload_len = smp_copy_payload(r->payload, l4 + 8, data_end);
	}
}

static __noinline void dos_sample(struct xdp_md *ctx)
{
	__u32 zero = 0;
	struct dos_sample_cfg *cfg = bpf_map_lookup_elem(&smp_config, &zero);
	if (!cfg || cfg->every == 0)
		return;
	if (cfg->every > 1 && bpf_get_prandom_u32() % cfg->every != 0)
		return;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct eth_hdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return;
	__u16 eproto = bpf_ntohs(eth->proto);
	if (eproto != ETH_P_IP_ && eproto != ETH_P_IPV6_)
		return;
	__u64 *cursor = bpf_map_lookup_elem(&smp_cursor, &zero);
	if (!cursor)
		return;
	__u64 seq = *cursor + 1;
	__u32 slot = (__u32)seq & (SMP_SLOTS - 1);
	struct dos_sample_rec *r = bpf_map_lookup_elem(&smp_ring, &slot);
	if (!r)
		return;
	__u8 *ip = (void *)(eth + 1);
	/* The slot is reused: clear what a shorter packet would not overwrite. */
	r->seq = seq;
	r->seq_end = 0;
	r->ktime = bpf_ktime_get_ns();
	__builtin_memset(r->src, 0, sizeof(r->src));
	__builtin_memset(r->dst, 0, sizeof(r->dst));
	r->sport = 0;
	r->dport = 0;
	r->tcp_flags = 0;
	r->payload_len = 0;
	if (eproto == ETH_P_IP_) {
		if ((void *)(ip + 20) > data_end)
			return;
		__u32 ihl = (ip[0] & 0x0f) * 4;
		r->family = 4;
		r->proto = ip[9];
		r->ttl = ip[8];
		r->len = bpf_ntohs(*(__be16 *)(ip + 2));
		__builtin_memcpy(r->src, ip + 12, 4);
		__builtin_memcpy(r->dst, ip + 16, 4);
		/* A non-first fragment carries no transport header. */
		if (ihl >= 20 && !(*(__be16 *)(ip + 6) & bpf_htons(IP_OFFSET_)))
			smp_l4(r, ip + ihl, data_end);
	} else {
		if ((void *)(ip + 40) > data_end)
			return;
		r->family = 6;
		r->proto = ip[6];
		r->ttl = ip[7];
		r->len = bpf_ntohs(*(__be16 *)(ip + 4)) + 40;
		__builtin_memcpy(r->src, ip + 8, 16);
		__builtin_memcpy(r->dst, ip + 24, 16);
		/* Extension headers are not walked: such packets are sampled without ports. */
		smp_l4(r, ip + 40, data_end);
	}
	r->seq_end = seq;
	*cursor = seq;
}

#endif
