#!/usr/bin/env bash
# Alternated rounds of redis_client_bench against one redis-server: on a
# noisy 2-core machine only runs interleaved in time compare fairly.
#
#   benches/redis/ab_client.sh [ROUNDS] [LABEL=DIR:CLIENT:CONNECTION_TYPE ...]
#
# Each round runs every variant once, in order, against the same
# redis-server (--save '' --appendonly no). A variant is a directory holding
# a redis_client_bench binary, the client (fibrpc or redis-rs) and fibrpc's
# connection type (per_worker or single; ignored for redis-rs). Without
# variants: fibrpc per_worker, redis-rs, fibrpc single from BIN_DIR.
# Prints each run's ops/s and client CPU per op, then per variant the
# median, min and max ops/s and its ratio to the redis-rs run of the same
# round (median, min, max over rounds).
#
# Environment: BIN_DIR ($CARGO_TARGET_DIR/release or target/release),
# PORT (6399), DURATION (4), CALLERS (16).
set -euo pipefail
rounds="${1:-4}"
shift || true
BIN_DIR="${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
PORT="${PORT:-6399}"
DURATION="${DURATION:-4}"
CALLERS="${CALLERS:-16}"
variants=("$@")
if [[ ${#variants[@]} == 0 ]]; then
    variants=("fibrpc-pw=$BIN_DIR:fibrpc:per_worker" "redis-rs=$BIN_DIR:redis-rs:per_worker"
        "fibrpc-single=$BIN_DIR:fibrpc:single")
fi

dir="$(mktemp -d /tmp/redis-ab.XXXXXX)"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    > "$dir/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2> /dev/null; wait "$server" 2> /dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<> "/dev/tcp/127.0.0.1/$PORT") 2> /dev/null && break
    sleep 0.1
done

results="$dir/results"
for r in $(seq 1 "$rounds"); do
    for v in "${variants[@]}"; do
        label="${v%%=*}" spec="${v#*=}"
        IFS=: read -r bdir client ctype <<< "$spec"
        line="$("$bdir/redis_client_bench" --server "127.0.0.1:$PORT" --client "$client" \
            --callers "$CALLERS" --duration "$DURATION" --connection-type "$ctype" |
            sed -n 's/^RESULT //p')"
        ops="$(sed -n 's/.*"ops_per_s":\([0-9.]*\).*/\1/p' <<< "$line")"
        cpu="$(sed -n 's/.*"cpu_us_per_op":\([0-9.]*\).*/\1/p' <<< "$line")"
        printf 'round %s %-16s %10.0f ops/s  client CPU %s us/op\n' "$r" "$label" "$ops" "$cpu"
        echo "$r $label $ops $client" >> "$results"
    done
done

python3 - "$results" << 'EOF'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
ops, rs = {}, {}
for r, label, o, client in rows:
    ops.setdefault(label, {})[r] = float(o)
    if client == "redis-rs":
        rs[r] = float(o)
print()
for label, by_round in ops.items():
    v = list(by_round.values())
    line = "%-16s median %9.0f  min %9.0f  max %9.0f" % (label, statistics.median(v), min(v), max(v))
    ratios = [o / rs[r] for r, o in by_round.items() if r in rs and rs[r] > 0]
    if ratios:
        line += "  vs redis-rs: median %.2fx  min %.2fx  max %.2fx" % (
            statistics.median(ratios), min(ratios), max(ratios))
    print(line)
EOF
