#!/usr/bin/env bash
# alertmanager_client_options: the `alerting.alertmanagers[]` keys a prometheus.yml carries
# over, driven through the binary against two loopback sinks that implement
# POST <path_prefix>/api/v2/alerts (tests/integration/notify_sinks.py):
#  - sink A (http) sits behind HTTP basic auth (path_prefix /auth/alice/s3cret: the sink
#    answers 401 without the right credentials); the entry sets basic_auth from a
#    password_file and alert_relabel_configs that drop one alert, rewrite a label and
#    drop another label;
#  - sink B (https, a throwaway self-signed certificate whose only name is vigil-test)
#    is reached at 127.0.0.1 with tls_config {ca_file, server_name: vigil-test} and a
#    bearer_token_file; it gets every alert unchanged (relabelling is per entry).
# Both Alertmanagers receive the alerts (more than one target), each with the right
# Authorization header; a third entry with a wrong password is refused (401) and its
# failure shows in /api/v1/notifications and prometheus_notifications_errors_total.
IT_TIMEOUT=${IT_TIMEOUT:-90}
source "$(dirname "$0")/lib.sh"
need_cmd openssl

SINK="$IT_DIR/notify_sinks.py"
python3 "$SINK" cert "$T" DNS:vigil-test || die "openssl made a certificate"
printf 's3cret\n' >"$T/password"
printf 'tok-123\n' >"$T/token"

PA=$(free_port)
PB=$(free_port)
start_bg sink-a python3 "$SINK" http "$PA" "$T/a.jsonl"
start_bg sink-b python3 "$SINK" http "$PB" "$T/b.jsonl" --tls "$T/cert.pem" "$T/key.pem"
url_ok() { [ "$(http_code "$1" "${@:2}")" = 200 ]; }
wait_until 10 url_ok "http://127.0.0.1:$PA/count/x" || die "sink A started"
wait_until 10 url_ok "https://127.0.0.1:$PB/count/x" -k || die "sink B started"

cat >"$T/rules.yml" <<'YAML'
groups:
  - name: am
    interval: 1s
    rules:
      - alert: KeepMe
        expr: vector(1)
        labels: {env: prod, secret: hush}
      - alert: DropMe
        expr: vector(1)
YAML
cat >"$T/vigil.yml" <<YAML
global:
  evaluation_interval: 1s
rule_files: ['rules.yml']
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$PA']}]
      path_prefix: /auth/alice/s3cret
      timeout: 5s
      api_version: v2
      basic_auth: {username: alice, password_file: '$T/password'}
      alert_relabel_configs:
        - {source_labels: [alertname], regex: DropMe, action: drop}
        - {source_labels: [env], target_label: stage, replacement: 'is-\$1'}
        - {action: labeldrop, regex: secret}
    - scheme: https
      static_configs: [{targets: ['127.0.0.1:$PB']}]
      path_prefix: /ok/b
      bearer_token_file: '$T/token'
      tls_config: {ca_file: '$T/cert.pem', server_name: vigil-test}
    - static_configs: [{targets: ['localhost:$PA']}]
      path_prefix: /auth/alice/s3cret
      basic_auth: {username: alice, password: wrong}
notifications:
  delivery: {timeout: 3s, initial_backoff: 200ms, max_backoff: 400ms, max_attempts: 2, tick: 200ms}
YAML
vigil_start --config "$T/vigil.yml"

# the alerts each sink accepted (2xx), one JSON object per line
alerts_of() { jq -c 'select(.status == 200) | .body[]' "$1" 2>/dev/null; }
has_alert() { alerts_of "$1" | jq -r .labels.alertname | grep -qx "$2"; }
wait_until 30 has_alert "$T/a.jsonl" KeepMe && pass "sink A (basic auth) received KeepMe" \
    || fail "sink A (basic auth) received KeepMe: $(head -c 400 "$T/a.jsonl" 2>/dev/null)"
wait_until 30 has_alert "$T/b.jsonl" KeepMe && pass "sink B (https) received KeepMe" \
    || fail "sink B (https) received KeepMe: $(head -c 400 "$T/b.jsonl" 2>/dev/null); $(grep -i alertmanager "$T/vigil.1.log" | tail -n 3)"
wait_until 10 has_alert "$T/b.jsonl" DropMe && pass "sink B received DropMe (relabelling is per entry)" \
    || fail "sink B received DropMe"

# sink A: the path, the header, and the relabelled alerts
a_ok=$(jq -c 'select(.status == 200)' "$T/a.jsonl" | head -n 1)
check_eq "sink A: path_prefix + /api/v2/alerts" /auth/alice/s3cret/api/v2/alerts "$(printf '%s' "$a_ok" | jq -r .path)"
check_eq "sink A: Authorization header" "Basic $(printf 'alice:s3cret' | base64)" "$(printf '%s' "$a_ok" | jq -r .auth)"
keep=$(alerts_of "$T/a.jsonl" | jq -c 'select(.labels.alertname == "KeepMe")' | head -n 1)
check_eq "sink A: alert_relabel_configs set stage" is-prod "$(printf '%s' "$keep" | jq -r .labels.stage)"
check_eq "sink A: alert_relabel_configs dropped the secret label" null "$(printf '%s' "$keep" | jq -r .labels.secret)"
check_eq "sink A: the original labels stay" prod "$(printf '%s' "$keep" | jq -r .labels.env)"
check_eq "sink A: DropMe was dropped" 0 "$(alerts_of "$T/a.jsonl" | jq -c 'select(.labels.alertname == "DropMe")' | wc -l)"

# sink B: TLS with the configured CA and server name, bearer token from the file
b_ok=$(jq -c 'select(.status == 200)' "$T/b.jsonl" | head -n 1)
check_eq "sink B: path" /ok/b/api/v2/alerts "$(printf '%s' "$b_ok" | jq -r .path)"
check_eq "sink B: Authorization header (bearer_token_file, trimmed)" "Bearer tok-123" "$(printf '%s' "$b_ok" | jq -r .auth)"
check_eq "sink B: labels unchanged" hush \
    "$(alerts_of "$T/b.jsonl" | jq -r 'select(.labels.alertname == "KeepMe") | .labels.secret' | head -n 1)"

# the wrong password: refused by the sink, recorded as failed, counted
wrong_url="http://localhost:$PA/auth/alice/s3cret/api/v2/alerts"
wrong_failed() {
    vigil_get '/api/v1/notifications?limit=500' |
        jq -e --arg r "$wrong_url" '[.data.attempts[] | select(.receiver == $r and .status == "failed")] | length > 0'
}
wait_until 20 wrong_failed && pass "wrong password: the attempt history shows the failure" \
    || fail "wrong password: the attempt history shows the failure: $(vigil_get '/api/v1/notifications?limit=20' | head -c 600)"
check_contains "wrong password: the error carries the 401" \
    "$(vigil_get '/api/v1/notifications?limit=500' | jq -r --arg r "$wrong_url" '[.data.attempts[] | select(.receiver == $r)][0].error')" \
    "HTTP 401"
check_ge "sink A saw the wrong password refused" 1 "$(jq -r 'select(.status == 401) | .auth' "$T/a.jsonl" | grep -c "Basic $(printf 'alice:wrong' | base64)")"
errs=$(vigil_get /metrics | awk -v u="$wrong_url" 'index($0, "prometheus_notifications_errors_total{alertmanager=\"" u "\"}") == 1 {print $2}')
check_ge "wrong password: prometheus_notifications_errors_total" 1 "${errs%%.*}"
check_contains "two good Alertmanagers and a bad one discovered" "$(vigil_get /metrics)" \
    "prometheus_notifications_alertmanagers_discovered 3"
vigil_stop
