#!/usr/bin/env bash
# email_starttls_auth: Vigil's e-mail receiver speaks STARTTLS and SMTP AUTH to loopback
# SMTP sinks (tests/integration/notify_sinks.py) that offer STARTTLS with a throwaway
# self-signed certificate made here with openssl, and AUTH PLAIN or AUTH LOGIN only after
# STARTTLS (as real submission servers do). Checked:
#  - require_tls + the right password: the message arrives over TLS, authenticated, and
#    the sink saw the configured user and password (once per mechanism, PLAIN and LOGIN);
#  - a wrong password: the sink answers 535, nothing is delivered, the attempt history
#    (/api/v1/notifications) shows the failure with the server's reply, and
#    vigil_notifications_failed_total counts it;
#  - require_tls against a server without STARTTLS: nothing is sent in clear text.
# The certificate is self-signed: the LOGIN receiver trusts it through Alertmanager's
# tls_config (ca_file, server_name: the certificate is checked, not skipped), the others
# set tls_insecure_skip_verify.
IT_TIMEOUT=${IT_TIMEOUT:-90}
source "$(dirname "$0")/lib.sh"
need_cmd openssl

SINK="$IT_DIR/notify_sinks.py"
python3 "$SINK" cert "$T" DNS:vigil-test,IP:127.0.0.1 || die "openssl made a certificate"

P_PLAIN=$(free_port)
P_LOGIN=$(free_port)
P_WRONG=$(free_port)
P_NOTLS=$(free_port)
start_bg smtp-plain python3 "$SINK" smtp "$P_PLAIN" "$T/plain.jsonl" --tls "$T/cert.pem" "$T/key.pem" \
    --auth 'alice:s3cret pw' --mechs PLAIN
start_bg smtp-login python3 "$SINK" smtp "$P_LOGIN" "$T/login.jsonl" --tls "$T/cert.pem" "$T/key.pem" \
    --auth 'bob:hunter2' --mechs LOGIN
start_bg smtp-wrong python3 "$SINK" smtp "$P_WRONG" "$T/wrong.jsonl" --tls "$T/cert.pem" "$T/key.pem" \
    --auth 'carol:right' --mechs PLAIN,LOGIN
start_bg smtp-notls python3 "$SINK" smtp "$P_NOTLS" "$T/notls.jsonl"
smtp_up() { python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()" "$1"; }
for p in "$P_PLAIN" "$P_LOGIN" "$P_WRONG" "$P_NOTLS"; do
    wait_until 10 smtp_up "$p" || die "SMTP sink on port $p started"
done

cat >"$T/rules.yml" <<'YAML'
groups:
  - name: mail
    interval: 1s
    rules:
      - alert: MailMe
        expr: vector(1)
        labels: {severity: page}
        annotations: {summary: 'mail test'}
YAML
cat >"$T/vigil.yml" <<YAML
global:
  evaluation_interval: 1s
rule_files: ['rules.yml']
notifications:
  route:
    receiver: mail
    group_by: [alertname]
    group_wait: 500ms
    group_interval: 1h
    repeat_interval: 1h
  receivers:
    - name: mail
      email_configs:
        - {to: ops@example.org, from: vigil@example.org, smarthost: '127.0.0.1:$P_PLAIN',
           require_tls: true, tls_insecure_skip_verify: true,
           auth_username: alice, auth_password: 's3cret pw'}
        - {to: ops@example.org, from: vigil@example.org, smarthost: '127.0.0.1:$P_LOGIN',
           require_tls: true, tls_config: {ca_file: '$T/cert.pem', server_name: vigil-test},
           auth_username: bob, auth_password: hunter2}
        - {to: ops@example.org, from: vigil@example.org, smarthost: '127.0.0.1:$P_WRONG',
           require_tls: true, tls_insecure_skip_verify: true,
           auth_username: carol, auth_password: wrong}
        - {to: ops@example.org, from: vigil@example.org, smarthost: '127.0.0.1:$P_NOTLS',
           require_tls: true}
  delivery: {timeout: 3s, initial_backoff: 200ms, max_backoff: 400ms, max_attempts: 2, tick: 200ms}
YAML
vigil_start --config "$T/vigil.yml"

got() { [ -s "$1" ] && grep -q '"data"' "$1"; }
wait_until 30 got "$T/plain.jsonl" && pass "mail delivered with STARTTLS + AUTH PLAIN" \
    || fail "mail delivered with STARTTLS + AUTH PLAIN: $(cat "$T/plain.jsonl" 2>/dev/null | head -c 300)"
wait_until 15 got "$T/login.jsonl" && pass "mail delivered with STARTTLS + AUTH LOGIN" \
    || fail "mail delivered with STARTTLS + AUTH LOGIN: $(cat "$T/login.jsonl" 2>/dev/null | head -c 300)"

msg_field() { jq -s -r "[.[] | select(.data)][0] | $2" "$1"; }
auth_field() { jq -s -r "[.[] | select(.auth)][0] | $2" "$1"; }
check_eq "PLAIN sink: message came over TLS" true "$(msg_field "$T/plain.jsonl" .tls)"
check_eq "PLAIN sink: message sent by the authenticated user" alice "$(msg_field "$T/plain.jsonl" .user)"
check_eq "PLAIN sink: mechanism" PLAIN "$(auth_field "$T/plain.jsonl" .auth)"
check_eq "PLAIN sink: user" alice "$(auth_field "$T/plain.jsonl" .user)"
check_eq "PLAIN sink: password (with a space)" 's3cret pw' "$(auth_field "$T/plain.jsonl" .password)"
check_eq "PLAIN sink: AUTH ran inside TLS" true "$(auth_field "$T/plain.jsonl" .tls)"
check_contains "PLAIN sink: the alert is in the mail" "$(msg_field "$T/plain.jsonl" .data)" "[FIRING] MailMe"
check_eq "LOGIN sink: message came over TLS" true "$(msg_field "$T/login.jsonl" .tls)"
check_eq "LOGIN sink: mechanism" LOGIN "$(auth_field "$T/login.jsonl" .auth)"
check_eq "LOGIN sink: user" bob "$(auth_field "$T/login.jsonl" .user)"
check_eq "LOGIN sink: password" hunter2 "$(auth_field "$T/login.jsonl" .password)"

# the wrong password: two attempts (max_attempts 2), both refused, then given up
wrong_failed() {
    vigil_get '/api/v1/notifications?limit=500' |
        jq -e '[.data.attempts[] | select(.integration == "email[2]" and .status == "failed")] | length > 0'
}
wait_until 20 wrong_failed && pass "wrong password: history shows the notification failed" \
    || fail "wrong password: history shows the notification failed: $(vigil_get '/api/v1/notifications?limit=50' | head -c 600)"
st=$(vigil_get '/api/v1/notifications?limit=500')
werr=$(printf '%s' "$st" | jq -r '[.data.attempts[] | select(.integration == "email[2]")][0].error')
check_contains "wrong password: the error names the SMTP reply" "$werr" "535"
check_contains "wrong password: the error names the smarthost" "$werr" "127.0.0.1:$P_WRONG"
check_eq "wrong password: the sink refused carol's password" "carol:wrong:false" \
    "$(jq -r 'select(.auth) | "\(.user):\(.password):\(.ok)"' "$T/wrong.jsonl" | head -n 1)"
check_eq "wrong password: nothing delivered" 0 "$(grep -c '"data"' "$T/wrong.jsonl" || true)"
failed_count() {
    vigil_get /metrics | awk '/^vigil_notifications_failed_total\{receiver="mail",integration="email\[2\]"\}/ {print $2}'
}
check_ge "wrong password: counted in vigil_notifications_failed_total" 2 "$(failed_count | cut -d. -f1)"

# require_tls against a server that offers no STARTTLS: refused before MAIL
notls_failed() {
    vigil_get '/api/v1/notifications?limit=500' |
        jq -e '[.data.attempts[] | select(.integration == "email[3]" and .status == "failed")] | length > 0'
}
wait_until 20 notls_failed && pass "require_tls without STARTTLS on the server fails" \
    || fail "require_tls without STARTTLS on the server fails"
check_contains "require_tls: the error says why" \
    "$(vigil_get '/api/v1/notifications?limit=500' | jq -r '[.data.attempts[] | select(.integration == "email[3]")][0].error')" \
    "STARTTLS not supported"
check_eq "require_tls: no message sent in clear text" 0 "$(cat "$T/notls.jsonl" 2>/dev/null | grep -c '"data"')"
vigil_stop
