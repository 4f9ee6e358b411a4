#!/usr/bin/env python3
"""Combines the tables of several fiber_bench runs (their stdout files).

On a shared machine one invocation can land in a burst of load; the median
over several invocations of each cell, and the range of the per-run ratios,
say more than any single table. Usage:

    for i in 1 2 3; do benches/fiber/run.sh > /tmp/fb$i.md; done
    benches/fiber/summarize.py /tmp/fb*.md
"""
import statistics as st
import sys

UNITS = {"ns": 1.0, "µs": 1e3, "ms": 1e6}


def to_ns(cell):
    cell = cell.strip()
    if cell in ("n/a", "—"):
        return None
    num, unit = cell.split()
    return float(num) * UNITS[unit]


def fmt(x):
    if x is None:
        return "n/a"
    if x < 100:
        return f"{x:.1f} ns"
    if x < 1e3:
        return f"{x:.0f} ns"
    if x < 1e6:
        return f"{x / 1e3:.1f} µs"
    return f"{x / 1e6:.0f} ms"


def main(paths):
    rows, order, goals = {}, [], {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.startswith("| ") or line.startswith("| case"):
                    continue
                cells = [c.strip() for c in line.strip().strip("|").split("|")]
                if len(cells) < 7:
                    continue
                case = cells[0]
                if case not in rows:
                    rows[case] = []
                    order.append(case)
                goals[case] = cells[6]
                rows[case].append(tuple(to_ns(c) for c in cells[1:4]))
    print("| case | fibrpc | tokio | may | fibrpc/tokio (range) | fibrpc/may (range) | goal (fibrpc) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for case in order:
        runs = rows[case]
        med = []
        for i in range(3):
            vals = [r[i] for r in runs if r[i] is not None]
            med.append(st.median(vals) if vals else None)

        def ratio(j):
            rs = [r[0] / r[j] for r in runs if r[0] is not None and r[j] is not None]
            if not rs:
                return "—"
            return f"{st.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})"

        print(
            f"| {case} | {fmt(med[0])} | {fmt(med[1])} | {fmt(med[2])} "
            f"| {ratio(1)} | {ratio(2)} | {goals[case]} |"
        )
    print(f"\nMedian over {len(paths)} invocations of each cell's median; ratios: median (min–max) of the per-invocation ratios.")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
