#!/usr/bin/env bash
# Side-by-side HTTP/1.1 plaintext benchmark: fibrpc's http_hello
# example vs hyper_hello (hyper 1.x on tokio) and may_hello (may_minihttp),
# and optionally floor_hello (raw epoll, no framework: a yardstick), 2
# workers each, `GET /hello` -> 200 "Hello, World!" over keep-alive
# connections, loaded by wrk on loopback. For each repetition and server, the
# server is started fresh, warmed up by wrk for WARMUP seconds, loaded by
# `wrk -t THREADS -c CONNS -d DURATION --latency` under wrk_window (which
# charges the server for its CPU time and reads its RSS), and killed. Ends
# with summarize.py's table: medians over REPS, ratios fibrpc/hyper and
# fibrpc/may. See README.md for what is measured.
#
#   benches/http/run.sh [--quick]
#
#   --quick   DURATION=3 REPS=1 (unless set)
#
# Environment (defaults in parentheses):
#   SERVERS     servers to run ("fibrpc hyper may"; add "floor" for the
#               no-framework yardstick, "fibrpc-uring" for http_hello on
#               the io_uring driver)
#   DURATION    measured seconds per run (10)
#   REPS        measured runs per server; the summary takes medians (3)
#   WARMUP      seconds of wrk before each measured run, same flags (2)
#   THREADS     wrk threads (2)
#   CONNS       wrk connections (50)
#   WORKERS     worker threads of hyper_hello and may_hello (2)
#   QUIET_WAIT  seconds to wait before each run for the machine to be quiet
#               (under 0.2 busy cores over 1 s); 0 = don't (30)
#   OUT         directory for logs and results (a new one under /tmp)
#   BUILD       1: cargo build what runs first; 0: run the binaries already
#               under $CARGO_TARGET_DIR/release without building (1)
#   FIBRPC_SERVER_CMD  ($target/release/examples/http_hello --port 8100)
#   FIBRPC_URING_SERVER_CMD (env FIBRPC_IO_DRIVER=uring $target/release/examples/http_hello --port 8104)
#   HYPER_SERVER_CMD   ($target/release/hyper_hello --port 8101 --workers WORKERS)
#   MAY_SERVER_CMD     ($target/release/may_hello --port 8102 --workers WORKERS)
#   FLOOR_SERVER_CMD   ($target/release/floor_hello --port 8103 --workers WORKERS)
# The port is the --port value of each command. $target is CARGO_TARGET_DIR
# or target. A server whose binary does not build is skipped ("skipped: ...").
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-3}" REPS="${REPS:-1}"
fi
SERVERS="${SERVERS:-fibrpc hyper may}"
DURATION="${DURATION:-10}"
REPS="${REPS:-3}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-50}"
WORKERS="${WORKERS:-2}"
QUIET_WAIT="${QUIET_WAIT:-30}"
BUILD="${BUILD:-1}"
OUT="${OUT:-$(mktemp -d /tmp/bench-http.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
target="${CARGO_TARGET_DIR:-target}"
FIBRPC_SERVER_CMD="${FIBRPC_SERVER_CMD:-$target/release/examples/http_hello --port 8100}"
FIBRPC_URING_SERVER_CMD="${FIBRPC_URING_SERVER_CMD:-env FIBRPC_IO_DRIVER=uring $target/release/examples/http_hello --port 8104}"
HYPER_SERVER_CMD="${HYPER_SERVER_CMD:-$target/release/hyper_hello --port 8101 --workers $WORKERS}"
MAY_SERVER_CMD="${MAY_SERVER_CMD:-$target/release/may_hello --port 8102 --workers $WORKERS}"
FLOOR_SERVER_CMD="${FLOOR_SERVER_CMD:-$target/release/floor_hello --port 8103 --workers $WORKERS}"

for server in $SERVERS; do
    case "$server" in fibrpc|fibrpc-uring|hyper|may|floor) ;; *) echo "unknown server: $server" >&2; exit 2 ;; esac
done

if ! command -v wrk > /dev/null; then
    if [[ $(id -u) == 0 ]]; then
        echo "wrk is missing; installing it (apt-get install -y wrk)"
        apt-get install -y wrk > "$OUT/wrk-install.log" 2>&1 \
            || { apt-get update && apt-get install -y wrk; } >> "$OUT/wrk-install.log" 2>&1 \
            || { echo "error: could not install wrk; see $OUT/wrk-install.log" >&2; exit 1; }
    else
        echo "error: wrk is not installed and this is not root: run 'apt-get install -y wrk' as root" >&2
        exit 1
    fi
fi

[[ "$BUILD" == 0 ]] || cargo build --release -p fibrpc-bench-http
skip() { # server, reason
    echo "skipped: $1: $2"
    SERVERS="$(echo " $SERVERS " | sed "s/ $1 / /; s/^ *//; s/ *\$//")"
}
server_cmd() {
    case "$1" in
        fibrpc) echo "$FIBRPC_SERVER_CMD" ;;
        fibrpc-uring) echo "$FIBRPC_URING_SERVER_CMD" ;;
        hyper) echo "$HYPER_SERVER_CMD" ;;
        may) echo "$MAY_SERVER_CMD" ;;
        floor) echo "$FLOOR_SERVER_CMD" ;;
    esac
}
if [[ "$BUILD" != 0 && " $SERVERS " == *" fibrpc"* ]]; then
    # Not there on every branch yet: build it if it exists, skip it if not.
    if ! cargo build --release -p fibrpc --example http_hello 2> "$OUT/fibrpc-build.log"; then
        skip fibrpc "cargo build --release -p fibrpc --example http_hello failed (log: $OUT/fibrpc-build.log)"
        skip fibrpc-uring "as fibrpc"
    fi
fi
for server in $SERVERS; do
    cmd="$(server_cmd "$server")"
    cmd="${cmd#env * }" # the program after an `env VAR=value` prefix
    command -v "${cmd%% *}" > /dev/null 2>&1 || skip "$server" "no binary ${cmd%% *}"
done
if [[ -z "$SERVERS" ]]; then
    echo "error: no server left to run" >&2
    exit 1
fi

# stop_server, busy_ticks, wait_until_quiet, start_server_on_port

# The port is the value of --port in the server command.
server_port() { cmd_port "$(server_cmd "$1")"; }
start_server() { start_server_on_port "$@"; }

# The number after "key": in a flat json object.
field() { sed -n "s/.*\"$1\":\([-0-9.e]*\).*/\1/p" <<< "$2"; }

# One run of server $1, repetition $2: warm-up, then the measured wrk.
run_one() {
    local server="$1" rep="$2" tag="$1-r$2" url result
    url="http://127.0.0.1:$(server_port "$server")/hello"
    wait_until_quiet
    start_server "$server" "$OUT/$tag.server.log" || return 0
    wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" > "$OUT/$tag.warmup.log" 2>&1 \
        || echo "note: $server warm-up wrk exited with $?" >&2
    "$target/release/wrk_window" --server-pid "$server_pid" -- \
        wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$url" \
        > "$OUT/$tag.wrk.log" 2>&1 || echo "note: $server wrk_window exited with $?" >&2
    result="$(sed -n 's/^RESULT //p' "$OUT/$tag.wrk.log")"
    if [[ -n "$result" ]]; then
        echo "$server $CONNS $rep RESULT $result" >> "$results"
        printf '%-6s rep %s: %10.0f req/s  p50 %7.1f us  p99 %8.1f us  server CPU %6.2f us/req  RSS %6s KiB  errors %s+%s  other load %s cores\n' \
            "$server" "$rep" "$(field rps "$result")" "$(field p50_us "$result")" \
            "$(field p99_us "$result")" "$(field server_cpu_us_per_req "$result")" \
            "$(field server_rss_kb "$result")" "$(field errors "$result")" \
            "$(field non_2xx "$result")" "$(field other_load_cores "$result")"
    else
        echo "error: no RESULT line from $server rep $rep; see $OUT/$tag.wrk.log" >&2
        tail -n 5 "$OUT/$tag.wrk.log" >&2
    fi
    stop_server
}

echo "servers: $SERVERS; wrk -t$THREADS -c$CONNS, ${WARMUP}+${DURATION} s; workers: $WORKERS; reps: $REPS; output: $OUT"
for rep in $(seq "$REPS"); do
    # Repetitions outside, servers inside: a neighbour's burst of load then
    # hits one run of each server, not one server's every run.
    for server in $SERVERS; do run_one "$server" "$rep"; done
done
echo
python3 benches/http/summarize.py "$results"
