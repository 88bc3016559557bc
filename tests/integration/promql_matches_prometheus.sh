#!/usr/bin/env bash
# A user moving from Prometheus gets the same answers from Vigil. The same remote-write
# request (2 h of counters with a reset, gauges, classic histograms, a series that stops,
# every sample off the second grid) goes into Vigil and into Debian's Prometheus 2.42
# (--web.enable-remote-write-receiver) in one run; then every query of
# promql_queries.txt (over 100: selectors, offsets, @, subqueries, aggregations with
# by/without, binary operators with vector matching, the functions) runs against both
# as instant queries at two times and as a range query, and the answers must agree
# within float tolerance. promql_queries.txt lists the intended v2/v3 differences and
# why no query needs adjusting for the window-boundary one; promql_compare.py explains
# how the data avoids it.
IT_TIMEOUT=${IT_TIMEOUT:-400}
source "$(dirname "$0")/lib.sh"

need_cmd prometheus
IT_DIR_ABS=$(cd "$(dirname "$0")" && pwd)
QUERIES="$IT_DIR_ABS/promql_queries.txt"
COMPARE="$IT_DIR_ABS/promql_compare.py"

# Data: 2 h ending a few minutes ago (both stores keep 15 days by default).
BASE=$(( $(date +%s) - 7200 - 300 ))
python3 "$COMPARE" gen "$BASE" "$T/data.json" || die "test data generated"
samples rw "$T/data.json" >"$T/data.rw" || die "remote-write request encoded"
log "data: $(jq 'length' "$T/data.json") series, $(jq '[.[].samples|length]|add' "$T/data.json") samples, base $BASE"

vigil_start
printf 'global:\n  scrape_interval: 1h\n' >"$T/prometheus.yml"
prom_start "$T/prometheus.yml" --web.enable-remote-write-receiver

RW_HDR=(-H 'Content-Type: application/x-protobuf' -H 'Content-Encoding: snappy'
        -H 'X-Prometheus-Remote-Write-Version: 0.1.0')
# One request each: Prometheus accepts a sample only within an hour of its head's newest
# one when the request starts, so the whole history goes in one go into an empty head.
code=$(http_req "$T/vigil-rw.txt" "$VIGIL_URL/api/v1/write" "${RW_HDR[@]}" --data-binary @"$T/data.rw")
check_eq "remote write into Vigil ($(head -c 200 "$T/vigil-rw.txt"))" 204 "$code"
code=$(http_req "$T/prom-rw.txt" "$PROM_URL/api/v1/write" "${RW_HDR[@]}" --data-binary @"$T/data.rw")
check_eq "remote write into Prometheus ($(head -c 200 "$T/prom-rw.txt"))" 204 "$code"

# Both hold every series before comparing anything.
n_vigil=$(vigil_get /api/v1/series -G --data-urlencode 'match[]={__name__=~".+"}' | jq '.data|length')
n_prom=$(curl -s --max-time 20 -G --data-urlencode 'match[]={__name__=~".+"}' "$PROM_URL/api/v1/series" | jq '.data|length')
check_eq "the same series in both stores" "$n_prom" "$n_vigil"

python3 "$COMPARE" compare "$VIGIL_URL" "$PROM_URL" "$BASE" "$QUERIES" >"$T/compare.tsv" 2>"$T/compare.err" ||
    fail "comparer ran: $(head -c 400 "$T/compare.err")"
nq=0
nempty=999
while IFS=$'\t' read -r verdict what why rest; do
    case $verdict in
        PASS) pass "$what" ;;
        FAIL) fail "$what: $why" ;;
        SUMMARY) nq=$what; nempty=$rest ;;
    esac
done <"$T/compare.tsv"
check_ge "queries compared" 100 "$nq"
# Agreement on "no series" proves little: only the queries meant to be empty may be
# (absent() of a present metric, the stopped series at the late instant, comparisons
# that filter everything at one instant, the many-to-many errors do not count here).
if [ "$nempty" -le 12 ]; then pass "at most 12 comparisons with no series on either side ($nempty)"
else fail "too many comparisons with no series on either side: $nempty (see $T/compare.tsv)"; fi
vigil_alive || fail "vigil is still up after every query"
