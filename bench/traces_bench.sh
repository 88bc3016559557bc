#!/usr/bin/env bash
# bench/traces_bench.sh: the traces benchmark of the issue "Traces end to end"
# (Performance): OTLP span ingestion over gRPC and HTTP with peak RSS against the
# decode-only rate of the same payloads, then trace-by-id and search latency and RSS per
# million spans once many spans are stored. One run, one machine.
#
#   bench/traces_bench.sh [--ingest-spans N] [--rounds R] [--stored-spans N]
#                         [--load-minutes M] [--checkpoints N,N,...] [--slice N] [--concurrency K]
#                         [--reps N] [--build-dir DIR] [--only ingest,query] [--keep]
#
# Data: bench/spangen's traces (see the top of bench/spangen.c): 10 spans over 4 services
# with semantic-convention attributes, 1 trace in 50 with an error and an exception
# event, 100 spans (10 traces) per request, about 270 bytes of protobuf per span.
#
# Ingest (--only ingest): for gRPC and HTTP/protobuf, --rounds (3) rounds, each on a fresh
# server: spangen sends --ingest-spans spans (300,000) from --concurrency (4) connections,
# every request encoded before the timed phase (the same bytes in every round and
# transport). Per transport: median spans/s, server CPU seconds over the load and until
# the server goes idle after it (utime + stime of /proc/PID/stat; the wait counts the
# LevelDB compaction the load caused), spans per CPU second (= per core), request p99 and the
# highest VmHWM. In the same run, right before every round: spangen --decode, protobuf-c
# unpacking the same requests on one thread (1 pass): spans/s of bare decoding on one
# core, per wall second and per CPU second of that thread; each transport's ratios use
# the median of its rounds' decode rates (per-core/dec: CPU second against CPU second).
# Goals: end-to-end at least half the decode-only rate, and at least 50,000 spans/s per
# core.
#
# Query (--only query): one fresh server is loaded over gRPC (requests built on the fly
# by the sending threads) with new traces in slices of --slice (1,000,000) spans, spread over the 6
# hours before the start, until --stored-spans (10,000,000, the issue's figure) are
# stored or --load-minutes (20) have passed, whichever comes first. At each checkpoint
# (--checkpoints, default 1000000 and the final count) the load pauses and the bench
# measures: VmRSS (and per million stored spans), the traces store on disk (du -sb),
# GET /api/traces/<id> for 200 random stored traces (each checked to hold 10 spans;
# median, p90, p99) and, --reps times (21) each after a warm-up, /api/search with
#   tags   tags=service.name=cart http.status_code=500  (the error traces), limit 20
#   q      { resource.service.name = "cart" && span.http.status_code = 500 }, limit 20
#   q dur  { name = "SELECT cart_items" && duration > 35ms }, limit 20
# over the whole stored time range (median, p99, traces returned). Goal: trace by id
# under 10 ms at the median.
#
# The report goes to stdout and bench/out/traces-<time>.txt. Everything listens on
# 127.0.0.1; every wait is bounded and every process started here is stopped by its PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
INGEST_SPANS=300000
ROUNDS=3
STORED=10000000
LOAD_MIN=20
CHECKPOINTS=1000000
CONC=4
REPS=21
BUILD="$src/build"
ONLY="ingest,query"
KEEP=0
ARGS="$*"
SLICE=1000000

while [ $# -gt 0 ]; do
    case "$1" in
    --ingest-spans) INGEST_SPANS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --stored-spans) STORED=$2; shift 2 ;;
    --load-minutes) LOAD_MIN=$2; shift 2 ;;
    --checkpoints) CHECKPOINTS=$2; shift 2 ;;
    --slice) SLICE=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --build-dir) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "traces_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

VIGIL="$BUILD/server/vigil"
SPANGEN="$BUILD/bench/spangen"
export BENCH_TAG=tbench
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
require traces_bench.sh "$BUILD" "$VIGIL" "$SPANGEN" -- curl python3 du
workspace traces
SERVER_PID=""
HZ=$(getconf CLK_TCK)

cleanup() {
    [ -n "$SERVER_PID" ] && halt "$SERVER_PID" 60
    if [ "$KEEP" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# start: a fresh or existing data dir DIR; sets SERVER_PID, HTTP_PORT, GRPC_PORT.
start() {
    HTTP_PORT=$(port); GRPC_PORT=$(port)
    "$VIGIL" serve --data-dir "$1" --http-addr "127.0.0.1:$HTTP_PORT" \
        --grpc-addr "127.0.0.1:$GRPC_PORT" --log-level warn >>"$WORK/vigil.log" 2>&1 &
    SERVER_PID=$!
    ready "http://127.0.0.1:$HTTP_PORT/-/ready" "$SERVER_PID" || { tail "$WORK/vigil.log" >&2; return 1; }
}

# settle PID: waits (at most 120 s) until the server uses under 3% of a core for 3 s in a
# row, so the LevelDB compaction the load caused is counted in its CPU time.
settle() {
    local prev cur quiet=0 i
    prev=$(cpu_ticks "$1")
    for ((i = 0; i < 120 && quiet < 3; i++)); do
        sleep 1
        cur=$(cpu_ticks "$1")
        if [ $((cur - prev)) -lt $(( (HZ * 3 + 99) / 100 )) ]; then quiet=$((quiet + 1)); else quiet=0; fi
        prev=$cur
    done
}

target() { # transport -> spangen's --url
    if [ "$1" = grpc ]; then echo "127.0.0.1:$GRPC_PORT"; else echo "http://127.0.0.1:$HTTP_PORT/v1/traces"; fi
}

{
    echo "command: bench/traces_bench.sh $ARGS"
    echo "vigil: $("$VIGIL" version 2>/dev/null | head -n 1); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$REPORT"

# ---- ingestion ----
ingest() {
    local tr r line t0 t1 end_ns dec
    end_ns=$(( ($(date +%s) - 120) * 1000000000 ))
    # The decode-only reference is measured right before every round (one pass over the
    # same requests), so it sees the same machine state as the round: other load on the
    # cores slows both. Each transport's ratios use the median of its own rounds'.
    local alldecs=() allcdecs=()
    {
        echo ""
        echo "ingestion: $INGEST_SPANS spans per round (100 per request), $ROUNDS rounds per transport (fresh server each), $CONC connections, requests encoded before the timed phase"
        printf '%-10s %12s %10s %14s %12s %14s %10s %12s %12s %14s\n' transport spans/s 'CPU s' 'spans/CPU s' 'vs decode' 'per-core/dec' 'p99 ms' 'peak RSS' 'decode sp/s' 'dec sp/CPU s'
    } >>"$REPORT"
    for tr in grpc http; do
        local rates=() cpus=() pcs=() p99s=() hwms=() decs=() cdecs=()
        for ((r = 1; r <= ROUNDS; r++)); do
            dec=$("$SPANGEN" --spans "$INGEST_SPANS" --end-ns "$end_ns" --decode --rounds 1 | grep '^RESULT')
            note "decode-only: $dec"
            decs+=("$(result_field "$dec" decode_spans_per_sec)")
            cdecs+=("$(result_field "$dec" decode_spans_per_cpu_s)")
            rm -rf "$WORK/ingest"
            start "$WORK/ingest" || return 1
            t0=$(cpu_ticks "$SERVER_PID")
            line=$("$SPANGEN" --spans "$INGEST_SPANS" --end-ns "$end_ns" --transport "$tr" --url "$(target "$tr")" \
                --concurrency "$CONC" --preencode --max-seconds 900 2>>"$WORK/spangen.err" | grep '^RESULT') ||
                note "$tr round $r: spangen failed: $(tail -n 3 "$WORK/spangen.err")"
            settle "$SERVER_PID"
            t1=$(cpu_ticks "$SERVER_PID")
            hwms+=("$(status_kb "$SERVER_PID" VmHWM)")
            halt "$SERVER_PID" 60; SERVER_PID=""
            note "$tr round $r/$ROUNDS: $line; server CPU $(( (t1 - t0) * 100 / HZ ))/100 s"
            rates+=("$(result_field "$line" items_per_sec)")
            cpus+=("$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {print t / hz}')")
            pcs+=("$(awk -v n="$(result_field "$line" items)" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {print (t > 0) ? n / (t / hz) : 0}')")
            p99s+=("$(result_field "$line" p99_ms)")
        done
        alldecs+=("${decs[@]}"); allcdecs+=("${cdecs[@]}")
        local rate pc dec_rate cdec_rate
        rate=$(median "${rates[@]}"); pc=$(median "${pcs[@]}"); dec_rate=$(median "${decs[@]}")
        cdec_rate=$(median "${cdecs[@]}")
        printf '%-10s %12.0f %10.2f %14.0f %11.2fx %13.2fx %10.1f %9d MiB %12.0f %14.0f\n' "$tr" "$rate" "$(median "${cpus[@]}")" \
            "$pc" "$(awk -v a="$rate" -v b="$dec_rate" 'BEGIN {print a / b}')" \
            "$(awk -v a="$pc" -v b="$cdec_rate" 'BEGIN {print a / b}')" "$(median "${p99s[@]}")" \
            "$(( $(printf '%s\n' "${hwms[@]}" | sort -n | tail -n 1) / 1024 ))" "$dec_rate" "$cdec_rate" >>"$REPORT"
    done
    echo "decode-only reference (protobuf-c unpack + free of the same requests, one thread, before each round): median $(printf '%.0f' "$(median "${alldecs[@]}")") spans/s of wall time, $(printf '%.0f' "$(median "${allcdecs[@]}")") per CPU second of the decoding thread; wall range $(printf '%s\n' "${alldecs[@]}" | sort -g | head -n 1 | xargs printf '%.0f')-$(printf '%s\n' "${alldecs[@]}" | sort -g | tail -n 1 | xargs printf '%.0f'), $(result_field "$dec" bytes_per_span) bytes/span" >>"$REPORT"
    echo "medians over the rounds; vs decode = end-to-end spans/s (wall, $CONC clients, $(nproc) cores) / decode-only spans/s (one core); per-core/dec = spans per server CPU second (every server thread, compaction until idle included) / decode-only spans per CPU second: the issue's ratio, core for core, which other load on the machine does not skew" >>"$REPORT"
}

# ---- stored spans and queries ----
query() {
    local d=$WORK/query stored=0 c line deadline base_ns slice_ns loaded_s=0 cpu=0 t0 t1
    base_ns=$(( ($(date +%s) - 6 * 3600 - 300) * 1000000000 ))
    local nslices=$(( (STORED + SLICE - 1) / SLICE ))
    slice_ns=$(( 6 * 3600 * 1000000000 / nslices ))
    start "$d" || return 1
    local rss0; rss0=$(status_kb "$SERVER_PID" VmRSS)
    {
        echo ""
        echo "query phase: up to $STORED spans (in slices of $SLICE over 6 h), loaded over gRPC by $CONC threads building requests on the fly, at most $LOAD_MIN minutes of loading"
        echo "RSS of the empty server: $((rss0 / 1024)) MiB"
        printf '%12s %10s %12s %10s %10s %10s %10s  %s\n' 'stored' 'RSS MiB' 'MiB/M spans' 'disk B/sp' 'id p50 ms' 'id p90' 'id p99' 'search p50 / p99 ms (traces)'
    } >>"$REPORT"
    deadline=$((SECONDS + LOAD_MIN * 60))
    local cps=",$CHECKPOINTS,"
    for ((c = 0; c < nslices; c++)); do
        local n=$(( STORED - stored < SLICE ? STORED - stored : SLICE ))
        t0=$(cpu_ticks "$SERVER_PID")
        line=$("$SPANGEN" --spans "$n" --first-trace $((stored / 10)) --span-s $((slice_ns / 1000000000)) \
            --end-ns $((base_ns + (c + 1) * slice_ns)) --transport grpc --url "127.0.0.1:$GRPC_PORT" \
            --concurrency "$CONC" --max-seconds 3600 2>>"$WORK/spangen.err" | grep '^RESULT') ||
            { note "slice $c: spangen failed: $(tail -n 3 "$WORK/spangen.err")"; break; }
        t1=$(cpu_ticks "$SERVER_PID")
        cpu=$((cpu + t1 - t0))
        stored=$((stored + $(result_field "$line" items)))
        loaded_s=$(awk -v a="$loaded_s" -v b="$(result_field "$line" elapsed_s)" 'BEGIN {print a + b}')
        note "slice $((c + 1))/$nslices: $line; $stored spans stored"
        if [ $((c + 1)) = "$nslices" ] || [ "$SECONDS" -ge "$deadline" ] || [[ $cps == *",$stored,"* ]]; then
            measure "$d" "$stored" "$base_ns" $((base_ns + (c + 1) * slice_ns)) || return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ] && [ $((c + 1)) -lt "$nslices" ]; then
            note "load time budget ($LOAD_MIN min) used up at $stored spans"
            echo "stopped at $stored spans: the $LOAD_MIN minute load budget was used up" >>"$REPORT"
            break
        fi
    done
    echo "load: $stored spans in $(printf '%.0f' "$loaded_s") s of sending = $(awk -v n="$stored" -v s="$loaded_s" 'BEGIN {printf "%.0f", n / s}') spans/s; server CPU $(awk -v t="$cpu" -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}') s = $(awk -v n="$stored" -v t="$cpu" -v hz="$HZ" 'BEGIN {printf "%.0f", n / (t / hz)}') spans per CPU second (the checkpoints' queries excluded)" >>"$REPORT"
    halt "$SERVER_PID" 120; SERVER_PID=""
}

# measure DIR STORED FROM_NS TO_NS: one row of the query table.
measure() {
    local ids=$WORK/ids.txt
    "$SPANGEN" --spans "$2" --print-ids 200 >"$ids"
    python3 - "$REPORT" "http://127.0.0.1:$HTTP_PORT" "$SERVER_PID" "$ids" "$2" "$3" "$4" "$REPS" \
        "$(dir_bytes "$1/traces")" <<'PY'
import http.client, json, math, statistics, sys, time, urllib.parse

report, url, pid, ids, stored, from_ns, to_ns, reps, disk = sys.argv[1:10]
pid, stored, reps, disk = int(pid), int(stored), int(reps), int(disk)
start_s, end_s = int(from_ns) // 10**9 - 60, int(to_ns) // 10**9 + 60
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)

def get(path):
    t0 = time.perf_counter()
    conn.request('GET', path)
    r = conn.getresponse()
    body = r.read()
    dt = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        raise SystemExit('%s: HTTP %d: %s' % (path, r.status, body[:300]))
    return dt, body

def status_kb(key):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0

def pct(v, p):
    v = sorted(v)
    return v[max(0, math.ceil(p * len(v)) - 1)]

trace_ids = open(ids).read().split()
get('/api/traces/' + trace_ids[0])  # warm-up
lat = []
for t in trace_ids:
    dt, body = get('/api/traces/' + t)
    n = body.count(b'"spanId"')
    if n != 10:
        raise SystemExit('trace %s: %d spans, want 10' % (t, n))
    lat.append(dt)

searches = [
    ('tags', {'tags': 'service.name=cart http.status_code=500'}),
    ('q', {'q': '{ resource.service.name = "cart" && span.http.status_code = 500 }'}),
    ('q dur', {'q': '{ name = "SELECT cart_items" && duration > 35ms }'}),
]
res = []
for name, args in searches:
    args = dict(args, limit='20', start=str(start_s), end=str(end_s))
    path = '/api/search?' + urllib.parse.urlencode(args)
    get(path)
    v, n = [], 0
    for _ in range(reps):
        dt, body = get(path)
        v.append(dt)
        n = len(json.loads(body)['traces'])
    res.append('%s %.1f / %.1f (%d)' % (name, statistics.median(v), pct(v, 0.99), n))

rss = status_kb('VmRSS')
row = '%12d %10.0f %12.1f %10.1f %10.2f %10.2f %10.2f  %s' % (
    stored, rss / 1024, rss / 1024 / (stored / 1e6), disk / stored, statistics.median(lat),
    pct(lat, 0.9), pct(lat, 0.99), '; '.join(res))
with open(report, 'a') as f:
    f.write(row + '\n')
print('[tbench] ' + row, file=sys.stderr)
PY
}

case ",$ONLY," in *,ingest,*) ingest || note "ingest failed; see above" ;; esac
case ",$ONLY," in *,query,*) query || note "query part failed; see above" ;; esac
cat "$REPORT"
note "report saved to $REPORT"
