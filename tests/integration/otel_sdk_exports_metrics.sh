#!/usr/bin/env bash
# A user instruments an application with the OpenTelemetry JS SDK (npm) and points its
# OTLP exporter at Vigil with no other configuration, once per protocol: gRPC,
# HTTP/protobuf and HTTP/JSON. Each run records a counter, a gauge and a histogram and
# exports twice (otel_sdk_exports_metrics.mjs says what). The series must appear under
# Prometheus's names for OTLP metrics (it_requests_total, it_queue_depth,
# it_latency_seconds_bucket/_sum/_count, target_info) with job and instance from
# service.name and service.instance.id, and hold both exports' values.
source "$(dirname "$0")/lib.sh"
need_cmd node

if [ ! -d "$IT_DIR/node_modules/@opentelemetry/sdk-metrics" ]; then
    log "node_modules missing: running npm ci in $IT_DIR"
    (cd "$IT_DIR" && timeout 150 npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1 ||
        skip_all "the OpenTelemetry JS SDK is not installed (npm ci in tests/integration failed: $(tail -n 2 "$T/npm.log"))"
fi

vigil_start

PROTOCOLS=(grpc http-proto http-json)
for p in "${PROTOCOLS[@]}"; do
    if [ "$p" = grpc ]; then ep="http://$VIGIL_GRPC"; else ep="$VIGIL_URL/v1/metrics"; fi
    if timeout 60 node "$IT_DIR/otel_sdk_exports_metrics.mjs" "$p" "$ep" "otel-it-$p" "inst-$p" \
        >"$T/sdk-$p.log" 2>&1; then
        pass "SDK exported twice over $p"
    else
        fail "SDK exported twice over $p: $(tail -n 3 "$T/sdk-$p.log" | tr '\n' ' ')"
    fi
    if grep -qi 'partial' "$T/sdk-$p.log"; then
        fail "no partial-success rejection over $p: $(grep -i partial "$T/sdk-$p.log" | head -n 2)"
    fi
done

# What the series API says, per protocol.
for p in "${PROTOCOLS[@]}"; do
    id="job=\"otel-it-$p\",instance=\"inst-$p\""
    check_eq "$p: it_requests_total GET/200 listed once" 1 \
        "$(series_count "it_requests_total{$id,method=\"GET\",http_status_code=\"200\"}")"
    check_eq "$p: it_requests_total POST/500 listed once" 1 \
        "$(series_count "it_requests_total{$id,method=\"POST\",http_status_code=\"500\"}")"
    check_eq "$p: it_queue_depth listed" 1 "$(series_count "it_queue_depth{$id,queue=\"main\"}")"
    check_eq "$p: it_latency_seconds_bucket has le 0.125, 0.5, 1, +Inf" "+Inf 0.125 0.5 1" \
        "$(vigil_get /api/v1/series -G --data-urlencode "match[]=it_latency_seconds_bucket{$id,route=\"/checkout\"}" |
            jq -r '[.data[]?.le] | sort | join(" ")')"
    check_eq "$p: it_latency_seconds_sum and _count listed" 2 \
        "$(series_count "{__name__=~\"it_latency_seconds_(sum|count)\",$id}")"
    check_eq "$p: target_info carries the other resource attributes" 1 \
        "$(series_count "target_info{$id,service_version=\"1.2.3\",host_name=\"it-host\"}")"
    check_eq "$p: service.name is not copied into target_info" 0 \
        "$(series_count "target_info{$id,service_name!=\"\"}")"
done
md=$(vigil_get /api/v1/metadata -G --data-urlencode 'metric=it_requests_total')
check_eq "metadata: it_requests_total is a counter" counter \
    "$(printf '%s' "$md" | jq -r '.data.it_requests_total[0].type // empty' 2>/dev/null)"
check_eq "metadata: it_requests_total keeps its description" "Requests handled." \
    "$(printf '%s' "$md" | jq -r '.data.it_requests_total[0].help // empty' 2>/dev/null)"

for recv in otlp_grpc otlp_http; do
    n=$(vigil_get /metrics | awk -v r="receiver=\"$recv\"" 'index($0, "vigil_ingest_samples_accepted_total{") == 1 && index($0, r) {s += $2} END {print s + 0}')
    check_ge "vigil_ingest_samples_accepted_total{receiver=\"$recv\"} counted" 1 "${n%.*}"
done

# Values: both exports of every series, read from the store.
vigil_stop
vigil_dump "$T/dump.raw"
samples canon "$T/dump.raw" >"$T/dump.txt"
vals() { # vals NAME LABEL=VALUE...: the values of a series, oldest first, space-separated
    samples match "$T/dump.txt" "$@" | awk '{printf "%s ", $1}' | sed 's/ $//'
}
for p in "${PROTOCOLS[@]}"; do
    id=(job="otel-it-$p" instance="inst-$p")
    check_eq "$p: counter GET/200 cumulative values" "5.0 10.0" \
        "$(vals it_requests_total "${id[@]}" method=GET http_status_code=200)"
    check_eq "$p: counter POST/500 cumulative values" "3.0 7.0" \
        "$(vals it_requests_total "${id[@]}" method=POST http_status_code=500)"
    check_eq "$p: gauge values" "42.5 17.25" "$(vals it_queue_depth "${id[@]}" queue=main)"
    for row in "0.125 1.0 1.0" "0.5 3.0 3.0" "1 3.0 4.0" "+Inf 4.0 5.0"; do
        set -- $row
        check_eq "$p: histogram bucket le=$1" "$2 $3" \
            "$(vals it_latency_seconds_bucket "${id[@]}" route=/checkout le="$1")"
    done
    check_eq "$p: histogram _sum" "3.5625 4.3125" "$(vals it_latency_seconds_sum "${id[@]}" route=/checkout)"
    check_eq "$p: histogram _count" "4.0 5.0" "$(vals it_latency_seconds_count "${id[@]}" route=/checkout)"
    check_eq "$p: target_info is 1" "1.0" \
        "$(vals target_info "${id[@]}" | awk '{print $NF}')"
done
