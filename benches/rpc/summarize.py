#!/usr/bin/env python3
"""Table of benches/rpc/run.sh's results, with fibrpc/tonic ratios.

Reads the results file run.sh writes: one line per run,
    SERVER C REP RESULT {json}   (a press tool's RESULT line)
    SERVER N REP IDLE {json}     (an idle-connection run)
Cells run more than once (REPS > 1) show the median of each figure.
Standard library only.

    python3 benches/rpc/summarize.py RESULTS_FILE
"""

import json
import statistics
import sys

SERVERS = ["fibrpc", "fibrpc-uring", "tonic"]


def load(path):
    runs, idle = {}, {}
    with open(path) as f:
        for line in f:
            parts = line.split(None, 4)
            if len(parts) < 5 or parts[3] not in ("RESULT", "IDLE"):
                continue
            server, n, kind, body = parts[0], int(parts[1]), parts[3], parts[4]
            try:
                record = json.loads(body)
            except json.JSONDecodeError:
                print(f"skipping a malformed line: {line.strip()}", file=sys.stderr)
                continue
            (runs if kind == "RESULT" else idle).setdefault((server, n), []).append(record)
    return runs, idle


def median(records, key):
    values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header] + rows:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths)))


def load_table(runs):
    fields = [
        ("qps", "qps", 0),
        ("p50_us", "p50 us", 1),
        ("p99_us", "p99 us", 1),
        ("p999_us", "p999 us", 1),
        ("server_cpu_per_100k_s", "cpu s/100k", 3),
        ("server_rss_kb", "rss KiB", 0),
        ("other_load_cores", "other cores", 2),
    ]
    concs = sorted({c for _, c in runs})
    servers = [s for s in SERVERS if any(k[0] == s for k in runs)]
    servers += sorted({s for s, _ in runs} - set(servers))
    header = ["C", "server", "reps", "errors"] + [label for _, label, _ in fields]
    rows = []
    for c in concs:
        for s in servers:
            records = runs.get((s, c))
            if not records:
                continue
            errors = sum(r.get("errors", 0) for r in records)
            rows.append(
                [c, s, len(records), errors]
                + [fmt(median(records, key), d) for key, _, d in fields]
            )
    print("Load (closed loop, one connection; medians over reps):")
    table(header, rows)
    print("(other cores: CPU that neither the server nor the press used during the"
          " window;\n well above 0 means a neighbour disturbed that run)")
    ratio_fields = [f for f in fields if f[0] not in ("p999_us", "other_load_cores")]
    present = {s for s, _ in runs}
    # fibrpc over tonic; fibrpc on the io_uring driver over tonic and over
    # fibrpc on epoll.
    pairs = [(a, b) for a, b in (("fibrpc", "tonic"), ("fibrpc-uring", "tonic"),
                                 ("fibrpc-uring", "fibrpc")) if {a, b} <= present]
    if not pairs:
        print("\n(no ratios: fibrpc and a peer did not both run)")
        return
    print("\nRatios (qps: >1 is better for the first; the rest: <1 is):")
    rows = []
    for c in concs:
        for a, b in pairs:
            f, t = runs.get((a, c)), runs.get((b, c))
            if not f or not t:
                continue
            rows.append([c, f"{a}/{b}"]
                        + [ratio(median(f, k), median(t, k)) for k, _, _ in ratio_fields])
    table(["C", "ratio"] + [label for _, label, _ in ratio_fields], rows)


def idle_table(idle):
    header = ["server", "conns", "connected", "server fds", "rss before KiB",
              "rss held KiB", "bytes/conn"]
    rows, per_conn = [], {}
    for (s, n), records in sorted(idle.items()):
        before, after = median(records, "rss_before_kb"), median(records, "rss_after_kb")
        connected = median(records, "connected")
        per = None
        if before is not None and after is not None and connected:
            per = (after - before) * 1024 / connected
        per_conn[s] = per
        rows.append([s, n, fmt(connected), fmt(median(records, "server_fds")),
                     fmt(before), fmt(after), fmt(per)])
    print("Idle connections (RSS while idle_conns holds them):")
    table(header, rows)
    if "fibrpc" in per_conn and "tonic" in per_conn:
        print(f"\nRatio fibrpc/tonic bytes per idle connection: "
              f"{ratio(per_conn['fibrpc'], per_conn['tonic'])}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    runs, idle = load(sys.argv[1])
    if not runs and not idle:
        sys.exit(f"no RESULT or IDLE lines in {sys.argv[1]}")
    if runs:
        load_table(runs)
    if idle:
        if runs:
            print()
        idle_table(idle)


if __name__ == "__main__":
    main()
