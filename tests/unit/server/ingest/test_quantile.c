/* Tests server/ingest/quantile.c, the merging t-digest: rank error of the estimates on
 * known distributions (uniform, normal, exponential, sorted and reversed input), exact
 * extremes, weighted points, small digests, reset, and allocation failure leaving the
 * digest usable. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../../../server/ingest/quantile.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_err.h"

#define N 100000

static uint64_t rng = 88172645463325252ULL;

static double uniform01(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static double normal(void)
{
    double u = uniform01(), v = uniform01();
    if (u < 1e-300)
        u = 1e-300;
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fraction of the sorted sample at or below x (the empirical CDF). */
static double rank_of(const double *sorted, size_t n, double x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sorted[mid] <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (double)lo / (double)n;
}

/* Feeds xs (in the order given) and checks the rank error of the median, 0.9, 0.99 and
 * 0.999 against the documented bounds. */
static void check_accuracy(double *xs, size_t n, const char *what)
{
    struct quantile_digest d;
    quantile_init(&d, QUANTILE_DEFAULT_COMPRESSION);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(quantile_add(&d, xs[i], 1), 0);
    qsort(xs, n, sizeof *xs, cmp_double);
    static const struct { double q, bound; } cases[] = {
        { 0.5, 0.005 }, { 0.9, 0.003 }, { 0.99, 0.001 }, { 0.999, 0.001 }, { 0.01, 0.001 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double est = quantile_query(&d, cases[i].q);
        double r = rank_of(xs, n, est);
        cr_assert_leq(fabs(r - cases[i].q), cases[i].bound,
                      "%s: q=%g estimate %g has rank %g", what, cases[i].q, est, r);
    }
    cr_assert_eq(quantile_query(&d, 0), xs[0]);
    cr_assert_eq(quantile_query(&d, 1), xs[n - 1]);
    cr_assert_float_eq(quantile_weight(&d), (double)n, 1e-9);
    cr_assert_leq(d.nc, (size_t)QUANTILE_DEFAULT_COMPRESSION + 1);
    quantile_free(&d);
}

Test(quantile, uniform)
{
    double *xs = malloc(N * sizeof *xs);
    for (size_t i = 0; i < N; i++)
        xs[i] = uniform01() * 1000;
    check_accuracy(xs, N, "uniform");
    free(xs);
}

Test(quantile, normal)
{
    double *xs = malloc(N * sizeof *xs);
    for (size_t i = 0; i < N; i++)
        xs[i] = 50 + 10 * normal();
    check_accuracy(xs, N, "normal");
    free(xs);
}

Test(quantile, exponential)
{
    double *xs = malloc(N * sizeof *xs);
    for (size_t i = 0; i < N; i++)
        xs[i] = -log(1 - uniform01()) * 0.2; /* latencies: mean 200 ms */
    check_accuracy(xs, N, "exponential");
    free(xs);
}

Test(quantile, sorted_and_reversed_input)
{
    double *xs = malloc(N * sizeof *xs);
    for (size_t i = 0; i < N; i++)
        xs[i] = (double)i;
    check_accuracy(xs, N, "ascending");
    for (size_t i = 0; i < N; i++)
        xs[i] = (double)(N - i);
    check_accuracy(xs, N, "descending");
    free(xs);
}

Test(quantile, few_points_exact)
{
    struct quantile_digest d;
    quantile_init(&d, 100);
    cr_assert(isnan(quantile_query(&d, 0.5)), "empty digest gives NaN");
    cr_assert_eq(quantile_add(&d, 7, 1), 0);
    cr_assert_eq(quantile_query(&d, 0.5), 7);
    cr_assert_eq(quantile_query(&d, 0.99), 7);
    for (int i = 1; i <= 5; i++)
        quantile_add(&d, i, 1); /* 1 2 3 4 5 7 */
    cr_assert_eq(quantile_query(&d, 0), 1);
    cr_assert_eq(quantile_query(&d, 1), 7);
    double med = quantile_query(&d, 0.5);
    cr_assert(med >= 3 && med <= 4, "median of 1..5,7 is between 3 and 4, got %g", med);
    cr_assert(isnan(quantile_query(&d, NAN)));
    quantile_reset(&d);
    cr_assert(isnan(quantile_query(&d, 0.5)), "reset forgets every point");
    cr_assert_eq(quantile_weight(&d), 0);
    quantile_add(&d, 42, 1);
    cr_assert_eq(quantile_query(&d, 0.5), 42);
    quantile_free(&d);
}

Test(quantile, weights_count_like_repeats)
{
    /* 1 with weight 9 and 100 with weight 1: low quantiles are 1, the top one 100, and
     * between the two centres the estimate interpolates */
    struct quantile_digest d;
    quantile_init(&d, 100);
    quantile_add(&d, 1, 9);
    quantile_add(&d, 100, 1);
    cr_assert_float_eq(quantile_weight(&d), 10, 1e-12);
    cr_assert_eq(quantile_query(&d, 0.4), 1);
    cr_assert_eq(quantile_query(&d, 0.96), 100);
    double mid = quantile_query(&d, 0.7);
    cr_assert(mid > 1 && mid < 100, "%g", mid);
    quantile_free(&d);
}

Test(quantile, weighted_stream_matches_repeated_stream)
{
    /* a 10% sample counted 10 times must land near the full stream's quantiles */
    struct quantile_digest d;
    quantile_init(&d, 100);
    double *xs = malloc(N * sizeof *xs);
    for (size_t i = 0; i < N; i++) {
        xs[i] = uniform01();
        if (i % 10 == 0)
            quantile_add(&d, xs[i], 10);
    }
    qsort(xs, N, sizeof *xs, cmp_double);
    double r = rank_of(xs, N, quantile_query(&d, 0.9));
    cr_assert_leq(fabs(r - 0.9), 0.02, "rank %g", r);
    free(xs);
    quantile_free(&d);
}

Test(quantile, allocation_failure_keeps_digest_usable)
{
    struct quantile_digest d;
    quantile_init(&d, 10);
    vg_alloc_fail_after(1);
    cr_assert_eq(quantile_add(&d, 1, 1), VG_ENOMEM, "first buffer allocation fails");
    vg_alloc_fail_after(0);
    cr_assert_eq(quantile_weight(&d), 0, "nothing was added");
    for (int i = 0; i < 49; i++)
        cr_assert_eq(quantile_add(&d, i, 1), 0); /* 49 < 50 = buffer capacity */
    vg_alloc_fail_after(1);
    cr_assert(isnan(quantile_query(&d, 0.5)), "the merge cannot allocate");
    vg_alloc_fail_after(0);
    double med = quantile_query(&d, 0.5);
    cr_assert(med > 20 && med < 28, "after the failure the points are all there: %g", med);
    quantile_free(&d);
}
