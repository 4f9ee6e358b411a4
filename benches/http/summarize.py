#!/usr/bin/env python3
"""Table of benches/http/run.sh's results, with fibrpc/hyper and fibrpc/may
ratios.

Reads the results file run.sh writes: one line per measured run,
    SERVER CONNS REP RESULT {json}   (wrk_window's RESULT line)
Servers run more than once (REPS > 1) show the median of each figure.
Standard library only.

    python3 benches/http/summarize.py RESULTS_FILE
"""

import json
import statistics
import sys

SERVERS = ["fibrpc", "fibrpc-uring", "hyper", "may", "floor"]
PEERS = ["hyper", "may"]
GOAL = 1.2  # the project's goal: fibrpc's requests/s at least 1.2x hyper's

FIELDS = [
    ("rps", "req/s", 0),
    ("p50_us", "p50 us", 1),
    ("p99_us", "p99 us", 1),
    ("server_cpu_us_per_req", "cpu us/req", 2),
    ("server_rss_kb", "rss KiB", 0),
    ("other_load_cores", "other cores", 2),
]
RATIO_FIELDS = ["rps", "p50_us", "p99_us", "server_cpu_us_per_req"]


def load(path):
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.split(None, 4)
            if len(parts) < 5 or parts[3] != "RESULT":
                continue
            try:
                record = json.loads(parts[4])
            except json.JSONDecodeError:
                print(f"skipping a malformed line: {line.strip()}", file=sys.stderr)
                continue
            runs.setdefault((parts[0], int(parts[1])), []).append(record)
    return runs


def median(records, key):
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    runs = load(sys.argv[1])
    if not runs:
        sys.exit(f"no RESULT lines in {sys.argv[1]}")
    present = {s for s, _ in runs}
    servers = [s for s in SERVERS if s in present] + sorted(present - set(SERVERS))
    header = ["conns", "server", "reps", "errors"] + [label for _, label, _ in FIELDS]
    rows = []
    for c in sorted({c for _, c in runs}):
        for s in servers:
            records = runs.get((s, c))
            if not records:
                continue
            errors = sum(r.get("errors", 0) + r.get("non_2xx", 0) for r in records)
            rows.append([c, s, len(records), errors]
                        + [fmt(median(records, k), d) for k, _, d in FIELDS])
    print("HTTP/1.1 GET /hello under wrk (keep-alive; medians over reps):")
    table(header, rows)
    print("(errors: wrk's socket errors plus non-2xx answers, all reps; cpu us/req:"
          " the server's\n CPU time per request; other cores: CPU that neither the"
          " server nor wrk used\n during the run, well above 0 means a neighbour"
          " disturbed it)")

    # fibrpc against each peer; without fibrpc, the peers against each other.
    base = "fibrpc" if "fibrpc" in present else None
    pairs = [(base, p) for p in PEERS if base and p in present]
    # fibrpc on the io_uring driver: over each peer and over itself on epoll.
    if "fibrpc-uring" in present:
        pairs += [("fibrpc-uring", p) for p in PEERS + ["fibrpc"] if p in present]
    # The floor (raw epoll, no framework) against hyper: a yardstick for
    # what a server making the same syscalls can get over hyper here.
    floor_pair = [("floor", "hyper")] if {"floor", "hyper"} <= present else []
    if not pairs and floor_pair:
        pairs = floor_pair
        floor_pair = []
    if not pairs:
        if all(p in present for p in PEERS):
            pairs = [("may", "hyper")]
            print("\n(fibrpc did not run: the peers' ratio only)")
        else:
            print("\n(no ratios: only one server ran)")
            return
    labels = {k: label for k, label, _ in FIELDS}
    print("\nRatios (req/s: >1 is better for the first; latency and cpu/req: <1 is):")
    rows = []
    for c in sorted({c for _, c in runs}):
        for a, b in pairs + floor_pair:
            ra, rb = runs.get((a, c)), runs.get((b, c))
            if ra and rb:
                rows.append([c, f"{a}/{b}"] + [
                    fmt(ratio(median(ra, k), median(rb, k)), 2) for k in RATIO_FIELDS])
    table(["conns", "ratio"] + [labels[k] for k in RATIO_FIELDS], rows)
    for ours in ("fibrpc", "fibrpc-uring"):
        if ours not in present or "hyper" not in present:
            continue
        for c in sorted({c for _, c in runs}):
            f, h = runs.get((ours, c)), runs.get(("hyper", c))
            r = ratio(median(f, "rps"), median(h, "rps")) if f and h else None
            if r is not None:
                verdict = "met" if r >= GOAL else "NOT met"
                print(f"\ngoal {ours}/hyper req/s >= {GOAL} at {c} conns: {r:.2f}, {verdict}")
    if {"floor", "hyper"} <= present:
        print("(floor/hyper: raw epoll, no framework, the same read and write per"
              " request; see README.md)")

if __name__ == "__main__":
    main()
