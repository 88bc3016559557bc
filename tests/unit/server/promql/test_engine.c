/* Tests server/promql/engine.c: result shapes (vector, scalar, string, matrix; range
 * results sorted by labels, a scalar as one series without labels), the limits (points
 * per range query, samples from the querier and held in memory, timeout), bad range
 * parameters, and delayed __name__ removal with its final merge and duplicate check. */
#include "eval_fixture.h"

static void init(void)
{
    fx_reset();
    fx_load("x{a=\"2\"}", 60000, "0+10x10");
    fx_load("x{a=\"1\"}", 60000, "5x10");
}

TestSuite(engine, .init = init, .fini = fx_fini);

Test(engine, defaults)
{
    struct promql_opts o;
    promql_opts_default(&o);
    cr_assert_eq(o.lookback_ms, 300000);
    cr_assert_eq(o.max_samples, 50000000);
    cr_assert_eq(o.timeout_ms, 120000);
    cr_assert_eq(o.max_points, 11000);
    cr_assert_eq(o.default_subquery_step_ms, 60000);
    cr_assert_not(o.delayed_name_removal);
    promql_result_free(NULL);
}

Test(engine, result_shapes)
{
    EXPECT_INSTANT("x", 60, "x{a=\"1\"} 5\nx{a=\"2\"} 10");
    cr_assert_eq(fx_last->type, PT_VECTOR);
    cr_assert_eq(fx_last->series[0].points[0].t, 60000);
    EXPECT_INSTANT("1", 60, "scalar 1");
    cr_assert_eq(fx_last->scalar.t, 60000);
    EXPECT_RANGE("x", 0, 120, 60, "x{a=\"1\"} 5@0 5@60 5@120\nx{a=\"2\"} 0@0 10@60 20@120");
    cr_assert_eq(fx_last->type, PT_MATRIX);
    /* sorted by labels, not by evaluation order */
    cr_assert_str_eq(fx_last->series[0].labels[1].value.p, "1");
    cr_assert_eq(fx_last->samples_loaded, 6);
    EXPECT_RANGE("time()", 0, 120, 60, "{} 0@0 60@60 120@120");
}

Test(engine, range_query_parameters)
{
    EXPECT_RANGE("x", 0, 11001, 1, "error: exceeded maximum resolution of 11,000 points per "
                                   "timeseries. Try decreasing the query resolution (?step=XX)");
    cr_assert_eq(fx_err.code, VG_ETOOLARGE);
    fx_range("time()", 0, 11000, 1); /* 11,001 points are still fine */
    cr_assert_not_null(fx_last);
    cr_assert_eq(fx_last->series[0].npoints, 11001);
    EXPECT_RANGE("x", 0, 60, 0, "error: zero or negative query resolution step widths are not "
                               "accepted. Try a positive integer");
    EXPECT_RANGE("x", 60, 0, 1, "error: end timestamp must not be before start time");
    EXPECT_RANGE("x[5m]", 0, 60, 60, "error: invalid expression type \"range vector\" for range "
                                    "query, must be Scalar or instant Vector");
    EXPECT_RANGE("\"s\"", 0, 60, 60, "error: invalid expression type \"string\" for range query, "
                                    "must be Scalar or instant Vector");
    cr_assert_eq(fx_err.code, VG_EINVAL);
}

Test(engine, max_samples_from_querier)
{
    fx_opts.max_samples = 15;
    EXPECT_INSTANT("sum_over_time(x[20m])", 600,
                   "error: query processing would load too many samples into memory in query "
                   "execution");
    cr_assert_eq(fx_err.code, VG_ETOOLARGE);
    fx_opts.max_samples = 30;
    EXPECT_INSTANT("sum_over_time(x[20m])", 600, "{a=\"1\"} 55\n{a=\"2\"} 550");
}

Test(engine, max_samples_in_memory)
{
    /* few samples loaded, many points held: 2 series x 601 steps */
    fx_opts.max_samples = 1000;
    EXPECT_RANGE("x", 0, 600, 1,
                 "error: query processing would load too many samples into memory in query "
                 "execution");
    fx_opts.max_samples = 100;
    EXPECT_INSTANT("count_over_time(vector(1)[1h:1s])", 600,
                   "error: query processing would load too many samples into memory in query "
                   "execution");
}

Test(engine, timeout)
{
    fx.sleep_ms = 20;
    fx_opts.timeout_ms = 5;
    EXPECT_INSTANT("x + x", 60, "error: query timed out in expression evaluation");
    cr_assert_eq(fx_err.code, VG_EOVERLOAD);
    fx.sleep_ms = 0;
    fx_opts.timeout_ms = 1;
    /* a long computation without storage reads is stopped as well */
    EXPECT_RANGE("count_over_time((vector(1) * 2 > 1)[1d:1s])", 0, 10000, 1,
                 "error: query timed out in expression evaluation");
}

Test(engine, delayed_name_removal)
{
    fx_load("m1_total{k=\"v\"}", 60000, "0+1x10");
    fx_load("m2_total{k=\"v\"}", 60000, "0+2x10");
    EXPECT_INSTANT("rate({k=\"v\"}[5m])", 600,
                   "error: vector cannot contain metrics with the same labelset");
    fx_opts.delayed_name_removal = true;
    EXPECT_INSTANT("label_replace(rate({k=\"v\"}[5m]), \"n\", \"$1\", \"__name__\", \"(.*)\")", 600,
                   "{k=\"v\", n=\"m1_total\"} 0.01666666667\n{k=\"v\", n=\"m2_total\"} 0.03333333333");
    EXPECT_INSTANT("rate({k=\"v\"}[5m])", 600,
                   "error: vector cannot contain metrics with the same labelset");
    EXPECT_INSTANT("sum by (__name__) (rate(m1_total[5m]))", 600, "{} 0.01666666667");
    EXPECT_INSTANT("label_replace(rate(m1_total[5m]), \"__name__\", \"r_$1\", \"__name__\", \"(.+)\")",
                   600, "r_m1_total{k=\"v\"} 0.01666666667");
    /* series that only meet once __name__ is gone are merged when steps do not overlap */
    fx_load("p", 60000, "1 _ _");
    fx_load("q", 60000, "_ _ 3");
    fx_opts.lookback_ms = 30000;
    EXPECT_RANGE("-p or -q", 0, 120, 60, "{} -1@0 -3@120");
}
