#!/usr/bin/env bash
# Debian's rsyslog relays a host's logs to Vigil, the way a central log server is fed:
# rsyslogd (foreground, its own config, pid file and work directory, no local socket)
# receives messages from `logger` on a loopback UDP port and forwards them with omfwd:
# one action over TCP with octet counting in RFC 5424 (RSYSLOG_SyslogProtocol23Format),
# one over TCP with newline framing in rsyslog's forward format (RFC 3164 with an RFC
# 3339 timestamp), one over UDP in the classic RFC 3164 format. After a graceful stop
# `vigil logs dump` must show each message once with the documented labels. Skipped
# (77) when rsyslogd is not installed or cannot run in this sandbox.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/syslog_lib.sh"

need_cmd logger rsyslogd
UDP=$(free_port)
TCP=$(free_port)
RS_PORT=$(free_port)
cat >"$T/vigil.yml" <<EOF
syslog:
  udp_addr: 127.0.0.1:$UDP
  tcp_addr: 127.0.0.1:$TCP
  flush_interval: 100ms
EOF
vigil_start --config "$T/vigil.yml"

mkdir -p "$T/rsyslog-work"
cat >"$T/rsyslog.conf" <<EOF
global(workDirectory="$T/rsyslog-work")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="$RS_PORT")
if \$programname == "rs-octet" then {
    action(type="omfwd" target="127.0.0.1" port="$TCP" protocol="tcp"
           TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
    stop
}
if \$programname == "rs-newline" then {
    action(type="omfwd" target="127.0.0.1" port="$TCP" protocol="tcp"
           template="RSYSLOG_ForwardFormat")
    stop
}
if \$programname == "rs-udp" then {
    action(type="omfwd" target="127.0.0.1" port="$UDP" protocol="udp"
           template="RSYSLOG_TraditionalForwardFormat")
    stop
}
EOF
if ! rsyslogd -N1 -f "$T/rsyslog.conf" >"$T/rsyslog-check.log" 2>&1; then
    sed 's/^/    /' "$T/rsyslog-check.log" | head -n 10
    skip_all "rsyslogd rejects the test config in this environment"
fi
start_bg rsyslogd rsyslogd -n -f "$T/rsyslog.conf" -i "$T/rsyslog.pid"
RS_PID=$BG_PID
rs_up() { kill -0 "$RS_PID" 2>/dev/null && [ -s "$T/rsyslog.pid" ]; }
if ! wait_until 10 rs_up; then
    sed 's/^/    /' "$T/rsyslogd.log" | head -n 10
    skip_all "rsyslogd cannot start in this sandbox"
fi
log "rsyslogd running (pid $RS_PID), relaying 127.0.0.1:$RS_PORT to vigil"

HOST=$(hostname)
RUN="run$$"
send() { logger --server 127.0.0.1 --port "$RS_PORT" --udp --rfc3164 "$@"; }
send -t rs-octet -p local4.err "relayed octet $RUN"
send -t rs-newline -p daemon.warning --id=321 "relayed newline $RUN"
send -t rs-udp -p user.info "relayed udp $RUN"

stored3() { [ "$(metric vigil_syslog_messages_stored_total)" -ge 3 ] 2>/dev/null; }
wait_until 20 stored3 || log "rsyslog did not deliver everything within 20 s"
check_eq "nothing unparsable from rsyslog" "" \
    "$(vigil_get /metrics | grep '^vigil_syslog_messages_unparsable_total' || true)"

stop_pid "$RS_PID" 15
vigil_stop
syslog_dump

H="hostname=\"$HOST\""
# rsyslog's %msg% of a relayed RFC 3164 message keeps the space after "tag:", and the
# RFC 5424 template puts another before it; Vigil stores MSG byte for byte.
entry "RFC 5424, octet counting over TCP" \
    "^[0-9]+ \{app_name=\"rs-octet\",facility=\"local4\",$H,job=\"syslog\",level=\"error\",severity=\"error\"\}  ?relayed octet $RUN$"
entry "forward format, newline framing over TCP (with the pid)" \
    "^[0-9]+ \{app_name=\"rs-newline\",facility=\"daemon\",$H,job=\"syslog\",level=\"warn\",severity=\"warning\"\} ?relayed newline $RUN \| proc_id=\"321\"$"
entry "traditional format over UDP" \
    "^[0-9]+ \{app_name=\"rs-udp\",facility=\"user\",$H,job=\"syslog\",level=\"info\",severity=\"informational\"\} ?relayed udp $RUN$"
