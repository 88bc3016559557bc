#!/usr/bin/env bash
# scrape_bench.sh: Vigil and Debian's Prometheus scraping the same targets in the same
# run, side by side: CPU seconds and memory (RSS) of each.
#
#   bash bench/scrape_bench.sh [--targets N] [--series M] [--interval 15s]
#                              [--warmup S] [--duration S] [--build-dir DIR]
#
# bench/scrapetarget serves N targets of M generated counter series on one loopback port
# (GET /metrics?id=K); both servers get the same scrape_configs: one job whose N static
# targets differ by the id param and the instance label. After both have scraped every
# target (count(up) == N) and a warm-up of S seconds (default 2 intervals), CPU ticks of
# each process are read at the start and the end of the measured window (--duration,
# default 240 s) and VmRSS sampled every 5 s; VmHWM is read at the end. Then both must
# hold N*M scraped samples in their newest scrape (sum(scrape_samples_scraped)). The
# report is printed and saved as bench/out/scrape-<time>.txt. Every process this script
# starts is stopped by its PID.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
BENCH_TAG=scrape

targets=1000 series=1000 interval=15s warmup="" duration=240 build="$here/../build"
while [ $# -gt 0 ]; do
    case $1 in
        --targets) targets=$2; shift 2 ;;
        --series) series=$2; shift 2 ;;
        --interval) interval=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --build-dir) build=$2; shift 2 ;;
        *) echo "usage: $0 [--targets N] [--series M] [--interval 15s] [--warmup S] [--duration S] [--build-dir DIR]" >&2; exit 2 ;;
    esac
done
ivs=${interval%s}
[ -n "$warmup" ] || warmup=$((ivs * 2))
vigil_bin="$build/server/vigil"
target_bin="$build/bench/scrapetarget"
[ -x "$vigil_bin" ] && [ -x "$target_bin" ] || { echo "build $vigil_bin and $target_bin first" >&2; exit 1; }
command -v prometheus >/dev/null || { echo "Debian's prometheus is needed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-scrape-bench.XXXXXX")
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do halt "$p" 20; done
    rm -rf "$work"
}
trap cleanup EXIT

tport=$(port)
"$target_bin" --port "$tport" --targets "$targets" --series "$series" --threads 4 \
    >"$work/target.log" 2>&1 &
pids+=($!)
ready "http://127.0.0.1:$tport/metrics?id=0" "${pids[-1]}" || { echo "scrapetarget did not start" >&2; exit 1; }

scrape_configs() {
    printf 'global:\n  scrape_interval: %s\nscrape_configs:\n' "$interval"
    printf '  - job_name: bench\n    static_configs:\n'
    local k
    for ((k = 0; k < targets; k++)); do
        printf "      - targets: ['127.0.0.1:%s']\n        labels: {__param_id: '%d', instance: 't-%d'}\n" \
            "$tport" "$k" "$k"
    done
}
vport=$(port); gport=$(port); pport=$(port)
{ printf 'server:\n  http_addr: 127.0.0.1:%s\n  grpc_addr: 127.0.0.1:%s\nstorage:\n  data_dir: %s\n' \
    "$vport" "$gport" "$work/vigil-data"; scrape_configs; } >"$work/vigil.yml"
scrape_configs >"$work/prometheus.yml"

"$vigil_bin" serve --config "$work/vigil.yml" --log-level warn >"$work/vigil.log" 2>&1 &
vpid=$!; pids+=($vpid)
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom-data" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$work/prom.log" 2>&1 &
ppid=$!; pids+=($ppid)
ready "http://127.0.0.1:$vport/-/ready" "$vpid" || { tail "$work/vigil.log" >&2; exit 1; }
ready "http://127.0.0.1:$pport/-/ready" "$ppid" || { tail "$work/prom.log" >&2; exit 1; }
V="http://127.0.0.1:$vport" P="http://127.0.0.1:$pport"

q() { curl -s --max-time 60 -G "$1/api/v1/query" --data-urlencode "query=$2" | jq -r '.data.result[0].value[1] // 0'; }
note "waiting until both scrape all $targets targets"
for ((i = 0; i < 120; i++)); do
    [ "$(q "$V" 'count(up)')" = "$targets" ] && [ "$(q "$P" 'count(up)')" = "$targets" ] && break
    sleep 2
done
note "warm-up ${warmup}s"
sleep "$warmup"

tck=$(getconf CLK_TCK)
v0=$(cpu_ticks "$vpid"); p0=$(cpu_ticks "$ppid"); t0=$SECONDS
vmax=0 pmax=0
note "measuring ${duration}s"
while [ $((SECONDS - t0)) -lt "$duration" ]; do
    v=$(status_kb "$vpid" VmRSS); p=$(status_kb "$ppid" VmRSS)
    [ "$v" -gt "$vmax" ] && vmax=$v
    [ "$p" -gt "$pmax" ] && pmax=$p
    sleep 5
done
v1=$(cpu_ticks "$vpid"); p1=$(cpu_ticks "$ppid"); el=$((SECONDS - t0))
vhwm=$(status_kb "$vpid" VmHWM); phwm=$(status_kb "$ppid" VmHWM)
vs=$(q "$V" 'sum(scrape_samples_scraped)'); ps=$(q "$P" 'sum(scrape_samples_scraped)')
vu=$(q "$V" 'sum(up)'); pu=$(q "$P" 'sum(up)')

report=$(
    printf 'scrape_bench %s: %d targets x %d series every %s, measured %d s after %d s warm-up\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$targets" "$series" "$interval" "$el" "$warmup"
    printf 'host: %s cores, load %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '%-12s %12s %10s %14s %14s %12s %16s\n' server "cpu_s" "cpu_%" "peak_rss_MiB" \
        "hwm_MiB" "targets_up" "samples_scraped"
    awk -v n=Vigil -v t=$((v1 - v0)) -v k="$tck" -v e="$el" -v r="$vmax" -v h="$vhwm" -v u="$vu" -v s="$vs" \
        'BEGIN {printf "%-12s %12.1f %10.1f %14.0f %14.0f %12s %16s\n", n, t/k, 100*t/k/e, r/1024, h/1024, u, s}'
    awk -v n=Prometheus -v t=$((p1 - p0)) -v k="$tck" -v e="$el" -v r="$pmax" -v h="$phwm" -v u="$pu" -v s="$ps" \
        'BEGIN {printf "%-12s %12.1f %10.1f %14.0f %14.0f %12s %16s\n", n, t/k, 100*t/k/e, r/1024, h/1024, u, s}'
    awk -v a=$((v1 - v0)) -v b=$((p1 - p0)) -v c="$vmax" -v d="$pmax" \
        'BEGIN {printf "Vigil/Prometheus: cpu %.2fx, peak rss %.2fx\n", (b ? a/b : 0), (d ? c/d : 0)}'
)
printf '%s\n' "$report"
mkdir -p "$here/out"
printf '%s\n' "$report" >"$here/out/scrape-$(date +%Y%m%d-%H%M%S).txt"
