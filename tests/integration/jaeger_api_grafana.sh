#!/usr/bin/env bash
# A user adds Vigil to Grafana as a Jaeger data source (URL http://host:4318/jaeger) after
# sending traces over OTLP/HTTP JSON with curl: one trace across two services, a server
# span in "it-frontend" that failed (error status, an "exception" event) and its child, a
# client span in "it-backend". The script then replays the requests Grafana's Jaeger data
# source makes: the health check (/api/services), the service and operation pickers, a
# search with tags as a JSON map, with and without start/end (µs), trace by id, the
# service graph (/api/dependencies), and an unknown trace; every answer is checked field
# by field with jq.
source "$(dirname "$0")/lib.sh"

vigil_start
J="$VIGIL_URL/jaeger"

TID=4bf92f3577b34da6a3ce929d0e0e4736
ROOT=00f067aa0ba902b7
CHILD=b7ad6b7169203331
now_ns=$(($(date +%s) * 1000000000))
t0=$((now_ns - 60000000000)) # a minute ago
cat >"$T/trace.json" <<EOF
{"resourceSpans":[
 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"it-frontend"}},
                            {"key":"host.name","value":{"stringValue":"web-1"}}]},
  "scopeSpans":[{"scope":{"name":"it-http","version":"0.1"},"spans":[
   {"traceId":"$TID","spanId":"$ROOT","name":"GET /checkout","kind":2,
    "startTimeUnixNano":"$t0","endTimeUnixNano":"$((t0 + 25000000))",
    "attributes":[{"key":"http.method","value":{"stringValue":"GET"}},
                  {"key":"http.status_code","value":{"intValue":"500"}}],
    "events":[{"timeUnixNano":"$((t0 + 20000000))","name":"exception",
               "attributes":[{"key":"exception.type","value":{"stringValue":"OutOfStock"}}]}],
    "status":{"code":2,"message":"out of stock"}}]}]},
 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"it-backend"}}]},
  "scopeSpans":[{"scope":{"name":"it-sql"},"spans":[
   {"traceId":"$TID","spanId":"$CHILD","parentSpanId":"$ROOT","name":"SELECT stock","kind":3,
    "startTimeUnixNano":"$((t0 + 5000000))","endTimeUnixNano":"$((t0 + 15000000))",
    "attributes":[{"key":"db.system","value":{"stringValue":"postgresql"}}]}]}]}
]}
EOF
code=$(http_req "$T/post.json" "$VIGIL_URL/v1/traces" -H 'Content-Type: application/json' \
    --data-binary @"$T/trace.json")
check_eq "OTLP/JSON POST of two services answers 200 ($(head -c 200 "$T/post.json"))" 200 "$code"

# jget FILE FILTER: one jq answer (compact), empty on bad JSON.
jget() { jq -c -r "$2" "$1" 2>/dev/null; }

# ---- health check and pickers ----
code=$(http_req "$T/services.json" "$J/api/services")
check_eq "health check: GET /api/services answers 200" 200 "$code"
check_eq "services: both, sorted" '["it-backend","it-frontend"]' "$(jget "$T/services.json" '.data')"
check_eq "services: total" 2 "$(jget "$T/services.json" '.total')"
check_eq "services: errors null" null "$(jget "$T/services.json" '.errors')"

http_req "$T/ops.json" "$J/api/services/it-frontend/operations" >/dev/null
check_eq "operations of it-frontend" '["GET /checkout"]' "$(jget "$T/ops.json" '.data')"
http_req "$T/ops2.json" "$J/api/operations" -G --data-urlencode service=it-backend \
    --data-urlencode spanKind=client >/dev/null
check_eq "operations with span kind" '[{"name":"SELECT stock","spanKind":"client"}]' \
    "$(jget "$T/ops2.json" '.data')"

# ---- search, as Grafana sends it ----
start_us=$(((t0 - 3600000000000) / 1000))
end_us=$(((now_ns + 60000000000) / 1000))
code=$(http_req "$T/search.json" "$J/api/traces" -G --data-urlencode service=it-frontend \
    --data-urlencode 'tags={"http.status_code":"500"}' --data-urlencode limit=20 \
    --data-urlencode "start=$start_us" --data-urlencode "end=$end_us" \
    --data-urlencode minDuration= --data-urlencode maxDuration= --data-urlencode lookback=custom)
check_eq "search with tags JSON and start/end answers 200" 200 "$code"
check_eq "search: the trace" "$TID" "$(jget "$T/search.json" '.data[0].traceID')"
check_eq "search: total" 1 "$(jget "$T/search.json" '.total')"
check_eq "search: the whole trace" 2 "$(jget "$T/search.json" '.data[0].spans | length')"

code=$(http_req "$T/search2.json" "$J/api/traces" -G --data-urlencode service=it-backend \
    --data-urlencode 'tags={"db.system":"postgresql"}' --data-urlencode limit=20)
check_eq "search without start/end answers 200" 200 "$code"
check_eq "search without start/end: the trace" "$TID" "$(jget "$T/search2.json" '.data[0].traceID')"
http_req "$T/search3.json" "$J/api/traces" -G --data-urlencode service=it-frontend \
    --data-urlencode 'tags={"error":"true"}' --data-urlencode minDuration=20ms >/dev/null
check_eq "search error=true, minDuration=20ms" "$TID" "$(jget "$T/search3.json" '.data[0].traceID')"
http_req "$T/search4.json" "$J/api/traces" -G --data-urlencode service=it-frontend \
    --data-urlencode 'tags={"http.status_code":"200"}' >/dev/null
check_eq "search for another status finds nothing" '[]' "$(jget "$T/search4.json" '.data')"
http_req "$T/search5.json" "$J/api/traces" -G --data-urlencode service=it-backend \
    --data-urlencode maxDuration=5ms >/dev/null
check_eq "search maxDuration=5ms finds nothing (the span took 10 ms)" '[]' "$(jget "$T/search5.json" '.data')"

# ---- trace by id ----
code=$(http_req "$T/trace.out" "$J/api/traces/$TID")
check_eq "trace by id answers 200" 200 "$code"
tr() { jget "$T/trace.out" "$1"; }
check_eq "trace: one trace with its id" "1 $TID" "$(tr '"\(.data | length) \(.data[0].traceID)"')"
root='.data[0].spans[] | select(.spanID == "'$ROOT'")'
child='.data[0].spans[] | select(.spanID == "'$CHILD'")'
check_eq "root: operation, µs start and duration" "GET /checkout $((t0 / 1000)) 25000" \
    "$(tr "$root"' | "\(.operationName) \(.startTime) \(.duration)"')"
check_eq "root: no references" 0 "$(tr "[$root | .references[]] | length")"
check_eq "child: CHILD_OF the root" "CHILD_OF $TID $ROOT" \
    "$(tr "$child"' | .references[0] | "\(.refType) \(.traceID) \(.spanID)"')"
check_eq "child: 10 ms in µs" 10000 "$(tr "$child | .duration")"
check_eq "root: http.status_code is int64 500" '{"key":"http.status_code","type":"int64","value":500}' \
    "$(tr "$root"' | .tags[] | select(.key == "http.status_code")')"
check_eq "root: error=true bool" '{"key":"error","type":"bool","value":true}' \
    "$(tr "$root"' | .tags[] | select(.key == "error")')"
check_eq "root: status tags" "ERROR|out of stock|server|it-http|0.1" \
    "$(tr "[$root"' | .tags[] | {(.key): .value}] | add | "\(.["otel.status_code"])|\(.["otel.status_description"])|\(.["span.kind"])|\(.["otel.scope.name"])|\(.["otel.scope.version"])"')"
check_eq "root: the exception event is a log" "$(((t0 + 20000000) / 1000)) exception OutOfStock" \
    "$(tr "$root"' | .logs[0] | "\(.timestamp) \(.fields[] | select(.key == "event") | .value) \(.fields[] | select(.key == "exception.type") | .value)"')"
check_eq "child: span.kind client" client "$(tr "$child"' | .tags[] | select(.key == "span.kind") | .value')"
pr=$(tr "$root | .processID")
pc=$(tr "$child | .processID")
check_eq "processes: one per service" "it-frontend it-backend 2" \
    "$(tr ".data[0].processes as \$p | \"\(\$p[\"$pr\"].serviceName) \(\$p[\"$pc\"].serviceName) \(\$p | length)\"")"
check_eq "process tags: resource attributes without service.name" '[{"key":"host.name","type":"string","value":"web-1"}]' \
    "$(tr ".data[0].processes[\"$pr\"].tags")"
check_eq "trace warnings null" null "$(tr '.data[0].warnings')"

# ---- service graph ----
code=$(http_req "$T/deps.json" "$J/api/dependencies" -G \
    --data-urlencode "endTs=$(((now_ns + 60000000000) / 1000000))" --data-urlencode lookback=3600000)
check_eq "dependencies answers 200" 200 "$code"
check_eq "dependencies: frontend calls backend once" '[{"parent":"it-frontend","child":"it-backend","callCount":1}]' \
    "$(jget "$T/deps.json" '.data')"

# ---- errors in Jaeger's shape ----
code=$(http_req "$T/404.json" "$J/api/traces/0123456789abcdef0123456789abcdef")
check_eq "unknown trace: 404" 404 "$code"
check_eq "unknown trace: Jaeger's error shape" '{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}' \
    "$(jq -c . "$T/404.json" 2>/dev/null)"
code=$(http_req "$T/400.json" "$J/api/traces" -G --data-urlencode 'tags={bad')
check_eq "search without service or with bad tags: 400" 400 "$code"
check_eq "400 carries the code" 400 "$(jget "$T/400.json" '.errors[0].code')"

vigil_alive && pass "vigil still serves after the replay" || fail "vigil still serves after the replay"
vigil_stop
