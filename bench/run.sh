#!/usr/bin/env bash
# bench/run.sh: Vigil against Prometheus 2.42 and VictoriaMetrics (Debian's packages) on
# the same remote-write load, in one run, one server at a time so that they do not compete
# for the machine's cores.
#
#   bench/run.sh [--series N] [--samples N] [--rounds N] [--batch N] [--concurrency K]
#                [--build-dir DIR] [--only vigil,prometheus,victoriametrics]
#                [--no-fsync | --fsync-always]
#
# Vigil runs with its defaults, `storage.fsync: periodic`: a write is acknowledged once
# it is in LevelDB's log (survives kill -9) and the logs are fsynced every second in the
# background. --no-fsync runs it with `storage.fsync: never` (no fsync at all), the
# durability Prometheus and VictoriaMetrics give by default; --fsync-always with
# `storage.fsync: always` (every acknowledged write fsynced first: survives power loss).
#
# Each server starts empty on loopback ports with its own data dir and receives `rounds`
# rounds of bench/rwgen load (N series x S samples each, 15 s apart, later rounds later in
# time, every series in time order). Reported per server:
#   samples/s        median over the rounds of rwgen's acknowledged samples per second
#   peak RSS         VmHWM of the server process at the end (/proc/<pid>/status)
#   RSS per series   VmRSS / active series, read twice: right after the last request is
#                    answered (heaps still hold freed buffers, compactions may run), and
#                    after 5 s without load (the active series at rest; the same wait
#                    for every server)
#   bytes per sample on disk after data is compacted, measured as:
#     vigil          POST /api/v1/admin/tsdb/compact, then a graceful stop; du of
#                    its data dir
#     prometheus     a TSDB snapshot with the head (POST /api/v1/admin/tsdb/snapshot,
#                    --web.enable-admin-api), i.e. the head written as a compacted block;
#                    du of that snapshot (the WAL is not counted)
#     victoria       GET /internal/force_flush, then a graceful stop; du of data/ and
#                    indexdb/ (its caches are not counted)
# and the ratios Vigil/Prometheus and Vigil/VictoriaMetrics. The report also goes to
# bench/out/report-<time>.txt. Everything listens on 127.0.0.1; every wait is bounded and
# every process started here is stopped by its PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SERIES=50000
SAMPLES=40
ROUNDS=3
BATCH=1000
CONC=4
BUILD="$src/build"
ONLY="vigil,prometheus,victoriametrics"
INTERVAL=15000
FSYNC=periodic

while [ $# -gt 0 ]; do
    case "$1" in
    --series) SERIES=$2; shift 2 ;;
    --samples) SAMPLES=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --build-dir) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-fsync) FSYNC=never; shift ;;
    --fsync-always) FSYNC=always; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# shellcheck source=bench/lib.sh
. "$here/lib.sh"

VIGIL="$BUILD/server/vigil"
RWGEN="$BUILD/bench/rwgen"
need=("$RWGEN")
case ",$ONLY," in *,vigil,*) need+=("$VIGIL") ;; esac
require run.sh "$BUILD" "${need[@]}" -- curl python3 du
workspace report
SERVER_PID=""
VIGIL_CONFIG=""
if [ "$FSYNC" != periodic ]; then
    VIGIL_CONFIG=$WORK/vigil.yml
    printf 'storage:\n  fsync: %s\n' "$FSYNC" >"$VIGIL_CONFIG"
fi

cleanup() {
    [ -n "$SERVER_PID" ] && halt "$SERVER_PID" 10
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

BASE=$(( ($(date +%s) - ROUNDS * SAMPLES * INTERVAL / 1000 - 60) * 1000 ))
TOTAL=$((ROUNDS * SERIES * SAMPLES))

# load NAME URL: the rounds against one server; leaves the median rate in RATE.
load() {
    local name=$1 url=$2 r rates=() line
    for ((r = 0; r < ROUNDS; r++)); do
        line=$("$RWGEN" --url "$url" --series "$SERIES" --samples "$SAMPLES" --batch "$BATCH" \
            --concurrency "$CONC" --interval "$INTERVAL" \
            --start $((BASE + r * SAMPLES * INTERVAL)) --max-seconds 300 --quiet | grep '^RESULT') ||
            { note "$name round $r: rwgen reported failures: $line"; }
        note "$name round $((r + 1))/$ROUNDS: $line"
        rates+=("$(printf '%s\n' "$line" | sed -E 's/.*samples_per_sec=([0-9.]+).*/\1/')")
        P99+=("$name $(printf '%s\n' "$line" | sed -E 's/.*p99_ms=([0-9.]+).*/\1/')")
    done
    RATE=$(median "${rates[@]}")
}

declare -A RES
P99=()

# record NAME RATE HWM_KB RSS_KB DISK_BYTES: the numbers of one server (RSS_KB: "now
# settled", as rss_pair prints them).
record() {
    RES[$1.rate]=$2
    RES[$1.hwm]=$3
    RES[$1.rss]=${4% *}
    RES[$1.rss_settled]=${4#* }
    RES[$1.disk]=$5
}

# rss_pair PID: "VmRSS-now VmRSS-5s-later" in kB, with no load in between.
rss_pair() {
    local now
    now=$(status_kb "$1" VmRSS)
    sleep 5
    echo "$now $(status_kb "$1" VmRSS)"
}

bench_vigil() {
    local p d=$WORK/vigil
    start_vigil "$VIGIL" "$d" "$WORK/vigil.log" "$VIGIL_CONFIG" || { SERVER_PID=$STARTED_PID; return 1; }
    SERVER_PID=$STARTED_PID; p=$STARTED_PORT
    note "$("$VIGIL" version 2>/dev/null | head -n 1) on 127.0.0.1:$p"
    load vigil "http://127.0.0.1:$p/api/v1/write"
    local hwm rss code
    hwm=$(status_kb "$SERVER_PID" VmHWM); rss=$(rss_pair "$SERVER_PID")
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 300 -X POST "http://127.0.0.1:$p/api/v1/admin/tsdb/compact")
    note "vigil POST /api/v1/admin/tsdb/compact: HTTP $code"
    halt "$SERVER_PID" 120; SERVER_PID=""
    record vigil "$RATE" "$hwm" "$rss" "$(dir_bytes "$d")"
}

bench_prometheus() {
    command -v prometheus >/dev/null || { note "prometheus not installed: skipped"; return 0; }
    local p d=$WORK/prometheus
    printf 'global:\n  scrape_interval: 1m\n' >"$WORK/prometheus.yml"
    start_prometheus "$d" "$WORK/prometheus.yml" "$WORK/prometheus.log" ||
        { SERVER_PID=$STARTED_PID; return 1; }
    SERVER_PID=$STARTED_PID; p=$STARTED_PORT
    note "$(prometheus --version 2>&1 | head -n 1) on 127.0.0.1:$p"
    load prometheus "http://127.0.0.1:$p/api/v1/write"
    local hwm rss snap
    hwm=$(status_kb "$SERVER_PID" VmHWM); rss=$(rss_pair "$SERVER_PID")
    snap=$(curl -s --max-time 300 -X POST "http://127.0.0.1:$p/api/v1/admin/tsdb/snapshot" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["name"])')
    record prometheus "$RATE" "$hwm" "$rss" "$(dir_bytes "$d/snapshots/$snap")"
    halt "$SERVER_PID" 60; SERVER_PID=""
}

bench_victoriametrics() {
    command -v victoria-metrics >/dev/null || { note "victoria-metrics not installed: skipped"; return 0; }
    local p d=$WORK/victoriametrics
    p=$(port)
    victoria-metrics -storageDataPath="$d" -httpListenAddr="127.0.0.1:$p" -retentionPeriod=1y \
        -loggerLevel=WARN >"$WORK/victoriametrics.log" 2>&1 &
    SERVER_PID=$!
    ready "http://127.0.0.1:$p/health" "$SERVER_PID" || { tail "$WORK/victoriametrics.log" >&2; return 1; }
    note "victoria-metrics $(dpkg-query -W -f '${Version}' victoria-metrics 2>/dev/null) on 127.0.0.1:$p"
    load victoriametrics "http://127.0.0.1:$p/api/v1/write"
    local hwm rss
    hwm=$(status_kb "$SERVER_PID" VmHWM); rss=$(rss_pair "$SERVER_PID")
    curl -s -o /dev/null --max-time 120 "http://127.0.0.1:$p/internal/force_flush"
    halt "$SERVER_PID" 60; SERVER_PID=""
    record victoriametrics "$RATE" "$hwm" "$rss" "$(dir_bytes "$d/data" "$d/indexdb")"
}

note "load: $SERIES series x $SAMPLES samples x $ROUNDS rounds = $TOTAL samples, batches of $BATCH, $CONC connections"
for s in vigil prometheus victoriametrics; do
    case ",$ONLY," in *",$s,"*) "bench_$s" || note "$s failed; see above" ;; esac
done

# ---- report ----
python3 - "$TOTAL" "$SERIES" "$FSYNC" "${P99[@]/#/p99:}" >"$REPORT" <<PY
import sys
total, series, fsync = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
res = {}
for kv in """$(for k in "${!RES[@]}"; do echo "$k=${RES[$k]}"; done)""".split():
    k, v = kv.split('=', 1)
    res[k] = float(v) if v else None
p99 = {}
for a in sys.argv[4:]:
    name, v = a[4:].split()
    p99.setdefault(name, []).append(float(v))
names = [n for n in ('vigil', 'prometheus', 'victoriametrics') if n + '.rate' in res]
rows = [
    ('ingest samples/s (median)', lambda n: res[n + '.rate'], '%.0f', True),
    ('request p99 ms (worst round)', lambda n: max(p99.get(n, [0])), '%.2f', False),
    ('peak RSS MiB (VmHWM)', lambda n: res[n + '.hwm'] / 1024, '%.1f', False),
    ('RSS B/series, end of load', lambda n: res[n + '.rss'] * 1024 / series, '%.0f', False),
    ('RSS B/series, 5 s later', lambda n: res[n + '.rss_settled'] * 1024 / series, '%.0f', False),
    ('disk bytes per sample', lambda n: res[n + '.disk'] / total, '%.3f', False),
]
print('load: %d series, %d samples in total' % (series, total))
print('vigil: storage.fsync %s (%s)' % (fsync, {
    'always': 'every acknowledged write fsynced',
    'periodic': 'acknowledged once in LevelDB\'s log, fsynced every 1s: survives kill -9',
    'never': 'acknowledged once in LevelDB\'s log: survives kill -9, not power loss',
}[fsync]))
head = '%-30s' % 'metric' + ''.join('%16s' % n for n in names)
others = [n for n in names if n != 'vigil'] if 'vigil' in names else []
short = {'prometheus': 'vigil/prom', 'victoriametrics': 'vigil/vm'}
head += ''.join('%14s' % short[n] for n in others)
print(head)
for label, fn, fmt, _ in rows:
    vals = {}
    for n in names:
        try:
            vals[n] = fn(n)
        except (TypeError, KeyError):
            vals[n] = None
    line = '%-30s' % label + ''.join('%16s' % (fmt % vals[n] if vals[n] is not None else '-') for n in names)
    for o in others:
        v, w = vals.get('vigil'), vals.get(o)
        line += '%14s' % ('%.2fx' % (v / w) if v is not None and w else '-')
    print(line)
print('higher is better for samples/s; lower is better for the rest.')
PY
cat "$REPORT"
note "report saved to $REPORT"
