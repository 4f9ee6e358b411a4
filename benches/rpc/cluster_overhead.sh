#!/usr/bin/env bash
# What a cluster channel costs the caller: echo calls through `list://`
# of one local replica (the naming/balancing machinery alone) and of
# three (rr; three connections instead of one, so each batches a third of
# the calls), against a plain channel to the first, alternated, with the
# caller's own CPU per 100k calls and the ratios to the plain channel.
#
# The three replicas are measured twice:
# - three server processes (as replicas are deployed): the servers share
#   the machine's cores with the caller, and each is idle a third of
#   the time more than the plain channel's one server is, so the
#   caller's writes more often wake a sleeping server process (the
#   kernel's wakeup, charged to the writer's `sendmsg`);
# - three servers in one process (`echo_server --replicas 3`): the
#   server side is as busy as the plain channel's, so the ratio is the
#   channel's own cost (three connections, the balancer) without those
#   wakeups.
#
#   benches/rpc/cluster_overhead.sh [ROUNDS]
#
# Environment: C (callers, 16), DURATION (5), PORT (8300; uses six),
# BIN_DIR (the release binaries, built here into
# $CARGO_TARGET_DIR/release when unset; set it to run prebuilt copies;
# PRESS_BIN_DIR, if set, takes fibrpc_press from there instead, to
# compare two callers against the same servers).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
C="${C:-16}" DURATION="${DURATION:-5}" PORT="${PORT:-8300}"
if [[ -z "${BIN_DIR:-}" ]]; then
  cargo build -q --release -p fibrpc --example echo_server
  cargo build -q --release -p fibrpc-tools --bin fibrpc_press
fi
bin="${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
press="${PRESS_BIN_DIR:-$bin}/fibrpc_press"
pids=()
for p in "$PORT" $((PORT + 1)) $((PORT + 2)); do
  "$bin/examples/echo_server" --port "$p" > /dev/null 2>&1 & pids+=($!)
done
# Three replicas in one process.
"$bin/examples/echo_server" --port $((PORT + 3)) --replicas 3 > /dev/null 2>&1 & pids+=($!)
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
sleep 0.5
list="list://127.0.0.1:$PORT,127.0.0.1:$((PORT + 1)),127.0.0.1:$((PORT + 2))"
one="list://127.0.0.1:$((PORT + 3)),127.0.0.1:$((PORT + 4)),127.0.0.1:$((PORT + 5))"

run() { # server
  "$press" --server "$1" --lb rr --concurrency "$C" --duration "$DURATION" \
    --warmup 1 --threads 1 2> /dev/null | sed -n 's/^RESULT //p'
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

single_cpu=() one_cpu=() three_cpu=() proc_cpu=()
for r in $(seq 1 "$rounds"); do
  s=$(run "127.0.0.1:$PORT"); o=$(run "list://127.0.0.1:$PORT"); t=$(run "$list"); p=$(run "$one")
  sc=$(field "$s" client_cpu_per_100k_s); oc=$(field "$o" client_cpu_per_100k_s)
  tc=$(field "$t" client_cpu_per_100k_s); pc=$(field "$p" client_cpu_per_100k_s)
  echo "round $r: plain qps $(field "$s" qps) CPU $sc | list of 1 qps $(field "$o" qps) CPU $oc" \
    "| list of 3 processes qps $(field "$t" qps) CPU $tc | list of 3 in one process qps $(field "$p" qps) CPU $pc (caller s/100k)"
  single_cpu+=("$sc"); one_cpu+=("$oc"); three_cpu+=("$tc"); proc_cpu+=("$pc")
done
python3 - "${single_cpu[*]}" "${one_cpu[*]}" "${three_cpu[*]}" "${proc_cpu[*]}" <<'PY'
import statistics, sys
s, o, t, p = ([float(x) for x in a.split()] for a in sys.argv[1:5])
ms, mo, mt, mp = (statistics.median(x) for x in (s, o, t, p))
print(f"median caller CPU per 100k calls: plain {ms:.3} s, list of 1 {mo:.3} s ({mo/ms:.3}x), "
      f"list of 3 processes {mt:.3} s ({mt/ms:.3}x), list of 3 in one process {mp:.3} s ({mp/ms:.3}x)")
PY
