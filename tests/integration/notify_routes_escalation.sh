#!/usr/bin/env bash
# notify_routes_escalation: the built-in notifiers' route tree through the binary, seen
# where a user sees it (the receivers' webhook sinks, tests/integration/notify_sinks.py):
#  - routing by label matchers: team=db alerts go to receiver db, others to the root's;
#  - inhibition: a firing severity=critical alert mutes severity=warning ones of the
#    same team (inhibit_rules with equal: [team]);
#  - escalation: a route's escalate {after, receiver} sends its alerts still firing after
#    `after` to the second receiver, once; a silenced alert is neither notified nor
#    escalated.
IT_TIMEOUT=${IT_TIMEOUT:-90}
source "$(dirname "$0")/lib.sh"

SINK="$IT_DIR/notify_sinks.py"
P=$(free_port)
SINK_URL="http://127.0.0.1:$P"
start_bg sink python3 "$SINK" http "$P" "$T/http.jsonl"
url_ok() { [ "$(http_code "$1")" = 200 ]; }
wait_until 10 url_ok "$SINK_URL/count/x" || die "sink started"

cat >"$T/rules.yml" <<'YAML'
groups:
  - name: routes
    interval: 1s
    rules:
      - alert: DbDown
        expr: vector(1)
        labels: {team: db, severity: critical}
      - alert: DbSlow
        expr: vector(1)
        labels: {team: db, severity: warning}
      - alert: WebSlow
        expr: vector(1)
        labels: {team: web, severity: warning}
      - alert: DbHushed
        expr: vector(1)
        labels: {team: db, severity: critical}
YAML
cat >"$T/vigil.yml" <<YAML
global:
  evaluation_interval: 1s
rule_files: ['rules.yml']
notifications:
  route:
    receiver: default
    group_by: [alertname]
    group_wait: 500ms
    group_interval: 1h
    repeat_interval: 1h
    routes:
      - matchers: ['team="db"']
        receiver: db
        escalate: {after: 3s, receiver: pager}
  receivers:
    - name: default
      webhook_configs: [{url: '$SINK_URL/ok/default'}]
    - name: db
      webhook_configs: [{url: '$SINK_URL/ok/db'}]
    - name: pager
      webhook_configs: [{url: '$SINK_URL/ok/pager'}]
  inhibit_rules:
    - {source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'],
       equal: [team]}
  delivery: {timeout: 2s, initial_backoff: 200ms, max_backoff: 1s, tick: 200ms}
YAML
vigil_start --config "$T/vigil.yml"

sil=$(curl -s --max-time 10 -X POST "$VIGIL_URL/api/v1/silences" -H 'Content-Type: application/json' \
    --data-binary '{"matchers":[{"name":"alertname","value":"DbHushed","isRegex":false}],"endsAt":"2099-01-01T00:00:00Z","createdBy":"it","comment":"known"}')
check_eq "silence created (${sil:0:200})" 36 "$(printf '%s' "$sil" | jq -r '.silenceID // empty' | wc -c | awk '{print $1 - 1}')"

# alert names each path received (firing notifications)
names() {
    jq -r -s --arg p "$1" '[.[] | select(.path == $p and .status == 200) | .body.alerts[]
        | select(.status == "firing") | .labels.alertname] | unique | join(",")' "$T/http.jsonl"
}
has() { [ "$(names "$1")" = "$2" ]; }
wait_until 20 has /ok/db DbDown && pass "team=db routed to receiver db" \
    || fail "team=db routed to receiver db: got [$(names /ok/db)]"
wait_until 20 has /ok/default WebSlow && pass "the rest went to the root's receiver" \
    || fail "the rest went to the root's receiver: got [$(names /ok/default)]"
wait_until 20 has /ok/pager DbDown && pass "DbDown escalated to pager" \
    || fail "DbDown escalated to pager: got [$(names /ok/pager)]"

# when the escalation came: `after` (3 s) past the alert's start, so well after receiver
# db's first notification (group_wait 500 ms)
gap=$(jq -r -s '([.[] | select(.path == "/ok/pager")][0].time) - ([.[] | select(.path == "/ok/db")][0].time)
    | . * 10 | floor' "$T/http.jsonl")
check_ge "escalation came at least 2 s after the first notification (tenths: $gap)" 20 "$gap"

sleep 3 # more ticks: nothing else may arrive
check_eq "DbSlow inhibited by DbDown (same team): never notified" "DbDown" "$(names /ok/db)"
check_eq "DbHushed silenced: never notified or escalated" "DbDown" "$(names /ok/pager)"
check_eq "escalated once" 1 "$(jq -s '[.[] | select(.path == "/ok/pager")] | length' "$T/http.jsonl")"
check_eq "nothing for db reached the root receiver" "WebSlow" "$(names /ok/default)"
alerts_state() { vigil_get /api/v1/alerts | jq -r --arg n "$1" '.data.alerts[] | select(.labels.alertname == $n) | .state'; }
check_eq "DbSlow still firing in /api/v1/alerts (inhibition mutes notifications only)" firing "$(alerts_state DbSlow)"
vigil_stop
