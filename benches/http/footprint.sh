#!/usr/bin/env bash
# The code an HTTP server runs per request, in instruction-cache lines:
# the distinct 64-byte lines of code whose instructions run, on average,
# at least once per request under wrk, in total and per crate (or per
# function with TOP=N). A path whose hot code outgrows the 32 KiB L1
# instruction cache misses it on every request, which instruction counts
# do not show and this VM has no hardware counters to measure; unlike
# callgrind's simulated miss counts, which move by ±3 % with nothing but
# the code's layout, this count moves only when the executed code does.
#
#   benches/http/footprint.sh SERVER_BINARY [SECONDS]
#
# The server runs as benches/http/callgrind.sh runs it (wrk -t1 -c CONNS,
# 10 by default, SECONDS 4 counted), with counts per instruction. Needs
# valgrind, wrk and Python 3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1" secs="${2:-4}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
summary=$(DUMP_INSTR=1 OUT="$out/cg" "$here/callgrind.sh" "$bin" "$secs")
echo "$summary"
requests=$(echo "$summary" | awk '/requests =/ {print $4}')
python3 "$here/footprint.py" "$out/cg.1" "$requests" "${TOP:-0}"
