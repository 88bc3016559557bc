# shellcheck shell=bash
# lib.sh: helpers shared by the integration scripts; each script sources it first.
#
# What it gives a script:
#  - a private temp dir $T (logs, data dirs, configs), removed at exit unless a check
#    failed or KEEP_TMP=1 (then its path is printed so the logs can be read);
#  - free loopback ports, background processes started by start_bg and stopped by PID
#    (SIGTERM, then SIGKILL after a bound) by the EXIT trap, whatever happens;
#  - vigil_start / vigil_stop / vigil_kill9 / vigil_dump, prom_start for Debian's
#    Prometheus, bounded waits (wait_until), and checks that print what was expected and
#    what was seen (check_eq, check_status, check_contains, ...);
#  - a watchdog that ends the script after IT_TIMEOUT seconds (default 170) and the
#    closing line "N passed, N failed" (", N skipped" when some were skipped).
#
# Environment: VIGIL_BIN (the binary, required), VIGIL_BUILD_DIR and VIGIL_SOURCE_DIR
# (set by meson; derived from VIGIL_BIN and this file's place when absent).
# Everything listens on and talks to 127.0.0.1 only. Every loop is bounded in time and
# count. Exit status: 0 all checks passed, 77 skipped (meson's skip code), 1 otherwise.

set -u -o pipefail

IT_NAME=$(basename "$0" .sh)
IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${VIGIL_BIN:?VIGIL_BIN must name the vigil binary (meson test sets it)}"
VIGIL_SOURCE_DIR=${VIGIL_SOURCE_DIR:-$(cd "$IT_DIR/../.." && pwd)}
VIGIL_BUILD_DIR=${VIGIL_BUILD_DIR:-$(cd "$(dirname "$VIGIL_BIN")/.." && pwd)}
RWGEN_BIN=${RWGEN_BIN:-$VIGIL_BUILD_DIR/bench/rwgen}
IT_TIMEOUT=${IT_TIMEOUT:-170}

T=$(mktemp -d "${TMPDIR:-/tmp}/vigil-$IT_NAME.XXXXXX")
IT_PASS=0
IT_FAIL=0
IT_SKIP=0
IT_PIDS=()
IT_DONE=0
IT_START=$SECONDS

log() { printf '[%s %3ds] %s\n' "$IT_NAME" $((SECONDS - IT_START)) "$*"; }

# ---- results ----

pass() { IT_PASS=$((IT_PASS + 1)); printf 'ok   - %s\n' "$*"; }
fail() { IT_FAIL=$((IT_FAIL + 1)); printf 'FAIL - %s\n' "$*"; }
skip() { IT_SKIP=$((IT_SKIP + 1)); printf 'skip - %s\n' "$*"; }

# check_eq WHAT EXPECTED ACTUAL
check_eq() {
    if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
# check_ge WHAT MIN ACTUAL (integers)
check_ge() {
    if [[ "$3" =~ ^-?[0-9]+$ ]] && [ "$3" -ge "$2" ]; then pass "$1 ($3 >= $2)"
    else fail "$1: expected at least $2, got [$3]"; fi
}
# check_contains WHAT HAYSTACK NEEDLE (case-insensitive substring)
check_contains() {
    if printf '%s' "$2" | grep -qiF -- "$3"; then pass "$1"
    else fail "$1: [$3] not found in [$(printf '%.400s' "$2")]"; fi
}
# check_file_empty WHAT FILE: passes when FILE is empty, else shows its first lines.
check_file_empty() {
    if [ ! -s "$2" ]; then pass "$1"; else
        fail "$1: $(wc -l <"$2") unexpected line(s), first ones:"
        head -n 5 "$2" | sed 's/^/       /'
    fi
}

# Ends the script now as skipped (e.g. an optional peer or data set is missing).
skip_all() {
    skip "$*"
    exit 77
}

# Ends the script now after a failure that makes the later checks meaningless.
die() {
    fail "$*"
    exit 1
}

need_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || skip_all "$c is not installed (deploy/setup.sh --test installs it)"
    done
}

# ---- processes ----

# start_bg NAME CMD...: runs CMD in the background with output in $T/NAME.log; the PID is
# left in BG_PID and stopped at exit.
start_bg() {
    local name=$1
    shift
    "$@" >"$T/$name.log" 2>&1 &
    BG_PID=$!
    IT_PIDS+=("$BG_PID")
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 15), then SIGKILL; reaps it.
stop_pid() {
    local pid=$1 bound=${2:-15} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < bound * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still running after ${bound}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# Exit status of a background process started by start_bg (after it ended).
exit_status_of() {
    wait "$1" 2>/dev/null
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_until SECONDS CMD...: runs CMD every 0.2 s until it succeeds; 1 on timeout.
wait_until() {
    local bound=$1 end
    shift
    end=$((SECONDS + bound))
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        [ "$SECONDS" -ge "$end" ] && return 1
        sleep 0.2
    done
}

# http_code URL [curl args...]: prints the HTTP status only.
http_code() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url"
}

# http_req OUTFILE URL [curl args...]: body to OUTFILE, prints the HTTP status.
http_req() {
    local out=$1 url=$2
    shift 2
    curl -s -o "$out" -w '%{http_code}' --max-time 20 "$@" "$url"
}

# ---- vigil ----

VIGIL_PID=""
VIGIL_DATA=${VIGIL_DATA:-$T/vigil-data}
VIGIL_RUNS=0

# vigil_start [EXTRA ARGS...]: starts `vigil serve` on fresh loopback ports (kept across
# restarts of the same script) with data in $VIGIL_DATA, and waits for /-/ready.
vigil_start() {
    [ -n "${VIGIL_HTTP_PORT:-}" ] || VIGIL_HTTP_PORT=$(free_port)
    [ -n "${VIGIL_GRPC_PORT:-}" ] || VIGIL_GRPC_PORT=$(free_port)
    VIGIL_URL="http://127.0.0.1:$VIGIL_HTTP_PORT"
    VIGIL_GRPC="127.0.0.1:$VIGIL_GRPC_PORT"
    VIGIL_RUNS=$((VIGIL_RUNS + 1))
    mkdir -p "$VIGIL_DATA"
    start_bg "vigil.$VIGIL_RUNS" "$VIGIL_BIN" serve --data-dir "$VIGIL_DATA" \
        --http-addr "127.0.0.1:$VIGIL_HTTP_PORT" --grpc-addr "127.0.0.1:$VIGIL_GRPC_PORT" \
        --log-level info "$@"
    VIGIL_PID=$BG_PID
    if ! wait_until 30 vigil_ready; then
        log "vigil did not become ready; last log lines:"
        tail -n 20 "$T/vigil.$VIGIL_RUNS.log" | sed 's/^/    /'
        die "vigil serve started and answered /-/ready within 30 s"
    fi
    log "vigil ready at $VIGIL_URL (grpc $VIGIL_GRPC, pid $VIGIL_PID)"
}

vigil_ready() {
    kill -0 "$VIGIL_PID" 2>/dev/null || return 1
    [ "$(http_code "$VIGIL_URL/-/ready")" = 200 ]
}

# True while the last started vigil still runs and answers /-/healthy.
vigil_alive() {
    kill -0 "$VIGIL_PID" 2>/dev/null && [ "$(http_code "$VIGIL_URL/-/healthy")" = 200 ]
}

# Graceful stop (SIGTERM): vigil flushes and closes its stores.
vigil_stop() {
    [ -n "$VIGIL_PID" ] || return 0
    stop_pid "$VIGIL_PID" 30
    VIGIL_PID=""
}

vigil_kill9() {
    [ -n "$VIGIL_PID" ] || return 0
    kill -KILL "$VIGIL_PID" 2>/dev/null
    wait "$VIGIL_PID" 2>/dev/null
    VIGIL_PID=""
}

# vigil_dump OUTFILE [SELECTOR]: every stored sample, sorted, via `vigil tsdb dump` on
# $VIGIL_DATA (the server must be stopped: LevelDB allows one process per database).
vigil_dump() {
    local out=$1
    shift
    local args=(tsdb dump --data-dir "$VIGIL_DATA")
    [ $# -gt 0 ] && args+=(--match "$1")
    if ! timeout 60 "$VIGIL_BIN" "${args[@]}" >"$out.raw" 2>"$out.err"; then
        fail "vigil tsdb dump ran: $(head -c 400 "$out.err")"
        : >"$out"
        return 1
    fi
    LC_ALL=C sort "$out.raw" >"$out"
}

# vigil_get PATH [curl args]: GET on vigil's HTTP API, body on stdout.
vigil_get() {
    local path=$1
    shift
    curl -s --max-time 20 "$@" "$VIGIL_URL$path"
}

# series_count MATCHER: how many series /api/v1/series returns for one match[] selector.
series_count() {
    vigil_get /api/v1/series -G --data-urlencode "match[]=$1" | jq -r '.data | length' 2>/dev/null
}

# ---- sample sets (tests/integration/samples.py) ----

samples() { python3 "$IT_DIR/samples.py" "$@"; }

# check_subset WHAT EXPECTED ACTUAL: every line of file EXPECTED is in file ACTUAL (both
# canonical and sorted); shows the first missing lines otherwise.
check_subset() {
    LC_ALL=C comm -23 "$2" "$3" >"$T/missing.txt"
    if [ ! -s "$T/missing.txt" ]; then
        pass "$1 ($(wc -l <"$2") lines)"
    else
        fail "$1: $(wc -l <"$T/missing.txt") of $(wc -l <"$2") expected lines missing; first ones:"
        head -n 5 "$T/missing.txt" | sed 's/^/       /'
    fi
}

# check_same_set WHAT EXPECTED ACTUAL: both inclusions.
check_same_set() {
    check_subset "$1: expected lines present" "$2" "$3"
    check_subset "$1: nothing unexpected" "$3" "$2"
}

# ---- Prometheus (Debian's /usr/bin/prometheus) ----

PROM_PID=""
PROM_RUNS=0

# prom_start CONFIG [EXTRA ARGS...]: starts Prometheus on a free loopback port with its
# own data dir under $T and waits for /-/ready. Sets PROM_URL.
prom_start() {
    local cfg=$1
    shift
    need_cmd prometheus
    PROM_PORT=$(free_port)
    PROM_URL="http://127.0.0.1:$PROM_PORT"
    PROM_RUNS=$((PROM_RUNS + 1))
    PROM_LOG="$T/prometheus.$PROM_RUNS.log"
    start_bg "prometheus.$PROM_RUNS" prometheus --config.file="$cfg" --storage.tsdb.path="$T/prom-data" \
        --web.listen-address="127.0.0.1:$PROM_PORT" "$@"
    PROM_PID=$BG_PID
    if ! wait_until 30 prom_ready; then
        tail -n 20 "$PROM_LOG" | sed 's/^/    /'
        die "prometheus started and answered /-/ready within 30 s"
    fi
    log "prometheus ready at $PROM_URL (pid $PROM_PID)"
}

prom_ready() {
    kill -0 "$PROM_PID" 2>/dev/null && [ "$(http_code "$PROM_URL/-/ready")" = 200 ]
}

# prom_query EXPR [TIME]: Prometheus instant query; prints the JSON result array.
prom_query() {
    local args=(-G --data-urlencode "query=$1")
    [ $# -gt 1 ] && args+=(--data-urlencode "time=$2")
    curl -s --max-time 20 "${args[@]}" "$PROM_URL/api/v1/query" | jq -c '.data.result'
}

# ---- rwgen (bench/rwgen.c) ----

need_rwgen() {
    [ -x "$RWGEN_BIN" ] || die "the load generator $RWGEN_BIN is built (ninja bench/rwgen)"
}

# ---- the end ----

it_finish() {
    local rc=$?
    [ "$IT_DONE" = 1 ] && return
    IT_DONE=1
    trap - EXIT INT TERM
    [ -n "${IT_WATCHDOG:-}" ] && kill "$IT_WATCHDOG" 2>/dev/null && wait "$IT_WATCHDOG" 2>/dev/null
    local pid
    for pid in "${IT_PIDS[@]}"; do
        stop_pid "$pid" 10
    done
    if [ "$rc" = 77 ] && [ "$IT_FAIL" = 0 ]; then
        printf '%d passed, %d failed, %d skipped\n' "$IT_PASS" "$IT_FAIL" "$IT_SKIP"
        rm -rf "$T"
        exit 77
    fi
    if [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$IT_FAIL" = 0 ]; then
        fail "script ended early with status $rc"
    fi
    if [ "$IT_PASS" = 0 ] && [ "$IT_FAIL" = 0 ]; then
        fail "no check ran"
    fi
    if [ "$IT_FAIL" -gt 0 ] || [ "${KEEP_TMP:-0}" = 1 ]; then
        log "logs and data kept in $T"
    else
        rm -rf "$T"
    fi
    if [ "$IT_SKIP" -gt 0 ]; then
        printf '%d passed, %d failed, %d skipped\n' "$IT_PASS" "$IT_FAIL" "$IT_SKIP"
    else
        printf '%d passed, %d failed\n' "$IT_PASS" "$IT_FAIL"
    fi
    [ "$IT_FAIL" = 0 ] && exit 0
    exit 1
}

it_timeout() {
    fail "script exceeded its ${IT_TIMEOUT}s bound"
    exit 1
}

trap it_finish EXIT
trap 'exit 130' INT
trap it_timeout TERM
# The watchdog signals only this script's own PID ($$ is the script's even in the
# subshell). It naps in 0.2 s steps and leaves as soon as the script is gone, so nothing
# of it outlives the script by more than one nap.
(
    for ((i = 0; i < IT_TIMEOUT * 5; i++)); do
        sleep 0.2
        kill -0 $$ 2>/dev/null || exit 0
    done
    kill -TERM $$
) >/dev/null 2>&1 &
IT_WATCHDOG=$!

need_cmd curl jq python3
[ -x "$VIGIL_BIN" ] || die "VIGIL_BIN=$VIGIL_BIN is an executable"
