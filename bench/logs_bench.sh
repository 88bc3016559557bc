#!/usr/bin/env bash
# bench/logs_bench.sh: the logs benchmark of the issue "Logs end to end" (Performance):
# ingestion rate over Loki push (JSON, snappy protobuf) and OTLP/HTTP logs with peak RSS,
# then filter and metric LogQL queries over a large dataset against grep and zstdcat|grep
# on the same raw text, and the compression of the stored data. One run, one machine.
#
#   bench/logs_bench.sh [--ingest-mb N] [--rounds R] [--dataset-mb N] [--span-h H]
#                       [--concurrency K] [--batch LINES] [--reps N] [--build-dir DIR]
#                       [--only ingest,query] [--keep] [--dataset-dir DIR]
#
# Data: bench/loggen's JSON nginx access lines (see the top of bench/loggen.c) in 4
# streams {job="nginx", instance="web-0".."web-3"}, about 265 bytes a line; thread k of
# --concurrency K (1, 2 or 4) sends the streams s with s % K == k.
#
# Ingest (--only ingest): for each of loki-json, loki-pb and otlp, --rounds (3) rounds,
# each on a fresh server: loggen sends --ingest-mb MiB of log text (100) in requests of
# --batch lines (1000) from --concurrency (4) keep-alive connections, every body encoded
# before the timed phase. Per format: median lines/s and MB/s of log text (10^6 bytes,
# line bytes without newline), the server's CPU seconds over the load (utime + stime from
# /proc/PID/stat), hence MB/s per core = text MB / CPU seconds (the issue's goal: >= 10),
# request p99 and the server's peak RSS (VmHWM).
#
# Query (--only query): --dataset-mb MiB (default 1024, i.e. 1 GiB of log text; the CI
# does not run benchmarks) over the last --span-h hours (4). loggen writes the raw text
# to raw.log, zstd -3 makes raw.log.zst, and the same lines go to a fresh server over
# Loki push (snappy protobuf). The server is then stopped gracefully (heads written as
# chunks) and the logs store is measured (du -sb of <data>/logs), then once more after
# bench/logstore_compact (deleted write-ahead records reclaimed by a LevelDB compaction,
# what a long-running server converges to); the goal: raw bytes / stored bytes >= 5. The
# server is restarted on the same data for the queries. --dataset-dir DIR keeps the
# dataset (raw text, store, the load's figures) in DIR, and a later run given the same DIR
# skips the generation and load and only queries it (e.g. to compare two builds). Then, after one untimed warm-up of each, --reps
# (5) repetitions, in each: every Vigil query and its reference, alternating:
#   filter, rare path    {job="nginx"} |= "/api/v1/rare-endpoint"   query_range, limit
#                        5000 (Loki's maximum; all ~10 per million lines match)
#                                                          vs grep -c, zstdcat | grep -c
#   filter, one id       {job="nginx"} |= "<request_id of the middle line>"  likewise
#   filter, common word  sum(count_over_time({job="nginx"} |= "Firefox" [<span>]))
#                        (every match counted; a log query returning 20% of 1 GB
#                        would time JSON encoding)    vs grep -c, zstdcat | grep -c
#                        and {job="nginx"} |= "Firefox" with limit 1000 (Grafana's)
#   metric               sum by (status) (count_over_time({job="nginx"} | json [1m]))
#                        query_range, step 60s over the span
#                        vs grep -o '"status":[0-9]*' raw.log | sort | uniq -c
# grep runs with LC_ALL=C (byte matching, its fastest mode). Reported: median and p90
# per command, Vigil/grep ratios of the medians (goal: filter queries within 2x of
# grep), and whether the counts agree (Vigil's match count = grep's; the metric query's
# per-status totals = the grep pipeline's). Also the median CPU time of each: the
# server's (utime + stime of all its threads over the request) or the command's (its
# children's rusage), and its ratio to grep's, which a loaded machine distorts less.
#
# The report goes to stdout and bench/out/logs-<time>.txt. Everything listens on
# 127.0.0.1; every wait is bounded and every process started here is stopped by its PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
INGEST_MB=100
ROUNDS=3
DATASET_MB=1024
SPAN_H=4
CONC=4
BATCH=1000
REPS=5
BUILD="$src/build"
ONLY="ingest,query"
KEEP=0
DSDIR=""
ARGS="$*"

while [ $# -gt 0 ]; do
    case "$1" in
    --ingest-mb) INGEST_MB=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --dataset-mb) DATASET_MB=$2; shift 2 ;;
    --span-h) SPAN_H=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --build-dir) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --dataset-dir) mkdir -p "$2"; DSDIR=$(cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,53p' "$0"; exit 0 ;;
    *) echo "logs_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

VIGIL="$BUILD/server/vigil"
LOGGEN="$BUILD/bench/loggen"
COMPACT="$BUILD/bench/logstore_compact"
export BENCH_TAG=lbench
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
require logs_bench.sh "$BUILD" "$VIGIL" "$LOGGEN" "$COMPACT" -- curl python3 zstd zstdcat grep du
workspace logs
SERVER_PID=""
HZ=$(getconf CLK_TCK)

cleanup() {
    [ -n "$SERVER_PID" ] && halt "$SERVER_PID" 60
    if [ "$KEEP" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


{
    echo "command: bench/logs_bench.sh $ARGS"
    echo "vigil: $("$VIGIL" version 2>/dev/null | head -n 1); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$REPORT"

# ---- ingestion ----
ingest() {
    local fmt path r line t0 t1
    {
        echo ""
        echo "ingestion: $INGEST_MB MiB of log text per round, $ROUNDS rounds per format (fresh server each), batches of $BATCH lines, $CONC connections, bodies encoded before the timed phase"
        printf '%-10s %12s %10s %10s %12s %10s %12s\n' format lines/s MB/s 'CPU s' 'MB/s/core' 'p99 ms' 'peak RSS'
    } >>"$REPORT"
    for fmt in loki-json loki-pb otlp; do
        case $fmt in otlp) path=/v1/logs ;; *) path=/loki/api/v1/push ;; esac
        local lps=() mbs=() cpus=() pcs=() p99s=() hwms=()
        for ((r = 1; r <= ROUNDS; r++)); do
            rm -rf "$WORK/ingest"
            start_vigil "$VIGIL" "$WORK/ingest" "$WORK/ingest.log" || { SERVER_PID=$STARTED_PID; return 1; }
            SERVER_PID=$STARTED_PID
            # the generator encodes first, then prints; CPU is read around the whole run,
            # during which the server only works on the load
            t0=$(cpu_ticks "$SERVER_PID")
            line=$("$LOGGEN" --mb "$INGEST_MB" --format "$fmt" --url "http://127.0.0.1:$STARTED_PORT$path" \
                --concurrency "$CONC" --batch "$BATCH" --preencode --max-seconds 900 2>>"$WORK/loggen.err" |
                grep '^RESULT') || { note "$fmt round $r: loggen failed: $(tail -n 3 "$WORK/loggen.err")"; }
            t1=$(cpu_ticks "$SERVER_PID")
            hwms+=("$(status_kb "$SERVER_PID" VmHWM)")
            halt "$SERVER_PID" 60; SERVER_PID=""
            note "$fmt round $r/$ROUNDS: $line; server CPU $(( (t1 - t0) * 100 / HZ ))/100 s"
            [ "$(result_field "$line" failed)" = 0 ] || { note "$fmt: refused requests: see above"; }
            lps+=("$(result_field "$line" items_per_sec)"); mbs+=("$(result_field "$line" mb_per_sec)")
            cpus+=("$(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {print t / hz}')")
            pcs+=("$(awk -v b="$(result_field "$line" bytes)" -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {print (t > 0) ? b / 1e6 / (t / hz) : 0}')")
            p99s+=("$(result_field "$line" p99_ms)")
        done
        printf '%-10s %12.0f %10.2f %10.2f %12.2f %10.1f %9.0f MiB\n' "$fmt" "$(median "${lps[@]}")" \
            "$(median "${mbs[@]}")" "$(median "${cpus[@]}")" "$(median "${pcs[@]}")" \
            "$(median "${p99s[@]}")" "$(( $(printf '%s\n' "${hwms[@]}" | sort -n | tail -n 1) / 1024 ))" >>"$REPORT"
    done
    echo "medians over the rounds; MB/s/core = log text MB / server CPU seconds; peak RSS = the highest VmHWM of the rounds" >>"$REPORT"
}

# ---- dataset and queries ----
query() {
    local d=${DSDIR:-$WORK/dataset} end_ns out line raw_bytes store_bytes zst_bytes t0 t1
    local lines needle_id load_hwm compacted
    mkdir -p "$d"
    if [ -f "$d/loaded.env" ]; then
        # shellcheck disable=SC1091
        . "$d/loaded.env"
        note "reusing the dataset in $d ($lines lines)"
    else
        end_ns=$(( ($(date +%s) / 60 * 60 - 120) * 1000000000 ))
        out=$("$LOGGEN" --mb "$DATASET_MB" --span-s $((SPAN_H * 3600)) --end-ns "$end_ns" --write-raw "$d/raw.log")
        lines=$(printf '%s\n' "$out" | sed -n 's/^LINES=//p'); needle_id=$(printf '%s\n' "$out" | sed -n 's/^NEEDLE_ID=//p')
        raw_bytes=$(stat -c %s "$d/raw.log")
        zstd -3 -q -T1 "$d/raw.log" -o "$d/raw.log.zst"
        zst_bytes=$(stat -c %s "$d/raw.log.zst")
        note "dataset: $lines lines, $raw_bytes bytes raw, $zst_bytes bytes as zstd -3"

        start_vigil "$VIGIL" "$d/vigil" "$d/vigil.log" || { SERVER_PID=$STARTED_PID; return 1; }
        SERVER_PID=$STARTED_PID
        t0=$(cpu_ticks "$SERVER_PID")
        line=$("$LOGGEN" --mb "$DATASET_MB" --span-s $((SPAN_H * 3600)) --end-ns "$end_ns" --format loki-pb \
            --url "http://127.0.0.1:$STARTED_PORT/loki/api/v1/push" --concurrency "$CONC" --batch "$BATCH" \
            --max-seconds 3600 2>>"$WORK/loggen.err" | grep '^RESULT') || note "dataset load failed: $(tail -n 3 "$WORK/loggen.err")"
        t1=$(cpu_ticks "$SERVER_PID")
        load_hwm=$(status_kb "$SERVER_PID" VmHWM)
        note "dataset loaded: $line; server CPU $(( (t1 - t0) / HZ )) s"
        halt "$SERVER_PID" 300; SERVER_PID=""
        store_bytes=$(dir_bytes "$d/vigil/logs")
        compacted=$("$COMPACT" "$d/vigil/logs" | sed -n 's/.*bytes_after=//p')
        declare -p end_ns lines needle_id raw_bytes zst_bytes line t0 t1 load_hwm store_bytes compacted >"$d/loaded.env"
    fi
    start_vigil "$VIGIL" "$d/vigil" "$d/vigil.log" || { SERVER_PID=$STARTED_PID; return 1; }
    SERVER_PID=$STARTED_PID
    {
        echo ""
        echo "dataset: $lines lines, $raw_bytes bytes of raw text ($DATASET_MB MiB of lines + newlines) over ${SPAN_H}h in 4 streams"
        echo "  loaded over Loki push (snappy protobuf, bodies built by the $CONC sending threads): $line"
        echo "  server CPU for the load $(awk -v t=$((t1 - t0)) -v hz="$HZ" 'BEGIN {printf "%.1f", t / hz}') s; peak RSS during the load $((load_hwm / 1024)) MiB"
        echo "  stored (du -sb logs/ after a graceful stop): $store_bytes bytes = raw / $(awk -v a="$raw_bytes" -v b="$store_bytes" 'BEGIN {printf "%.2f", a / b}')"
        echo "  stored after bench/logstore_compact (write-ahead records dropped, LevelDB compacted): $compacted bytes = raw / $(awk -v a="$raw_bytes" -v b="$compacted" 'BEGIN {printf "%.2f", a / b}')"
        echo "  zstd -3 of the whole file (reference): $zst_bytes bytes = raw / $(awk -v a="$raw_bytes" -v b="$zst_bytes" 'BEGIN {printf "%.2f", a / b}')"
    } >>"$REPORT"
    python3 - "$REPORT" "http://127.0.0.1:$STARTED_PORT" "$SERVER_PID" "$d/raw.log" "$end_ns" \
        "$((SPAN_H * 3600))" "$needle_id" "$REPS" <<'PY'
import json, statistics, subprocess, sys, time, urllib.parse, urllib.request, math, os, resource

report, url, pid, raw, end_ns, span, needle_id, reps = sys.argv[1:9]
end_ns, span, reps, pid = int(end_ns), int(span), int(reps), int(pid)
start_ns = end_ns - span * 1_000_000_000 - 60_000_000_000
stop_ns = end_ns + 60_000_000_000
env = dict(os.environ, LC_ALL='C')

def status_kb(key):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0

def server_ticks():
    with open('/proc/%d/stat' % pid) as f:
        v = f.read().rsplit(')', 1)[1].split()
    return int(v[11]) + int(v[12])

def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

def loki(path, form):
    data = urllib.parse.urlencode(form).encode()
    t0 = time.perf_counter()
    with urllib.request.urlopen(url + path, data, timeout=900) as r:
        body = r.read()
    return time.perf_counter() - t0, json.loads(body)

def log_count(doc):
    return sum(len(s['values']) for s in doc['data']['result'])

def vector_sum(doc):
    return sum(int(float(s['value'][1])) for s in doc['data']['result'])

def by_status(doc):
    out = {}
    for s in doc['data']['result']:
        out[s['metric'].get('status', '')] = sum(int(float(v)) for _, v in s['values'])
    return out

def shell(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(['bash', '-c', 'set -o pipefail; ' + cmd], capture_output=True, text=True, env=env)
    if p.returncode not in (0, 1):
        raise SystemExit('%s: exit %d: %s' % (cmd, p.returncode, p.stderr[:300]))
    return time.perf_counter() - t0, p.stdout

def grep_status(out):
    d = {}
    for line in out.splitlines():
        n, s = line.split()
        d[s.split(':')[1]] = int(n)
    return d

rng = '%ds' % (span + 120)
sel = '{job="nginx"}'
cases = []  # (name, kind, func -> (seconds, comparable answer))
for label, needle in (('rare path', '/api/v1/rare-endpoint'), ('one request id', needle_id)):
    q = '%s |= "%s"' % (sel, needle)
    cases.append(('filter %s' % label, 'vigil', q + ' (query_range, limit 5000)',
                  lambda q=q: (lambda r: (r[0], log_count(r[1])))(loki('/loki/api/v1/query_range',
                      {'query': q, 'start': start_ns, 'end': stop_ns, 'limit': 5000, 'direction': 'backward'}))))
    cases.append(('filter %s' % label, 'grep', 'grep -c -F %s raw.log' % needle,
                  lambda n=needle: (lambda r: (r[0], int(r[1])))(shell('grep -c -F -- %s %s' % (n, raw)))))
    cases.append(('filter %s' % label, 'zstdcat|grep', 'zstdcat raw.log.zst | grep -c -F %s' % needle,
                  lambda n=needle: (lambda r: (r[0], int(r[1])))(shell('zstdcat %s.zst | grep -c -F -- %s' % (raw, n)))))
q = 'sum(count_over_time(%s |= "Firefox" [%s]))' % (sel, rng)
cases.append(('filter common word', 'vigil', q + ' (instant)',
              lambda: (lambda r: (r[0], vector_sum(r[1])))(loki('/loki/api/v1/query',
                  {'query': q, 'time': stop_ns}))))
cases.append(('filter common word', 'vigil limit 1000', sel + ' |= "Firefox" (query_range, limit 1000)',
              lambda: (lambda r: (r[0], None))(loki('/loki/api/v1/query_range',
                  {'query': sel + ' |= "Firefox"', 'start': start_ns, 'end': stop_ns, 'limit': 1000, 'direction': 'backward'}))))
cases.append(('filter common word', 'grep', 'grep -c -F Firefox raw.log',
              lambda: (lambda r: (r[0], int(r[1])))(shell('grep -c -F Firefox %s' % raw))))
cases.append(('filter common word', 'zstdcat|grep', 'zstdcat raw.log.zst | grep -c -F Firefox',
              lambda: (lambda r: (r[0], int(r[1])))(shell('zstdcat %s.zst | grep -c -F Firefox' % raw))))
mq = 'sum by (status) (count_over_time(%s | json [1m]))' % sel
cases.append(('metric by status', 'vigil', mq + ' (query_range, step 60s)',
              lambda: (lambda r: (r[0], by_status(r[1])))(loki('/loki/api/v1/query_range',
                  {'query': mq, 'start': start_ns, 'end': stop_ns, 'step': '60s'}))))
cases.append(('metric by status', 'grep', "grep -o '\"status\":[0-9]*' raw.log | sort | uniq -c",
              lambda: (lambda r: (r[0], grep_status(r[1])))(shell("grep -o '\"status\":[0-9]*' %s | sort | uniq -c" % raw))))

hz = os.sysconf('SC_CLK_TCK')
times, cpus, answers = {}, {}, {}
for rep in range(-1, reps):
    order = cases if rep % 2 == 0 else cases[::-1]
    for c in order:
        t0, c0 = server_ticks(), children_cpu()
        dt, ans = c[3]()
        cpu = (server_ticks() - t0) / hz if c[1].startswith('vigil') else children_cpu() - c0
        if rep >= 0:
            times.setdefault((c[0], c[1]), []).append(dt * 1000)
            cpus.setdefault((c[0], c[1]), []).append(cpu * 1000)
        answers[(c[0], c[1])] = ans
    print('[lbench] query repetition %d/%d done' % (rep + 1, reps), file=sys.stderr)

def p90(v):
    v = sorted(v)
    return v[max(0, math.ceil(0.9 * len(v)) - 1)]

lines = ['', 'queries: %d repetitions after one warm-up, medians (p90) in ms; ratio = this / grep -c over raw.log' % reps,
         '(CPU ms: the server\'s CPU time over the request, or the command\'s; wall-clock ratios depend on the machine\'s load, CPU ones less)',
         '%-22s %-17s %10s %10s %8s %8s %9s  %-12s %s' % ('case', 'command', 'p50 ms', 'p90 ms', 'ratio', 'CPU ms', 'CPU ratio', 'answer', 'what')]
for c in cases:
    key = (c[0], c[1])
    med = statistics.median(times[key])
    g = statistics.median(times[(c[0], 'grep')])
    cpu, gcpu = statistics.median(cpus[key]), statistics.median(cpus[(c[0], 'grep')])
    ans = answers[key]
    ref = answers[(c[0], 'grep')]
    if ans is None:
        agree = '-'
    elif isinstance(ans, dict):
        agree = 'same' if ans == ref else 'DIFFERS'
    else:
        agree = str(ans) + ('' if c[1] == 'grep' else (' ok' if ans == ref else ' DIFFERS'))
    lines.append('%-22s %-17s %10.1f %10.1f %7.2fx %8.0f %8.2fx  %-12s %s' % (c[0], c[1], med, p90(times[key]), med / g,
                 cpu, cpu / gcpu if gcpu > 0 else 0, agree, c[2]))
lines.append('metric answer (lines by status): %s' % json.dumps(answers[('metric by status', 'grep')], sort_keys=True))
lines.append('vigil RSS after the queries %d MiB (%d MiB anonymous, the rest mapped LevelDB files), VmHWM since the restart %d MiB'
             % (status_kb('VmRSS') // 1024, status_kb('RssAnon') // 1024, status_kb('VmHWM') // 1024))
with open(report, 'a') as f:
    f.write('\n'.join(lines) + '\n')
PY
    halt "$SERVER_PID" 120; SERVER_PID=""
}

case ",$ONLY," in *,ingest,*) ingest || note "ingest failed; see above" ;; esac
case ",$ONLY," in *,query,*) query || note "query part failed; see above" ;; esac
cat "$REPORT"
note "report saved to $REPORT"
