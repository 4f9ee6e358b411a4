#!/usr/bin/env bash
# What TLS costs an RPC, and how fibrpc's TLS compares with tonic's.
# Modes, each a fresh server charged its CPU time (--server-pid), run in
# turn so a neighbour's load hits all of them alike:
#   plain        fibrpc echo_server (baidu_std) under fibrpc_press, C
#                callers on ONE plaintext connection;
#   tls          the same over TLS 1.3 (rustls, ring) on the same server
#                binary and port (it serves both: the first byte decides);
#   tonic-tls    tonic_echo_server over TLS (tonic's rustls, ring, ALPN h2)
#                under tonic_press, C callers on ONE connection;
#   tls-short    fibrpc, a new TLS connection per call
#                (fibrpc_press --connection-type short): handshakes/s;
#   tonic-tls-short  tonic, a new TLS connection per call (tonic_press
#                --short): TCP + TLS + HTTP/2 handshakes per call.
# Ends with the medians per mode and the ratios tls/plain, tls/tonic-tls
# and tls-short/tonic-tls-short of qps and of server CPU per call.
#
#   benches/rpc/tls.sh [--quick]
#
#   --quick   DURATION=2, WARMUP=1, REPS=1 (unless set)
#
# Environment (defaults in parentheses):
#   MODES          the modes to run ("plain tls tonic-tls tls-short tonic-tls-short")
#   C              callers (16)
#   DURATION       measured seconds per run (10)
#   WARMUP         seconds before measuring (2)
#   REPS           runs of each mode; the summary takes medians (3)
#   SIZE           request message size in bytes (64)
#   PRESS_THREADS  press tool threads (2)
#   WORKERS        tonic_echo_server's tokio threads (2; fibrpc's workers
#                  are one per core, 2 on the benchmark machines)
#   QUIET_WAIT     seconds to wait for a quiet machine before each run (30)
#   OUT            directory for certificates, logs, results (a new one under /tmp)
#   BIN            where echo_server, fibrpc_press, tonic_echo_server and
#                  tonic_press are (set: nothing is built; default:
#                  $target/release, built first)
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
MODES="${MODES:-plain tls tonic-tls tls-short tonic-tls-short}"
WORKERS="${WORKERS:-2}"
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
    cargo build --release -p fibrpc-bench-rpc --bin tonic_echo_server --bin tonic_press
fi

# A CA and a server certificate for 127.0.0.1 (the press verifies it).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$OUT/ca.key" -out "$OUT/ca.pem" 2> "$OUT/openssl.log"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$OUT/key.pem" -out "$OUT/server.csr" 2>> "$OUT/openssl.log"
openssl x509 -req -in "$OUT/server.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -CAcreateserial -days 2 -extfile <(printf "subjectAltName=IP:127.0.0.1") \
    -out "$OUT/cert.pem" 2>> "$OUT/openssl.log"

# The server of mode $1: fibrpc's serves plaintext and TLS on one port,
# tonic's TLS only.
server_cmd() {
    local tls="--tls-cert $OUT/cert.pem --tls-key $OUT/key.pem"
    case "$1" in
        tonic*) echo "$BIN/tonic_echo_server --port $PORT --threads $WORKERS $tls" ;;
        *) echo "$BIN/examples/echo_server --port $PORT $tls" ;;
    esac
}
# stop_server, wait_until_quiet, start_server_on_port

# The press of mode $1.
press_cmd() {
    local common="--server 127.0.0.1:$PORT --concurrency $C --duration $DURATION \
--warmup $WARMUP --request-size $SIZE --threads $PRESS_THREADS"
    case "$1" in
        plain) echo "$BIN/fibrpc_press $common" ;;
        tls) echo "$BIN/fibrpc_press $common --tls-ca $OUT/ca.pem" ;;
        tls-short) echo "$BIN/fibrpc_press $common --tls-ca $OUT/ca.pem --connection-type short" ;;
        tonic-tls) echo "$BIN/tonic_press $common --tls-ca $OUT/ca.pem" ;;
        tonic-tls-short) echo "$BIN/tonic_press $common --tls-ca $OUT/ca.pem --short" ;;
        *) echo "error: unknown mode $1" >&2; exit 2 ;;
    esac
}

# One run in mode $1, repetition $2.
run_load() {
    local mode="$1" rep="$2" tag="$1-r$2" result
    wait_until_quiet
    start_server_on_port "$mode" "$OUT/$tag.server.log" || return 0
    echo "== $mode C=$C rep $rep"
    # shellcheck disable=SC2046
    $(press_cmd "$mode") --server-pid "$server_pid" \
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
    for mode in $MODES; do run_load "$mode" "$rep"; done
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
        ("server_cpu_per_100k_s", "server CPU s/100k calls")]
modes = [m for m in ["plain", "tls", "tonic-tls", "tls-short", "tonic-tls-short"] if m in runs]
fmt = lambda x: "-" if x is None else f"{x:,.1f}"
print(f"{'':26}" + "".join(f"{m:>17}" for m in modes))
for key, name in keys:
    print(f"{name:26}" + "".join(f"{fmt(med(m, key)):>17}" for m in modes))
print()
for a, b in [("tls", "plain"), ("tls", "tonic-tls"), ("tls-short", "tonic-tls-short")]:
    for key, name in [("qps", "qps"), ("server_cpu_per_100k_s", "server CPU per call")]:
        x, y = med(a, key), med(b, key)
        if x and y:
            print(f"{a}/{b} {name}: {x / y:.2f}")
PY
