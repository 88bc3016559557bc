/* Tests server/ingest/sampling.c and tail_sampling.c (one file: the module and its two
 * samplers are used together). Head sampling: the ratio rule's statistics over 100k
 * random trace ids, consistency (the same id, two instances, larger ratios), the token
 * bucket and its per-trace memory, the LRU. Tail sampling with an injected clock: every
 * policy type, and/or composition, the decision wait, early decisions under the trace and
 * byte bounds, late spans following the decision, the shutdown flush, allocation
 * failure. Config errors name file:line. End to end through POST /v1/traces (OTLP JSON):
 * a dropped trace is absent from the span store and a kept one present, with metrics. */
#include "../fixture.h"

#include "../../../../server/config_node.h"
#include "../../../../server/ingest/otlp_traces.h"
#include "../../../../server/ingest/sampling.h"
#include "../../../../server/ingest/tail_sampling.h"

#include <math.h>

#define NS 1000000000LL
#define MS 1000000LL

/* ---- helpers ---- */

static uint64_t rng = 0x1234567887654321ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void random_id(uint8_t id[SPAN_TRACE_ID_LEN])
{
    uint64_t a = next_rand(), b = next_rand();
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
}

/* A trace id whose every byte is b, and a span id from a number. */
static void id_of(uint8_t id[SPAN_TRACE_ID_LEN], unsigned b)
{
    memset(id, 0, SPAN_TRACE_ID_LEN);
    id[0] = (uint8_t)(b >> 8);
    id[1] = (uint8_t)b;
    id[15] = 1;
}

static struct span_attr attrs_pool[64];
static size_t nattrs_pool;

/* A valid span of trace tid: span number sid (parent psid, 0 = root), status, start
 * and duration in ms, service. */
static struct span mk(unsigned tid, unsigned sid, unsigned psid, enum span_status st,
                      int64_t start_ms, int64_t dur_ms, const char *svc)
{
    struct span s;
    memset(&s, 0, sizeof s);
    id_of(s.trace_id, tid);
    s.span_id[0] = (uint8_t)(sid >> 8);
    s.span_id[1] = (uint8_t)sid;
    s.span_id[7] = 1;
    if (psid) {
        s.parent_span_id[0] = (uint8_t)(psid >> 8);
        s.parent_span_id[1] = (uint8_t)psid;
        s.parent_span_id[7] = 1;
    }
    s.kind = SPAN_KIND_SERVER;
    s.status = st;
    s.start_ns = 1700000000 * NS + start_ms * MS;
    s.end_ns = s.start_ns + dur_ms * MS;
    s.name = VG_STR("op");
    s.service = vg_str_c(svc);
    return s;
}

/* s with one span attribute a (kept in a pool that outlives the test's spans). */
static struct span with_attr(struct span s, struct span_attr a)
{
    struct span_attr *p = &attrs_pool[nattrs_pool++ % 64];
    *p = a;
    s.attrs = p;
    s.nattrs = 1;
    return s;
}

#define with_str(sp, k, val) \
    with_attr(sp, (struct span_attr){ .key = VG_STR(k), .type = SPAN_VAL_STRING, .v.s = vg_str_c(val) })
#define with_int(sp, k, val) \
    with_attr(sp, (struct span_attr){ .key = VG_STR(k), .type = SPAN_VAL_INT, .v.i = (val) })
#define with_double(sp, k, val) \
    with_attr(sp, (struct span_attr){ .key = VG_STR(k), .type = SPAN_VAL_DOUBLE, .v.d = (val) })

/* What the sink received: trace numbers (id_of) of the spans written, in order. */
static struct {
    unsigned tids[8192];
    size_t n, calls;
    int rc;
} sunk;

static int sink_write(void *ctx, const struct span *spans, size_t n)
{
    (void)ctx;
    sunk.calls++;
    for (size_t i = 0; i < n && sunk.n < 8192; i++)
        sunk.tids[sunk.n++] = (unsigned)spans[i].trace_id[0] << 8 | spans[i].trace_id[1];
    return sunk.rc;
}

static size_t sunk_count(unsigned tid)
{
    size_t c = 0;
    for (size_t i = 0; i < sunk.n; i++)
        c += sunk.tids[i] == tid;
    return c;
}

static struct config *cfg;
static struct metrics *mx;
static struct tail_sampling *ts;

static void setup(void)
{
    memset(&sunk, 0, sizeof sunk);
    cfg = NULL;
    mx = metrics_new();
    ts = NULL;
    cr_assert_not_null(mx);
}

static void teardown(void)
{
    tail_sampling_free(ts);
    config_free(cfg);
    metrics_free(mx);
    vg_alloc_fail_after(0);
}

TestSuite(sampling, .init = setup, .fini = teardown, .timeout = 60);

/* Loads yaml as test.yml; NULL with err on failure. */
static struct config *load(const char *yaml, struct vg_err *err)
{
    return config_load_buf("test.yml", yaml, strlen(yaml), err);
}

/* A tail sampler from "tail_sampling:\n" + body. */
static struct tail_sampling *tail_of(const char *body)
{
    char y[4096];
    snprintf(y, sizeof y, "tail_sampling:\n%s", body);
    struct vg_err err = {0};
    cfg = load(y, &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    const struct config_node *b = config_block(cfg, "tail_sampling");
    cr_assert_not_null(b);
    cr_assert_eq(tail_sampling_check(b, &err), 0, "%s", err.msg);
    struct tail_sampling_sink sink = { sink_write, NULL };
    ts = tail_sampling_new(b, mx, &sink, &err);
    cr_assert_not_null(ts, "%s", err.msg);
    return ts;
}

/* Adds spans at now (seconds); asserts success, returns the spans handed back. */
static size_t add_at(const struct span *spans, size_t n, double now_s)
{
    struct span pass[64];
    size_t np = 99;
    struct tail_sampling_add_result r;
    struct vg_err err = {0};
    cr_assert_leq(n, 64);
    cr_assert_eq(tail_sampling_add(ts, spans, n, (int64_t)(now_s * NS), pass, &np, &r, &err),
                 0, "%s", err.msg);
    return np;
}

static void add1(struct span s, double now_s)
{
    add_at(&s, 1, now_s);
}

/* The value of the /metrics sample line starting with prefix, or -1 (fixture_metric). */
static double metric(struct metrics *m, const char *prefix)
{
    return fixture_metric(m, prefix);
}

/* ---- the ratio rule ---- */

Test(sampling, ratio_threshold_and_randomness_follow_the_56_bit_rule)
{
    cr_assert_eq(sampling_ratio_threshold(1), 0);
    cr_assert_eq(sampling_ratio_threshold(0), 1ULL << 56);
    cr_assert_eq(sampling_ratio_threshold(0.5), 1ULL << 55);
    cr_assert_eq(sampling_ratio_threshold(0.25), 3ULL << 54);
    cr_assert_eq(sampling_ratio_threshold(NAN), 1ULL << 56);
    uint8_t id[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                      0x80, 0, 0, 0, 0, 0, 1};
    /* bytes 0..8 do not count; bytes 9..15 big-endian */
    cr_assert_eq(sampling_randomness(id), (0x80ULL << 48) | 1);
}

Test(sampling, ratio_keeps_a_quarter_of_100k_random_traces)
{
    struct sampling_head_opts o = { .ratio = 0.25, .cache_size = 16 };
    struct vg_err err = {0};
    struct sampling_head *h = sampling_head_new(&o, NULL, &err);
    cr_assert_not_null(h, "%s", err.msg);
    size_t kept = 0, n = 100000;
    for (size_t i = 0; i < n; i++) {
        uint8_t id[16];
        random_id(id);
        kept += sampling_head_keep(h, id, 0);
    }
    /* binomial sd = sqrt(n p (1-p)) = 137; 4.4 sd */
    cr_assert(fabs((double)kept / (double)n - 0.25) < 0.006, "kept %zu of %zu", kept, n);
    sampling_head_free(h);
}

Test(sampling, ratio_decisions_are_consistent_across_instances_and_ratios)
{
    struct sampling_head_opts o = { .ratio = 0.3, .cache_size = 8 };
    struct sampling_head_opts big = { .ratio = 0.6, .cache_size = 8 };
    struct vg_err err = {0};
    struct sampling_head *a = sampling_head_new(&o, NULL, &err);
    struct sampling_head *b = sampling_head_new(&o, NULL, &err);
    struct sampling_head *c = sampling_head_new(&big, NULL, &err);
    cr_assert(a && b && c);
    for (int i = 0; i < 20000; i++) {
        uint8_t id[16];
        random_id(id);
        bool ka = sampling_head_keep(a, id, 0);
        cr_assert_eq(ka, sampling_head_keep(b, id, 0), "two instances disagree");
        /* asked again long after (the tiny cache forgot it): still the same */
        cr_assert_eq(ka, sampling_head_keep(a, id, 1000 * NS));
        if (ka)
            cr_assert(sampling_head_keep(c, id, 0), "kept at 0.3 but not at 0.6");
    }
    sampling_head_free(a);
    sampling_head_free(b);
    sampling_head_free(c);
}

Test(sampling, head_options_are_checked)
{
    struct vg_err err = {0};
    struct sampling_head_opts o = { .ratio = 1.5, .cache_size = 8 };
    cr_assert_null(sampling_head_new(&o, NULL, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    o = (struct sampling_head_opts){ .ratio = 0.5, .cache_size = 0 };
    cr_assert_null(sampling_head_new(&o, NULL, &err));
    o.cache_size = 8;
    vg_alloc_fail_after(1);
    cr_assert_null(sampling_head_new(&o, NULL, &err));
    cr_assert_eq(err.code, VG_ENOMEM);
    vg_alloc_fail_after(0);
}

/* ---- rate limiting ---- */

Test(sampling, token_bucket_limits_new_traces_and_remembers_each_decision)
{
    struct sampling_head_opts o = { .ratio = 1, .max_traces_per_second = 10, .cache_size = 1000 };
    struct vg_err err = {0};
    struct sampling_head *h = sampling_head_new(&o, mx, &err);
    cr_assert_not_null(h);
    uint8_t ids[40][16];
    for (int i = 0; i < 40; i++)
        random_id(ids[i]);
    /* a full bucket holds one second: 10 traces at t=0, then nothing */
    for (int i = 0; i < 10; i++)
        cr_assert(sampling_head_keep(h, ids[i], 0), "trace %d", i);
    cr_assert_not(sampling_head_keep(h, ids[10], 0));
    cr_assert_not(sampling_head_keep(h, ids[11], 100 * MS - 1));
    /* by 600 ms six tokens came back (the two refused traces took none) */
    int kept = 0;
    for (int i = 12; i < 20; i++)
        kept += sampling_head_keep(h, ids[i], 600 * MS);
    cr_assert_eq(kept, 6, "kept %d", kept);
    /* later spans of a trace follow its decision, whatever the bucket holds now */
    cr_assert_not(sampling_head_keep(h, ids[10], 5 * NS));
    cr_assert(sampling_head_keep(h, ids[0], 5 * NS));
    /* a long pause refills at most one second's worth */
    kept = 0;
    for (int i = 20; i < 40; i++)
        kept += sampling_head_keep(h, ids[i], 100 * NS);
    cr_assert_eq(kept, 10);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"head\",policy="
                            "\"rate_limiting\",decision=\"keep\"} "), 26);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"head\",policy="
                            "\"rate_limiting\",decision=\"drop\"} "), 14);
    sampling_head_free(h);
}

Test(sampling, rate_below_one_per_second_still_keeps_one)
{
    struct sampling_head_opts o = { .ratio = 1, .max_traces_per_second = 0.5, .cache_size = 8 };
    struct sampling_head *h = sampling_head_new(&o, NULL, NULL);
    uint8_t a[16], b[16], c[16];
    random_id(a);
    random_id(b);
    random_id(c);
    cr_assert(sampling_head_keep(h, a, 0));
    cr_assert_not(sampling_head_keep(h, b, NS));
    cr_assert(sampling_head_keep(h, c, 2 * NS));
    sampling_head_free(h);
}

Test(sampling, lru_evicts_the_least_recently_used)
{
    struct sampling_cache *c = sampling_cache_new(2);
    uint8_t a[16], b[16], d[16];
    id_of(a, 1);
    id_of(b, 2);
    id_of(d, 3);
    cr_assert_eq(sampling_cache_get(c, a), -1);
    sampling_cache_put(c, a, true);
    sampling_cache_put(c, b, false);
    cr_assert_eq(sampling_cache_get(c, a), 1); /* a is now the most recent */
    sampling_cache_put(c, d, true);            /* evicts b */
    cr_assert_eq(sampling_cache_get(c, b), -1);
    cr_assert_eq(sampling_cache_get(c, a), 1);
    cr_assert_eq(sampling_cache_get(c, d), 1);
    sampling_cache_put(c, d, false); /* update in place */
    cr_assert_eq(sampling_cache_get(c, d), 0);
    cr_assert_eq(sampling_cache_len(c), 2);
    /* many more ids than entries: still consistent */
    for (unsigned i = 10; i < 1000; i++) {
        uint8_t x[16];
        id_of(x, i);
        sampling_cache_put(c, x, i & 1);
        cr_assert_eq(sampling_cache_get(c, x), (int)(i & 1));
    }
    cr_assert_eq(sampling_cache_len(c), 2);
    sampling_cache_free(c);
    cr_assert_null(sampling_cache_new(0));
}

Test(sampling, head_filter_keeps_whole_traces_and_passes_invalid_spans)
{
    struct sampling_head_opts o = { .ratio = 0.5, .cache_size = 64 };
    struct sampling_head *h = sampling_head_new(&o, mx, NULL);
    struct span in[6];
    /* trace 0x0100..: byte 9 is 0 -> dropped at 0.5; trace with byte 9 = 0xf0 kept */
    in[0] = mk(1, 1, 0, SPAN_STATUS_OK, 0, 10, "a");
    in[1] = mk(1, 2, 1, SPAN_STATUS_OK, 0, 5, "a");
    in[2] = mk(2, 1, 0, SPAN_STATUS_OK, 0, 10, "a");
    in[2].trace_id[9] = 0xf0;
    in[3] = in[2];
    in[3].span_id[7] = 2;
    in[4] = mk(3, 1, 0, SPAN_STATUS_OK, 0, 10, "a");
    in[4].end_ns = in[4].start_ns - 1; /* invalid: the store must see it to refuse it */
    in[5] = mk(1, 3, 1, SPAN_STATUS_OK, 0, 5, "a");
    size_t k = sampling_head_filter(h, in, 6, 0, in);
    cr_assert_eq(k, 3);
    cr_assert_eq(in[0].trace_id[9], 0xf0);
    cr_assert_eq(in[1].trace_id[9], 0xf0);
    cr_assert_eq(in[2].end_ns, in[2].start_ns - 1);
    /* decisions counted once per trace, spans per span */
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"head\",policy="
                            "\"probabilistic\",decision=\"drop\"} "), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"head\",policy="
                            "\"probabilistic\",decision=\"keep\"} "), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_spans_dropped_total{sampler=\"head\"} "), 3);
    sampling_head_free(h);
}

/* ---- tail policies ---- */

#define WAIT "  decision_wait: 10s\n"

Test(sampling, status_code_policy_keeps_traces_with_an_error)
{
    tail_of(WAIT "  policies:\n"
                 "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n");
    struct span s[] = {
        mk(1, 1, 0, SPAN_STATUS_OK, 0, 100, "a"), mk(1, 2, 1, SPAN_STATUS_ERROR, 10, 5, "b"),
        mk(2, 1, 0, SPAN_STATUS_OK, 0, 100, "a"), mk(2, 2, 1, SPAN_STATUS_UNSET, 10, 5, "b"),
    };
    cr_assert_eq(add_at(s, 4, 0), 0);
    cr_assert_eq(tail_sampling_tick(ts, 10 * NS), 2);
    cr_assert_eq(sunk_count(1), 2);
    cr_assert_eq(sunk_count(2), 0);
    cr_assert_eq(sunk.calls, 1);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"tail\",policy=\"errors\","
                            "decision=\"keep\"} "), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"tail\",policy=\"none\","
                            "decision=\"drop\"} "), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_spans_dropped_total{sampler=\"tail\"} "), 2);
}

Test(sampling, latency_policy_uses_the_whole_trace_duration)
{
    tail_of(WAIT "  policies:\n"
                 "    - {name: slow, type: latency, latency: {threshold_ms: 500, "
                 "upper_threshold_ms: 2000}}\n");
    /* trace 1: root 100 ms, but a child ends 600 ms after the root starts */
    add1(mk(1, 1, 0, SPAN_STATUS_OK, 0, 100, "a"), 0);
    add1(mk(1, 2, 1, SPAN_STATUS_OK, 400, 200, "a"), 0);
    add1(mk(2, 1, 0, SPAN_STATUS_OK, 0, 499, "a"), 0);
    add1(mk(3, 1, 0, SPAN_STATUS_OK, 0, 2001, "a"), 0);
    add1(mk(4, 1, 0, SPAN_STATUS_OK, 0, 2000, "a"), 0);
    tail_sampling_tick(ts, 11 * NS);
    cr_assert_eq(sunk_count(1), 2);
    cr_assert_eq(sunk_count(2), 0);
    cr_assert_eq(sunk_count(3), 0);
    cr_assert_eq(sunk_count(4), 1);
}

Test(sampling, string_attribute_policy_matches_exact_values_and_regexes)
{
    tail_of(WAIT "  policies:\n"
                 "    - name: exact\n"
                 "      type: string_attribute\n"
                 "      string_attribute: {key: tenant, values: [gold, platinum]}\n"
                 "    - name: re\n"
                 "      type: string_attribute\n"
                 "      string_attribute: {key: http.route, values: ['^/api/check(out)?$'],\n"
                 "                         enabled_regex_matching: true}\n");
    add1(with_str(mk(1, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "tenant", "gold"), 0);
    add1(with_str(mk(2, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "tenant", "golden"), 0);
    add1(with_str(mk(3, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "http.route", "/api/checkout"), 0);
    add1(with_str(mk(4, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "http.route", "/api/checkouts"), 0);
    add1(with_int(mk(5, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "tenant", 7), 0);
    /* a resource attribute counts too */
    struct span r = mk(6, 1, 0, SPAN_STATUS_OK, 0, 1, "a");
    struct span_attr ra = { .key = VG_STR("tenant"), .type = SPAN_VAL_STRING,
                            .v.s = VG_STR("platinum") };
    r.resource_attrs = &ra;
    r.nresource_attrs = 1;
    add1(r, 0);
    tail_sampling_tick(ts, 10 * NS);
    cr_assert_eq(sunk_count(1), 1);
    cr_assert_eq(sunk_count(2), 0);
    cr_assert_eq(sunk_count(3), 1);
    cr_assert_eq(sunk_count(4), 0);
    cr_assert_eq(sunk_count(5), 0);
    cr_assert_eq(sunk_count(6), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"tail\",policy=\"re\","
                            "decision=\"keep\"} "), 1);
}

Test(sampling, numeric_attribute_policy_takes_ints_and_doubles_in_range)
{
    tail_of(WAIT "  policies:\n"
                 "    - {name: n, type: numeric_attribute, numeric_attribute: "
                 "{key: items, min_value: 10, max_value: 20}}\n"
                 "    - {name: big, type: numeric_attribute, numeric_attribute: "
                 "{key: bytes, min_value: 1000}}\n");
    add1(with_int(mk(1, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "items", 10), 0);
    add1(with_int(mk(2, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "items", 21), 0);
    add1(with_double(mk(3, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "items", 19.5), 0);
    add1(with_str(mk(4, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "items", "15"), 0);
    add1(with_int(mk(5, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "bytes", INT64_MAX), 0);
    add1(with_int(mk(6, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "bytes", 999), 0);
    tail_sampling_tick(ts, 10 * NS);
    cr_assert_eq(sunk_count(1), 1);
    cr_assert_eq(sunk_count(2), 0);
    cr_assert_eq(sunk_count(3), 1);
    cr_assert_eq(sunk_count(4), 0);
    cr_assert_eq(sunk_count(5), 1);
    cr_assert_eq(sunk_count(6), 0);
}

Test(sampling, probabilistic_policy_keeps_its_share_consistently)
{
    tail_of("  decision_wait: 1s\n  num_traces: 100000\n  policies:\n"
            "    - {name: p, type: probabilistic, probabilistic: {sampling_percentage: 25}}\n");
    const int n = 4000;
    for (int i = 0; i < n; i++)
        add1(mk((unsigned)i + 1, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), 0);
    tail_sampling_tick(ts, 2 * NS);
    /* sd = sqrt(4000 * .25 * .75) = 27: within 4 sd */
    cr_assert(fabs((double)sunk.n - n * 0.25) < 110, "kept %zu of %d", sunk.n, n);
    /* a second sampler decides the same */
    size_t first = sunk.n;
    unsigned kept[4000];
    memcpy(kept, sunk.tids, first * sizeof *kept);
    struct tail_sampling *one = ts;
    ts = NULL;
    struct config *c1 = cfg;
    cfg = NULL;
    memset(&sunk, 0, sizeof sunk);
    tail_of("  decision_wait: 1s\n  num_traces: 100000\n  policies:\n"
            "    - {name: p, type: probabilistic, probabilistic: {sampling_percentage: 25}}\n");
    for (int i = 0; i < n; i++)
        add1(mk((unsigned)i + 1, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), 5);
    tail_sampling_tick(ts, 7 * NS);
    cr_assert_eq(sunk.n, first);
    cr_assert_arr_eq(sunk.tids, kept, first * sizeof *kept);
    tail_sampling_free(one);
    config_free(c1);
}

Test(sampling, rate_limiting_policy_counts_spans_per_second)
{
    tail_of("  decision_wait: 1s\n  policies:\n"
            "    - {name: r, type: rate_limiting, rate_limiting: {spans_per_second: 10}}\n");
    /* three traces of four spans each: two fit in the 10 spans of one second */
    for (unsigned t = 1; t <= 3; t++)
        for (unsigned s = 1; s <= 4; s++)
            add1(mk(t, s, s > 1, SPAN_STATUS_OK, 0, 1, "a"), 0);
    tail_sampling_tick(ts, 1 * NS);
    cr_assert_eq(sunk.n, 8);
    cr_assert_eq(sunk_count(3), 0);
    /* the next second has its own budget */
    for (unsigned s = 1; s <= 4; s++)
        add1(mk(4, s, s > 1, SPAN_STATUS_OK, 0, 1, "a"), 1);
    tail_sampling_tick(ts, 2 * NS);
    cr_assert_eq(sunk_count(4), 4);
}

Test(sampling, service_rate_limiting_has_a_bucket_per_root_service)
{
    tail_of("  decision_wait: 1s\n  policies:\n"
            "    - {name: svc, type: service_rate_limiting, "
            "service_rate_limiting: {traces_per_second: 2}}\n");
    for (unsigned t = 1; t <= 3; t++) {
        add1(mk(t, 1, 0, SPAN_STATUS_OK, 0, 10, "checkout"), 0);
        add1(mk(t, 2, 1, SPAN_STATUS_OK, 0, 5, "db"), 0); /* not the root: not its service */
    }
    add1(mk(4, 1, 0, SPAN_STATUS_OK, 0, 10, "search"), 0);
    tail_sampling_tick(ts, 1 * NS);
    cr_assert_eq(sunk_count(1) + sunk_count(2) + sunk_count(3), 4); /* two traces */
    cr_assert_eq(sunk_count(4), 1);
    /* one second later: two more tokens for checkout */
    for (unsigned t = 5; t <= 7; t++)
        add1(mk(t, 1, 0, SPAN_STATUS_OK, 0, 10, "checkout"), 1);
    tail_sampling_tick(ts, 2 * NS);
    cr_assert_eq(sunk_count(5) + sunk_count(6) + sunk_count(7), 2);
}

Test(sampling, and_or_and_always_compose)
{
    tail_of(WAIT "  policies:\n"
                 "    - name: checkout-errors\n"
                 "      type: and\n"
                 "      and:\n"
                 "        and_sub_policy:\n"
                 "          - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}\n"
                 "          - {name: c, type: string_attribute,\n"
                 "             string_attribute: {key: route, values: [checkout]}}\n"
                 "    - name: slow-or-vip\n"
                 "      type: or\n"
                 "      or:\n"
                 "        or_sub_policy:\n"
                 "          - {name: s, type: latency, latency: {threshold_ms: 1000}}\n"
                 "          - name: vip\n"
                 "            type: and\n"
                 "            and: {and_sub_policy: [{name: a, type: always_sample},\n"
                 "                  {name: v, type: string_attribute,\n"
                 "                   string_attribute: {key: tier, values: [vip]}}]}\n");
    add1(with_str(mk(1, 1, 0, SPAN_STATUS_ERROR, 0, 1, "a"), "route", "checkout"), 0);
    add1(with_str(mk(2, 1, 0, SPAN_STATUS_ERROR, 0, 1, "a"), "route", "search"), 0);
    add1(with_str(mk(3, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "route", "checkout"), 0);
    add1(mk(4, 1, 0, SPAN_STATUS_OK, 0, 1500, "a"), 0);
    add1(with_str(mk(5, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "tier", "vip"), 0);
    add1(with_str(mk(6, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "tier", "free"), 0);
    tail_sampling_tick(ts, 10 * NS);
    cr_assert_eq(sunk_count(1), 1);
    cr_assert_eq(sunk_count(2), 0);
    cr_assert_eq(sunk_count(3), 0);
    cr_assert_eq(sunk_count(4), 1);
    cr_assert_eq(sunk_count(5), 1);
    cr_assert_eq(sunk_count(6), 0);
    /* the first top-level policy that keeps a trace is the one counted */
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"tail\",policy="
                            "\"checkout-errors\",decision=\"keep\"} "), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"tail\",policy="
                            "\"slow-or-vip\",decision=\"keep\"} "), 2);
    cr_assert_eq(metric(mx, "vigil_sampling_decisions_total{sampler=\"tail\",policy="
                            "\"none\",decision=\"drop\"} "), 3);
}

/* ---- the buffer ---- */

#define KEEP_ALL "  policies:\n    - {name: all, type: always_sample}\n"

Test(sampling, decision_waits_from_the_first_span_of_a_trace)
{
    tail_of("  decision_wait: 10s\n" KEEP_ALL);
    add1(mk(1, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), 100);
    add1(mk(2, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), 105);
    add1(mk(1, 2, 1, SPAN_STATUS_OK, 0, 1, "a"), 109); /* joins trace 1 */
    cr_assert_eq(tail_sampling_tick(ts, (int64_t)(109.999 * NS)), 0);
    cr_assert_eq(sunk.n, 0);
    struct tail_sampling_stats st;
    tail_sampling_get_stats(ts, &st);
    cr_assert_eq(st.traces, 2);
    cr_assert_gt(st.bytes, 0);
    cr_assert_eq(metric(mx, "vigil_sampling_tail_traces "), 2);
    cr_assert_eq(tail_sampling_tick(ts, 110 * NS), 1);
    cr_assert_eq(sunk_count(1), 2);
    cr_assert_eq(sunk_count(2), 0);
    cr_assert_eq(tail_sampling_tick(ts, 115 * NS), 1);
    cr_assert_eq(sunk_count(2), 1);
    tail_sampling_get_stats(ts, &st);
    cr_assert_eq(st.traces, 0);
    cr_assert_eq(st.bytes, 0);
    cr_assert_eq(st.kept, 2);
    cr_assert_eq(metric(mx, "vigil_sampling_tail_bytes "), 0);
}

Test(sampling, full_buffer_decides_the_oldest_early)
{
    tail_of("  decision_wait: 10s\n  num_traces: 3\n"
            "  policies:\n"
            "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n");
    for (unsigned t = 1; t <= 5; t++)
        add1(mk(t, 1, 0, t == 1 ? SPAN_STATUS_ERROR : SPAN_STATUS_OK, 0, 1, "a"), t);
    struct tail_sampling_stats st;
    tail_sampling_get_stats(ts, &st);
    cr_assert_eq(st.traces, 3);
    cr_assert_eq(st.early, 2);
    /* traces 1 and 2 were decided by policy with what they had: 1 kept, 2 dropped */
    cr_assert_eq(sunk_count(1), 1);
    cr_assert_eq(sunk.n, 1);
    cr_assert_eq(metric(mx, "vigil_sampling_early_decisions_total "), 2);
}

Test(sampling, byte_budget_decides_early_too)
{
    tail_of("  decision_wait: 10s\n  max_bytes: 4KiB\n" KEEP_ALL);
    char big[1500];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (unsigned t = 1; t <= 6; t++)
        add1(with_str(mk(t, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "blob", big), 0);
    struct tail_sampling_stats st;
    tail_sampling_get_stats(ts, &st);
    cr_assert_leq(st.bytes, 4096);
    cr_assert_gt(st.early, 0);
    cr_assert_eq(sunk.n, st.early); /* kept: written at once */
    cr_assert_eq(sunk.tids[0], 1);  /* oldest first */
    /* one trace larger than the whole budget is decided at once */
    char huge[5000];
    memset(huge, 'y', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    add1(with_str(mk(99, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), "blob", huge), 0);
    cr_assert_eq(sunk_count(99), 1);
    tail_sampling_get_stats(ts, &st);
    cr_assert_eq(st.traces, 0);
}

Test(sampling, late_spans_follow_the_decision)
{
    tail_of(WAIT "  policies:\n"
                 "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n");
    add1(mk(1, 1, 0, SPAN_STATUS_ERROR, 0, 1, "a"), 0);
    add1(mk(2, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), 0);
    tail_sampling_tick(ts, 10 * NS);
    cr_assert_eq(sunk.n, 1);
    /* a late OK span of the kept trace comes back to be stored now; the dropped trace's
     * late ERROR span is dropped (the trace is not partly kept) */
    struct span late[3] = { mk(1, 2, 1, SPAN_STATUS_OK, 0, 1, "a"),
                            mk(2, 2, 1, SPAN_STATUS_ERROR, 0, 1, "a"),
                            mk(3, 1, 0, SPAN_STATUS_OK, 0, 1, "a") };
    struct span pass[3];
    size_t np;
    struct tail_sampling_add_result r;
    struct vg_err err = {0};
    cr_assert_eq(tail_sampling_add(ts, late, 3, 11 * NS, pass, &np, &r, &err), 0);
    cr_assert_eq(np, 1);
    cr_assert_eq(pass[0].span_id[1], 2);
    cr_assert_eq(pass[0].trace_id[1], 1);
    cr_assert_eq(r.late_kept, 1);
    cr_assert_eq(r.late_dropped, 1);
    cr_assert_eq(r.buffered, 1);
    cr_assert_eq(metric(mx, "vigil_sampling_late_spans_total{decision=\"keep\"} "), 1);
    cr_assert_eq(metric(mx, "vigil_sampling_late_spans_total{decision=\"drop\"} "), 1);
    /* in place (pass aliasing the input) works too */
    struct span again[2] = { mk(2, 3, 1, SPAN_STATUS_OK, 0, 1, "a"),
                             mk(1, 3, 1, SPAN_STATUS_OK, 0, 1, "a") };
    cr_assert_eq(tail_sampling_add(ts, again, 2, 12 * NS, again, &np, &r, &err), 0);
    cr_assert_eq(np, 1);
    cr_assert_eq(again[0].trace_id[1], 1);
}

Test(sampling, flush_decides_everything_by_policy)
{
    tail_of("  decision_wait: 1h\n  policies:\n"
            "    - {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}\n");
    for (unsigned t = 1; t <= 600; t++) /* more than one chunk */
        add1(mk(t, 1, 0, t % 2 ? SPAN_STATUS_ERROR : SPAN_STATUS_OK, 0, 1, "a"), 0);
    cr_assert_eq(tail_sampling_tick(ts, 60 * NS), 0);
    cr_assert_eq(tail_sampling_flush(ts, 61 * NS), 600);
    cr_assert_eq(sunk.n, 300);
    struct tail_sampling_stats st;
    tail_sampling_get_stats(ts, &st);
    cr_assert_eq(st.traces, 0);
    cr_assert_eq(st.kept, 300);
    cr_assert_eq(st.dropped, 300);
}

Test(sampling, free_flushes_what_is_buffered)
{
    tail_of("  decision_wait: 1h\n" KEEP_ALL);
    add1(mk(7, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), 0);
    add1(mk(7, 2, 1, SPAN_STATUS_OK, 0, 1, "a"), 0);
    cr_assert_eq(tail_sampling_start(ts, NULL), 0); /* the thread does not decide early */
    int64_t t0 = sampling_now_ns();
    tail_sampling_free(ts); /* wakes the thread from its 1 s sleep */
    ts = NULL;
    cr_assert_lt(sampling_now_ns() - t0, NS / 2, "free waited out the tick period");
    cr_assert_eq(sunk_count(7), 2);
}

Test(sampling, thread_decides_expired_traces)
{
    tail_of("  decision_wait: 50ms\n" KEEP_ALL);
    add1(mk(8, 1, 0, SPAN_STATUS_OK, 0, 1, "a"), (double)sampling_now_ns() / NS);
    cr_assert_eq(tail_sampling_start(ts, NULL), 0);
    for (int i = 0; i < 200 && sunk_count(8) == 0; i++) {
        struct timespec d = { 0, 10000000 };
        nanosleep(&d, NULL);
    }
    cr_assert_eq(sunk_count(8), 1);
}

Test(sampling, out_of_memory_while_buffering_is_reported_and_leaks_nothing)
{
    tail_of(WAIT KEEP_ALL);
    struct span pass[4];
    size_t np;
    struct tail_sampling_add_result r;
    int failed = 0;
    size_t buffered = 0;
    for (unsigned k = 1; k < 40; k++) {
        /* fresh traces each round: decided ones would pass straight through */
        struct span s[4] = { mk(k * 4, 1, 0, SPAN_STATUS_OK, 0, 1, "a"),
                             mk(k * 4 + 1, 1, 0, SPAN_STATUS_OK, 0, 1, "a"),
                             mk(k * 4 + 2, 1, 0, SPAN_STATUS_OK, 0, 1, "a"),
                             mk(k * 4 + 2, 2, 1, SPAN_STATUS_OK, 0, 1, "a") };
        struct vg_err err = {0};
        memset(&r, 0, sizeof r);
        vg_alloc_fail_after(k);
        int rc = tail_sampling_add(ts, s, 4, 0, pass, &np, &r, &err);
        vg_alloc_fail_after(0);
        if (rc < 0) {
            failed++;
            cr_assert_eq(rc, VG_ENOMEM);
            cr_assert_eq(err.code, VG_ENOMEM);
            cr_assert_lt(r.buffered, 4);
        } else {
            cr_assert_eq(r.buffered, 4);
        }
        buffered += r.buffered;
        /* what was taken is all there: every buffered span is written */
        size_t before = sunk.n;
        tail_sampling_flush(ts, NS);
        cr_assert_eq(sunk.n - before, r.buffered, "round %u", k);
    }
    cr_assert_gt(failed, 0);
    cr_assert_gt(buffered, 0);
    struct tail_sampling_stats st;
    tail_sampling_get_stats(ts, &st);
    cr_assert_eq(st.traces, 0);
    cr_assert_eq(st.bytes, 0);
}

/* ---- config ---- */

/* Expects loading then checking "tail_sampling:\n" + body to fail with a message holding
 * every string in want (NULL-terminated). */
static void bad_block(const char *body, ...)
{
    char y[2048];
    snprintf(y, sizeof y, "tail_sampling:\n%s", body);
    struct vg_err err = {0};
    struct config *c = load(y, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_lt(vigil_check_config(c, &err), 0, "accepted: %s", body);
    cr_assert_eq(err.code, VG_EINVAL);
    va_list ap;
    va_start(ap, body);
    for (const char *w; (w = va_arg(ap, const char *)) != NULL;)
        cr_assert(strstr(err.msg, w), "\"%s\" not in \"%s\"", w, err.msg);
    va_end(ap);
    struct tail_sampling_sink sink = { sink_write, NULL };
    cr_assert_null(tail_sampling_new(config_block(c, "tail_sampling"), NULL, &sink, &err));
    config_free(c);
}

Test(sampling, config_errors_name_file_and_line)
{
    bad_block("  policies:\n    - {name: x, type: nope}\n", "test.yml:3:",
              "tail_sampling.policies[0].type: unknown type \"nope\"", "status_code", NULL);
    bad_block("  policies:\n    - {type: latency, latency: {threshold_ms: 1}}\n",
              "test.yml:3:", "name: missing", NULL);
    bad_block("  decision_wait: 10s\n  polices: []\n", "test.yml:3:", "unknown key \"polices\"",
              NULL);
    bad_block("  decision_wait: 10s\n", "test.yml:2:", "tail_sampling.policies: missing", NULL);
    bad_block("  policies: []\n", "test.yml:2:", "non-empty list", NULL);
    bad_block("  policies:\n    - name: e\n      type: status_code\n"
              "      status_code: {status_codes: [ERR]}\n",
              "test.yml:5:", "unknown status \"ERR\"", NULL);
    bad_block("  policies:\n    - name: e\n      type: latency\n"
              "      latency: {threshold: 5}\n",
              "test.yml:5:", "policies[0].latency: unknown key \"threshold\"", NULL);
    bad_block("  policies:\n    - name: e\n      type: latency\n",
              "test.yml:3:", "policies[0].latency: missing", NULL);
    bad_block("  policies:\n    - {name: a, type: always_sample}\n"
              "    - {name: a, type: always_sample}\n",
              "test.yml:4:", "name \"a\" is used twice", NULL);
    bad_block("  policies:\n    - name: r\n      type: string_attribute\n"
              "      string_attribute:\n        key: k\n        enabled_regex_matching: true\n"
              "        values: ['(']\n",
              "test.yml:8:", "values[0]: invalid regular expression", NULL);
    bad_block("  policies:\n    - {name: p, type: probabilistic, probabilistic: "
              "{sampling_percentage: 101}}\n",
              "test.yml:3:", "sampling_percentage: expected a number from 0 to 100", NULL);
    bad_block("  max_bytes: 10 parsecs\n  policies:\n    - {name: a, type: always_sample}\n",
              "test.yml:2:", "tail_sampling.max_bytes", NULL);
    bad_block("  max_bytes: 10\n  policies:\n    - {name: a, type: always_sample}\n",
              "test.yml:2:", "out of range", NULL);
    bad_block("  num_traces: 0\n  policies:\n    - {name: a, type: always_sample}\n",
              "test.yml:2:", "num_traces", NULL);
    bad_block("  policies:\n    - {name: n, type: numeric_attribute, numeric_attribute: "
              "{key: k}}\n",
              "test.yml:3:", "min_value, max_value or both", NULL);
    bad_block("  policies:\n    - {name: n, type: rate_limiting, rate_limiting: "
              "{spans_per_second: 0}}\n",
              "test.yml:3:", "spans_per_second", NULL);
    bad_block("  policies:\n    - name: a\n      type: and\n      and: {and_sub_policy: "
              "[{name: b, type: bogus}]}\n",
              "test.yml:5:", "policies[0].and.and_sub_policy[0].type: unknown type", NULL);
    bad_block("  policies:\n    - {name: none, type: always_sample}\n", "test.yml:3:",
              "\"none\" is reserved", NULL);
    /* nesting is bounded */
    char deep[2048] = "  policies:\n    - ";
    for (int i = 0; i < 10; i++)
        strcat(deep, "{name: o, type: or, or: {or_sub_policy: [");
    strcat(deep, "{name: a, type: always_sample}");
    for (int i = 0; i < 10; i++)
        strcat(deep, "]}}");
    strcat(deep, "\n");
    bad_block(deep, "test.yml:3:", "nest deeper than 8", NULL);
}

Test(sampling, flat_keys_are_checked_with_file_and_line)
{
    struct vg_err err = {0};
    cr_assert_null(load("traces:\n  sample_ratio: 1.5\n", &err));
    cr_assert(strstr(err.msg, "test.yml:2:") && strstr(err.msg, "traces.sample_ratio"), "%s",
              err.msg);
    cr_assert_null(load("traces:\n  sample_ratio: half\n", &err));
    cr_assert_null(load("traces:\n  max_traces_per_second: -1\n", &err));
    struct config *c = load("traces:\n  sample_ratio: 0.125\n  max_traces_per_second: 50\n",
                            &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_float_eq(c->traces_sample_ratio, 0.125, 1e-12);
    cr_assert_eq(c->traces_max_traces_per_second, 50);
    struct config *d = config_default();
    cr_assert_float_eq(d->traces_sample_ratio, 1.0, 0);
    cr_assert_eq(d->traces_max_traces_per_second, 0);
    cr_assert_eq(config_set(d, "traces.sample_ratio", "0", &err), 0);
    cr_assert_float_eq(d->traces_sample_ratio, 0.0, 0);
    config_free(c);
    config_free(d);
}

/* ---- end to end through POST /v1/traces ---- */

static struct server_fixture fx;
static struct vg_arena *arena;
static struct http_response resp;

static void e2e_setup(void)
{
    fixture_receiver_open(&fx, FIXTURE_TRACES, &arena, &resp);
}

static void e2e_teardown(void)
{
    if (mod_sampling.free)
        mod_sampling.free(&fx.v);
    if (fx.v.cfg != fx.cfg)
        config_free((struct config *)fx.v.cfg);
    fixture_receiver_close(&fx, arena, &resp);
}

TestSuite(sampling_e2e, .init = e2e_setup, .fini = e2e_teardown, .timeout = 60);

/* Posts one OTLP JSON span (' for ") of trace tid with the given status code. */
static void post_span(const char *tid, const char *sid, int status)
{
    struct vg_str body = fixture_json(
        arena,
        "{'resourceSpans':[{'resource':{'attributes':[{'key':'service.name',"
        "'value':{'stringValue':'shop'}}]},'scopeSpans':[{'spans':[{'traceId':'%s',"
        "'spanId':'%s','name':'GET','kind':2,'startTimeUnixNano':"
        "'1700000000000000000','endTimeUnixNano':'1700000000100000000',"
        "'status':{'code':%d}}]}]}]}",
        tid, sid, status);
    fixture_post(&fx, &mod_otlp_traces, "/v1/traces", "application/json", NULL, body, arena,
                 &resp);
    cr_assert_eq(resp.status, 200, "%d %s", resp.status, vg_buf_cstr(&resp.body));
    cr_assert_str_eq(vg_buf_cstr(&resp.body), "{}"); /* sampled out is not rejected */
}

static bool stored(const char *tid)
{
    uint8_t id[16];
    for (int i = 0; i < 16; i++) {
        unsigned b;
        sscanf(tid + 2 * i, "%2x", &b);
        id[i] = (uint8_t)b;
    }
    struct spanstore_trace t;
    struct vg_err err = {0};
    int rc = spanstore_trace_get(fx.v.traces, id, &t, &err);
    spanstore_trace_free(&t);
    cr_assert(rc == 0 || rc == VG_ENOTFOUND, "%s", err.msg);
    return rc == 0;
}

/* byte 9 is 0xf0: kept at ratio 0.5; 0x10: dropped */
#define KEPT_TID "aaaaaaaaaaaaaaaaaaf0000000000000"
#define DROP_TID "aaaaaaaaaaaaaaaaaa10000000000000"

Test(sampling_e2e, head_sampling_keeps_and_drops_whole_traces)
{
    struct vg_err err = {0};
    cr_assert_eq(config_set(fx.cfg, "traces.sample_ratio", "0.5", &err), 0);
    cr_assert_eq(mod_sampling.init(&fx.v, &err), 0, "%s", err.msg);
    cr_assert_not_null(fx.v.sampling_state);
    post_span(KEPT_TID, "0000000000000001", 0);
    post_span(DROP_TID, "0000000000000001", 0);
    post_span(DROP_TID, "0000000000000002", 0);
    cr_assert(stored(KEPT_TID));
    cr_assert_not(stored(DROP_TID));
    cr_assert_eq(metric(fx.v.metrics, "vigil_sampling_decisions_total{sampler=\"head\",policy="
                                      "\"probabilistic\",decision=\"keep\"} "), 1);
    cr_assert_eq(metric(fx.v.metrics, "vigil_sampling_decisions_total{sampler=\"head\",policy="
                                      "\"probabilistic\",decision=\"drop\"} "), 1);
    cr_assert_eq(metric(fx.v.metrics, "vigil_sampling_spans_dropped_total{sampler=\"head\"} "),
                 2);
    cr_assert_eq(metric(fx.v.metrics,
                        "vigil_ingest_spans_accepted_total{receiver=\"otlp_traces_http\"} "), 1);
}

Test(sampling_e2e, sampling_off_stores_everything)
{
    struct vg_err err = {0};
    cr_assert_eq(mod_sampling.init(&fx.v, &err), 0, "%s", err.msg);
    cr_assert_null(fx.v.sampling_state);
    post_span(DROP_TID, "0000000000000001", 0);
    cr_assert(stored(DROP_TID));
}

Test(sampling_e2e, tail_sampling_stores_kept_traces_after_the_wait)
{
    struct vg_err err = {0};
    const char *y = "tail_sampling:\n  decision_wait: 1h\n  policies:\n"
                    "    - {name: errors, type: status_code, status_code: "
                    "{status_codes: [ERROR]}}\n";
    struct config *c = load(y, &err);
    cr_assert_not_null(c, "%s", err.msg);
    fx.v.cfg = c;
    cr_assert_eq(mod_sampling.check(c, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_sampling.init(&fx.v, &err), 0, "%s", err.msg);
    post_span(KEPT_TID, "0000000000000001", 0);
    post_span(KEPT_TID, "0000000000000002", 2); /* ERROR */
    post_span(DROP_TID, "0000000000000001", 1);
    /* acknowledged, but waiting in memory */
    cr_assert_not(stored(KEPT_TID));
    cr_assert_not(stored(DROP_TID));
    struct tail_sampling *t = sampling_tail(fx.v.sampling_state);
    cr_assert_eq(tail_sampling_tick(t, sampling_now_ns() + 7200 * NS), 2);
    cr_assert(stored(KEPT_TID));
    cr_assert_not(stored(DROP_TID));
    cr_assert_eq(metric(fx.v.metrics,
                        "vigil_ingest_spans_accepted_total{receiver=\"tail_sampling\"} "), 2);
    cr_assert_eq(metric(fx.v.metrics, "vigil_sampling_decisions_total{sampler=\"tail\",policy="
                                      "\"errors\",decision=\"keep\"} "), 1);
    cr_assert_eq(metric(fx.v.metrics, "vigil_sampling_spans_dropped_total{sampler=\"tail\"} "),
                 1);
    /* a late span of the kept trace is stored at once, under its receiver */
    post_span(KEPT_TID, "0000000000000003", 0);
    cr_assert_eq(metric(fx.v.metrics,
                        "vigil_ingest_spans_accepted_total{receiver=\"otlp_traces_http\"} "), 1);
    /* shutdown flush: a new error trace buffered now is written by free */
    post_span("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "0000000000000001", 2);
    mod_sampling.free(&fx.v);
    cr_assert_null(fx.v.sampling_state);
    cr_assert(stored("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"));
}

Test(sampling_e2e, invalid_spans_still_reach_the_store_and_are_refused)
{
    struct vg_err err = {0};
    cr_assert_eq(config_set(fx.cfg, "traces.sample_ratio", "0", &err), 0);
    cr_assert_eq(mod_sampling.init(&fx.v, &err), 0, "%s", err.msg);
    struct span s = mk(1, 1, 0, SPAN_STATUS_OK, 0, 1, "a");
    s.end_ns = s.start_ns - 1;
    struct spanstore_write_result res;
    cr_assert_eq(ingest_store_spans(&fx.v, "test", &s, 1, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.rejected, 1);
    struct span ok = mk(2, 1, 0, SPAN_STATUS_OK, 0, 1, "a");
    cr_assert_eq(ingest_store_spans(&fx.v, "test", &ok, 1, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.accepted, 0); /* ratio 0 drops every valid trace */
    cr_assert_eq(res.rejected, 0);
}
