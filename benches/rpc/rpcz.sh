#!/usr/bin/env bash
# What rpcz tracing costs: fibrpc's echo_server (baidu_std) driven by
# fibrpc_press with rpcz off, on at a 1 % sample rate and on for every
# call, in the same run. For each concurrency C the three servers run in
# turn (fresh each time, charged for CPU and RSS with --server-pid), and
# the end is a table per mode with the ratios on/off.
#
#   benches/rpc/rpcz.sh [--quick]
#
#   --quick   DURATION=2, WARMUP=1, CONCS="1 16" (unless set)
#
# Environment (defaults in parentheses):
#   MODES          "off" or a sample rate 0..=1 ("off 0.01 1")
#   CONCS          concurrencies ("1 16 64")
#   DURATION       measured seconds per run (10)
#   WARMUP         seconds before measuring (2)
#   REPS           runs of each (C, mode) cell; the table takes medians (1)
#   SIZE           request message size in bytes (64)
#   PRESS_THREADS  press tool threads (2)
#   QUIET_WAIT     seconds to wait for a quiet machine before each run (30)
#   OUT            directory for logs and results (a new one under /tmp)
#   PORT           the echo server's port (8000)
#   PROFILE        cargo profile of the binaries (release; debug for a
#                  quick check of the script itself)
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-2}" WARMUP="${WARMUP:-1}" CONCS="${CONCS:-1 16}"
fi
MODES="${MODES:-off 0.01 1}"
CONCS="${CONCS:-1 16 64}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REPS="${REPS:-1}"
SIZE="${SIZE:-64}"
PRESS_THREADS="${PRESS_THREADS:-2}"
QUIET_WAIT="${QUIET_WAIT:-30}"
PORT="${PORT:-8000}"
OUT="${OUT:-$(mktemp -d /tmp/bench-rpcz.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
PROFILE="${PROFILE:-release}"
bin="${CARGO_TARGET_DIR:-target}/$PROFILE"

cargo build --profile "${PROFILE/debug/dev}" -p fibrpc --example echo_server
cargo build --profile "${PROFILE/debug/dev}" -p fibrpc-tools --bin fibrpc_press

# The server command of mode $1.
server_cmd() {
    local cmd="$bin/examples/echo_server --port $PORT"
    if [[ $1 != off ]]; then cmd+=" --enable-rpcz --rpcz-sample-rate $1"; fi
    echo "$cmd"
}
# stop_server, wait_until_quiet, start_server_on_port

run_load() {
    local mode="$1" c="$2" rep="$3" tag="rpcz-$1-c$2-r$3" result
    wait_until_quiet
    start_server_on_port "$mode" "$OUT/$tag.server.log" || return 0
    echo "== rpcz $mode C=$c rep $rep"
    "$bin/fibrpc_press" --server "127.0.0.1:$PORT" --concurrency "$c" \
        --duration "$DURATION" --warmup "$WARMUP" --request-size "$SIZE" \
        --threads "$PRESS_THREADS" --server-pid "$server_pid" \
        > "$OUT/$tag.press.log" 2>&1 || echo "note: press exited with $?" >&2
    result="$(grep -m1 '^RESULT ' "$OUT/$tag.press.log" || true)"
    if [[ -n "$result" ]]; then
        echo "$mode $c $rep $result" >> "$results"
    else
        echo "error: no RESULT line at $mode C=$c; see $OUT/$tag.press.log" >&2
    fi
    stop_server
}

echo "modes: $MODES; C: $CONCS; ${SIZE} B; ${WARMUP}+${DURATION} s; reps: $REPS; output: $OUT"
for rep in $(seq "$REPS"); do
    for c in $CONCS; do
        # Modes inside: a neighbour's burst then hits every mode of one row.
        for mode in $MODES; do run_load "$mode" "$c" "$rep"; done
    done
done
echo
python3 - "$results" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    p = line.split(None, 4)
    if len(p) == 5 and p[3] == "RESULT":
        runs.setdefault((p[0], int(p[1])), []).append(json.loads(p[4]))
fields = [("qps", 0), ("p50_us", 1), ("p99_us", 1), ("server_cpu_per_100k_s", 3)]
def med(rs, k):
    v = [r[k] for r in rs if isinstance(r.get(k), (int, float))]
    return statistics.median(v) if v else None
modes = list(dict.fromkeys(m for m, _ in runs))
for c in sorted({c for _, c in runs}):
    print(f"C={c}")
    print("  mode    " + "".join(f"{k:>24}" for k, _ in fields))
    base = runs.get(("off", c))
    for m in modes:
        rs = runs.get((m, c))
        if not rs:
            continue
        cells = []
        for k, d in fields:
            v = med(rs, k)
            b = med(base, k) if base else None
            ratio = f" ({v / b:.3f}x off)" if v is not None and b and m != "off" else ""
            cells.append(f"{'-' if v is None else round(v, d)}{ratio}")
        print(f"  {m:<6}  " + "".join(f"{x:>24}" for x in cells))
PY
