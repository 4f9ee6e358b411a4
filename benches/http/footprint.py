#!/usr/bin/env python3
"""Hot code lines of a callgrind profile taken with --dump-instr=yes.

    benches/http/footprint.py CALLGRIND_OUT REQUESTS [TOP]

Prints how many distinct 64-byte lines of code hold an instruction that
ran at least REQUESTS times (once per request on average), then those
lines by crate (the first two path segments of the function's name), or,
with TOP > 0, the TOP functions with the most. Standard library only.
"""

import collections
import re
import sys

LINE = 64
NAME = re.compile(r"c?fn=\((\d+)\)(?: (.*))?")


def parse(path):
    """(instruction address -> (executions, function id), function names)."""
    names, counts = {}, {}
    positions, addr, fn, after_call = 1, 0, None, False
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.startswith("positions:"):
                positions = len(line.split()) - 1
                continue
            if line.startswith(("fn=", "cfn=")):
                m = NAME.match(line)
                if m and m.group(2):
                    names[m.group(1)] = m.group(2)
                if line.startswith("fn="):
                    fn = m.group(1) if m else line[3:]
                    after_call = False
                continue
            if line.startswith("calls="):
                after_call = True  # the next cost line is the call's, not fn's own
                continue
            if not line or not (line[0].isdigit() or line[0] in "+-*"):
                continue
            fields = line.split()
            a = fields[0]
            if a.startswith("0x"):
                addr = int(a, 16)
            elif a[0] in "+-":
                step = int(a[1:], 16) if a[1:].startswith("0x") else int(a[1:])
                addr += step if a[0] == "+" else -step
            elif a != "*":
                addr = int(a)
            if after_call:
                after_call = False
                continue
            ran = int(fields[positions]) if len(fields) > positions else 0
            prev = counts.get(addr, (0, fn))[0]
            counts[addr] = (prev + ran, fn)
    return counts, names


def crate(name):
    m = re.match(r"<?([A-Za-z_0-9]+)(?:::([A-Za-z_0-9]+))?", name)
    return "::".join(g for g in m.groups() if g) if m else name[:40]


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    counts, names = parse(sys.argv[1])
    requests = int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) == 4 else 0
    lines = collections.defaultdict(set)
    for addr, (ran, fn) in counts.items():
        if ran >= requests:
            lines[names.get(fn, fn)].add(addr // LINE)
    hot = set().union(*lines.values()) if lines else set()
    print(f"hot code: {len(hot)} lines of {LINE} B ({len(hot) * LINE / 1024:.1f} KiB) run per request")
    if top > 0:
        rows = sorted(((len(v), k) for k, v in lines.items()), reverse=True)[:top]
    else:
        by_crate = collections.defaultdict(set)
        for name, v in lines.items():
            by_crate[crate(name)] |= v
        rows = sorted(((len(v), k) for k, v in by_crate.items()), reverse=True)[:25]
    for n, k in rows:
        print(f"{n:6d}  {k[:110]}")


if __name__ == "__main__":
    main()
