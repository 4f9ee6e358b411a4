# Shell helpers shared by the side-by-side benchmark scripts
# (benches/net/run.sh, benches/rpc/run.sh). Source it; it defines:
#   stop_server       kill the server started last ($server_pid), politely
#                     first; also run on exit
#   busy_ticks        busy clock ticks of all CPUs since boot
#   wait_until_quiet  wait (QUIET_WAIT s at most) for a quiet machine
#   cmd_port CMD      the --port value of a server command
#   port_open PORT    whether 127.0.0.1:PORT accepts connections
#   start_server_on_port NAME LOG
#                     start `server_cmd NAME` (the sourcing script defines
#                     server_cmd), wait until its --port accepts
#   parse_quick_flag ARGS
#                     the scripts' one flag: --quick sets quick=1, -h/--help
#                     prints the script's header comment; anything else
#                     exits 2

server_pid=""
stop_server() {
    [[ -n "$server_pid" ]] || return 0
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
trap stop_server EXIT

# The first line of /proc/stat without idle and iowait.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# These machines are shared: waits (QUIET_WAIT seconds at most) until less
# than 0.2 cores were busy over one second, so a neighbour's build does not
# land in the middle of a run. The load tools report the load that was
# there anyway.
wait_until_quiet() {
    local hz waited=0 before after
    hz="$(getconf CLK_TCK)"
    while (( waited < QUIET_WAIT )); do
        before="$(busy_ticks)"
        sleep 1
        after="$(busy_ticks)"
        (( (after - before) * 5 < hz )) && return 0
        waited=$((waited + 1))
    done
    (( QUIET_WAIT == 0 )) || echo "note: machine still busy after ${QUIET_WAIT} s; running anyway" >&2
}

cmd_port() { sed -n 's/.*--port[ =]\([0-9]*\).*/\1/p' <<< "$1"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Starts server $1 (the command `server_cmd $1` prints) with its output in
# $2 and waits (10 s at most) until its --port accepts connections; returns
# 1 if it never does.
start_server_on_port() {
    local cmd port
    cmd="$(server_cmd "$1")"
    port="$(cmd_port "$cmd")"
    if port_open "$port"; then
        echo "error: something already listens on port $port; not starting $1" >&2
        return 1
    fi
    # shellcheck disable=SC2086 # the command is split into words on purpose
    $cmd > "$2" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port_open "$port" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "error: $1 never accepted connections on port $port; its log:" >&2
    cat "$2" >&2
    stop_server
    return 1
}

parse_quick_flag() {
    quick=0
    for arg in "$@"; do
        case "$arg" in
            --quick) quick=1 ;;
            -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
        esac
    done
}
