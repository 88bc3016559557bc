#!/usr/bin/env bash
# A user ships logs to Vigil as promtail/Alloy and curl users do (Loki's push API, in
# both encodings: JSON, and snappy-compressed protobuf from loki_push_pb.py), then reads
# them back through every endpoint of Loki's query API with curl, as Grafana's Loki data
# source and logcli call them, checking the answers with jq; and follows new lines live
# through /loki/api/v1/tail with a WebSocket client (loki_tail_client.mjs, the npm `ws`
# package), ending with a clean close.
source "$(dirname "$0")/lib.sh"
need_cmd node

vigil_start
U=$VIGIL_URL
NOW=$(date +%s%N)
T1=$((NOW - 3000000000)) T2=$((NOW - 2000000000)) T3=$((NOW - 1000000000))

# ---- push, both encodings ----
cat >"$T/push.json" <<EOF
{"streams":[
 {"stream":{"app":"it-json","env":"test"},"values":[
   ["$T1","level=info msg=\"user login\" status=200 took=12ms"],
   ["$T2","level=error msg=\"db timeout\" status=500 took=1.5s",{"trace_id":"0af7651916cd43dd8448eb211c80319c"}],
   ["$T3","level=info msg=\"user login\" status=200 took=7ms"]]},
 {"stream":{"app":"it-json","env":"stage"},"values":[["$T3","{\"level\":\"warn\",\"latency\":0.25}"]]}]}
EOF
cat >"$T/push-pb.json" <<EOF
{"streams":[{"stream":{"app":"it-pb","env":"test"},"values":[
   ["$T1","GET /api/items 200"],
   ["$T2","GET /api/items/7 404",{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","user":"u-1"}]]}]}
EOF
python3 "$IT_DIR/loki_push_pb.py" "$T/push-pb.json" >"$T/push.pb" || die "loki_push_pb.py wrote the protobuf body"
check_eq "push JSON" 204 "$(http_code "$U/loki/api/v1/push" -H 'Content-Type: application/json' \
    --data-binary @"$T/push.json")"
check_eq "push snappy protobuf" 204 "$(http_code "$U/loki/api/v1/push" \
    -H 'Content-Type: application/x-protobuf' --data-binary @"$T/push.pb")"

get() { # get OUT PATH [curl args]: GET with the arguments url-encoded; prints the status
    local out=$1 path=$2
    shift 2
    http_req "$out" "$U$path" -G "$@"
}
J=$T/answer.json

# ---- query_range: streams ----
check_eq "query_range 200" 200 "$(get "$J" /loki/api/v1/query_range --data-urlencode 'query={app="it-json",env="test"}' --data-urlencode since=5m)"
check_eq "query_range: resultType streams" streams "$(jq -r .data.resultType "$J")"
check_eq "query_range: the three lines, newest first" "$T3 $T2 $T1" \
    "$(jq -r '[.data.result[].values[][0]] | sort | reverse | join(" ")' "$J")"
check_eq "query_range: metadata joins the stream labels by default" 0af7651916cd43dd8448eb211c80319c \
    "$(jq -r '[.data.result[].stream.trace_id // empty] | join(",")' "$J")"
check_eq "query_range: stats summary" 3 "$(jq -r .data.stats.summary.totalEntriesReturned "$J")"
get "$J" /loki/api/v1/query_range --data-urlencode 'query={app="it-json",env="test"}' --data-urlencode since=5m \
    --data-urlencode direction=forward --data-urlencode limit=2 \
    -H 'X-Loki-Response-Encoding-Flags: categorize-labels' >/dev/null
check_eq "categorize-labels: one stream, its own labels" '{"app":"it-json","env":"test"}' \
    "$(jq -c '[.data.result[].stream] | unique | .[0]' "$J")"
check_eq "categorize-labels: forward, limit 2" "$T1 $T2" "$(jq -r '[.data.result[].values[][0]] | join(" ")' "$J")"
check_eq "categorize-labels: structuredMetadata third element" 0af7651916cd43dd8448eb211c80319c \
    "$(jq -r '.data.result[].values[] | select(.[0] == "'"$T2"'") | .[2].structuredMetadata.trace_id' "$J")"
get "$J" /loki/api/v1/query_range --data-urlencode 'query={app="it-pb"} | trace_id="4bf92f3577b34da6a3ce929d0e0e4736"' \
    --data-urlencode since=5m >/dev/null
check_eq "protobuf push: metadata filter finds the entry" "GET /api/items/7 404" \
    "$(jq -r '[.data.result[].values[][1]] | join("|")' "$J")"
get "$J" /loki/api/v1/query_range --data-urlencode 'query={app="it-json"} | logfmt | status >= 500 | line_format "{{.msg}}"' \
    --data-urlencode since=5m >/dev/null
check_eq "pipeline: logfmt, label filter, line_format" "db timeout" "$(jq -r '[.data.result[].values[][1]] | join("|")' "$J")"

# ---- metric queries ----
check_eq "Grafana's health check: vector(1)+vector(1)" 2 \
    "$(get "$J" /loki/api/v1/query --data-urlencode 'query=vector(1)+vector(1)' >/dev/null; jq -r '.data.result[0].value[1]' "$J")"
get "$J" /loki/api/v1/query --data-urlencode 'query=sum by (app) (count_over_time({app=~"it-.*"}[5m]))' >/dev/null
check_eq "instant vector: count per app" "it-json=4 it-pb=2" \
    "$(jq -r '[.data.result[] | "\(.metric.app)=\(.value[1])"] | join(" ")' "$J")"
get "$J" /loki/api/v1/query_range --data-urlencode 'query=sum(count_over_time({app="it-pb"}[1m]))' \
    --data-urlencode since=2m --data-urlencode step=15s >/dev/null
check_eq "range: matrix" matrix "$(jq -r .data.resultType "$J")"
check_eq "range: last point counts both entries" 2 "$(jq -r '.data.result[0].values[-1][1]' "$J")"
check_eq "parse error: 400" 400 "$(get "$J" /loki/api/v1/query_range --data-urlencode 'query={app="it-pb"')"
check_contains "parse error: Loki's plain text" "$(cat "$J")" "parse error at line 1"

# ---- index endpoints ----
get "$J" /loki/api/v1/labels --data-urlencode since=5m >/dev/null
check_eq "labels" "app env" "$(jq -r '.data | join(" ")' "$J")"
get "$J" /loki/api/v1/label/env/values --data-urlencode 'query={app="it-json"}' --data-urlencode since=5m >/dev/null
check_eq "label values with a selector" "stage test" "$(jq -r '.data | join(" ")' "$J")"
get "$J" /loki/api/v1/series --data-urlencode 'match[]={app="it-pb"}' --data-urlencode 'match[]={env="stage"}' \
    --data-urlencode since=5m >/dev/null
check_eq "series: union of match[]" '[{"app":"it-json","env":"stage"},{"app":"it-pb","env":"test"}]' "$(jq -c .data "$J")"
get "$J" /loki/api/v1/index/stats --data-urlencode 'query={app="it-json"}' --data-urlencode since=5m >/dev/null
check_eq "index/stats" "2 4" "$(jq -r '"\(.streams) \(.entries)"' "$J")"
get "$J" /loki/api/v1/index/volume --data-urlencode 'query={app=~"it-.*"}' --data-urlencode since=5m >/dev/null
check_eq "index/volume: a vector by app, largest first" "it-json it-pb" \
    "$(jq -r '[.data.result[].metric.app] | join(" ")' "$J")"
get "$J" /loki/api/v1/index/volume_range --data-urlencode 'query={app=~"it-.*"}' --data-urlencode since=5m \
    --data-urlencode step=1m >/dev/null
check_eq "index/volume_range: a matrix" matrix "$(jq -r .data.resultType "$J")"
get "$J" /loki/api/v1/detected_labels --data-urlencode 'query={app=~"it-.*"}' --data-urlencode since=5m >/dev/null
check_eq "detected_labels" "app:2 env:2" "$(jq -r '[.detectedLabels[] | "\(.label):\(.cardinality)"] | join(" ")' "$J")"
get "$J" /loki/api/v1/detected_fields --data-urlencode 'query={app="it-json"}' --data-urlencode since=5m >/dev/null
check_eq "detected_fields: status is an int found by logfmt" 'int ["logfmt"]' \
    "$(jq -r '.fields[] | select(.label == "status") | "\(.type) \(.parsers | tojson)"' "$J")"
check_eq "detected_fields: took is a duration, latency a float from json" "duration float" \
    "$(jq -r '[(.fields[] | select(.label == "took") | .type), (.fields[] | select(.label == "latency") | .type)] | join(" ")' "$J")"
get "$J" /loki/api/v1/patterns --data-urlencode 'query={app="it-json",env="test"}' --data-urlencode since=5m >/dev/null
check_eq "patterns: logfmt lines cluster" 'level=<_> msg=<_> status=<_> took=<_>' "$(jq -r '.data[0].pattern' "$J")"
check_eq "patterns: samples add up" 3 "$(jq -r '[.data[].samples[][1]] | add' "$J")"
get "$J" /loki/api/v1/format_query --data-urlencode 'query={app="it-pb"}|="x"|json' >/dev/null
check_eq "format_query" '{app="it-pb"} |= "x" | json' "$(jq -r .data "$J")"
check_eq "buildinfo: a Loki 3 version" 3 "$(get "$J" /loki/api/v1/status/buildinfo >/dev/null; jq -r '.version | split(".")[0]' "$J")"
check_eq "/ready" 200 "$(http_code "$U/ready")"

# ---- live tail over a WebSocket ----
WS="ws://127.0.0.1:$VIGIL_HTTP_PORT/loki/api/v1/tail?query=%7Bapp%3D%22it-tail%22%7D"
start_bg tail node "$IT_DIR/loki_tail_client.mjs" "$WS" 3 30
TAIL_PID=$BG_PID
wait_until 10 grep -q open "$T/tail.log" || fail "tail client connected: $(cat "$T/tail.log")"
for i in 1 2 3; do
    now=$(date +%s%N)
    http_code "$U/loki/api/v1/push" -H 'Content-Type: application/json' \
        --data-binary "{\"streams\":[{\"stream\":{\"app\":\"it-tail\"},\"values\":[[\"$now\",\"tail line $i\"]]}]}" >/dev/null
    sleep 0.4
done
wait_until 20 bash -c "! kill -0 $TAIL_PID 2>/dev/null"
exit_status_of "$TAIL_PID"
check_eq "tail client got its lines and closed cleanly" 0 "$?"
check_eq "tail: the three lines in order" "tail line 1|tail line 2|tail line 3" \
    "$(grep '^{' "$T/tail.log" | jq -r .line | paste -sd '|')"
check_contains "tail: the server answered the close" "$(cat "$T/tail.log")" "closed with 1000"
