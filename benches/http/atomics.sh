#!/usr/bin/env bash
# Atomic read-modify-writes per request of an HTTP server under wrk, and
# the functions they are in: the execution counts callgrind records per
# instruction, summed over the instructions `objdump -d` shows as
# `lock`-prefixed or `xchg`. Each costs ~15-20 cycles even uncontended,
# and this VM has no hardware counters to show them otherwise.
#
#   benches/http/atomics.sh SERVER_BINARY [SECONDS]
#
# The server runs as benches/http/callgrind.sh runs it (wrk -t1 -c CONNS,
# here 50 by default, SECONDS 4 counted), with counts per instruction.
# Needs valgrind, wrk and binutils.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1" secs="${2:-4}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
summary=$(CONNS="${CONNS:-50}" DUMP_INSTR=1 OUT="$out/cg" "$here/callgrind.sh" "$bin" "$secs")
requests=$(echo "$summary" | awk '/requests =/ {print $4}')
objdump -d -C --no-show-raw-insn "$bin" |
    awk '/^[0-9a-f]+ <.*>:$/ {f = substr($0, index($0, "<") + 1); sub(/>:$/, "", f)}
         /\tlock |\txchg / {sub(":", "", $1); print $1, f}' > "$out/atomics"
PYTHONPATH="$here" python3 - "$out/cg.1" "$out/atomics" "$requests" <<'PY'
import collections, sys
from instr_counts import parse
profile, atomics, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
where = {}
for line in open(atomics):
    addr, fn = line.split(None, 1)
    where[int(addr, 16)] = fn.strip()
counts = collections.Counter()
for addr, (ran, _) in parse(profile)[0].items():
    if addr in where:
        counts[where[addr]] += ran
print(f"{sum(counts.values()) / requests:.1f} atomic read-modify-writes per request")
for fn, n in counts.most_common(25):
    if n / requests >= 0.05:
        print(f"  {n / requests:5.2f}  {fn[:120]}")
PY
