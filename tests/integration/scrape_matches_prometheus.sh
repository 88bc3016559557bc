#!/usr/bin/env bash
# A Prometheus user moves their scrape_configs to Vigil: Vigil and Debian's prometheus
# scrape the same real exporters on loopback with the same scrape_configs (relabel and
# metric relabel rules included): Debian's prometheus-node-exporter (a fixed set of
# collectors), prometheus-pushgateway holding a metric pushed with curl, and Vigil's own
# /metrics. Both must then hold the same series (names and labels), the same `up`
# values, and the pushed value; /api/v1/targets must list the same targets and the
# dropped one, and a reload that removes a job must mark its series stale.
source "$(dirname "$0")/lib.sh"
need_cmd prometheus prometheus-node-exporter prometheus-pushgateway jq curl

NODE_PORT=$(free_port)
PUSH_PORT=$(free_port)
VIGIL_HTTP_PORT=$(free_port)
VIGIL_GRPC_PORT=$(free_port)

start_bg node-exporter prometheus-node-exporter --web.listen-address="127.0.0.1:$NODE_PORT" \
    --collector.disable-defaults --collector.loadavg --collector.meminfo --collector.uname \
    --collector.stat --web.disable-exporter-metrics
start_bg pushgateway prometheus-pushgateway --web.listen-address="127.0.0.1:$PUSH_PORT" \
    --persistence.file="$T/push.store"
node_ready() { [ "$(http_code "http://127.0.0.1:$NODE_PORT/metrics")" = 200 ]; }
push_ready() { [ "$(http_code "http://127.0.0.1:$PUSH_PORT/-/ready")" = 200 ]; }
wait_until 20 node_ready || die "node exporter answers on :$NODE_PORT"
wait_until 20 push_ready || die "pushgateway answers on :$PUSH_PORT"
printf '# TYPE pushed_jobs_total counter\npushed_jobs_total{queue="a b"} 42\npushed_temp 21.5\n' |
    curl -s -X PUT --data-binary @- "http://127.0.0.1:$PUSH_PORT/metrics/job/batch/instance/runner1" \
    >/dev/null || die "pushed a metric group to the pushgateway"

# The same scrape_configs for both; only the surrounding keys differ.
scrape_configs() {
    cat <<EOF
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['127.0.0.1:$NODE_PORT']
        labels: {env: test, __tmp_role: worker}
      - targets: ['127.0.0.1:1']
        labels: {env: dropme}
    relabel_configs:
      - {source_labels: [env], regex: dropme, action: drop}
      - {source_labels: [__address__], regex: '([^:]+):\\d+', target_label: host}
      - {source_labels: [__tmp_role], target_label: role}
      - {source_labels: [host], modulus: 4, target_label: shard, action: hashmod}
      - {source_labels: [env], target_label: ENV, action: uppercase}
    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'node_cpu_guest.*', action: drop}
      - {regex: 'machine', action: labeldrop}
      - {source_labels: [__name__, mode], separator: '/', regex: 'node_cpu_seconds_total/(.*)',
         target_label: cpu_mode, replacement: 'm_\$1'}
  - job_name: push
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:$PUSH_PORT']
    metric_relabel_configs:
      - {source_labels: [__name__], regex: '(pushgateway_http|promhttp|go_memstats_.*_total|go_gc)_.*', action: drop}
  - job_name: self
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$VIGIL_HTTP_PORT']
    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'vigil_build_info|process_max_fds|vigil_tsdb_disk_bytes', action: keep}
      - {regex: 'revision|goversion', action: labeldrop}
EOF
}

{ printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'; scrape_configs; } >"$T/prometheus.yml"
{ printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'; scrape_configs; } >"$T/vigil.yml"
VIGIL_DATA="$T/vigil-data"
vigil_start --config "$T/vigil.yml"
prom_start "$T/prometheus.yml"

# Wait until both have scraped every target a few times.
count_up() { curl -s -G "$1/api/v1/query" --data-urlencode 'query=count(up)' | jq -r '.data.result[0].value[1] // 0'; }
both_up() { [ "$(count_up "$VIGIL_URL")" = 3 ] && [ "$(count_up "$PROM_URL")" = 3 ]; }
wait_until 30 both_up || fail "both scrape three targets within 30 s"
sleep 4

# Series sets over the last minute: every label set, sorted, one per line.
series() {
    curl -s -G "$1/api/v1/series" --data-urlencode 'match[]={job=~"node|push|self|batch"}' \
        --data-urlencode "start=$(( $(date +%s) - 60 ))" --data-urlencode "end=$(date +%s)" |
        jq -c '.data[] | to_entries | sort_by(.key) | from_entries' | LC_ALL=C sort -u
}
series "$VIGIL_URL" >"$T/vigil.series"
series "$PROM_URL" >"$T/prom.series"
check_ge "Vigil holds scraped series" 50 "$(wc -l <"$T/vigil.series")"
# the node exporter's own label values (e.g. uname) are identical for both scrapers,
# volatile ones are not in the chosen collectors
check_same_set "the same series (names and labels) in Vigil and Prometheus" "$T/prom.series" "$T/vigil.series"

ups() { curl -s -G "$1/api/v1/query" --data-urlencode 'query=up' |
        jq -r '.data.result[] | "\(.metric.job) \(.value[1])"' | LC_ALL=C sort; }
check_eq "the same up values" "$(ups "$PROM_URL")" "$(ups "$VIGIL_URL")"
check_eq "up values are all 1" "node 1
push 1
self 1" "$(ups "$VIGIL_URL")"

pushed() { curl -s -G "$1/api/v1/query" --data-urlencode 'query=pushed_jobs_total' |
           jq -r '.data.result[] | "\(.metric.job) \(.metric.instance) \(.metric.queue) \(.value[1])"'; }
check_eq "the pushed counter, with honor_labels, as Prometheus has it" "$(pushed "$PROM_URL")" "$(pushed "$VIGIL_URL")"
check_eq "the pushed counter's value" "batch runner1 a b 42" "$(pushed "$VIGIL_URL")"

q1() { curl -s -G "$1/api/v1/query" --data-urlencode "query=$2" | jq -r '.data.result[0].value[1] // "none"'; }
check_eq "a target label from relabel_configs (hashmod shard) matches" \
    "$(q1 "$PROM_URL" 'count(node_load1{shard=~".+",role="worker",ENV="TEST"})')" \
    "$(q1 "$VIGIL_URL" 'count(node_load1{shard=~".+",role="worker",ENV="TEST"})')"
check_eq "scrape_samples_post_metric_relabeling for the self job" \
    "$(q1 "$PROM_URL" 'scrape_samples_post_metric_relabeling{job="self"}')" \
    "$(q1 "$VIGIL_URL" 'scrape_samples_post_metric_relabeling{job="self"}')"

# /api/v1/targets in Prometheus's shape
targets() {
    curl -s "$1/api/v1/targets" | jq -c '[.data.activeTargets[] | {scrapePool, scrapeUrl, health, labels}] | sort_by(.scrapePool)'
}
check_eq "/api/v1/targets lists the same active targets" "$(targets "$PROM_URL")" "$(targets "$VIGIL_URL")"
dropped() { curl -s "$1/api/v1/targets?state=dropped" | jq -c '[.data.droppedTargets[].discoveredLabels.__address__]'; }
check_eq "the dropped target is listed" "$(dropped "$PROM_URL")" "$(dropped "$VIGIL_URL")"
meta=$(curl -s -G "$VIGIL_URL/api/v1/targets/metadata" --data-urlencode 'match_target={job="node"}' \
       --data-urlencode 'metric=node_load1' | jq -r '.data[0].type')
check_eq "/api/v1/targets/metadata has node_load1's type" gauge "$meta"

# Reload without the push job: its series go stale (absent from an instant query).
{ printf 'global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n'; scrape_configs | awk '/job_name: push/{skip=1} /job_name: self/{skip=0} !skip'; } >"$T/vigil.yml"
code=$(http_code "$VIGIL_URL/-/reload" -X POST)
check_eq "POST /-/reload" 200 "$code"
sleep 1.5
check_eq "the removed job's series are stale after the reload" none "$(q1 "$VIGIL_URL" 'pushed_jobs_total')"
check_eq "the removed job's up is stale" none "$(q1 "$VIGIL_URL" 'up{job="push"}')"
check_eq "other jobs keep scraping" 1 "$(q1 "$VIGIL_URL" 'up{job="node"}')"
kill -HUP "$VIGIL_PID"
sleep 1
vigil_alive && pass "vigil still healthy after SIGHUP" || fail "vigil still healthy after SIGHUP"
