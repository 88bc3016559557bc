#!/usr/bin/env bash
# A Grafana user adds Vigil as a Prometheus data source. This replays, request by
# request, what Grafana's Prometheus data source (Grafana 10/11, HTTP method POST, its
# default) sends, and checks each answer's status, shape and content:
#   - the "Save & test" health check: POST /api/v1/query, form body query=1%2B1&time=<s>
#     (backend healthcheck: an instant query of 1+1 that must answer a scalar 2);
#   - GET /api/v1/status/buildinfo (the data source reads the Prometheus version);
#   - the query editor's metric list: GET /api/v1/label/__name__/values with start, end,
#     limit and match[] (label values are always fetched with GET);
#   - label names: POST /api/v1/labels with start and end (with and without match[]);
#   - label values: GET /api/v1/label/<name>/values with start, end and match[];
#   - the metrics browser's series lookup: POST /api/v1/series with match[], start, end,
#     limit;
#   - metric metadata: GET /api/v1/metadata (whole list, and metric=<name>);
#   - panel queries: POST /api/v1/query_range with query, start, end, step (seconds) and
#     POST /api/v1/query for "Instant" queries, with the values checked;
#   - exemplars: POST /api/v1/query_exemplars with query, start, end;
#   - a broken query in the editor: 400 with errorType bad_data.
# The data is sent over OTLP/HTTP JSON (a counter with exemplars, a gauge and a
# histogram) with every point off the 15 s grid, so windows never start on a sample.
source "$(dirname "$0")/lib.sh"

vigil_start

NOW=$(date +%s)
BASE=$((NOW - 600))  # points at BASE+3, BASE+18, ... (every 15 s, 3 s off the grid)
NPTS=37              # up to BASE+543: the last point 54 s ago
LAST=$((BASE + 3 + 15 * (NPTS - 1)))
TRACE=0af7651916cd43dd8448eb211c80319c
SPAN=b7ad6b7169203331

# OTLP JSON: shop.orders (cumulative monotonic sum, method=GET grows 10 per point, POST
# 3), shop.queue.depth (gauge, i % 5), shop.latency (histogram, bounds 0.1 0.5 1; bucket
# counts grow 1, 2, 1, 0 per point). The last GET point carries an exemplar.
python3 - "$BASE" "$NPTS" "$TRACE" "$SPAN" >"$T/otlp.json" <<'EOF'
import json, sys
base, n, trace, span = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ns = lambda s: str(s * 1000000000)
start = ns(base - 60)
def t(i):
    return base + 3 + 15 * i
orders = []
for method, step in (("GET", 10), ("POST", 3)):
    for i in range(n):
        p = {"attributes": [{"key": "method", "value": {"stringValue": method}}],
             "startTimeUnixNano": start, "timeUnixNano": ns(t(i)), "asDouble": step * (i + 1)}
        if method == "GET" and i == n - 1:
            p["exemplars"] = [{"timeUnixNano": ns(t(i)), "asDouble": 7.5,
                               "traceId": trace, "spanId": span}]
        orders.append(p)
depth = [{"startTimeUnixNano": start, "timeUnixNano": ns(t(i)), "asDouble": i % 5}
         for i in range(n)]
lat = [{"startTimeUnixNano": start, "timeUnixNano": ns(t(i)), "count": str(4 * (i + 1)),
        "sum": 2.0 * (i + 1), "bucketCounts": [str(i + 1), str(2 * (i + 1)), str(i + 1), "0"],
        "explicitBounds": [0.1, 0.5, 1]} for i in range(n)]
req = {"resourceMetrics": [{
    "resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "shop"}},
        {"key": "service.instance.id", "value": {"stringValue": "i-1"}}]},
    "scopeMetrics": [{"metrics": [
        {"name": "shop.orders", "description": "Orders placed.",
         "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": orders}},
        {"name": "shop.queue.depth", "description": "Orders waiting.",
         "gauge": {"dataPoints": depth}},
        {"name": "shop.latency", "unit": "s", "description": "Time to place an order.",
         "histogram": {"aggregationTemporality": 2, "dataPoints": lat}}]}]}]}
json.dump(req, sys.stdout)
EOF
code=$(http_req "$T/otlp-resp.json" "$VIGIL_URL/v1/metrics" -H 'Content-Type: application/json' \
    --data-binary @"$T/otlp.json")
check_eq "OTLP JSON load accepted ($(head -c 200 "$T/otlp-resp.json"))" 200 "$code"

# Grafana's time parameters: the editor sends whole seconds (getAdjustedInterval), the
# query path float seconds (formatTime).
START=$((BASE - 60))
END=$NOW
FORM=(-H 'Content-Type: application/x-www-form-urlencoded')

# post PATH OUT [--data-urlencode k=v ...]: form-encoded POST; prints the status.
post() {
    local path=$1 out=$2
    shift 2
    http_req "$T/$out" "$VIGIL_URL$path" -X POST "${FORM[@]}" "$@"
}
# get PATH OUT [--data-urlencode k=v ...]: GET with a query string; prints the status.
get() {
    local path=$1 out=$2
    shift 2
    http_req "$T/$out" "$VIGIL_URL$path" -G "$@"
}
# jqf OUT FILTER: jq on a saved answer ("" when it is not JSON).
jqf() { jq -c "$2" "$T/$1" 2>/dev/null; }

# ---- health check ----
code=$(post /api/v1/query health.json --data 'query=1%2B1&time='"$NOW"'.25')
check_eq "health check (POST query=1+1): HTTP 200" 200 "$code"
check_eq "health check answer" '{"status":"success","data":{"resultType":"scalar","result":['"$NOW"'.250,"2"]}}' \
    "$(cat "$T/health.json")"
code=$(http_code "$VIGIL_URL/api/v1/query" -X POST "${FORM[@]}" --data 'query=1%2B1')
check_eq "health check without time: HTTP 200" 200 "$code"

# ---- buildinfo ----
code=$(get /api/v1/status/buildinfo bi.json)
check_eq "buildinfo: HTTP 200" 200 "$code"
check_contains "buildinfo reports a Prometheus version" "$(jqf bi.json .data.version)" '"2.'

# ---- metric names (query editor, metrics browser) ----
code=$(get /api/v1/label/__name__/values names.json --data-urlencode "start=$START" \
    --data-urlencode "end=$END" --data-urlencode "limit=40000")
check_eq "metric names: HTTP 200" 200 "$code"
check_eq "metric names" '["shop_latency_seconds_bucket","shop_latency_seconds_count","shop_latency_seconds_sum","shop_orders_total","shop_queue_depth"]' \
    "$(jqf names.json .data)"
code=$(get /api/v1/label/__name__/values names2.json --data-urlencode "start=$START" \
    --data-urlencode "end=$END" --data-urlencode 'match[]={job="shop",method="GET"}' \
    --data-urlencode "limit=40000")
check_eq "metric names with match[]" '200 ["shop_orders_total"]' "$code $(jqf names2.json .data)"
code=$(get /api/v1/label/__name__/values names3.json --data-urlencode "start=$START" \
    --data-urlencode "end=$END" --data-urlencode "limit=2")
check_eq "metric names with limit=2 (truncated, with a warning)" \
    '200 ["shop_latency_seconds_bucket","shop_latency_seconds_count"] ["results truncated due to limit"]' \
    "$code $(jqf names3.json .data) $(jqf names3.json .warnings)"

# ---- label names ----
code=$(post /api/v1/labels labels.json --data-urlencode "start=$START" --data-urlencode "end=$END")
check_eq "label names (POST): HTTP 200" 200 "$code"
check_eq "label names" '["__name__","instance","job","le","method"]' "$(jqf labels.json .data)"
code=$(post /api/v1/labels labels2.json --data-urlencode "start=$START" --data-urlencode "end=$END" \
    --data-urlencode 'match[]=shop_orders_total')
check_eq "label names of one metric (match[])" '200 ["__name__","instance","job","method"]' \
    "$code $(jqf labels2.json .data)"

# ---- label values ----
code=$(get /api/v1/label/method/values methods.json --data-urlencode "start=$START" \
    --data-urlencode "end=$END" --data-urlencode 'match[]=shop_orders_total')
check_eq "label values of method for one metric" '200 ["GET","POST"]' "$code $(jqf methods.json .data)"
code=$(get /api/v1/label/job/values jobs.json --data-urlencode "start=$START" --data-urlencode "end=$END")
check_eq "label values of job" '200 ["shop"]' "$code $(jqf jobs.json .data)"

# ---- series ----
code=$(post /api/v1/series series.json --data-urlencode 'match[]=shop_orders_total' \
    --data-urlencode "start=$START" --data-urlencode "end=$END" --data-urlencode "limit=40000")
check_eq "series (POST): HTTP 200" 200 "$code"
check_eq "series of shop_orders_total" \
    '[{"__name__":"shop_orders_total","instance":"i-1","job":"shop","method":"GET"},{"__name__":"shop_orders_total","instance":"i-1","job":"shop","method":"POST"}]' \
    "$(jqf series.json .data)"

# ---- metadata ----
code=$(get /api/v1/metadata meta.json)
check_eq "metadata: HTTP 200" 200 "$code"
check_eq "metadata of the counter" '[{"type":"counter","help":"Orders placed.","unit":""}]' \
    "$(jqf meta.json '.data.shop_orders_total')"
check_eq "metadata of the gauge" '"gauge"' "$(jqf meta.json '.data.shop_queue_depth[0].type')"
# Prometheus lists a histogram under its family name (Grafana derives _bucket, _sum and
# _count from that entry).
check_eq "metadata of the histogram, in the whole list" '"histogram"' "$(jqf meta.json '.data.shop_latency_seconds[0].type')"
code=$(get /api/v1/metadata meta2.json --data-urlencode metric=shop_latency_seconds)
check_eq "metadata of the histogram by its family name" '200 "histogram"' "$code $(jqf meta2.json '.data.shop_latency_seconds[0].type')"
code=$(get /api/v1/metadata meta1.json --data-urlencode metric=shop_queue_depth)
check_eq "metadata of one metric" '200 ["shop_queue_depth"]' "$code $(jqf meta1.json '.data|keys')"

# ---- panel queries ----
# check_close WHAT WANT GOT: floats equal within 1e-9 relative.
check_close() {
    if python3 -c 'import sys; w, g = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(w - g) <= 1e-9 * max(1, abs(w)) else 1)' "$2" "$3" 2>/dev/null
    then pass "$1 ($3)"; else fail "$1: expected $2, got [$3]"; fi
}
code=$(post /api/v1/query_range range.json --data-urlencode 'query=sum by (method) (rate(shop_orders_total[1m]))' \
    --data-urlencode "start=$((LAST - 120))" --data-urlencode "end=$LAST" --data-urlencode "step=15")
check_eq "range query (POST): HTTP 200, matrix" '200 "matrix"' "$code $(jqf range.json .data.resultType)"
check_eq "range query: one series per method" '[{"method":"GET"},{"method":"POST"}]' \
    "$(jqf range.json '[.data.result[].metric]')"
check_eq "range query: 9 steps of 15 s" '[9,9]' "$(jqf range.json '[.data.result[].values|length]')"
# Samples 15 s apart in a 1m window: 4 samples, extrapolated to the window's start.
check_close "rate of GET (10 per 15 s)" 0.6666666666666666 "$(jqf range.json '.data.result[0].values[-1][1]' | tr -d '"')"
check_close "rate of POST (3 per 15 s)" 0.2 "$(jqf range.json '.data.result[1].values[-1][1]' | tr -d '"')"
check_eq "range query: step timestamps" "$((LAST - 120)) $LAST" \
    "$(jqf range.json '.data.result[0].values[0][0]') $(jqf range.json '.data.result[0].values[-1][0]')"

code=$(post /api/v1/query inst.json --data-urlencode 'query=shop_queue_depth' --data-urlencode "time=$LAST.5")
# Raw text: jq would print 1700000000.500 as 1700000000.5.
check_contains "instant query of the gauge (HTTP $code)" "$(cat "$T/inst.json")" \
    "\"value\":[$LAST.500,\"$(((NPTS - 1) % 5))\"]"
code=$(post /api/v1/query hq.json \
    --data-urlencode 'query=histogram_quantile(0.5, sum by (le) (rate(shop_latency_seconds_bucket[1m])))' \
    --data-urlencode "time=$LAST")
check_eq "histogram_quantile: HTTP 200, vector" '200 "vector"' "$code $(jqf hq.json .data.resultType)"
# Per-bucket rates 1:2:1:0 -> cumulative 1, 3, 4, 4: the median (rank 2) is in (0.1, 0.5].
check_close "histogram_quantile(0.5) of the latency" 0.3 "$(jqf hq.json '.data.result[0].value[1]' | tr -d '"')"

code=$(post /api/v1/query badq.json --data-urlencode 'query=sum(rate(shop_orders_total[1m])' \
    --data-urlencode "time=$LAST")
check_eq "a broken query: HTTP 400 bad_data" '400 "bad_data"' "$code $(jqf badq.json .errorType)"
check_contains "the error names the parameter and a position" "$(jqf badq.json .error)" 'invalid parameter \"query\": 1:'

# ---- exemplars ----
code=$(post /api/v1/query_exemplars ex.json \
    --data-urlencode 'query=sum by (method) (rate(shop_orders_total[1m]))' \
    --data-urlencode "start=$((LAST - 300))" --data-urlencode "end=$NOW")
check_eq "exemplars (POST): HTTP 200" 200 "$code"
check_eq "exemplar series" '[{"__name__":"shop_orders_total","instance":"i-1","job":"shop","method":"GET"}]' \
    "$(jqf ex.json '[.data[].seriesLabels]')"
check_eq "exemplar content" "[{\"labels\":{\"span_id\":\"$SPAN\",\"trace_id\":\"$TRACE\"},\"value\":\"7.5\",\"timestamp\":$LAST}]" \
    "$(jqf ex.json '.data[0].exemplars')"
code=$(post /api/v1/query_exemplars ex2.json --data-urlencode 'query=shop_queue_depth' \
    --data-urlencode "start=$START" --data-urlencode "end=$NOW")
check_eq "exemplars of a series without any" '200 []' "$code $(jqf ex2.json .data)"

# ---- the query counters ----
check_contains "queries are counted in /metrics" "$(vigil_get /metrics)" \
    'vigil_query_requests_total{endpoint="query",status="bad_data"} 1'

vigil_alive || fail "vigil is still up"
