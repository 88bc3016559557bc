# shellcheck shell=bash
# bench/lib.sh: shell pieces shared by bench/run.sh and bench/query_bench.sh (sourced,
# not run). Everything here is bounded and touches only the processes it is given.
#
#   note MSG...              a progress line on stderr: "[$BENCH_TAG <seconds>s] MSG"
#   halt PID SECONDS         SIGTERM, then SIGKILL once SECONDS have passed; reaps PID
#   port                     a free loopback TCP port
#   ready URL PID            polls URL until HTTP 200, at most 60 s, while PID lives
#   status_kb PID KEY        a /proc/PID/status field in kB (VmHWM, VmRSS, ...)
#   median N...              the median of the numbers given
#   dir_bytes DIR...         bytes under the directories (du -sb), 0 when missing
#   cpu_ticks PID            utime + stime of PID (all its threads) in clock ticks
#   result_field LINE KEY    the number after " KEY=" in a "RESULT k=v ..." line
#   start_vigil BIN DIR LOG [CONFIG]
#                            vigil serve on loopback ports with data dir DIR (and the
#                            config file CONFIG when given), logging to LOG, waits until
#                            ready; sets STARTED_PID, STARTED_PORT
#   require SCRIPT BUILD BIN... -- CMD...
#                            exits 2 naming the first BIN not built or CMD not on PATH
#   workspace NAME           a fresh WORK folder and REPORT=bench/out/NAME-<time>.txt
#   start_prometheus DIR CONFIG LOG
#                            Debian's prometheus with the remote-write receiver and the
#                            admin API, data in DIR; same contract as start_vigil
# start_* return non-zero (after printing the log's tail) when the server never became
# ready; STARTED_PID is set as soon as the process exists, so a caller's cleanup can stop
# it either way.

require() {
    local script=$1 build=$2 c
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        [ -x "$1" ] || { echo "$script: $1 is not built (ninja -C $build)" >&2; exit 2; }
        shift
    done
    [ $# -gt 0 ] && shift
    for c in "$@"; do
        command -v "$c" >/dev/null || { echo "$script: $c is missing" >&2; exit 2; }
    done
}

workspace() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-${BENCH_TAG:-bench}.XXXXXX")
    mkdir -p "$here/out"
    REPORT="$here/out/$1-$(date +%Y%m%d-%H%M%S).txt"
}

note() { printf '[%s %4ds] %s\n' "${BENCH_TAG:-bench}" "$SECONDS" "$*" >&2; }

halt() {
    local pid=$1 n=$(($2 * 10))
    kill -TERM "$pid" 2>/dev/null || return 0
    while [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

ready() {
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$2" 2>/dev/null || return 1
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
dir_bytes() { du -sb "$@" 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
result_field() { printf '%s\n' "$1" | sed -E "s/.*[ ^]$2=([0-9.]+).*/\1/"; }

start_vigil() {
    local bin=$1 dir=$2 log=$3 g cfg=()
    [ -n "${4:-}" ] && cfg=(--config "$4")
    STARTED_PORT=$(port); g=$(port)
    "$bin" serve "${cfg[@]}" --data-dir "$dir" --http-addr "127.0.0.1:$STARTED_PORT" \
        --grpc-addr "127.0.0.1:$g" --log-level warn >"$log" 2>&1 &
    STARTED_PID=$!
    ready "http://127.0.0.1:$STARTED_PORT/-/ready" "$STARTED_PID" || { tail "$log" >&2; return 1; }
}

start_prometheus() {
    local dir=$1 config=$2 log=$3
    STARTED_PORT=$(port)
    prometheus --config.file="$config" --storage.tsdb.path="$dir" \
        --web.listen-address="127.0.0.1:$STARTED_PORT" --web.enable-remote-write-receiver \
        --web.enable-admin-api --log.level=warn >"$log" 2>&1 &
    STARTED_PID=$!
    ready "http://127.0.0.1:$STARTED_PORT/-/ready" "$STARTED_PID" || { tail "$log" >&2; return 1; }
}
