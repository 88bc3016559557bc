/* Tests server/ingest/otlp_delta.c: running totals per key for numbers, classic and
 * exponential histograms (scale merging, span cap), refusal of points that are not newer,
 * the series cap, idle eviction (also when every tracked series has gone silent), and
 * allocation failure leaving the state unchanged. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/ingest/otlp_delta.h"
#include "../../../../storage/base/vg_alloc.h"

static struct otlp_delta_state *st;
static struct vg_arena *arena;
static struct vg_err err;

static void setup(void)
{
    st = otlp_delta_new(4, 1000);
    arena = vg_arena_new(0);
    vg_err_clear(&err);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    otlp_delta_free(st);
    vg_arena_free(arena);
}

TestSuite(otlp_delta, .init = setup, .fini = teardown);

static double add(const char *key, int64_t t, double d)
{
    double total = -1;
    int rc = otlp_delta_add_number(st, key, strlen(key), t, d, &total, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return total;
}

Test(otlp_delta, numbers_accumulate_per_key)
{
    cr_assert_eq(add("a", 1, 2), 2);
    cr_assert_eq(add("b", 1, 10), 10);
    cr_assert_eq(add("a", 2, 3), 5);
    double t;
    cr_assert_eq(otlp_delta_add_number(st, "a", 1, 2, 1.0, &t, &err), VG_ECONFLICT);
    cr_assert(strstr(err.msg, "not newer"));
    cr_assert_eq(add("a", 3, 0.5), 5.5);
    cr_assert_eq(otlp_delta_size(st), 2);
}

Test(otlp_delta, series_cap_and_idle_eviction)
{
    add("a", 1000, 1);
    add("b", 1000, 1);
    add("c", 1000, 1);
    add("d", 1000, 1);
    double t;
    cr_assert_eq(otlp_delta_add_number(st, "e", 1, 1500, 1, &t, &err), VG_ETOOLARGE);
    cr_assert_eq(otlp_delta_size(st), 4);
    /* d keeps moving; a, b, c fall idle (> 1000 ms behind the newest point) */
    add("d", 2500, 1);
    cr_assert_eq(add("e", 2600, 7), 7);
    cr_assert_eq(otlp_delta_size(st), 2);
    cr_assert_eq(add("a", 2700, 1), 1); /* forgotten: starts over */
}

Test(otlp_delta, full_table_of_silent_series_makes_room_for_new_ones)
{
    /* Regression: only accepted points moved the idleness clock, so once every tracked
     * series had stopped reporting, points of the series replacing them (new pods) were
     * refused for ever. The incoming point's time now counts too. */
    add("a", 1000, 1);
    add("b", 1000, 1);
    add("c", 1000, 1);
    add("d", 1000, 1);
    cr_assert_eq(add("e", 2001, 5), 5);
    cr_assert_eq(otlp_delta_size(st), 1);
}

Test(otlp_delta, histograms_accumulate_and_restart_on_new_bounds)
{
    double b1[] = { 1, 5 };
    uint64_t c1[] = { 1, 2, 3 };
    struct otlp_hist in = { 6, 10, true, 2, b1, c1 }, out;
    cr_assert_eq(otlp_delta_add_hist(st, "h", 1, 1, &in, arena, &out, &err), 0);
    cr_assert_eq(otlp_delta_add_hist(st, "h", 1, 2, &in, arena, &out, &err), 0);
    cr_assert_eq(out.count, 12);
    cr_assert_eq(out.sum, 20);
    cr_assert(out.has_sum);
    cr_assert_eq(out.nbounds, 2);
    cr_assert_eq(out.counts[0], 2);
    cr_assert_eq(out.counts[2], 6);
    double b2[] = { 2, 5 };
    struct otlp_hist in2 = { 1, 1, false, 2, b2, c1 };
    cr_assert_eq(otlp_delta_add_hist(st, "h", 1, 3, &in2, arena, &out, &err), 0);
    cr_assert_eq(out.count, 1);
    cr_assert_eq(out.bounds[0], 2);
    cr_assert(!out.has_sum);
}

Test(otlp_delta, exponential_histograms_merge_at_smaller_scale)
{
    uint64_t p1[] = { 1, 2, 3, 4 }; /* scale 2, indexes -2..1 */
    struct otlp_exphist in = { .scale = 2, .count = 10, .pos = { -2, 4, p1 } }, out;
    cr_assert_eq(otlp_delta_add_exphist(st, "x", 1, 1, &in, arena, &out, &err), 0);
    cr_assert_eq(out.scale, 2);
    uint64_t p2[] = { 5 }; /* scale 1, index 0 = scale-2 indexes 0, 1 */
    uint64_t n2[] = { 7 };
    struct otlp_exphist in2 = { .scale = 1, .count = 12, .zero_count = 0,
                                .pos = { 0, 1, p2 }, .neg = { -1, 1, n2 } };
    cr_assert_eq(otlp_delta_add_exphist(st, "x", 1, 2, &in2, arena, &out, &err), 0);
    cr_assert_eq(out.scale, 1);
    /* scale-2 indexes -2,-1 -> -1 (1+2); 0,1 -> 0 (3+4) plus 5 */
    cr_assert_eq(out.pos.offset, -1);
    cr_assert_eq(out.pos.n, 2);
    cr_assert_eq(out.pos.counts[0], 3);
    cr_assert_eq(out.pos.counts[1], 12);
    cr_assert_eq(out.neg.offset, -1);
    cr_assert_eq(out.neg.counts[0], 7);
    cr_assert_eq(out.count, 22);
}

Test(otlp_delta, exponential_span_cap_lowers_scale)
{
    uint64_t one[] = { 1 };
    struct otlp_exphist a = { .scale = 0, .count = 1, .pos = { -100000, 1, one } }, out;
    struct otlp_exphist b = { .scale = 0, .count = 1, .pos = { 100000, 1, one } };
    cr_assert_eq(otlp_delta_add_exphist(st, "x", 1, 1, &a, arena, &out, &err), 0);
    cr_assert_eq(otlp_delta_add_exphist(st, "x", 1, 2, &b, arena, &out, &err), 0);
    cr_assert(out.pos.n <= OTLP_DELTA_MAX_SPAN, "%zu", out.pos.n);
    cr_assert(out.scale < 0);
    uint64_t sum = 0;
    for (size_t i = 0; i < out.pos.n; i++)
        sum += out.pos.counts[i];
    cr_assert_eq(sum, 2);
}

Test(otlp_delta, allocation_failure_leaves_state_unchanged)
{
    uint64_t p[] = { 1, 1 };
    struct otlp_exphist in = { .scale = 0, .count = 2, .pos = { 0, 2, p } }, out;
    vg_alloc_fail_after(1);
    int rc = otlp_delta_add_exphist(st, "x", 1, 1, &in, arena, &out, &err);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    cr_assert_eq(otlp_delta_size(st), 0);
    cr_assert_eq(otlp_delta_add_exphist(st, "x", 1, 1, &in, arena, &out, &err), 0);
    vg_alloc_fail_after(1);
    rc = otlp_delta_add_exphist(st, "x", 1, 2, &in, arena, &out, &err);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    cr_assert_eq(otlp_delta_add_exphist(st, "x", 1, 3, &in, arena, &out, &err), 0);
    cr_assert_eq(out.count, 4, "a failed update must not have counted");
}

static void *worker(void *arg)
{
    int id = *(const int *)arg;
    char key[8];
    snprintf(key, sizeof key, "k%d", id % 2);
    for (int i = 1; i <= 1000; i++) {
        double t;
        otlp_delta_add_number(st, key, strlen(key), (int64_t)id * 100000 + i, 1,
                              &t, NULL);
    }
    return NULL;
}

Test(otlp_delta, concurrent_updates)
{
    otlp_delta_free(st);
    st = otlp_delta_new(0, 0);
    pthread_t th[4];
    static int ids[4] = { 0, 1, 2, 3 };
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, &ids[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(otlp_delta_size(st), 2);
}
