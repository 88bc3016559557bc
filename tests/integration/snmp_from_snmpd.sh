#!/usr/bin/env bash
# snmp_from_snmpd: Vigil polls Debian's snmpd over SNMP v2c and v3 (authPriv, SHA/AES)
# and stores what snmpget/snmpwalk read from the same agent.
#
# The test starts its own snmpd as a foreground process of whoever runs the test (root or
# not; no privilege is needed) on a free loopback UDP port, with its own config (a v2c community,
# a v3 user made with createUser, an `extend` script printing 42) and its own persistent
# directory, and stops it by PID. Vigil polls four devices: the agent over v2c, over v3,
# over v3 as a user it does not know, and a port where nothing answers. Checks:
#   - snmp_up is 1 for the two good devices and 0 for the other two, whose errors are
#     counted (reason timeout / error) while the good devices keep being polled;
#   - sysUpTime and the interface counters (ifInOctets, ifOutOctets, walked, labelled by
#     ifIndex and ifDescr) lie between what snmpwalk read just before and just after;
#   - hrMemorySize and the extend output (an OCTET STRING "42") equal snmpget's values;
#   - the ifDescr labels are exactly snmpwalk's interface names.
source "$(dirname "$0")/lib.sh"
need_cmd snmpd snmpget snmpwalk

PORT=$(free_port)
AGENT="127.0.0.1:$PORT"
COMM=vigil-it-community
V3USER=vigilv3
AUTHPASS=vigil-auth-pass
PRIVPASS=vigil-priv-pass
# NET-SNMP-EXTEND-MIB::nsExtendOutput1Line."vigiltest" (index: length, then the bytes)
EXTEND_OID=1.3.6.1.4.1.8072.1.3.2.3.1.1.9.118.105.103.105.108.116.101.115.116
SYSUPTIME=1.3.6.1.2.1.1.3.0
HRMEMSIZE=1.3.6.1.2.1.25.2.2.0
IFDESCR=1.3.6.1.2.1.2.2.1.2
IFIN=1.3.6.1.2.1.2.2.1.10
IFOUT=1.3.6.1.2.1.2.2.1.16

# net-snmp's persistent files (engine boots, client state) stay under $T, not /var/lib.
export SNMP_PERSISTENT_DIR="$T/snmp-persist"
mkdir -p "$SNMP_PERSISTENT_DIR"
cat >"$T/snmpd.conf" <<EOF
rocommunity $COMM 127.0.0.1
createUser $V3USER SHA "$AUTHPASS" AES "$PRIVPASS"
rouser $V3USER priv
extend vigiltest /bin/echo 42
sysLocation vigil-integration-test
EOF

start_bg snmpd snmpd -f -Lo -C -c "$T/snmpd.conf" "udp:$AGENT"
SNMPD_PID=$BG_PID

# Client helpers: no MIBs, numeric OIDs, values only with -Oqv.
# v2 CMD OUTPUT-OPTION OID...
v2() {
    local cmd=$1 out=$2
    shift 2
    timeout 20 "$cmd" -m '' -On "$out" -Ot -v2c -c "$COMM" -t 2 -r 1 "$AGENT" "$@" 2>/dev/null
}
snmpget_v2() { v2 snmpget -Oqv "$@" | tr -d '"'; }
snmpget_v3() {
    timeout 20 snmpget -m '' -On -Oqv -Ot -v3 -l authPriv -u "$V3USER" -a SHA -A "$AUTHPASS" \
        -x AES -X "$PRIVPASS" -t 2 -r 1 "$AGENT" "$@" 2>/dev/null | tr -d '"'
}
# walk_values OID: "<index> <value>" per row of the column.
walk_values() { v2 snmpwalk -Oq "$1" | sed -e "s/^\.$1\.//" -e 's/"//g' | sort; }

if ! wait_until 20 snmpget_v2 "$SYSUPTIME"; then
    tail -n 20 "$T/snmpd.log" | sed 's/^/    /'
    die "snmpd answers on $AGENT"
fi
log "snmpd (pid $SNMPD_PID) answers on $AGENT"
check_eq "snmpd answers v3 authPriv (createUser in its config)" 42 "$(snmpget_v3 "$EXTEND_OID")"

DEAD_PORT=$(free_port)
device_metrics() {
    cat <<EOF
      interval: 1s
      timeout: 1s
      retries: 0
      metrics:
        - {name: sysUpTime, oid: $SYSUPTIME, type: counter}
        - {name: hrMemorySize, oid: $HRMEMSIZE}
        - {name: vigil_extend_value, oid: $EXTEND_OID}
        - name: ifInOctets
          oid: $IFIN
          type: counter
          walk: true
          index_label: ifIndex
          labels_from: [{oid: $IFDESCR, label: ifDescr}]
        - name: ifOutOctets
          oid: $IFOUT
          type: counter
          walk: true
          index_label: ifIndex
          labels_from: [{oid: $IFDESCR, label: ifDescr}]
EOF
}
{
    echo "snmp:"
    echo "  devices:"
    echo "    - name: v2"
    echo "      address: '$AGENT'"
    echo "      version: 2c"
    echo "      community: $COMM"
    device_metrics
    echo "    - name: v3"
    echo "      address: '$AGENT'"
    echo "      version: 3"
    echo "      v3: {username: $V3USER, security_level: authPriv, auth_protocol: SHA,"
    echo "           auth_password: $AUTHPASS, priv_protocol: AES, priv_password: $PRIVPASS}"
    device_metrics
    echo "    - name: v3bad"
    echo "      address: '$AGENT'"
    echo "      version: 3"
    # (another user name: net-snmp keeps one key per engine ID and user in a process)
    echo "      v3: {username: intruder, auth_password: wrong-password, priv_password: $PRIVPASS}"
    device_metrics
    echo "    - name: dead"
    echo "      address: '127.0.0.1:$DEAD_PORT'"
    device_metrics
} >"$T/vigil.yaml"

vigil_start --config "$T/vigil.yaml"

# query EXPR: "<labels> <value>" lines of an instant query, sorted.
query() {
    vigil_get /api/v1/query -G --data-urlencode "query=$1" |
        jq -r '.data.result[] | "\(.metric | del(.__name__) | to_entries | map("\(.key)=\(.value)") | join(",")) \(.value[1])"' |
        sort
}
value_of() { query "$1" | awk 'NR==1 {print $2}'; }
up_of() { value_of "snmp_up{device=\"$1\"}"; }

is_up() { [ "$(up_of "$1")" = 1 ]; }
has_up() { [ -n "$(up_of "$1")" ]; }
for d in v2 v3; do
    wait_until 30 is_up $d || log "device $d not up yet: $(up_of $d)"
done
wait_until 20 has_up dead || true
check_eq "snmp_up{device=v2}" 1 "$(up_of v2)"
check_eq "snmp_up{device=v3}" 1 "$(up_of v3)"
check_eq "snmp_up{device=v3bad} (a user the agent does not know)" 0 "$(up_of v3bad)"
check_eq "snmp_up{device=dead} (nothing listens)" 0 "$(up_of dead)"

# /api/v1/targets lists the devices in Prometheus's shape beside scrape targets.
target_of() {
    vigil_get "/api/v1/targets?scrapePool=snmp" |
        jq -r --arg d "$1" '.data.activeTargets[] | select(.labels.device == $d) | '"$2"
}
check_eq "/api/v1/targets: four snmp devices" 4 \
    "$(vigil_get '/api/v1/targets' | jq '[.data.activeTargets[] | select(.scrapePool == "snmp")] | length')"
check_eq "/api/v1/targets: device v2 is up, no error" "up|" "$(target_of v2 '"\(.health)|\(.lastError)"')"
check_eq "/api/v1/targets: dead device is down" down "$(target_of dead .health)"
why=$(target_of dead .lastError)
if [ -n "$why" ]; then pass "/api/v1/targets: dead device says why ($why)"; else fail "/api/v1/targets: dead device says why: lastError is empty"; fi
check_contains "/api/v1/targets: scrapeUrl names the address" "$(target_of v2 .scrapeUrl)" "snmp://127.0.0.1:"
check_eq "/api/v1/targets: interval" 1s "$(target_of v2 .scrapeInterval)"

# A before, V polled in between, B after: a counter read by Vigil lies in [A, B].
walk_values "$IFIN" >"$T/in.a"
walk_values "$IFOUT" >"$T/out.a"
UP_A=$(snmpget_v2 "$SYSUPTIME")
sleep 2.5
for d in v2 v3; do
    query "ifInOctets{device=\"$d\"}" >"$T/in.$d"
    query "ifOutOctets{device=\"$d\"}" >"$T/out.$d"
    value_of "sysUpTime{device=\"$d\"}" >"$T/up.$d"
done
walk_values "$IFIN" >"$T/in.b"
walk_values "$IFOUT" >"$T/out.b"
UP_B=$(snmpget_v2 "$SYSUPTIME")

# between WHAT A V B (integers, or floats Vigil prints)
between() {
    if awk -v a="$2" -v v="$3" -v b="$4" 'BEGIN { exit !(a != "" && v != "" && a + 0 <= v + 0 && v + 0 <= b + 0) }'; then
        pass "$1 ($2 <= $3 <= $4)"
    else
        fail "$1: expected $2 <= [$3] <= $4"
    fi
}

walk_values "$IFDESCR" | awk '{print $1 " " $2}' >"$T/descr"
for d in v2 v3; do
    between "sysUpTime{device=$d} between two snmpget reads" "$UP_A" "$(cat "$T/up.$d")" "$UP_B"
    # "<ifIndex> <ifDescr>" as Vigil labelled the series
    sed -E 's/^device=[^,]*,ifDescr=([^,]*),ifIndex=([^ ]*) .*/\2 \1/' "$T/in.$d" | sort >"$T/descr.$d"
    check_eq "ifInOctets{device=$d}: one series per interface, labelled with snmpwalk's ifDescr" \
        "$(cat "$T/descr")" "$(cat "$T/descr.$d")"
    for dir in in out; do
        n=0
        while read -r idx a; do
            v=$(grep -E "ifIndex=$idx " "$T/$dir.$d" | awk '{print $2}')
            b=$(awk -v i="$idx" '$1 == i {print $2}' "$T/$dir.b")
            between "if${dir^}Octets{device=$d,ifIndex=$idx}" "$a" "$v" "$b"
            n=$((n + 1))
        done <"$T/$dir.a"
        check_ge "interfaces compared for if${dir^}Octets on $d" 1 "$n"
    done
    check_eq "hrMemorySize{device=$d} equals snmpget" "$(snmpget_v2 "$HRMEMSIZE")" \
        "$(value_of "hrMemorySize{device=\"$d\"}")"
    check_eq "vigil_extend_value{device=$d}: the extend script's output as a number" 42 \
        "$(value_of "vigil_extend_value{device=\"$d\"}")"
done

# Bad devices are counted and do not hold up the good ones.
METRICS=$(vigil_get /metrics)
errs() { printf '%s\n' "$METRICS" | awk -v m="vigil_snmp_errors_total{device=\"$1\",reason=\"$2\"}" '$1 == m {print int($2)}'; }
check_ge "timeouts counted for the dead device" 1 "$(errs dead timeout)"
check_ge "errors counted for the device with an unknown user" 1 "$(errs v3bad error)"
polls=$(printf '%s\n' "$METRICS" | awk '$1 == "vigil_snmp_polls_total{device=\"v2\"}" {print int($2)}')
check_ge "device v2 keeps its 1s interval beside a dead device" 4 "$polls"
check_contains "snmp samples counted as ingested" "$METRICS" 'vigil_ingest_samples_accepted_total{receiver="snmp"}'
check_eq "snmp_scrape_duration_seconds for every device" 4 \
    "$(query 'snmp_scrape_duration_seconds' | wc -l)"
check_eq "metadata: ifInOctets is a counter" counter \
    "$(vigil_get /api/v1/metadata -G --data-urlencode metric=ifInOctets | jq -r '.data.ifInOctets[0].type')"

vigil_stop
stop_pid "$SNMPD_PID"
if kill -0 "$SNMPD_PID" 2>/dev/null; then fail "snmpd (pid $SNMPD_PID) stopped"; else pass "snmpd stopped by PID"; fi
