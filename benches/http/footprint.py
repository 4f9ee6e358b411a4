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

from instr_counts import parse

LINE = 64


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
