# shellcheck shell=bash
# syslog_lib.sh: what the syslog scripts share, sourced after lib.sh.
#  - metric NAME: the value of one sample line of vigil's /metrics (integer part), e.g.
#    metric 'vigil_syslog_messages_dropped_total{reason="too_large"}';
#  - syslog_dump: runs `vigil logs dump` on $VIGIL_DATA into $T/dump (the
#    server must be stopped), dying when it fails;
#  - entry WHAT REGEX: passes when exactly one line of $T/dump matches the extended
#    REGEX, else fails showing the dump.

metric() {
    vigil_get /metrics | awk -v m="$1" '$1 == m { print $2 }' | head -n 1 | sed 's/\..*//'
}

syslog_dump() {
    if ! timeout 60 "$VIGIL_BIN" logs dump --data-dir "$VIGIL_DATA" >"$T/dump" 2>"$T/dump.err"; then
        die "vigil logs dump ran: $(head -c 400 "$T/dump.err")"
    fi
    log "$(wc -l <"$T/dump") entries dumped"
}

entry() {
    local n
    n=$(grep -cE -- "$2" "$T/dump")
    if [ "$n" = 1 ]; then pass "$1"; else
        fail "$1: $n entries match /$2/; dump:"
        sed 's/^/       /' "$T/dump" | head -n 20
    fi
}
