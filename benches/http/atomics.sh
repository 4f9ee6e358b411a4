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
python3 - "$out/cg.1" "$out/atomics" "$requests" <<'PY'
import collections, sys
profile, atomics, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
where = {}
for line in open(atomics):
    addr, fn = line.split(None, 1)
    where[int(addr, 16)] = fn.strip()
counts = collections.Counter()
addr, after_call = 0, False
for line in open(profile):
    if line.startswith("calls="):
        after_call = True  # the next cost line is the call's, not the instruction's
        continue
    if not line or line[0] not in "0123456789+-*":
        continue
    fields = line.split()
    pos = fields[0]
    if pos.startswith("0x"):
        addr = int(pos, 16)
    elif pos[0] in "+-":
        step = int(pos[1:], 16) if pos[1:].startswith("0x") else int(pos[1:])
        addr += step if pos[0] == "+" else -step
    if after_call:
        after_call = False
        continue
    # "positions: instr line": the cost follows the address and the line.
    if len(fields) > 2 and addr in where:
        counts[where[addr]] += int(fields[2])
print(f"{sum(counts.values()) / requests:.1f} atomic read-modify-writes per request")
for fn, n in counts.most_common(25):
    if n / requests >= 0.05:
        print(f"  {n / requests:5.2f}  {fn[:120]}")
PY
