#!/usr/bin/env python3
"""Runs a pinned XDP program on several frames with BPF_PROG_TEST_RUN (repeat 1 each), the frames
in turn, N times each, from one process; prints per frame the median and 10th percentile of the
in-kernel durations (ns) and the verdict, as a JSON list in the order of the arguments.

testrun.py times one frame at a time; on a shared machine the load then differs from one frame's
loop to the next. Taking the frames in turn puts every frame's runs in the same moments, so their
differences are the program's, not the machine's.

usage: testrun-interleaved.py PIN RUNS HEXFRAME HEXCTX [HEXFRAME HEXCTX ...]
       (run it in the program's network namespace)
"""
import ctypes, json, os, statistics, struct, sys

SYS_BPF = 321  # x86_64
BPF_OBJ_GET = 7
BPF_PROG_TEST_RUN = 10
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(SYS_BPF, cmd, buf, 128)
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r, buf


def main():
    if len(sys.argv) < 5 or (len(sys.argv) - 3) % 2:
        sys.exit(__doc__)
    pin, runs = sys.argv[1], int(sys.argv[2])
    pairs = [(bytes.fromhex(sys.argv[i]), bytes.fromhex(sys.argv[i + 1])) for i in range(3, len(sys.argv), 2)]
    path = ctypes.create_string_buffer(pin.encode())
    fd, _ = bpf(BPF_OBJ_GET, struct.pack('=QII', ctypes.addressof(path), 0, 0))
    data_out = ctypes.create_string_buffer(4096)
    # Buffers and attrs built once: the loop only makes the syscalls.
    attrs, keep = [], []
    for frame, ctx in pairs:
        data_in = ctypes.create_string_buffer(frame, len(frame))
        ctx_in = ctypes.create_string_buffer(ctx, len(ctx))
        keep += [data_in, ctx_in]
        attrs.append(struct.pack('=IIIIQQIIIIQQIII', fd, 0, len(frame), 4096, ctypes.addressof(data_in), ctypes.addressof(data_out), 1, 0, len(ctx), 0, ctypes.addressof(ctx_in), 0, 0, 0, 0))
    durations = [[] for _ in pairs]
    verdicts = [None] * len(pairs)
    for _ in range(runs):
        for i, attr in enumerate(attrs):
            _, out = bpf(BPF_PROG_TEST_RUN, attr)
            verdicts[i] = struct.unpack_from('=I', out.raw, 4)[0]
            durations[i].append(struct.unpack_from('=I', out.raw, 36)[0])
    print(json.dumps([{'retval': v, 'median_ns': statistics.median(d), 'p10_ns': sorted(d)[len(d) // 10]} for v, d in zip(verdicts, durations)]))


main()
