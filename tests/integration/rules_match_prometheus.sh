#!/usr/bin/env bash
# A user moving from Prometheus drops their rule files into Vigil and gets the same
# alerts. The same rule files run in Vigil and in Debian's Prometheus on the same
# remote-written data, every 1 s:
#   rules.yml   a recording rule, an alert on it with `for` and templated labels and
#               annotations, an alert with keep_firing_for;
#   rules2.yml  a recording-rule chain (sum, then an average over the sum) with an alert
#               on the chain using `for` + keep_firing_for, a label template and
#               annotations built with query / range / sortByLabel / first / value /
#               humanize / humanizeDuration / $externalURL / pathPrefix (both servers
#               get the same external URL); a group with `limit: 2` whose alert and
#               recording rule exceed it while three instances are up;
#   offset      a group with query_offset: 2s in Vigil; Debian's Prometheus (2.42)
#               predates query_offset, so its copy says `offset 2s` in the expression,
#               which gives the same alerts.
# The data changes on a known timeline (one instance always high, one rising, one
# falling), and at four moments between transitions /api/v1/alerts must list the same
# alerts (labels, annotations, state, value) on both, with activeAt within one interval;
# /api/v1/rules must agree rule by rule (the offset group's query text aside), and so
# must the ALERTS series. Then Vigil alone: `vigil check-rules` on a good file, a YAML
# syntax error, a PromQL error, a LogQL error, a duplicate group and duplicate rules;
# POST /-/reload and SIGHUP picking up a changed file without losing alert state, a
# broken file on reload refused with 500 while the old rules keep running, and a
# restart that keeps the firing alert's activeAt.
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

RULES2="$T/rules2.yml"
cat >"$RULES2" <<'EOF'
groups:
  - name: chain
    interval: 1s
    rules:
      - record: job:rt_load:sum
        expr: sum by (job) (rt_load)
      - record: job:rt_load:avg
        expr: job:rt_load:sum / on (job) count by (job) (rt_load)
      - alert: RtJobHot
        expr: job:rt_load:avg > 4
        for: 2s
        keep_firing_for: 2s
        labels:
          team: '{{ $labels.job | toUpper }}'
        annotations:
          up: '{{ range query "rt_load > 0" | sortByLabel "instance" }}{{ .Labels.instance }}={{ .Value }} {{ end }}'
          top: '{{ with query "max(rt_load)" }}{{ . | first | value | humanize }}{{ end }}'
          age: '{{ query "scalar(count(rt_load)) * 1000 + 25" | first | value | humanizeDuration }}'
          link: '{{ $externalURL }} {{ pathPrefix }}'
  - name: limited
    interval: 1s
    limit: 2
    rules:
      - alert: RtAny
        expr: rt_load > 0
      - record: rt:limited
        expr: rt_load
EOF
printf 'groups:\n  - name: offset\n    interval: 1s\n    query_offset: 2s\n    rules:\n      - alert: RtOffset\n        expr: rt_load{instance="b"} > 1\n        for: 1s\n' >"$T/offset.vigil.yml"
printf 'groups:\n  - name: offset\n    interval: 1s\n    rules:\n      - alert: RtOffset\n        expr: rt_load{instance="b"} offset 2s > 1\n        for: 1s\n' >"$T/offset.prom.yml"

EXT_URL=http://alerts.example/prom
printf 'server:\n  external_url: %s/\nglobal:\n  evaluation_interval: 1s\nrule_files:\n  - %s\n  - %s\n  - %s\n' \
    "$EXT_URL" "$RULES" "$RULES2" "$T/offset.vigil.yml" >"$T/vigil.yml"
printf 'global:\n  evaluation_interval: 1s\n  scrape_interval: 1h\nrule_files:\n  - %s\n  - %s\n  - %s\n' \
    "$RULES" "$RULES2" "$T/offset.prom.yml" >"$T/prometheus.yml"

vigil_start --config "$T/vigil.yml"
prom_start "$T/prometheus.yml" --web.enable-remote-write-receiver --web.external-url="$EXT_URL" \
    --web.route-prefix=/

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
        jq -r --arg n "$2" --arg i "$3" '.data.alerts[] | select(.labels.alertname==$n and (.labels.instance // "")==$i) | .activeAt' |
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

# Counts: rules.yml's, then RtJobHot (avg 5 > 4 while b and c are both up, +10..+18,
# firing from +12, kept 2 s after), RtAny (limit 2: fails while 3 instances are > 0),
# RtOffset (b > 1 seen 2 s late: active from +12).
sleep_until 7
compare_alerts 7 5 # RtHigh a, RtHigh c (firing after 3 s), RtKeep c; RtAny a, c
sleep_until 15.5
compare_alerts 15.5 6 # b rose at +10: RtHigh b firing by +14, RtJobHot, RtOffset b; RtAny over its limit
check_close "RtHigh{b} became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtHigh b)" "$(active_at "$PROM_URL" RtHigh b)"
check_close "RtHigh{a} became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtHigh a)" "$(active_at "$PROM_URL" RtHigh a)"
check_close "RtJobHot (recording-rule chain, for 2s) became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtJobHot "")" "$(active_at "$PROM_URL" RtJobHot "")"
check_close "RtOffset (query_offset 2s) became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtOffset b)" "$(active_at "$PROM_URL" RtOffset b)"
ann=$(vigil_get /api/v1/alerts | jq -r '.data.alerts[] | select(.labels.alertname=="RtJobHot") | .annotations.age')
check_eq "query + first + value + humanizeDuration in an annotation" "50m 25s" "$ann"
sleep_until 19.6
compare_alerts 19.6 7 # c fell at +18: RtHigh{c} resolved, RtKeep{c} and RtJobHot kept firing; RtAny a, b
check_close "RtAny{b} (back under the limit) became active at the same evaluation" \
    "$(active_at "$VIGIL_URL" RtAny b)" "$(active_at "$PROM_URL" RtAny b)"
sleep_until 23.5
compare_alerts 23.5 5 # keep_firing_for (3 s, 2 s) over

# /api/v1/rules rule by rule (fields both versions have).
rules_of() {
    curl -s --max-time 10 "$1/api/v1/rules" |
        jq -S -c '[.data.groups[] | {name, file: (.file | sub("offset[.](vigil|prom)"; "offset")),
                   interval, rules: [.rules[] |
                   {name, query, type, health, state, duration, labels, annotations,
                    lastError, nalerts: (.alerts // [] | length)}]}
                   | if .name == "offset" then del(.rules[].query) else . end]
                  | sort_by(.file, .name)'
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
for rec in job:rt_load:sum job:rt_load:avg; do
    v_rec=$(vigil_get /api/v1/query -G --data-urlencode "query=$rec" | jq -c '[.data.result[] | [.metric, .value[1]]] | sort')
    p_rec=$(prom_query "$rec" | jq -c '[.[] | [.metric, .value[1]]] | sort')
    check_eq "the recording-rule chain's $rec agrees" "$p_rec" "$v_rec"
done
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
# check_rules_fails WHAT FILE CONTENT NEEDLE: check-rules exits 1 on FILE (written with
# printf CONTENT) and says NEEDLE.
check_rules_fails() {
    local out rc
    printf '%b' "$3" >"$T/$2"
    out=$("$VIGIL_BIN" check-rules "$T/$2" 2>&1)
    rc=$?
    check_eq "check-rules fails on $1" 1 "$rc"
    check_contains "check-rules names the $1 with file:line" "$out" "$2:$4"
}
check_rules_fails "a PromQL error" broken.yml \
    'groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rt_load\n' \
    '5: group "x", rule 1, "Broken": could not parse expression'
check_rules_fails "a YAML syntax error" yaml.yml \
    'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n       labels: [\n' "6"
check_rules_fails "a LogQL error" logql.yml \
    'groups:\n  - name: l\n    type: logql\n    rules:\n      - alert: L\n        expr: sum(count_over_time({app="x"} |= [1m]))\n' \
    '6: group "l", rule 1, "L": could not parse expression'
check_rules_fails "a duplicate group" dupgroup.yml \
    'groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n  - name: g\n    rules:\n      - record: b\n        expr: up\n' \
    '6: groupname: "g" is repeated in the same file'
printf 'groups:\n  - name: g\n    rules:\n      - record: job:up\n        expr: sum by (job) (up)\n      - record: job:up\n        expr: max by (job) (up)\n' >"$T/duprules.yml"
out=$("$VIGIL_BIN" check-rules "$T/duprules.yml" 2>&1)
check_eq "duplicate rules are a lint finding (exit 0, as promtool)" 0 "$?"
check_contains "check-rules reports duplicate rules" "$out" "lint error 1 duplicate rule(s) found."
check_contains "the duplicates are named" "$out" "Metric: job:up"
check_contains "the duplicates' places (file:line)" "$out" "duprules.yml:4, $T/duprules.yml:6"
"$VIGIL_BIN" check-rules --lint-fatal "$T/duprules.yml" >/dev/null 2>&1
check_eq "with --lint-fatal duplicate rules exit 3" 3 "$?"

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
groups=$(vigil_get /api/v1/rules | jq -r '[.data.groups[] | select(.file | endswith("/rules.yml")) | .name] | join(",")')
check_eq "the reloaded file's new group is there" "added,rt" "$groups"
check_eq "reload kept the firing alert's activeAt" "$a_before" "$(active_at "$VIGIL_URL" RtHigh a)"
wait_until 10 bash -c "[ \"\$(curl -s '$VIGIL_URL/api/v1/query?query=rt:count' | jq -r '.data.result[0].value[1]')\" = 3 ]" &&
    pass "the new recording rule writes its series" || fail "rt:count never appeared"

printf 'groups:\n  - name: rt\n    rules:\n      - record: bad name\n        expr: up\n' >"$RULES"
code=$(http_req "$T/reload2.txt" "$VIGIL_URL/-/reload" -X POST)
check_eq "a broken file on reload: 500" 500 "$code"
check_contains "the 500 names the error" "$(cat "$T/reload2.txt")" "invalid recording rule name: bad name"
groups=$(vigil_get /api/v1/rules | jq -r '[.data.groups[] | select(.file | endswith("/rules.yml")) | .name] | join(",")')
check_eq "the old rules keep running" "added,rt" "$groups"

cp "$T/rules.orig" "$RULES"
kill -HUP "$VIGIL_PID"
wait_until 10 bash -c "[ \"\$(curl -s '$VIGIL_URL/api/v1/rules' | jq -r '[.data.groups[] | select(.file | endswith(\"/rules.yml\")) | .name] | join(\",\")')\" = rt ]" &&
    pass "SIGHUP reloads the rule files" || fail "SIGHUP did not reload"
check_eq "SIGHUP kept the firing alert's activeAt" "$a_before" "$(active_at "$VIGIL_URL" RtHigh a)"

# ---- restart keeps state ----
vigil_stop
vigil_start --config "$T/vigil.yml"
state=$(vigil_get /api/v1/alerts | jq -r '.data.alerts[] | select(.labels.alertname=="RtHigh" and .labels.instance=="a") | .state')
check_eq "after a restart the alert is still firing (before any evaluation)" firing "$state"
check_eq "after a restart activeAt is kept" "$a_before" "$(active_at "$VIGIL_URL" RtHigh a)"
vigil_alive || fail "vigil is still up"
