/* Types shared by the eBPF programs and the TypeScript control plane.
 *
 * The TypeScript side (src/kernel/bpf/layout.ts) encodes map keys and values with these layouts;
 * a test reads the compiled objects' BTF and fails if any size or field offset differs, so
 * the two sides cannot drift apart silently.
 */
#ifndef ANYEDGE_H
#define ANYEDGE_H

#include <linux/types.h>

/* GRE flag bits in the first 16 bits of the header (RFC 2784 / RFC 2890), host order. */
#define GRE_F_CSUM 0x8000
#define GRE_F_ROUTING 0x4000
#define GRE_F_KEY 0x2000
#define GRE_F_SEQ 0x1000
#define GRE_VERSION_MASK 0x0007
/* Bits that must be zero for us: routing, strict source route, recursion control, flags. */
#define GRE_F_RESERVED 0x4ff8

/* gre_encap_info.flags */
#define TUN_F_KEY 0x01

/* One tunnel as seen by the encapsulating side. Key of gre_encap: the tunnel device's ifindex. */
struct gre_encap_info {
	__be32 local;       /* outer source: the anycast GRE endpoint */
	__be32 remote;      /* outer destination: the customer router */
	__be32 key;         /* GRE key, network order; used when flags & TUN_F_KEY */
	__u32 out_ifindex;  /* device to redirect the encapsulated frame to; 0: it leaves by the tunnel device */
	__u16 mtu;          /* largest inner packet the tunnel carries */
	__u8 flags;         /* TUN_F_* */
	__u8 ttl;           /* outer TTL */
	__u8 src_mac[6];    /* L2 addresses for out_ifindex's link */
	__u8 dst_mac[6];
	__u32 stats_idx;    /* index into tunnel_stats */
};

/* Key of gre_decap: which tunnel an arriving GRE packet belongs to. */
struct gre_decap_key {
	__be32 remote;      /* outer source: the customer router */
	__be32 local;       /* outer destination: our anycast GRE endpoint */
	__be32 key;         /* GRE key, network order; 0 when has_key is 0 */
	__u32 has_key;      /* 1 when the packet carries a key: keyed and keyless tunnels differ */
};

/* Where a decapsulated packet goes: the server-namespace end of the tunnel device's veth pair, so
 * it enters the tenant namespace through the tunnel device, as if a GRE device had received it. */
struct gre_decap_info {
	__u32 ifindex;      /* redirect target */
	__u8 src_mac[6];    /* L2 addresses written in front of the inner packet */
	__u8 dst_mac[6];    /* the tunnel device's MAC, so it accepts the frame */
	__u32 stats_idx;    /* index into tunnel_stats */
};

/* Per-tunnel counters, per CPU; the agent sums the CPUs. */
struct tunnel_stats {
	__u64 encap_packets;
	__u64 encap_bytes;
	__u64 decap_packets;
	__u64 decap_bytes;
	__u64 mss_clamped;
	__u64 too_big;
};

/* Reasons a packet was dropped or passed, counted per CPU in edge_counters. */
enum edge_counter {
	CNT_GRE_NO_TUNNEL = 0,   /* GRE to our endpoint that matches no tunnel: dropped */
	CNT_GRE_MALFORMED,       /* truncated outer IP or GRE header: dropped */
	CNT_GRE_UNSUPPORTED,     /* GRE version/routing/flags or inner protocol we do not carry: dropped */
	CNT_GRE_FRAGMENT,        /* fragmented outer packet: stateless decap cannot reassemble: dropped */
	CNT_GRE_DECAP,           /* decapsulated and redirected */
	CNT_ENCAP_NO_TUNNEL,     /* packet on a device that has no tunnel config: dropped */
	CNT_ENCAP_NOT_IP,        /* non-IP frame on a tunnel device: dropped */
	CNT_ENCAP_TOO_BIG,       /* larger than the tunnel MTU and not GSO: dropped */
	CNT_ENCAP_FAILED,        /* bpf_skb_adjust_room or a store failed: dropped */
	CNT_ENCAP,               /* encapsulated and redirected */
	CNT_MAX,
};

#endif
