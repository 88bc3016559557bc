#!/usr/bin/env bash
# Vigil's durability promise for spans: an OTLP/HTTP traces export answered 200 survives
# kill -9. Four client threads (python3, one connection each) POST OTLP/JSON requests of
# 5 traces x 4 spans over two services and append a request's trace ids to an ack log
# only after its 200. Vigil is killed with SIGKILL while requests are in flight, restarted
# on the same data dir, and every acknowledged trace must come back whole from
# GET /api/traces/<id> (4 spans, both services) and show up in a search (whose index
# postings the restart rebuilt from the stored spans).
source "$(dirname "$0")/lib.sh"
need_cmd python3
need_cmd jq

vigil_start

cat >"$T/client.py" <<'PY'
import http.client, json, os, sys, threading, time

port, ack_path, stop_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
now = time.time_ns()
lock = threading.Lock()
ack = open(ack_path, "a")

def request(thread, n):
    """5 traces of 4 spans: a root and a child in it-crash-front, two in it-crash-back."""
    front, back = [], []
    tids = []
    for k in range(5):
        tid = "%08x%08x%016x" % (0xc0ffee00 + thread, n, k + 1)
        tids.append(tid)
        t0 = now - 60_000_000_000 + (n * 5 + k) * 1_000_000
        def span(sid, parent, name, off, dur, kind):
            s = {"traceId": tid, "spanId": "%016x" % sid, "name": name, "kind": kind,
                 "startTimeUnixNano": str(t0 + off), "endTimeUnixNano": str(t0 + off + dur),
                 "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}]}
            if parent:
                s["parentSpanId"] = "%016x" % parent
            return s
        front += [span(1, 0, "GET /crash", 0, 9_000_000, 2), span(2, 1, "call back", 1_000_000, 7_000_000, 3)]
        back += [span(3, 2, "serve", 2_000_000, 5_000_000, 2), span(4, 3, "SELECT 1", 3_000_000, 1_000_000, 3)]
    def rs(svc, spans):
        return {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": svc}}]},
                "scopeSpans": [{"scope": {"name": "crash-test"}, "spans": spans}]}
    body = json.dumps({"resourceSpans": [rs("it-crash-front", front), rs("it-crash-back", back)]})
    return body.encode(), tids

def worker(thread):
    conn = None
    for n in range(100000):
        if os.path.exists(stop_path):
            return
        body, tids = request(thread, n)
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
        except OSError:
            return  # the server is gone: what was acknowledged is in the log
        if r.status == 200:
            with lock:
                ack.write("".join(t + "\n" for t in tids))
                ack.flush()

threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
PY

start_bg client python3 "$T/client.py" "$VIGIL_HTTP_PORT" "$T/ack.log" "$T/stop"
CLIENT_PID=$BG_PID

# Kill once 100 requests (500 traces) are acknowledged, with the clients still sending.
for ((i = 0; i < 3000; i++)); do
    [ -f "$T/ack.log" ] && [ "$(wc -l <"$T/ack.log")" -ge 500 ] && break
    kill -0 "$CLIENT_PID" 2>/dev/null || break
    sleep 0.02
done
[ -f "$T/ack.log" ] && [ "$(wc -l <"$T/ack.log")" -ge 500 ] || {
    tail -n 5 "$T/client.log"
    die "100 span requests acknowledged within 60 s"
}
kill -0 "$CLIENT_PID" 2>/dev/null && pass "the clients were still sending at the kill" ||
    fail "the clients were still sending at the kill"
vigil_kill9
log "vigil killed with SIGKILL after $(wc -l <"$T/ack.log") acknowledged traces"
wait_until 30 bash -c "! kill -0 $CLIENT_PID 2>/dev/null" || fail "the clients stopped within 30 s of the kill"
touch "$T/stop"
stop_pid "$CLIENT_PID" 5
n_acked=$(wc -l <"$T/ack.log")
check_ge "traces acknowledged before the kill" 500 "$n_acked"

vigil_start
check_eq "restarted vigil answers /-/healthy" 200 "$(http_code "$VIGIL_URL/-/healthy")"

# Every acknowledged trace, whole: 4 spans over both services.
python3 - "$VIGIL_HTTP_PORT" "$T/ack.log" >"$T/verify.txt" <<'PY'
import http.client, json, sys
port, path = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
ok = bad = 0
for tid in open(path).read().split():
    conn.request("GET", "/api/traces/" + tid)
    r = conn.getresponse()
    body = r.read()
    spans, svcs = 0, set()
    if r.status == 200:
        for b in json.loads(body).get("batches", []):
            for a in b["resource"]["attributes"]:
                if a["key"] == "service.name":
                    svcs.add(a["value"]["stringValue"])
            spans += sum(len(s["spans"]) for s in b["scopeSpans"])
    if spans == 4 and svcs == {"it-crash-front", "it-crash-back"}:
        ok += 1
    else:
        bad += 1
        if bad <= 3:
            print("missing or partial: %s status %d spans %d" % (tid, r.status, spans), file=sys.stderr)
print(ok, bad)
PY
read -r ok bad <"$T/verify.txt"
check_eq "every acknowledged trace is stored whole after the restart" "$n_acked 0" "${ok:-0} ${bad:-?}"

code=$(http_req "$T/search.json" "$VIGIL_URL/api/search" -G --data-urlencode 'tags=service.name=it-crash-back' \
    --data-urlencode limit=1000 --data-urlencode "start=$(( $(date +%s) - 600 ))" --data-urlencode "end=$(( $(date +%s) + 60 ))")
check_eq "search by service answers 200" 200 "$code"
# The index postings were in memory at the kill (written out every 5 minutes): the restart
# rebuilt them from the stored spans, so the search finds every acknowledged trace.
# (The API returns at most 1,000 traces, newest first: past that, the 1,000 newest.)
found=$(jq -r '.traces[].traceID' "$T/search.json" 2>/dev/null | sort -u)
if [ "$n_acked" -le 1000 ]; then
    missing=$(sort -u "$T/ack.log" | comm -23 - <(echo "$found") | wc -l)
    check_eq "search by service finds every acknowledged trace" 0 "$missing"
else
    check_eq "search by service finds 1000 traces" 1000 "$(echo "$found" | grep -c .)"
fi

# A clean stop writes the postings out as an index segment: after this restart the same
# search reads them from disk, not from memory, and must give the same traces.
vigil_stop
vigil_start
code=$(http_req "$T/search2.json" "$VIGIL_URL/api/search" -G --data-urlencode 'tags=service.name=it-crash-back' \
    --data-urlencode limit=1000 --data-urlencode "start=$(( $(date +%s) - 600 ))" --data-urlencode "end=$(( $(date +%s) + 60 ))")
check_eq "search after a clean restart answers 200" 200 "$code"
check_eq "search after a clean restart finds the same traces" "$found" \
    "$(jq -r '.traces[].traceID' "$T/search2.json" 2>/dev/null | sort -u)"
vigil_stop
