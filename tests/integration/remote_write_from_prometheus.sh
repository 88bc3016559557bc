#!/usr/bin/env bash
# A user points a real Prometheus (Debian's 2.42) at Vigil with remote_write. Prometheus
# scrapes two targets every second: a static exposition served by python3's http.server
# and Vigil's own /metrics. After a few scrapes Prometheus is stopped (it flushes its
# queue), then started again without scraping to ask its API for every sample it stored.
# Vigil must hold exactly the same series and samples: checked through /api/v1/series,
# /api/v1/labels, /api/v1/label/<n>/values and `vigil tsdb dump`.
source "$(dirname "$0")/lib.sh"
need_cmd prometheus

vigil_start

# Prometheus sends metadata in requests of their own, without any series.
printf '[{"metadata": [1, "demo_requests_total", "Requests served.", ""]}]' >"$T/md.json"
samples rw "$T/md.json" >"$T/md.rw"
code=$(http_req "$T/md.out" "$VIGIL_URL/api/v1/write" -H 'Content-Type: application/x-protobuf' \
    -H 'Content-Encoding: snappy' -H 'X-Prometheus-Remote-Write-Version: 0.1.0' --data-binary @"$T/md.rw")
check_eq "a remote write holding only metadata is accepted" 204 "$code"
vigil_alive || die "vigil survives a metadata-only remote write (as Prometheus sends every send_interval)"

# The static target: a counter, a gauge, a histogram and a label value that needs escaping.
mkdir -p "$T/www"
cat >"$T/www/metrics" <<'EOF'
# HELP demo_requests_total Requests served.
# TYPE demo_requests_total counter
demo_requests_total{method="GET",code="200"} 1027
demo_requests_total{method="POST",code="500"} 3
# HELP demo_temperature_celsius Room temperature.
# TYPE demo_temperature_celsius gauge
demo_temperature_celsius{room="lab \"A\"",floor="1"} 21.5
# HELP demo_latency_seconds Request latency.
# TYPE demo_latency_seconds histogram
demo_latency_seconds_bucket{le="0.1"} 8
demo_latency_seconds_bucket{le="0.5"} 11
demo_latency_seconds_bucket{le="+Inf"} 12
demo_latency_seconds_sum 2.75
demo_latency_seconds_count 12
EOF
WWW_PORT=$(free_port)
start_bg www python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$WWW_PORT"
wait_until 10 curl -sf "http://127.0.0.1:$WWW_PORT/metrics" || die "static target serves /metrics"

cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: demo
    static_configs:
      - targets: ['127.0.0.1:$WWW_PORT']
  - job_name: vigil
    static_configs:
      - targets: ['127.0.0.1:$VIGIL_HTTP_PORT']
remote_write:
  - url: $VIGIL_URL/api/v1/write
    remote_timeout: 10s
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 200
      min_backoff: 100ms
      max_backoff: 1s
    metadata_config:
      send_interval: 2s
EOF
cat >"$T/prometheus-query.yml" <<EOF
global:
  scrape_interval: 1m
EOF

prom_start "$T/prometheus.yml"

# Let Prometheus scrape about six times, then wait until Vigil has the demo series.
sleep 6
wait_until 30 test "$(series_count '{job="demo",__name__="demo_requests_total"}')" = 2 ||
    fail "demo_requests_total reached Vigil within 30 s"
sleep 2
stop_pid "$PROM_PID" 60
log "prometheus stopped; restarting it without scrapes or remote write to read what it stored"
prom_start "$T/prometheus-query.yml"

# Everything Prometheus stored, raw samples over the last 10 minutes (evaluated a little
# ahead: `date +%s` truncates, and the last scrape may lie in the current second).
NOW=$(( $(date +%s) + 2 ))
curl -s --max-time 30 -G "$PROM_URL/api/v1/query" --data-urlencode 'query={__name__=~".+"}[10m]' \
    --data-urlencode "time=$NOW" >"$T/prom.json"
samples prom "$T/prom.json" >"$T/prom.txt"
check_ge "Prometheus stored samples" 50 "$(wc -l <"$T/prom.txt")"
samples series "$T/prom.txt" >"$T/prom-series.txt"

# Series API: the same series per job.
for job in demo vigil; do
    want=$(curl -s -G "$PROM_URL/api/v1/series" --data-urlencode "match[]={job=\"$job\"}" | jq '.data | length')
    got=$(series_count "{job=\"$job\"}")
    check_eq "series of job $job in /api/v1/series equal Prometheus's" "$want" "$got"
done
got=$(vigil_get /api/v1/series -G --data-urlencode 'match[]=demo_temperature_celsius' |
    jq -r '.data[0].room // empty')
check_eq "label value with quotes round-trips through the series API" 'lab "A"' "$got"
got=$(vigil_get /api/v1/series --data-urlencode 'match[]=demo_latency_seconds_bucket' | jq '.data | length')
check_eq "POST /api/v1/series (form body) finds the 3 histogram buckets" 3 "$got"

labels=$(vigil_get /api/v1/labels | jq -r '.data[]?' | tr '\n' ' ')
for l in __name__ job instance method code room floor le; do
    check_contains "/api/v1/labels lists $l" " $labels" " $l "
done
jobs=$(vigil_get /api/v1/label/job/values | jq -r '.data[]?' | tr '\n' ' ')
check_contains "/api/v1/label/job/values lists demo" " $jobs" " demo "
check_contains "/api/v1/label/job/values lists vigil" " $jobs" " vigil "

# Metadata sent by Prometheus (every 2 s) arrives in /api/v1/metadata.
md=$(vigil_get /api/v1/metadata -G --data-urlencode 'metric=demo_requests_total')
check_eq "metadata of demo_requests_total has type counter" counter \
    "$(printf '%s' "$md" | jq -r '.data.demo_requests_total[0].type // empty' 2>/dev/null)"
check_eq "metadata of demo_requests_total keeps its help" "Requests served." \
    "$(printf '%s' "$md" | jq -r '.data.demo_requests_total[0].help // empty' 2>/dev/null)"

# Vigil counts what it accepted (checked below against the samples compared).
accepted=$(vigil_get /metrics | awk '/^vigil_ingest_samples_accepted_total\{[^}]*receiver="remote_write"/ {s += $2} END {print s + 0}')

# Every sample: stop Vigil and compare its store with what Prometheus stored.
# Stale markers (NaN) are left out: Prometheus's query API never returns them.
vigil_stop
vigil_dump "$T/dump.raw.txt"
samples canon "$T/dump.raw.txt" --drop-nan >"$T/vigil.txt"
samples series "$T/vigil.txt" >"$T/vigil-series.txt"
check_same_set "series in vigil tsdb dump vs Prometheus" "$T/prom-series.txt" "$T/vigil-series.txt"
# Prometheus's last scrapes before its shutdown may still sit in its remote-write queue
# when it stops (a queue is read from its WAL a little behind the scrapes), so samples
# from the newest second Vigil holds onwards are left out of the exact comparison; all
# earlier ones must match exactly, and the tail must be small (at most two scrapes).
cutoff=$(awk '{ t = $NF + 0; if (t > m) m = t } END { printf "%.0f", m - 1000 }' "$T/vigil.txt")
awk -v c="$cutoff" '($NF + 0) <= c' "$T/prom.txt" >"$T/prom-cut.txt"
awk -v c="$cutoff" '($NF + 0) <= c' "$T/vigil.txt" >"$T/vigil-cut.txt"
check_ge "samples compared exactly" 50 "$(wc -l <"$T/prom-cut.txt")"
check_same_set "samples in vigil tsdb dump vs Prometheus" "$T/prom-cut.txt" "$T/vigil-cut.txt"
# Counted per series, so the bound does not depend on how many series a scrape holds.
tail_max=$(awk -v c="$cutoff" '($NF + 0) > c { k = $0; sub(/ [^ ]+ [^ ]+$/, "", k); n[k]++ }
    END { m = 0; for (k in n) if (n[k] > m) m = n[k]; print m }' "$T/prom.txt")
check_ge "at most two scrapes of any series newer than the cutoff" "$tail_max" 2
check_ge "vigil_ingest_samples_accepted_total{receiver=\"remote_write\"} covers them" \
    "$(wc -l <"$T/prom-cut.txt")" "${accepted%.*}"
vals=$(samples match "$T/vigil.txt" demo_temperature_celsius 'room=lab "A"' floor=1 | awk '{print $1}' | sort -u)
check_eq "gauge value 21.5 stored under its escaped label value" 21.5 "$vals"

# Restart on the same data: everything is still there.
vigil_start
got=$(series_count '{job="demo"}')
check_eq "after a restart the demo series are all still listed" \
    "$(grep -c 'job="demo"' "$T/prom-series.txt")" "$got"
