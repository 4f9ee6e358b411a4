#!/usr/bin/env bash
# The press tool's own ceiling: how many calls a second fibrpc_press
# generates, and the CPU each call costs the press itself, against one
# trivial server (fibrpc's echo_server: baidu_std, gRPC and HTTP on one
# port, a 64-byte echo), next to the tool a user would pick for the same
# protocol:
#   grpc       fibrpc_press --protocol grpc (the echo benchmark's typed
#              stub), fibrpc_press --proto ... --protocol grpc (any
#              service: messages built from JSON at run time), and h2load
#              posting a prepared gRPC request body (the reference);
#   http       fibrpc_press --proto ... --protocol http (the JSON body
#              POSTed to /example.EchoService/Echo) and wrk posting the
#              same body (the reference);
#   baidu_std  fibrpc_press (echo benchmark) and fibrpc_press --proto.
#              Only bRPC's rpc_press speaks baidu_std besides; it is not
#              installed here, so these rows have no reference and show
#              what the dynamic path costs over the typed stub.
# Every press runs closed loop with C calls in flight and one thread
# (h2load -t1, wrk -t1, fibrpc_press --threads 1): a server shares the
# machine, so the press's qps says little alone; its CPU per call says
# what it could do with a core to itself, 1e6 / (CPU us per call) calls
# a second: the `ceiling` column. For each repetition, C and press: a
# fresh server, WARMUP s of load by the same press, then DURATION s
# measured, the press's user+system CPU read by getrusage of its
# process. Ends with medians over REPS and, per protocol, the ratios of
# each fibrpc_press row to the reference tool's (qps and ceiling: above
# 1 is better for fibrpc_press).
#
#   benches/rpc/press_ceiling.sh [--quick]
#
#   --quick   DURATION=2 WARMUP=1 REPS=1 CONCS="16" (unless set)
#
# Environment (defaults in parentheses):
#   CONCS       calls in flight (closed loop), each a row ("16 64")
#   PROTOCOLS   which groups to run ("grpc http baidu_std")
#   DURATION    measured seconds per run (10)
#   WARMUP      seconds of unmeasured load before each run (2)
#   REPS        runs of each cell; the table takes medians (3)
#   QUIET_WAIT  seconds to wait for a quiet machine before each run (30)
#   PORT        the echo server's port (8300)
#   OUT         directory for logs and results (a new one under /tmp)
#   PROFILE     cargo profile of the binaries (release; debug or test
#               for a quick check of the script itself)
set -euo pipefail
cd "$(dirname "$0")/../.."

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
parse_quick_flag "$@"
if [[ $quick == 1 ]]; then
    DURATION="${DURATION:-2}" WARMUP="${WARMUP:-1}" REPS="${REPS:-1}" CONCS="${CONCS:-16}"
fi
CONCS="${CONCS:-16 64}"
PROTOCOLS="${PROTOCOLS:-grpc http baidu_std}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
REPS="${REPS:-3}"
QUIET_WAIT="${QUIET_WAIT:-30}"
PORT="${PORT:-8300}"
OUT="${OUT:-$(mktemp -d /tmp/bench-press-ceiling.XXXXXX)}"
mkdir -p "$OUT"
results="$OUT/results.txt"
: > "$results"
PROFILE="${PROFILE:-release}"
case "$PROFILE" in
    release) cargo_profile=release dir=release ;;
    test) cargo_profile=test dir=debug ;;
    *) cargo_profile=dev dir=debug ;;
esac
bin="${CARGO_TARGET_DIR:-target}/$dir"

for tool in h2load wrk; do
    command -v "$tool" > /dev/null || {
        echo "error: $tool is missing (apt-get install nghttp2-client wrk)" >&2
        exit 1
    }
done
cargo build --profile "$cargo_profile" -p fibrpc --example echo_server
cargo build --profile "$cargo_profile" -p fibrpc-tools --bin fibrpc_press

server_cmd() { echo "$bin/examples/echo_server --port $PORT"; }
# stop_server, wait_until_quiet, start_server_on_port

# The request, EchoRequest{message: 62 x "x"} (64 bytes of protobuf), as
# each press sends it: JSON for fibrpc_press --proto and wrk, the
# length-prefixed protobuf for h2load.
message="$(printf 'x%.0s' $(seq 62))"
json="$OUT/request.json"
echo "{\"message\":\"$message\"}" > "$json"
grpc_body="$OUT/echo64.grpc"
python3 - "$grpc_body" <<'PY'
import sys
msg = b"\x0a\x3e" + b"x" * 62
open(sys.argv[1], "wb").write(b"\0" + len(msg).to_bytes(4, "big") + msg)
PY
wrk_script="$OUT/post.lua"
cat > "$wrk_script" <<LUA
wrk.method = "POST"
wrk.path = "/example.EchoService/Echo"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message":"$message"}'
LUA
proto="tools/tests/data/press_echo.proto"

# The presses of a protocol; the first is the reference (when it is not
# fibrpc_press).
presses() {
    case "$1" in
        grpc) echo "h2load fibrpc_press_echo_grpc fibrpc_press_proto_grpc" ;;
        http) echo "wrk fibrpc_press_proto_http" ;;
        baidu_std) echo "fibrpc_press_echo_baidu_std fibrpc_press_proto_baidu_std" ;;
    esac
}

# The command of press $1 at concurrency $2 for $3 seconds, one word a
# line.
press_cmd() {
    local p="$1" c="$2" secs="$3" server="127.0.0.1:$PORT"
    local dyn=("$bin/fibrpc_press" --server "$server" --proto "$proto"
        --method example.EchoService/Echo --input "$json" --concurrency "$c"
        --duration "$secs" --warmup 0 --threads 1)
    local echo=("$bin/fibrpc_press" --server "$server" --concurrency "$c"
        --duration "$secs" --warmup 0 --threads 1 --request-size 62)
    local cmd
    case "$p" in
        h2load) cmd=(h2load -t 1 -c 1 -m "$c" -D "$secs" -d "$grpc_body"
            -H 'content-type: application/grpc' -H 'te: trailers'
            "http://$server/example.EchoService/Echo") ;;
        wrk) cmd=(wrk -t 1 -c "$c" -d "${secs}s" -s "$wrk_script" "http://$server") ;;
        fibrpc_press_echo_grpc) cmd=("${echo[@]}" --protocol grpc) ;;
        fibrpc_press_echo_baidu_std) cmd=("${echo[@]}") ;;
        fibrpc_press_proto_grpc) cmd=("${dyn[@]}" --protocol grpc) ;;
        fibrpc_press_proto_http) cmd=("${dyn[@]}" --protocol http) ;;
        fibrpc_press_proto_baidu_std) cmd=("${dyn[@]}" --protocol baidu_std) ;;
    esac
    printf '%s\n' "${cmd[@]}"
}

# Runs the command whose words follow $1 with its output in $1, and
# writes its user+system CPU seconds to "$1.cpu".
measured() {
    local log="$1"
    shift
    python3 -c '
import resource, subprocess, sys
r = subprocess.run(sys.argv[2:])
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{u.ru_utime + u.ru_stime}\n")
sys.exit(r.returncode)' "$log.cpu" "$@" > "$log" 2>&1
}

run_one() { # protocol, press, concurrency, rep
    local proto_name="$1" p="$2" c="$3" rep="$4" tag="$2-c$3-r$4"
    wait_until_quiet
    start_server_on_port echo "$OUT/$tag.server.log" || return 0
    local cmd
    mapfile -t cmd < <(press_cmd "$p" "$c" "$WARMUP")
    measured "$OUT/$tag.warmup.log" "${cmd[@]}" || echo "note: $p warm-up exited with $?" >&2
    mapfile -t cmd < <(press_cmd "$p" "$c" "$DURATION")
    measured "$OUT/$tag.log" "${cmd[@]}" || echo "note: $p exited with $?" >&2
    stop_server
    python3 - "$proto_name" "$p" "$c" "$rep" "$OUT/$tag.log" >> "$results" <<'PY' || true
import json, re, sys
proto, press, c, rep, log = sys.argv[1:]
text = open(log).read()
cpu_s = float(open(log + ".cpu").read())
def fail(why):
    sys.exit(f"{press} c={c}: {why}; see {log}")
if press == "h2load":
    ok = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", text)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    if not (ok and rps):
        fail("no h2load result")
    calls, qps, errors = int(ok.group(1)), float(rps.group(1)), int(ok.group(2)) + int(ok.group(3))
elif press == "wrk":
    n = re.search(r"(\d+) requests in", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if not (n and rps):
        fail("no wrk result")
    calls, qps, errors = int(n.group(1)), float(rps.group(1)), int(bad.group(1)) if bad else 0
elif "_echo_" in press:
    line = next((l for l in text.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        fail("no RESULT line")
    r = json.loads(line[len("RESULT "):])
    calls, qps, errors = int(r["calls"]), float(r["qps"]), int(r["errors"])
else:
    line = next((l for l in text.splitlines() if l.startswith("{")), None)
    if line is None:
        fail("no JSON summary")
    r = json.loads(line)
    calls, qps, errors = int(r["count"]), float(r["qps"]), int(r["errors"])
cpu_us = cpu_s * 1e6 / max(calls, 1)
print(f"{proto} {press} {c} {rep} {qps:.0f} {cpu_us:.2f} {errors}")
PY
    tail -n 1 "$results"
}

echo "protocols: $PROTOCOLS; C: $CONCS; ${WARMUP}+${DURATION} s; reps: $REPS; output: $OUT"
echo "(columns: protocol press concurrency rep qps press_cpu_us_per_call errors)"
for rep in $(seq "$REPS"); do
    for c in $CONCS; do
        for proto_name in $PROTOCOLS; do
            for p in $(presses "$proto_name"); do run_one "$proto_name" "$p" "$c" "$rep"; done
        done
    done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {}
order = []
for proto, press, c, rep, qps, cpu, errors in rows:
    key = (proto, press, int(c))
    if key not in by:
        order.append(key)
    by.setdefault(key, []).append((float(qps), float(cpu), int(errors)))
print(f"{'protocol':<10} {'press':<30} {'C':>4} {'qps':>9} {'cpu us/call':>12} "
      f"{'ceiling/s':>10} {'errors':>7}  ratios vs reference")
ref = {}
for proto, press, c in order:
    runs = by[(proto, press, c)]
    qps = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    ceiling = 1e6 / cpu if cpu > 0 else float("inf")
    errors = sum(r[2] for r in runs)
    note = ""
    if not press.startswith("fibrpc_press"):
        ref[(proto, c)] = (press, qps, ceiling)
    elif (proto, c) in ref:
        name, rq, rc = ref[(proto, c)]
        note = f"qps {qps / rq:.2f}x, ceiling {ceiling / rc:.2f}x {name}"
    print(f"{proto:<10} {press:<30} {c:>4} {qps:>9.0f} {cpu:>12.2f} {ceiling:>10.0f} "
          f"{errors:>7}  {note}")
PY
