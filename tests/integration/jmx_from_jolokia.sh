#!/usr/bin/env bash
# jmx_from_jolokia: Vigil polls the MBeans of a real JVM through Debian's Jolokia.
#
# The test compiles tests/integration/jmx/JolokiaApp.java with javac into its temp dir
# and runs it on a free loopback port: a JVM serving Jolokia's protocol handler and JMX
# backend (libjolokia-core-java, with json-simple) over the JDK's HTTP server. Vigil polls
# it with a bulk read (Memory, every GarbageCollector through a pattern, a fixed test
# MBean, a path read, an MBean that does not exist) and a second target where nothing
# listens. Checks through /api/v1/query:
#   - java_lang_Memory_HeapMemoryUsage_used > 0, and the GC counts and times of every
#     collector Jolokia itself lists (name label from the MBean name) are there and > 0
#     for the young generation (the app keeps allocating);
#   - the fixed MBean's values exactly (long, double, boolean, composite);
#   - jmx_up is 1 / 0 and errors are counted (the missing MBean, the dead target).
# The JVM is stopped by PID.
source "$(dirname "$0")/lib.sh"
need_cmd java javac

JAR_DIR=/usr/share/java
for jar in jolokia-core.jar json-simple.jar; do
    [ -r "$JAR_DIR/$jar" ] || skip_all "$JAR_DIR/$jar is missing (libjolokia-core-java; deploy/setup.sh --test)"
done
CP="$JAR_DIR/jolokia-core.jar:$JAR_DIR/json-simple.jar"

mkdir -p "$T/classes"
if ! timeout 120 javac -nowarn -d "$T/classes" -cp "$CP" "$IT_DIR/jmx/JolokiaApp.java" >"$T/javac.log" 2>&1; then
    sed 's/^/    /' "$T/javac.log" | head -20
    die "JolokiaApp.java compiles"
fi
pass "JolokiaApp.java compiles against Debian's Jolokia"

PORT=$(free_port)
JURL="http://127.0.0.1:$PORT/jolokia"
start_bg jvm java -Xmx64m -cp "$T/classes:$CP" JolokiaApp "$PORT"
JVM_PID=$BG_PID
jvm_ready() { grep -q '^listening' "$T/jvm.log" && [ "$(http_code "$JURL/version")" = 200 ]; }
if ! wait_until 60 jvm_ready; then
    tail -n 20 "$T/jvm.log" | sed 's/^/    /'
    die "the JVM serves Jolokia at $JURL"
fi
log "JVM (pid $JVM_PID) serves Jolokia at $JURL"

DEAD_PORT=$(free_port)
cat >"$T/vigil.yaml" <<EOF
jmx:
  targets:
    - name: app
      url: $JURL
      interval: 1s
      timeout: 5s
      mbeans:
        - {mbean: "java.lang:type=Memory", attributes: [HeapMemoryUsage]}
        - {mbean: "java.lang:type=GarbageCollector,name=*", attributes: [CollectionCount, CollectionTime]}
        - {mbean: "vigil.test:type=Demo,name=fixed"}
        - {mbean: "java.lang:type=Memory", attributes: [NonHeapMemoryUsage], path: used}
        - {mbean: "vigil.test:type=Missing"}
    - name: down
      url: http://127.0.0.1:$DEAD_PORT/jolokia
      interval: 1s
      timeout: 1s
      mbeans: [{mbean: "java.lang:type=Memory"}]
EOF
vigil_start --config "$T/vigil.yaml"

value_of() {
    vigil_get /api/v1/query -G --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty'
}
gt0() { awk -v v="$1" 'BEGIN { exit !(v != "" && v + 0 > 0) }'; }
heap_seen() { gt0 "$(value_of 'java_lang_Memory_HeapMemoryUsage_used{target="app"}')"; }
wait_until 30 heap_seen || log "no heap sample yet"

heap=$(value_of 'java_lang_Memory_HeapMemoryUsage_used{target="app"}')
if gt0 "$heap"; then pass "java_lang_Memory_HeapMemoryUsage_used > 0 ($heap)"
else fail "java_lang_Memory_HeapMemoryUsage_used > 0: got [$heap]"; fi
max=$(value_of 'java_lang_Memory_HeapMemoryUsage_max{target="app"}')
check_eq "HeapMemoryUsage.max is the JVM's -Xmx64m" 67108864 "$max"
nonheap=$(value_of 'java_lang_Memory_NonHeapMemoryUsage_used{target="app"}')
if gt0 "$nonheap"; then pass "path read: java_lang_Memory_NonHeapMemoryUsage_used > 0 ($nonheap)"
else fail "path read: java_lang_Memory_NonHeapMemoryUsage_used > 0: got [$nonheap]"; fi

# Every collector the JVM has, as Jolokia itself lists them.
curl -s --max-time 10 "$JURL/search/java.lang:type=GarbageCollector,*" |
    jq -r '.value[]' | sed -E 's/.*name=([^,]*).*/\1/' | sort >"$T/gcs.jolokia"
vigil_get /api/v1/query -G --data-urlencode 'query=java_lang_GarbageCollector_CollectionCount{target="app"}' |
    jq -r '.data.result[].metric.name' | sort >"$T/gcs.vigil"
check_ge "collectors listed by Jolokia" 1 "$(wc -l <"$T/gcs.jolokia")"
check_eq "java_lang_GarbageCollector_CollectionCount: one series per collector, name label" \
    "$(cat "$T/gcs.jolokia")" "$(cat "$T/gcs.vigil")"
young=$(grep -i young "$T/gcs.vigil" | head -n 1)
[ -n "$young" ] || young=$(head -n 1 "$T/gcs.vigil")
count=$(value_of "java_lang_GarbageCollector_CollectionCount{target=\"app\",name=\"$young\"}")
if gt0 "$count"; then pass "GC count of \"$young\" > 0 ($count)"; else fail "GC count of \"$young\" > 0: got [$count]"; fi
gctime=$(value_of "java_lang_GarbageCollector_CollectionTime{target=\"app\",name=\"$young\"}")
[ -n "$gctime" ] && pass "GC time of \"$young\" stored ($gctime)" || fail "GC time of \"$young\" stored"
later() { c=$(value_of "java_lang_GarbageCollector_CollectionCount{target=\"app\",name=\"$young\"}"); awk -v a="$count" -v b="$c" 'BEGIN { exit !(b + 0 > a + 0) }'; }
if wait_until 20 later; then pass "the GC count grows between polls"; else fail "the GC count grows between polls"; fi

check_eq "vigil_test_Demo_Count (long)" 42 "$(value_of 'vigil_test_Demo_Count{name="fixed"}')"
check_eq "vigil_test_Demo_Ratio (double)" 0.5 "$(value_of 'vigil_test_Demo_Ratio{name="fixed"}')"
check_eq "vigil_test_Demo_Enabled (boolean)" 1 "$(value_of 'vigil_test_Demo_Enabled{name="fixed"}')"
check_eq "vigil_test_Demo_Usage_used (composite)" 1024 "$(value_of 'vigil_test_Demo_Usage_used{name="fixed"}')"
check_eq "string attributes are not stored" 0 "$(series_count '{__name__="vigil_test_Demo_Label"}')"

check_eq "jmx_up{target=app}" 1 "$(value_of 'jmx_up{target="app"}')"
down_seen() { [ -n "$(value_of 'jmx_up{target="down"}')" ]; }
wait_until 20 down_seen || true
check_eq "jmx_up{target=down} (nothing listens)" 0 "$(value_of 'jmx_up{target="down"}')"
# /api/v1/targets lists the agents in Prometheus's shape beside scrape targets.
jtarget() {
    vigil_get "/api/v1/targets?scrapePool=jmx" |
        jq -r --arg t "$1" '.data.activeTargets[] | select(.labels.target == $t) | '"$2"
}
check_eq "/api/v1/targets: the app agent is up" up "$(jtarget app .health)"
check_eq "/api/v1/targets: scrapeUrl is the agent's URL" "$JURL" "$(jtarget app .scrapeUrl)"
check_eq "/api/v1/targets: the dead agent is down" down "$(jtarget down .health)"
why=$(jtarget down .lastError)
if [ -n "$why" ]; then pass "/api/v1/targets: the dead agent says why ($why)"; else fail "/api/v1/targets: the dead agent says why: lastError is empty"; fi
METRICS=$(vigil_get /metrics)
check_contains "the missing MBean is counted" "$METRICS" 'vigil_jmx_errors_total{target="app",reason="mbean"}'
check_contains "the dead target is counted" "$METRICS" 'vigil_jmx_errors_total{target="down",reason="http"}'
check_contains "jmx samples counted as ingested" "$METRICS" 'vigil_ingest_samples_accepted_total{receiver="jmx"}'

vigil_stop
stop_pid "$JVM_PID"
if kill -0 "$JVM_PID" 2>/dev/null; then fail "the JVM (pid $JVM_PID) stopped"; else pass "the JVM stopped by PID"; fi
