/* Tests server/promql/aggregate.c: every aggregation operator with by/without, Kahan
 * sums and the overflow-safe average, NaN handling of min/max, population stddev,
 * quantile warnings, topk/bottomk order and per-step k, limitk, limit_ratio's hash rule,
 * count_values' value formatting, and the errors for bad parameters. */
#include "eval_fixture.h"

static void init(void)
{
    fx_reset();
    fx_load("r{job=\"api\", inst=\"0\", grp=\"prod\"}", 60000, "0+10x10");
    fx_load("r{job=\"api\", inst=\"1\", grp=\"prod\"}", 60000, "0+20x10");
    fx_load("r{job=\"api\", inst=\"0\", grp=\"canary\"}", 60000, "0+30x10");
    fx_load("r{job=\"api\", inst=\"1\", grp=\"canary\"}", 60000, "0+40x10");
}

TestSuite(aggregate, .init = init, .fini = fx_fini);

Test(aggregate, sum_avg_count_group)
{
    EXPECT_INSTANT("sum(r)", 600, "{} 1000");
    EXPECT_INSTANT("sum by (grp) (r)", 600, "{grp=\"canary\"} 700\n{grp=\"prod\"} 300");
    EXPECT_INSTANT("sum without (inst) (r)", 600,
                   "{grp=\"canary\", job=\"api\"} 700\n{grp=\"prod\", job=\"api\"} 300");
    EXPECT_INSTANT("avg by (grp) (r)", 600, "{grp=\"canary\"} 350\n{grp=\"prod\"} 150");
    EXPECT_INSTANT("count(r)", 600, "{} 4");
    EXPECT_INSTANT("group by (job) (r)", 600, "{job=\"api\"} 1");
    EXPECT_INSTANT("sum by (__name__) (r)", 600, "r{} 1000");
    EXPECT_INSTANT("sum(nothing)", 600, "");
    EXPECT_RANGE("count by (grp) (r)", 0, 60, 60,
                 "{grp=\"canary\"} 2@0 2@60\n{grp=\"prod\"} 2@0 2@60");
}

Test(aggregate, min_max_stddev_stdvar)
{
    EXPECT_INSTANT("min(r)", 600, "{} 100");
    EXPECT_INSTANT("max by (grp) (r)", 600, "{grp=\"canary\"} 400\n{grp=\"prod\"} 200");
    EXPECT_INSTANT("stdvar(r)", 600, "{} 12500");
    EXPECT_INSTANT("stddev by (grp) (r)", 600, "{grp=\"canary\"} 50\n{grp=\"prod\"} 50");
    fx_load("n{k=\"a\"}", 60000, "NaN");
    fx_load("n{k=\"b\"}", 60000, "3");
    fx_load("n{k=\"c\"}", 60000, "NaN");
    EXPECT_INSTANT("max(n)", 0, "{} 3");
    EXPECT_INSTANT("min(n)", 0, "{} 3");
    EXPECT_INSTANT("max(n{k!=\"b\"})", 0, "{} NaN");
    EXPECT_INSTANT("stddev(n)", 0, "{} NaN");
}

Test(aggregate, kahan_sum_and_overflowing_avg)
{
    fx_load("k{i=\"1\"}", 60000, "1e100");
    fx_load("k{i=\"2\"}", 60000, "1");
    fx_load("k{i=\"3\"}", 60000, "-1e100");
    EXPECT_INSTANT("sum(k)", 0, "{} 1");
    fx_load("big{i=\"1\"}", 60000, "1.5e308");
    fx_load("big{i=\"2\"}", 60000, "1.5e308");
    fx_load("big{i=\"3\"}", 60000, "0");
    EXPECT_INSTANT("avg(big)", 0, "{} 1e+308");
    EXPECT_INSTANT("sum(big)", 0, "{} +Inf");
}

Test(aggregate, quantile)
{
    EXPECT_INSTANT("quantile(0.5, r)", 600, "{} 250");
    EXPECT_INSTANT("quantile by (grp) (0, r)", 600, "{grp=\"canary\"} 300\n{grp=\"prod\"} 100");
    EXPECT_INSTANT("quantile(2, r)", 600, "{} +Inf");
    cr_assert_eq(fx_last->nwarnings, 1);
    cr_assert_str_eq(fx_last->warnings[0],
                     "PromQL warning: quantile value should be between 0 and 1, got 2");
}

Test(aggregate, topk_bottomk_order)
{
    EXPECT_INSTANT("topk(2, r)", 600,
                   "r{grp=\"canary\", inst=\"1\", job=\"api\"} 400\n"
                   "r{grp=\"canary\", inst=\"0\", job=\"api\"} 300");
    cr_assert(fx_last->ordered);
    EXPECT_INSTANT("bottomk by (grp) (1, r)", 600,
                   "r{grp=\"canary\", inst=\"0\", job=\"api\"} 300\n"
                   "r{grp=\"prod\", inst=\"0\", job=\"api\"} 100");
    EXPECT_INSTANT("topk(0, r)", 600, "");
    EXPECT_INSTANT("topk(100, r) and on() vector(1)", 600,
                   "r{grp=\"canary\", inst=\"0\", job=\"api\"} 300\n"
                   "r{grp=\"canary\", inst=\"1\", job=\"api\"} 400\n"
                   "r{grp=\"prod\", inst=\"0\", job=\"api\"} 100\n"
                   "r{grp=\"prod\", inst=\"1\", job=\"api\"} 200");
    fx_load("n{k=\"a\"}", 60000, "NaN");
    fx_load("n{k=\"b\"}", 60000, "3");
    fx_load("n{k=\"c\"}", 60000, "1");
    EXPECT_INSTANT("topk(2, n)", 0, "n{k=\"b\"} 3\nn{k=\"c\"} 1");
    EXPECT_INSTANT("bottomk(3, n)", 0, "n{k=\"c\"} 1\nn{k=\"b\"} 3\nn{k=\"a\"} NaN");
}

Test(aggregate, k_per_step_and_errors)
{
    fx_load("kk", 60000, "1 2 3");
    EXPECT_RANGE("count(topk(scalar(kk), r))", 0, 120, 60, "{} 1@0 2@60 3@120");
    EXPECT_INSTANT("topk(NaN, r)", 600, "error: Parameter value is NaN");
    EXPECT_INSTANT("limitk(NaN, r)", 600, "error: Parameter value is NaN");
    EXPECT_INSTANT("topk(1e300, r)", 600, "error: Scalar value 1e+300 overflows int64");
    EXPECT_INSTANT("limit_ratio(NaN, r)", 600, "error: Ratio value is NaN");
}

Test(aggregate, limitk_and_limit_ratio)
{
    EXPECT_INSTANT("count(limitk by (grp) (1, r))", 600, "{} 2");
    EXPECT_INSTANT("count(limitk(3, r))", 600, "{} 3");
    EXPECT_INSTANT("count(limit_ratio(1, r))", 600, "{} 4");
    EXPECT_INSTANT("count(limit_ratio(-1, r))", 600, "{} 4");
    EXPECT_INSTANT("count(limit_ratio(0, r))", 600, "");
    EXPECT_INSTANT("count(limit_ratio(0.3, r) or limit_ratio(-0.7, r))", 600, "{} 4");
    EXPECT_INSTANT("count(limit_ratio(0.3, r) and limit_ratio(-0.7, r))", 600, "");
    EXPECT_INSTANT("count(limit_ratio(1.5, r))", 600, "{} 4");
    cr_assert_eq(fx_last->nwarnings, 1);
    cr_assert_str_eq(fx_last->warnings[0], "PromQL warning: ratio value should be between -1 "
                                           "and 1, got 1.5, capping to 1");
}

Test(aggregate, count_values)
{
    fx_load("v{i=\"1\"}", 60000, "1");
    fx_load("v{i=\"2\"}", 60000, "1");
    fx_load("v{i=\"3\"}", 60000, "0.00001");
    fx_load("v{i=\"4\"}", 60000, "1e6");
    EXPECT_INSTANT("count_values(\"val\", v)", 0,
                   "{val=\"0.00001\"} 1\n{val=\"1\"} 2\n{val=\"1000000\"} 1");
    EXPECT_INSTANT("count_values without (i) (\"val\", v)", 0,
                   "{val=\"0.00001\"} 1\n{val=\"1\"} 2\n{val=\"1000000\"} 1");
    EXPECT_INSTANT("count_values by (i) (\"val\", v{i=\"1\"})", 0, "{i=\"1\", val=\"1\"} 1");
    EXPECT_INSTANT("count_values(\"\", v)", 0, "error: invalid label name \"\"");
    EXPECT_RANGE("count_values(\"val\", kk2 or v{i=\"1\"})", 0, 60, 60, "{val=\"1\"} 1@0 1@60");
}
