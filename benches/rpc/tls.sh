#!/usr/bin/env bash
# What TLS costs an RPC: fibrpc's echo_server (baidu_std) under
# fibrpc_press at concurrency C, over plaintext and over TLS 1.3 (rustls,
# ring), on ONE connection, the same server binary and port (it serves
# both: the first byte decides). Each run starts a fresh server, charges
# it its CPU time (--server-pid) and kills it; plaintext and TLS runs
# alternate so a neighbour's load hits both. Ends with the medians and
# the TLS/plaintext ratios of qps and server CPU per call.
#
#   benches/rpc/tls.sh [--quick]
#
#   --quick   DURATION=2, WARMUP=1, REPS=1 (unless set)
#
# Environment (defaults in parentheses):
#   C              callers (16)
#   DURATION       measured seconds per run (10)
#   WARMUP         seconds before measuring (2)
#   REPS           runs of each mode; the summary takes medians (3)
#   SIZE           request message size in bytes (64)
#   PRESS_THREADS  press tool threads (2)
#   QUIET_WAIT     seconds to wait for a quiet machine before each run (30)
#   OUT            directory for certificates, logs, results (a new one under /tmp)
#   BIN            where echo_server and fibrpc_press are (set: nothing is
#                  built; default: $target/release, built first)
# The certificates (a CA and a P-256 server certificate for 127.0.0.1)
# are made with openssl in $OUT.
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-2}" WARMUP="${WARMUP:-1}" REPS="${REPS:-1}"
fi
C="${C:-16}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REPS="${REPS:-3}"
SIZE="${SIZE:-64}"
PRESS_THREADS="${PRESS_THREADS:-2}"
QUIET_WAIT="${QUIET_WAIT:-30}"
OUT="${OUT:-$(mktemp -d /tmp/bench-tls.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
target="${CARGO_TARGET_DIR:-target}"
PORT=8000

if [[ -z "${BIN:-}" ]]; then
    BIN="$target/release"
    cargo build --release -p fibrpc --example echo_server
    cargo build --release -p fibrpc-tools --bin fibrpc_press
fi

# A CA and a server certificate for 127.0.0.1 (the press verifies it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2> "$OUT/openssl.log"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$OUT/key.pem" -out "$OUT/server.csr" 2>> "$OUT/openssl.log"
openssl x509 -req -in "$OUT/server.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -CAcreateserial -days 2 -extfile <(printf "subjectAltName=IP:127.0.0.1") \
    -out "$OUT/cert.pem" 2>> "$OUT/openssl.log"

server_cmd() {
    echo "$BIN/examples/echo_server --port $PORT --tls-cert $OUT/cert.pem --tls-key $OUT/key.pem"
}
# stop_server, wait_until_quiet, start_server_on_port

# One run in mode $1 (plain or tls), repetition $2.
run_load() {
    local mode="$1" rep="$2" tag="$1-r$2" tls_args="" result
    [[ $mode == tls ]] && tls_args="--tls-ca $OUT/ca.pem"
    wait_until_quiet
    start_server_on_port "$mode" "$OUT/$tag.server.log" || return 0
    echo "== $mode C=$C rep $rep"
    # shellcheck disable=SC2086
    "$BIN/fibrpc_press" --server "127.0.0.1:$PORT" $tls_args --concurrency "$C" \
        --duration "$DURATION" --warmup "$WARMUP" --request-size "$SIZE" \
        --threads "$PRESS_THREADS" --server-pid "$server_pid" \
        > "$OUT/$tag.press.log" 2>&1 || echo "note: press exited with $?" >&2
    grep -v '^RESULT' "$OUT/$tag.press.log" | tail -n 2 || true
    result="$(grep -m1 '^RESULT ' "$OUT/$tag.press.log" || true)"
    if [[ -n "$result" ]]; then
        echo "$mode ${result#RESULT }" >> "$results"
    else
        echo "error: no RESULT line in $OUT/$tag.press.log" >&2
    fi
    stop_server
}

echo "C=$C; ${SIZE} B; ${WARMUP}+${DURATION} s; reps: $REPS; output: $OUT"
for rep in $(seq "$REPS"); do
    for mode in plain tls; do run_load "$mode" "$rep"; done
done
echo
python3 - "$results" <<'PY'
import json, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, body = line.split(None, 1)
    runs.setdefault(mode, []).append(json.loads(body))
def med(mode, key):
    v = [r[key] for r in runs.get(mode, []) if isinstance(r.get(key), (int, float))]
    return statistics.median(v) if v else None
keys = [("qps", "qps"), ("p50_us", "p50 us"), ("p99_us", "p99 us"),
        ("server_cpu_per_100k_s", "server CPU s/100k calls"),
        ("client_cpu_per_100k_s", "client CPU s/100k calls")]
print(f"{'':26}{'plaintext':>12}{'TLS':>12}{'TLS/plain':>11}")
for key, name in keys:
    p, t = med("plain", key), med("tls", key)
    ratio = f"{t / p:.2f}" if p and t else "-"
    fmt = lambda x: "-" if x is None else f"{x:,.1f}"
    print(f"{name:26}{fmt(p):>12}{fmt(t):>12}{ratio:>11}")
PY
