#!/usr/bin/env python3
"""promql_compare.py: the data and the comparer of promql_matches_prometheus.sh
(standard library only).

  gen BASE OUT.json     the test data as samples.py's remote-write JSON: about 50 series,
                        2 h of samples every ~15 s from BASE (Unix seconds), sorted labels.
  compare VIGIL PROM BASE QUERIES
                        runs every query of the QUERIES file against both servers and
                        prints one line per comparison: "PASS\t<what>" or
                        "FAIL\t<what>\t<why>", then "SUMMARY\t<queries>\t
                        <comparisons>\t<comparisons where both answers held no series>".

Why the data looks like it does: Prometheus 2.42 closes range windows on both ends
([t-r, t]) and Prometheus 3, which Vigil follows, leaves them open on the left
((t-r, t]); the same holds for the lookback window. Every sample timestamp therefore
has a millisecond part that is neither 0 nor 500, while every evaluation time, range,
offset, @ time and subquery step is a whole or half second: no sample ever sits exactly
on a window boundary, and both semantics select the same samples. Intervals jitter by up
to +-400 ms so rate() extrapolation sees irregular spacing.

QUERIES file: one query per line, "KIND<TAB>EXPR", '#' comments. KIND is a set of
letters: i = instant query at each instant time, r = range query, o = the order of the
result matters (sort, sort_desc). "{T}" in EXPR becomes an @ time (BASE + 3600.5).
Instant queries run at BASE+7000.5 and BASE+4700.5; range queries from BASE+3700.5 to
BASE+7100.5 every 60 s. No window of any query reaches back to the first samples (the
longest, increase(...[1h]), starts at BASE+100.5): where a counter's series begins
inside a rate window, Prometheus 3 and 2.42 extrapolate differently (see
promql_queries.txt).

Values compare equal within a relative 1e-9 (Prometheus 3 uses Kahan summation in sum,
avg, stddev, the *_over_time family and regressions, 2.42 plain sums: the last bits
differ); NaN equals NaN. Both servers must agree on success or failure; two failures
agree when their errorType does.
"""
import json
import math
import random
import sys
import urllib.error
import urllib.parse
import urllib.request

STEP_MS = 15000
NPOINTS = 480  # 2 h


def sample_time(base_ms, i, k, rng):
    """Timestamp of sample i of series k: ~15 s apart, jittered, never on .000 or .500."""
    t = base_ms + i * STEP_MS + 1000 + 137 * k % 9000 + rng.randint(-400, 400)
    while t % 500 == 0:
        t += 1
    return t


def gen(base):
    rng = random.Random(42)
    base_ms = base * 1000
    out = []
    k = 0

    def add(labels, values, stop=NPOINTS):
        nonlocal k
        ls = sorted(labels.items())
        samples = [[v, sample_time(base_ms, i, k, rng)] for i, v in enumerate(values[:stop])]
        out.append({"labels": [[a, b] for a, b in ls], "samples": samples})
        k += 1

    # Counters with one reset (instance b, GET, 200 at point 250).
    for inst in ("a:80", "b:80"):
        for method in ("GET", "POST"):
            for code in ("200", "500"):
                v, vals = 0.0, []
                for i in range(NPOINTS):
                    v += rng.randint(0, 20) if code == "200" else rng.randint(0, 3)
                    if inst == "b:80" and method == "GET" and code == "200" and i == 250:
                        v = 3.0
                    vals.append(v)
                add({"__name__": "http_requests_total", "job": "api", "instance": inst,
                     "method": method, "code": code}, vals)
    # Gauges.
    for n, inst in enumerate(("a:9100", "b:9100", "c:9100")):
        vals = [1e9 + 2e8 * math.sin(i / 40 + n) + rng.randint(0, 1000) * 1000
                for i in range(NPOINTS)]
        add({"__name__": "node_memory_bytes", "job": "node", "instance": inst}, vals)
        for sensor in ("cpu", "gpu"):
            vals = [round(rng.uniform(-5, 80), 2) for _ in range(NPOINTS)]
            add({"__name__": "temperature_celsius", "job": "node", "instance": inst,
                 "sensor": sensor}, vals)
    # A classic histogram per API instance.
    bounds = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
    for inst in ("a:80", "b:80"):
        counts = [0.0] * len(bounds)
        total = 0.0
        series = {b: [] for b in bounds}
        sums, cnts = [], []
        for i in range(NPOINTS):
            for j in range(len(bounds)):
                counts[j] += rng.randint(0, 5)
            cum = 0.0
            for j, b in enumerate(bounds):
                cum += counts[j]
                series[b].append(cum)
            total += rng.uniform(0, 10)
            sums.append(round(total, 3))
            cnts.append(cum)
        for b in bounds:
            add({"__name__": "request_duration_seconds_bucket", "job": "api", "instance": inst,
                 "le": b}, series[b])
        add({"__name__": "request_duration_seconds_sum", "job": "api", "instance": inst}, sums)
        add({"__name__": "request_duration_seconds_count", "job": "api", "instance": inst}, cnts)
    # up, with an outage of b:80.
    for job, inst in (("api", "a:80"), ("api", "b:80"), ("node", "a:9100"), ("node", "b:9100"),
                      ("node", "c:9100")):
        vals = [0.0 if inst == "b:80" and 200 <= i < 260 else 1.0 for i in range(NPOINTS)]
        add({"__name__": "up", "job": job, "instance": inst}, vals)
    # A series that stops after 300 points (75 min): absent at the later instant.
    add({"__name__": "batch_last_success_timestamp_seconds", "job": "batch"},
        [float(base + 15 * i) for i in range(NPOINTS)], stop=300)
    # Integer gauges with label values for regex and label_replace tests.
    for q in ("a-high", "b-low", "c-mid"):
        add({"__name__": "queue_length", "job": "worker", "queue": q},
            [float(rng.randint(0, 50)) for _ in range(NPOINTS)])
    for inst in ("a:80", "b:80"):
        add({"__name__": "build_info", "job": "api", "instance": inst,
             "version": "1.2.3" if inst == "a:80" else "1.3.0"}, [1.0] * NPOINTS)
    return out


def query(url, path, params):
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url + path, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        try:
            return json.load(e)
        except ValueError:
            return {"status": "error", "errorType": "http_%d" % e.code, "error": ""}
    except (urllib.error.URLError, OSError, ValueError) as e:
        return {"status": "error", "errorType": "transport", "error": str(e)}


def fval(s):
    return float(s)  # handles "NaN", "+Inf", "-Inf"


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def key(metric):
    return json.dumps(metric, sort_keys=True)


def compare_data(v, p, ordered):
    """None when the two data objects agree, else a reason."""
    if v["resultType"] != p["resultType"]:
        return "resultType %s vs %s" % (v["resultType"], p["resultType"])
    t = v["resultType"]
    if t in ("scalar", "string"):
        vv, pv = v["result"], p["result"]
        if vv[0] != pv[0]:
            return "time %s vs %s" % (vv[0], pv[0])
        if t == "string":
            return None if vv[1] == pv[1] else "%r vs %r" % (vv[1], pv[1])
        return None if close(fval(vv[1]), fval(pv[1])) else "%s vs %s" % (vv[1], pv[1])
    vr, pr = v["result"], p["result"]
    if ordered and [key(s["metric"]) for s in vr] != [key(s["metric"]) for s in pr]:
        return "order differs: %s vs %s" % ([s["metric"] for s in vr][:4], [s["metric"] for s in pr][:4])
    vm = {key(s["metric"]): s for s in vr}
    pm = {key(s["metric"]): s for s in pr}
    if len(vm) != len(vr):
        return "vigil answered duplicate series"
    if set(vm) != set(pm):
        only_v = sorted(set(vm) - set(pm))[:3]
        only_p = sorted(set(pm) - set(vm))[:3]
        return "series differ: only vigil %s, only prometheus %s (%d vs %d)" % (
            only_v, only_p, len(vm), len(pm))
    for k in sorted(vm):
        if t == "vector":
            a, b = vm[k]["value"], pm[k]["value"]
            if a[0] != b[0] or not close(fval(a[1]), fval(b[1])):
                return "%s: %s vs %s" % (k, a, b)
        else:
            a, b = vm[k]["values"], pm[k]["values"]
            if len(a) != len(b):
                ta, tb = {x[0] for x in a}, {x[0] for x in b}
                return "%s: %d vs %d points (only vigil at %s, only prometheus at %s)" % (
                    k, len(a), len(b), sorted(ta - tb)[:3], sorted(tb - ta)[:3])
            for x, y in zip(a, b):
                if x[0] != y[0] or not close(fval(x[1]), fval(y[1])):
                    return "%s: %s vs %s" % (k, x, y)
    return None


def empty(a):
    """Whether an answer is a success without any series (so it proves little)."""
    d = a.get("data") or {}
    return a.get("status") == "success" and d.get("resultType") in ("vector", "matrix") \
        and not d.get("result")


def compare_answers(v, p, ordered):
    vs, ps = v.get("status"), p.get("status")
    if vs != ps:
        return "vigil %s (%s), prometheus %s (%s)" % (
            vs, v.get("error", ""), ps, p.get("error", ""))
    if vs != "success":
        if v.get("errorType") != p.get("errorType"):
            return "errorType %s (%s) vs %s (%s)" % (v.get("errorType"), v.get("error"),
                                                     p.get("errorType"), p.get("error"))
        return None
    return compare_data(v["data"], p["data"], ordered)


def read_queries(path, base):
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            kind, _, expr = line.partition("\t")
            if not expr:
                raise SystemExit("%s:%d: expected KIND<TAB>EXPR" % (path, n))
            out.append((kind.strip(), expr.replace("{T}", "%.1f" % (base + 3600.5))))
    return out


def compare(vigil, prom, base, path):
    queries = read_queries(path, base)
    instants = ["%.1f" % (base + 7000.5), "%.1f" % (base + 4700.5)]
    rng = {"start": "%.1f" % (base + 3700.5), "end": "%.1f" % (base + 7100.5), "step": "60"}
    n = nempty = 0
    for kind, expr in queries:
        ordered = "o" in kind
        runs = []
        if "i" in kind:
            runs += [("instant@" + t, "/api/v1/query", {"query": expr, "time": t})
                     for t in instants]
        if "r" in kind:
            runs.append(("range", "/api/v1/query_range", dict(rng, query=expr)))
        for what, path_, params in runs:
            n += 1
            va, pa = query(vigil, path_, params), query(prom, path_, params)
            why = compare_answers(va, pa, ordered)
            label = "%s %s" % (what, expr)
            if why is None and empty(va):
                nempty += 1
                print("PASS\t%s (both empty)" % label)
            elif why is None:
                print("PASS\t%s" % label)
            else:
                print("FAIL\t%s\t%s" % (label, why[:600]))
    print("SUMMARY\t%d\t%d\t%d" % (len(queries), n, nempty))


def main(argv):
    if len(argv) >= 4 and argv[1] == "gen":
        with open(argv[3], "w", encoding="utf-8") as f:
            json.dump(gen(int(argv[2])), f)
        return 0
    if len(argv) >= 6 and argv[1] == "compare":
        compare(argv[2], argv[3], int(argv[4]), argv[5])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
