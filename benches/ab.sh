#!/usr/bin/env bash
# Alternated A/B runs of two builds of fibrpc's servers, the way this
# repository's "before → after" figures were taken: on a noisy 2-core
# machine only runs interleaved in time compare fairly.
#
#   benches/ab.sh rpc  DIR_A DIR_B [ROUNDS]   # echo_server + fibrpc_press
#   benches/ab.sh http DIR_A DIR_B [ROUNDS]   # http_hello + wrk
#   benches/ab.sh grpc DIR_A DIR_B [ROUNDS]   # echo_server + h2load (gRPC unary)
#   benches/ab.sh echo DIR_A DIR_B [ROUNDS]   # tcp_echo_server + fibrpc-echo-bench
#
# DIR_A and DIR_B each hold a build's binaries: echo_server and
# fibrpc_press (rpc), http_hello (http), echo_server (grpc), or
# tcp_echo_server and fibrpc-echo-bench (echo; the generator is taken from
# DIR_A for both sides). Make them with e.g.
#   cargo build --release -p fibrpc --examples -p fibrpc-tools
#   mkdir -p /tmp/a && cp target/release/examples/{echo_server,http_hello} \
#     target/release/fibrpc_press /tmp/a/
# once per commit. To compare settings of one build, a directory may hold
# wrapper scripts instead, e.g. DIR_B/tcp_echo_server:
#   #!/bin/sh
#   exec env FIBRPC_IDLE_YIELD_US=2500 /path/to/tcp_echo_server "$@"
# Each round runs A then B: a fresh server, a closed-loop
# load of DURATION seconds (after 1 s warm-up for rpc, a 2 s wrk or h2load
# warm-up for http and grpc), then one line: qps (or req/s), server CPU, and
# latencies. grpc posts benches/grpc/run.sh's request (Echo, 64 bytes) with
# `h2load -c CONNS -m STREAMS`.
#
# Environment: C (rpc callers, 16), CONNS and STREAMS (grpc, 1 and 16;
# echo: connections, 1000), DURATION (6), PORT (8000 rpc, 8100 http, 8200
# grpc, 7000 echo), and for rpc anything the binaries read (e.g.
# FIBRPC_IO_POLLER). echo reads 2 s of warm-up and two generator threads,
# as benches/net/run.sh does.
set -euo pipefail
kind="${1:?usage: benches/ab.sh rpc|http|grpc|echo DIR_A DIR_B [ROUNDS]}"
a="${2:?DIR_A}" b="${3:?DIR_B}" rounds="${4:-3}"
DURATION="${DURATION:-6}"

run_rpc() { # dir
    local port="${PORT:-8000}" sp out
    "$1/echo_server" --port "$port" > /dev/null 2>&1 & sp=$!
    sleep 0.5
    out=$("$1/fibrpc_press" --server "127.0.0.1:$port" --concurrency "${C:-16}" \
        --duration "$DURATION" --warmup 1 --threads 2 --server-pid "$sp" 2> /dev/null |
        sed -n 's/^RESULT //p')
    kill "$sp"; wait "$sp" 2> /dev/null || true
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("qps %.0f  server CPU %.3f s/100k  p50 %s us  p99 %s us" % (d["qps"], d["server_cpu_per_100k_s"], d["p50_us"], d["p99_us"]))' "$out"
}

run_http() { # dir
    local port="${PORT:-8100}" sp c0 c1 out rps n
    "$1/http_hello" --port "$port" > /dev/null 2>&1 & sp=$!
    sleep 0.5
    wrk -t2 -c50 -d2s "http://127.0.0.1:$port/hello" > /dev/null 2>&1
    c0=$(awk '{print $14 + $15}' "/proc/$sp/stat")
    out=$(wrk -t2 -c50 -d"${DURATION}s" "http://127.0.0.1:$port/hello" 2> /dev/null)
    c1=$(awk '{print $14 + $15}' "/proc/$sp/stat")
    kill "$sp"; wait "$sp" 2> /dev/null || true
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    n=$(awk '/requests in/ {print $1}' <<< "$out")
    # /proc ticks are 10 ms: CPU µs per request = ticks * 10000 / requests.
    python3 -c 'import sys; r,t,n=sys.argv[1:]; print("req/s %.0f  server CPU %.2f us/req" % (float(r), float(t)*10000/float(n)))' "$rps" "$((c1 - c0))" "$n"
}

run_grpc() { # dir
    local port="${PORT:-8200}" sp c0 c1 out qps n body=/tmp/ab-echo64.grpc url
    python3 -c 'import sys; m = b"\x0a\x3e" + b"x" * 62; open(sys.argv[1], "wb").write(b"\0" + len(m).to_bytes(4, "big") + m)' "$body"
    url="http://127.0.0.1:$port/example.EchoService/Echo"
    "$1/echo_server" --port "$port" > /dev/null 2>&1 & sp=$!
    sleep 0.5
    h2load -D 2 -c "${CONNS:-1}" -m "${STREAMS:-16}" -d "$body" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$url" > /dev/null 2>&1
    c0=$(awk '{print $14 + $15}' "/proc/$sp/stat")
    out=$(h2load -D "$DURATION" -c "${CONNS:-1}" -m "${STREAMS:-16}" -d "$body" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$url" 2>&1)
    c1=$(awk '{print $14 + $15}' "/proc/$sp/stat")
    kill "$sp"; wait "$sp" 2> /dev/null || true
    qps=$(grep -oP '[\d.]+(?= req/s)' <<< "$out" | head -1)
    n=$(grep -oP '\d+(?= succeeded)' <<< "$out")
    python3 -c 'import sys; q,t,n=sys.argv[1:]; print("qps %.0f  server CPU %.2f us/call" % (float(q), float(t)*10000/float(n)))' "$qps" "$((c1 - c0))" "$n"
}

run_echo() { # dir
    local port="${PORT:-7000}" sp out
    ulimit -n "$(ulimit -Hn)" 2> /dev/null || true
    "$1/tcp_echo_server" --port "$port" --workers 2 > /dev/null 2>&1 & sp=$!
    sleep 0.5
    out=$("$a/fibrpc-echo-bench" --addr "127.0.0.1:$port" -c "${CONNS:-1000}" \
        -d "$DURATION" --warmup 2 --threads 2 --server-pid "$sp" 2> /dev/null |
        sed -n 's/^RESULT //p')
    kill "$sp"; wait "$sp" 2> /dev/null || true
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("req/s %.0f  server CPU %.2f us/req  p50 %.0f us  p99 %.0f us  p99.9 %.0f us" % (d["rps"], d["server_cpu_per_100k"] * 10, d["p50_us"], d["p99_us"], d["p999_us"]))' "$out"
}

for r in $(seq 1 "$rounds"); do
    for side in A B; do
        dir=$a; [[ $side == B ]] && dir=$b
        printf 'round %s %s: ' "$r" "$side"
        case "$kind" in
            rpc) run_rpc "$dir" ;;
            http) run_http "$dir" ;;
            grpc) run_grpc "$dir" ;;
            echo) run_echo "$dir" ;;
            *) echo "unknown kind: $kind (rpc, http, grpc or echo)" >&2; exit 2 ;;
        esac
        sleep 1
    done
done
