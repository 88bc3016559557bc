#!/usr/bin/env python3
"""console_data: loads the data the web console test looks at, through Vigil's real ingest
paths (OTLP/JSON over HTTP for metrics and traces, Loki push JSON for logs).

Usage: console_data.py BASE_URL OUT.json

What is sent (all timestamps within the last 20 minutes, so "Last 1h" shows it all):
  metrics  console_demo_temperature_celsius   gauge, 3 series (room=kitchen|hall|attic),
                                              one point every 30 s for 20 min
           console_demo_requests_total        cumulative monotonic sum, 4 series
                                              (service x code)
           console_demo_many                  gauge, 120 series (shard=0..119), 3 points
  traces   TRACE_OK   frontend "GET /checkout" (server) -> frontend "call cart" (client)
                      -> cart "getCart" (server) -> cart "SELECT cart" (internal)
           TRACE_ERR  frontend "POST /pay" (server) -> payment "charge" (server, status
                      error, an exception event with type, message and stack trace)
  logs     stream {service_name="frontend", level=...}: 6 lines, one of them carrying
           TRACE_ERR in its text and as trace_id structured metadata
  traffic  for the service map and RED table: TRAFFIC_BATCHES batches, 1.5 s apart (so
           the derived counters, flushed every second in the test's config, grow
           between samples and rate() sees them), each of TRAFFIC_CHECKOUT checkout
           traces (frontend -> cart -> database "shop", a client span with db.system)
           and TRAFFIC_PAY pay traces (frontend -> payment, the first one failing).
           Their spans are dated two hours back, so the Traces page's "Last 1h" still
           lists only the two demo traces; span metrics count spans when they arrive.
OUT.json records the ids and counts for the test driver to assert on.
"""
import json
import sys
import time
import urllib.request

BASE = sys.argv[1].rstrip("/")
OUT = sys.argv[2]
NOW = int(time.time())
TRACE_OK = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_ERR = "5cf92f3577b34da6a3ce929d0e0e4799"
MANY = 120  # series of console_demo_many: more than the graph draws
TRAFFIC_BATCHES = 3
TRAFFIC_CHECKOUT = 4
TRAFFIC_PAY = 2


def post(path, body, ctype="application/json"):
    req = urllib.request.Request(BASE + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=20) as r:
        if r.status // 100 != 2:
            raise SystemExit(f"{path}: HTTP {r.status}")
        return r.read()


def attrs(d):
    return [{"key": k, "value": {"stringValue": v}} for k, v in d.items()]


def ns(sec):
    return str(int(sec * 1e9))


def metrics():
    points = range(NOW - 1200, NOW + 1, 30)
    gauges = []
    for i, room in enumerate(["kitchen", "hall", "attic"]):
        for t in points:
            gauges.append({"attributes": attrs({"room": room}), "timeUnixNano": ns(t),
                           "asDouble": 18 + 2 * i + ((t // 30) % 5) * 0.5})
    sums = []
    start = NOW - 1300
    for svc in ["frontend", "cart"]:
        for code in ["200", "500"]:
            rate = 5 if code == "200" else 1
            for t in points:
                sums.append({"attributes": attrs({"service": svc, "code": code}),
                             "startTimeUnixNano": ns(start), "timeUnixNano": ns(t),
                             "asDouble": float(rate * (t - start))})
    many = [{"attributes": attrs({"shard": str(i)}), "timeUnixNano": ns(t), "asDouble": float(i)}
            for i in range(MANY) for t in (NOW - 600, NOW - 300, NOW)]
    body = {"resourceMetrics": [{
        "resource": {"attributes": attrs({"service.name": "console-demo"})},
        "scopeMetrics": [{"scope": {"name": "console_data"}, "metrics": [
            {"name": "console_demo_temperature", "unit": "Cel", "gauge": {"dataPoints": gauges}},
            {"name": "console_demo_requests", "sum": {"dataPoints": sums, "isMonotonic": True,
                                                      "aggregationTemporality": 2}},
            {"name": "console_demo_many", "gauge": {"dataPoints": many}},
        ]}],
    }]}
    post("/v1/metrics", body)


def span(trace, sid, parent, name, start, dur_ms, kind=2, error=False, events=None, extra=None):
    s = {"traceId": trace, "spanId": sid, "name": name, "kind": kind,
         "startTimeUnixNano": ns(start), "endTimeUnixNano": ns(start + dur_ms / 1000),
         "attributes": attrs(extra or {}), "status": {"code": 2 if error else 1}}
    if parent:
        s["parentSpanId"] = parent
    if error:
        s["status"]["message"] = "card declined"
    if events:
        s["events"] = events
    return s


def resource_spans(service, spans):
    return {"resource": {"attributes": attrs({"service.name": service})},
            "scopeSpans": [{"scope": {"name": "console_data"}, "spans": spans}]}


def traces():
    t0 = NOW - 120
    t1 = NOW - 60
    stack = ("java.lang.IllegalStateException: card declined\n"
             "\tat shop.Payment.charge(Payment.java:42)\n"
             "\tat shop.Api.pay(Api.java:17)")
    exc = [{"timeUnixNano": ns(t1 + 0.05), "name": "exception", "attributes": attrs({
        "exception.type": "IllegalStateException", "exception.message": "card declined",
        "exception.stacktrace": stack})}]
    body = {"resourceSpans": [
        resource_spans("frontend", [
            span(TRACE_OK, "a000000000000001", None, "GET /checkout", t0, 120,
                 extra={"http.method": "GET", "http.route": "/checkout"}),
            span(TRACE_OK, "a000000000000002", "a000000000000001", "call cart", t0 + 0.01, 80, kind=3),
            span(TRACE_ERR, "b000000000000001", None, "POST /pay", t1, 200,
                 extra={"http.method": "POST", "http.route": "/pay"}, error=True),
            span(TRACE_ERR, "b000000000000002", "b000000000000001", "call payment", t1 + 0.02, 150, kind=3, error=True),
        ]),
        resource_spans("cart", [
            span(TRACE_OK, "a000000000000003", "a000000000000002", "getCart", t0 + 0.02, 60),
            span(TRACE_OK, "a000000000000004", "a000000000000003", "SELECT cart", t0 + 0.03, 30, kind=1,
                 extra={"db.system": "postgresql"}),
        ]),
        resource_spans("payment", [
            span(TRACE_ERR, "b000000000000003", "b000000000000002", "charge", t1 + 0.03, 100,
                 error=True, events=exc),
        ]),
    ]}
    post("/v1/traces", body)


def logs():
    levels = ["info", "info", "warn", "error", "debug", "info"]
    values = []
    for i, lvl in enumerate(levels):
        t = NOW - 300 + i * 40
        line = f"level={lvl} msg=\"console demo line {i}\" path=/checkout"
        entry = [str(t * 10**9), line]
        if i == 3:
            entry = [str(t * 10**9), f"level=error msg=\"payment failed\" trace_id={TRACE_ERR}",
                     {"trace_id": TRACE_ERR}]
        values.append((lvl, entry))
    streams = {}
    for lvl, e in values:
        streams.setdefault(lvl, []).append(e)
    body = {"streams": [{"stream": {"service_name": "frontend", "level": lvl}, "values": v}
                        for lvl, v in streams.items()]}
    post("/loki/api/v1/push", body)


def traffic():
    for b in range(TRAFFIC_BATCHES):
        if b:
            time.sleep(1.5)
        t0 = NOW - 7200 + b * 10
        front, cart, pay = [], [], []
        for i in range(TRAFFIC_CHECKOUT + TRAFFIC_PAY):
            tid = f"{0xc0ffee00 + b:08x}{i:024x}"
            sid = lambda n: f"{b:04x}{i:04x}{n:08x}"
            t = t0 + i * 0.5
            if i < TRAFFIC_CHECKOUT:
                front += [span(tid, sid(1), None, "GET /checkout", t, 90 + 10 * i),
                          span(tid, sid(2), sid(1), "call cart", t + 0.005, 60 + 8 * i, kind=3)]
                cart += [span(tid, sid(3), sid(2), "getCart", t + 0.01, 50 + 8 * i),
                         span(tid, sid(4), sid(3), "SELECT cart", t + 0.02, 20 + 5 * i, kind=3,
                              extra={"db.system": "postgresql", "db.name": "shop"})]
            else:
                fail = i == TRAFFIC_CHECKOUT
                front += [span(tid, sid(1), None, "POST /pay", t, 300, error=fail),
                          span(tid, sid(2), sid(1), "call payment", t + 0.01, 250, kind=3, error=fail)]
                pay.append(span(tid, sid(3), sid(2), "charge", t + 0.02, 200, error=fail))
        post("/v1/traces", {"resourceSpans": [resource_spans("frontend", front),
                                              resource_spans("cart", cart),
                                              resource_spans("payment", pay)]})


metrics()
traces()
logs()
traffic()
with open(OUT, "w", encoding="utf-8") as f:
    json.dump({"now": NOW, "trace_ok": TRACE_OK, "trace_err": TRACE_ERR,
               "trace_ok_spans": ["GET /checkout", "call cart", "getCart", "SELECT cart"],
               "gauge_series": 3, "counter_series": 4, "many_series": MANY, "log_lines": 6,
               "services": ["cart", "frontend", "payment"],
               "edges": [["user", "frontend"], ["frontend", "cart"], ["frontend", "payment"],
                         ["cart", "shop"]]}, f)
print("loaded")
