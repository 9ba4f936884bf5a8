// SPDX-License-Identifier: GPL-2.0
/* Packet generator of bench/dos-drop.bench.ts (not part of the data plane): run by
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES, every frame it is given is really sent out
 * of `out_ifindex` (a veth), arriving at the peer as an xdp_frame, as a NIC would hand it over:
 * no skb exists until the receiving side builds one. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Set by the loader before the program is loaded. */
volatile const __u32 out_ifindex = 0;

SEC("xdp")
int gen_redirect(struct xdp_md *ctx)
{
	return bpf_redirect(out_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
