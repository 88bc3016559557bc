#!/usr/bin/env bash
# A host sends its logs to Vigil's syslog listeners with util-linux `logger`: over UDP
# and TCP, in RFC 5424 and RFC 3164, newline-framed and octet-counted, with structured
# data, message ids and pids, several lines per connection. Garbage on the sockets (no
# PRI, a bad octet-counting length, an oversized datagram) is counted, the server stays
# up, and nothing else is lost. After a graceful stop, `vigil logs dump` must show every
# message with the documented labels (job, hostname, app_name, facility, severity,
# level) and structured metadata (proc_id, msg_id, sd_<id>_<param>).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/syslog_lib.sh"

need_cmd logger
UDP=$(free_port)
TCP=$(free_port)
cat >"$T/vigil.yml" <<EOF
syslog:
  udp_addr: 127.0.0.1:$UDP
  tcp_addr: 127.0.0.1:$TCP
  max_message_bytes: 2048
  flush_interval: 100ms
EOF
vigil_start --config "$T/vigil.yml"
HOST=$(hostname)
RUN="run$$"

send() { logger --server 127.0.0.1 "$@"; }
send --port "$UDP" --udp --rfc5424 -t it-udp5424 -p local3.warning --msgid ID47 "udp 5424 $RUN"
send --port "$UDP" --udp --rfc3164 -t it-udp3164 -p user.info --id=4242 "udp 3164 $RUN"
send --port "$TCP" --tcp --rfc5424 -t it-tcp5424 -p daemon.err \
    --sd-id 'vigil@32473' --sd-param 'case="tcp \"quoted\" \]"' "tcp 5424 $RUN"
send --port "$TCP" --tcp --rfc3164 -t it-tcp3164 -p auth.notice "tcp 3164 $RUN"
send --port "$TCP" --tcp --octet-count --rfc5424 -t it-octet -p local7.debug "octet 5424 $RUN"
send --port "$TCP" --tcp --octet-count --rfc3164 -t it-octet3164 "octet 3164 $RUN"
printf 'multi one %s\nmulti two %s\nmulti three %s\n' "$RUN" "$RUN" "$RUN" |
    send --port "$TCP" --tcp --rfc5424 -t it-multi
EXPECTED=9

# Garbage: a line without PRI (stored raw), a desynchronised octet-counting stream
# (connection dropped, counted), a datagram over max_message_bytes (dropped, counted).
python3 - "$UDP" "$TCP" "$RUN" <<'EOF'
import socket, sys
udp, tcp, run = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", tcp))
s.sendall(("garbage without pri " + run + "\n").encode())
s.close()
s = socket.create_connection(("127.0.0.1", tcp))
s.sendall(b"9 <13>hellox <13>bad")
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"<13>" + b"x" * 4000, ("127.0.0.1", udp))
u.sendto(b"", ("127.0.0.1", udp))
EOF

stored_all() { [ "$(metric vigil_syslog_messages_stored_total)" -ge $((EXPECTED + 2)) ] 2>/dev/null; }
wait_until 20 stored_all || log "not everything arrived within 20 s"
check_ge "messages stored (logger + raw + the frame before the bad length)" $((EXPECTED + 2)) \
    "$(metric vigil_syslog_messages_stored_total)"
check_ge "unparsable line counted" 1 "$(metric 'vigil_syslog_messages_unparsable_total{reason="no_pri"}')"
check_ge "bad octet-counting length counted" 1 "$(metric 'vigil_syslog_messages_dropped_total{reason="bad_framing"}')"
check_ge "oversized datagram counted" 1 "$(metric 'vigil_syslog_messages_dropped_total{reason="too_large"}')"
check_ge "empty datagram counted" 1 "$(metric 'vigil_syslog_messages_dropped_total{reason="empty"}')"
check_ge "TCP connections accepted" 7 "$(metric 'vigil_syslog_connections_total{event="accepted"}')"
vigil_alive && pass "vigil is up after the garbage" || fail "vigil died"

vigil_stop
syslog_dump

H="hostname=\"$HOST\""
entry "UDP RFC 5424: labels, level, msg_id and timeQuality metadata" \
    "^[0-9]+ \{app_name=\"it-udp5424\",facility=\"local3\",$H,job=\"syslog\",level=\"warn\",severity=\"warning\"\} udp 5424 $RUN \| msg_id=\"ID47\",sd_timeQuality_tzKnown=\"1\""
entry "UDP RFC 3164: tag and pid" \
    "^[0-9]+ \{app_name=\"it-udp3164\",facility=\"user\",$H,job=\"syslog\",level=\"info\",severity=\"informational\"\} udp 3164 $RUN \| proc_id=\"4242\"$"
entry "TCP RFC 5424: escaped structured data unescaped" \
    "^[0-9]+ \{app_name=\"it-tcp5424\",facility=\"daemon\",$H,job=\"syslog\",level=\"error\",severity=\"error\"\} tcp 5424 $RUN \| .*sd_vigil_32473_case=\"tcp \\\\\"quoted\\\\\" \]\""
entry "TCP RFC 3164" \
    "^[0-9]+ \{app_name=\"it-tcp3164\",facility=\"auth\",$H,job=\"syslog\",level=\"info\",severity=\"notice\"\} tcp 3164 $RUN$"
entry "TCP octet counting, RFC 5424" \
    "^[0-9]+ \{app_name=\"it-octet\",facility=\"local7\",$H,job=\"syslog\",level=\"debug\",severity=\"debug\"\} octet 5424 $RUN "
entry "TCP octet counting, RFC 3164" "app_name=\"it-octet3164\".*\} octet 3164 $RUN$"
for w in one two three; do
    entry "several lines on one connection: $w" "app_name=\"it-multi\".*\} multi $w $RUN "
done
entry "garbage kept raw with its reason" \
    "^[0-9]+ \{job=\"syslog\"\} garbage without pri $RUN \| parse_error=\"no_pri\"$"
entry "the frame before a bad octet-counting length kept" "\} hello$"
check_eq "nothing from the bad frame or the oversized datagram" 0 \
    "$(grep -cE '\} bad|xxxxxxxxxx' "$T/dump")"

# timestamps: the messages' own times, within a minute of now
NOW_NS=$(($(date +%s) * 1000000000))
bad_t=$(grep -F "$RUN" "$T/dump" | awk -v now="$NOW_NS" '{ d = $1 - now; if (d < -60e9 || d > 60e9) print }' | wc -l)
check_eq "stored times are the messages' times (within a minute)" 0 "$bad_t"
