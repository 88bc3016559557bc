#!/usr/bin/env bash
# notify_survives_restart: the built-in notifiers across restarts of the binary, with
# loopback webhook sinks (tests/integration/notify_sinks.py).
#  1. Alert Steady fires and is delivered once to sink A. Alert Later routes to a
#     receiver whose sink B is not running yet: its notification fails and waits in the
#     persistent queue (history shows a "retry").
#  2. vigil is killed with kill -9 and restarted. The rule is checked against
#     repeat_interval: 1h and group_interval: 1h: within 6 evaluation intervals (1s) after
#     the restart sink A gets no second notification for Steady (the notification log
#     survived), and the alert keeps its activeAt (the firing state survived).
#  3. Sink B starts: the queued notification for Later, restored from disk at start
#     (vigil logs "restored pending notifications"), arrives exactly once.
#  4. vigil is stopped with SIGTERM and started again: still no second notification to
#     either sink.
IT_TIMEOUT=${IT_TIMEOUT:-90}
source "$(dirname "$0")/lib.sh"

SINK="$IT_DIR/notify_sinks.py"
PA=$(free_port)
PB=$(free_port)
A_URL="http://127.0.0.1:$PA"
B_URL="http://127.0.0.1:$PB"
start_bg sink-a python3 "$SINK" http "$PA" "$T/a.jsonl"
url_ok() { [ "$(http_code "$1")" = 200 ]; }
wait_until 10 url_ok "$A_URL/count/x" || die "sink A started"

cat >"$T/rules.yml" <<'YAML'
groups:
  - name: restart
    interval: 1s
    rules:
      - alert: Steady
        expr: vector(1)
        labels: {severity: page}
      - alert: Later
        expr: vector(1)
        labels: {severity: page}
YAML
cat >"$T/vigil.yml" <<YAML
global:
  evaluation_interval: 1s
rule_files: ['rules.yml']
notifications:
  route:
    receiver: a
    group_by: [alertname]
    group_wait: 500ms
    group_interval: 1h
    repeat_interval: 1h
    routes:
      - matchers: ['alertname="Later"']
        receiver: b
  receivers:
    - name: a
      webhook_configs: [{url: '$A_URL/ok/hook'}]
    - name: b
      webhook_configs: [{url: '$B_URL/ok/later'}]
  delivery: {timeout: 2s, initial_backoff: 200ms, max_backoff: 1s, max_attempts: 1000, tick: 200ms}
YAML
vigil_start --config "$T/vigil.yml"

count_a() { curl -s --max-time 5 "$A_URL/count/ok/hook"; }
a_has() { [ "$(count_a)" -ge 1 ]; }
wait_until 20 a_has && pass "Steady delivered to sink A" || die "Steady delivered to sink A"
later_retrying() {
    vigil_get '/api/v1/notifications?limit=100' |
        jq -e '[.data.attempts[] | select(.receiver == "b" and .status == "retry")] | length > 0'
}
wait_until 20 later_retrying && pass "Later's notification failed while sink B is down" \
    || die "Later's notification failed while sink B is down"
active_at() { vigil_get /api/v1/alerts | jq -r '.data.alerts[] | select(.labels.alertname == "Steady") | .activeAt'; }
at1=$(active_at)
# let the notification log be written by a tick after the delivery
sleep 0.5

vigil_kill9
log "killed vigil with SIGKILL; restarting"
vigil_start --config "$T/vigil.yml"
sleep 6
check_eq "after kill -9: no second notification for Steady (repeat_interval 1h)" 1 "$(count_a)"
at2=$(active_at)
check_eq "after kill -9: Steady kept its activeAt" "$at1" "$at2"
check_contains "after kill -9: the pending notification was restored from disk" \
    "$(grep 'restored pending notifications' "$T/vigil.2.log")" '"restored":"'

start_bg sink-b python3 "$SINK" http "$PB" "$T/b.jsonl"
count_b() { curl -s --max-time 5 "$B_URL/count/ok/later"; }
b_has() { [ "$(count_b)" -ge 1 ]; }
wait_until 20 b_has && pass "the queued notification reached sink B after the restart" \
    || fail "the queued notification reached sink B after the restart"
check_eq "Later's notification is the one for Later" Later \
    "$(jq -r 'select(.status == 200) | .body.groupLabels.alertname' "$T/b.jsonl" | head -n 1)"
sleep 2
check_eq "sink B got it exactly once" 1 "$(count_b)"

vigil_stop
log "stopped vigil with SIGTERM; restarting"
vigil_start --config "$T/vigil.yml"
sleep 6
check_eq "after SIGTERM: no second notification for Steady" 1 "$(count_a)"
check_eq "after SIGTERM: no second notification for Later" 1 "$(count_b)"
check_eq "after SIGTERM: Steady kept its activeAt" "$at1" "$(active_at)"
vigil_stop
