/* Small packet helpers shared by the programs. */
#ifndef ANYEDGE_PARSE_H
#define ANYEDGE_PARSE_H

#include <linux/types.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define IPPROTO_TCP_ 6
#define IPPROTO_GRE_ 47
#define IP_DF_ 0x4000
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1fff

struct eth_hdr {
	__u8 dst[6];
	__u8 src[6];
	__be16 proto;
};

/* Outer IPv4 + GRE header as the encapsulator writes it: 24 bytes, or 28 with a key. */
struct ipv4_gre_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
	__be16 gre_flags;
	__be16 gre_proto;
	__be32 gre_key;
} __attribute__((packed));

/* Internet checksum over a 20-byte IPv4 header held on the stack (no options). */
static __always_inline __u16 ipv4_csum(const void *hdr)
{
	const __u16 *w = hdr;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

#endif
