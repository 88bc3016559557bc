/* Tests server/ingest/statsd_agg.c: name mapping, what one flush writes for each kind
 * (cumulative counters with sample rates, gauges with deltas, sets per interval,
 * histogram buckets from timers in seconds, summary quantiles that are real estimates),
 * several flushes with an injected clock, tags as labels, metadata once per family, and
 * the limits (max series, type conflicts, full sets, bad labels, out of memory). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/ingest/statsd_agg.h"
#include "../../../../storage/base/vg_alloc.h"

static const double buckets[] = { 0.1, 0.5, 1 };
static const double quantiles[] = { 0.5, 0.99 };
static struct statsd_agg *agg;
static struct vg_arena *arena;
static struct tsdb_batch batch;

static void make(enum statsd_timer_type tt, size_t max_series, size_t max_set)
{
    statsd_agg_free(agg);
    struct statsd_agg_opts o = { .timer_type = tt, .buckets = buckets, .nbuckets = 3,
                                 .quantiles = quantiles, .nquantiles = 2,
                                 .max_series = max_series, .max_set_members = max_set };
    agg = statsd_agg_new(&o);
    cr_assert_not_null(agg);
}

static void setup(void)
{
    make(STATSD_TIMER_HISTOGRAM, 100, 100);
    arena = vg_arena_new(4096);
}

static void teardown(void)
{
    statsd_agg_free(agg);
    agg = NULL;
    vg_arena_free(arena);
    vg_alloc_fail_after(0);
}

TestSuite(statsd_agg, .init = setup, .fini = teardown);

/* Parses and adds; returns 0 or the drop reason + 1. */
static int add(const char *s)
{
    struct statsd_line l;
    cr_assert_eq(statsd_parse_line(s, strlen(s), &l), STATSD_OK, "%s", s);
    enum statsd_drop why;
    return statsd_agg_add(agg, &l, &why) == 0 ? 0 : (int)why + 1;
}

static void flush(int64_t t)
{
    vg_arena_reset(arena);
    cr_assert_eq(statsd_agg_flush(agg, t, arena, &batch), 0);
}

/* "name{k=v,...}" of a flushed series, labels in stored (sorted) order. */
static void series_text(const struct tsdb_series_in *s, char *out, size_t cap)
{
    struct vg_str name = labels_get(s->labels, s->nlabels, "__name__");
    size_t n = (size_t)snprintf(out, cap, "%.*s{", (int)name.len, name.p);
    bool first = true;
    for (size_t i = 0; i < s->nlabels; i++) {
        if (vg_str_eq_c(s->labels[i].name, "__name__"))
            continue;
        n += (size_t)snprintf(out + n, cap - n, "%s%.*s=%.*s", first ? "" : ",",
                              (int)s->labels[i].name.len, s->labels[i].name.p,
                              (int)s->labels[i].value.len, s->labels[i].value.p);
        first = false;
    }
    snprintf(out + n, cap - n, "}");
}

/* The flushed value of series text (as series_text writes it); NaN-safe: found says. */
static double value_of(const char *want, bool *found)
{
    char buf[512];
    for (size_t i = 0; i < batch.nseries; i++) {
        series_text(&batch.series[i], buf, sizeof buf);
        if (!strcmp(buf, want)) {
            cr_assert_eq(batch.series[i].nsamples, 1);
            *found = true;
            return batch.series[i].samples[0].v;
        }
    }
    *found = false;
    return NAN;
}

static void expect(const char *series, double v)
{
    bool found;
    double got = value_of(series, &found);
    cr_assert(found, "series %s was not flushed (%zu series)", series, batch.nseries);
    cr_assert_float_eq(got, v, 1e-9, "%s: expected %g, got %g", series, v, got);
}

static void expect_absent(const char *series)
{
    bool found;
    value_of(series, &found);
    cr_assert(!found, "series %s should not be there", series);
}

Test(statsd_agg, name_mapping)
{
    char out[64];
    cr_assert(statsd_map_name(vg_str_c("api.http-requests/s"), false, out, sizeof out));
    cr_assert_str_eq(out, "api_http_requests_s");
    cr_assert(statsd_map_name(vg_str_c("5xx.count"), false, out, sizeof out));
    cr_assert_str_eq(out, "_5xx_count");
    cr_assert(statsd_map_name(vg_str_c("a:b"), false, out, sizeof out));
    cr_assert_str_eq(out, "a:b", "':' is valid in a metric name");
    cr_assert(statsd_map_name(vg_str_c("a:b"), true, out, sizeof out));
    cr_assert_str_eq(out, "a_b", "but not in a label name");
    cr_assert(statsd_map_name(vg_str_c("\xc3\xa9t\xc3\xa9"), false, out, sizeof out));
    cr_assert_str_eq(out, "__t__", "every byte of a multi-byte character is replaced");
    cr_assert(!statsd_map_name(vg_str_c("abcdefgh"), false, out, 8), "does not fit");
}

Test(statsd_agg, counters_are_cumulative_with_sample_rates)
{
    cr_assert_eq(add("page.views:1|c"), 0);
    cr_assert_eq(add("page.views:2|c"), 0);
    cr_assert_eq(add("page.views:1|c|@0.1"), 0);
    cr_assert_eq(add("jobs_total:5|c"), 0);
    flush(1000);
    expect("page_views_total{}", 13);
    expect("jobs_total{}", 5); /* no _total_total */
    cr_assert_eq(batch.series[0].samples[0].t, 1000, "stamped with the flush time");
    cr_assert_eq(add("page.views:4|c"), 0);
    flush(2000);
    expect("page_views_total{}", 17);
    flush(3000);
    expect("page_views_total{}", 17); /* rewritten every flush, never reset */
    cr_assert_eq(batch.series[0].samples[0].t, 3000);
}

Test(statsd_agg, gauges_and_deltas)
{
    add("temp:+5|g"); /* a delta on a new gauge starts from 0 */
    flush(1);
    expect("temp{}", 5);
    add("temp:20|g");
    add("temp:-3|g");
    add("temp:+1.5|g");
    flush(2);
    expect("temp{}", 18.5);
    flush(3);
    expect("temp{}", 18.5);
}

Test(statsd_agg, sets_count_distinct_members_per_interval)
{
    add("users:alice|s");
    add("users:bob|s");
    add("users:alice|s");
    flush(1);
    expect("users{}", 2);
    flush(2);
    expect("users{}", 0);
    add("users:carol|s");
    flush(3);
    expect("users{}", 1);
}

Test(statsd_agg, timers_as_histograms_in_seconds)
{
    add("req.time:50|ms");        /* 0.05 s */
    add("req.time:300|ms");       /* 0.3 s */
    add("req.time:700|ms|@0.5");  /* 0.7 s counted twice */
    add("req.time:5000|ms");      /* 5 s */
    add("size:0.4|h");
    flush(10);
    expect("req_time_bucket{le=0.1}", 1);
    expect("req_time_bucket{le=0.5}", 2);
    expect("req_time_bucket{le=1}", 4);
    expect("req_time_bucket{le=+Inf}", 5);
    expect("req_time_count{}", 5);
    expect("req_time_sum{}", 0.05 + 0.3 + 1.4 + 5);
    expect("size_bucket{le=0.5}", 1);
    add("req.time:10|ms");
    flush(20);
    expect("req_time_bucket{le=0.1}", 2); /* cumulative across flushes */
    expect("req_time_count{}", 6);
}

Test(statsd_agg, timers_as_summaries_with_real_quantiles)
{
    make(STATSD_TIMER_SUMMARY, 100, 100);
    for (int i = 1; i <= 1000; i++) {
        char line[64];
        snprintf(line, sizeof line, "lat:%d|ms", i); /* 1 ms .. 1 s, uniform */
        add(line);
    }
    flush(1);
    bool found;
    double med = value_of("lat{quantile=0.5}", &found);
    cr_assert(found);
    cr_assert(fabs(med - 0.5) < 0.01, "median of 1..1000 ms is about 0.5 s: %g", med);
    double p99 = value_of("lat{quantile=0.99}", &found);
    cr_assert(fabs(p99 - 0.99) < 0.003, "p99 is about 0.99 s, not the maximum: %g", p99);
    expect("lat_count{}", 1000);
    expect("lat_sum{}", 500.5);
    flush(2);
    double empty = value_of("lat{quantile=0.5}", &found);
    cr_assert(found && isnan(empty), "an interval without observations gives NaN");
    expect("lat_count{}", 1000);
    add("lat:20|ms");
    flush(3);
    expect("lat{quantile=0.5}", 0.02);
}

Test(statsd_agg, tags_become_labels)
{
    add("api.calls:1|c|#env:prod,http.method:GET,env:dev,__name__:x");
    add("api.calls:1|c|#http.method:GET,env:prod");
    add("api.calls:1|c|#env:dev");
    add("t:1|ms|#le:5,path:/a");
    flush(1);
    expect("api_calls_total{env=prod,http_method=GET}", 2);
    expect("api_calls_total{env=dev}", 1);
    expect("t_count{path=/a}", 1); /* "le" is dropped on a histogram */
    cr_assert_eq(statsd_agg_series(agg), 3);
}

Test(statsd_agg, metadata_once_per_family)
{
    add("c1:1|c");
    add("g1:1|g");
    add("h1:1|h");
    flush(1);
    cr_assert_eq(batch.nmeta, 3);
    bool seen_counter = false;
    for (size_t i = 0; i < batch.nmeta; i++)
        if (vg_str_eq_c(batch.meta[i].metric, "c1_total")) {
            cr_assert_eq(batch.meta[i].type, TSDB_TYPE_COUNTER);
            seen_counter = true;
        } else if (vg_str_eq_c(batch.meta[i].metric, "h1")) {
            cr_assert_eq(batch.meta[i].type, TSDB_TYPE_HISTOGRAM);
        }
    cr_assert(seen_counter);
    flush(2);
    cr_assert_eq(batch.nmeta, 0);
    expect_absent("s1{}");
    add("s1:x|s");
    flush(3);
    cr_assert_eq(batch.nmeta, 1);
    cr_assert_eq(batch.meta[0].type, TSDB_TYPE_GAUGE);
}

Test(statsd_agg, limits)
{
    make(STATSD_TIMER_HISTOGRAM, 2, 2);
    cr_assert_eq(add("a:1|c"), 0);
    cr_assert_eq(add("a:1|c|#k:v"), 0);
    cr_assert_eq(add("a:1|c|#k:w"), STATSD_DROP_MAX_SERIES + 1);
    cr_assert_eq(add("b:1|g"), STATSD_DROP_MAX_SERIES + 1);
    cr_assert_eq(add("a:1|c"), 0, "existing series still count");
    cr_assert_eq(statsd_agg_series(agg), 2);

    make(STATSD_TIMER_HISTOGRAM, 10, 2);
    cr_assert_eq(add("x:1|g"), 0);
    cr_assert_eq(add("x:1|ms"), STATSD_DROP_TYPE_CONFLICT + 1);
    cr_assert_eq(add("x:1|ms|#k:v"), STATSD_DROP_TYPE_CONFLICT + 1, "same family, other tags");
    cr_assert_eq(add("x:1|c"), 0, "a counter is x_total: no clash");
    cr_assert_eq(add("s:a|s"), 0);
    cr_assert_eq(add("s:b|s"), 0);
    cr_assert_eq(add("s:c|s"), STATSD_DROP_SET_FULL + 1);
    cr_assert_eq(add("s:a|s"), 0, "a known member is fine");
    flush(1);
    expect("s{}", 2);
    cr_assert_eq(add("s:c|s"), 0, "a new interval has room again");
    cr_assert_str_eq(statsd_drop_name(STATSD_DROP_SET_FULL), "set_full");
}

Test(statsd_agg, label_limits)
{
    struct config *cfg = config_default();
    statsd_agg_free(agg);
    struct config_limits lim = cfg->limits;
    lim.max_label_value_length = 8; /* a_total fits */
    struct statsd_agg_opts o = { .buckets = buckets, .nbuckets = 3, .quantiles = quantiles,
                                 .nquantiles = 2, .max_series = 10, .max_set_members = 10,
                                 .limits = &lim };
    agg = statsd_agg_new(&o);
    config_free(cfg);
    cr_assert_eq(add("a:1|c|#k:abcdefgh"), 0);
    cr_assert_eq(add("a:1|c|#k:abcdefghi"), STATSD_DROP_BAD_LABELS + 1);
    cr_assert_eq(add("a:1|c|#k:\xff\xfe"), STATSD_DROP_BAD_LABELS + 1, "invalid UTF-8");
}

Test(statsd_agg, out_of_memory_is_a_clean_drop)
{
    for (uint64_t n = 1; n < 8; n++) {
        make(STATSD_TIMER_HISTOGRAM, 10, 10);
        vg_alloc_fail_after(n);
        int rc = add("h:1|h|#k:v");
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == STATSD_DROP_OUT_OF_MEMORY + 1, "n=%llu rc=%d",
                  (unsigned long long)n, rc);
        cr_assert_eq(add("h:2|h|#k:v"), 0);
        flush(1);
        bool found;
        double c = value_of("h_count{k=v}", &found);
        cr_assert(found && (c == 1 || c == 2));
    }
    add("g:1|g");
    struct vg_arena *tiny = vg_arena_new(64);
    vg_alloc_fail_after(1);
    cr_assert_eq(statsd_agg_flush(agg, 5, tiny, &batch), VG_ENOMEM);
    vg_alloc_fail_after(0);
    vg_arena_free(tiny);
    flush(6);
    expect("g{}", 1);
}
