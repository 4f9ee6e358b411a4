#!/usr/bin/env python3
"""Tables from the `RESULT {json}` lines of fibrpc-echo-bench runs.

    benches/net/summarize.py RESULTS_FILE...

run.sh calls it on its results file. Several runs of one (C, server) cell,
from REPS or from several files, are reduced to their median. Ratios are
fibrpc (and its io_uring variants) over the peer and the variants over
fibrpc on epoll, the median of the per-rep ratios (the i-th runs of
each server at one C ran back to back): above 1 is better for req/s, below
1 is better for latency, CPU and memory. "other" is the CPU (in cores) that neither the
server nor the generator used during the window: well above 0 means a
neighbour disturbed that run (at C=10000, ~0.1 is the kernel's ksoftirqd
doing loopback work for both).
"""
import json
import statistics as st
import sys

PEERS = ("tokio", "may")
ORDER = ("fibrpc", "fibrpc-uring", "fibrpc-uring-poll", "tokio", "may", "floor")
# fibrpc's io_uring variants, each also over fibrpc on epoll.
URING = ("fibrpc-uring", "fibrpc-uring-poll")
# (json key, column title, format)
LOAD_COLUMNS = (
    ("rps", "req/s", "{:,.0f}"),
    ("rps_range", "req/s min–max", "{}"),
    ("p50_us", "p50 µs", "{:,.0f}"),
    ("p99_us", "p99 µs", "{:,.0f}"),
    ("p999_us", "p99.9 µs", "{:,.0f}"),
    ("server_cpu_per_100k", "CPU-s/100k", "{:.3f}"),
    ("server_rss_mib", "RSS MiB", "{:.1f}"),
    ("gen_cpu_per_100k", "gen CPU-s/100k", "{:.3f}"),
    ("other_load_cores", "other", "{:.2f}"),
    ("errors", "errors", "{:.0f}"),
)
IDLE_COLUMNS = (
    ("connected", "held", "{:.0f}"),
    ("server_rss_before_mib", "RSS before MiB", "{:.1f}"),
    ("server_rss_peak_mib", "RSS peak MiB", "{:.1f}"),
    ("server_kib_per_conn", "KiB/conn", "{:.1f}"),
    ("server_cpu_s", "CPU-s", "{:.2f}"),
    ("errors", "errors", "{:.0f}"),
)
# Columns whose ratio means nothing.
NO_RATIO = {"other_load_cores", "errors", "connected", "gen_cpu_per_100k", "rps_range",
            "server_cpu_s"}  # an idle server's CPU is ~0: no ratio


def derived(r):
    """Adds the columns computed from the raw fields."""
    kib = lambda k: r[k] / 1024 if r.get(k) is not None else None
    r["server_rss_mib"] = kib("server_rss_kib")
    r["server_rss_before_mib"] = kib("server_rss_before_kib")
    r["server_rss_peak_mib"] = kib("server_rss_peak_kib")
    per_conn = r.get("server_bytes_per_conn")
    r["server_kib_per_conn"] = per_conn / 1024 if per_conn is not None else None
    r["errors"] = r["connect_errors"] + r["resets"] + r["short_echoes"]
    return r


def load(paths):
    runs = {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("RESULT "):
                    r = derived(json.loads(line[len("RESULT "):]))
                    key = (r["mode"], r["conns"], r["label"])
                    runs.setdefault(key, []).append(r)
    return runs


def median(runs, key):
    if key == "rps_range":
        vals = [r["rps"] for r in runs]
        return f"{min(vals) / 1e3:.0f}k–{max(vals) / 1e3:.0f}k" if len(vals) > 1 else None
    vals = [r[key] for r in runs if r.get(key) is not None]
    return st.median(vals) if vals else None


def cell(x, fmt):
    return "—" if x is None else fmt.format(x)


def paired_ratio(ours, theirs, key):
    """Median of the per-rep ratios: the i-th run of each server at one C
    ran back to back (run.sh's order), so pairing them cancels most of the
    drift in machine speed between reps."""
    rs = [a[key] / b[key] for a, b in zip(ours, theirs)
          if a.get(key) is not None and b.get(key)]
    return f"{st.median(rs):.2f}×" if rs else "—"


def table(runs, mode, columns, title):
    keys = sorted({(c, s) for (m, c, s) in runs if m == mode},
                  key=lambda k: (k[0], ORDER.index(k[1]) if k[1] in ORDER else 9, k[1]))
    if not keys:
        return
    print(f"\n### {title}\n")
    print("| C | server | " + " | ".join(t for _, t, _ in columns) + " | runs |")
    print("|---:|---|" + "---:|" * (len(columns) + 1))
    for conns in sorted({c for c, _ in keys}):
        meds, server_runs = {}, {}
        for c, server in keys:
            if c != conns:
                continue
            rs = runs[(mode, c, server)]
            server_runs[server] = rs
            meds[server] = {k: median(rs, k) for k, _, _ in columns}
            cells = [cell(meds[server][k], f) for k, _, f in columns]
            print(f"| {conns} | {server} | " + " | ".join(cells) + f" | {len(rs)} |")
        # fibrpc (each driver) over each peer and over fibrpc on epoll; the
        # raw-epoll yardstick over tokio.
        pairs = [(ours, peer) for ours in ("fibrpc",) + URING for peer in PEERS]
        pairs += [(u, "fibrpc") for u in URING] + [("floor", "tokio")]
        for ours, theirs in pairs:
            if ours in meds and theirs in meds:
                cells = ["" if k in NO_RATIO else
                         paired_ratio(server_runs[ours], server_runs[theirs], k)
                         for k, _, _ in columns]
                print(f"| {conns} | {ours}/{theirs} | " + " | ".join(cells) + " | |")

def main(paths):
    runs = load(paths)
    if not runs:
        sys.exit("no RESULT lines found")
    any_run = next(iter(runs.values()))[0]
    table(runs, "load", LOAD_COLUMNS,
          f"Echo, {any_run['size']} B, closed loop (medians; ratios fibrpc/peer)")
    table(runs, "idle", IDLE_COLUMNS, "Idle connections (server RSS while holding them)")
    print("\nreq/s: higher is better; latency, CPU-s/100k (server CPU per 100k requests)"
          " and RSS: lower is better. other: cores busy with neither server nor generator.")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
