#!/usr/bin/env bash
# What a cluster channel costs the caller: echo calls through `list://`
# of one local replica (the naming/balancing machinery alone) and of
# three (rr; three connections instead of one, so each batches a third of
# the calls), against a plain channel to the first, alternated, with the
# caller's own CPU per 100k calls and the ratios to the plain channel.
#
# The three replicas are measured three ways:
# - three server processes (as replicas are deployed): the servers share
#   the machine's cores with the caller, and each is idle a third of
#   the time more than the plain channel's one server is, so the
#   caller's writes more often wake a sleeping server process (the
#   kernel's wakeup, charged to the writer's `sendmsg`);
# - the same three processes called through three plain channels, the
#   callers split among them by hand (`fibrpc_press --server a,b,c`): no
#   naming, no balancer, the least any client pays to spread calls over
#   those processes, so list-of-3 / split is the cluster channel's own
#   cost on that topology;
# - three servers in one process (`echo_server --replicas 3`): the
#   server side is as busy as the plain channel's, so the ratio is the
#   channel's own cost (three connections, the balancer) without those
#   wakeups.
#
# Each variant reports the caller's CPU per 100k calls and the caller's
# plus the servers' (every process that served it), as ratios to the
# plain channel's.
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
pids=() out=$(mktemp)
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -f "$out"' EXIT
for p in "$PORT" $((PORT + 1)) $((PORT + 2)); do
  "$bin/examples/echo_server" --port "$p" > /dev/null 2>&1 & pids+=($!)
done
# Three replicas in one process.
"$bin/examples/echo_server" --port $((PORT + 3)) --replicas 3 > /dev/null 2>&1 & pids+=($!)
sleep 0.5
three="127.0.0.1:$PORT,127.0.0.1:$((PORT + 1)),127.0.0.1:$((PORT + 2))"
three_pids="${pids[0]},${pids[1]},${pids[2]}"
in_one="127.0.0.1:$((PORT + 3)),127.0.0.1:$((PORT + 4)),127.0.0.1:$((PORT + 5))"

# name|server|server pids, in the order each round runs them.
variants=(
  "plain|127.0.0.1:$PORT|${pids[0]}"
  "list of 1|list://127.0.0.1:$PORT|${pids[0]}"
  "list of 3 processes|list://$three|$three_pids"
  "split over 3 processes|$three|$three_pids"
  "list of 3 in one process|list://$in_one|${pids[3]}"
)
for r in $(seq 1 "$rounds"); do
  line="round $r:"
  for v in "${variants[@]}"; do
    IFS='|' read -r name server spids <<< "$v"
    res=$("$press" --server "$server" --lb rr --concurrency "$C" --duration "$DURATION" \
      --warmup 1 --threads 1 --server-pid "$spids" 2> /dev/null | sed -n 's/^RESULT //p')
    echo "$r|$name|$res" >> "$out"
    line+=" $name $(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); q,c,s=r["qps"],r["client_cpu_per_100k_s"],r["server_cpu_per_100k_s"]; print(f"{q:.0f} qps {c:.3}+{s:.3} s |")' "$res")"
  done
  echo "${line% |} (caller+servers CPU per 100k calls)"
done
python3 - "$out" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    _, name, res = line.rstrip("\n").split("|", 2)
    r = json.loads(res)
    runs.setdefault(name, []).append((r["client_cpu_per_100k_s"], r["client_cpu_per_100k_s"] + r["server_cpu_per_100k_s"]))
med = {n: (statistics.median(c for c, _ in v), statistics.median(t for _, t in v)) for n, v in runs.items()}
pc, pt = med["plain"]
print("median CPU per 100k calls (ratio to the plain channel): caller | caller+servers")
for n, (c, t) in med.items():
    print(f"  {n:26} {c:.3} s ({c/pc:.3}x) | {t:.3} s ({t/pt:.3}x)")
sc, st = med["split over 3 processes"]
lc, lt = med["list of 3 processes"]
print(f"  list of 3 processes / split over 3 processes: caller {lc/sc:.3}x, caller+servers {lt/st:.3}x")
PY
