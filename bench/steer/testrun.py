#!/usr/bin/env python3
"""Runs a pinned XDP program on one frame N times with BPF_PROG_TEST_RUN (repeat 1 each) from
one process, and prints the median in-kernel duration in ns and the verdict as JSON.

bpftool's `prog run` is one process per run, so every run it times is a cold one; `repeat` keeps
the caches warm but does not reset the packet between iterations, which is wrong for programs
that rewrite it (encapsulation). Calling the syscall in a loop gives warm single runs on the
original packet every time.

usage: testrun.py PIN HEXFRAME HEXCTX RUNS   (run it in the program's network namespace)
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
    pin, frame, ctx, runs = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), int(sys.argv[4])
    path = ctypes.create_string_buffer(pin.encode())
    fd, _ = bpf(BPF_OBJ_GET, struct.pack('=QII', ctypes.addressof(path), 0, 0))
    data_in = ctypes.create_string_buffer(frame, len(frame))
    data_out = ctypes.create_string_buffer(4096)
    ctx_in = ctypes.create_string_buffer(ctx, len(ctx))
    durations, verdict = [], None
    for _ in range(runs):
        attr = struct.pack('=IIIIQQIIIIQQIII', fd, 0, len(frame), 4096, ctypes.addressof(data_in), ctypes.addressof(data_out), 1, 0, len(ctx), 0, ctypes.addressof(ctx_in), 0, 0, 0, 0)
        _, out = bpf(BPF_PROG_TEST_RUN, attr)
        retval, duration = struct.unpack_from('=I', out.raw, 4)[0], struct.unpack_from('=I', out.raw, 36)[0]
        verdict = retval
        durations.append(duration)
    print(json.dumps({'retval': verdict, 'median_ns': statistics.median(durations), 'p10_ns': sorted(durations)[len(durations) // 10]}))


main()
