#!/usr/bin/env bash
# Side-by-side TCP echo benchmark: fibrpc's tcp_echo_server vs the
# tokio and may echo servers of this package, 2 workers each, driven by
# fibrpc-echo-bench on loopback. For each C, every server is started fresh,
# loaded for WARMUP+DURATION seconds (closed loop, SIZE-byte echoes), and
# killed; then each holds IDLE_CONNS idle connections for IDLE_SECS while the
# generator samples its RSS. Ends with summarize.py's table.
#
#   benches/net/run.sh [--quick]
#
# Environment (defaults in parentheses; --quick shortens the durations):
#   SERVERS    servers to run ("fibrpc tokio may"; add "floor" for the
#              raw-epoll yardstick floor_echo_server, see README.md;
#              "fibrpc-uring" for tcp_echo_server on the io_uring driver,
#              "fibrpc-uring-poll" for it with readiness only from the ring,
#              reads and writes as system calls: FIBRPC_IO_URING_OPS=0)
#   CONNS      connection counts ("1 50 1000 10000")
#   DURATION   measured seconds per run (10; quick: 3)
#   WARMUP     seconds before measuring (2; quick: 1)
#   SIZE       echo size in bytes (64)
#   THREADS    generator threads (2: saturates a 2-core machine, see README.md)
#   REPS       runs of each (C, server) cell; the summary takes medians (1)
#   IDLE_CONNS idle connections to hold, 0 skips that part (10000)
#   IDLE_SECS  seconds to hold them (5; quick: 2)
#   OUT        directory for the logs and results (a new one under /tmp)
#   QUIET_WAIT seconds to wait, before each run, for the machine to be quiet
#              (under 0.2 busy cores for a second); 0 = don't wait (60)
#   BUILD      1: cargo build what runs first; 0: run the binaries already
#              under $CARGO_TARGET_DIR/release (copied out of a build tree,
#              say) without building (1)
# Servers listen on 127.0.0.1: fibrpc 7000, tokio 7001, may 7002, floor 7003,
# fibrpc-uring 7004, fibrpc-uring-poll 7005.
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
SERVERS="${SERVERS:-fibrpc tokio may}"
CONNS="${CONNS:-1 50 1000 10000}"
SIZE="${SIZE:-64}"
THREADS="${THREADS:-2}"
REPS="${REPS:-1}"
QUIET_WAIT="${QUIET_WAIT:-60}"
BUILD="${BUILD:-1}"
IDLE_CONNS="${IDLE_CONNS:-10000}"
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-3}" WARMUP="${WARMUP:-1}" IDLE_SECS="${IDLE_SECS:-2}"
else
    DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}" IDLE_SECS="${IDLE_SECS:-5}"
fi
OUT="${OUT:-$(mktemp -d /tmp/bench-net.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
target="${CARGO_TARGET_DIR:-target}"

# 10k connections need 10k descriptors on each side; ask for what we may.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

for server in $SERVERS; do
    case "$server" in fibrpc|fibrpc-uring|fibrpc-uring-poll|tokio|may|floor) ;; *) echo "unknown server: $server" >&2; exit 2 ;; esac
done
[[ "$BUILD" == 0 ]] || cargo build --release -p fibrpc-bench-net
bench="$target/release/fibrpc-echo-bench"
if [[ "$BUILD" != 0 && " $SERVERS " == *" fibrpc"* ]]; then
    if ! cargo build --release -p fibrpc-fiber --example tcp_echo_server; then
        echo "note: fibrpc's tcp_echo_server example does not build; skipping fibrpc" >&2
        SERVERS="$(echo " $SERVERS " | sed -E 's/ fibrpc(-uring|-uring-poll)? / /g; s/^ *//; s/ *$//')"
    fi
fi

server_cmd() {
    case "$1" in
        fibrpc) echo "$target/release/examples/tcp_echo_server --port 7000 --workers 2" ;;
        fibrpc-uring) echo "$target/release/examples/tcp_echo_server --port 7004 --workers 2 --io-driver uring" ;;
        fibrpc-uring-poll) echo "env FIBRPC_IO_URING_OPS=0 $target/release/examples/tcp_echo_server --port 7005 --workers 2 --io-driver uring" ;;
        tokio) echo "$target/release/tokio_echo_server --port 7001 --workers 2" ;;
        may) echo "$target/release/may_echo_server --port 7002 --workers 2" ;;
        floor) echo "$target/release/floor_echo_server --port 7003 --workers 2" ;;
    esac
}
server_port() {
    case "$1" in
        fibrpc) echo 7000 ;; tokio) echo 7001 ;; may) echo 7002 ;; floor) echo 7003 ;;
        fibrpc-uring) echo 7004 ;; fibrpc-uring-poll) echo 7005 ;;
    esac
}

# stop_server, busy_ticks, wait_until_quiet

# Starts server $1 with its output in $2 and waits (10 s at most) for its
# "listening on" line; returns 1 if it never comes.
start_server() {
    local log="$2"
    : > "$log" # exists before the first grep, whenever the server starts
    # shellcheck disable=SC2046 # the command is split into words on purpose
    $(server_cmd "$1") > "$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "error: $1 did not report listening; its log:" >&2
    cat "$log" >&2
    stop_server
    return 1
}

# One generator run against server $1; extra generator flags follow.
run_one() {
    local server="$1" tag="$2"
    shift 2
    wait_until_quiet
    start_server "$server" "$OUT/$server-$tag.server.log" || return 0
    "$bench" --addr "127.0.0.1:$(server_port "$server")" --server-pid "$server_pid" \
        --label "$server" "$@" 2> "$OUT/$server-$tag.bench.log" \
        | tee -a "$results" | grep -v '^RESULT' || true
    stop_server
}

echo "servers: $SERVERS; C: $CONNS; ${SIZE} B; ${WARMUP}+${DURATION} s; generator threads: $THREADS; reps: $REPS; output: $OUT"
for rep in $(seq "$REPS"); do
    # C outside, servers inside: a neighbour's burst of load then hits
    # every server of one row, not one server's whole column.
    for c in $CONNS; do
        for server in $SERVERS; do
            run_one "$server" "c$c-r$rep" -c "$c" -s "$SIZE" -d "$DURATION" \
                --warmup "$WARMUP" --threads "$THREADS"
        done
    done
done
if [[ "$IDLE_CONNS" != 0 ]]; then
    for server in $SERVERS; do
        run_one "$server" "idle" --idle -c "$IDLE_CONNS" -d "$IDLE_SECS" --threads "$THREADS"
    done
fi
echo
python3 benches/net/summarize.py "$results"
