#!/usr/bin/env bash
# Where a server's CPU goes under load, per request: user and system time
# (utime and stime of /proc/PID/stat), and per thread its share of a core
# and its voluntary and involuntary context switches a second (the load
# generator's threads too). Numbers a VM without hardware counters can
# still give, to tell "more instructions" from "more kernel work" from
# "more sleeping and waking".
#
#   benches/cpu_split.sh http PORT SERVER_CMD...   # wrk -t2 -c50 on /hello
#   benches/cpu_split.sh echo PORT SERVER_CMD...   # fibrpc-echo-bench
#
# The server command must listen on PORT. The load runs 10 s; the figures
# cover 6 s of its middle. Environment: CONNS (50 for http, 10000 for
# echo), THREADS (generator threads, 2), BENCH (the echo generator,
# target/release/fibrpc-echo-bench).
set -euo pipefail
kind="${1:?usage: benches/cpu_split.sh http|echo PORT SERVER_CMD...}"
port="${2:?PORT}"
shift 2
threads="${THREADS:-2}"
# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"

"$@" > /dev/null 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    port_open "$port" && break
    sleep 0.1
done
out=$(mktemp)
case "$kind" in
    http)
        wrk -t"$threads" -c"${CONNS:-50}" -d10s "http://127.0.0.1:$port/hello" > "$out" &
        ;;
    echo)
        "${BENCH:-target/release/fibrpc-echo-bench}" --addr "127.0.0.1:$port" \
            -c "${CONNS:-10000}" -d 8 --warmup 2 --threads "$threads" > "$out" 2>&1 &
        ;;
    *) echo "unknown load: $kind" >&2; exit 2 ;;
esac
load=$!
sleep 3

# One line per thread of a process: tid name ticks voluntary involuntary.
threads_of() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s %s %s\n' "$(basename "$t")" "$(tr ' ' _ < "$t/comm")" \
            "$(awk '{print $14 + $15}' "$t/stat")" \
            "$(awk '/^voluntary/ {v = $2} /^nonvoluntary/ {n = $2} END {print v, n}' "$t/status")"
    done
}
read -r u1 s1 < <(awk '{print $14, $15}' /proc/"$server_pid"/stat)
before=$( (threads_of "$server_pid"; threads_of "$load") 2> /dev/null)
sleep 6
read -r u2 s2 < <(awk '{print $14, $15}' /proc/"$server_pid"/stat)
after=$( (threads_of "$server_pid"; threads_of "$load") 2> /dev/null)
wait "$load"

case "$kind" in
    http) rps=$(awk '/Requests\/sec/ {print $2}' "$out") ;;
    echo) rps=$(grep -o '"rps":[0-9.]*' "$out" | cut -d: -f2) ;;
esac
rm -f "$out"
python3 - "$rps" "$u1" "$s1" "$u2" "$s2" "$(getconf CLK_TCK)" "$before" "$after" <<'PY'
import sys
rps, u1, s1, u2, s2, hz = (float(x) for x in sys.argv[1:7])
n = rps * 6
print(f"{rps:,.0f} req/s; server per request: user {(u2 - u1) / hz * 1e6 / n:.2f} us, "
      f"system {(s2 - s1) / hz * 1e6 / n:.2f} us")
old = {l.split()[0]: l.split() for l in sys.argv[7].splitlines()}
for line in sys.argv[8].splitlines():
    t = line.split()
    o = old.get(t[0])
    if not o:
        continue
    cpu = (int(t[2]) - int(o[2])) / hz / 6
    if cpu >= 0.01:
        print(f"  {t[1]:16s} {cpu * 100:5.1f} % of a core, voluntary switches "
              f"{(int(t[3]) - int(o[3])) / 6:7.0f}/s, involuntary {(int(t[4]) - int(o[4])) / 6:7.0f}/s")
PY
