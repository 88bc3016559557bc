/* Tests server/promql/kernels.c: each PromQL kernel against values worked out by hand
 * from Prometheus 3's documented rules (extrapolation to the window edges, counter
 * resets, Kahan sums, the mean's overflow switch, quantile interpolation, the classic
 * histogram bucket rules, UTC calendar fields, round half up), plus the edge cases:
 * one sample, NaN, infinities, negative buckets, big values. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "../../../../server/promql/kernels.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
/* A window literal: W({t_ms, v}, ...) gives the array and its length. */
#define W(...) (struct tsdb_sample[]){__VA_ARGS__}, N(((struct tsdb_sample[]){__VA_ARGS__}))

static void near(double got, double want, const char *what)
{
    if (isnan(want)) {
        cr_assert(isnan(got), "%s: got %.17g, want NaN", what, got);
        return;
    }
    if (isinf(want)) {
        cr_assert(got == want, "%s: got %.17g, want %g", what, got, want);
        return;
    }
    double tol = 1e-12 * fmax(1, fabs(want));
    cr_assert(fabs(got - want) <= tol, "%s: got %.17g, want %.17g", what, got, want);
}

/* ---- rate, increase, delta ----------------------------------------------------------- */

static double xrate(const struct tsdb_sample *s, size_t n, int64_t start, int64_t end,
                    bool counter, bool rate)
{
    bool ok = false;
    double v = kern_extrapolated_rate(s, n, start, end, counter, rate, &ok);
    cr_assert(ok, "extrapolated rate should have a result");
    return v;
}

Test(kernels, rate_extrapolates_to_both_edges)
{
    /* Window (0, 60s], samples every 10s from 10s: 50s covered, 10s missing at the
     * start (< 1.1 steps, so extrapolated fully), none at the end: 50 * 60/50. */
    const struct tsdb_sample s[] = {{10000, 10}, {20000, 20}, {30000, 30},
                                    {40000, 40}, {50000, 50}, {60000, 60}};
    near(xrate(s, N(s), 0, 60000, true, false), 60, "increase");
    near(xrate(s, N(s), 0, 60000, true, true), 1, "rate per second");
    near(xrate(s, N(s), 0, 60000, false, false), 60, "delta");
}

Test(kernels, rate_counter_reset_adds_previous_value)
{
    /* 10 20 5 15 every 15s: raw 15-10 = 5, plus 20 lost at the reset = 25, then
     * extrapolated from 45s to 60s. */
    const struct tsdb_sample s[] = {{15000, 10}, {30000, 20}, {45000, 5}, {60000, 15}};
    near(xrate(s, N(s), 0, 60000, true, false), 25.0 * 60 / 45, "increase");
    near(xrate(s, N(s), 0, 60000, true, true), 25.0 / 45, "rate");
    /* delta() knows no resets: 15 - 10 = 5, extrapolated the same way. */
    near(xrate(s, N(s), 0, 60000, false, false), 5.0 * 60 / 45, "delta");
}

Test(kernels, rate_reset_right_after_first_sample)
{
    /* 100 0 10: the drop to 0 adds back 100, so increase is 10 over 40s -> 15 over 60s;
     * the zero point (400s back) is far beyond the edge and changes nothing. */
    const struct tsdb_sample s[] = {{20000, 100}, {40000, 0}, {60000, 10}};
    near(xrate(s, N(s), 0, 60000, true, false), 15, "increase");
}

Test(kernels, rate_series_starting_inside_window_gets_half_step)
{
    /* Window (0, 100s], samples from 50s: the 50s gap is more than 1.1 steps (11s), so
     * only half a step (5s) is added at the start: 5 * 55/50. */
    const struct tsdb_sample s[] = {{50000, 5}, {60000, 6}, {70000, 7},
                                    {80000, 8}, {90000, 9}, {100000, 10}};
    near(xrate(s, N(s), 0, 100000, false, false), 5.5, "delta");
    near(xrate(s, N(s), 0, 100000, true, false), 5.5, "increase");
    /* The same at the end: window (0, 100s] with samples 10s..50s. */
    const struct tsdb_sample e[] = {{10000, 1}, {20000, 2}, {30000, 3}, {40000, 4}, {50000, 5}};
    near(xrate(e, N(e), 0, 100000, false, false), 4.0 * (40 + 10 + 5) / 40, "delta end gap");
}

Test(kernels, rate_counter_never_extrapolates_below_zero)
{
    /* 1 11 21 31 41 from 60s in (0, 100s]: half a step back (5s) would pass zero (the
     * line hits 0 one second before the first sample), so the start is cut to 1s. */
    const struct tsdb_sample s[] = {{60000, 1}, {70000, 11}, {80000, 21}, {90000, 31}, {100000, 41}};
    near(xrate(s, N(s), 0, 100000, true, false), 41, "increase");
    /* delta() has no such floor: 40 * 45/40. */
    near(xrate(s, N(s), 0, 100000, false, false), 45, "delta");
    /* A counter starting at exactly 0 is not extrapolated backwards at all. */
    const struct tsdb_sample z[] = {{10000, 0}, {20000, 10}, {30000, 20}};
    near(xrate(z, N(z), 0, 30000, true, false), 20, "increase from zero");
}

Test(kernels, rate_negative_first_value_skips_zero_floor)
{
    const struct tsdb_sample s[] = {{10000, -5}, {20000, 5}};
    near(xrate(s, N(s), 0, 20000, true, false), 20, "increase");
}

Test(kernels, rate_uses_range_length_for_per_second)
{
    /* An offset window (40s, 100s]: per second divides by the 60s range. */
    const struct tsdb_sample s[] = {{50000, 0}, {70000, 20}, {90000, 40}};
    double inc = xrate(s, N(s), 40000, 100000, true, false);
    near(inc, 40.0 * (40 + 0 + 10) / 40, "increase");
    near(xrate(s, N(s), 40000, 100000, true, true), inc / 60, "rate");
}

Test(kernels, rate_needs_two_samples)
{
    bool ok = true;
    const struct tsdb_sample s[] = {{10000, 1}};
    kern_extrapolated_rate(s, 1, 0, 60000, true, true, &ok);
    cr_assert(!ok);
    ok = true;
    kern_extrapolated_rate(s, 0, 0, 60000, false, false, &ok);
    cr_assert(!ok);
}

Test(kernels, rate_with_nan_sample_is_nan)
{
    const struct tsdb_sample s[] = {{10000, 1}, {20000, NAN}, {30000, 3}};
    near(xrate(s, N(s), 0, 30000, false, false), 3, "delta ignores the middle");
    const struct tsdb_sample e[] = {{10000, 1}, {20000, 2}, {30000, NAN}};
    near(xrate(e, N(e), 0, 30000, true, true), NAN, "rate ending in NaN");
}

/* ---- irate, idelta -------------------------------------------------------------------- */

Test(kernels, irate_and_idelta_use_last_two_samples)
{
    bool ok = false;
    near(kern_instant_rate(W({0, 100}, {10000, 10}, {20000, 30}), true, &ok), 2, "irate");
    cr_assert(ok);
    near(kern_instant_rate(W({0, 100}, {10000, 10}, {20000, 30}), false, &ok), 20, "idelta");
    cr_assert(ok);
}

Test(kernels, irate_counter_reset_takes_last_value)
{
    bool ok = false;
    near(kern_instant_rate(W({10000, 50}, {20000, 20}), true, &ok), 2, "irate after reset");
    near(kern_instant_rate(W({10000, 50}, {20000, 20}), false, &ok), -30, "idelta goes down");
    /* NaN compares false, so the plain difference (NaN) results. */
    near(kern_instant_rate(W({10000, NAN}, {20000, 5}), true, &ok), NAN, "irate NaN");
}

Test(kernels, irate_edge_cases)
{
    bool ok = true;
    kern_instant_rate(W({10000, 1}), true, &ok);
    cr_assert(!ok, "one sample");
    ok = true;
    kern_instant_rate(W({10000, 1}, {10000, 2}), true, &ok);
    cr_assert(!ok, "equal timestamps");
}

/* ---- deriv, predict_linear ---------------------------------------------------------- */

Test(kernels, deriv_slope_per_second)
{
    bool ok = false;
    /* A line 2x + 3 at epoch-sized timestamps: relative times keep it exact. */
    const int64_t t0 = 1700000000000;
    struct tsdb_sample s[5];
    for (int i = 0; i < 5; i++)
        s[i] = (struct tsdb_sample){t0 + i * 15000, 3 + 2 * 15.0 * i};
    near(kern_deriv(s, 5, &ok), 2, "line");
    cr_assert(ok);
    /* (0,1) (1,3) (2,2): cov 1, var 2. */
    near(kern_deriv(W({0, 1}, {1000, 3}, {2000, 2}), &ok), 0.5, "scatter");
    /* Symmetric hump: no trend. */
    near(kern_deriv(W({0, 0}, {10000, 10}, {20000, 0}), &ok), 0, "hump");
}

Test(kernels, deriv_constant_and_infinite)
{
    bool ok = false;
    near(kern_deriv(W({0, 7}, {1000, 7}, {2000, 7}), &ok), 0, "constant");
    near(kern_deriv(W({0, INFINITY}, {1000, INFINITY}), &ok), NAN, "constant Inf");
    ok = true;
    kern_deriv(W({0, 1}), &ok);
    cr_assert(!ok);
}

Test(kernels, predict_linear_from_eval_time)
{
    bool ok = false;
    /* Slope 1/s through (0s,0) (10s,10) (20s,20). */
    near(kern_predict_linear(W({0, 0}, {10000, 10}, {20000, 20}), 20000, 30, &ok), 50, "at 20s");
    cr_assert(ok);
    /* The intercept is taken at the evaluation time, not the last sample. */
    near(kern_predict_linear(W({0, 0}, {10000, 10}, {20000, 20}), 25000, 30, &ok), 55, "at 25s");
    near(kern_predict_linear(W({0, 0}, {10000, 10}, {20000, 20}), 20000, -20, &ok), 0, "backwards");
    near(kern_predict_linear(W({0, 4}, {10000, 4}), 20000, 3600, &ok), 4, "flat");
    ok = true;
    kern_predict_linear(W({0, 1}), 0, 1, &ok);
    cr_assert(!ok);
}

/* ---- double_exponential_smoothing ---------------------------------------------------- */

Test(kernels, double_exp_smoothing_recurrence)
{
    bool ok = false;
    /* sf = tf = 0.5 on 1 2 4: level 1, trend 1; i=1: level 0.5*2 + 0.5*(1+1) = 2;
     * i=2: trend 0.5*(2-1) + 0.5*1 = 1, level 0.5*4 + 0.5*(2+1) = 3.5. */
    near(kern_double_exp_smoothing(W({0, 1}, {1, 2}, {2, 4}), 0.5, 0.5, &ok), 3.5, "three");
    cr_assert(ok);
    /* One more 4: trend 0.5*(3.5-2) + 0.5*1 = 1.25, level 2 + 0.5*(3.5+1.25). */
    near(kern_double_exp_smoothing(W({0, 1}, {1, 2}, {2, 4}, {3, 4}), 0.5, 0.5, &ok), 4.375,
         "four");
    /* Two samples: the trend is the first difference. level = sf*v1 + (1-sf)*(v0+d). */
    near(kern_double_exp_smoothing(W({0, 10}, {1, 20}), 0.2, 0.9, &ok), 20, "two");
    /* A straight line is followed exactly whatever the factors. */
    near(kern_double_exp_smoothing(W({0, 0}, {1, 10}, {2, 20}, {3, 30}), 0.3, 0.7, &ok), 30,
         "line");
    ok = true;
    kern_double_exp_smoothing(W({0, 1}), 0.5, 0.5, &ok);
    cr_assert(!ok);
}

/* ---- changes, resets ----------------------------------------------------------------- */

Test(kernels, changes_counts_value_changes_with_nan_rules)
{
    near(kern_changes(W({1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, NAN}, {6, NAN}, {7, 3})), 3, "mixed");
    near(kern_changes(W({1, 5})), 0, "one sample");
    near(kern_changes(W({1, 0}, {2, NAN}, {3, 0})), 2, "0 NaN 0");
    near(kern_changes(NULL, 0), 0, "empty");
}

Test(kernels, resets_counts_drops)
{
    near(kern_resets(W({1, 5}, {2, 3}, {3, 3}, {4, 4}, {5, 1})), 2, "two drops");
    near(kern_resets(W({1, 5}, {2, NAN}, {3, 1})), 0, "NaN never compares lower");
    near(kern_resets(W({1, 5})), 0, "one sample");
}

/* ---- *_over_time ---------------------------------------------------------------------- */

Test(kernels, avg_and_sum_over_time_basic)
{
    near(kern_avg_over_time(W({1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5})), 3, "avg");
    near(kern_sum_over_time(W({1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5})), 15, "sum");
    near(kern_avg_over_time(W({1, -7.5})), -7.5, "avg single");
}

Test(kernels, kahan_keeps_small_terms_next_to_huge_ones)
{
    /* Naive summation gives 0 (the 3 and 5 vanish into 1e100). */
    near(kern_sum_over_time(W({1, 3}, {2, 1e100}, {3, 5}, {4, -1e100})), 8, "sum");
    near(kern_avg_over_time(W({1, 3}, {2, 1e100}, {3, 5}, {4, -1e100})), 2, "avg");
    struct kern_ksum k = {0, 0};
    kern_ksum_add(&k, 1e100);
    kern_ksum_add(&k, 1);
    kern_ksum_add(&k, -1e100);
    cr_assert_eq(kern_ksum_value(&k), 1);
}

Test(kernels, avg_over_time_is_exact_for_repeated_values)
{
    struct tsdb_sample s[13];
    for (int i = 0; i < 13; i++)
        s[i] = (struct tsdb_sample){i, 52};
    for (size_t n = 1; n <= 13; n++)
        cr_assert_eq(kern_avg_over_time(s, n), 52, "n=%zu", n);
}

Test(kernels, avg_over_time_switches_to_incremental_mean_on_overflow)
{
    cr_assert_eq(kern_avg_over_time(W({1, 1e308}, {2, 1e308})), 1e308);
    near(kern_avg_over_time(W({1, -1e308}, {2, -1e308}, {3, -1e308})), -1e308, "negative");
    near(kern_avg_over_time(W({1, 1.5e308}, {2, 1.5e308}, {3, -1.5e308})), 0.5e308, "mixed");
    near(kern_avg_over_time(W({1, -1e308}, {2, 1e308})), 0, "cancel");
    /* The plain sum overflows where the mean did not. */
    near(kern_sum_over_time(W({1, 1e308}, {2, 1e308})), INFINITY, "sum overflows");
}

Test(kernels, avg_and_sum_over_time_infinities_and_nan)
{
    near(kern_avg_over_time(W({1, 1}, {2, 2}, {3, INFINITY})), INFINITY, "ends Inf");
    near(kern_avg_over_time(W({1, INFINITY})), INFINITY, "single Inf");
    near(kern_avg_over_time(W({1, INFINITY}, {2, 0}, {3, INFINITY})), INFINITY, "Inf 0 Inf");
    near(kern_avg_over_time(W({1, -INFINITY}, {2, 0}, {3, -INFINITY})), -INFINITY, "-Inf");
    near(kern_avg_over_time(W({1, 1}, {2, INFINITY}, {3, -INFINITY})), NAN, "Inf -Inf");
    near(kern_avg_over_time(W({1, 1}, {2, NAN}, {3, 3})), NAN, "NaN");
    near(kern_sum_over_time(W({1, INFINITY}, {2, 1})), INFINITY, "sum Inf");
    near(kern_sum_over_time(W({1, INFINITY}, {2, -INFINITY})), NAN, "sum Inf-Inf");
    near(kern_sum_over_time(W({1, 2}, {2, NAN})), NAN, "sum NaN");
}

Test(kernels, mean_accumulator_for_avg_aggregation)
{
    struct kern_mean m = {0};
    near(kern_mean_value(&m), NAN, "empty");
    const double v[] = {10, 20, 30, 40};
    for (size_t i = 0; i < N(v); i++)
        kern_mean_add(&m, v[i]);
    cr_assert_eq(kern_mean_value(&m), 25);
    struct kern_mean big = {0};
    kern_mean_add(&big, 9e307);
    kern_mean_add(&big, 9e307);
    kern_mean_add(&big, 9e307);
    cr_assert(big.incremental);
    near(kern_mean_value(&big), 9e307, "overflow-safe");
}

Test(kernels, min_max_over_time_skip_nan)
{
    near(kern_min_over_time(W({1, NAN}, {2, 3}, {3, 1}, {4, NAN})), 1, "min");
    near(kern_max_over_time(W({1, NAN}, {2, 3}, {3, 1}, {4, NAN})), 3, "max");
    near(kern_min_over_time(W({1, 2}, {2, NAN}, {3, 1})), 1, "min NaN in the middle");
    near(kern_max_over_time(W({1, NAN}, {2, NAN})), NAN, "all NaN");
    near(kern_min_over_time(W({1, -INFINITY}, {2, 0})), -INFINITY, "min -Inf");
    near(kern_max_over_time(W({1, 4})), 4, "single");
}

Test(kernels, ts_of_min_max_over_time_latest_tie_and_nan)
{
    /* Times in ms, answers in seconds; on a tie the later sample wins. */
    near(kern_ts_of_min_over_time(W({1000, 3}, {2000, 1}, {3000, 4}, {4000, 1})), 4, "min tie");
    near(kern_ts_of_max_over_time(W({1000, 9}, {2000, 1}, {3000, 9}, {4000, 2})), 3, "max tie");
    /* A leading NaN gives way to the first number; a later NaN never wins. */
    near(kern_ts_of_min_over_time(W({1000, NAN}, {2500, 7}, {3000, NAN}, {5000, 8})), 2.5,
         "min NaN");
    near(kern_ts_of_max_over_time(W({1000, NAN}, {2500, 7}, {3000, NAN}, {5000, 6})), 2.5,
         "max NaN");
    /* Only NaN: each replaces the one before, so the last. */
    near(kern_ts_of_max_over_time(W({1000, NAN}, {2000, NAN})), 2, "all NaN");
    near(kern_ts_of_min_over_time(W({1000, -INFINITY}, {2000, 0})), 1, "-Inf");
    near(kern_ts_of_max_over_time(W({30159, 5})), 30.159, "single, ms kept");
    near(kern_ts_of_min_over_time(NULL, 0), NAN, "empty");
}

Test(kernels, stddev_stdvar_over_time_population)
{
    near(kern_stdvar_over_time(W({1, 2}, {2, 4}, {3, 4}, {4, 4}, {5, 5}, {6, 5}, {7, 7}, {8, 9})),
         4, "stdvar");
    near(kern_stddev_over_time(W({1, 2}, {2, 4}, {3, 4}, {4, 4}, {5, 5}, {6, 5}, {7, 7}, {8, 9})),
         2, "stddev");
    near(kern_stdvar_over_time(W({1, 42})), 0, "single");
    near(kern_stddev_over_time(W({1, 1}, {2, NAN})), NAN, "NaN");
    near(kern_stdvar_over_time(W({1, 1}, {2, INFINITY})), NAN, "Inf");
    /* A big offset: Welford still sees the spread of 4 (a naive sum of squares, about
     * 8e18 against 32, would be lost entirely); Prometheus's arithmetic is off in the
     * 9th digit here (3.99999997764...), so only that much is asserted. */
    const double o = 1e9;
    double var = kern_stdvar_over_time(W({1, o + 2}, {2, o + 4}, {3, o + 4}, {4, o + 4},
                                         {5, o + 5}, {6, o + 5}, {7, o + 7}, {8, o + 9}));
    cr_assert(fabs(var - 4) < 1e-7, "offset: got %.17g", var);
}

Test(kernels, var_accumulator_for_stddev_aggregation)
{
    struct kern_var v = {0};
    near(kern_var_stdvar(&v), NAN, "empty");
    const double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    for (size_t i = 0; i < N(x); i++)
        kern_var_add(&v, x[i]);
    near(kern_var_stdvar(&v), 4, "stdvar");
    near(kern_var_stddev(&v), 2, "stddev");
    struct kern_var one = {0};
    kern_var_add(&one, 3);
    cr_assert_eq(kern_var_stdvar(&one), 0);
    struct kern_var inf = {0};
    kern_var_add(&inf, INFINITY);
    near(kern_var_stdvar(&inf), NAN, "single Inf");
    struct kern_var nan = {0};
    kern_var_add(&nan, 1);
    kern_var_add(&nan, NAN);
    near(kern_var_stddev(&nan), NAN, "NaN");
}

Test(kernels, mad_over_time)
{
    double scratch[16];
    near(kern_mad_over_time(W({1, 1}, {2, 2}, {3, 3}, {4, 4}, {5, 5}), scratch), 1, "1..5");
    /* Median 2; deviations 1 1 0 0 2 4 7 -> median 1. */
    near(kern_mad_over_time(W({1, 1}, {2, 1}, {3, 2}, {4, 2}, {5, 4}, {6, 6}, {7, 9}), scratch), 1,
         "skewed");
    /* Even count: median 2.5, deviations 1.5 .5 .5 1.5 -> 1. */
    near(kern_mad_over_time(W({1, 1}, {2, 2}, {3, 3}, {4, 4}), scratch), 1, "even");
    near(kern_mad_over_time(W({1, 8}), scratch), 0, "single");
    near(kern_mad_over_time(W({1, 3}, {2, 3}, {3, 3}), scratch), 0, "equal");
    /* Without the NaN rule the NaN would sort first and give 0.5. */
    near(kern_mad_over_time(W({1, 1}, {2, 2}, {3, NAN}, {4, 4}), scratch), NAN, "NaN");
    near(kern_mad_over_time(W({1, 1}, {2, INFINITY}, {3, 3}), scratch), NAN, "Inf: the median itself is Inf*0");
}

Test(kernels, quantile_over_time_leaves_window_alone)
{
    struct tsdb_sample s[] = {{1, 4}, {2, 1}, {3, 3}, {4, 2}};
    double scratch[4];
    near(kern_quantile_over_time(0.5, s, 4, scratch), 2.5, "median");
    near(kern_quantile_over_time(0.25, s, 4, scratch), 1.75, "q .25");
    cr_assert_eq(s[0].v, 4, "window untouched");
    near(kern_quantile_over_time(2, s, 4, scratch), INFINITY, "q > 1");
}

/* ---- quantile -------------------------------------------------------------------------- */

Test(kernels, quantile_interpolates_between_ranks)
{
    double a[] = {4, 1, 3, 2};
    near(kern_quantile(0.5, a, 4), 2.5, "median");
    cr_assert(a[0] == 1 && a[3] == 4, "sorted in place");
    double b[] = {4, 1, 3, 2};
    near(kern_quantile(0, b, 4), 1, "q 0 -> min");
    near(kern_quantile(1, b, 4), 4, "q 1 -> max");
    double c[11];
    for (int i = 0; i < 11; i++)
        c[i] = 10 - i;
    near(kern_quantile(0.9, c, 11), 9, "exact rank");
    near(kern_quantile(0.95, c, 11), 9.5, "between ranks");
    double one[] = {7};
    near(kern_quantile(0.3, one, 1), 7, "single");
}

Test(kernels, quantile_edge_rules)
{
    double a[] = {1, 2, 3};
    near(kern_quantile(-0.1, a, 3), -INFINITY, "q < 0");
    near(kern_quantile(1.1, a, 3), INFINITY, "q > 1");
    near(kern_quantile(NAN, a, 3), NAN, "q NaN");
    near(kern_quantile(0.5, a, 0), NAN, "empty");
    near(kern_quantile(NAN, a, 0), NAN, "empty and NaN q");
    /* NaN values sort first. */
    double n[] = {2, NAN, 1};
    near(kern_quantile(0, n, 3), NAN, "NaN is the lowest");
    near(kern_quantile(1, n, 3), 2, "max skips it");
    /* Both neighbours always enter the weighted sum: 0 * Inf is NaN. */
    double inf[] = {1, INFINITY};
    near(kern_quantile(0, inf, 2), NAN, "weight 0 against Inf");
    near(kern_quantile(0.5, inf, 2), INFINITY, "halfway to Inf");
    near(kern_quantile(1, inf, 2), NAN, "even at the top: Inf + Inf * 0");
}

/* ---- histogram_quantile --------------------------------------------------------------- */

static double hq(double q, struct kern_bucket *b, size_t n, bool *fixed)
{
    return kern_histogram_quantile(q, b, n, fixed);
}

Test(kernels, histogram_quantile_interpolates_in_bucket)
{
    /* Given out of order: le 0.1:10 0.5:30 1:40 +Inf:50. */
    struct kern_bucket b[] = {{1, 40}, {INFINITY, 50}, {0.1, 10}, {0.5, 30}};
    bool fixed = true;
    /* rank 25 lies in (0.1, 0.5] holding 20, 15 into it. */
    near(hq(0.5, b, 4, &fixed), 0.4, "q .5");
    cr_assert(!fixed);
    cr_assert(b[0].le == 0.1 && isinf(b[3].le), "sorted in place");
    /* First bucket: lower bound 0 as its le is positive. */
    near(hq(0.1, b, 4, &fixed), 0.05, "q .1");
    near(hq(0, b, 4, &fixed), 0, "q 0");
    /* rank 45 is past le=1 (40): the +Inf bucket gives the second-highest le. */
    near(hq(0.9, b, 4, &fixed), 1, "q .9");
    near(hq(1, b, 4, &fixed), 1, "q 1");
}

Test(kernels, histogram_quantile_negative_and_zero_buckets)
{
    struct kern_bucket b[] = {{-1, 5}, {0, 10}, {1, 20}, {INFINITY, 20}};
    bool fixed;
    /* In the lowest bucket with le <= 0 there is no lower bound: its le is returned. */
    near(hq(0.1, b, 4, &fixed), -1, "lowest negative");
    near(hq(0.4, b, 4, &fixed), -0.4, "(-1, 0]");
    near(hq(0.75, b, 4, &fixed), 0.5, "(0, 1]");
    struct kern_bucket z[] = {{0, 4}, {10, 8}, {INFINITY, 8}};
    near(hq(0.25, z, 3, &fixed), 0, "lowest le 0");
    near(hq(0.75, z, 3, &fixed), 5, "(0, 10]");
}

Test(kernels, histogram_quantile_nan_cases)
{
    bool fixed = true;
    struct kern_bucket noinf[] = {{1, 5}, {2, 10}};
    near(hq(0.5, noinf, 2, &fixed), NAN, "no +Inf bucket");
    cr_assert(!fixed);
    struct kern_bucket only[] = {{INFINITY, 10}};
    near(hq(0.5, only, 1, &fixed), NAN, "only +Inf");
    struct kern_bucket zero[] = {{1, 0}, {INFINITY, 0}};
    near(hq(0.5, zero, 2, &fixed), NAN, "no observations");
    struct kern_bucket ok[] = {{1, 5}, {INFINITY, 10}};
    near(hq(NAN, ok, 2, &fixed), NAN, "q NaN");
    near(hq(-0.5, ok, 2, &fixed), -INFINITY, "q < 0");
    near(hq(1.5, ok, 2, &fixed), INFINITY, "q > 1");
    near(hq(0.5, ok, 0, &fixed), NAN, "no buckets");
    /* Two +Inf rows merge into one bucket: fewer than 2 remain. */
    struct kern_bucket twoinf[] = {{INFINITY, 3}, {INFINITY, 4}};
    near(hq(0.5, twoinf, 2, &fixed), NAN, "duplicate +Inf only");
}

Test(kernels, histogram_quantile_fixes_monotonicity)
{
    struct kern_bucket b[] = {{1, 10}, {2, 8}, {3, 15}, {INFINITY, 15}};
    bool fixed = false;
    /* Counts become 10 10 15 15. */
    near(hq(0.5, b, 4, &fixed), 0.75, "q .5");
    cr_assert(fixed, "reported");
    struct kern_bucket c[] = {{1, 10}, {2, 8}, {3, 15}, {INFINITY, 15}};
    near(hq(0.8, c, 4, &fixed), 2.4, "q .8 skips the flattened bucket");
    cr_assert(fixed);
    /* NULL flag pointer is allowed. */
    struct kern_bucket d[] = {{1, 10}, {2, 8}, {INFINITY, 15}};
    near(kern_histogram_quantile(0.2, d, 3, NULL), 0.3, "NULL flag");
}

static double hf(double lo, double up, const struct kern_bucket *in, size_t n)
{
    struct kern_bucket b[8];
    cr_assert(n <= 8);
    memcpy(b, in, n * sizeof *b);
    return kern_bucket_fraction(lo, up, b, n);
}

Test(kernels, bucket_fraction_interpolates_between_bounds)
{
    /* Given out of order; cumulative le 1:2 2:6 4:8 +Inf:10. The first bucket starts at
     * 0 as its le is positive. */
    const struct kern_bucket b[] = {{4, 8}, {INFINITY, 10}, {1, 2}, {2, 6}};
    near(hf(0, 1.5, b, 4), 0.4, "(0,1] whole + half of (1,2]");
    near(hf(1.5, 3, b, 4), 0.3, "half of (1,2] + half of (2,4]");
    near(hf(0.5, 1, b, 4), 0.1, "upper on a boundary");
    near(hf(1, 2, b, 4), 0.4, "both on boundaries");
    near(hf(-INFINITY, 1, b, 4), 0.2, "from -Inf");
    near(hf(3, INFINITY, b, 4), 0.3, "to +Inf takes the +Inf bucket");
    near(hf(5, 6, b, 4), 0, "inside the +Inf bucket nothing is interpolated");
    near(hf(-5, -1, b, 4), 0, "below every bucket");
    near(hf(-INFINITY, INFINITY, b, 4), 1, "everything");
    near(hf(2, 2, b, 4), 0, "empty range");
    near(hf(3, 2, b, 4), 0, "reversed range");
}

Test(kernels, bucket_fraction_negative_first_bucket_reaches_minus_inf)
{
    /* le -3:10 -2:12 -1:15 +Inf:100: the first bucket is (-Inf, -3]. */
    const struct kern_bucket b[] = {{-3, 10}, {-2, 12}, {-1, 15}, {INFINITY, 100}};
    /* -4 lies in (-Inf, -3]: all 10 of it are below -4 as far as we can tell. */
    near(hf(-4, -2, b, 4), 0.02, "lower in the -Inf bucket");
    near(hf(-INFINITY, -1.5, b, 4), 0.135, "from -Inf, half of (-2,-1]");
    near(hf(0, 1, b, 4), 0, "inside the +Inf bucket");
    /* Equal bounds are merged: two le=-3 entries add up. */
    const struct kern_bucket d[] = {{-3, 4}, {-3, 6}, {-2, 12}, {INFINITY, 20}};
    near(hf(-2.5, INFINITY, d, 4), 0.45, "merged (-3 -> 10), half of (-3,-2], the rest");
}

Test(kernels, bucket_fraction_nan_cases)
{
    const struct kern_bucket noinf[] = {{1, 5}, {2, 10}};
    near(hf(0, 1, noinf, 2), NAN, "no +Inf bucket");
    const struct kern_bucket zero[] = {{1, 0}, {INFINITY, 0}};
    near(hf(0, 1, zero, 2), NAN, "no observations");
    near(hf(1, 0, zero, 2), NAN, "no observations beats a reversed range");
    const struct kern_bucket b[] = {{1, 1}, {INFINITY, 100}};
    near(hf(NAN, 1, b, 2), NAN, "NaN lower");
    near(hf(0, NAN, b, 2), NAN, "NaN upper");
    near(kern_bucket_fraction(0, 1, NULL, 0), NAN, "no buckets");
    const struct kern_bucket only[] = {{INFINITY, 100}};
    near(hf(0, 1, only, 1), 0, "only +Inf: starts at 0, nothing interpolated");
}

Test(kernels, histogram_quantile_ignores_float_noise_and_merges_equal_le)
{
    /* A relative dip of 1e-15 is float noise: flattened without reporting. */
    struct kern_bucket b[] = {{1, 1e15}, {2, 1e15 - 1}, {INFINITY, 2e15}};
    bool fixed = true;
    near(hq(0.25, b, 3, &fixed), 0.5, "q .25");
    cr_assert(!fixed);
    struct kern_bucket d[] = {{1, 3}, {1, 2}, {INFINITY, 10}};
    near(hq(0.25, d, 3, &fixed), 0.5, "duplicate le summed to 5");
}

/* ---- dates ------------------------------------------------------------------------------ */

struct date_case {
    double ts;
    double year, month, dom, dow, doy, dim, hour, minute;
};

Test(kernels, date_functions_utc)
{
    static const struct date_case cases[] = {
        {0, 1970, 1, 1, 4, 1, 31, 0, 0},                   /* the epoch, a Thursday */
        {1136239445, 2006, 1, 2, 1, 2, 31, 22, 4},         /* Mon 2006-01-02 22:04:05 */
        {1456790399, 2016, 2, 29, 1, 60, 29, 23, 59},      /* leap day, last second */
        {1456790400, 2016, 3, 1, 2, 61, 31, 0, 0},         /* next day */
        {1483191420, 2016, 12, 31, 6, 366, 31, 13, 37},    /* 366th day */
        {4106332800, 2100, 2, 15, 1, 46, 28, 0, 0},        /* 2100 is not leap */
        {950572800, 2000, 2, 15, 2, 46, 29, 0, 0},         /* 2000 is leap */
        {-2205487800, 1900, 2, 10, 6, 41, 28, 12, 30},     /* before the epoch */
        {-1, 1969, 12, 31, 3, 365, 31, 23, 59},            /* one second before */
        {-0.5, 1970, 1, 1, 4, 1, 31, 0, 0},                /* truncated toward zero */
        {1e10 + 0.9, 2286, 11, 20, 6, 324, 30, 17, 46},    /* fraction dropped */
    };
    for (size_t i = 0; i < N(cases); i++) {
        const struct date_case *c = &cases[i];
        cr_assert_eq(kern_year(c->ts), c->year, "case %zu year %g", i, kern_year(c->ts));
        cr_assert_eq(kern_month(c->ts), c->month, "case %zu month", i);
        cr_assert_eq(kern_day_of_month(c->ts), c->dom, "case %zu dom", i);
        cr_assert_eq(kern_day_of_week(c->ts), c->dow, "case %zu dow", i);
        cr_assert_eq(kern_day_of_year(c->ts), c->doy, "case %zu doy", i);
        cr_assert_eq(kern_days_in_month(c->ts), c->dim, "case %zu dim", i);
        cr_assert_eq(kern_hour(c->ts), c->hour, "case %zu hour", i);
        cr_assert_eq(kern_minute(c->ts), c->minute, "case %zu minute", i);
    }
}

Test(kernels, date_functions_non_finite)
{
    const double bad[] = {NAN, INFINITY, -INFINITY, 1e300};
    for (size_t i = 0; i < N(bad); i++) {
        cr_assert(isnan(kern_year(bad[i])));
        cr_assert(isnan(kern_month(bad[i])));
        cr_assert(isnan(kern_day_of_month(bad[i])));
        cr_assert(isnan(kern_day_of_week(bad[i])));
        cr_assert(isnan(kern_day_of_year(bad[i])));
        cr_assert(isnan(kern_days_in_month(bad[i])));
        cr_assert(isnan(kern_hour(bad[i])));
        cr_assert(isnan(kern_minute(bad[i])));
    }
}

/* ---- round, sgn ------------------------------------------------------------------------- */

Test(kernels, round_half_up_to_multiple)
{
    cr_assert_eq(kern_round(2.5, 1), 3);
    cr_assert_eq(kern_round(-2.5, 1), -2, "half up, not away from zero");
    cr_assert_eq(kern_round(2.4, 1), 2);
    near(kern_round(1.234, 0.1), 1.2, "tenths");
    cr_assert_eq(kern_round(5, 10), 10);
    cr_assert_eq(kern_round(-5, 10), 0);
    cr_assert_eq(kern_round(17, 5), 15);
    cr_assert(isnan(kern_round(NAN, 1)));
    cr_assert_eq(kern_round(INFINITY, 1), INFINITY);
}

Test(kernels, sgn)
{
    cr_assert_eq(kern_sgn(-3.5), -1);
    cr_assert_eq(kern_sgn(4), 1);
    cr_assert_eq(kern_sgn(0), 0);
    cr_assert(signbit(kern_sgn(-0.0)), "-0 stays -0");
    cr_assert(isnan(kern_sgn(NAN)));
    cr_assert_eq(kern_sgn(-INFINITY), -1);
}
