#!/usr/bin/env bash
# bench/query_bench.sh: PromQL query latency and memory, Vigil against Prometheus 2.42
# (Debian's package), on the same data, in one run.
#
#   bench/query_bench.sh [--series N] [--hours H] [--interval MS] [--reps N]
#                        [--batch N] [--concurrency K] [--build-dir DIR] [--keep]
#
# Data: bench/rwgen's series (the foundation benchmark's label sets: per host 40
# http_requests_total counters by method/status/path, 40 http_request_duration_seconds_bucket
# counters forming 4 histograms of 10 `le` buckets (rwgen --cumulative-buckets), 10
# node_cpu_seconds_total, 10 gauges; 50,000 series by default), one sample per series every --interval ms (15 s) for the last --hours hours
# (24), ending on a whole minute about a minute ago. Both servers run at the same time on
# loopback with empty data dirs; the history goes to each in one-hour rwgen rounds (every
# series in time order, so Prometheus never sees a sample older than its head allows;
# counters continue across rounds with --step-offset).
#
# Then, before any query is timed:
#   - both must answer count({__name__=~".+"}) == N at the end time and hold every sample
#     of host-00000 over the whole window (bounded wait);
#   - Prometheus must have compacted its head down to at most 3 h (its steady state after
#     a day: 2 h blocks on disk plus a head), and both processes must be idle (< 10% of a
#     core over 5 s); both waits bounded.
#
# Queries (the PromQL text is in QUERIES below), each once untimed per server as a warm-up,
# then --reps times (21) per server, servers alternating within each repetition, one
# keep-alive HTTP connection per server, form-encoded POST as Grafana sends them. A
# latency is from the request's first byte sent to the response's last byte read.
# Reported per query and server: median and p90 latency, Vigil/Prometheus ratio of the
# medians, peak RSS while that query ran (VmRSS sampled every 10 ms), response size, and
# whether the two answers agree (same series, same timestamps, values within 1e-9
# relative). Per server: RSS before the query phase and VmHWM over the query phase (reset
# through /proc/PID/clear_refs when the kernel allows it). The report goes to stdout and
# bench/out/query-<time>.txt; --keep also keeps the data dirs and logs (path printed).
# Everything listens on 127.0.0.1; every wait is bounded and every process started here
# is stopped by its PID.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
SERIES=50000
HOURS=24
INTERVAL=15000
REPS=21
BATCH=1000
CONC=4
BUILD="$src/build"
KEEP=0
ARGS="$*"

while [ $# -gt 0 ]; do
    case "$1" in
    --series) SERIES=$2; shift 2 ;;
    --hours) HOURS=$2; shift 2 ;;
    --interval) INTERVAL=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --batch) BATCH=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --build-dir) BUILD=$(cd "$2" && pwd); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "query_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ $((3600000 % INTERVAL)) -eq 0 ] || { echo "query_bench.sh: --interval must divide one hour" >&2; exit 2; }
if [ "$HOURS" -lt 1 ] || [ "$REPS" -lt 1 ]; then
    echo "query_bench.sh: --hours and --reps must be >= 1" >&2; exit 2
fi

VIGIL="$BUILD/server/vigil"
RWGEN="$BUILD/bench/rwgen"
export BENCH_TAG=qbench
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
require query_bench.sh "$BUILD" "$VIGIL" "$RWGEN" -- curl python3 prometheus
workspace query
VIGIL_PID=""
PROM_PID=""

cleanup() {
    [ -n "$VIGIL_PID" ] && halt "$VIGIL_PID" 30
    [ -n "$PROM_PID" ] && halt "$PROM_PID" 30
    if [ "$KEEP" = 1 ]; then note "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SPR=$((3600000 / INTERVAL))                               # samples per series per round
END=$(( ($(date +%s) / 60 * 60 - 60) * 1000 ))            # last sample, ms
START=$((END - HOURS * 3600000 + INTERVAL))               # first sample, ms
HOST0=$((SERIES < 100 ? SERIES : 100))                    # series of host-00000

start_vigil "$VIGIL" "$WORK/vigil" "$WORK/vigil.log" || { VIGIL_PID=$STARTED_PID; exit 1; }
VIGIL_PID=$STARTED_PID; VURL="http://127.0.0.1:$STARTED_PORT"
note "$("$VIGIL" version 2>/dev/null | head -n 1) on $VURL, pid $VIGIL_PID"
printf 'global:\n  scrape_interval: 1m\n' >"$WORK/prometheus.yml"
start_prometheus "$WORK/prometheus" "$WORK/prometheus.yml" "$WORK/prometheus.log" ||
    { PROM_PID=$STARTED_PID; exit 1; }
PROM_PID=$STARTED_PID; PURL="http://127.0.0.1:$STARTED_PORT"
note "$(prometheus --version 2>&1 | head -n 1) on $PURL, pid $PROM_PID"

# load NAME URL: every hour of history, oldest first.
load() {
    local r line
    for ((r = 0; r < HOURS; r++)); do
        line=$("$RWGEN" --url "$2/api/v1/write" --series "$SERIES" --samples "$SPR" \
            --batch "$BATCH" --concurrency "$CONC" --interval "$INTERVAL" --cumulative-buckets \
            --start $((START + r * 3600000)) --step-offset $((r * SPR)) --max-seconds 900 --quiet | grep '^RESULT') ||
            { note "$1 hour $((r + 1)): rwgen reported failures: $line"; return 1; }
        if [ $(((r + 1) % 6)) = 0 ] || [ $((r + 1)) = "$HOURS" ]; then
            note "$1 hour $((r + 1))/$HOURS: $line"
        fi
    done
}

# scalar URL QUERY: the value of an instant query at END that yields one sample, or "".
scalar() {
    curl -s --max-time 120 "$1/api/v1/query" --data-urlencode "query=$2" \
        --data-urlencode "time=$((END / 1000))" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if r else "")' 2>/dev/null || true
}

# has_data NAME URL: bounded wait until the server holds every series and every sample
# of host-00000.
has_data() {
    local i n m want=$((HOST0 * HOURS * SPR))
    for ((i = 0; i < 60; i++)); do
        n=$(scalar "$2" 'count({__name__=~".+"})')
        m=$(scalar "$2" "sum(count_over_time({instance=\"host-00000:9100\"}[${HOURS}h]))")
        [ "$n" = "$SERIES" ] && [ "$m" = "$want" ] && { note "$1 has $n series, host-00000 $m samples"; return 0; }
        sleep 2
    done
    note "$1: $n series (want $SERIES), host-00000 $m samples (want $want)"
    return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# settle: bounded wait until Prometheus's head spans <= 3 h and both processes are idle.
settle() {
    local i a b c d span
    for ((i = 0; i < 180; i++)); do
        span=$(curl -s --max-time 10 "$PURL/metrics" | awk '
            $1 == "prometheus_tsdb_head_max_time" {mx = $2} $1 == "prometheus_tsdb_head_min_time" {mn = $2}
            END {printf "%d", (mx - mn) / 1000}')
        a=$(cpu_ticks "$VIGIL_PID"); b=$(cpu_ticks "$PROM_PID")
        sleep 5
        c=$(cpu_ticks "$VIGIL_PID"); d=$(cpu_ticks "$PROM_PID")
        if [ "$span" -le 10800 ] && [ $((c - a)) -lt 50 ] && [ $((d - b)) -lt 50 ]; then
            note "settled: Prometheus head spans ${span}s; idle"
            return 0
        fi
    done
    note "not settled after 15 min (Prometheus head span ${span}s); measuring anyway"
}

note "data: $SERIES series, one sample per ${INTERVAL}ms for ${HOURS}h = $((SERIES * HOURS * SPR)) samples per server"
load vigil "$VURL"
load prometheus "$PURL"
has_data vigil "$VURL"
has_data prometheus "$PURL"
settle

# ---- the query phase ----
python3 - "$REPORT" "$END" "$HOURS" "$INTERVAL" "$REPS" \
    "vigil=$VURL=$VIGIL_PID" "prometheus=$PURL=$PROM_PID" <<'PY'
import http.client, json, math, statistics, sys, threading, time, urllib.parse

report, end_ms, hours, interval, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
servers = []
for a in sys.argv[6:]:
    name, url, pid = a.split('=')
    u = urllib.parse.urlsplit(url)
    servers.append({'name': name, 'host': u.hostname, 'port': u.port, 'pid': int(pid)})
end = end_ms / 1000
H = 3600

# name, kind, query, range in seconds, step in seconds
QUERIES = [
    ('rate_sum_1h', 'range', 'sum by (job) (rate(http_requests_total[5m]))', H, 15),
    ('rate_sum_%dh' % hours, 'range', 'sum by (job) (rate(http_requests_total[5m]))', hours * H, 60),
    ('rate_sum_instant', 'instant', 'sum by (job) (rate(http_requests_total[5m]))', 0, 0),
    ('hist_quantile_1h', 'range',
     'histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))', H, 15),
    ('hist_quantile_instant', 'instant',
     'histogram_quantile(0.9, sum by (job, le) (rate(http_request_duration_seconds_bucket[5m])))', 0, 0),
    ('regex_series_instant', 'instant',
     'http_requests_total{instance=~"host-000[0-4][0-9]:9100", status=~"5.."}', 0, 0),
    ('regex_rate_1h', 'range',
     'sum by (path) (rate({__name__=~"http_.*", path=~"/api/v1/(users|orders)"}[5m]))', H, 15),
]

def status_kb(pid, key):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0

class Sampler(threading.Thread):
    """Peak VmRSS of the process being queried, per (query, server)."""
    def __init__(self):
        super().__init__(daemon=True)
        self.key, self.pid, self.peak, self.stop = None, None, {}, False
    def run(self):
        while not self.stop:
            key, pid = self.key, self.pid
            if pid:
                kb = status_kb(pid, 'VmRSS')
                if kb > self.peak.get(key, 0):
                    self.peak[key] = kb
            time.sleep(0.01)

def ask(conn, q):
    form = {'query': q[2]}
    if q[1] == 'range':
        form.update(start='%.3f' % (end - q[3]), end='%.3f' % end, step=str(q[4]))
        path = '/api/v1/query_range'
    else:
        form['time'] = '%.3f' % end
        path = '/api/v1/query'
    body = urllib.parse.urlencode(form)
    t0 = time.perf_counter()
    conn.request('POST', path, body, {'Content-Type': 'application/x-www-form-urlencoded'})
    r = conn.getresponse()
    data = r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise SystemExit('%s: HTTP %d: %s' % (q[0], r.status, data[:300]))
    return dt, data

def normalise(data):
    d = json.loads(data)['data']
    out = {}
    for s in d['result']:
        key = tuple(sorted(s['metric'].items()))
        pts = s['values'] if 'values' in s else [s['value']]
        out[key] = [(float(t), float(v)) for t, v in pts]
    return out

def same(a, b):
    if a.keys() != b.keys():
        return 'series differ: %d vs %d' % (len(a), len(b))
    bad, first = 0, ''
    for k in a:
        pa, pb = dict(a[k]), dict(b[k])
        diff = sorted(t for t in pa.keys() | pb.keys() if t not in pa or t not in pb or not (
            pa[t] == pb[t] or (math.isnan(pa[t]) and math.isnan(pb[t])) or
            math.isclose(pa[t], pb[t], rel_tol=1e-9, abs_tol=1e-12)))
        if diff:
            bad += 1
            t = diff[0]
            first = first or ' (first: %s at %.3f: %s vs %s)' % (
                dict(k), t, pa.get(t, 'none'), pb.get(t, 'none'))
    return 'yes (%d series)' % len(a) if not bad else '%d of %d series differ%s' % (bad, len(a), first)

conns = {s['name']: http.client.HTTPConnection(s['host'], s['port'], timeout=150) for s in servers}
rss_before = {s['name']: status_kb(s['pid'], 'VmRSS') for s in servers}
hwm_reset = {}
for s in servers:
    try:
        with open('/proc/%d/clear_refs' % s['pid'], 'w') as f:
            f.write('5')
        hwm_reset[s['name']] = True
    except OSError:
        hwm_reset[s['name']] = False
sampler = Sampler()
sampler.start()
times, last = {}, {}
t_phase = time.time()
for rep in range(-1, reps):  # -1 is the untimed warm-up
    order = servers if rep % 2 == 0 else servers[::-1]
    for q in QUERIES:
        for s in order:
            sampler.key, sampler.pid = (q[0], s['name']), s['pid']
            dt, data = ask(conns[s['name']], q)
            if rep >= 0:
                times.setdefault((q[0], s['name']), []).append(dt * 1000)
            last[(q[0], s['name'])] = data
            sampler.pid = None
            key = (q[0], s['name'])  # a query shorter than the sampling period
            sampler.peak[key] = max(sampler.peak.get(key, 0), status_kb(s['pid'], 'VmRSS'))
    print('[qbench] repetition %d/%d done' % (rep + 1, reps), file=sys.stderr)
sampler.stop = True
hwm = {s['name']: status_kb(s['pid'], 'VmHWM') for s in servers}

def p90(v):
    v = sorted(v)
    return v[max(0, math.ceil(0.9 * len(v)) - 1)]

names = [s['name'] for s in servers]
lines = []
lines.append('query phase: %d repetitions after one warm-up, %.0f s; end time %d (%s UTC)' % (
    reps, time.time() - t_phase, end, time.strftime('%Y-%m-%d %H:%M', time.gmtime(end))))
hdr = '%-22s %-7s' % ('query', 'kind') + ''.join(
    '%11s %9s' % (n[:5] + ' p50', 'p90') for n in names) + '%10s' % 'v/p p50' + ''.join(
    '%12s' % (n[:5] + ' RSS') for n in names) + '%10s  %s' % ('KiB resp', 'same answer')
lines.append(hdr)
ratios = []
for q in QUERIES:
    row = '%-22s %-7s' % (q[0], q[1])
    med = {}
    for n in names:
        v = times[(q[0], n)]
        med[n] = statistics.median(v)
        row += '%8.1f ms %6.1f ms' % (med[n], p90(v))
    ratio = med['vigil'] / med['prometheus']
    ratios.append(ratio)
    row += '%9.2fx' % ratio
    for n in names:
        row += '%8.1f MiB' % (sampler.peak.get((q[0], n), 0) / 1024)
    row += '%10.0f  %s' % (len(last[(q[0], 'vigil')]) / 1024,
                           same(normalise(last[(q[0], 'vigil')]), normalise(last[(q[0], 'prometheus')])))
    lines.append(row)
lines.append('')
for n in names:
    lines.append('%-11s RSS before queries %7.1f MiB; peak RSS during the query phase %7.1f MiB (%s)' % (
        n, rss_before[n] / 1024, hwm[n] / 1024,
        'VmHWM reset at its start' if hwm_reset[n] else 'VmHWM since start: clear_refs refused'))
lines.append('')
lines.append('queries:')
for q in QUERIES:
    extra = ' over %dh, step %ds' % (q[3] // H, q[4]) if q[1] == 'range' else ' at the end time'
    lines.append('  %-22s %s%s' % (q[0], q[2], extra))
lines.append('ratio = Vigil median / Prometheus median (below 1: Vigil faster); RSS = peak VmRSS while the query ran.')
with open(report, 'a') as f:
    f.write('\n'.join(lines) + '\n')
PY
{
    echo "command: bench/query_bench.sh $ARGS"
    echo "vigil: $("$VIGIL" version 2>/dev/null | head -n 1); $(prometheus --version 2>&1 | head -n 1)"
    echo "data: $SERIES series x $((HOURS * SPR)) samples (${HOURS}h at ${INTERVAL}ms) = $((SERIES * HOURS * SPR)) samples per server"
    echo "data dirs after the run: vigil $(($(dir_bytes "$WORK/vigil") / 1048576)) MiB, prometheus $(($(dir_bytes "$WORK/prometheus") / 1048576)) MiB"
    cat "$REPORT"
} >"$REPORT.tmp" && mv "$REPORT.tmp" "$REPORT"
cat "$REPORT"
note "report saved to $REPORT"
