#!/usr/bin/env bash
# Side-by-side RPC echo benchmark: fibrpc's echo_server (baidu_std, driven
# by fibrpc_press) vs tonic_echo_server (gRPC over HTTP/2 on tokio, driven by
# tonic_press), bRPC's example.EchoService on loopback. For each concurrency
# C, each server is started fresh, loaded closed-loop by C callers on ONE
# connection for WARMUP+DURATION seconds, charged for its CPU time and RSS
# (--server-pid), and killed. Ends with summarize.py's table, including
# fibrpc/tonic ratios. See README.md for exactly what is measured.
#
#   benches/rpc/run.sh [--quick] [--idle]
#
#   --quick   DURATION=2, WARMUP=1, CONCS="1 16" (unless set)
#   --idle    instead of the load runs: each server holds IDLE_CONNS idle
#             TCP connections (idle_conns) and its RSS is read before and
#             while they are held (per-connection memory)
#
# Environment (defaults in parentheses):
#   SERVERS        servers to run ("tonic fibrpc"; "fibrpc-uring": echo_server
#                  on the io_uring driver)
#   CONCS          concurrencies ("1 16 64")
#   DURATION       measured seconds per run (10)
#   WARMUP         seconds before measuring (2)
#   REPS           runs of each (C, server) cell; the summary takes medians (1)
#   SIZE           request message size in bytes (64)
#   PRESS_THREADS  press tool threads (2)
#   IDLE_CONNS     idle connections for --idle (10000)
#   IDLE_SECS      seconds idle_conns holds them (5)
#   IDLE_ARGS      extra idle_conns flags, e.g. --baidu-echo (each connection
#                  makes one baidu_std Echo call first; fibrpc only)
#   QUIET_WAIT     seconds to wait before each run for the machine to be
#                  quiet (under 0.2 busy cores over 1 s); 0 = don't (30)
#   OUT            directory for logs and results (a new one under /tmp)
#   BUILD          1: cargo build what runs first; 0: run the binaries
#                  already under $CARGO_TARGET_DIR/release without building (1)
#   FIBRPC_SERVER_CMD  ($target/release/examples/echo_server --port 8000)
#   FIBRPC_URING_SERVER_CMD (env FIBRPC_IO_DRIVER=uring $target/release/examples/echo_server --port 8002)
#   FIBRPC_URING_PRESS_CMD  ($target/release/fibrpc_press --server 127.0.0.1:8002)
#   FIBRPC_PRESS_CMD   ($target/release/fibrpc_press --server 127.0.0.1:8000)
#   TONIC_SERVER_CMD   ($target/release/tonic_echo_server --port 8001)
#   TONIC_PRESS_CMD    ($target/release/tonic_press --server 127.0.0.1:8001)
# The press commands get "--concurrency C --duration D --warmup W
# --request-size SIZE --threads PRESS_THREADS --server-pid PID" appended and
# must print one "RESULT {json}" line. $target is CARGO_TARGET_DIR or target.
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0 idle=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --idle) idle=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-2}" WARMUP="${WARMUP:-1}" CONCS="${CONCS:-1 16}"
fi
SERVERS="${SERVERS:-tonic fibrpc}"
CONCS="${CONCS:-1 16 64}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REPS="${REPS:-1}"
SIZE="${SIZE:-64}"
PRESS_THREADS="${PRESS_THREADS:-2}"
IDLE_CONNS="${IDLE_CONNS:-10000}"
IDLE_SECS="${IDLE_SECS:-5}"
QUIET_WAIT="${QUIET_WAIT:-30}"
BUILD="${BUILD:-1}"
OUT="${OUT:-$(mktemp -d /tmp/bench-rpc.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
target="${CARGO_TARGET_DIR:-target}"
FIBRPC_SERVER_CMD="${FIBRPC_SERVER_CMD:-$target/release/examples/echo_server --port 8000}"
FIBRPC_PRESS_CMD="${FIBRPC_PRESS_CMD:-$target/release/fibrpc_press --server 127.0.0.1:8000}"
FIBRPC_URING_SERVER_CMD="${FIBRPC_URING_SERVER_CMD:-env FIBRPC_IO_DRIVER=uring $target/release/examples/echo_server --port 8002}"
FIBRPC_URING_PRESS_CMD="${FIBRPC_URING_PRESS_CMD:-$target/release/fibrpc_press --server 127.0.0.1:8002}"
TONIC_SERVER_CMD="${TONIC_SERVER_CMD:-$target/release/tonic_echo_server --port 8001}"
TONIC_PRESS_CMD="${TONIC_PRESS_CMD:-$target/release/tonic_press --server 127.0.0.1:8001}"

# 10k idle connections need 10k descriptors on each side; ask for what we may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

for server in $SERVERS; do
    case "$server" in tonic|fibrpc|fibrpc-uring) ;; *) echo "unknown server: $server" >&2; exit 2 ;; esac
done
[[ "$BUILD" == 0 ]] || cargo build --release -p fibrpc-bench-rpc
if [[ " $SERVERS " == *" fibrpc"* ]]; then
    if [[ "$BUILD" != 0 ]]; then
        # Not there yet on every branch: build what exists, skip fibrpc if not.
        cargo build --release -p fibrpc --example echo_server 2> "$OUT/fibrpc-build.log" || true
        cargo build --release -p fibrpc-tools --bin fibrpc_press 2>> "$OUT/fibrpc-build.log" || true
    fi
    # The first word of each command must be a runnable program.
    have() { command -v "${1%% *}" > /dev/null 2>&1; }
    missing=""
    have "$FIBRPC_SERVER_CMD" || missing+="no server binary ${FIBRPC_SERVER_CMD%% *}; "
    [[ $idle == 1 ]] || have "$FIBRPC_PRESS_CMD" || missing+="no press binary ${FIBRPC_PRESS_CMD%% *}; "
    if [[ -n "$missing" ]]; then
        echo "NOTE: skipping fibrpc: ${missing}build log: $OUT/fibrpc-build.log" >&2
        SERVERS="$(echo " $SERVERS " | sed -E 's/ fibrpc(-uring)? / /g; s/^ *//; s/ *$//')"
    fi
fi
if [[ -z "$SERVERS" ]]; then
    echo "error: no server left to run" >&2
    exit 1
fi

server_cmd() {
    case "$1" in
        fibrpc) echo "$FIBRPC_SERVER_CMD" ;;
        fibrpc-uring) echo "$FIBRPC_URING_SERVER_CMD" ;;
        *) echo "$TONIC_SERVER_CMD" ;;
    esac
}
press_cmd() {
    case "$1" in
        fibrpc) echo "$FIBRPC_PRESS_CMD" ;;
        fibrpc-uring) echo "$FIBRPC_URING_PRESS_CMD" ;;
        *) echo "$TONIC_PRESS_CMD" ;;
    esac
}
# stop_server, busy_ticks, wait_until_quiet, start_server_on_port
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# The port is the value of --port in the server command.
server_port() { cmd_port "$(server_cmd "$1")"; }
start_server() { start_server_on_port "$@"; }

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# One load run of server $1 at concurrency $2, repetition $3.
run_load() {
    local server="$1" c="$2" rep="$3" tag="$1-c$2-r$3" result
    wait_until_quiet
    start_server "$server" "$OUT/$tag.server.log" || return 0
    echo "== $server C=$c rep $rep"
    # shellcheck disable=SC2046
    $(press_cmd "$server") --concurrency "$c" --duration "$DURATION" --warmup "$WARMUP" \
        --request-size "$SIZE" --threads "$PRESS_THREADS" --server-pid "$server_pid" \
        > "$OUT/$tag.press.log" 2>&1 || echo "note: $server press exited with $?" >&2
    grep -v '^RESULT' "$OUT/$tag.press.log" | tail -n 4 || true
    result="$(grep -m1 '^RESULT ' "$OUT/$tag.press.log" || true)"
    if [[ -n "$result" ]]; then
        echo "$server $c $rep $result" >> "$results"
    else
        echo "error: no RESULT line from $server at C=$c; see $OUT/$tag.press.log" >&2
    fi
    stop_server
}

# The idle-connection run of server $1: RSS before and while idle_conns
# holds IDLE_CONNS connections that never send a byte.
run_idle() {
    local server="$1" before after fds holding held log="$OUT/$1-idle.conns.log" conns_pid
    wait_until_quiet
    start_server "$server" "$OUT/$server-idle.server.log" || return 0
    : > "$log" # exists before the first grep
    sleep 0.5
    before="$(rss_kb "$server_pid")"
    "$target/release/idle_conns" --addr "127.0.0.1:$(server_port "$server")" \
        --conns "$IDLE_CONNS" --hold "$IDLE_SECS" ${IDLE_ARGS:-} > "$log" 2>&1 &
    conns_pid=$!
    holding=""
    for _ in $(seq 600); do
        holding="$(grep -m1 '^HOLDING' "$log" || true)"
        [[ -n "$holding" ]] && break
        kill -0 "$conns_pid" 2>/dev/null || break
        sleep 0.1
    done
    sleep 1 # let the server accept the last of them
    after="$(rss_kb "$server_pid")"
    fds="$(find "/proc/$server_pid/fd" -mindepth 1 2>/dev/null | wc -l)"
    wait "$conns_pid" || true
    held="$(echo "$holding" | awk '{ print ($2 == "" ? 0 : $2) }')"
    echo "== $server idle: $holding; server fds $fds; rss $before -> $after KiB"
    echo "$server $IDLE_CONNS 1 IDLE {\"conns\":$IDLE_CONNS,\"connected\":$held,\"server_fds\":$fds,\"rss_before_kb\":$before,\"rss_after_kb\":$after}" >> "$results"
    stop_server
}

echo "servers: $SERVERS; output: $OUT"
if [[ $idle == 1 ]]; then
    echo "idle: $IDLE_CONNS connections held $IDLE_SECS s"
    for server in $SERVERS; do run_idle "$server"; done
else
    echo "C: $CONCS; ${SIZE} B; ${WARMUP}+${DURATION} s; press threads: $PRESS_THREADS; reps: $REPS"
    for rep in $(seq "$REPS"); do
        # C outside, servers inside: a neighbour's burst of load then hits
        # both servers of one row, not one server's whole column.
        for c in $CONCS; do
            for server in $SERVERS; do run_load "$server" "$c" "$rep"; done
        done
    done
fi
echo
python3 benches/rpc/summarize.py "$results"
