#!/usr/bin/env bash
# A user instruments two services with the OpenTelemetry JS SDK (npm) and points their
# OTLP trace exporters at Vigil, once per protocol: gRPC, HTTP/protobuf and HTTP/JSON.
# Each run exports one trace (otel_sdk_exports_traces.mjs says what): a client span in
# service A and, as its child, a failing server span with an exception event in service
# B. Through curl, as Grafana's Tempo data source would ask: the trace by id (JSON v1 and
# v2, protobuf), /api/search with TraceQL (attribute, status, structural and pipeline
# queries) and with legacy tags, and the tag name and value endpoints.
source "$(dirname "$0")/lib.sh"
need_cmd node
need_cmd jq

if [ ! -d "$IT_DIR/node_modules/@opentelemetry/sdk-trace-base" ] ||
    [ ! -d "$IT_DIR/node_modules/@opentelemetry/exporter-trace-otlp-grpc" ]; then
    log "node_modules missing: running npm ci in $IT_DIR"
    (cd "$IT_DIR" && timeout 150 npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1 ||
        skip_all "the OpenTelemetry JS SDK is not installed (npm ci in tests/integration failed: $(tail -n 2 "$T/npm.log"))"
fi

vigil_start

# search Q [curl args...]: /api/search with q=Q, JSON on stdout.
search() {
    local q=$1
    shift
    vigil_get /api/search -G --data-urlencode "q=$q" "$@"
}

PROTOCOLS=(grpc http-proto http-json)
declare -A TID
for p in "${PROTOCOLS[@]}"; do
    if [ "$p" = grpc ]; then ep="http://$VIGIL_GRPC"; else ep="$VIGIL_URL/v1/traces"; fi
    if timeout 60 node "$IT_DIR/otel_sdk_exports_traces.mjs" "$p" "$ep" "$p" >"$T/sdk-$p.log" 2>&1; then
        pass "SDK exported a trace over $p"
    else
        fail "SDK exported a trace over $p: $(tail -n 3 "$T/sdk-$p.log" | tr '\n' ' ')"
    fi
    TID[$p]=$(sed -n 's/^trace \([0-9a-f]\{32\}\)$/\1/p' "$T/sdk-$p.log")
    [ -n "${TID[$p]}" ] || fail "$p: the SDK printed its trace id"
done

for p in "${PROTOCOLS[@]}"; do
    tid=${TID[$p]}
    [ -n "$tid" ] || continue
    short=$(printf '%s' "$tid" | sed 's/^0*//')
    front="it-front-$p" back="it-back-$p"

    # ---- trace by id ----
    tr=$(vigil_get "/api/traces/$tid")
    check_eq "$p: /api/traces lists both services" "$back $front" \
        "$(printf '%s' "$tr" | jq -r '[.batches[].resource.attributes[] | select(.key == "service.name") | .value.stringValue] | sort | join(" ")' 2>/dev/null)"
    spans=$(printf '%s' "$tr" | jq -c '[.batches[].scopeSpans[].spans[]]' 2>/dev/null)
    check_eq "$p: two spans" 2 "$(printf '%s' "$spans" | jq 'length' 2>/dev/null)"
    client_id=$(printf '%s' "$spans" | jq -r --arg n "checkout $p" '.[] | select(.name == $n) | .spanId' 2>/dev/null)
    check_eq "$p: the server span's parent is the client span" "$client_id" \
        "$(printf '%s' "$spans" | jq -r '.[] | select(.name == "reserve stock") | .parentSpanId' 2>/dev/null)"
    check_eq "$p: kinds client and server" "3 2" \
        "$(printf '%s' "$spans" | jq -r '[.[] | .kind] | join(" ")' 2>/dev/null | tr ' ' '\n' | sort -r | tr '\n' ' ' | sed 's/ $//')"
    check_eq "$p: error status with its message" "2 out of stock" \
        "$(printf '%s' "$spans" | jq -r '.[] | select(.name == "reserve stock") | "\(.status.code) \(.status.message)"' 2>/dev/null)"
    check_eq "$p: exception event with its message" "exception out of stock" \
        "$(printf '%s' "$spans" | jq -r '.[] | select(.name == "reserve stock") | .events[0] | "\(.name) \(.attributes[] | select(.key == "exception.message") | .value.stringValue)"' 2>/dev/null)"
    check_eq "$p: /api/v2/traces wraps resourceSpans" 2 \
        "$(vigil_get "/api/v2/traces/$tid" | jq '.trace.resourceSpans | length' 2>/dev/null)"
    ct=$(curl -s -o "$T/pb-$p" -w '%{content_type}' --max-time 10 -H 'Accept: application/protobuf' "$VIGIL_URL/api/traces/$tid")
    check_eq "$p: protobuf when Accept asks for it" application/protobuf "$ct"
    check_ge "$p: protobuf body holds both spans' bytes" 100 "$(wc -c <"$T/pb-$p")"

    # ---- TraceQL search ----
    r=$(search "{ resource.service.name = \"$back\" && status = error }")
    check_eq "$p: TraceQL by service and status finds the trace" "$short" "$(printf '%s' "$r" | jq -r '.traces[0].traceID' 2>/dev/null)"
    check_eq "$p: one trace" 1 "$(printf '%s' "$r" | jq '.traces | length' 2>/dev/null)"
    check_eq "$p: root service and name" "$front|checkout $p" \
        "$(printf '%s' "$r" | jq -r '.traces[0] | "\(.rootServiceName)|\(.rootTraceName)"' 2>/dev/null)"
    check_eq "$p: the matched span" "reserve stock 1" \
        "$(printf '%s' "$r" | jq -r '.traces[0].spanSets[0] | "\(.spans[0].name) \(.matched)"' 2>/dev/null)"
    check_ge "$p: durationMs" 20 "$(printf '%s' "$r" | jq -r '.traces[0].durationMs' 2>/dev/null)"
    check_eq "$p: startTimeUnixNano is a string" string \
        "$(printf '%s' "$r" | jq -r '.traces[0].startTimeUnixNano | type' 2>/dev/null)"
    check_eq "$p: inspectedTraces counted" true \
        "$(printf '%s' "$r" | jq -r '.metrics.inspectedTraces >= 1' 2>/dev/null)"
    r=$(search "{ resource.service.name = \"$front\" && kind = client } > { kind = server && span.http.status_code = 500 }")
    check_eq "$p: structural child query" "$short" "$(printf '%s' "$r" | jq -r '.traces[0].traceID' 2>/dev/null)"
    check_eq "$p: shown attribute http.status_code" 500 \
        "$(printf '%s' "$r" | jq -r '.traces[0].spanSets[0].spans[0].attributes[] | select(.key == "http.status_code") | .value.intValue' 2>/dev/null)"
    r=$(search "{ rootServiceName = \"$front\" } | count() = 2")
    check_eq "$p: pipeline count() = 2" "$short" "$(printf '%s' "$r" | jq -r '.traces[0].traceID' 2>/dev/null)"
    r=$(search "{ resource.service.name = \"$back\" && status = ok }")
    check_eq "$p: no match is an empty list" 0 "$(printf '%s' "$r" | jq '.traces | length' 2>/dev/null)"
    r=$(vigil_get /api/search -G --data-urlencode "tags=service.name=$back http.status_code=500" \
        --data-urlencode "minDuration=1ms")
    check_eq "$p: legacy tags search" "$short" "$(printf '%s' "$r" | jq -r '.traces[0].traceID' 2>/dev/null)"

    # ---- tags ----
    check_eq "$p: v2 values of resource.service.name" true \
        "$(vigil_get /api/v2/search/tag/resource.service.name/values | jq --arg s "$back" 'any(.tagValues[]; .type == "string" and .value == $s)' 2>/dev/null)"
    check_eq "$p: v1 values of service.name" true \
        "$(vigil_get /api/search/tag/service.name/values | jq --arg s "$front" 'any(.tagValues[]; . == $s)' 2>/dev/null)"
    check_eq "$p: v2 span names filtered by q" "reserve stock" \
        "$(vigil_get /api/v2/search/tag/name/values -G --data-urlencode "q={ resource.service.name = \"$back\" }" | jq -r '[.tagValues[].value] | join(",")' 2>/dev/null)"
done

tags=$(vigil_get /api/search/tags)
check_eq "/api/search/tags lists http.status_code and http.method" "true true" \
    "$(printf '%s' "$tags" | jq -r '[any(.tagNames[]; . == "http.status_code"), any(.tagNames[]; . == "http.method")] | join(" ")' 2>/dev/null)"
check_eq "/api/v2/search/tags?scope=resource lists service.name and host.name" "true true" \
    "$(vigil_get '/api/v2/search/tags?scope=resource' | jq -r '.scopes[0] | [.name == "resource", any(.tags[]; . == "service.name") and any(.tags[]; . == "host.name")] | join(" ")' 2>/dev/null)"
check_eq "/api/v2/search/tags has the intrinsic scope" true \
    "$(vigil_get /api/v2/search/tags | jq '.scopes | any(.[]; .name == "intrinsic" and any(.tags[]; . == "status"))' 2>/dev/null)"
check_eq "a bad TraceQL query is 400" 400 \
    "$(http_code "$VIGIL_URL/api/search" -G --data-urlencode 'q={ .a = }')"
check_contains "the error names the position" \
    "$(vigil_get /api/search -G --data-urlencode 'q={ .a = }')" "parse error at line 1, col 8"
check_eq "buildinfo names a Tempo version" true \
    "$(vigil_get /api/status/buildinfo | jq '.version | test("^[0-9]+\\.[0-9]+")' 2>/dev/null)"
