#!/usr/bin/env bash
# A web server's access log tailed by Vigil: Debian's nginx runs unprivileged-style from
# a temp dir with its own config (loopback port, access and error logs in that dir) and
# serves requests made with curl; Vigil tails access.log with parser nginx_combined
# (log_files) and must store one entry per request with the method, path and status
# fields (status as a stream label, the others as structured metadata), seen through
# the Loki API while running and through `vigil logs dump` after a graceful stop. Then
# the log is rotated during ingestion the way logrotate does it for nginx (mv, then
# `nginx -s reopen`) while requests keep coming: no request may be lost or stored twice.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/syslog_lib.sh" # metric, syslog_dump (a `vigil logs dump`), entry

need_cmd nginx
NG="$T/nginx"
mkdir -p "$NG/www" "$NG/tmp"
echo "hello from nginx" >"$NG/www/index.html"
PORT=$(free_port)
# As root nginx would switch its workers to an unprivileged user that cannot enter the
# private temp dir; keep them as the invoking user instead.
USER_LINE=""
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat >"$NG/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
error_log $NG/error.log;
events { worker_connections 64; }
http {
    access_log $NG/access.log combined;
    client_body_temp_path $NG/tmp/body;
    proxy_temp_path $NG/tmp/proxy;
    fastcgi_temp_path $NG/tmp/fastcgi;
    uwsgi_temp_path $NG/tmp/uwsgi;
    scgi_temp_path $NG/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT;
        root $NG/www;
    }
}
EOF
ngx() { nginx -e "$NG/error.log" -p "$NG" -c "$NG/nginx.conf" "$@"; }
start_bg nginx nginx -e "$NG/error.log" -p "$NG" -c "$NG/nginx.conf" -g "daemon off; pid $NG/nginx.pid;"
NGINX_PID=$BG_PID
NGINX_URL="http://127.0.0.1:$PORT"
nginx_up() { [ "$(http_code "$NGINX_URL/index.html")" = 200 ]; }
if ! wait_until 20 nginx_up; then
    tail -n 20 "$T/nginx.log" "$NG/error.log" 2>/dev/null | sed 's/^/    /'
    die "nginx served /index.html within 20 s"
fi
log "nginx ready at $NGINX_URL (pid $NGINX_PID)"

cat >"$T/vigil.yml" <<EOF
log_files:
  - name: nginx
    paths: [$NG/access.log]
    labels: {job: nginx}
    parser: nginx_combined
    labels_from_fields: [status]
    start_at: beginning
EOF
vigil_check() { "$VIGIL_BIN" check-config "$T/vigil.yml"; }
check_contains "check-config accepts the log_files block" "$(vigil_check 2>&1)" "OK"
vigil_start --config "$T/vigil.yml"

# Requests: each has a unique path, so each log line can be found.
SENT=1 # the readiness probe above
req() { # METHOD PATH
    curl -s -o /dev/null --max-time 10 -X "$1" "$NGINX_URL$2"
    SENT=$((SENT + 1))
}
for i in $(seq 1 10); do
    req GET "/index.html?get=$i"
    req GET "/missing-$i"
    req POST "/index.html?post=$i"
done
accepted() { metric 'vigil_ingest_lines_accepted_total{receiver="filetail"}'; }
all_in() { [ "$(accepted)" -ge "$SENT" ] 2>/dev/null; }
wait_until 20 all_in || log "not every request arrived within 20 s"
check_eq "one entry per request before rotation" "$SENT" "$(accepted)"

# The Loki API sees them with their fields.
NOW=$(date +%s)
loki() {
    curl -s --max-time 20 -G "$VIGIL_URL/loki/api/v1/query_range" \
        --data-urlencode "query=$1" --data-urlencode "start=$((NOW - 600))000000000" \
        --data-urlencode "end=$((NOW + 600))000000000" --data-urlencode "limit=1000"
}
if [ "$(http_code "$VIGIL_URL/loki/api/v1/query_range?query=%7Bjob%3D%22nginx%22%7D")" = 404 ]; then
    skip "the Loki query API is not in this build"
else
    body=$(loki '{job="nginx", status="404"}')
    check_eq "Loki API: the 404s are a stream of their own" 10 \
        "$(printf '%s' "$body" | jq '[.data.result[].values[]] | length')"
    body=$(loki '{job="nginx"} | method="POST"')
    check_eq "Loki API: POSTs found by their method field" 10 \
        "$(printf '%s' "$body" | jq '[.data.result[].values[]] | length')"
fi

# Rotation during ingestion: mv, more requests (they go to the renamed file), reopen,
# more requests (they go to the new file).
for i in $(seq 1 15); do req GET "/rot-a-$i"; done
mv "$NG/access.log" "$NG/access.log.1"
for i in $(seq 1 10); do req GET "/rot-b-$i"; done
ngx -g "pid $NG/nginx.pid;" -s reopen 2>>"$T/nginx.log" || kill -USR1 "$NGINX_PID"
wait_until 10 test -f "$NG/access.log" || fail "nginx reopened access.log"
for i in $(seq 1 15); do req GET "/rot-c-$i"; done
wait_until 20 all_in || log "not every request arrived within 20 s of the rotation"
check_eq "one entry per request after rotation (none lost, none repeated)" "$SENT" "$(accepted)"
check_ge "the rename was noticed" 1 "$(metric 'vigil_filetail_rotations_total{source="nginx",kind="rename"}')"

vigil_stop
syslog_dump
check_eq "entries in the store" "$SENT" "$(wc -l <"$T/dump")"
entry "GET 200 with its fields" \
    '\{filename="[^"]*/access\.log",job="nginx",status="200"\} .*"GET /index\.html\?get=3 HTTP/1\.1".*method="GET",path="/index\.html\?get=3"'
entry "GET 404 with its fields" \
    'status="404"\} .*method="GET",path="/missing-7"'
entry "POST to a static file (405) with its fields" \
    'status="405"\} .*method="POST",path="/index\.html\?post=5"'
for p in rot-a-1 rot-a-15 rot-b-1 rot-b-10 rot-c-1 rot-c-15; do
    entry "rotated request $p stored once" "path=\"/$p\""
done
missing=0
for s in a b c; do
    n=15
    [ "$s" = b ] && n=10
    for i in $(seq 1 "$n"); do
        c=$(grep -c "path=\"/rot-$s-$i\"" "$T/dump")
        [ "$c" = 1 ] || { missing=$((missing + 1)); log "rot-$s-$i stored $c times"; }
    done
done
check_eq "every request around the rotation stored exactly once" 0 "$missing"
stop_pid "$NGINX_PID"
