/* Every BPF map anyedge uses, one comment each (Katran's balancer_maps.h habit).
 * Map names are at most 15 characters: the kernel's BPF_OBJ_NAME_LEN. */
#ifndef ANYEDGE_MAPS_H
#define ANYEDGE_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "anyedge.h"

/* The largest number of tunnels one server carries; sizes the per-tunnel maps. */
#define MAX_TUNNELS 65536

/* Tunnel device ifindex → how to encapsulate what is routed into it (tc_gre). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct gre_encap_info);
} gre_encap SEC(".maps");

/* Anycast GRE endpoint addresses (network order) this server decapsulates for (xdp_edge). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __be32);
	__type(value, __u32);
} gre_endpoints SEC(".maps");

/* (outer source, outer destination, key) → tenant veth to hand the inner packet to (xdp_edge). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, struct gre_decap_key);
	__type(value, struct gre_decap_info);
} gre_decap SEC(".maps");

/* Per-tunnel packet and byte counters, indexed by the tunnel's stats_idx. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct tunnel_stats);
} tunnel_stats SEC(".maps");

/* Global drop/pass reasons (enum edge_counter). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} edge_counters SEC(".maps");

static __always_inline void count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&edge_counters, &reason);
	if (c)
		*c += 1;
}

#endif
