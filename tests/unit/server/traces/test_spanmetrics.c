/* Tests server/traces/spanmetrics.c (and the dtable under it) with hand-built spans:
 * call counts and histogram buckets per label tuple, Tempo's label names and values,
 * the 0 sample that starts every new series,
 * exemplars written once per observation, the series bound, invalid and long label
 * values, idle series dropped, and allocation failure. */
#include "span_fixture.h"

#include "../../../../server/traces/spanmetrics.h"
#include "../../../../storage/base/vg_alloc.h"

#include <math.h>

static const double BOUNDS[] = { 0.004, 0.05, 1 };
static struct spanmetrics *sm;
static struct dtable_out out;
static struct vg_err err;

static struct spanmetrics *make(size_t max_series, size_t max_len, int64_t idle_ms)
{
    struct spanmetrics_opts o = { .bounds = BOUNDS, .nbounds = 3, .max_series = max_series,
                                  .max_value_len = max_len, .idle_ms = idle_ms };
    struct spanmetrics *m = spanmetrics_new(&o, &err);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

static void setup(void)
{
    vg_err_clear(&err);
    dtable_out_init(&out);
    sm = make(100, 4096, 0);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    dtable_out_free(&out);
    spanmetrics_free(sm);
}

TestSuite(spanmetrics, .init = setup, .fini = teardown);

static void collect(int64_t now)
{
    dtable_out_free(&out);
    cr_assert_eq(spanmetrics_collect(sm, now, &out, &err), 0, "%s", err.msg);
}

/* The row's value: its last sample (a new series' first row also starts with a 0). */
static double value(const struct tsdb_series_in *in)
{
    cr_assert_not_null(in);
    cr_assert(in->nsamples == 1 || (in->nsamples == 2 && in->samples[0].v == 0));
    return in->samples[in->nsamples - 1].v;
}

Test(spanmetrics, counts_buckets_and_labels)
{
    struct span s[3] = {
        sf_span("shop", "GET /cart", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 3),
        sf_span("shop", "GET /cart", SPAN_KIND_SERVER, SPAN_STATUS_OK, 2, 2, 0, 4),
        sf_span("shop", "GET /cart", SPAN_KIND_SERVER, SPAN_STATUS_ERROR, 3, 3, 0, 100),
    };
    spanmetrics_observe(sm, s, 3, 1000);
    collect(5000);
    /* two label tuples: 2 x (calls + 4 buckets + sum + count) */
    cr_assert_eq(out.n, 14);
    const struct tsdb_series_in *ok = sf_row(&out, SPANMETRICS_CALLS, "status_code",
                                             "STATUS_CODE_OK", NULL);
    cr_assert_eq(value(ok), 2);
    cr_assert_eq(ok->samples[1].t, 5000);
    cr_assert_eq(ok->nlabels, 5);
    cr_assert_str_eq(ok->labels[0].name.p, "__name__");
    cr_assert(vg_str_eq_c(labels_get(ok->labels, 5, "service"), "shop"));
    cr_assert(vg_str_eq_c(labels_get(ok->labels, 5, "span_name"), "GET /cart"));
    cr_assert(vg_str_eq_c(labels_get(ok->labels, 5, "span_kind"), "SPAN_KIND_SERVER"));
    for (size_t i = 1; i < ok->nlabels; i++)
        cr_assert_lt(vg_str_cmp(ok->labels[i - 1].name, ok->labels[i].name), 0, "sorted");
    cr_assert_eq(value(sf_row(&out, SPANMETRICS_CALLS, "status_code", "STATUS_CODE_ERROR",
                              NULL)), 1);
    const char *b = SPANMETRICS_DURATION "_bucket";
    cr_assert_eq(value(sf_row(&out, b, "status_code", "STATUS_CODE_OK", "le", "0.004", NULL)),
                 2, "3 ms and 4 ms are <= 0.004 (le is inclusive)");
    cr_assert_eq(value(sf_row(&out, b, "status_code", "STATUS_CODE_OK", "le", "0.05", NULL)),
                 2);
    cr_assert_eq(value(sf_row(&out, b, "status_code", "STATUS_CODE_OK", "le", "+Inf", NULL)),
                 2);
    cr_assert_eq(value(sf_row(&out, b, "status_code", "STATUS_CODE_ERROR", "le", "0.05",
                              NULL)), 0);
    cr_assert_eq(value(sf_row(&out, b, "status_code", "STATUS_CODE_ERROR", "le", "1", NULL)),
                 1);
    double sum = value(sf_row(&out, SPANMETRICS_DURATION "_sum", "status_code",
                              "STATUS_CODE_OK", NULL));
    cr_assert(fabs(sum - 0.007) < 1e-12, "sum %g", sum);
    cr_assert_eq(value(sf_row(&out, SPANMETRICS_DURATION "_count", "status_code",
                              "STATUS_CODE_ERROR", NULL)), 1);

    /* cumulative: more spans add to what is there */
    spanmetrics_observe(sm, s, 1, 6000);
    collect(7000);
    cr_assert_eq(value(sf_row(&out, SPANMETRICS_CALLS, "status_code", "STATUS_CODE_OK",
                              NULL)), 3);
}

/* Every row of a new series starts with 0 at the series' creation, so the first
 * increase is visible: value(second flush) - first sample = all spans so far. */
Test(spanmetrics, new_series_start_at_zero)
{
    struct span s[3] = {
        sf_span("shop", "GET /", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 3),
        sf_span("shop", "GET /", SPAN_KIND_SERVER, SPAN_STATUS_OK, 2, 2, 0, 20),
        sf_span("shop", "GET /", SPAN_KIND_SERVER, SPAN_STATUS_OK, 3, 3, 0, 20),
    };
    spanmetrics_observe(sm, s, 3, 1000);
    collect(5000);
    cr_assert_eq(out.n, 7, "calls + 4 buckets + sum + count");
    for (size_t i = 0; i < out.n; i++) {
        const struct tsdb_series_in *in = &out.series[i];
        cr_assert_eq(in->nsamples, 2, "row %zu", i);
        cr_assert_eq(in->samples[0].t, 1000, "the zero sits at the series' creation");
        cr_assert_eq(in->samples[0].v, 0);
        cr_assert_eq(in->samples[1].t, 5000);
    }
    const struct tsdb_series_in *c = sf_row(&out, SPANMETRICS_CALLS, NULL);
    double first = c->samples[0].v, v1 = c->samples[1].v;
    cr_assert_eq(v1, 3);
    cr_assert_eq(sf_row(&out, SPANMETRICS_DURATION "_bucket", "le", "0.05", NULL)->nexemplars,
                 1, "the exemplar rides with the real sample");

    spanmetrics_observe(sm, s, 2, 6000);
    collect(7000);
    c = sf_row(&out, SPANMETRICS_CALLS, NULL);
    cr_assert_eq(c->nsamples, 1, "only a new series gets the zero");
    cr_assert_eq(c->samples[0].t, 7000);
    cr_assert_eq(c->samples[0].v - first, 5, "increase over two flushes = spans seen");
    const struct tsdb_series_in *n = sf_row(&out, SPANMETRICS_DURATION "_count", NULL);
    cr_assert_eq(n->nsamples, 1);
    cr_assert_eq(n->samples[0].v, 5);
}

Test(spanmetrics, zero_before_a_series_created_at_collection_time)
{
    struct span s = sf_span("a", "x", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1);
    spanmetrics_observe(sm, &s, 1, 9000); /* a clock ahead of the collection's */
    collect(5000);
    const struct tsdb_series_in *c = sf_row(&out, SPANMETRICS_CALLS, NULL);
    cr_assert_eq(c->nsamples, 2);
    cr_assert_eq(c->samples[0].t, 4999, "strictly before the first real sample");
    cr_assert_eq(c->samples[1].t, 5000);
}

Test(spanmetrics, zero_again_after_idle_expiry_and_failed_collection)
{
    spanmetrics_free(sm);
    sm = make(10, 4096, 1000);
    struct span s = sf_span("a", "x", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1);
    spanmetrics_observe(sm, &s, 1, 0);
    collect(500);
    cr_assert_eq(sf_row(&out, SPANMETRICS_CALLS, NULL)->nsamples, 2);
    collect(5000); /* idle: dropped */
    cr_assert_eq(out.n, 0);
    spanmetrics_observe(sm, &s, 1, 6000);
    dtable_out_free(&out);
    vg_alloc_fail_after(1);
    cr_assert_eq(spanmetrics_collect(sm, 6500, &out, &err), VG_ENOMEM);
    vg_alloc_fail_after(0);
    collect(7000);
    const struct tsdb_series_in *c = sf_row(&out, SPANMETRICS_CALLS, NULL);
    cr_assert_eq(c->nsamples, 2, "a series made anew starts from 0 again, after the failure");
    cr_assert_eq(c->samples[0].t, 6000);
    cr_assert_eq(c->samples[1].v, 1);
}

Test(spanmetrics, kind_and_status_names)
{
    cr_assert_str_eq(spanmetrics_kind_name(SPAN_KIND_UNSPECIFIED), "SPAN_KIND_UNSPECIFIED");
    cr_assert_str_eq(spanmetrics_kind_name(SPAN_KIND_INTERNAL), "SPAN_KIND_INTERNAL");
    cr_assert_str_eq(spanmetrics_kind_name(SPAN_KIND_CLIENT), "SPAN_KIND_CLIENT");
    cr_assert_str_eq(spanmetrics_kind_name(SPAN_KIND_PRODUCER), "SPAN_KIND_PRODUCER");
    cr_assert_str_eq(spanmetrics_kind_name(SPAN_KIND_CONSUMER), "SPAN_KIND_CONSUMER");
    cr_assert_str_eq(spanmetrics_kind_name((enum span_kind)99), "SPAN_KIND_UNSPECIFIED");
    cr_assert_str_eq(spanmetrics_status_name(SPAN_STATUS_UNSET), "STATUS_CODE_UNSET");
    cr_assert_str_eq(spanmetrics_status_name(SPAN_STATUS_OK), "STATUS_CODE_OK");
    cr_assert_str_eq(spanmetrics_status_name(SPAN_STATUS_ERROR), "STATUS_CODE_ERROR");
    struct span s = sf_span("", "op", SPAN_KIND_CONSUMER, SPAN_STATUS_UNSET, 1, 1, 0, 1);
    spanmetrics_observe(sm, &s, 1, 0);
    collect(1);
    const struct tsdb_series_in *c = sf_row(&out, SPANMETRICS_CALLS, "span_kind",
                                            "SPAN_KIND_CONSUMER", "status_code",
                                            "STATUS_CODE_UNSET", NULL);
    cr_assert_eq(value(c), 1);
    cr_assert_null(labels_get(c->labels, c->nlabels, "service").p, "empty service left out");
    cr_assert_eq(c->nlabels, 4);
}

Test(spanmetrics, exemplars_once_per_observation)
{
    struct span s = sf_span("shop", "GET /", SPAN_KIND_SERVER, SPAN_STATUS_OK, 0xab, 0xcd, 0,
                            20);
    spanmetrics_observe(sm, &s, 1, 0);
    collect(1000);
    const struct tsdb_series_in *b = sf_row(&out, SPANMETRICS_DURATION "_bucket", "le", "0.05",
                                            NULL);
    cr_assert_not_null(b);
    cr_assert_eq(b->nexemplars, 1);
    const struct tsdb_exemplar *e = &b->exemplars[0];
    cr_assert_eq(e->nlabels, 2);
    cr_assert(vg_str_eq_c(labels_get(e->labels, 2, "trace_id"),
                          "abababababababababababababababab"));
    cr_assert(vg_str_eq_c(labels_get(e->labels, 2, "span_id"), "cdcdcdcdcdcdcdcd"));
    cr_assert_eq(e->t, SF_T0 / 1000000 + 20);
    cr_assert(fabs(e->v - 0.02) < 1e-12);
    /* other buckets and the calls counter carry none */
    cr_assert_eq(sf_row(&out, SPANMETRICS_DURATION "_bucket", "le", "+Inf", NULL)->nexemplars,
                 0);
    cr_assert_eq(sf_row(&out, SPANMETRICS_CALLS, NULL)->nexemplars, 0);
    collect(2000);
    cr_assert_eq(sf_row(&out, SPANMETRICS_DURATION "_bucket", "le", "0.05", NULL)->nexemplars,
                 0, "an exemplar is written once");
}

Test(spanmetrics, series_bound_and_invalid_values)
{
    spanmetrics_free(sm);
    sm = make(2, 4096, 0);
    struct span s[4] = {
        sf_span("a", "one", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1),
        sf_span("a", "two", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 2, 0, 1),
        sf_span("a", "three", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 3, 0, 1),
        sf_span("a", "bad \xff", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 4, 0, 1),
    };
    spanmetrics_observe(sm, s, 4, 0);
    spanmetrics_observe(sm, s, 1, 0); /* an existing series still counts */
    struct dtable_stats st;
    spanmetrics_stats(sm, &st);
    cr_assert_eq(st.series, 2);
    cr_assert_eq(st.dropped_full, 1);
    cr_assert_eq(st.dropped_invalid, 1, "a bad value is refused as such even when full");
    collect(1);
    cr_assert_eq(sf_count(&out, SPANMETRICS_CALLS), 2);
    cr_assert_eq(value(sf_row(&out, SPANMETRICS_CALLS, "span_name", "one", NULL)), 2);

    spanmetrics_free(sm);
    sm = make(10, 4096, 0);
    spanmetrics_observe(sm, &s[3], 1, 0);
    struct span nul = s[0];
    nul.name = (struct vg_str){ "a\0b", 3 };
    spanmetrics_observe(sm, &nul, 1, 0);
    spanmetrics_stats(sm, &st);
    cr_assert_eq(st.dropped_invalid, 2);
    cr_assert_eq(st.series, 0);
}

Test(spanmetrics, long_values_cut_at_utf8_boundary)
{
    spanmetrics_free(sm);
    sm = make(10, 8, 0);
    struct span s[2] = {
        sf_span("a", "abcdefghijk", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1),
        sf_span("a", "abcdefg\xc3\xa9", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 2, 0, 1),
    };
    spanmetrics_observe(sm, s, 2, 0);
    collect(1);
    cr_assert_eq(value(sf_row(&out, SPANMETRICS_CALLS, "span_name", "abcdefgh", NULL)), 1);
    cr_assert_eq(value(sf_row(&out, SPANMETRICS_CALLS, "span_name", "abcdefg", NULL)), 1,
                 "the two-byte character is not split");
}

Test(spanmetrics, idle_series_dropped)
{
    spanmetrics_free(sm);
    sm = make(10, 4096, 1000);
    struct span s[2] = {
        sf_span("a", "old", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1),
        sf_span("a", "new", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 2, 0, 1),
    };
    spanmetrics_observe(sm, &s[0], 1, 0);
    spanmetrics_observe(sm, &s[1], 1, 4500);
    collect(5000);
    cr_assert_null(sf_row(&out, SPANMETRICS_CALLS, "span_name", "old", NULL));
    cr_assert_not_null(sf_row(&out, SPANMETRICS_CALLS, "span_name", "new", NULL));
    struct dtable_stats st;
    spanmetrics_stats(sm, &st);
    cr_assert_eq(st.series, 1);
    cr_assert_eq(st.expired, 1);
}

Test(spanmetrics, skips_malformed_spans)
{
    struct span s = sf_span("a", "x", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1);
    s.end_ns = s.start_ns - 1;
    struct span k = sf_span("a", "x", (enum span_kind)7, SPAN_STATUS_OK, 1, 1, 0, 1);
    spanmetrics_observe(sm, &s, 1, 0);
    spanmetrics_observe(sm, &k, 1, 0);
    collect(1);
    cr_assert_eq(out.n, 0);
}

Test(spanmetrics, bad_bounds_and_allocation_failure)
{
    static const double bad[] = { 1, 0.5 };
    struct spanmetrics_opts o = { .bounds = bad, .nbounds = 2, .max_series = 10,
                                  .max_value_len = 100 };
    cr_assert_null(spanmetrics_new(&o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    o.bounds = BOUNDS;
    for (uint64_t n = 1; n < 30; n++) {
        vg_alloc_fail_after(n);
        struct spanmetrics *m = spanmetrics_new(&o, &err);
        vg_alloc_fail_after(0);
        if (m) {
            spanmetrics_free(m);
            break;
        }
        cr_assert_eq(err.code, VG_ENOMEM);
    }
    struct span s = sf_span("a", "x", SPAN_KIND_SERVER, SPAN_STATUS_OK, 1, 1, 0, 1);
    spanmetrics_observe(sm, &s, 1, 0);
    vg_alloc_fail_after(1);
    cr_assert_eq(spanmetrics_collect(sm, 1, &out, &err), VG_ENOMEM);
    vg_alloc_fail_after(0);
    cr_assert_eq(out.n, 0);
    collect(2);
    cr_assert_eq(sf_row(&out, SPANMETRICS_DURATION "_bucket", "le", "0.004", NULL)->nexemplars,
                 1, "the exemplar survived the failed collection");
}
