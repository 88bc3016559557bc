#!/usr/bin/env bash
# Applications send StatsD to Vigil: a Python socket client writes raw lines over UDP
# (every metric type, sample rates, DogStatsD tags, packed values, garbage) and over
# TCP (newline-framed), and the hot-shots client from npm sends as a Node.js app would.
# After a flush the values must be queryable at /api/v1/query with the documented names
# (counters <name>_total and cumulative, gauges with deltas applied, timers as
# histograms in seconds, sets as distinct counts), and the malformed lines must be
# counted in /metrics while the server stays up.
source "$(dirname "$0")/lib.sh"

UDP=$(free_port)
TCP=$(free_port)
cat >"$T/vigil.yml" <<YML
statsd:
  udp_addr: 127.0.0.1:$UDP
  tcp_addr: 127.0.0.1:$TCP
  flush_interval: 300ms
  buckets: [0.1, 0.25, 0.5, 1]
YML
vigil_start --config "$T/vigil.yml"

metric() {
    vigil_get /metrics | awk -v m="$1" '$1 == m { print $2 }' | head -n 1 | sed 's/\..*//'
}
# check_near WHAT EXPECTED ACTUAL: equal within 1e-9 (sums of decimal fractions)
check_near() {
    if awk -v e="$2" -v a="$3" 'BEGIN { d = e - a; exit !(a != "" && d < 1e-9 && d > -1e-9) }'
    then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
# value EXPR: the first result's value of an instant query ("" when none).
value() {
    vigil_get /api/v1/query -G --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // ""'
}

python3 - "$UDP" "$TCP" <<'PY'
import socket, sys
udp, tcp = int(sys.argv[1]), int(sys.argv[2])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send(s):
    u.sendto(s.encode(), ("127.0.0.1", udp))
send("py.requests:1|c|#code:200\npy.requests:1|c|#code:200\npy.requests:2|c|@0.5|#code:500")
send("py.temperature:20|g\npy.temperature:+5|g\npy.temperature:-2.5|g")
send("py.latency:50|ms\npy.latency:200|ms\npy.latency:700|ms|@0.5\npy.latency:3000|ms")
send("py.sizes:1:2:3|h")
send("py.users:u1|s\npy.users:u2|s\npy.users:u1|s")
send("garbage line\npy.bad:abc|c\npy.neg:-1|c\npy.unknown:1|zz\n_e{1,1}:a|b")
t = socket.create_connection(("127.0.0.1", tcp))
t.sendall(b"tcp.jobs:4|c\ntcp.jobs:")
t.sendall(b"6|c\ntcp.queue:9|g\n")
t.close()
PY

HOT_SHOTS=0
if [ -d "$IT_DIR/node_modules/hot-shots" ]; then
    if node "$IT_DIR/statsd_hot_shots.mjs" "$UDP" hs >"$T/hot-shots.log" 2>&1; then
        HOT_SHOTS=1
    else
        fail "hot-shots client ran: $(head -c 300 "$T/hot-shots.log")"
    fi
else
    skip "hot-shots is not installed (npm install in tests/integration)"
fi

# a set is a per-interval count: 2 in the flush that saw the members, 0 after
arrived() { [ "$(value 'tcp_queue')" = 9 ] && [ "$(value 'max_over_time(py_users[5m])')" = 2 ]; }
wait_until 20 arrived || log "not everything arrived within 20 s"

check_eq "counter: 1 + 1" 2 "$(value 'py_requests_total{code="200"}')"
check_eq "counter sampled at 0.5 counts double" 4 "$(value 'py_requests_total{code="500"}')"
check_eq "gauge with +/- deltas" 22.5 "$(value 'py_temperature')"
check_eq "timer count (one sampled at 0.5)" 5 "$(value 'py_latency_count')"
check_near "timer sum in seconds" 4.65 "$(value 'py_latency_sum')"
check_eq "timer bucket le=0.25" 2 "$(value 'py_latency_bucket{le="0.25"}')"
check_eq "timer bucket le=1" 4 "$(value 'py_latency_bucket{le="1"}')"
check_eq "timer bucket +Inf" 5 "$(value 'py_latency_bucket{le="+Inf"}')"
check_near "histogram_quantile over the timer" 0.625 \
    "$(value 'histogram_quantile(0.5, py_latency_bucket)')"
check_eq "packed histogram values" 3 "$(value 'py_sizes_count')"
check_eq "set counts distinct members" 2 "$(value 'max_over_time(py_users[5m])')"
check_eq "TCP counter across a split write" 10 "$(value 'tcp_jobs_total')"
check_eq "TCP gauge" 9 "$(value 'tcp_queue')"
meta=$(vigil_get '/api/v1/metadata?metric=py_latency' | jq -r '.data.py_latency[0].type // ""')
check_eq "timer metadata says histogram" histogram "$meta"

check_eq "malformed line counted" 1 "$(metric 'vigil_statsd_malformed_total{reason="malformed_line"}')"
check_eq "bad value counted" 1 "$(metric 'vigil_statsd_malformed_total{reason="bad_value"}')"
check_eq "negative counter counted" 1 "$(metric 'vigil_statsd_malformed_total{reason="negative_counter"}')"
check_eq "unknown type counted" 1 "$(metric 'vigil_statsd_malformed_total{reason="unknown_type"}')"
check_eq "DogStatsD event counted as unsupported" 1 \
    "$(metric 'vigil_statsd_malformed_total{reason="event_or_service_check"}')"
check_ge "ingest counted statsd samples" 1 \
    "$(metric 'vigil_ingest_samples_accepted_total{receiver="statsd"}')"

if [ "$HOT_SHOTS" = 1 ]; then
    hs_arrived() { [ "$(value 'max_over_time(hs_customers[5m])')" = 2 ]; }
    wait_until 20 hs_arrived || log "hot-shots metrics did not all arrive within 20 s"
    check_eq "hot-shots increment with tags" 10 "$(value 'hs_orders_total{app="shop",method="card"}')"
    check_eq "hot-shots gauge keeps the last value" 3 "$(value 'hs_cart_size{app="shop"}')"
    check_eq "hot-shots timing count" 4 "$(value 'hs_checkout_count{app="shop"}')"
    check_near "hot-shots timing sum in seconds" 1 "$(value 'hs_checkout_sum{app="shop"}')"
    check_eq "hot-shots histogram and distribution share a family" 2 \
        "$(value 'hs_payload_bytes_count{app="shop"}')"
    check_eq "hot-shots set" 2 "$(value 'max_over_time(hs_customers{app="shop"}[5m])')"
fi

# counters stay cumulative over later flushes
python3 -c "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'py.requests:3|c|#code:200', ('127.0.0.1', $UDP))"
later() { [ "$(value 'py_requests_total{code="200"}')" = 5 ]; }
wait_until 10 later
check_eq "counter keeps counting across flushes" 5 "$(value 'py_requests_total{code="200"}')"
check_eq "server still healthy" 200 "$(http_code "$VIGIL_URL/-/healthy")"
