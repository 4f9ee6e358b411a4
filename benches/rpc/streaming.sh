#!/usr/bin/env bash
# Streaming RPC throughput, fibrpc to fibrpc: for each message size, one
# stream (one writer, window MAX_BUF_SIZE) against the same transfer made
# of unary calls carrying the messages as attachments (CONCURRENCY callers
# on one connection). Server and client are separate processes
# (tools' stream_press --serve / stream_press); the server is started
# fresh for each size. Prints MB/s and messages/s of both, and the ratio
# stream/unary.
#
#   benches/rpc/streaming.sh [--quick]
#
#   --quick   DURATION=1 (unless set)
#
# Environment (defaults in parentheses):
#   SIZES         message sizes in bytes ("64 1024 65536")
#   DURATION      seconds of each transfer (5)
#   CONCURRENCY   unary callers in flight (64)
#   MAX_BUF_SIZE  the stream's window (2097152)
#   QUIET_WAIT    seconds to wait for a quiet machine before each size (30)
#   OUT           directory for logs and results (a new one under /tmp)
#   PORT          the server's port (8300)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/lib.sh
source benches/lib.sh

parse_quick_flag "$@"
[[ $quick == 1 ]] && DURATION="${DURATION:-1}"
SIZES="${SIZES:-64 1024 65536}"
DURATION="${DURATION:-5}"
CONCURRENCY="${CONCURRENCY:-64}"
MAX_BUF_SIZE="${MAX_BUF_SIZE:-2097152}"
QUIET_WAIT="${QUIET_WAIT:-30}"
PORT="${PORT:-8300}"
OUT="${OUT:-$(mktemp -d /tmp/bench-streaming.XXXXXX)}"
mkdir -p "$OUT"
target="${CARGO_TARGET_DIR:-target}"

cargo build --release -q -p fibrpc-tools --bin stream_press
press="$target/release/stream_press"
server_cmd() { echo "$press --serve --port $PORT"; }

results="$OUT/results.txt"
: > "$results"
for size in $SIZES; do
    wait_until_quiet
    start_server_on_port stream_press "$OUT/server-$size.log"
    "$press" --server "127.0.0.1:$PORT" --size "$size" --duration "$DURATION" \
        --concurrency "$CONCURRENCY" --max-buf-size "$MAX_BUF_SIZE" | tee -a "$OUT/client-$size.log" \
        | grep '^RESULT ' | sed 's/^RESULT //' >> "$results"
    stop_server
done

echo
printf '%-8s %14s %14s %14s %14s %10s\n' size stream_MB/s stream_msg/s unary_MB/s unary_msg/s stream/unary
python3 - "$results" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"{r['size']:<8} {r['stream_mb_s']:>14.1f} {r['stream_msg_s']:>14.0f} "
          f"{r['unary_mb_s']:>14.1f} {r['unary_msg_s']:>14.0f} {r['ratio']:>10.2f}")
PY
echo "logs and results: $OUT"
