#!/usr/bin/env bash
# alertmanager_receives_alerts: a rule fires in Vigil and the alert reaches Debian's
# prometheus-alertmanager (GET /api/v2/alerts shows it with the rule's labels) and then
# resolves there; the same alert is delivered by the built-in notifiers through loopback
# sinks (tests/integration/notify_sinks.py): a webhook that works, one that fails twice
# (retried with backoff), one that hangs (times out without delaying the others), two
# Slack incoming webhooks (default and templated title/text; the bodies are checked field
# by field), and e-mail to an SMTP sink that rejects the first message.
# A second Alertmanager target (an HTTP sink implementing POST /api/v2/alerts) receives
# the same alerts as the real one. A silence created through /api/v1/silences keeps a second alert from the receivers,
# and /api/v1/notifications lists the attempts.
source "$(dirname "$0")/lib.sh"
need_cmd prometheus-alertmanager

AM_PORT=$(free_port)
HTTP_SINK_PORT=$(free_port)
SMTP_PORT=$(free_port)
SINK="$IT_DIR/notify_sinks.py"

cat >"$T/am.yml" <<YAML
route:
  receiver: blackhole
receivers:
  - name: blackhole
YAML
start_bg alertmanager prometheus-alertmanager --config.file="$T/am.yml" \
    --storage.path="$T/am-data" --web.listen-address="127.0.0.1:$AM_PORT" \
    --cluster.listen-address=""
AM_URL="http://127.0.0.1:$AM_PORT"
url_ok() { [ "$(http_code "$1")" = 200 ]; }
wait_until 30 url_ok "$AM_URL/-/ready" || die "alertmanager became ready"
start_bg http-sink python3 "$SINK" http "$HTTP_SINK_PORT" "$T/http.jsonl"
start_bg smtp-sink python3 "$SINK" smtp "$SMTP_PORT" "$T/smtp.jsonl" reject
SINK_URL="http://127.0.0.1:$HTTP_SINK_PORT"
wait_until 10 url_ok "$SINK_URL/count/ok" || die "http sink started"

cat >"$T/rules.yml" <<'YAML'
groups:
  - name: it
    interval: 1s
    rules:
      - alert: DiskFull
        expr: it_disk_used > 0
        labels: {severity: page, team: storage}
        annotations: {summary: 'disk {{ $labels.instance }} is full'}
      - alert: Quiet
        expr: it_disk_used > 0
        labels: {severity: info}
YAML
cat >"$T/vigil.yml" <<YAML
global:
  evaluation_interval: 1s
rule_files: ['rules.yml']
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]
      timeout: 5s
    - static_configs: [{targets: ['127.0.0.1:$HTTP_SINK_PORT']}]
      path_prefix: /ok/am2
notifications:
  route:
    receiver: all
    group_by: [alertname]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
  receivers:
    - name: all
      webhook_configs:
        - url: $SINK_URL/ok/hook
        - url: $SINK_URL/fail/2/hook
        - url: $SINK_URL/hang/hook
      slack_configs:
        - api_url: $SINK_URL/ok/slack
          channel: '#ops'
        - api_url: $SINK_URL/ok/slack2
          username: vigil-bot
          send_resolved: true
          title: '{{ toUpper .Status }} {{ .GroupLabels.alertname }}'
          text: '{{ len .Alerts.Firing }} firing, {{ len .Alerts.Resolved }} resolved for {{ .Receiver }}'
      email_configs:
        - to: 'Ops <ops@example.org>'
          from: vigil@example.org
          smarthost: 127.0.0.1:$SMTP_PORT
          require_tls: false
  delivery: {timeout: 2s, initial_backoff: 200ms, max_backoff: 1s, tick: 200ms}
YAML
vigil_start --config "$T/vigil.yml"

# it_disk_used{instance="db1"} = 1 through OTLP/HTTP JSON (a gauge), then 0 to resolve.
push() {
    local v=$1 now
    now=$(date +%s%N)
    http_code "$VIGIL_URL/v1/metrics" -H 'Content-Type: application/json' --data-binary \
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\"it\"}},{\"key\":\"service.instance.id\",\"value\":{\"stringValue\":\"db1\"}}]},\"scopeMetrics\":[{\"metrics\":[{\"name\":\"it_disk_used\",\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"$now\",\"asDouble\":$v}]}}]}]}]}"
}

# a silence for the Quiet alert, before anything fires
sil=$(curl -s --max-time 10 -X POST "$VIGIL_URL/api/v1/silences" -H 'Content-Type: application/json' \
    --data-binary '{"matchers":[{"name":"alertname","value":"Quiet","isRegex":false}],"endsAt":"2099-01-01T00:00:00Z","createdBy":"it","comment":"quiet please"}')
SIL_ID=$(printf '%s' "$sil" | jq -r '.silenceID // empty')
check_eq "silence created (${sil:0:200})" 36 "${#SIL_ID}"
check_eq "silence listed as active" active \
    "$(vigil_get /api/v1/silences | jq -r --arg id "$SIL_ID" '.[] | select(.id == $id) | .status.state')"

check_eq "OTLP gauge accepted" 200 "$(push 1)"
am_alert() { curl -s --max-time 5 "$AM_URL/api/v2/alerts?active=true" | jq -c '[.[] | select(.labels.alertname == "DiskFull")]'; }
am_has_alert() { [ "$(am_alert | jq length)" -ge 1 ]; }
if wait_until 60 am_has_alert; then
    a=$(am_alert | jq -c '.[0]')
    pass "DiskFull reached Alertmanager"
    check_eq "labels: severity" page "$(printf '%s' "$a" | jq -r .labels.severity)"
    check_eq "labels: team" storage "$(printf '%s' "$a" | jq -r .labels.team)"
    check_contains "annotation templated" "$(printf '%s' "$a" | jq -r .annotations.summary)" "is full"
else
    fail "DiskFull reached Alertmanager within 60 s: $(curl -s "$AM_URL/api/v2/alerts" | head -c 400)"
fi

# the second Alertmanager (the HTTP sink answering POST /ok/am2/api/v2/alerts) gets it too
am2_has() { jq -e -s '[.[] | select(.path == "/ok/am2/api/v2/alerts") | .body[] | select(.labels.alertname == "DiskFull")] | length > 0' "$T/http.jsonl"; }
wait_until 30 am2_has && pass "the second Alertmanager received DiskFull" \
    || fail "the second Alertmanager received DiskFull"
count() { curl -s --max-time 5 "$SINK_URL/count/$1"; }
delivered() { [ "$(count "$1")" -ge 1 ]; }
wait_until 30 delivered ok/hook && pass "webhook delivered" || fail "webhook delivered"
got_path() { jq -e -s --arg p "$1" '[.[] | select(.path == $p and .status == 200)] | length > 0' "$T/http.jsonl"; }
wait_until 30 got_path /ok/slack && pass "slack delivered" || fail "slack delivered"
wait_until 30 got_path /ok/slack2 && pass "templated slack delivered" || fail "templated slack delivered"
wait_until 30 delivered fail/2/hook && pass "failing webhook delivered after retries" \
    || fail "failing webhook delivered after retries"
smtp_got() { [ -s "$T/smtp.jsonl" ]; }
wait_until 30 smtp_got && pass "e-mail delivered after the SMTP sink rejected once" \
    || fail "e-mail delivered"

hook=$(jq -c 'select(.path == "/ok/hook") | .body' "$T/http.jsonl" | head -n 1)
check_eq "webhook version" 4 "$(printf '%s' "$hook" | jq -r .version)"
check_eq "webhook status" firing "$(printf '%s' "$hook" | jq -r .status)"
check_eq "webhook receiver" all "$(printf '%s' "$hook" | jq -r .receiver)"
check_eq "webhook groupLabels" DiskFull "$(printf '%s' "$hook" | jq -r .groupLabels.alertname)"
check_eq "webhook alert label" storage "$(printf '%s' "$hook" | jq -r '.alerts[0].labels.team')"
check_eq "webhook fingerprint is 16 hex digits" 16 "$(printf '%s' "$hook" | jq -r '.alerts[0].fingerprint | length')"
check_eq "the silenced alert never reached a receiver" 0 \
    "$(jq -c 'select(.path != "/ok/am2/api/v2/alerts")' "$T/http.jsonl" | grep -c '"Quiet"')"
fails=$(jq -r 'select(.path == "/fail/2/hook") | .status' "$T/http.jsonl" | grep -c 500 || true)
check_eq "failing webhook answered 500 twice" 2 "$fails"
# Slack: the incoming-webhook body as slack.c renders it (default title and text)
slack=$(jq -c 'select(.path == "/ok/slack") | .body' "$T/http.jsonl" | head -n 1)
check_eq "slack channel" '#ops' "$(printf '%s' "$slack" | jq -r .channel)"
check_eq "slack: no username unless configured" null "$(printf '%s' "$slack" | jq -r .username)"
check_eq "slack: one attachment" 1 "$(printf '%s' "$slack" | jq -r '.attachments | length')"
att=$(printf '%s' "$slack" | jq -c '.attachments[0]')
check_eq "slack title" '[FIRING:1] DiskFull (alertname="DiskFull")' "$(printf '%s' "$att" | jq -r .title)"
check_eq "slack fallback is the title" "$(printf '%s' "$att" | jq -r .title)" "$(printf '%s' "$att" | jq -r .fallback)"
check_eq "slack color while firing" danger "$(printf '%s' "$att" | jq -r .color)"
check_eq "slack title_link is the external URL" "$VIGIL_URL" "$(printf '%s' "$att" | jq -r .title_link)"
check_eq "slack mrkdwn_in" '["text"]' "$(printf '%s' "$att" | jq -c .mrkdwn_in)"
want_labels=$(printf '%s' "$hook" | jq -r '.alerts[0].labels | to_entries | map(select(.key != "alertname")) | sort_by(.key) | map("\(.key)=\"\(.value)\"") | join(" ")')
check_eq "slack text: status, name, summary, labels" "*firing* DiskFull: disk db1 is full \`$want_labels\`" \
    "$(printf '%s' "$att" | jq -r .text)"
slack2=$(jq -c 'select(.path == "/ok/slack2") | .body' "$T/http.jsonl" | head -n 1)
check_eq "slack templates: username" vigil-bot "$(printf '%s' "$slack2" | jq -r .username)"
check_eq "slack templates: no channel unless configured" null "$(printf '%s' "$slack2" | jq -r .channel)"
check_eq "slack templates: title" "FIRING DiskFull" "$(printf '%s' "$slack2" | jq -r '.attachments[0].title')"
check_eq "slack templates: text" "1 firing, 0 resolved for all" "$(printf '%s' "$slack2" | jq -r '.attachments[0].text')"
mail=$(jq -r .data "$T/smtp.jsonl" | head -n 40)
check_contains "mail subject" "$mail" "Subject: [FIRING:1] DiskFull"
check_contains "mail body" "$mail" "[FIRING] DiskFull"
check_eq "mail recipient" ops@example.org "$(jq -r '.to[0]' "$T/smtp.jsonl" | head -n 1)"

hang_timed_out() {
    vigil_get '/api/v1/notifications?limit=500' |
        jq -e '[.data.attempts[] | select(.integration == "webhook[2]" and (.error | contains("timed out")))] | length > 0'
}
wait_until 20 hang_timed_out && pass "history shows the hanging receiver's timeout" \
    || fail "history shows the hanging receiver's timeout"
st=$(vigil_get '/api/v1/notifications?limit=500')
check_contains "history shows retries" "$(printf '%s' "$st" | jq -r '[.data.attempts[].status] | join(",")')" "retry"
check_contains "history shows the Alertmanager" \
    "$(printf '%s' "$st" | jq -r '[.data.attempts[].integration] | join(",")')" "alertmanager"

# resolve: the gauge drops to 0; Alertmanager sees endsAt pass and the alert leaves its
# active list; the webhook gets a resolved notification
check_eq "OTLP gauge 0 accepted" 200 "$(push 0)"
am_resolved() { [ "$(am_alert | jq length)" = 0 ]; }
wait_until 60 am_resolved && pass "DiskFull resolved in Alertmanager" \
    || fail "DiskFull resolved in Alertmanager: $(am_alert | head -c 300)"
resolved_hook() { jq -e -s '[.[] | select(.path == "/ok/hook" and .body.status == "resolved")] | length > 0' "$T/http.jsonl"; }
wait_until 30 resolved_hook && pass "webhook got the resolution" || fail "webhook got the resolution"
resolved_slack() { jq -e -s '[.[] | select(.path == "/ok/slack2" and .body.attachments[0].color == "good")] | length > 0' "$T/http.jsonl"; }
wait_until 30 resolved_slack && pass "slack (send_resolved) got the resolution in green" \
    || fail "slack (send_resolved) got the resolution in green"
check_eq "slack resolved title" "RESOLVED DiskFull" \
    "$(jq -r 'select(.path == "/ok/slack2" and .body.attachments[0].color == "good") | .body.attachments[0].title' "$T/http.jsonl" | head -n 1)"
check_eq "slack without send_resolved got no resolution" 0 \
    "$(jq -r 'select(.path == "/ok/slack") | .body.attachments[0].color' "$T/http.jsonl" | grep -c good)"

code=$(http_code "$VIGIL_URL/api/v1/silence/$SIL_ID" -X DELETE)
check_eq "silence expired" 200 "$code"
check_eq "silence now expired" expired \
    "$(vigil_get /api/v1/silences | jq -r --arg id "$SIL_ID" '.[] | select(.id == $id) | .status.state')"
check_eq "expiring twice is refused" 400 "$(http_code "$VIGIL_URL/api/v1/silence/$SIL_ID" -X DELETE)"
check_eq "bad silence is 400" 400 "$(http_code "$VIGIL_URL/api/v1/silences" -X POST --data-binary '{"matchers":[]}')"
metrics=$(vigil_get /metrics)
check_contains "metrics: Alertmanager sends" "$metrics" "prometheus_notifications_sent_total{alertmanager=\"http://127.0.0.1:$AM_PORT/api/v2/alerts\"}"
check_contains "metrics: receiver sends" "$metrics" 'vigil_notifications_sent_total{receiver="all",integration="webhook[0]"}'
vigil_stop
