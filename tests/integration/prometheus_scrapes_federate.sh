#!/usr/bin/env bash
# A user lets a real Prometheus (Debian's 2.42) scrape Vigil's /federate endpoint, the
# way a global Prometheus pulls from a regional one. Samples go into Vigil by remote write
# (bench/rwgen, small) plus one OTLP/JSON gauge with a label value that needs escaping;
# Prometheus must then hold, for every series, the same newest value and timestamp.
source "$(dirname "$0")/lib.sh"
need_cmd prometheus
need_rwgen

vigil_start

# 300 series x 5 samples 15 s apart, the newest about now.
RW=(--series 300 --samples 5 --batch 250 --concurrency 2 --interval 15000
    --start $(( ($(date +%s) - 60) * 1000 )))
"$RWGEN_BIN" --url "$VIGIL_URL/api/v1/write" "${RW[@]}" --ack-log "$T/ack.log" --quiet \
    >"$T/rwgen.out" 2>&1 || die "rwgen wrote 1500 samples: $(tail -n 3 "$T/rwgen.out")"
"$RWGEN_BIN" "${RW[@]}" --print-acked "$T/ack.log" >"$T/sent.raw"
samples canon "$T/sent.raw" >"$T/sent.txt"
samples last "$T/sent.txt" >"$T/expected.txt"
check_eq "rwgen samples acknowledged" 1500 "$(wc -l <"$T/sent.txt")"

NOW_NS=$(( $(date +%s) * 1000000000 ))
code=$(http_req "$T/otlp.out" "$VIGIL_URL/v1/metrics" -H 'Content-Type: application/json' --data-binary @- <<EOF
{"resourceMetrics":[{"resource":{"attributes":[
  {"key":"service.name","value":{"stringValue":"federate-probe"}},
  {"key":"service.instance.id","value":{"stringValue":"probe-1"}}]},
 "scopeMetrics":[{"metrics":[{"name":"probe_queue_length","gauge":{"dataPoints":[
  {"asDouble":7.25,"timeUnixNano":"$NOW_NS","attributes":[
   {"key":"path","value":{"stringValue":"C:\\\\tmp \"q\""}}]}]}}]}]}]}
EOF
)
check_eq "OTLP/JSON gauge accepted" 200 "$code"
printf 'probe_queue_length{instance="probe-1",job="federate-probe",path="C:\\\\tmp \\"q\\""} 7.25 %d\n' \
    $((NOW_NS / 1000000)) >>"$T/expected.txt"
LC_ALL=C sort -o "$T/expected.txt" "$T/expected.txt"

# The endpoint itself, before Prometheus looks at it.
MATCH='{__name__=~"http_requests_total|http_request_duration_seconds_bucket|node_cpu_seconds_total|node_filesystem_avail_bytes|probe_queue_length"}'
code=$(http_req "$T/federate.txt" "$VIGIL_URL/federate" -G --data-urlencode "match[]=$MATCH" -D "$T/federate.hdr")
check_eq "GET /federate answers 200" 200 "$code"
check_contains "federate content type is the text exposition format" "$(cat "$T/federate.hdr")" "text/plain"
samples expo "$T/federate.txt" >"$T/federate.canon"
check_same_set "/federate returns the newest sample of every series" "$T/expected.txt" "$T/federate.canon"
check_contains "/federate writes # TYPE lines" "$(cat "$T/federate.txt")" "# TYPE"
n=$(curl -s -G "$VIGIL_URL/federate" --data-urlencode 'match[]=node_cpu_seconds_total{cpu="0"}' | grep -vc '^#')
check_eq "/federate with a narrower selector (cpu=\"0\", mode user and system, 3 hosts)" 6 "$n"
code=$(http_req "$T/nomatch.txt" "$VIGIL_URL/federate")
check_eq "/federate without match[] is 400" 400 "$code"

# A real Prometheus scrapes /federate every second.
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: federate
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['$MATCH']
    static_configs:
      - targets: ['127.0.0.1:$VIGIL_HTTP_PORT']
EOF
prom_start "$T/prometheus.yml"
want=$(wc -l <"$T/expected.txt")
have_all() {
    [ "$(prom_query "count($MATCH)" | jq -r '.[0].value[1] // 0')" = "$want" ]
}
wait_until 30 have_all || fail "Prometheus has all $want federated series within 30 s"
up=$(prom_query 'up{job="federate"}' | jq -r '.[0].value[1] // empty')
check_eq "Prometheus's scrape of /federate is up" 1 "$up"

# Newest values and their timestamps as Prometheus stored them.
curl -s --max-time 30 -G "$PROM_URL/api/v1/query" --data-urlencode "query=${MATCH}[10m]" \
    --data-urlencode "time=$(( $(date +%s) + 2 ))" >"$T/prom.json"
samples prom "$T/prom.json" >"$T/prom.txt"
samples last "$T/prom.txt" >"$T/prom-last.txt"
check_same_set "Prometheus's newest samples equal what was written to Vigil" "$T/expected.txt" "$T/prom-last.txt"
vigil_alive && pass "vigil still healthy" || fail "vigil still healthy"
