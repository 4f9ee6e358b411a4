#!/usr/bin/env python3
"""Summarize the fibrpc-iobuf criterion runs: medians, MB/s, msg/s, ratios.

Reads <target>/criterion (CARGO_TARGET_DIR, else ./target) after
`cargo bench -p fibrpc-iobuf`. Prints Markdown tables for BENCHMARKS.md.
"""
import json
import os
import sys

TARGET = os.environ.get("CARGO_TARGET_DIR", "target")
ROOT = os.path.join(TARGET, "criterion")
# bRPC's published IOBuf pipeline figures (2015 hardware), MB/s.
BRPC = {16: 240.0, 128: 790.0, 1024: 1520.0}
HEADER = 12


def load(path):
    """(median ns, throughput dict) of one benchmark, or None."""
    try:
        with open(os.path.join(ROOT, path, "new", "estimates.json")) as f:
            est = json.load(f)
        with open(os.path.join(ROOT, path, "new", "benchmark.json")) as f:
            bench = json.load(f)
    except FileNotFoundError:
        return None
    return est["median"]["point_estimate"], bench.get("throughput") or {}


def pipeline():
    print("### Pipeline (file of framed messages -> cut -> /dev/null)\n")
    print("| message | impl | median | MB/s | Mmsg/s | vs bRPC 2015 | fibrpc speed-up (impl time / fibrpc time) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for payload in (16, 128, 1024):
        group = f"pipeline_12+{payload}"
        rows = {}
        for impl in ("fibrpc_iobuf", "bytes_mut", "vec"):
            r = load(f"{group}/{impl}/{payload}")
            if r:
                rows[impl] = r
        if "fibrpc_iobuf" not in rows:
            continue
        base = rows["fibrpc_iobuf"][0]
        for impl, (ns, tp) in rows.items():
            nbytes = tp.get("Bytes", 0)
            mbs = nbytes / (ns / 1e9) / 1e6
            msgs = nbytes / (HEADER + payload) / (ns / 1e9) / 1e6
            vs = f"{mbs / BRPC[payload]:.2f}x"
            ratio = f"{ns / base:.2f}x"
            print(f"| 12+{payload} | {impl} | {ns / 1e6:.2f} ms | {mbs:.0f} | "
                  f"{msgs:.2f} | {vs} | {ratio} |")
    print()
    mine = load("read_only/fibrpc_iobuf/portal")
    peer = load("read_only/vec/pread")
    if mine and peer:
        nbytes = mine[1].get("Bytes", 0)
        print("Read-only baseline (same 16 MiB file, 512 KiB reads): "
              f"IOPortal readv {mine[0] / 1e6:.2f} ms ({nbytes / mine[0] * 1e3:.0f} MB/s), "
              f"Vec pread {peer[0] / 1e6:.2f} ms ({nbytes / peer[0] * 1e3:.0f} MB/s).\n")


def append_cut():
    print("### Append 64 B x N then cut 64 B x N (N = 1024)\n")
    print("| variant | impl | ns / op | BytesMut / fibrpc |")
    print("|---|---|---:|---:|")
    for variant in ("copy_out", "split_to"):
        mine = load(f"append_cut_64B/fibrpc_iobuf/{variant}")
        peer = load(f"append_cut_64B/bytes_mut/{variant}")
        for impl, r in (("fibrpc_iobuf", mine), ("bytes_mut", peer)):
            if not r:
                continue
            ns, tp = r
            ops = tp.get("Elements", 1)
            ratio = f"{peer[0] / mine[0]:.2f}x" if mine and peer else ""
            print(f"| {variant} | {impl} | {ns / ops:.2f} | {ratio} |")
    print()


def writev():
    print("### writev of 1 MiB (256 x 4 KiB refs) into a socketpair\n")
    print("| impl | median | GB/s | time / fibrpc |")
    print("|---|---:|---:|---:|")
    mine = load("writev_1MiB_4KiB_refs/fibrpc_iobuf/writev")
    peer = load("writev_1MiB_4KiB_refs/vec/write")
    for impl, r in (("fibrpc_iobuf writev", mine), ("Vec write", peer)):
        if not r:
            continue
        ns, tp = r
        gbs = tp.get("Bytes", 0) / ns
        ratio = f"{ns / mine[0]:.2f}x" if mine else ""
        print(f"| {impl} | {ns / 1e3:.1f} us | {gbs:.2f} | {ratio} |")
    print()


if __name__ == "__main__":
    if not os.path.isdir(ROOT):
        sys.exit(f"no criterion results under {ROOT}")
    pipeline()
    append_cut()
    writev()
