#!/usr/bin/env bash
# The builtin console (HTTP pages on the RPC port) checked with real clients
# nobody here wrote: curl for every page (text and HTML), wrk against the
# HTTP hello handler, promtool (when it can be had) and a strict parser for
# /metrics, and headless Chromium drawing a /vars chart, screenshotted and
# checked to show the chart.
#
# Usage: bash scripts/console_check.sh
# Env:   CARGO_TARGET_DIR (default target/), CONSOLE_CHECK_NO_INSTALL=1 to never
#        call apt-get, CONSOLE_CHECK_PROMTOOL=0 to skip fetching promtool.
# Output: $CARGO_TARGET_DIR/console/ (logs, page bodies, vars.png).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
OUT=$TARGET/console
BIN=$TARGET/release/examples
SCRIPTS=$ROOT/scripts
rm -rf "$OUT"
mkdir -p "$OUT"
WORK=$(mktemp -d)
STARTED=$SECONDS
CHECKS=0

log() { echo "== console_check: $*"; }
ok() {
  CHECKS=$((CHECKS + 1))
  echo "   ok: $*"
}
die() {
  echo "console_check: FAIL: $*" >&2
  exit 1
}

# Everything started here is killed on exit, whatever the exit path; each
# server also has --duration as a safety net.
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
  if [ "$rc" -ne 0 ]; then
    echo "console_check: FAILED (exit $rc); logs and page bodies in $OUT" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- tools
chromium_bin() {
  command -v chromium || command -v chromium-browser || command -v google-chrome || true
}
apt_install() {
  if [ "${CONSOLE_CHECK_NO_INSTALL:-0}" = 1 ]; then
    die "missing: $* (CONSOLE_CHECK_NO_INSTALL=1, so not installing)"
  fi
  command -v apt-get >/dev/null || die "missing: $* and no apt-get to install them"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "missing: $*; run as root (or with sudo) to install them"
    sudo=(sudo)
  fi
  log "installing $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq ||
    die "apt-get update failed"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >"$OUT/apt.log" 2>&1 ||
    die "apt-get install $* failed (see $OUT/apt.log)"
}

log "tools"
need=()
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
command -v python3 >/dev/null || need+=(python3)
[ -n "$(chromium_bin)" ] || need+=(chromium)
# Without any font Chromium renders no text; a fresh minimal system may
# have none (fonts are only recommended).
if ! find /usr/share/fonts /usr/local/share/fonts -name '*.[ot]tf' 2>/dev/null | grep -q .; then
  need+=(fonts-dejavu-core)
fi
if [ "${#need[@]}" -gt 0 ]; then
  apt_install "${need[@]}"
fi
CHROMIUM=$(chromium_bin)
[ -n "$CHROMIUM" ] || die "chromium not found after install"

# promtool: from PATH, else extracted from Debian's prometheus package
# (downloaded, not installed: no daemon, no dependencies).
PROMTOOL=$(command -v promtool || true)
if [ -z "$PROMTOOL" ] && [ "${CONSOLE_CHECK_PROMTOOL:-1}" = 1 ] &&
  [ "${CONSOLE_CHECK_NO_INSTALL:-0}" != 1 ] && command -v apt-get >/dev/null &&
  command -v dpkg-deb >/dev/null; then
  cached=$TARGET/promtool/usr/bin/promtool
  if [ ! -x "$cached" ]; then
    rm -rf "$TARGET/promtool" && mkdir -p "$TARGET/promtool"
    if (cd "$WORK" && apt-get download prometheus >"$OUT/promtool.log" 2>&1 ||
      { [ "$(id -u)" -eq 0 ] && apt-get update -qq >>"$OUT/promtool.log" 2>&1 &&
        apt-get download prometheus >>"$OUT/promtool.log" 2>&1; }); then
      dpkg-deb -x "$WORK"/prometheus_*.deb "$TARGET/promtool" 2>>"$OUT/promtool.log" || true
      rm -f "$WORK"/prometheus_*.deb
    fi
  fi
  [ -x "$cached" ] && PROMTOOL=$cached
fi
echo "   curl:     $(curl --version | head -1 | cut -d' ' -f1-2)"
echo "   wrk:      $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "   chromium: $("$CHROMIUM" --version 2>/dev/null | head -1)"
echo "   promtool: ${PROMTOOL:-unavailable (python check only)}"

# ---------------------------------------------------------------- build
log "build (release examples)"
cargo build --release -p fibrpc --example echo_server --example echo_client --example http_hello
for b in echo_server echo_client http_hello; do
  [ -x "$BIN/$b" ] || die "$BIN/$b was not built"
done
CHECK_START=$SECONDS

# Starts a server in the background (in this shell, so the exit trap knows
# its pid) and sets ADDR to 127.0.0.1:PORT from the first `PATTERN ADDR`
# line of its stdout.
start_server() { # name log pattern cmd...
  local name=$1 logf=$2 pattern=$3
  shift 3
  # Created here: the background job may not have opened it yet when the
  # first look below reads it (and a failed read would end the script).
  : >"$logf"
  "$@" >"$logf" 2>&1 &
  local pid=$! i addr
  PIDS+=("$pid")
  ADDR=
  for i in $(seq 100); do
    addr=$(sed -n "s/.*$pattern \([0-9.:]*\).*/\1/p" "$logf" | head -1)
    if [ -n "$addr" ]; then
      ADDR=127.0.0.1:${addr##*:}
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$logf" >&2; die "$name exited at start"; }
    sleep 0.1
  done
  cat "$logf" >&2
  die "$name did not report its address within 10 s"
}

# ---------------------------------------------------------------- echo server
log "echo_server + echo_client"
start_server echo_server "$OUT/echo_server.log" "serving example.EchoService on" \
  "$BIN/echo_server" --port 0 --duration 120 --console-flags-writable
ECHO=$ADDR
BASE=http://$ECHO
echo "   echo_server on $ECHO"
"$BIN/echo_client" --server "$ECHO" --count 20 --interval-ms 0 --timeout-ms 2000 >"$OUT/echo_client.log" 2>&1 ||
  { tail -20 "$OUT/echo_client.log" >&2; die "echo_client failed"; }
ok "echo_client: 20 calls ($(grep -c 'Received response' "$OUT/echo_client.log" || true) responses logged)"

# get NAME PATH [curl args...]: fetches $BASE$PATH into $OUT/NAME, sets
# STATUS and CTYPE.
get() {
  local name=$1 path=$2
  shift 2
  local w
  w=$(curl -sS --max-time 10 -o "$OUT/$name" -w '%{http_code} %{content_type}' "$@" "$BASE$path") ||
    die "curl $path failed"
  STATUS=${w%% *}
  CTYPE=${w#* }
}
expect() { # name path status [curl args...]
  local name=$1 path=$2 want=$3
  shift 3
  get "$name" "$path" "$@"
  [ "$STATUS" = "$want" ] || { head -c 600 "$OUT/$name" >&2; die "GET $path: status $STATUS, want $want"; }
}
has() { # name text...: the body of NAME contains every text
  local name=$1
  shift
  for t in "$@"; do
    grep -qF -- "$t" "$OUT/$name" || { head -c 1500 "$OUT/$name" >&2; die "$name: no \"$t\" in the body"; }
  done
}
HTML=(-H 'Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8')
is_html() { # name path
  head -c 15 "$OUT/$1" | grep -qx '<!DOCTYPE html>' || die "$2: HTML does not start with <!DOCTYPE html>"
  case $CTYPE in text/html*) ;; *) die "$2: HTML content type is '$CTYPE'" ;; esac
  grep -q '</html>' "$OUT/$1" || die "$2: HTML is not complete (no </html>)"
  has "$1" '<nav>' '<h1>'
}
not_html() { # name path
  if grep -qi '<html' "$OUT/$1"; then die "$2: text answer contains HTML"; fi
  case $CTYPE in text/html*) die "$2: text content type is '$CTYPE'" ;; esac
}

# The sampler must have ticked for /vars/NAME?series to have data.
sleep 2.2

# ---------------------------------------------------------------- pages
log "pages with curl ($BASE)"
expect index.txt / 200
not_html index.txt /
has index.txt example.EchoService /status /vars /connections /ids /cluster /fibers /flags /metrics /health /version
expect index.html / 200 "${HTML[@]}"
is_html index.html /
has index.html 'href="/status"' 'href="/vars"' example.EchoService
ok "/ (text, html)"

expect status.txt /status 200
not_html status.txt /status
has status.txt example.EchoService Echo count qps latency_us
echo_count=$(awk '$1 == "Echo" { print $2; exit }' "$OUT/status.txt")
[ "${echo_count:-0}" -ge 20 ] 2>/dev/null || die "/status: Echo count is '${echo_count:-}', want >= 20"
expect status.html /status 200 "${HTML[@]}"
is_html status.html /status
has status.html example.EchoService '<td>Echo</td>'
ok "/status (text, html): Echo count $echo_count"

expect vars.txt /vars 200
not_html vars.txt /vars
has vars.txt ' : ' rpc_server_
# The method's call counter, one label combination of a family:
# rpc_server_method_count{port="P",service="example.EchoService",method="Echo"}.
VAR=$(grep -oE '^rpc_server_method_count\{port="[0-9]+",service="example\.EchoService",method="Echo"\}' "$OUT/vars.txt" | head -1 || true)
[ -n "$VAR" ] || { grep rpc_server_ "$OUT/vars.txt" >&2 || true; die "/vars: no rpc_server_method_count{...method=\"Echo\"} var"; }
# As a URL path (percent-encoded) and in HTML attributes (&quot;).
VAR_URL=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$VAR")
VAR_HTML=$(python3 -c 'import sys, html; print(html.escape(sys.argv[1], quote=True))' "$VAR")
value=$(awk -v n="$VAR" '$1 == n { print $3; exit }' "$OUT/vars.txt")
awk -v v="$value" 'BEGIN { exit !(v + 0 > 0) }' || die "/vars: $VAR is '$value', want > 0"
nonzero=$(awk '$1 ~ /^rpc_server_/ && $3 + 0 > 0' "$OUT/vars.txt" | wc -l)
[ "$nonzero" -ge 2 ] || die "/vars: only $nonzero rpc_server_* vars are non-zero"
expect vars.html /vars 200 "${HTML[@]}"
is_html vars.html /vars
has vars.html "data-name=\"$VAR_HTML\"" 'getContext' 'chartsDrawn' 'id="filter"'
ok "/vars (text, html): $nonzero non-zero rpc_server_* vars; $VAR = $value"

expect var.txt "/vars/$VAR_URL" 200
has var.txt "$VAR : "
expect var.html "/vars/$VAR_URL" 200 "${HTML[@]}"
is_html var.html "/vars/$VAR_URL"
has var.html "data-name=\"$VAR_HTML\""
expect var_series.json "/vars/$VAR_URL?series" 200
case $CTYPE in application/json*) ;; *) die "/vars/$VAR?series: content type '$CTYPE'" ;; esac
python3 -m json.tool "$OUT/var_series.json" >/dev/null || die "/vars/$VAR?series is not valid JSON"
python3 - "$OUT/var_series.json" "$VAR" <<'EOF' || die "/vars/$VAR?series: bad content"
import json, sys
s = json.load(open(sys.argv[1]))
assert s.get("label") == sys.argv[2], f"label {s.get('label')!r}"
d = s.get("data")
assert isinstance(d, list) and d, "data is empty (the sampler has not ticked?)"
for p in d:
    assert isinstance(p, list) and len(p) == 2 and all(isinstance(x, (int, float)) for x in p), p
assert d[-1][1] > 0, f"last sample {d[-1]}"
print(f"   {len(d)} samples, last {d[-1]}")
EOF
expect var_series_html.json "/vars/$VAR_URL?series" 200 "${HTML[@]}"
python3 -m json.tool "$OUT/var_series_html.json" >/dev/null || die "?series with Accept: text/html is not JSON"
expect var_missing.txt /vars/no_such_var_xyz 404
expect var_missing_series.txt '/vars/no_such_var_xyz?series' 404
ok "/vars/$VAR (text, html, ?series JSON); unknown var 404"

# A connection that stays open for the per-connection pages below (curl's
# own connections close after each page).
exec 3<>"/dev/tcp/${ECHO%:*}/${ECHO##*:}" || die "cannot connect to $ECHO"
expect connections.txt /connections 200
not_html connections.txt /connections
has connections.txt connections remote protocol in_bytes
expect connections.html /connections 200 "${HTML[@]}"
is_html connections.html /connections
has connections.html '<th>remote</th>'
ok "/connections (text, html): $(head -1 "$OUT/connections.txt")"

# One connection's page: the oldest row of the table is the one held on
# descriptor 3.
SOCK=$(awk '!col { for (i = 1; i <= NF; i++) if ($i == "socket_id") col = i; next }
            NF >= col && $col ~ /^[0-9]+$/ { print $col; exit }' "$OUT/connections.txt")
[ -n "$SOCK" ] || { cat "$OUT/connections.txt" >&2; die "/connections: no socket_id in the table"; }
has connections.html "href=\"/connections/$SOCK\""
expect socket.txt "/connections/$SOCK" 200
not_html socket.txt "/connections/$SOCK"
has socket.txt "socket_id" "remote" "local" "protocol" "state" "unwritten_bytes" "last active" "tls" "[calls waiting for answers]"
expect socket.html "/connections/$SOCK" 200 "${HTML[@]}"
is_html socket.html "/connections/$SOCK"
has socket.html '<table class="kv">' 'href="/ids"'
expect socket_missing.txt /connections/18446744073709551615 404
expect socket_bad.txt /connections/abc 400
ok "/connections/$SOCK (text, html): $(grep -E '^(remote|state) ' "$OUT/socket.txt" | tr -s ' ' | paste -sd';')"

expect ids.txt /ids 200
not_html ids.txt /ids
has ids.txt "calls waiting on" correlation_id deadline_in_ms
expect ids.html /ids 200 "${HTML[@]}"
is_html ids.html /ids
has ids.html '<th>correlation_id</th>'
ok "/ids (text, html): $(head -1 "$OUT/ids.txt")"

expect cluster.txt /cluster 200
not_html cluster.txt /cluster
has cluster.txt "cluster channels"
expect cluster.html /cluster 200 "${HTML[@]}"
is_html cluster.html /cluster
ok "/cluster (text, html): $(head -1 "$OUT/cluster.txt")"

expect fibers.txt /fibers 200
not_html fibers.txt /fibers
has fibers.txt workers switches steals '[workers]'
expect fibers.html /fibers 200 "${HTML[@]}"
is_html fibers.html /fibers
has fibers.html '<th>worker</th>'
ok "/fibers (text, html)"

# The live fibers: the server's ticker is a named fiber that sleeps.
expect fiber_list.txt '/fibers?list' 200
not_html fiber_list.txt '/fibers?list'
has fiber_list.txt "fibers alive" spawned_at suspended_ms fibrpc-server-ticker
FIBER=$(awk '$3 == "fibrpc-server-ticker" { print $1; exit }' "$OUT/fiber_list.txt")
[ -n "$FIBER" ] || { cat "$OUT/fiber_list.txt" >&2; die "/fibers?list: no fibrpc-server-ticker row"; }
expect fiber_list.html '/fibers?list' 200 "${HTML[@]}"
is_html fiber_list.html '/fibers?list'
has fiber_list.html "href=\"/fibers/$FIBER\""
expect fiber.txt "/fibers/$FIBER" 200
has fiber.txt fibrpc-server-ticker "spawned at" state
expect fiber.html "/fibers/$FIBER" 200 "${HTML[@]}"
is_html fiber.html "/fibers/$FIBER"
expect fiber_missing.txt /fibers/1 404
ok "/fibers?list and /fibers/$FIBER (text, html): $(head -1 "$OUT/fiber_list.txt")"

expect flags.txt /flags 200
not_html flags.txt /flags
has flags.txt log_connection_errors reloadable
expect flags.html /flags 200 "${HTML[@]}"
is_html flags.html /flags
has flags.html 'href="/flags/log_connection_errors"'
expect flag_set.txt '/flags/log_connection_errors?setvalue=true' 200
has flag_set.txt 'Set flag log_connection_errors to true'
expect flag.txt /flags/log_connection_errors 200
awk '$1 == "log_connection_errors" && $2 == "true" { found = 1 } END { exit !found }' "$OUT/flag.txt" ||
  { cat "$OUT/flag.txt" >&2; die "/flags/log_connection_errors: value is not true after setvalue"; }
expect flag_bad.txt '/flags/log_connection_errors?setvalue=notabool' 400
has flag_bad.txt 'allowed: true or false'
expect flag_workers.txt '/flags/fiber_concurrency?setvalue=100000' 400
has flag_workers.txt 'allowed: '
expect flag_missing.txt /flags/no_such_flag_xyz 404
# A web page must not set flags through its visitor's browser.
expect flag_csrf.txt '/flags/log_connection_errors?setvalue=false' 403 -H 'Sec-Fetch-Site: cross-site'
expect flag_csrf2.txt '/flags/log_connection_errors?setvalue=false' 403 -H 'Origin: http://evil.example'
expect flag.txt /flags/log_connection_errors 200
awk '$1 == "log_connection_errors" && $2 == "true" { found = 1 } END { exit !found }' "$OUT/flag.txt" ||
  { cat "$OUT/flag.txt" >&2; die "/flags/log_connection_errors: a cross-site setvalue changed it"; }
ok "/flags (text, html, ?setvalue=true took effect; bad values 400 with the range; unknown flag 404; cross-site 403)"

expect metrics.txt /metrics 200
case $CTYPE in text/plain*) ;; *) die "/metrics: content type '$CTYPE'" ;; esac
python3 "$SCRIPTS/check_prometheus.py" "$OUT/metrics.txt" | sed 's/^/   /' ||
  die "/metrics is not valid Prometheus text"
grep -qE '^rpc_server_method_count_total\{[^}]*service="example\.EchoService",method="Echo"\} [1-9]' "$OUT/metrics.txt" ||
  die "/metrics: no non-zero Echo call counter (rpc_server_method_count_total{...method=\"Echo\"})"
if [ -n "$PROMTOOL" ]; then
  # promtool parses with Prometheus' own parser, then lints names and help
  # texts (HELP on every family, counters named *_total, no _count/_sum
  # on gauges, no type in names). Both must pass: it prints nothing and
  # exits 0 only for clean output.
  if ! "$PROMTOOL" check metrics <"$OUT/metrics.txt" >"$OUT/promtool.out" 2>&1 ||
    [ -s "$OUT/promtool.out" ]; then
    cat "$OUT/promtool.out" >&2
    die "promtool check metrics: /metrics does not parse or is not lint-clean"
  fi
  ok "/metrics: check_prometheus.py and promtool check metrics (parses, lint-clean)"
else
  ok "/metrics: check_prometheus.py (promtool unavailable)"
fi
expect metrics_html.txt /metrics 200 "${HTML[@]}"
python3 "$SCRIPTS/check_prometheus.py" "$OUT/metrics_html.txt" >/dev/null ||
  die "/metrics with Accept: text/html is not Prometheus text"

expect health.txt /health 200
[ "$(cat "$OUT/health.txt")" = OK ] || die "/health: body is '$(head -c 100 "$OUT/health.txt")'"
expect health.html /health 200 "${HTML[@]}"
expect version.txt /version 200
grep -qE '^fibrpc [0-9]+\.[0-9]+\.[0-9]+' "$OUT/version.txt" || die "/version: '$(head -c 100 "$OUT/version.txt")'"
expect version.html /version 200 "${HTML[@]}"
ok "/health, /version: $(cat "$OUT/version.txt")"

expect format_html.html '/status?format=html' 200
is_html format_html.html '/status?format=html'
expect format_text.txt '/status?format=text' 200 "${HTML[@]}"
not_html format_text.txt '/status?format=text'
expect unknown.txt /no/such/page 404
expect unknown.html /no/such/page 404 "${HTML[@]}"
ok "?format=html/text override; unknown page 404"

# Malformed requests, sent raw. Bytes no protocol recognises get the
# connection closed without an answer (the port also speaks baidu_std, as in
# bRPC); a request that starts as HTTP but is malformed gets a 400.
python3 - "${ECHO%:*}" "${ECHO##*:}" <<'EOF' >"$OUT/malformed.txt" 2>&1 || { cat "$OUT/malformed.txt" >&2; die "malformed requests"; }
import socket, sys

def send(raw):
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    s.sendall(raw)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        sys.exit(f"{raw!r}: no answer and no close within 5 s")
    s.close()
    return data.split(b"\r\n", 1)[0].decode("latin-1")

line = send(b"garbage\r\n\r\n")
if line:
    sys.exit(f"'garbage': answered {line!r}, want the connection closed")
print("'garbage\\r\\n\\r\\n' -> closed without answer (no protocol)")
for raw in [
    b"GET garbage\r\n\r\n",
    b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
    b"GET / HTTP/7.0\r\n\r\n",
    b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
]:
    line = send(raw)
    if not line.startswith("HTTP/1.1 400"):
        sys.exit(f"{raw!r}: answered {line!r}, want HTTP/1.1 400")
    print(f"{raw!r} -> {line}")
EOF
sed 's/^/   /' "$OUT/malformed.txt"
ok "malformed requests: garbage closed, 5 malformed HTTP requests 400"

# ---------------------------------------------------------------- chromium
log "headless chromium: /vars?open=$VAR"
URL="$BASE/vars?open=$VAR_URL"
# The chart opens under its row: make the window tall enough to show it
# wherever the row is (about 31 px a row, 250 px above the table, a 240 px
# chart); at least 1200x900.
row=$(awk -v n="$VAR" '$1 == n { print NR; exit }' "$OUT/vars.txt")
HEIGHT=$((250 + 31 * ${row:-0} + 240 + 60))
[ "$HEIGHT" -ge 900 ] || HEIGHT=900
# Calls keep coming meanwhile, so the charted counter rises (killed on exit).
"$BIN/echo_client" --server "$ECHO" --count 2000 --interval-ms 20 --timeout-ms 2000 >"$OUT/echo_client_bg.log" 2>&1 &
PIDS+=($!)
chrome() { # out-file flags...: runs headless Chromium on $URL (30 s cap)
  local out=$1
  shift
  local profile
  profile=$(mktemp -d "$WORK/chrome.XXXXXX")
  timeout -k 5 45 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-dev-shm-usage --hide-scrollbars --mute-audio \
    --user-data-dir="$profile" --window-size=1200,$HEIGHT --virtual-time-budget=6000 \
    "$@" "$URL" >"$out" 2>"$out.stderr"
}
# 1. The DOM after the scripts ran: the chart drew (body data-charts-drawn).
chrome "$OUT/vars_dom.html" --dump-dom ||
  { tail -20 "$OUT/vars_dom.html.stderr" >&2; die "chromium --dump-dom failed"; }
drawn=$(sed -n 's/.*<body[^>]*data-charts-drawn="\([0-9]*\)".*/\1/p' "$OUT/vars_dom.html" | head -1)
[ "${drawn:-0}" -ge 1 ] ||
  { grep -o '<body[^>]*>' "$OUT/vars_dom.html" >&2 || true; die "chromium: the chart never drew (no data-charts-drawn on <body>)"; }
grep -q '<canvas class="chart"' "$OUT/vars_dom.html" || die "chromium: no chart canvas in the DOM"
ok "chromium --dump-dom (window 1200x$HEIGHT): chart drawn $drawn times"
# 2. The screenshot, checked to be a page with the chart line on it.
chrome "$OUT/chrome_screenshot.log" --screenshot="$OUT/vars.png" ||
  { tail -20 "$OUT/chrome_screenshot.log.stderr" >&2; die "chromium --screenshot failed"; }
[ -s "$OUT/vars.png" ] || die "chromium wrote no screenshot"
python3 "$SCRIPTS/check_screenshot.py" "$OUT/vars.png" | sed 's/^/   /'
[ "${PIPESTATUS[0]}" -eq 0 ] || die "screenshot check failed ($OUT/vars.png)"
ok "screenshot $OUT/vars.png shows the chart"
# 3. /status: every method's sparklines (qps, p50, p99) drew.
URL="$BASE/status"
chrome "$OUT/status_dom.html" --dump-dom ||
  { tail -20 "$OUT/status_dom.html.stderr" >&2; die "chromium --dump-dom /status failed"; }
drawn=$(sed -n 's/.*<body[^>]*data-charts-drawn="\([0-9]*\)".*/\1/p' "$OUT/status_dom.html" | head -1)
[ "${drawn:-0}" -ge 3 ] ||
  { grep -o '<body[^>]*>' "$OUT/status_dom.html" >&2 || true; die "chromium: /status sparklines never drew"; }
ok "chromium /status: sparklines drawn $drawn times"
# 4. The per-object pages render as tables in a browser.
for page in "connections/$SOCK" "fibers?list" ids; do
  URL="$BASE/$page"
  dom="$OUT/dom_${page//[^a-z0-9]/_}.html"
  chrome "$dom" --dump-dom || { tail -20 "$dom.stderr" >&2; die "chromium --dump-dom /$page failed"; }
  grep -q '<table class="' "$dom" || die "chromium: /$page has no table in the DOM"
done
ok "chromium: /connections/$SOCK, /fibers?list and /ids render their tables"

# ---------------------------------------------------------------- hotspots
# The echo_client above still calls, so the CPU profile has samples.
log "/hotspots: CPU flame graph (curl, headless chromium)"
expect hot_cpu.svg '/hotspots/cpu?seconds=1' 200
[ "$CTYPE" = image/svg+xml ] || die "/hotspots/cpu: content type '$CTYPE'"
head -c 200 "$OUT/hot_cpu.svg" | grep -qE '^(<\?xml|<svg)' || die "/hotspots/cpu: not an SVG"
tail -c 50 "$OUT/hot_cpu.svg" | grep -q '</svg>' || die "/hotspots/cpu: the SVG is not complete"
has hot_cpu.svg 'CPU, 1 s'
expect hot_bad.txt '/hotspots/cpu?seconds=abc' 400
expect hot_heap.txt /hotspots/heap 501
has hot_heap.txt allocator
# The console page shows the graph in an <object>; chromium loads it (a
# 1 s profile) and must draw flames.
URL="$BASE/hotspots/cpu?seconds=1&format=svg"
HEIGHT=900
# Load while it samples: an idle server gives a graph with no flames.
wrk -t1 -c4 -d4s "$BASE/vars" >/dev/null 2>&1 &
load=$!
chrome "$OUT/chrome_hotspots.log" --screenshot="$OUT/hotspots.png" ||
  { tail -20 "$OUT/chrome_hotspots.log.stderr" >&2; die "chromium --screenshot of /hotspots/cpu failed"; }
wait "$load" || true
[ -s "$OUT/hotspots.png" ] || die "chromium wrote no screenshot of /hotspots/cpu"
python3 "$SCRIPTS/check_screenshot.py" "$OUT/hotspots.png" --min-flame-pixels 2000 | sed 's/^/   /'
[ "${PIPESTATUS[0]}" -eq 0 ] || die "screenshot check failed ($OUT/hotspots.png)"
ok "/hotspots/cpu: SVG flame graph; bad seconds 400; heap 501; screenshot $OUT/hotspots.png shows flames"

# ---------------------------------------------------------------- wrk
log "wrk against http_hello"
start_server http_hello "$OUT/http_hello.log" "listening on" \
  "$BIN/http_hello" --port 0 --duration 60
HELLO=$ADDR
expect_hello() {
  local body
  body=$(curl -sS --max-time 5 "http://$HELLO/hello") || die "curl /hello failed"
  [ "$body" = "Hello, World!" ] || die "/hello answered '$body'"
}
expect_hello
# http_hello runs with the default options: the console's flags are
# read-only.
BASE=http://$HELLO
expect hello_flag_set.txt '/flags/log_connection_errors?setvalue=false' 403
has hello_flag_set.txt 'read-only'
ok "/flags?setvalue= is refused (403) on a server with default options"
wrk -t2 -c20 -d2s "http://$HELLO/hello" >"$OUT/wrk.txt" 2>&1 || { cat "$OUT/wrk.txt" >&2; die "wrk failed"; }
sed 's/^/   /' "$OUT/wrk.txt"
requests=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$OUT/wrk.txt")
[ -n "$requests" ] || die "wrk: no request count in its output"
if grep -q 'Socket errors' "$OUT/wrk.txt"; then die "wrk: $(grep 'Socket errors' "$OUT/wrk.txt")"; fi
if grep -q 'Non-2xx' "$OUT/wrk.txt"; then die "wrk: $(grep 'Non-2xx' "$OUT/wrk.txt")"; fi
[ "$requests" -gt 1000 ] || die "wrk: only $requests requests in 2 s"
expect_hello
ok "wrk: $requests requests, 0 socket errors, 0 non-2xx"

log "all $CHECKS checks passed in $((SECONDS - CHECK_START)) s (plus $((CHECK_START - STARTED)) s tools and build)"
echo "   screenshot: $OUT/vars.png"
