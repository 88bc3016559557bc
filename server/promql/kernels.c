/* kernels: see kernels.h. Each function reproduces the arithmetic of the Prometheus 3
 * implementation it is named after, operation for operation where the order matters for
 * the last bit (Kahan-Neumaier compensation, the mean's overflow switch, the quantile's
 * weighted sum), so results compare equal to Prometheus's, not merely close.
 *
 * Invariants: no allocation, no global state; every function is reentrant. Inputs are
 * windows already cut to range_start < t <= range_end and in time order; nothing here
 * re-checks that. Times arrive in ms and are turned into seconds as float64 only after
 * subtracting, so large epoch values keep their precision. */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>

/* Kahan summation with Neumaier's improvement, as Prometheus's kahanSumInc: once the
 * running sum is infinite the compensation is dropped (it would otherwise turn into
 * NaN through Inf - Inf). */
static void ksum_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

void kern_ksum_add(struct kern_ksum *k, double v)
{
    ksum_inc(v, &k->sum, &k->c);
}

double kern_ksum_value(const struct kern_ksum *k)
{
    return isinf(k->sum) ? k->sum : k->sum + k->c;
}

static double ms_to_s(int64_t ms)
{
    return (double)ms / 1000;
}

/* ---- rate family ------------------------------------------------------------------ */

double kern_extrapolated_rate(const struct tsdb_sample *s, size_t n, int64_t range_start,
                              int64_t range_end, bool is_counter, bool is_rate, bool *ok)
{
    if (n < 2) {
        *ok = false;
        return 0;
    }
    double result = s[n - 1].v - s[0].v;
    if (is_counter) {
        /* A drop is a reset: the counter restarted from zero, so everything it had
         * counted before the drop is added back. */
        double prev = s[0].v;
        for (size_t i = 1; i < n; i++) {
            if (s[i].v < prev)
                result += prev;
            prev = s[i].v;
        }
    }
    double to_start = ms_to_s(s[0].t - range_start);
    double to_end = ms_to_s(range_end - s[n - 1].t);
    double sampled = ms_to_s(s[n - 1].t - s[0].t);
    double avg_step = sampled / (double)(n - 1);

    /* A gap to an edge of more than 1.1 average steps means the series starts or ends
     * inside the window: extrapolate only half a step there. */
    double threshold = avg_step * 1.1;
    if (to_start >= threshold)
        to_start = avg_step / 2;
    if (is_counter) {
        /* A counter cannot go below zero: stop the extrapolation where the line through
         * the samples would reach zero. Applied after the half-step rule, as Prometheus
         * does (increase(x[100m]) of 1+10x10 at 50m gives 101, not 102.5). */
        double to_zero = to_start;
        if (result > 0 && s[0].v >= 0)
            to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    if (to_end >= threshold)
        to_end = avg_step / 2;

    double factor = (sampled + to_start + to_end) / sampled;
    if (is_rate)
        factor /= ms_to_s(range_end - range_start);
    *ok = true;
    return result * factor;
}

double kern_instant_rate(const struct tsdb_sample *s, size_t n, bool is_rate, bool *ok)
{
    if (n < 2 || s[n - 1].t == s[n - 2].t) {
        *ok = false;
        return 0;
    }
    double last = s[n - 1].v, prev = s[n - 2].v;
    /* irate treats a drop as a reset to zero, so the increase is the last value. A NaN
     * compares false and falls through to the plain difference, as in Prometheus. */
    double result = (is_rate && last < prev) ? last : last - prev;
    if (is_rate)
        result /= ms_to_s(s[n - 1].t - s[n - 2].t);
    *ok = true;
    return result;
}

/* Least-squares line through the samples with x in seconds relative to t0: Prometheus's
 * linearRegression, Kahan-compensated sums included. A window of identical values has
 * slope 0 (NaN when the value is infinite) without dividing anything. */
static void linear_regression(const struct tsdb_sample *s, size_t n, int64_t t0, double *slope,
                              double *intercept)
{
    double nn = 0;
    double sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double first = s[0].v;
    bool constant = true;
    for (size_t i = 0; i < n; i++) {
        if (constant && i > 0 && s[i].v != first)
            constant = false;
        nn += 1;
        double x = (double)(s[i].t - t0) / 1e3;
        ksum_inc(x, &sx, &cx);
        ksum_inc(s[i].v, &sy, &cy);
        ksum_inc(x * s[i].v, &sxy, &cxy);
        ksum_inc(x * x, &sx2, &cx2);
    }
    if (constant) {
        if (isinf(first)) {
            *slope = NAN;
            *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = first;
        }
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov_xy = sxy - sx * sy / nn;
    double var_x = sx2 - sx * sx / nn;
    *slope = cov_xy / var_x;
    *intercept = sy / nn - *slope * sx / nn;
}

double kern_deriv(const struct tsdb_sample *s, size_t n, bool *ok)
{
    if (n < 2) {
        *ok = false;
        return 0;
    }
    double slope, intercept;
    /* Times relative to the first sample keep x small (Prometheus issue 2674). */
    linear_regression(s, n, s[0].t, &slope, &intercept);
    *ok = true;
    return slope;
}

double kern_predict_linear(const struct tsdb_sample *s, size_t n, int64_t eval_t,
                           double duration_s, bool *ok)
{
    if (n < 2) {
        *ok = false;
        return 0;
    }
    double slope, intercept;
    linear_regression(s, n, eval_t, &slope, &intercept);
    *ok = true;
    return slope * duration_s + intercept;
}

double kern_double_exp_smoothing(const struct tsdb_sample *s, size_t n, double sf, double tf,
                                 bool *ok)
{
    if (n < 2) {
        *ok = false;
        return 0;
    }
    /* Holt's linear method: level s1 (previous level s0) and trend b, seeded with the
     * first value and the first difference; the trend is first updated at i = 2. */
    double s0 = 0, s1 = s[0].v, b = s[1].v - s[0].v;
    for (size_t i = 1; i < n; i++) {
        double x = sf * s[i].v;
        if (i > 1)
            b = tf * (s1 - s0) + (1 - tf) * b;
        double y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    *ok = true;
    return s1;
}

double kern_changes(const struct tsdb_sample *s, size_t n)
{
    double changes = 0;
    for (size_t i = 1; i < n; i++) {
        double cur = s[i].v, prev = s[i - 1].v;
        /* NaN to NaN is no change; NaN to a number (or back) is one. */
        if (cur != prev && !(isnan(cur) && isnan(prev)))
            changes++;
    }
    return changes;
}

double kern_resets(const struct tsdb_sample *s, size_t n)
{
    double resets = 0;
    for (size_t i = 1; i < n; i++)
        if (s[i].v < s[i - 1].v)
            resets++;
    return resets;
}

/* ---- *_over_time ------------------------------------------------------------------ */

void kern_mean_add(struct kern_mean *m, double v)
{
    if (m->count == 0) {
        /* Seeded directly: feeding an infinite first value through the overflow test
         * would switch to the incremental mean with nothing to divide by. */
        m->sum = v;
        m->c = 0;
        m->count = 1;
        return;
    }
    m->count += 1;
    if (!m->incremental) {
        double sum = m->sum, c = m->c;
        ksum_inc(v, &sum, &c);
        if (!isinf(sum)) {
            m->sum = sum;
            m->c = c;
            return;
        }
        /* The direct sum would overflow (or v is infinite): carry on with the mean of
         * the values so far, which stays in range. */
        m->incremental = true;
        m->mean = m->sum / (m->count - 1);
        m->c /= m->count - 1;
    }
    double q = (m->count - 1) / m->count;
    m->mean *= q;
    m->c *= q;
    ksum_inc(v / m->count, &m->mean, &m->c);
}

double kern_mean_value(const struct kern_mean *m)
{
    if (m->count == 0)
        return NAN;
    if (m->incremental)
        return m->mean + m->c;
    return m->sum / m->count + m->c / m->count;
}

void kern_var_add(struct kern_var *v, double x)
{
    if (v->count == 0) {
        v->count = 1;
        v->mean = x;
        v->m2 = (isnan(x) || isinf(x)) ? NAN : 0;
        return;
    }
    v->count += 1;
    double delta = x - v->mean;
    v->mean += delta / v->count;
    v->m2 += delta * (x - v->mean);
}

double kern_var_stdvar(const struct kern_var *v)
{
    return v->count == 0 ? NAN : v->m2 / v->count;
}

double kern_var_stddev(const struct kern_var *v)
{
    return sqrt(kern_var_stdvar(v));
}

double kern_avg_over_time(const struct tsdb_sample *s, size_t n)
{
    struct kern_mean m = {0};
    for (size_t i = 0; i < n; i++)
        kern_mean_add(&m, s[i].v);
    return kern_mean_value(&m);
}

double kern_sum_over_time(const struct tsdb_sample *s, size_t n)
{
    struct kern_ksum k = {0, 0};
    for (size_t i = 0; i < n; i++)
        kern_ksum_add(&k, s[i].v);
    return kern_ksum_value(&k);
}

/* min/max keep the first value and replace it when better or when it is NaN, so NaN
 * survives only if every value is NaN. */
double kern_min_over_time(const struct tsdb_sample *s, size_t n)
{
    double best = n ? s[0].v : NAN;
    for (size_t i = 1; i < n; i++)
        if (s[i].v < best || isnan(best))
            best = s[i].v;
    return best;
}

double kern_max_over_time(const struct tsdb_sample *s, size_t n)
{
    double best = n ? s[0].v : NAN;
    for (size_t i = 1; i < n; i++)
        if (s[i].v > best || isnan(best))
            best = s[i].v;
    return best;
}

/* ts_of_min_over_time / ts_of_max_over_time: Prometheus compares with <= and >= so a
 * tie picks the latest sample; a NaN is replaced by whatever follows it and never
 * replaces a number (so an all-NaN window reports its last sample). */
double kern_ts_of_min_over_time(const struct tsdb_sample *s, size_t n)
{
    if (!n)
        return NAN;
    size_t at = 0;
    for (size_t i = 1; i < n; i++)
        if (s[i].v <= s[at].v || isnan(s[at].v))
            at = i;
    return (double)s[at].t / 1000.0;
}

double kern_ts_of_max_over_time(const struct tsdb_sample *s, size_t n)
{
    if (!n)
        return NAN;
    size_t at = 0;
    for (size_t i = 1; i < n; i++)
        if (s[i].v >= s[at].v || isnan(s[at].v))
            at = i;
    return (double)s[at].t / 1000.0;
}

/* Population variance by Welford's method, with both the mean and the sum of squared
 * deviations Kahan-compensated (Prometheus's varianceOverTime). */
static double variance_over_time(const struct tsdb_sample *s, size_t n)
{
    double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
    for (size_t i = 0; i < n; i++) {
        double v = s[i].v;
        count++;
        double delta = v - (mean + c_mean);
        ksum_inc(delta / count, &mean, &c_mean);
        ksum_inc(delta * (v - (mean + c_mean)), &aux, &c_aux);
    }
    return (aux + c_aux) / count;
}

double kern_stddev_over_time(const struct tsdb_sample *s, size_t n)
{
    return sqrt(variance_over_time(s, n));
}

double kern_stdvar_over_time(const struct tsdb_sample *s, size_t n)
{
    return variance_over_time(s, n);
}

double kern_mad_over_time(const struct tsdb_sample *s, size_t n, double *scratch)
{
    /* A NaN makes the median, and so the deviation, undefined: Prometheus 3 returns
     * NaN rather than letting the NaN sort first and shift the median. */
    for (size_t i = 0; i < n; i++) {
        if (isnan(s[i].v))
            return NAN;
        scratch[i] = s[i].v;
    }
    double median = kern_quantile(0.5, scratch, n);
    for (size_t i = 0; i < n; i++)
        scratch[i] = fabs(s[i].v - median);
    return kern_quantile(0.5, scratch, n);
}

double kern_quantile_over_time(double q, const struct tsdb_sample *s, size_t n, double *scratch)
{
    for (size_t i = 0; i < n; i++)
        scratch[i] = s[i].v;
    return kern_quantile(q, scratch, n);
}

/* ---- quantiles -------------------------------------------------------------------- */

/* Ascending with NaN before every number, the order Prometheus's value heap sorts to. */
static int cmp_nan_first(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    int an = isnan(a), bn = isnan(b);
    if (an || bn)
        return bn - an;
    return (a > b) - (a < b);
}

double kern_quantile(double q, double *values, size_t n)
{
    if (n == 0 || isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    qsort(values, n, sizeof *values, cmp_nan_first);
    double rank = q * (double)(n - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin((double)(n - 1), lower + 1);
    double weight = rank - floor(rank);
    /* Both terms always, as Prometheus: a weight of 0 against an infinite neighbour
     * gives NaN there too. */
    return values[(size_t)lower] * (1 - weight) + values[(size_t)upper] * weight;
}

static int cmp_bucket(const void *pa, const void *pb)
{
    double a = ((const struct kern_bucket *)pa)->le, b = ((const struct kern_bucket *)pb)->le;
    return cmp_nan_first(&a, &b);
}

/* Relative equality within eps, as Prometheus's util/almost.Equal. */
static bool almost_equal(double a, double b, double eps)
{
    const double min_normal = 2.2250738585072014e-308; /* smallest normal double */
    if (isnan(a) && isnan(b))
        return true;
    if (a == b)
        return true;
    double abs_sum = fabs(a) + fabs(b);
    double diff = fabs(a - b);
    if (a == 0 || b == 0 || abs_sum < min_normal)
        return diff < eps * min_normal;
    return diff / fmin(abs_sum, 1.7976931348623157e308) < eps;
}

/* Relative differences between neighbouring cumulative counts below this are float
 * noise (for instance from sharded sums) and are flattened silently; Prometheus's
 * smallDeltaTolerance. */
#define SMALL_DELTA_TOLERANCE 1e-12

/* Flattens noise, then takes the envelope so counts never decrease with le. Returns
 * whether a real decrease had to be removed. */
static bool ensure_monotonic(struct kern_bucket *b, size_t n)
{
    bool forced = false;
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].count;
        if (cur == prev)
            continue;
        if (almost_equal(prev, cur, SMALL_DELTA_TOLERANCE)) {
            b[i].count = prev;
            continue;
        }
        if (cur < prev) {
            b[i].count = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    return forced;
}

/* Merges buckets with equal le (sorted input), summing counts. Returns the new n. */
static size_t coalesce_buckets(struct kern_bucket *b, size_t n)
{
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].le == b[out].le)
            b[out].count += b[i].count;
        else
            b[++out] = b[i];
    }
    return out + 1;
}

/* Sorts the buckets by le and merges equal bounds; 0 when there are none or the highest
 * is not +Inf (both functions then give NaN), else how many remain. */
static size_t classic_buckets(struct kern_bucket *b, size_t n)
{
    if (n == 0)
        return 0;
    qsort(b, n, sizeof *b, cmp_bucket);
    if (!(isinf(b[n - 1].le) && b[n - 1].le > 0))
        return 0;
    return coalesce_buckets(b, n);
}

double kern_histogram_quantile(double q, struct kern_bucket *b, size_t n, bool *fixed_monotonic)
{
    bool dummy;
    if (!fixed_monotonic)
        fixed_monotonic = &dummy;
    *fixed_monotonic = false;
    if (isnan(q))
        return NAN;
    if (q < 0)
        return -INFINITY;
    if (q > 1)
        return INFINITY;
    if (!(n = classic_buckets(b, n)))
        return NAN;
    bool forced = ensure_monotonic(b, n);
    if (n < 2)
        return NAN;
    double observations = b[n - 1].count;
    if (observations == 0)
        return NAN;
    double rank = q * observations;
    /* Binary search for the first bucket among all but +Inf whose count reaches the
     * rank (Go's sort.Search, so the same bucket is found even for odd inputs). */
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    *fixed_monotonic = forced;
    if (lo == n - 1) /* in the +Inf bucket: its lower bound is the best answer */
        return b[n - 2].le;
    if (lo == 0 && b[0].le <= 0) /* no natural lower bound below a non-positive le */
        return b[0].le;
    double start = 0, end = b[lo].le, count = b[lo].count;
    if (lo > 0) {
        start = b[lo - 1].le;
        count -= b[lo - 1].count;
        rank -= b[lo - 1].count;
    }
    return start + (end - start) * (rank / count);
}

/* Prometheus's BucketFraction: the cumulative count at v is interpolated linearly inside
 * the bucket holding v; the first bucket starts at 0 when its upper bound is positive and
 * at -Inf otherwise, and a bucket with an infinite bound contributes nothing to the
 * interpolation (all of a (-Inf, le] bucket lies below any v inside it; none of the +Inf
 * bucket lies below a finite v). Bounds on a bucket boundary take the cumulative count
 * there. No monotonicity fix-up, as Prometheus. */
double kern_bucket_fraction(double lower, double upper, struct kern_bucket *b, size_t n)
{
    if (!(n = classic_buckets(b, n)))
        return NAN;
    double total = b[n - 1].count;
    if (total == 0 || isnan(lower) || isnan(upper))
        return NAN;
    if (lower >= upper)
        return 0;
    double rank = 0, lo_rank = 0, up_rank = 0;
    bool lo_set = false, up_set = false;
    double lb = b[0].le <= 0 ? -INFINITY : 0;
    for (size_t i = 0; i < n && !(lo_set && up_set); i++) {
        if (i > 0)
            lb = b[i - 1].le;
        double ub = b[i].le, cnt = b[i].count;
        if (!lo_set && lb >= lower) {
            lo_rank = rank;
            lo_set = true;
        }
        if (!up_set && lb >= upper) {
            up_rank = rank;
            up_set = true;
        }
        if (!lo_set && lb < lower && ub > lower) {
            lo_rank = isinf(lb) ? cnt : rank + (cnt - rank) * (lower - lb) / (ub - lb);
            lo_set = true;
        }
        if (!up_set && lb < upper && ub > upper) {
            up_rank = isinf(lb) ? cnt : rank + (cnt - rank) * (upper - lb) / (ub - lb);
            up_set = true;
        }
        rank = cnt; /* classic counts are cumulative */
    }
    if (!lo_set || lo_rank > total)
        lo_rank = total;
    if (!up_set || up_rank > total)
        up_rank = total;
    return (up_rank - lo_rank) / total;
}

/* ---- dates ------------------------------------------------------------------------ */

struct civil {
    int64_t year;
    int month, day, yday, wday, hour, minute;
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Splits a Unix time in seconds into its UTC calendar fields. The seconds are truncated
 * toward zero first, as Prometheus's int64(v) does. Values that are not finite or do
 * not fit an int64 have no date. The day count is mapped onto 400-year eras starting
 * on 1 March, where leap days fall at the end of a year, so month and day follow from
 * the day of the era without tables. */
static bool to_civil(double ts, struct civil *out)
{
    if (!(ts > -9.2e18 && ts < 9.2e18))
        return false;
    int64_t secs = (int64_t)ts;
    int64_t days = floor_div(secs, 86400);
    int64_t rem = secs - days * 86400;
    out->hour = (int)(rem / 3600);
    out->minute = (int)(rem % 3600 / 60);
    out->wday = (int)(((days % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */

    int64_t z = days + 719468; /* days since 0000-03-01 */
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;                                        /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;   /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                 /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                      /* March = 0 */
    out->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    out->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    out->year = yoe + era * 400 + (out->month <= 2);
    int yday = out->day;
    for (int m = 1; m < out->month; m++)
        yday += month_days(out->year, m);
    out->yday = yday;
    return true;
}

enum date_field { DF_DAY, DF_WDAY, DF_YDAY, DF_MONTH_DAYS, DF_HOUR, DF_MINUTE, DF_MONTH, DF_YEAR };

static double date_field(double ts, enum date_field f)
{
    struct civil c;
    if (!to_civil(ts, &c))
        return NAN;
    const double fields[] = {
        [DF_DAY] = c.day,       [DF_WDAY] = c.wday,     [DF_YDAY] = c.yday,
        [DF_MONTH_DAYS] = month_days(c.year, c.month),   [DF_HOUR] = c.hour,
        [DF_MINUTE] = c.minute, [DF_MONTH] = c.month,   [DF_YEAR] = (double)c.year,
    };
    return fields[f];
}

double kern_day_of_month(double ts) { return date_field(ts, DF_DAY); }
double kern_day_of_week(double ts) { return date_field(ts, DF_WDAY); }
double kern_day_of_year(double ts) { return date_field(ts, DF_YDAY); }
double kern_days_in_month(double ts) { return date_field(ts, DF_MONTH_DAYS); }
double kern_hour(double ts) { return date_field(ts, DF_HOUR); }
double kern_minute(double ts) { return date_field(ts, DF_MINUTE); }
double kern_month(double ts) { return date_field(ts, DF_MONTH); }
double kern_year(double ts) { return date_field(ts, DF_YEAR); }

/* ---- plain math ------------------------------------------------------------------- */

double kern_round(double v, double to_nearest)
{
    /* Multiplying by the inverse loses less than dividing (Prometheus's comment). */
    double inv = 1.0 / to_nearest;
    return floor(v * inv + 0.5) / inv;
}

double kern_sgn(double v)
{
    if (v < 0)
        return -1;
    if (v > 0)
        return 1;
    return v; /* 0, -0 and NaN stay as they are */
}
