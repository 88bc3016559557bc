/* kernels: the numeric heart of PromQL functions, as pure functions over arrays, so each
 * can be tested on its own against Prometheus's documented behaviour. The evaluator
 * (eval.c / funcs.c) finds the windows and series; these compute the numbers.
 *
 * A window is the samples of one series with range_start < t <= range_end (Prometheus 3
 * left-open ranges), in time order, staleness markers already removed. Times are ms,
 * results use seconds where Prometheus does (rates are per second). Functions that can
 * have no result set *ok = false. Thread-safe, no allocation unless stated. */
#ifndef PROMQL_KERNELS_H
#define PROMQL_KERNELS_H

#include "../../storage/tsdb/tsdb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* rate(), increase() and delta() with Prometheus's extrapolation to the window edges
 * (extrapolatedRate): counter resets handled when is_counter; per second when is_rate.
 * Fewer than 2 samples: *ok = false. */
double kern_extrapolated_rate(const struct tsdb_sample *s, size_t n, int64_t range_start,
                              int64_t range_end, bool is_counter, bool is_rate, bool *ok);
/* irate() (is_rate) and idelta(): from the last two samples. < 2 samples: *ok = false. */
double kern_instant_rate(const struct tsdb_sample *s, size_t n, bool is_rate, bool *ok);
/* deriv(): slope per second of the least-squares line (times relative to the first
 * sample for precision). < 2 samples: *ok = false. */
double kern_deriv(const struct tsdb_sample *s, size_t n, bool *ok);
/* predict_linear(v, t): value of the regression line at eval_t + duration_s, with the
 * intercept taken at eval_t as Prometheus does. < 2 samples: *ok = false. */
double kern_predict_linear(const struct tsdb_sample *s, size_t n, int64_t eval_t,
                           double duration_s, bool *ok);
/* double_exponential_smoothing(v, sf, tf) (formerly holt_winters). sf and tf must be in
 * (0, 1): the caller reports that error. < 2 samples: *ok = false. */
double kern_double_exp_smoothing(const struct tsdb_sample *s, size_t n, double sf, double tf,
                                 bool *ok);
double kern_changes(const struct tsdb_sample *s, size_t n);
double kern_resets(const struct tsdb_sample *s, size_t n);

/* *_over_time (n >= 1). avg and sum use Kahan summation as Prometheus 3 does; avg
 * switches to an incremental mean when the sum would overflow. stddev/stdvar are
 * population figures (Welford with Kahan). */
double kern_avg_over_time(const struct tsdb_sample *s, size_t n);
double kern_sum_over_time(const struct tsdb_sample *s, size_t n);
double kern_min_over_time(const struct tsdb_sample *s, size_t n); /* NaN only if all NaN */
double kern_max_over_time(const struct tsdb_sample *s, size_t n);
double kern_stddev_over_time(const struct tsdb_sample *s, size_t n);
double kern_stdvar_over_time(const struct tsdb_sample *s, size_t n);
/* ts_of_min_over_time / ts_of_max_over_time: the time in seconds of the minimum /
 * maximum, the latest one on ties; NaN values lose to numbers. n == 0: NaN. */
double kern_ts_of_min_over_time(const struct tsdb_sample *s, size_t n);
double kern_ts_of_max_over_time(const struct tsdb_sample *s, size_t n);
/* mad_over_time: median absolute deviation; NaN if any value is NaN (Prometheus 3).
 * Uses scratch (n doubles, caller-provided). */
double kern_mad_over_time(const struct tsdb_sample *s, size_t n, double *scratch);
/* quantile_over_time(q, ...): uses scratch (n doubles). */
double kern_quantile_over_time(double q, const struct tsdb_sample *s, size_t n, double *scratch);

/* Quantile of values (sorted in place), Prometheus's rules: q < 0 -> -Inf, q > 1 -> +Inf,
 * NaN q -> NaN, n == 0 -> NaN; linear interpolation between closest ranks. */
double kern_quantile(double q, double *values, size_t n);

/* Kahan-compensated running sum: sum += v. */
struct kern_ksum {
    double sum, c;
};
void kern_ksum_add(struct kern_ksum *k, double v);
double kern_ksum_value(const struct kern_ksum *k);

/* Prometheus 3's mean, shared by avg() and avg_over_time(): a Kahan sum divided by the
 * count while that sum stays finite; from the first value that would overflow it, an
 * incremental mean (with its own compensation). Start from a zeroed struct; add values in
 * order. kern_mean_value: NaN when nothing was added. */
struct kern_mean {
    double sum, c, mean, count;
    bool incremental;
};
void kern_mean_add(struct kern_mean *m, double v);
double kern_mean_value(const struct kern_mean *m);

/* stdvar()/stddev() aggregation across a vector: population figures by Welford's method
 * exactly as Prometheus's aggregation does it (no Kahan; a group whose first value is NaN
 * or +-Inf is NaN). Start from a zeroed struct. Value: NaN when nothing was added. */
struct kern_var {
    double mean, m2, count;
};
void kern_var_add(struct kern_var *v, double x);
double kern_var_stdvar(const struct kern_var *v);
double kern_var_stddev(const struct kern_var *v);

/* histogram_quantile over classic buckets: upper bounds (le, +Inf included, any order on
 * input: sorted in place) and cumulative counts. Follows Prometheus: NaN when there is no
 * +Inf bucket or fewer than 2 buckets or the count is 0; q < 0 -> -Inf, q > 1 -> +Inf;
 * non-monotonic counts are fixed up (and *fixed_monotonic set so the caller can add
 * Prometheus's info annotation); linear interpolation inside the bucket, the first
 * bucket's lower bound is 0 when its upper bound is positive; a quantile falling in the
 * +Inf bucket returns the upper bound of the second-highest bucket. */
struct kern_bucket {
    double le;
    double count;
};
double kern_histogram_quantile(double q, struct kern_bucket *b, size_t n, bool *fixed_monotonic);
/* histogram_fraction over classic buckets (sorted in place, equal bounds merged): the
 * share of observations between lower and upper, as Prometheus's BucketFraction. NaN
 * when n == 0, there is no +Inf bucket, the total count is 0 or a bound is NaN; 0 when
 * lower >= upper. Linear interpolation inside a bucket; the first bucket starts at 0
 * when its upper bound is positive, else at -Inf; infinite-width parts add nothing. */
double kern_bucket_fraction(double lower, double upper, struct kern_bucket *b, size_t n);

/* Date functions on a timestamp in seconds (UTC), as Prometheus: day_of_month 1..31,
 * day_of_week 0..6 (Sunday = 0), day_of_year 1..366, days_in_month 28..31, hour 0..23,
 * minute 0..59, month 1..12, year. NaN and infinities give NaN. */
double kern_day_of_month(double ts);
double kern_day_of_week(double ts);
double kern_day_of_year(double ts);
double kern_days_in_month(double ts);
double kern_hour(double ts);
double kern_minute(double ts);
double kern_month(double ts);
double kern_year(double ts);

/* round(v, to_nearest): rounds half up to the nearest multiple, as Prometheus
 * (floor(v * (1/to_nearest) + 0.5) / (1/to_nearest)). */
double kern_round(double v, double to_nearest);
/* sgn, deg, rad and the rest of the plain math functions come from math.h in funcs.c. */
double kern_sgn(double v);

#endif
