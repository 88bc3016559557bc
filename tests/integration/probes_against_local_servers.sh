#!/usr/bin/env bash
# Vigil as a synthetic monitor: probes configured in YAML run on a schedule against
# local servers started here (probe_servers.py: HTTP, HTTPS with a certificate made by
# openssl that expires in 30 days, a TCP greeter/echo, a DNS responder), and the results
# are queryable like any series (probe_success, probe_http_status_code,
# probe_ssl_earliest_cert_expiry, probe_dns_answer_rrs, ...) with job and instance
# labels. GET /probe answers on demand in the text exposition as the blackbox exporter
# does; an unknown module, a missing target, an unreachable target and a timeout are
# answered clearly.
source "$(dirname "$0")/lib.sh"
need_cmd openssl

HTTP=$(free_port)
HTTPS=$(free_port)
TCP=$(free_port)
DNS=$(free_port)
SILENT=$(free_port)
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 30 \
    -subj "/CN=127.0.0.1" >"$T/openssl.log" 2>&1 || die "openssl made a test certificate"
expiry=$(date -d "$(openssl x509 -in "$T/cert.pem" -noout -enddate | cut -d= -f2)" +%s)
start_bg servers python3 "$IT_DIR/probe_servers.py" "$HTTP" "$HTTPS" "$TCP" "$DNS" \
    "$T/cert.pem" "$T/key.pem"
wait_until 10 grep -q ready "$T/servers.log" || die "probe_servers.py started: $(cat "$T/servers.log")"
# a listener that accepts connections but never answers (for the timeout)
start_bg silent python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1', $SILENT)); s.listen(8); time.sleep(600)"

cat >"$T/vigil.yml" <<YML
probes:
  modules:
    web: {prober: http, timeout: 2s, http: {fail_if_body_not_matches_regexp: ['probe ok']}}
    web_tls: {prober: http, timeout: 2s, http: {fail_if_not_ssl: true,
              tls_config: {insecure_skip_verify: true}}}
    echo: {prober: tcp, timeout: 2s, tcp: {query_response: [{expect: '^HELLO'}, {send: ping}, {expect: '^ping'}]}}
    dns_a: {prober: dns, timeout: 2s, dns: {query_name: example.test, query_type: A,
            validate_answer_rrs: {fail_if_not_matches_regexp: ['192\\.0\\.2\\.7']}}}
    quick: {prober: http, timeout: 1s}
  targets:
    - {module: web, target: 'http://127.0.0.1:$HTTP/ok', interval: 3s, labels: {site: local}}
    - {module: web_tls, target: 'https://127.0.0.1:$HTTPS/ok', interval: 3s}
    - {module: echo, target: '127.0.0.1:$TCP', interval: 3s, job: tcp}
    - {module: dns_a, target: '127.0.0.1:$DNS', interval: 3s}
    - {module: web, target: 'http://127.0.0.1:$HTTP/error', interval: 3s}
YML
vigil_start --config "$T/vigil.yml"

value() {
    vigil_get /api/v1/query -G --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // ""'
}
all_ran() { [ "$(value 'count(probe_success)')" = 5 ]; }
wait_until 30 all_ran || log "not every target was probed within 30 s"

check_eq "HTTP target up" 1 "$(value "probe_success{instance=\"http://127.0.0.1:$HTTP/ok\",job=\"probe\",site=\"local\"}")"
check_eq "HTTP status stored" 200 "$(value "probe_http_status_code{instance=\"http://127.0.0.1:$HTTP/ok\"}")"
check_eq "HTTP phases stored" 5 "$(value "count(probe_http_duration_seconds{instance=\"http://127.0.0.1:$HTTP/ok\"})")"
check_eq "HTTPS target up" 1 "$(value "probe_success{instance=\"https://127.0.0.1:$HTTPS/ok\"}")"
check_eq "HTTPS certificate expiry is the certificate's notAfter" "$expiry" \
    "$(value "probe_ssl_earliest_cert_expiry{instance=\"https://127.0.0.1:$HTTPS/ok\"}")"
check_eq "HTTPS used TLS" 1 "$(value "probe_http_ssl{instance=\"https://127.0.0.1:$HTTPS/ok\"}")"
check_eq "alert-style expression: cert expires within 31 days" 1 \
    "$(value "count(probe_ssl_earliest_cert_expiry - time() < 86400 * 31)")"
check_eq "TCP query_response up, job from the target" 1 "$(value "probe_success{job=\"tcp\"}")"
check_eq "DNS probe up" 1 "$(value "probe_success{instance=\"127.0.0.1:$DNS\"}")"
check_eq "DNS answer count" 1 "$(value "probe_dns_answer_rrs{instance=\"127.0.0.1:$DNS\"}")"
check_eq "failing target stored as 0" 0 "$(value "probe_success{instance=\"http://127.0.0.1:$HTTP/error\"}")"
check_eq "its status code" 503 "$(value "probe_http_status_code{instance=\"http://127.0.0.1:$HTTP/error\"}")"

# on demand
probe() { vigil_get /probe -G --data-urlencode "module=$1" --data-urlencode "target=$2"; }
out=$(probe web "http://127.0.0.1:$HTTP/ok")
check_contains "/probe success" "$out" "probe_success 1"
check_contains "/probe exposition has TYPE lines" "$out" "# TYPE probe_http_status_code gauge"
out=$(probe http_2xx "http://127.0.0.1:$HTTP/redirect")
check_contains "/probe follows redirects" "$out" "probe_http_redirects 1"
out=$(probe dns_a "127.0.0.1:$DNS")
check_contains "/probe dns" "$out" "probe_dns_answer_rrs 1"
out=$(probe tcp_connect "127.0.0.1:1")
check_contains "unreachable target: success 0" "$out" "probe_success 0"
check_contains "unreachable target: the reason" "$out" "Connection refused"
t0=$SECONDS
out=$(probe quick "http://127.0.0.1:$SILENT/")
check_contains "timeout: success 0" "$out" "probe_success 0"
check_contains "timeout: the reason" "$out" "timeout"
check_ge "timeout bounded (seconds left of 5)" 0 $((5 - (SECONDS - t0)))
code=$(http_req "$T/body" "$VIGIL_URL/probe?module=nope&target=x")
check_eq "unknown module is a 400" 400 "$code"
check_contains "unknown module named" "$(cat "$T/body")" 'Unknown module "nope"'
code=$(http_req "$T/body" "$VIGIL_URL/probe?module=web")
check_eq "missing target is a 400" 400 "$code"
out=$(probe icmp 127.0.0.1)
if printf '%s' "$out" | grep -q "probe_success 1"; then pass "icmp to loopback works here"
else check_contains "icmp not permitted says why" "$out" "not permitted"; fi
check_eq "server still healthy" 200 "$(http_code "$VIGIL_URL/-/healthy")"
