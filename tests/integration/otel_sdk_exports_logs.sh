#!/usr/bin/env bash
# A user logs through the OpenTelemetry JS logs SDK (npm) and points its OTLP log
# exporter at Vigil with no other configuration, once per protocol: gRPC, HTTP/protobuf
# and HTTP/JSON (otel_sdk_exports_logs.mjs says what it emits). The records must then be
# found the way Grafana's Loki data source finds them: /loki/api/v1/query_range on
# {service_name="..."} (the label Loki derives from service.name), with the severity,
# the trace and span ids and the attributes as structured metadata (asked for with
# X-Loki-Response-Encoding-Flags: categorize-labels, as Grafana does), and LogQL filters
# on that metadata working.
source "$(dirname "$0")/lib.sh"
need_cmd node

if [ ! -d "$IT_DIR/node_modules/@opentelemetry/exporter-logs-otlp-grpc" ]; then
    log "node_modules missing: running npm ci in $IT_DIR"
    (cd "$IT_DIR" && timeout 150 npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1 ||
        skip_all "the OpenTelemetry JS SDK is not installed (npm ci in tests/integration failed: $(tail -n 2 "$T/npm.log"))"
fi

vigil_start

PROTOCOLS=(grpc http-proto http-json)
declare -A TRACE=([grpc]=4bf92f3577b34da6a3ce929d0e0e4736 [http-proto]=5bf92f3577b34da6a3ce929d0e0e4737
                  [http-json]=6bf92f3577b34da6a3ce929d0e0e4738)
for p in "${PROTOCOLS[@]}"; do
    if [ "$p" = grpc ]; then ep="http://$VIGIL_GRPC"; else ep="$VIGIL_URL/v1/logs"; fi
    if timeout 60 node "$IT_DIR/otel_sdk_exports_logs.mjs" "$p" "$ep" "otel-logs-$p" "${TRACE[$p]}" \
        >"$T/sdk-$p.log" 2>&1; then
        pass "SDK exported its log records over $p"
    else
        fail "SDK exported its log records over $p: $(tail -n 3 "$T/sdk-$p.log" | tr '\n' ' ')"
    fi
done

# loki_query OUT QUERY: query_range over the last 10 minutes, categorized, body to OUT.
loki_query() {
    http_req "$1" "$VIGIL_URL/loki/api/v1/query_range" -G --data-urlencode "query=$2" \
        --data-urlencode since=10m -H 'X-Loki-Response-Encoding-Flags: categorize-labels'
}

for p in "${PROTOCOLS[@]}"; do
    out="$T/q-$p.json"
    check_eq "$p: query_range answers 200" 200 "$(loki_query "$out" "{service_name=\"otel-logs-$p\"}")"
    # Entries newest first over all streams: flatten to [ts, line, metadata] sorted by ts.
    entries=$(jq -c '[.data.result[] | .stream as $s | .values[] | {s: $s, ts: .[0], line: .[1], m: (.[2].structuredMetadata // {})}] | sort_by(.ts)' "$out")
    check_eq "$p: both records found" 2 "$(printf '%s' "$entries" | jq 'length')"
    check_eq "$p: lines in order" "it log one $p|it log two $p" \
        "$(printf '%s' "$entries" | jq -r '[.[].line] | join("|")')"
    check_eq "$p: service_name is a stream label" "otel-logs-$p" \
        "$(printf '%s' "$entries" | jq -r '.[0].s.service_name')"
    check_eq "$p: severity_text kept as metadata" "INFO ERROR" \
        "$(printf '%s' "$entries" | jq -r '[.[].m.severity_text] | join(" ")')"
    check_eq "$p: detected_level from the severity" "info error" \
        "$(printf '%s' "$entries" | jq -r '[.[].m.detected_level] | join(" ")')"
    check_eq "$p: trace_id and span_id of the span context" "${TRACE[$p]} 00f067aa0ba902b7" \
        "$(printf '%s' "$entries" | jq -r '.[0].m | "\(.trace_id) \(.span_id)"')"
    check_eq "$p: attributes as metadata" "GET u-1 timeout" \
        "$(printf '%s' "$entries" | jq -r '"\(.[0].m.http_method) \(.[0].m.user_id) \(.[1].m.error_kind)"')"
    check_eq "$p: categorize-labels announced" categorize-labels \
        "$(jq -r '.data.encodingFlags[0] // empty' "$out")"
    # LogQL on the metadata, as Grafana's "show logs for this trace" does.
    loki_query "$out" "{service_name=\"otel-logs-$p\"} | trace_id=\"${TRACE[$p]}\"" >/dev/null
    check_eq "$p: | trace_id=... keeps the traced record" "it log one $p" \
        "$(jq -r '[.data.result[].values[][1]] | join("|")' "$out")"
    loki_query "$out" "sum(count_over_time({service_name=\"otel-logs-$p\"} | severity_text=\"ERROR\" [10m]))" >/dev/null
    check_eq "$p: count_over_time on the ERROR records" 1 \
        "$(jq -r '[.data.result[0].values[][1] | tonumber] | max' "$out")"
done
check_eq "service_name values list every exporter" "otel-logs-grpc otel-logs-http-json otel-logs-http-proto" \
    "$(vigil_get /loki/api/v1/label/service_name/values | jq -r '[.data[] | select(startswith("otel-logs-"))] | join(" ")')"
