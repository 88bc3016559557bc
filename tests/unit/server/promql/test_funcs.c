/* Tests server/promql/funcs.c: the wiring of every function family (range functions
 * over left-open windows, element-wise math, clamp and round, date functions with and
 * without argument), __name__ rules (last_over_time keeps it), absent and
 * absent_over_time labels, scalar/vector/time/timestamp (with @), label_replace's Go
 * template expansion and errors, label_join, the sort family (natural label order),
 * histogram_quantile over classic buckets with its annotations, and the info for rate
 * over metrics not named like counters; the experimental functions (first_over_time,
 * ts_of_*_over_time, step/range/start/end, min_of/max_of, histogram_fraction and
 * histogram_quantiles, with allocation failures). */
#include "eval_fixture.h"

static void init(void)
{
    fx_reset();
    fx_load("c_total{j=\"a\"}", 60000, "0+60x10");
    fx_load("g{j=\"a\"}", 60000, "1 3 2 5 4 4 6");
    fx_load("reset_total{j=\"a\"}", 60000, "5 10 2 4 1");
}

TestSuite(funcs, .init = init, .fini = fx_fini);

Test(funcs, rate_family)
{
    EXPECT_INSTANT("rate(c_total[5m])", 600, "{j=\"a\"} 1");
    EXPECT_INSTANT("increase(c_total[5m])", 600, "{j=\"a\"} 300");
    EXPECT_INSTANT("irate(c_total[5m])", 600, "{j=\"a\"} 1");
    EXPECT_INSTANT("idelta(g[5m])", 360, "{j=\"a\"} 2");
    EXPECT_INSTANT("delta(g[2m])", 120, "{j=\"a\"} -2");
    EXPECT_INSTANT("deriv(c_total[5m])", 600, "{j=\"a\"} 1");
    EXPECT_INSTANT("predict_linear(c_total[5m], 60)", 600, "{j=\"a\"} 660");
    EXPECT_INSTANT("rate(c_total[1m])", 600, ""); /* one sample in (540, 600] */
    EXPECT_INSTANT("changes(g[10m])", 360, "{j=\"a\"} 5");
    EXPECT_INSTANT("resets(reset_total[10m])", 240, "{j=\"a\"} 2");
    EXPECT_INSTANT("rate(g[5m])", 360, "{j=\"a\"} 0.03666666667");
    cr_assert_eq(fx_last->ninfos, 1);
    cr_assert_str_eq(fx_last->infos[0], "PromQL info: metric might not be a counter, name does "
                                        "not end in _total/_sum/_count/_bucket: \"g\"");
}

Test(funcs, over_time_family)
{
    EXPECT_INSTANT("avg_over_time(g[10m])", 360, "{j=\"a\"} 3.571428571");
    EXPECT_INSTANT("sum_over_time(g[3m])", 360, "{j=\"a\"} 14");
    EXPECT_INSTANT("min_over_time(g[10m])", 360, "{j=\"a\"} 1");
    EXPECT_INSTANT("max_over_time(g[10m])", 360, "{j=\"a\"} 6");
    EXPECT_INSTANT("count_over_time(g[10m])", 360, "{j=\"a\"} 7");
    EXPECT_INSTANT("last_over_time(g[10m])", 360, "g{j=\"a\"} 6");
    EXPECT_INSTANT("present_over_time(g[1m])", 360, "{j=\"a\"} 1");
    EXPECT_INSTANT("quantile_over_time(0.5, g[10m])", 360, "{j=\"a\"} 4");
    EXPECT_INSTANT("stdvar_over_time(g[2m])", 360, "{j=\"a\"} 1");
    EXPECT_INSTANT("stddev_over_time(g[2m])", 360, "{j=\"a\"} 1");
    EXPECT_INSTANT("mad_over_time(g[10m])", 360, "{j=\"a\"} 1");
    EXPECT_INSTANT("double_exponential_smoothing(c_total[5m], 0.5, 0.5)", 600, "{j=\"a\"} 600");
    EXPECT_INSTANT("double_exponential_smoothing(c_total[5m], 1, 0.5)", 600,
                   "error: invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000");
    EXPECT_INSTANT("quantile_over_time(-1, g[10m])", 360, "{j=\"a\"} -Inf");
    cr_assert_eq(fx_last->nwarnings, 1);
}

Test(funcs, elementwise_math)
{
    fx_load("m{k=\"n\"}", 60000, "-2.5");
    EXPECT_INSTANT("abs(m)", 0, "{k=\"n\"} 2.5");
    EXPECT_INSTANT("ceil(m)", 0, "{k=\"n\"} -2");
    EXPECT_INSTANT("floor(m)", 0, "{k=\"n\"} -3");
    EXPECT_INSTANT("round(m)", 0, "{k=\"n\"} -2");
    EXPECT_INSTANT("round(m, 5)", 0, "{k=\"n\"} 0");
    EXPECT_INSTANT("sgn(m)", 0, "{k=\"n\"} -1");
    EXPECT_INSTANT("sqrt(m)", 0, "{k=\"n\"} NaN");
    EXPECT_INSTANT("exp(abs(m) - 2.5)", 0, "{k=\"n\"} 1");
    EXPECT_INSTANT("ln(abs(m) * 0)", 0, "{k=\"n\"} -Inf");
    EXPECT_INSTANT("log2(abs(m) + 1.5)", 0, "{k=\"n\"} 2");
    EXPECT_INSTANT("log10(abs(m) * 4)", 0, "{k=\"n\"} 1");
    EXPECT_INSTANT("clamp(m, -1, 1)", 0, "{k=\"n\"} -1");
    EXPECT_INSTANT("clamp(m, 1, -1)", 0, "");
    EXPECT_INSTANT("clamp_max(m, -3)", 0, "{k=\"n\"} -3");
    EXPECT_INSTANT("clamp_min(m, NaN)", 0, "{k=\"n\"} NaN");
}

Test(funcs, trigonometry)
{
    EXPECT_INSTANT("sin(vector(0))", 0, "{} 0");
    EXPECT_INSTANT("cos(vector(0))", 0, "{} 1");
    EXPECT_INSTANT("tan(vector(0))", 0, "{} 0");
    EXPECT_INSTANT("asin(vector(1))", 0, "{} 1.570796327");
    EXPECT_INSTANT("acos(vector(1))", 0, "{} 0");
    EXPECT_INSTANT("atan(vector(1))", 0, "{} 0.7853981634");
    EXPECT_INSTANT("sinh(vector(0))", 0, "{} 0");
    EXPECT_INSTANT("cosh(vector(0))", 0, "{} 1");
    EXPECT_INSTANT("tanh(vector(0))", 0, "{} 0");
    EXPECT_INSTANT("asinh(vector(0))", 0, "{} 0");
    EXPECT_INSTANT("acosh(vector(1))", 0, "{} 0");
    EXPECT_INSTANT("atanh(vector(0))", 0, "{} 0");
    EXPECT_INSTANT("deg(vector(pi()))", 0, "{} 180");
    EXPECT_INSTANT("rad(vector(180))", 0, "{} 3.141592654");
    EXPECT_INSTANT("pi()", 0, "scalar 3.141592654");
}

Test(funcs, date_functions)
{
    /* 1970-01-01 was a Thursday; 5h after the epoch */
    EXPECT_INSTANT("hour()", 18000, "{} 5");
    EXPECT_INSTANT("day_of_week()", 0, "{} 4");
    EXPECT_INSTANT("year(vector(86400 * 366))", 0, "{} 1971");
    EXPECT_INSTANT("month(vector(86400 * 45))", 0, "{} 2");
    EXPECT_INSTANT("day_of_month(vector(86400 * 45))", 0, "{} 15");
    EXPECT_INSTANT("days_in_month(vector(86400 * 45))", 0, "{} 28");
    EXPECT_INSTANT("day_of_year(vector(86400 * 45))", 0, "{} 46");
    EXPECT_INSTANT("minute(vector(125))", 0, "{} 2");
    EXPECT_INSTANT("hour(g)", 60, "{j=\"a\"} 0");
}

Test(funcs, absent_family)
{
    EXPECT_INSTANT("absent(nothing{job=\"x\", a=~\"y\", b=\"1\", b=\"2\"})", 60, "{job=\"x\"} 1");
    EXPECT_INSTANT("absent(g)", 60, "");
    EXPECT_INSTANT("absent(sum(nothing))", 60, "{} 1");
    EXPECT_INSTANT("absent_over_time(nothing{job=\"x\"}[1m])", 60, "{job=\"x\"} 1");
    EXPECT_INSTANT("absent_over_time(g[1m])", 60, "");
    EXPECT_RANGE("absent_over_time(g[1m])", 360, 600, 120, "{} 1@480 1@600");
    EXPECT_INSTANT("absent_over_time(nothing[1m:])", 60, "{} 1");
}

Test(funcs, scalar_vector_time_timestamp)
{
    EXPECT_INSTANT("scalar(g)", 60, "scalar 3");
    EXPECT_INSTANT("scalar(nothing)", 60, "scalar NaN");
    EXPECT_INSTANT("scalar({j=\"a\"})", 60, "scalar NaN");
    EXPECT_INSTANT("vector(3)", 60, "{} 3");
    EXPECT_INSTANT("time()", 61.5, "scalar 61.5");
    EXPECT_INSTANT("timestamp(g)", 90, "{j=\"a\"} 60");
    EXPECT_INSTANT("timestamp(g @ 130)", 500, "{j=\"a\"} 120");
    EXPECT_INSTANT("timestamp(g offset 1m)", 150, "{j=\"a\"} 60");
    EXPECT_INSTANT("timestamp(-g)", 90, "{j=\"a\"} 90");
    EXPECT_RANGE("timestamp(g @ 130)", 0, 60, 60, "{j=\"a\"} 120@0 120@60");
}

Test(funcs, label_replace_and_join)
{
    EXPECT_INSTANT("label_replace(g, \"dst\", \"x-$1\", \"j\", \"(.*)\")", 60,
                   "g{dst=\"x-a\", j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"dst\", \"${1}x\", \"j\", \"(?P<v>.)\")", 60,
                   "g{dst=\"ax\", j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"dst\", \"$vx$v\", \"j\", \"(?P<v>.)\")", 60,
                   "g{dst=\"a\", j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"dst\", \"$1x\", \"j\", \"(.*)\")", 60, "g{j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"dst\", \"$$1 $\", \"j\", \"(.*)\")", 60,
                   "g{dst=\"$1 $\", j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"dst\", \"y\", \"j\", \"b\")", 60, "g{j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"j\", \"\", \"j\", \".*\")", 60, "g{} 3");
    EXPECT_INSTANT("label_replace(g, \"__name__\", \"h\", \"j\", \".*\")", 60, "h{j=\"a\"} 3");
    EXPECT_INSTANT("label_replace(g, \"dst\", \"x\", \"j\", \"(\")", 60,
                   "error: invalid regular expression in label_replace(): (");
    EXPECT_INSTANT("label_replace(g, \"\\xff\", \"x\", \"j\", \".*\")", 60,
                   "error: invalid destination label name in label_replace(): \xff");
    EXPECT_INSTANT("label_replace({j=\"a\"}, \"__name__\", \"same\", \"j\", \".*\")", 60,
                   "error: vector cannot contain metrics with the same labelset");
    EXPECT_INSTANT("label_join(g, \"dst\", \"-\", \"j\", \"__name__\", \"none\")", 60,
                   "g{dst=\"a-g-\", j=\"a\"} 3");
    EXPECT_INSTANT("label_join(g, \"dst\", \",\")", 60, "g{j=\"a\"} 3");
}

Test(funcs, sort_family)
{
    fx_load("s{i=\"9\"}", 60000, "3");
    fx_load("s{i=\"10\"}", 60000, "NaN");
    fx_load("s{i=\"x2\"}", 60000, "1");
    fx_load("s{i=\"x10\"}", 60000, "2");
    EXPECT_INSTANT("sort(s)", 0, "s{i=\"x2\"} 1\ns{i=\"x10\"} 2\ns{i=\"9\"} 3\ns{i=\"10\"} NaN");
    cr_assert(fx_last->ordered);
    EXPECT_INSTANT("sort_desc(s)", 0, "s{i=\"9\"} 3\ns{i=\"x10\"} 2\ns{i=\"x2\"} 1\ns{i=\"10\"} NaN");
    EXPECT_INSTANT("sort_by_label(s, \"i\")", 0,
                   "s{i=\"9\"} 3\ns{i=\"10\"} NaN\ns{i=\"x2\"} 1\ns{i=\"x10\"} 2");
    EXPECT_INSTANT("sort_by_label_desc(s, \"i\")", 0,
                   "s{i=\"x10\"} 2\ns{i=\"x2\"} 1\ns{i=\"10\"} NaN\ns{i=\"9\"} 3");
    EXPECT_RANGE("sort(s{i=\"9\"})", 0, 60, 60, "s{i=\"9\"} 3@0 3@60");
    cr_assert_eq(fx_last->nwarnings, 1);
    cr_assert_str_eq(fx_last->warnings[0], "PromQL warning: sort is ineffective for range "
                                           "queries since results are always ordered by labels");
}

Test(funcs, histogram_quantile_classic)
{
    fx_load("h_bucket{le=\"0.1\", j=\"a\"}", 60000, "0+1x10");
    fx_load("h_bucket{le=\"0.5\", j=\"a\"}", 60000, "0+2x10");
    fx_load("h_bucket{le=\"1\", j=\"a\"}", 60000, "0+4x10");
    fx_load("h_bucket{le=\"+Inf\", j=\"a\"}", 60000, "0+4x10");
    fx_load("h_bucket{le=\"oops\", j=\"b\"}", 60000, "1");
    EXPECT_INSTANT("histogram_quantile(0.5, h_bucket{j=\"a\"})", 600, "{j=\"a\"} 0.5");
    EXPECT_INSTANT("histogram_quantile(0.5, rate(h_bucket{j=\"a\"}[5m]))", 600, "{j=\"a\"} 0.5");
    EXPECT_INSTANT("histogram_quantile(0.9, sum by (le) (h_bucket))", 600, "{} 0.9");
    EXPECT_INSTANT("histogram_quantile(0.5, h_bucket)", 0, "{j=\"a\"} NaN");
    cr_assert_eq(fx_last->nwarnings, 1);
    cr_assert_str_eq(fx_last->warnings[0],
                     "PromQL warning: bucket label \"le\" is missing or has a malformed value "
                     "of \"oops\" for metric name \"h_bucket\"");
    fx_load("nm_bucket{le=\"1\"}", 60000, "5");
    fx_load("nm_bucket{le=\"2\"}", 60000, "4");
    fx_load("nm_bucket{le=\"+Inf\"}", 60000, "6");
    EXPECT_INSTANT("histogram_quantile(0.5, nm_bucket)", 0, "{} 0.6");
    cr_assert_eq(fx_last->ninfos, 1);
    EXPECT_INSTANT("histogram_quantile(NaN, nm_bucket)", 0, "{} NaN");
    cr_assert_str_eq(fx_last->warnings[0],
                     "PromQL warning: quantile value should be between 0 and 1, got NaN");
}

Test(funcs, experimental_over_time)
{
    /* g: 1 3 2 5 4 4 6 at minutes 0..6; [3m] at 6m holds 4 4 6 (minutes 4..6, left-open) */
    EXPECT_INSTANT("first_over_time(g[3m])", 360, "g{j=\"a\"} 4");
    EXPECT_INSTANT("ts_of_first_over_time(g[3m])", 360, "{j=\"a\"} 240");
    EXPECT_INSTANT("ts_of_last_over_time(g[3m])", 360, "{j=\"a\"} 360");
    EXPECT_INSTANT("ts_of_min_over_time(g[3m])", 360, "{j=\"a\"} 300"); /* 4 twice: later */
    EXPECT_INSTANT("ts_of_max_over_time(g[3m])", 360, "{j=\"a\"} 360");
    EXPECT_INSTANT("first_over_time(g[1m])", 3600, "");
    EXPECT_RANGE("ts_of_max_over_time(g[2m])", 60, 180, 60,
                 "{j=\"a\"} 60@60 60@120 180@180");
}

Test(funcs, query_parameters_and_min_max_of)
{
    EXPECT_RANGE("step()", 60, 120, 30, "{} 30@60 30@90 30@120");
    EXPECT_RANGE("range() + start() * 0 + end()", 60, 120, 30, "{} 180@60 180@90 180@120");
    EXPECT_RANGE("start()", 60, 120, 30, "{} 60@60 60@90 60@120");
    EXPECT_INSTANT("step()", 100, "scalar 0");
    EXPECT_INSTANT("range()", 100, "scalar 0");
    EXPECT_INSTANT("end()", 100, "scalar 100");
    /* start() inside a subquery is still the query's start */
    EXPECT_INSTANT("max_over_time(vector(start())[2m:1m])", 600, "{} 600");
    EXPECT_INSTANT("min_of(1, 2)", 0, "scalar 1");
    EXPECT_INSTANT("max_of(1, 2)", 0, "scalar 2");
    EXPECT_INSTANT("min_of(NaN, -Inf)", 0, "scalar -Inf");
    EXPECT_INSTANT("max_of(NaN, 7)", 0, "scalar NaN");
    EXPECT_INSTANT("min_of(g, 1)", 0,
                   "parse error: 1:8: parse error: expected type scalar in call to function "
                   "\"min_of\", got instant vector");
    EXPECT_INSTANT("start(1)", 0,
                   "parse error: 1:1: parse error: expected 0 argument(s) in call to "
                   "\"start\", got 1");
}

Test(funcs, histogram_fraction_and_quantiles_classic)
{
    fx_load("h_bucket{le=\"1\", j=\"a\"}", 60000, "2 4");
    fx_load("h_bucket{le=\"2\", j=\"a\"}", 60000, "6 8");
    fx_load("h_bucket{le=\"+Inf\", j=\"a\"}", 60000, "10 20");
    fx_load("h_bucket{le=\"1\", j=\"b\"}", 60000, "1");
    fx_load("h_bucket{le=\"+Inf\", j=\"b\"}", 60000, "2");
    fx_load("h_bucket{j=\"c\"}", 60000, "1");
    /* a: half of (1, 2]'s 4 above 1.5, and the 4 in (2, +Inf]: 6 of 10; b: 1 of 2 (the
     * +Inf bucket adds nothing below the finite 1.5... and everything up to +Inf) */
    EXPECT_INSTANT("histogram_fraction(1.5, +Inf, h_bucket)", 0, "{j=\"a\"} 0.6\n{j=\"b\"} 0.5");
    cr_assert_eq(fx_last->nwarnings, 1, "the series without le");
    EXPECT_RANGE("histogram_fraction(0, 1.5, h_bucket{j=\"a\"})", 0, 60, 60,
                 "{j=\"a\"} 0.4@0 0.3@60");
    /* a at 0: rank 5 in (1, 2] -> 1.75; b: rank 1 in (0, 1] -> 1 */
    EXPECT_INSTANT("histogram_quantiles(h_bucket, \"q\", 0.5, 0)", 0,
                   "{j=\"a\", q=\"0.0\"} 0\n{j=\"a\", q=\"0.5\"} 1.75\n"
                   "{j=\"b\", q=\"0.0\"} 0\n{j=\"b\", q=\"0.5\"} 1");
    EXPECT_INSTANT("histogram_quantiles(h_bucket{j=\"a\"}, \"q\", 1e-7, 1e21, -1)", 0,
                   "{j=\"a\", q=\"-1.0\"} -Inf\n{j=\"a\", q=\"1e+21\"} +Inf\n"
                   "{j=\"a\", q=\"1e-07\"} 5e-07");
    cr_assert_eq(fx_last->nwarnings, 2, "one per quantile out of [0, 1]");
    EXPECT_INSTANT("histogram_quantiles(h_bucket, \"j\", 0.5)", 0,
                   "error: vector cannot contain metrics with the same labelset");
    EXPECT_INSTANT("histogram_quantiles(h_bucket, \"\", 0.5)", 0,
                   "error: invalid quantile label name in histogram_quantiles(): ");
    /* the label may even replace the name */
    EXPECT_INSTANT("histogram_quantiles(h_bucket{j=\"b\"}, \"__name__\", 0.5)", 0,
                   "0.5{j=\"b\"} 1");
}

Test(funcs, histogram_functions_allocation_failure_is_clean)
{
    fx_load("h_bucket{le=\"1\", j=\"a\"}", 60000, "2 4");
    fx_load("h_bucket{le=\"+Inf\", j=\"a\"}", 60000, "10 20");
    const char *qs[] = { "histogram_quantiles(h_bucket, \"q\", 0.5, 0.9)",
                         "histogram_fraction(0, 0.5, h_bucket)" };
    for (size_t i = 0; i < 2; i++) {
        bool done = false;
        for (uint64_t n = 1; n < 500 && !done; n++) {
            vg_alloc_fail_after(n);
            const char *r = fx_instant(qs[i], 0);
            vg_alloc_fail_after(0);
            if (strncmp(r, "error:", 6) == 0)
                cr_assert(strstr(r, "out of memory"), "%s: %s", qs[i], r);
            else if (strncmp(r, "parse error:", 12) != 0)
                done = true;
        }
        cr_assert(done, "%s", qs[i]);
    }
}
