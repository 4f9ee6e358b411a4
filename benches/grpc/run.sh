#!/usr/bin/env bash
# Side-by-side gRPC benchmark: fibrpc's gRPC server (the echo_server
# example, whose example.EchoService answers gRPC on the same port as
# baidu_std) vs tonic's (benches/rpc's tonic_echo_server, tokio with
# WORKERS threads), unary Echo with a 64-byte message, both loaded by the
# same client: h2load posting a prepared gRPC request body (5-byte
# length prefix + the protobuf) with `-c CONNS -m STREAMS` for each
# pair of CONNS_LIST x STREAMS_LIST. For each repetition, pair and
# server: the server starts fresh, h2load warms it up for WARMUP s, then
# measures for DURATION s while the server's CPU time is read from
# /proc. Ends with medians over REPS and the ratios fibrpc/tonic of qps
# and of server CPU per call.
#
# Then the client side (PARTS has "clients", or "client"): fibrpc's gRPC
# client (benches/rpc's fibrpc_grpc_press, GrpcChannel) vs tonic's
# (tonic_press), both closed-loop with CLIENT_CONCURRENCY callers on one
# connection against the same tonic server, WORKERS threads each; medians
# of qps and of the client's CPU per call, and their ratios fibrpc/tonic.
# Then both clients' streaming throughput against that server: one
# bidirectional stream (BidiThroughput) of STREAM_SIZES-byte chunks,
# fibrpc_grpc_stream_press (GrpcChannel's BidiCall) vs grpc_stream_press
# (tonic); medians of MB/s and of the client's CPU seconds per GB.
#
# Then streaming throughput (PARTS has "streaming"): one bidirectional
# stream (example.EchoService/BidiThroughput, every chunk echoed back)
# carrying STREAM_SIZES-byte chunks, driven by the same tonic client
# (benches/rpc's grpc_stream_press) against fibrpc's server
# (fibrpc_grpc_server, the same proto through fibrpc-build) and tonic's;
# medians over REPS of MB/s (echoed payload received, 10^6 B/s), msgs/s
# and the server's CPU seconds per GB, and the ratios fibrpc/tonic.
#
#   benches/grpc/run.sh [--quick]
#
#   --quick   DURATION=3 REPS=1 WARMUP=1 (unless set)
#
# Environment (defaults in parentheses):
#   CONNS_LIST    h2load connections (-c) to try ("1 4")
#   STREAMS_LIST  concurrent streams per connection (-m) ("16 64")
#   DURATION      measured seconds per run (10)
#   REPS          measured runs per server and pair (3)
#   WARMUP        seconds of load before each measured run (2)
#   WORKERS       tonic's tokio threads (2; fibrpc's workers are one
#                 per core, 2 on the benchmark machines)
#   QUIET_WAIT    seconds to wait for a quiet machine before each run (30)
#   OUT           directory for logs and results (a new one under /tmp)
#   PARTS         which comparisons to run ("servers clients streaming")
#   CLIENT_CONCURRENCY_LIST  callers of the client comparison ("16 64")
#   STREAM_SIZES  chunk sizes of the streaming comparison ("1024 65536")
#   BIN_DIR       the release binaries ($CARGO_TARGET_DIR/release, built
#                 first); when set, nothing is built and the binaries are
#                 taken from there (examples/echo_server, tonic_echo_server,
#                 ...: a copy of the release directory's layout)
#   FIBRPC_SERVER_CMD  ($BIN_DIR/examples/echo_server --port 8200)
#   TONIC_SERVER_CMD   ($BIN_DIR/tonic_echo_server --port 8201 --threads WORKERS)
#   FIBRPC_STREAM_SERVER_CMD ($BIN_DIR/fibrpc_grpc_server --port 8202 --threads WORKERS)
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-3}" REPS="${REPS:-1}" WARMUP="${WARMUP:-1}"
fi
CONNS_LIST="${CONNS_LIST:-1 4}"
STREAMS_LIST="${STREAMS_LIST:-16 64}"
DURATION="${DURATION:-10}"
REPS="${REPS:-3}"
WARMUP="${WARMUP:-2}"
WORKERS="${WORKERS:-2}"
QUIET_WAIT="${QUIET_WAIT:-30}"
OUT="${OUT:-$(mktemp -d /tmp/bench-grpc.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
target="${CARGO_TARGET_DIR:-target}"
build=1
[[ -n "${BIN_DIR:-}" ]] && build=0
bin="${BIN_DIR:-$target/release}"
FIBRPC_SERVER_CMD="${FIBRPC_SERVER_CMD:-$bin/examples/echo_server --port 8200}"
TONIC_SERVER_CMD="${TONIC_SERVER_CMD:-$bin/tonic_echo_server --port 8201 --threads $WORKERS}"
SERVERS="fibrpc tonic"
PARTS="${PARTS:-servers clients streaming}"
CLIENT_CONCURRENCY_LIST="${CLIENT_CONCURRENCY_LIST:-16 64}"
STREAM_SIZES="${STREAM_SIZES:-1024 65536}"
FIBRPC_STREAM_SERVER_CMD="${FIBRPC_STREAM_SERVER_CMD:-$bin/fibrpc_grpc_server --port 8202 --threads $WORKERS}"

command -v h2load > /dev/null || {
    echo "error: h2load is missing (apt-get install nghttp2-client)" >&2
    exit 1
}
if [[ $build == 1 ]]; then
    cargo build --release -p fibrpc --example echo_server
    cargo build --release -p fibrpc-bench-rpc --bin tonic_echo_server --bin tonic_press \
        --bin fibrpc_grpc_press --bin fibrpc_grpc_server --bin grpc_stream_press \
        --bin fibrpc_grpc_stream_press
fi

server_cmd() {
    case "$1" in
        fibrpc) echo "$FIBRPC_SERVER_CMD" ;;
        tonic) echo "$TONIC_SERVER_CMD" ;;
        fibrpc-stream) echo "$FIBRPC_STREAM_SERVER_CMD" ;;
    esac
}
# stop_server, wait_until_quiet, cmd_port, start_server_on_port

# The request: EchoRequest{message: 62 x "x"} is 64 bytes of protobuf
# (tag, length, text), behind gRPC's 5-byte prefix (uncompressed, 64).
body="$OUT/echo64.grpc"
python3 - "$body" <<'PY'
import sys
msg = b"\x0a\x3e" + b"x" * 62
assert len(msg) == 64
open(sys.argv[1], "wb").write(b"\0" + len(msg).to_bytes(4, "big") + msg)
PY
url_of() { echo "http://127.0.0.1:$(cmd_port "$(server_cmd "$1")")/example.EchoService/Echo"; }
load() { # url, conns, streams, seconds
    h2load -D "$4" -c "$2" -m "$3" -d "$body" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$1"
}
# Busy clock ticks of process $1 (user + system).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# A call must answer grpc-status 0: h2load only sees HTTP 200.
check_grpc() { # server
    local out
    out="$(curl -sS --http2-prior-knowledge -o /dev/null -v --data-binary @"$body" \
        -H 'content-type: application/grpc' -H 'te: trailers' "$(url_of "$1")" 2>&1)"
    grep -qi 'grpc-status: 0' <<< "$out" || {
        echo "error: $1 did not answer grpc-status 0:" >&2
        echo "$out" >&2
        return 1
    }
}

run_one() { # server, conns, streams, rep
    local server="$1" c="$2" m="$3" rep="$4" tag="$1-c$2-m$3-r$4" url before after hz
    url="$(url_of "$server")"
    wait_until_quiet
    start_server_on_port "$server" "$OUT/$tag.server.log" || return 0
    check_grpc "$server" || { stop_server; return 0; }
    load "$url" "$c" "$m" "$WARMUP" > "$OUT/$tag.warmup.log" 2>&1 || true
    before="$(cpu_ticks "$server_pid")"
    load "$url" "$c" "$m" "$DURATION" > "$OUT/$tag.h2load.log" 2>&1 || true
    after="$(cpu_ticks "$server_pid")"
    stop_server
    hz="$(getconf CLK_TCK)"
    python3 - "$server" "$c" "$m" "$rep" "$((after - before))" "$hz" "$OUT/$tag.h2load.log" \
        >> "$results" <<'PY'
import re, sys
server, c, m, rep, ticks, hz, log = sys.argv[1:]
text = open(log).read()
ok = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", text)
rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", text)
if not (ok and rps and mean):
    sys.exit(f"no result in {log}")
calls = int(ok.group(1))
unit = {"us": 1.0, "ms": 1000.0, "s": 1e6}
m_val = re.match(r"([\d.]+)(us|ms|s)", mean.group(1))
mean_us = float(m_val.group(1)) * unit[m_val.group(2)]
cpu_us = int(ticks) * 1e6 / int(hz) / max(calls, 1)
print(f"{server} {c} {m} {rep} {float(rps.group(1)):.0f} {mean_us:.1f} {cpu_us:.2f} "
      f"{int(ok.group(2)) + int(ok.group(3))}")
PY
    tail -n 1 "$results"
}

if [[ " $PARTS " == *" servers "* ]]; then
echo "servers: $SERVERS; c in {$CONNS_LIST}, m in {$STREAMS_LIST}; ${WARMUP}+${DURATION} s; reps: $REPS; output: $OUT"
echo "(columns: server conns streams rep qps mean_latency_us server_cpu_us_per_call failed)"
for rep in $(seq "$REPS"); do
    for c in $CONNS_LIST; do
        for m in $STREAMS_LIST; do
            for server in $SERVERS; do run_one "$server" "$c" "$m" "$rep"; done
        done
    done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
for s, c, m, rep, qps, lat, cpu, failed in rows:
    by.setdefault((int(c), int(m), s), []).append((float(qps), float(lat), float(cpu), int(failed)))
print(f"{'c':>3} {'m':>4} {'server':<7} {'qps':>10} {'mean us':>9} {'cpu us/call':>12} {'failed':>7}")
for (c, m) in sorted({(k[0], k[1]) for k in by}):
    med = {}
    for s in ("fibrpc", "tonic"):
        runs = by.get((c, m, s))
        if not runs:
            continue
        med[s] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
        print(f"{c:>3} {m:>4} {s:<7} {med[s][0]:>10.0f} {med[s][1]:>9.1f} {med[s][2]:>12.2f} "
              f"{sum(r[3] for r in runs):>7}")
    if len(med) == 2:
        print(f"{c:>3} {m:>4} {'ratio':<7} {med['fibrpc'][0] / med['tonic'][0]:>10.2f} "
              f"{med['fibrpc'][1] / med['tonic'][1]:>9.2f} {med['fibrpc'][2] / med['tonic'][2]:>12.2f}"
              "   (fibrpc/tonic)")
PY
fi

# Medians per key (concurrency, chunk size) of a results file's fibrpc
# and tonic rows (WHO KEY REP V1 V2 V3 ERRORS), and their ratios. KEY_LABEL
# and WHO_LABEL head the first two columns; each column after is
# NAME:WIDTH:DECIMALS.
median_summary() { # results file, key label, who label, three columns
    python3 - "$@" <<'PY'
import statistics, sys
results, key_label, who_label, *cols = sys.argv[1:]
cols = [(n, int(w), int(d)) for n, w, d in (c.rsplit(":", 2) for c in cols)]
rows = [l.split() for l in open(results) if l.strip()]
by = {}
for who, key, rep, *vals, errors in rows:
    by.setdefault((int(key), who), []).append(([float(v) for v in vals], int(errors)))
print(f"{key_label:>6} {who_label:<7} " + " ".join(f"{n:>{w}}" for n, w, _ in cols)
      + f" {'errors':>7}")
for key in sorted({k[0] for k in by}):
    med = {}
    for s in ("fibrpc", "tonic"):
        runs = by.get((key, s))
        if not runs:
            continue
        med[s] = [statistics.median(r[0][i] for r in runs) for i in range(len(cols))]
        print(f"{key:>6} {s:<7} " + " ".join(f"{v:>{w}.{d}f}" for v, (_, w, d) in zip(med[s], cols))
              + f" {sum(r[1] for r in runs):>7}")
    if len(med) == 2 and all(v > 0 for v in med["tonic"]):
        print(f"{key:>6} {'ratio':<7} "
              + " ".join(f"{a / b:>{w}.2f}" for a, b, (_, w, _) in zip(med["fibrpc"], med["tonic"], cols))
              + "   (fibrpc/tonic)")
PY
}

# The client side: both clients against one tonic server.
client_cmd() { # client, concurrency, port, server pid
    case "$1" in
        fibrpc) echo "$bin/fibrpc_grpc_press" ;;
        tonic) echo "$bin/tonic_press" ;;
    esac
}
client_results="$OUT/client_results.txt"
: > "$client_results"
run_client() { # client, concurrency, rep
    local client="$1" c="$2" rep="$3" tag="client-$1-c$2-r$3" port
    port="$(cmd_port "$TONIC_SERVER_CMD")"
    wait_until_quiet
    start_server_on_port tonic "$OUT/$tag.server.log" || return 0
    "$(client_cmd "$client")" --server "127.0.0.1:$port" --concurrency "$c" \
        --duration "$DURATION" --warmup "$WARMUP" --request-size 64 --threads "$WORKERS" \
        --server-pid "$server_pid" > "$OUT/$tag.log" 2>&1 || true
    stop_server
    python3 - "$client" "$c" "$rep" "$OUT/$tag.log" >> "$client_results" <<'PY'
import json, sys
client, c, rep, log = sys.argv[1:]
line = next((l for l in open(log) if l.startswith("RESULT ")), None)
if line is None:
    sys.exit(f"no RESULT in {log}")
r = json.loads(line[len("RESULT "):])
calls = max(int(r["calls"]), 1)
# tonic_press reports the client's CPU seconds, fibrpc's press per 100k calls.
cpu_us = r["client_cpu_s"] * 1e6 / calls if "client_cpu_s" in r else r["client_cpu_per_100k_s"] * 10
print(f"{client} {c} {rep} {r['qps']:.0f} {r['p50_us']} {cpu_us:.2f} {r['errors']}")
PY
    tail -n 1 "$client_results"
}
client_part=0
[[ " $PARTS " == *" clients "* || " $PARTS " == *" client "* ]] && client_part=1
if [[ $client_part == 1 ]]; then
    echo
    echo "clients: fibrpc tonic against tonic's server; c in {$CLIENT_CONCURRENCY_LIST}; reps: $REPS"
    echo "(columns: client concurrency rep qps p50_us client_cpu_us_per_call errors)"
    for rep in $(seq "$REPS"); do
        for c in $CLIENT_CONCURRENCY_LIST; do
            for client in fibrpc tonic; do run_client "$client" "$c" "$rep"; done
        done
    done
    echo
    median_summary "$client_results" c client qps:10:0 "p50 us:8:1" "cpu us/call:12:2"
fi

# One streaming run's line for a results file: WHO SIZE REP MB/s msgs/s
# CPU-seconds-per-GB errors, from the press log's RESULT (CPU_FIELD: whose
# CPU, client_cpu_s or server_cpu_s).
stream_row() { # who, chunk size, rep, log, cpu field
    python3 - "$@" <<'PY'
import json, sys
who, size, rep, log, cpu_field = sys.argv[1:]
line = next((l for l in open(log) if l.startswith("RESULT ")), None)
if line is None:
    sys.exit(f"no RESULT in {log}")
r = json.loads(line[len("RESULT "):])
gb = max(r["bytes"], 1) / 1e9
print(f"{who} {size} {rep} {r['mb_per_s']:.1f} {r['msgs_per_s']:.0f} "
      f"{r.get(cpu_field, 0) / gb:.3f} {r['errors']}")
PY
}

# Streaming throughput of the two clients: one bidirectional stream
# against the same tonic server.
client_stream_results="$OUT/client_stream_results.txt"
: > "$client_stream_results"
stream_client_cmd() { # client
    case "$1" in
        fibrpc) echo "$bin/fibrpc_grpc_stream_press" ;;
        tonic) echo "$bin/grpc_stream_press" ;;
    esac
}
run_client_stream() { # client, chunk size, rep
    local client="$1" size="$2" rep="$3" tag="client-stream-$1-b$2-r$3" port
    port="$(cmd_port "$TONIC_SERVER_CMD")"
    wait_until_quiet
    start_server_on_port tonic "$OUT/$tag.server.log" || return 0
    "$(stream_client_cmd "$client")" --server "127.0.0.1:$port" --message-size "$size" \
        --duration "$DURATION" --warmup "$WARMUP" --threads "$WORKERS" \
        --server-pid "$server_pid" > "$OUT/$tag.log" 2>&1 || true
    stop_server
    stream_row "$client" "$size" "$rep" "$OUT/$tag.log" client_cpu_s >> "$client_stream_results"
    tail -n 1 "$client_stream_results"
}
if [[ $client_part == 1 ]]; then
    echo
    echo "client streaming: fibrpc tonic against tonic's server, one bidirectional stream, chunks of {$STREAM_SIZES} B; reps: $REPS"
    echo "(columns: client chunk_bytes rep MB/s msgs/s client_cpu_s_per_GB errors)"
    for rep in $(seq "$REPS"); do
        for size in $STREAM_SIZES; do
            for client in fibrpc tonic; do run_client_stream "$client" "$size" "$rep"; done
        done
    done
    echo
    median_summary "$client_stream_results" chunk client MB/s:9:1 msgs/s:10:0 "cpu s/GB:9:3"
fi

# Streaming throughput: the same tonic client, one bidirectional stream,
# against each server.
stream_results="$OUT/stream_results.txt"
: > "$stream_results"
run_stream() { # server (fibrpc|tonic), chunk size, rep
    local server="$1" size="$2" rep="$3" tag="stream-$1-b$2-r$3" name port
    name="$server"
    [[ $server == fibrpc ]] && name=fibrpc-stream
    port="$(cmd_port "$(server_cmd "$name")")"
    wait_until_quiet
    start_server_on_port "$name" "$OUT/$tag.server.log" || return 0
    "$bin/grpc_stream_press" --server "127.0.0.1:$port" --message-size "$size" \
        --duration "$DURATION" --warmup "$WARMUP" --threads "$WORKERS" \
        --server-pid "$server_pid" > "$OUT/$tag.log" 2>&1 || true
    stop_server
    stream_row "$server" "$size" "$rep" "$OUT/$tag.log" server_cpu_s >> "$stream_results"
    tail -n 1 "$stream_results"
}
if [[ " $PARTS " == *" streaming "* ]]; then
    echo
    echo "streaming: one bidirectional stream, chunks of {$STREAM_SIZES} B; ${WARMUP}+${DURATION} s; reps: $REPS"
    echo "(columns: server chunk_bytes rep MB/s msgs/s server_cpu_s_per_GB errors)"
    for rep in $(seq "$REPS"); do
        for size in $STREAM_SIZES; do
            for server in fibrpc tonic; do run_stream "$server" "$size" "$rep"; done
        done
    done
    echo
    median_summary "$stream_results" chunk server MB/s:9:1 msgs/s:10:0 "cpu s/GB:9:3"
fi
