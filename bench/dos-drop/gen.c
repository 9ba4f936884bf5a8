// SPDX-License-Identifier: GPL-2.0
/* Loader of gen.bpf.o for bench/dos-drop.bench.ts:
 *   gen OBJ IFINDEX REPEAT HEXFRAME
 * loads the generator with out_ifindex = IFINDEX and runs it REPEAT times on HEXFRAME in live
 * frame mode (every XDP_REDIRECT is a real transmission), then prints one JSON line:
 *   {"repeat":N,"ns":NANOSECONDS}
 * It runs on the CPU it is started on (the bench pins it with taskset). Errors go to stderr
 * with the failing step, exit 1. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: gen OBJ IFINDEX REPEAT HEXFRAME\n");
		return 2;
	}
	unsigned ifindex = (unsigned)strtoul(argv[2], NULL, 10);
	unsigned repeat = (unsigned)strtoul(argv[3], NULL, 10);
	size_t hl = strlen(argv[4]);
	if (hl % 2 || hl / 2 < 14 || hl / 2 > 1514) {
		fprintf(stderr, "gen: HEXFRAME must be 14..1514 bytes of hex\n");
		return 2;
	}
	unsigned char frame[1514];
	for (size_t i = 0; i < hl / 2; i++) {
		int h = hexval(argv[4][2 * i]), l = hexval(argv[4][2 * i + 1]);
		if (h < 0 || l < 0) {
			fprintf(stderr, "gen: HEXFRAME has a non-hex character at %zu\n", 2 * i);
			return 2;
		}
		frame[i] = (unsigned char)(h << 4 | l);
	}
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "gen: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	struct bpf_map *rodata = bpf_object__find_map_by_name(obj, ".rodata");
	if (!rodata || bpf_map__set_initial_value(rodata, &ifindex, sizeof(ifindex))) {
		fprintf(stderr, "gen: cannot set out_ifindex in %s\n", argv[1]);
		return 1;
	}
	int e = bpf_object__load(obj);
	if (e) {
		fprintf(stderr, "gen: load %s: %s\n", argv[1], strerror(-e));
		return 1;
	}
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, "gen_redirect");
	if (!prog) {
		fprintf(stderr, "gen: no program gen_redirect in %s\n", argv[1]);
		return 1;
	}
	struct xdp_md ctx = { .data_end = (unsigned)(hl / 2) };
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = (unsigned)(hl / 2),
		.ctx_in = &ctx,
		.ctx_size_in = sizeof(ctx),
		.repeat = repeat,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		.batch_size = 64);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	e = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (e) {
		fprintf(stderr, "gen: BPF_PROG_TEST_RUN (live frames): %s\n", strerror(-e));
		return 1;
	}
	long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("{\"repeat\":%u,\"ns\":%lld}\n", repeat, ns);
	bpf_object__close(obj);
	return 0;
}
