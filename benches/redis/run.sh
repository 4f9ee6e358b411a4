#!/usr/bin/env bash
# Side-by-side redis benchmarks, each peer in the same run:
#
# 1. Server: redis-benchmark -t get,set -n N -c 50 at -P 1 and -P 16
#    against fibrpc's redis_server example and against redis-server
#    (single-threaded, --save '' --appendonly no). Prints requests/s per
#    test, the ratio fibrpc/redis, and each server's CPU per operation
#    (utime+stime of /proc/PID/stat before and after the run). fibrpc runs
#    its default worker count (one per core); redis-server one thread.
# 2. Client: redis_client_bench (benches/redis) drives one redis-server
#    with 16 concurrent callers of GET/SET through fibrpc's RedisChannel
#    (a connection per fiber worker, ConnectionType::PerWorker) and
#    through the redis crate's multiplexed tokio connection (2 workers),
#    and prints ops/s, client CPU per op and the ratio.
#
#   benches/redis/run.sh [--quick]
#
#   --quick   N=20000 CLIENT_SECONDS=1 (a smoke run, not a measurement)
#
# Environment (defaults in parentheses):
#   N               requests per redis-benchmark test (200000)
#   CONNS           redis-benchmark connections (50)
#   PIPELINES       -P values ("1 16")
#   CALLERS         client bench callers (16)
#   CLIENT_SECONDS  client bench seconds per client (10)
#   QUIET_WAIT      seconds to wait for a quiet machine before each run (30)
#   OUT             directory for logs (a new one under /tmp)
#   BIN_DIR         the release binaries ($CARGO_TARGET_DIR/release, built
#                   first); when set, nothing is built and the binaries are
#                   taken from there (examples/redis_server and
#                   redis_client_bench: a copy of the release directory's
#                   layout)
#   CONNECTION_TYPE fibrpc's client connections (per_worker; or single)
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
if [[ $quick == 1 ]]; then
    N="${N:-20000}" CLIENT_SECONDS="${CLIENT_SECONDS:-1}" QUIET_WAIT="${QUIET_WAIT:-0}"
fi
N="${N:-200000}"
CONNS="${CONNS:-50}"
PIPELINES="${PIPELINES:-1 16}"
CALLERS="${CALLERS:-16}"
CLIENT_SECONDS="${CLIENT_SECONDS:-10}"
QUIET_WAIT="${QUIET_WAIT:-30}"
OUT="${OUT:-$(mktemp -d /tmp/bench-redis.XXXXXX)}"
mkdir -p "$OUT"
target="${CARGO_TARGET_DIR:-target}"

for bin in redis-server redis-benchmark; do
    command -v "$bin" > /dev/null || { echo "error: $bin is missing: apt-get install redis-server redis-tools" >&2; exit 1; }
done

bin="${BIN_DIR:-$target/release}"
if [[ -z "${BIN_DIR:-}" ]]; then
    cargo build --release -p fibrpc --example redis_server
    cargo build --release -p fibrpc-bench-redis
fi

# stop_server, busy_ticks, wait_until_quiet, start_server_on_port

FIBRPC_PORT=6390
REDIS_PORT=6391
# fibrpc's server goes through start_server_on_port (lib.sh).
server_cmd() { echo "$bin/examples/redis_server --port $FIBRPC_PORT"; }
# redis-server's empty --save argument does not survive the word
# splitting of server_cmd: started by hand, the same way.
start_redis() {
    if port_open "$REDIS_PORT"; then
        echo "error: something already listens on port $REDIS_PORT" >&2
        return 1
    fi
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" \
        > "$1" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port_open "$REDIS_PORT" && return 0
        sleep 0.1
    done
    echo "error: redis-server never accepted on $REDIS_PORT" >&2
    stop_server
    return 1
}
start() { # server log
    if [[ $1 == redis ]]; then start_redis "$2"; else start_server_on_port "$1" "$2"; fi
}
port_of() { if [[ $1 == redis ]]; then echo "$REDIS_PORT"; else echo "$FIBRPC_PORT"; fi; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A rps cpu
hz="$(getconf CLK_TCK)"
echo "== server: redis-benchmark -t get,set -n $N -c $CONNS (output: $OUT)"
for p in $PIPELINES; do
    for server in fibrpc redis; do
        wait_until_quiet
        start "$server" "$OUT/$server-P$p.server.log" || continue
        before="$(cpu_ticks "$server_pid")"
        redis-benchmark -h 127.0.0.1 -p "$(port_of "$server")" -t get,set -n "$N" -c "$CONNS" \
            -P "$p" --csv > "$OUT/$server-P$p.csv" 2> "$OUT/$server-P$p.err" \
            || echo "note: redis-benchmark against $server exited with $?" >&2
        after="$(cpu_ticks "$server_pid")"
        stop_server
        for t in SET GET; do
            rps[$server,$p,$t]="$(awk -F'"' -v t="$t" '$2 == t { print $4 }' "$OUT/$server-P$p.csv")"
        done
        # Two tests of N requests each.
        cpu[$server,$p]="$(awk -v d="$((after - before))" -v hz="$hz" -v n="$N" \
            'BEGIN { printf "%.2f", d / hz * 1e6 / (2 * n) }')"
    done
done
printf '\n%-4s %-4s %14s %14s %8s %18s %18s\n' test P "fibrpc req/s" "redis req/s" ratio "fibrpc CPU us/op" "redis CPU us/op"
for p in $PIPELINES; do
    for t in SET GET; do
        f="${rps[fibrpc,$p,$t]:-}" r="${rps[redis,$p,$t]:-}"
        ratio="$(awk -v f="${f:-0}" -v r="${r:-0}" 'BEGIN { if (r > 0) printf "%.2f", f / r; else print "-" }')"
        printf '%-4s %-4s %14s %14s %8s %18s %18s\n' "$t" "$p" "${f:--}" "${r:--}" "$ratio" \
            "${cpu[fibrpc,$p]:--}" "${cpu[redis,$p]:--}"
    done
done

echo
echo "== client: $CALLERS callers, GET/SET, ${CLIENT_SECONDS} s each, against one redis-server"
wait_until_quiet
start redis "$OUT/client.server.log"
declare -A cops
for client in fibrpc redis-rs; do
    "$bin/redis_client_bench" --server "127.0.0.1:$REDIS_PORT" --client "$client" \
        --callers "$CALLERS" --duration "$CLIENT_SECONDS" \
        --connection-type "${CONNECTION_TYPE:-per_worker}" | tee "$OUT/client-$client.log"
    cops[$client]="$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' "$OUT/client-$client.log")"
done
stop_server
awk -v f="${cops[fibrpc]:-0}" -v r="${cops[redis-rs]:-0}" \
    'BEGIN { if (r > 0) printf "client ratio fibrpc/redis-rs: %.2f\n", f / r; else print "client ratio: -" }'
