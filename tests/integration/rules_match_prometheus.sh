#!/usr/bin/env bash
# A user moving from Prometheus drops their rule file into Vigil and gets the same
# alerts. The same rule file (a recording rule, an alert on it with `for` and templated
# labels and annotations, an alert with keep_firing_for) runs in Vigil and in Debian's
# Prometheus on the same remote-written data, every 1 s. The data changes on a known
# timeline (one instance always high, one rising, one falling), and at four moments
# between transitions /api/v1/alerts must list the same alerts (labels, annotations,
# state, value) on both, with activeAt within one interval; /api/v1/rules must agree rule
# by rule, and so must the ALERTS series. Then Vigil alone: `vigil check-rules` on a good
# and a broken file, POST /-/reload and SIGHUP picking up a changed file without losing
# alert state, a broken file on reload refused with 500 while the old rules keep running,
# and a restart that keeps the firing alert's activeAt.
IT_TIMEOUT=${IT_TIMEOUT:-150}
source "$(dirname "$0")/lib.sh"

need_cmd prometheus jq python3 curl

RULES="$T/rules.yml"
cat >"$RULES" <<'EOF'
groups:
  - name: rt
    interval: 1s
    rules:
      - record: instance:rt_load:x2
        expr: rt_load * 2
      - alert: RtHigh
        expr: instance:rt_load:x2 > 8
        for: 3s
        labels:
          severity: page
          inst: 'i-{{ $labels.instance }}'
        annotations:
          summary: '{{ $labels.instance }} load {{ humanize $value }} ({{ printf "%.1f" $value }})'
      - alert: RtKeep
        expr: rt_load{instance="c"} > 1
        keep_firing_for: 3s
        labels: {severity: info}
EOF

printf 'global:\n  evaluation_interval: 1s\nrule_files:\n  - %s\n' "$RULES" >"$T/vigil.yml"
printf 'global:\n  evaluation_interval: 1s\n  scrape_interval: 1h\nrule_files:\n  - %s\n' "$RULES" >"$T/prometheus.yml"

vigil_start --config "$T/vigil.yml"
prom_start "$T/prometheus.yml" --web.enable-remote-write-receiver

# The timeline, in seconds after D0: a is 5 throughout; b is 0 until +10, then 5; c is 5
# until +18, then 0. Samples every second from D0-300 to D0+60 (future samples wait in
# both stores until their time comes).
D0=$(date +%s)
python3 - "$D0" >"$T/data.json" <<'EOF'
import json, sys
d0 = int(sys.argv[1])
def val(inst, t):
    if inst == "a": return 5.0
    if inst == "b": return 5.0 if t >= d0 + 10 else 0.0
    return 5.0 if t < d0 + 18 else 0.0
out = []
for inst in "abc":
    out.append({"labels": [["__name__", "rt_load"], ["instance", inst], ["job", "rt"]],
                "samples": [[val(inst, t), t * 1000] for t in range(d0 - 300, d0 + 61)]})
json.dump(out, sys.stdout)
EOF
samples rw "$T/data.json" >"$T/data.rw" || die "remote-write request encoded"
RW_HDR=(-H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy'
        -H 'X-Prometheus-Remote-Write-Version: 0.1.0')
code=$(http_req "$T/vigil-rw.txt" "$VIGIL_URL/api/v1/write" "${RW_HDR[@]}" --data-binary @"$T/data.rw")
check_eq "remote write into Vigil" 204 "$code"
code=$(http_req "$T/prom-rw.txt" "$PROM_URL/api/v1/write" "${RW_HDR[@]}" --data-binary @"$T/data.rw")
check_eq "remote write into Prometheus" 204 "$code"

# sleep_until SECONDS_AFTER_D0 (fractions allowed)
sleep_until() {
    local left
    left=$(python3 -c "import time; print(max(0.0, $D0 + $1 - time.time()))")
    sleep "$left"
}

# The alerts of one server, one per line, sorted: labels, state, annotations, value.
alerts_of() {
    curl -s --max-time 10 "$1/api/v1/alerts" |
        jq -c '.data.alerts[] | [(.labels|to_entries|sort_by(.key)), .state,
               (.annotations|to_entries|sort_by(.key)), .value]' | LC_ALL=C sort
}

# compare_alerts WHAT EXPECTED_COUNT
compare_alerts() {
    alerts_of "$VIGIL_URL" >"$T/alerts.vigil.$1"
    alerts_of "$PROM_URL" >"$T/alerts.prom.$1"
    check_eq "at +$1 s: alerts of Prometheus ($(tr '\n' ' ' <"$T/alerts.prom.$1" | head -c 600))" \
        "$2" "$(wc -l <"$T/alerts.prom.$1" | tr -d ' ')"
    if cmp -s "$T/alerts.vigil.$1" "$T/alerts.prom.$1"; then
        pass "at +$1 s: Vigil's alerts equal Prometheus's ($2)"
    else
        fail "at +$1 s: alerts differ: $(diff "$T/alerts.prom.$1" "$T/alerts.vigil.$1" | head -c 900)"
    fi
}

# activeAt of alert NAME on instance INST in seconds (fractional)
active_at() {
    curl -s --max-time 10 "$1/api/v1/alerts" |
        jq -r --arg n "$2" --arg i "$3" '.data.alerts[] | select(.labels.alertname==$n and .labels.instance==$i) | .activeAt' |
        python3 -c 'import sys, datetime
s = sys.stdin.read().strip()
if s:
    s = s.replace("Z", "+00:00")
    if "." in s:
        head, rest = s.split(".", 1)
        frac, tz = rest[:rest.index("+")], rest[rest.index("+"):]
        s = head + "." + (frac + "000000")[:6] + tz
    print(datetime.datetime.fromisoformat(s).timestamp())'
}

# check_close WHAT A B: |A - B| <= 1.5 (one 1 s interval and the jitter of two clocks)
check_close() {
    if [ -n "$2" ] && [ -n "$3" ] && python3 -c "import sys; sys.exit(0 if abs($2 - $3) <= 1.5 else 1)"; then
        pass "$1 ($2 vs $3)"
    else
        fail "$1: [$2] vs [$3] more than one interval apart"
    fi
}

sleep_until 7
compare_alerts 7 3 # RtHigh a, RtHigh c (firing after 3 s), RtKeep c
sleep_until 15.5
compare_alerts 15.5 4 # b rose at +10, firing by +14
check_close "RtHigh{b} became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtHigh b)" "$(active_at "$PROM_URL" RtHigh b)"
check_close "RtHigh{a} became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtHigh a)" "$(active_at "$PROM_URL" RtHigh a)"
sleep_until 19.6
compare_alerts 19.6 3 # c fell at +18: RtHigh{c} resolved, RtKeep{c} kept firing
sleep_until 23.5
compare_alerts 23.5 2 # keep_firing_for (3 s) over

# /api/v1/rules rule by rule (fields both versions have).
rules_of() {
    curl -s --max-time 10 "$1/api/v1/rules" |
        jq -S -c '[.data.groups[] | {name, file, interval, rules: [.rules[] |
                   {name, query, type, health, state, duration, labels, annotations,
                    lastError, nalerts: (.alerts // [] | length)}]}]'
}
rules_of "$VIGIL_URL" >"$T/rules.vigil"
rules_of "$PROM_URL" >"$T/rules.prom"
if cmp -s "$T/rules.vigil" "$T/rules.prom"; then
    pass "/api/v1/rules agrees with Prometheus rule by rule"
else
    fail "/api/v1/rules differs: prom $(head -c 700 "$T/rules.prom") vigil $(head -c 700 "$T/rules.vigil")"
fi
v_alerts=$(vigil_get /api/v1/query -G --data-urlencode 'query=ALERTS' |
    jq -c '[.data.result[].metric] | sort_by(.instance, .alertname)')
p_alerts=$(prom_query 'ALERTS' | jq -c '[.[].metric] | sort_by(.instance, .alertname)')
check_eq "the ALERTS series agree" "$p_alerts" "$v_alerts"
v_rec=$(vigil_get /api/v1/query -G --data-urlencode 'query=instance:rt_load:x2' | jq -c '[.data.result[] | [.metric.instance, .value[1]]] | sort')
p_rec=$(prom_query 'instance:rt_load:x2' | jq -c '[.[] | [.metric.instance, .value[1]]] | sort')
check_eq "the recording rule's series agree" "$p_rec" "$v_rec"
check_contains "/metrics counts rule evaluations" "$(vigil_get /metrics)" \
    "prometheus_rule_group_last_evaluation_timestamp_seconds{rule_group=\"$RULES;rt\"}"
stop_pid "$PROM_PID" 15

# ---- check-rules ----
out=$("$VIGIL_BIN" check-rules "$RULES" 2>&1)
check_eq "check-rules passes the rule file" 0 "$?"
check_contains "check-rules counts the rules" "$out" "SUCCESS: 3 rules found"
printf 'groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rt_load\n' >"$T/broken.yml"
out=$("$VIGIL_BIN" check-rules "$T/broken.yml" 2>&1)
rc=$?
check_eq "check-rules fails on a broken file" 1 "$rc"
check_contains "check-rules names file:line" "$out" "broken.yml:5: group \"x\", rule 1, \"Broken\": could not parse expression"

# ---- reload ----
a_before=$(active_at "$VIGIL_URL" RtHigh a)
cp "$RULES" "$T/rules.orig"
cat >>"$RULES" <<'EOF'
  - name: added
    interval: 1s
    rules:
      - record: rt:count
        expr: count(rt_load)
EOF
code=$(http_req "$T/reload1.txt" "$VIGIL_URL/-/reload" -X POST)
check_eq "POST /-/reload answers 200" 200 "$code"
groups=$(vigil_get /api/v1/rules | jq -r '[.data.groups[].name] | join(",")')
check_eq "the reloaded file's new group is there" "added,rt" "$groups"
check_eq "reload kept the firing alert's activeAt" "$a_before" "$(active_at "$VIGIL_URL" RtHigh a)"
wait_until 10 bash -c "[ \"\$(curl -s '$VIGIL_URL/api/v1/query?query=rt:count' | jq -r '.data.result[0].value[1]')\" = 3 ]" &&
    pass "the new recording rule writes its series" || fail "rt:count never appeared"

printf 'groups:\n  - name: rt\n    rules:\n      - record: bad name\n        expr: up\n' >"$RULES"
code=$(http_req "$T/reload2.txt" "$VIGIL_URL/-/reload" -X POST)
check_eq "a broken file on reload: 500" 500 "$code"
check_contains "the 500 names the error" "$(cat "$T/reload2.txt")" "invalid recording rule name: bad name"
groups=$(vigil_get /api/v1/rules | jq -r '[.data.groups[].name] | join(",")')
check_eq "the old rules keep running" "added,rt" "$groups"

cp "$T/rules.orig" "$RULES"
kill -HUP "$VIGIL_PID"
wait_until 10 bash -c "[ \"\$(curl -s '$VIGIL_URL/api/v1/rules' | jq -r '[.data.groups[].name] | join(\",\")')\" = rt ]" &&
    pass "SIGHUP reloads the rule files" || fail "SIGHUP did not reload"
check_eq "SIGHUP kept the firing alert's activeAt" "$a_before" "$(active_at "$VIGIL_URL" RtHigh a)"

# ---- restart keeps state ----
vigil_stop
vigil_start --config "$T/vigil.yml"
state=$(vigil_get /api/v1/alerts | jq -r '.data.alerts[] | select(.labels.alertname=="RtHigh" and .labels.instance=="a") | .state')
check_eq "after a restart the alert is still firing (before any evaluation)" firing "$state"
check_eq "after a restart activeAt is kept" "$a_before" "$(active_at "$VIGIL_URL" RtHigh a)"
vigil_alive || fail "vigil is still up"
