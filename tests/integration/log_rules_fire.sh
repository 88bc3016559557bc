#!/usr/bin/env bash
# Log rules through the binary: a `type: logql` group (Vigil's per-group marker) with a
# LogQL alert and a LogQL recording rule runs on log lines pushed with the Loki push API
# (JSON, as promtail and Grafana Alloy send it). The alert must fire with the stream
# labels kept by the expression, the rule's labels and its templated annotation in
# /api/v1/alerts; the recording rule's series must be queryable with PromQL; the rules
# API must mark the group's rules healthy; a second group on a stream with too few
# errors must stay quiet. Loopback only, bounded.
IT_TIMEOUT=${IT_TIMEOUT:-90}
source "$(dirname "$0")/lib.sh"

need_cmd jq python3 curl

cat >"$T/logrules.yml" <<'EOF'
groups:
  - name: app-logs
    type: logql
    interval: 1s
    rules:
      - alert: AppErrors
        expr: sum by (app, env) (count_over_time({app="checkout"} |= "ERROR" [1m])) > 2
        labels:
          severity: page
          source: '{{ $labels.app }}-logs'
        annotations:
          summary: '{{ $value }} error lines from {{ $labels.app }} ({{ $labels.env }})'
      - record: app:log_lines:rate1m
        expr: sum by (app) (rate({app=~"checkout|cart"}[1m]))
  - name: quiet
    type: logql
    interval: 1s
    rules:
      - alert: CartErrors
        expr: sum by (app) (count_over_time({app="cart"} |= "ERROR" [1m])) > 2
EOF
printf 'global:\n  evaluation_interval: 1s\nrule_files:\n  - %s\n' "$T/logrules.yml" >"$T/vigil.yml"
vigil_start --config "$T/vigil.yml"

# Ten checkout lines (four errors) and three cart lines (one error), all in the last
# few seconds.
now_ns=$(python3 -c 'import time; print(time.time_ns())')
python3 - "$now_ns" >"$T/push.json" <<'EOF'
import json, sys
now = int(sys.argv[1])
def lines(n, err_every, base):
    return [[str(now - (n - i) * 200_000_000), ("ERROR payment failed id=%d" if i % err_every == 0 else "INFO ok id=%d") % i] for i in range(n)]
print(json.dumps({"streams": [
    {"stream": {"app": "checkout", "env": "prod"}, "values": lines(10, 3, now)},
    {"stream": {"app": "cart", "env": "prod"}, "values": lines(3, 3, now)},
]}))
EOF
code=$(http_req "$T/push.txt" "$VIGIL_URL/loki/api/v1/push" -H 'Content-Type: application/json' --data-binary @"$T/push.json")
check_eq "Loki push accepted" 204 "$code"

firing() {
    [ "$(vigil_get /api/v1/alerts | jq -r '[.data.alerts[] | select(.labels.alertname=="AppErrors" and .state=="firing")] | length')" = 1 ]
}
if wait_until 20 firing; then
    pass "the LogQL alert fires"
else
    fail "AppErrors never fired: $(vigil_get /api/v1/alerts | head -c 600)"
fi
alert=$(vigil_get /api/v1/alerts | jq -c '.data.alerts[] | select(.labels.alertname=="AppErrors")')
check_eq "its labels: the expression's, the rule's (templated) and alertname" \
    '{"alertname":"AppErrors","app":"checkout","env":"prod","severity":"page","source":"checkout-logs"}' \
    "$(jq -c -S '.labels' <<<"$alert")"
check_eq "its annotation is templated with the value and labels" \
    "4 error lines from checkout (prod)" "$(jq -r '.annotations.summary' <<<"$alert")"
check_eq "its value" "4e+00" "$(jq -r '.value' <<<"$alert")"
check_eq "the quiet group's alert does not fire" 0 \
    "$(vigil_get /api/v1/alerts | jq '[.data.alerts[] | select(.labels.alertname=="CartErrors")] | length')"

recorded() {
    [ "$(vigil_get /api/v1/query -G --data-urlencode 'query=app:log_lines:rate1m' | jq '.data.result | length')" = 2 ]
}
if wait_until 10 recorded; then
    pass "the LogQL recording rule's series are queryable with PromQL"
else
    fail "app:log_lines:rate1m: $(vigil_get /api/v1/query -G --data-urlencode 'query=app:log_lines:rate1m' | head -c 400)"
fi
got=$(vigil_get /api/v1/query -G --data-urlencode 'query=app:log_lines:rate1m * 60' |
    jq -c '[.data.result[] | [.metric.app, (.value[1] | tonumber | round)]] | sort')
check_eq "lines per minute per app (PromQL over the recorded series)" '[["cart",3],["checkout",10]]' "$got"
check_eq "ALERTS has the LogQL alert" 1 \
    "$(vigil_get /api/v1/query -G --data-urlencode 'query=ALERTS{alertname="AppErrors",alertstate="firing",app="checkout"}' | jq '.data.result | length')"
health=$(vigil_get /api/v1/rules | jq -r '[.data.groups[].rules[] | .health] | unique | join(",")')
check_eq "every log rule is healthy" ok "$health"
vigil_alive || fail "vigil is still up"
