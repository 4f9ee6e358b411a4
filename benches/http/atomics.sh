#!/usr/bin/env bash
# Atomic read-modify-writes per request of an HTTP server under wrk, and
# the functions they are in: the execution counts callgrind records per
# instruction, summed over the instructions `objdump -d` shows as
# `lock`-prefixed or `xchg`. Each costs ~15-20 cycles even uncontended,
# and this VM has no hardware counters to show them otherwise.
#
#   benches/http/atomics.sh SERVER_BINARY [SECONDS]
#
# The server (fibrpc's http_hello, or hyper_hello) runs under callgrind on
# PORT (8198); wrk -t1 -c CONNS (50) warms it for 2 s, the counts are
# zeroed, wrk runs SECONDS (4) more. Needs valgrind, wrk and binutils.
set -euo pipefail
bin="$1" secs="${2:-4}" PORT="${PORT:-8198}" conns="${CONNS:-50}"
out="$(mktemp -d)"
url="http://127.0.0.1:$PORT/hello"
valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$out/cg" "$bin" --port "$PORT" \
    > /dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 1 100); do
    curl -sf "$url" > /dev/null && break
    sleep 0.1
done
wrk -t1 -c"$conns" -d2s "$url" > /dev/null
callgrind_control -z "$pid" > /dev/null 2>&1
requests=$(wrk -t1 -c"$conns" -d"${secs}s" "$url" | awk '/requests in/ {print $1}')
callgrind_control -d "$pid" > /dev/null 2>&1
objdump -d -C --no-show-raw-insn "$bin" |
    awk '/^[0-9a-f]+ <.*>:$/ {f = substr($0, index($0, "<") + 1); sub(/>:$/, "", f)}
         /\tlock |\txchg / {sub(":", "", $1); print $1, f}' > "$out/atomics"
python3 - "$out/cg.1" "$out/atomics" "$requests" <<'PY'
import collections, re, sys
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
