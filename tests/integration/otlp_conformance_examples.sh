#!/usr/bin/env bash
# The OTLP/JSON metrics example of the opentelemetry-proto project, POSTed to Vigil as a
# client would send it, must be read back under Prometheus's names with the example's
# values and timestamp. The file is read from ../shared/conformance/otlp/ beside the
# checkout and never copied; without it this test is skipped.
#
# The example (2018-12-13T14:51:00.3Z) holds, all with service.name "my.service":
#   my.counter               delta monotonic sum, unit 1      -> my_counter_total 5
#   my.gauge                 gauge, unit 1                    -> my_gauge_ratio 10
#   my.histogram             delta histogram, bounds [1], counts [1,1], sum 2
#                            -> my_histogram_bucket{le="1"} 1, {le="+Inf"} 2, _sum 2, _count 2
#   my.exponential.histogram delta, count 3, sum 10, zero count 1, positive offset 1 [0,2]
#                            -> classic buckets (Vigil's documented difference):
#                               _count 3, _sum 10, le="+Inf" 3, cumulative buckets
source "$(dirname "$0")/lib.sh"

EXAMPLE="$VIGIL_SOURCE_DIR/../shared/conformance/otlp/metrics.json"
[ -f "$EXAMPLE" ] || skip_all "$EXAMPLE is absent (shared conformance data sits beside the checkout)"
jq -e '.resourceMetrics[0].scopeMetrics[0].metrics | length == 4' "$EXAMPLE" >/dev/null ||
    skip_all "$EXAMPLE does not hold the four metrics this test knows"

# The example's sums and histograms use delta temporality (aggregationTemporality 1).
# With the default otlp.delta_temporality "reject" those 3 points are refused the OTLP
# way and only the gauge goes in; with "accumulate" everything goes in.
# The example is from 2018: keep everything (retention 0 = forever).
vigil_start --retention 0
TS=1544712660300

code=$(http_req "$T/resp.json" "$VIGIL_URL/v1/metrics" -H 'Content-Type: application/json' \
    --data-binary @"$EXAMPLE")
check_eq "POST of the example answers 200" 200 "$code"
check_eq "delta_temporality reject: 3 delta points refused in partialSuccess" 3 \
    "$(jq -r '.partialSuccess.rejectedDataPoints // "0"' "$T/resp.json" 2>/dev/null)"
check_contains "delta_temporality reject: the reason names delta temporality" \
    "$(jq -r '.partialSuccess.errorMessage // ""' "$T/resp.json" 2>/dev/null)" "delta"
check_eq "delta_temporality reject: the gauge is stored" 1 "$(series_count 'my_gauge_ratio')"
check_eq "delta_temporality reject: the delta counter is not" 0 "$(series_count '{__name__=~"my_counter.*"}')"
vigil_stop

printf 'otlp:\n  delta_temporality: accumulate\n' >"$T/accumulate.yml"
vigil_start --retention 0 --config "$T/accumulate.yml"
# This time gzip-compressed, as an SDK with compression enabled sends it.
code=$(gzip -c "$EXAMPLE" | http_req "$T/resp-gz.json" "$VIGIL_URL/v1/metrics" \
    -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' --data-binary @-)
check_eq "delta_temporality accumulate: gzip-compressed POST answers 200" 200 "$code"
rejected=$(jq -r '.partialSuccess.rejectedDataPoints // "0"' "$T/resp-gz.json" 2>/dev/null)
check_eq "delta_temporality accumulate: no data point rejected ($(head -c 300 "$T/resp-gz.json"))" 0 "${rejected:-0}"

names=$(vigil_get /api/v1/label/__name__/values | jq -r '.data[]?' | tr '\n' ' ')
log "metric names stored: $names"
for n in my_counter_total my_gauge_ratio my_histogram_bucket my_histogram_sum my_histogram_count \
    my_exponential_histogram_bucket my_exponential_histogram_sum my_exponential_histogram_count; do
    check_contains "metric name $n stored" " $names" " $n "
done
check_eq "job comes from service.name" 1 "$(series_count 'my_counter_total{job="my.service"}')"
check_eq "attribute my.counter.attr becomes label my_counter_attr" 1 \
    "$(series_count 'my_counter_total{my_counter_attr="some value"}')"
check_eq "scope attributes are not labels" 0 "$(series_count '{my_scope_attribute!=""}')"

vigil_stop
vigil_dump "$T/dump.raw"
samples canon "$T/dump.raw" >"$T/dump.txt"
vals() { samples match "$T/dump.txt" "$@" | awk '{printf "%s@%s ", $1, $2}' | sed 's/ $//'; }

check_eq "my_counter_total" "5.0@$TS" "$(vals my_counter_total my_counter_attr='some value')"
check_eq "my_gauge_ratio" "10.0@$TS" "$(vals my_gauge_ratio my_gauge_attr='some value')"
check_eq "my_histogram_bucket le=1" "1.0@$TS" "$(vals my_histogram_bucket le=1)"
check_eq "my_histogram_bucket le=+Inf" "2.0@$TS" "$(vals my_histogram_bucket le=+Inf)"
check_eq "my_histogram_sum" "2.0@$TS" "$(vals my_histogram_sum my_histogram_attr='some value')"
check_eq "my_histogram_count" "2.0@$TS" "$(vals my_histogram_count my_histogram_attr='some value')"
E=my_exponential_histogram
check_eq "${E}_count" "3.0@$TS" "$(vals ${E}_count)"
check_eq "${E}_sum" "10.0@$TS" "$(vals ${E}_sum)"
check_eq "${E}_bucket le=+Inf" "3.0@$TS" "$(vals ${E}_bucket le=+Inf)"
# Buckets are cumulative: sorted by le, counts never fall and end at the count.
buckets=$(grep "^${E}_bucket{" "$T/dump.txt" |
    sed -E 's/.*le="([^"]*)".* ([^ ]+) [0-9]+$/\1 \2/' | sed 's/^+Inf/inf/' | sort -g)
log "exponential histogram as classic buckets: $(echo $buckets)"
mono=$(printf '%s\n' "$buckets" | awk 'BEGIN {ok = 1} $2 < prev {ok = 0} {prev = $2} END {print ok}')
check_eq "${E} classic buckets are cumulative" 1 "$mono"
check_eq "${E} has at least the zero bucket, one positive bucket and +Inf" 1 \
    "$(printf '%s\n' "$buckets" | awk 'END {print (NR >= 3) ? 1 : 0}')"
# The zero bucket (zero count 1) and the 2 observations in (4, 8] must be where they fall.
le4=$(printf '%s\n' "$buckets" | awk '$1 >= 0 && $1 < 4 {v = $2} END {print v + 0}')
le8=$(printf '%s\n' "$buckets" | awk '$1 >= 8 {print $2; exit}')
check_eq "${E}: 1 observation (the zero bucket) at or below 4" 1 "${le4%.0}"
check_eq "${E}: all 3 observations at le=8 (bucket (4,8] holds 2)" 3.0 "${le8:-none}"
