#!/usr/bin/env bash
# Instructions per request of an HTTP server under wrk, counted by
# callgrind: a figure that does not move with the machine's noise, for
# changes too small for alternated wall-clock runs to see.
#
#   benches/http/callgrind.sh SERVER_BINARY [SECONDS]
#
# The server (fibrpc's http_hello, or hyper_hello) runs under callgrind
# on PORT (8198); wrk -t1 -c10 warms it for 2 s, the counts are zeroed,
# wrk runs SECONDS (8) more, the counts are dumped, and the script prints
# the instructions counted divided by the requests wrk completed. The
# profile is left in $OUT (/tmp/callgrind-http.out.1) for
# callgrind_annotate. Needs valgrind and wrk.
#
# CONNS (10) sets wrk's connections. CACHE_SIM=1 also simulates the
# caches and branch predictors (valgrind's model of this machine's L1
# and last-level caches, not the hardware, which this VM cannot count)
# and prints their misses per request: D1mw are writes to lines not in
# the data cache, I1mr instruction fetches that missed.
set -euo pipefail
bin="$1" secs="${2:-8}" PORT="${PORT:-8198}" OUT="${OUT:-/tmp/callgrind-http.out}"
conns="${CONNS:-10}"
url="http://127.0.0.1:$PORT/hello"
sim=()
if [ "${CACHE_SIM:-0}" = 1 ]; then sim=(--cache-sim=yes --branch-sim=yes); fi
# DUMP_INSTR=1: counts per instruction too (for benches/http/atomics.sh).
if [ "${DUMP_INSTR:-0}" = 1 ]; then sim+=(--dump-instr=yes); fi
rm -f "$OUT" "$OUT".*
valgrind --tool=callgrind "${sim[@]}" --callgrind-out-file="$OUT" "$bin" --port "$PORT" > /dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf "$url" > /dev/null && break
  sleep 0.1
done
wrk -t1 -c"$conns" -d2s "$url" > /dev/null
callgrind_control -z "$pid" > /dev/null 2>&1
requests=$(wrk -t1 -c"$conns" -d"${secs}s" "$url" | awk '/requests in/ {print $1}')
callgrind_control -d "$pid" > /dev/null 2>&1
instructions=$(awk '/^summary:/ {print $2}' "$OUT".1)
echo "$instructions instructions / $requests requests = $((instructions / requests)) per request"
if [ ${#sim[@]} -gt 0 ]; then
  awk -v r="$requests" '/^events:/ {for (i = 2; i <= NF; i++) name[i] = $i}
    /^summary:/ {for (i = 2; i <= NF; i++) printf "%s %.1f  ", name[i], $i / r; print "per request"}' "$OUT".1
fi
