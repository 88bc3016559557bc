#!/usr/bin/env bash
# console_in_chromium: the web console in Debian's headless Chromium (playwright-core from
# npm drives it). Loads metrics, traces and logs through Vigil's real ingest paths
# (console_data.py), then console_in_chromium.mjs types and clicks through every page and
# checks what is shown. Vigil runs with a rule file (a recording rule, an alert that
# fires at once, a group whose limit makes its rule fail) and a webhook receiver on a
# loopback sink (notify_sinks.py), so the Alerts page has rules, a firing alert and a
# delivery to show; derived trace metrics are flushed every second for the Services page.
# The config also holds secrets (a scrape job's basic_auth password, a Slack api_url, an
# SMTP password): the Status page and /api/v1/status/config must show "<secret>" and never
# the values. Screenshots of each page go to the artifact dir
# ($VIGIL_BUILD_DIR/meson-logs/console/, or CONSOLE_ARTIFACT_DIR); with
# CONSOLE_UPDATE_DOCS=1 they are also copied to docs/console-<page>.png, which README.md
# links (run it so and commit them when the pages change; a plain test run leaves the
# source tree alone).
IT_TIMEOUT=${IT_TIMEOUT:-280}
. "$(dirname "$0")/lib.sh"

need_cmd node chromium
[ -d "$IT_DIR/node_modules/playwright-core" ] ||
    skip_all "playwright-core is not installed (npm ci in tests/integration; deploy/setup.sh --test does it)"

ART=${CONSOLE_ARTIFACT_DIR:-$VIGIL_BUILD_DIR/meson-logs/console}
mkdir -p "$ART"

SINK_PORT=$(free_port)
start_bg http-sink python3 "$IT_DIR/notify_sinks.py" http "$SINK_PORT" "$T/hook.jsonl"
sink_up() { [ "$(http_code "http://127.0.0.1:$SINK_PORT/count/ok")" = 200 ]; }
wait_until 10 sink_up || die "the webhook sink started"
cat >"$T/rules.yml" <<'YAML'
groups:
  - name: console
    interval: 1s
    rules:
      - record: console:demo_requests:rate1m
        expr: sum by (service) (rate(console_demo_requests_total[1m]))
      - alert: ConsoleAlwaysFiring
        expr: vector(1) > 0
        for: 1s
        labels: {severity: page, team: web}
        annotations: {summary: 'the console test alert', description: 'fires on vector(1)'}
  - name: limited
    interval: 1s
    limit: 1
    rules:
      - record: console:two_series
        expr: label_replace(vector(1), "copy", "a", "", "") or label_replace(vector(2), "copy", "b", "", "")
YAML
cat >"$T/vigil.yml" <<YAML
global:
  evaluation_interval: 1s
rule_files: ['rules.yml']
traces:
  derive_flush_interval: 1s
  service_graph_wait: 1s
notifications:
  route:
    receiver: hook
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
  receivers:
    - name: hook
      webhook_configs:
        - url: http://127.0.0.1:$SINK_PORT/ok/hook
    - name: chat
      slack_configs:
        - api_url: http://127.0.0.1:$SINK_PORT/services/T0/B0/SLACK-SECRET-VALUE
          channel: '#ops'
      email_configs:
        - to: ops@example.com
          from: vigil@example.com
          smarthost: 127.0.0.1:$SINK_PORT
          auth_username: vigil
          auth_password: SMTP-SECRET-VALUE
  delivery: {timeout: 2s, initial_backoff: 200ms, max_backoff: 1s, tick: 200ms}
scrape_configs:
  - job_name: console_secret_job
    scrape_interval: 1h
    basic_auth: {username: scraper, password: BASIC-SECRET-VALUE}
    static_configs: [{targets: ['127.0.0.1:$(free_port)']}]
YAML
vigil_start --config "$T/vigil.yml"
cfg=$(curl -s --max-time 10 "$VIGIL_URL/api/v1/status/config")
check_contains "status/config answers Prometheus's shape" "$cfg" '{"status":"success","data":{"yaml":"'
for shown in 'password: <secret>' 'api_url: <secret>' 'auth_password: <secret>' \
    'username: scraper' 'job_name: console_secret_job'; do
    check_contains "status/config shows $shown" "$cfg" "$shown"
done
if printf '%s' "$cfg" | grep -q 'SECRET-VALUE'; then
    fail "status/config never holds a secret value"
else
    pass "status/config never holds a secret value"
fi
python3 "$IT_DIR/console_data.py" "$VIGIL_URL" "$T/data.json" >"$T/data.log" 2>&1 ||
    die "demo data loaded through OTLP/HTTP and Loki push: $(tail -n 3 "$T/data.log")"
pass "demo metrics, traces and logs loaded through the ingest APIs"
hooked() { [ "$(curl -s --max-time 5 "http://127.0.0.1:$SINK_PORT/count/ok/hook")" -ge 1 ]; }
wait_until 30 hooked && pass "the firing alert reached the webhook sink" ||
    fail "the firing alert reached the webhook sink within 30 s"

# Error tracking and the service graph write on their flush interval; the pages read
# what is there, so wait for the errors API to list the demo exception first.
wait_until 30 sh -c "curl -s '$VIGIL_URL/api/v1/errors' | grep -q IllegalStateException" ||
    log "the error group did not show within 30 s; the Errors checks will say so"
# The edge to the database is counted when the client span's wait ends (1 s here).
wait_until 30 sh -c "curl -s '$VIGIL_URL/api/v1/query' --data-urlencode 'query=traces_service_graph_request_total{server=\"shop\"}' | grep -q cart" ||
    log "the service graph had no cart -> shop edge within 30 s; the Services checks will say so"

# The driver prints ok/FAIL lines; they count as this script's checks.
while IFS= read -r line; do
    case "$line" in
        "ok   - "*) pass "${line#ok   - }" ;;
        "FAIL - "*) fail "${line#FAIL - }" ;;
        "driver-exit "*)
            code=${line#driver-exit }
            [ "$code" = 0 ] || [ "$IT_FAIL" -gt 0 ] || fail "the browser driver exited with status $code"
            ;;
        *) printf '%s\n' "$line" ;;
    esac
done < <(cd "$IT_DIR" && timeout 240 node console_in_chromium.mjs "$VIGIL_URL" "$T/data.json" "$ART" 2>&1;
         echo "driver-exit $?")

shopt -s nullglob
shots=("$ART"/console-*.png)
check_ge "page screenshots saved to $ART" 9 "${#shots[@]}"
if [ "${CONSOLE_UPDATE_DOCS:-0}" = 1 ] && [ "${#shots[@]}" -gt 0 ] &&
    mkdir -p "$VIGIL_SOURCE_DIR/docs" && cp "${shots[@]}" "$VIGIL_SOURCE_DIR/docs/"; then
    log "screenshots copied to docs/"
fi
