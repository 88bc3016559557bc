#!/usr/bin/env bash
# A Zipkin-instrumented service posts v2 JSON spans with curl (POST /api/v2/spans): a
# server span of "zk-frontend" tagged as an error with an annotation, and its client
# child in "zk-backend". The trace is read back through the Tempo API as OTLP JSON and
# checked field by field (service names, kinds, ids, parent, attributes, error status,
# the annotation as an event, microseconds to nanoseconds), then again after a kill -9
# and restart: an acknowledged (202) batch survives. A body that is not a JSON array is
# refused with 400 and stores nothing.
source "$(dirname "$0")/lib.sh"

vigil_start

TID=5af7183fb1d4cf5f5af7183fb1d4cf5f
ROOT=6b221d5bc9e6496c
CHILD=7c332e6cdaf7507d
now_us=$(($(date +%s) * 1000000))
t0=$((now_us - 30000000)) # thirty seconds ago
cat >"$T/spans.json" <<JSON
[
 {"traceId":"$TID","id":"$ROOT","name":"get /cart","kind":"SERVER",
  "timestamp":$t0,"duration":25000,
  "localEndpoint":{"serviceName":"zk-frontend","ipv4":"10.0.0.1","port":8080},
  "tags":{"http.method":"GET","http.path":"/cart","error":"cart service down"},
  "annotations":[{"timestamp":$((t0 + 1000)),"value":"cache miss"}]},
 {"traceId":"$TID","id":"$CHILD","parentId":"$ROOT","name":"select cart","kind":"CLIENT",
  "timestamp":$((t0 + 2000)),"duration":10000,
  "localEndpoint":{"serviceName":"zk-backend"},
  "remoteEndpoint":{"serviceName":"postgres","ipv4":"10.0.0.9","port":5432},
  "tags":{"db.system":"postgresql"}}
]
JSON
code=$(http_req "$T/post.txt" "$VIGIL_URL/api/v2/spans" -H 'Content-Type: application/json' \
    --data-binary @"$T/spans.json")
check_eq "POST /api/v2/spans answers 202 ($(head -c 200 "$T/post.txt"))" 202 "$code"

jget() { jq -c -r "$2" "$1" 2>/dev/null; }
# span FILE ID FILTER: FILTER applied to the span with that (base64 or hex) id.
span() {
    jq -c -r --arg id "$2" "[.. | objects | select(has(\"spanId\")) |
        select(.spanId == \$id)][0] | $3" "$1" 2>/dev/null
}

check_trace() { # check_trace WHEN
    local f="$T/trace-$1.json" code
    code=$(http_req "$f" "$VIGIL_URL/api/traces/$TID")
    check_eq "$1: GET /api/traces/<id> answers 200" 200 "$code"
    check_eq "$1: two spans" 2 "$(jq '[.. | objects | select(has("spanId"))] | length' "$f")"
    check_eq "$1: services" '["zk-backend","zk-frontend"]' \
        "$(jq -c '[.. | objects | select(.key? == "service.name") | .value.stringValue] | sort' "$f")"
    check_eq "$1: root name" '"get /cart"' "$(span "$f" "$ROOT" '.name | tojson')"
    check_eq "$1: root kind SERVER (2)" 2 "$(span "$f" "$ROOT" '.kind')"
    check_eq "$1: child kind CLIENT (3)" 3 "$(span "$f" "$CHILD" '.kind')"
    check_eq "$1: child's parent" "$ROOT" "$(span "$f" "$CHILD" '.parentSpanId')"
    check_eq "$1: microseconds became nanoseconds" "$((t0 * 1000))" \
        "$(span "$f" "$ROOT" '.startTimeUnixNano')"
    check_eq "$1: duration kept" "$(((t0 + 25000) * 1000))" "$(span "$f" "$ROOT" '.endTimeUnixNano')"
    check_eq "$1: error tag is an error status" 2 "$(span "$f" "$ROOT" '.status.code')"
    check_eq "$1: error message" '"cart service down"' "$(span "$f" "$ROOT" '.status.message | tojson')"
    check_eq "$1: tag as attribute" '"GET"' \
        "$(span "$f" "$ROOT" '[.attributes[] | select(.key == "http.method") | .value.stringValue][0] | tojson')"
    check_eq "$1: annotation as event" '"cache miss"' "$(span "$f" "$ROOT" '.events[0].name | tojson')"
    check_eq "$1: remote service as peer.service" '"postgres"' \
        "$(span "$f" "$CHILD" '[.attributes[] | select(.key == "peer.service") | .value.stringValue][0] | tojson')"
}
check_trace "after the POST"

# Not an array: refused whole, nothing stored.
code=$(http_req "$T/bad.txt" "$VIGIL_URL/api/v2/spans" -H 'Content-Type: application/json' \
    --data-binary '{"traceId":"1"}')
check_eq "a body that is not a JSON array answers 400" 400 "$code"
check_contains "the 400 says why" "$(cat "$T/bad.txt")" "array"

# kill -9 right after the acknowledgement, then the same answers.
vigil_kill9
vigil_start
check_trace "after kill -9 and restart"

it_finish
