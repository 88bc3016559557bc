/* Tests storage/spanstore/trace_filter.c: no id that was added is ever answered "new"
 * (random and sequential ids, across added parts, from concurrent threads); ids never
 * added are mostly answered "new" once ready (the false "maybe" rate stays low); before
 * ready and after overflowing every id is "maybe". */
#include <criterion/criterion.h>

#include "../../../../storage/spanstore/trace_filter.h"

#include <pthread.h>
#include <string.h>

static uint64_t rng = 0x853c49e6748fea9bULL;

static void random_id(uint8_t *tid)
{
    for (int i = 0; i < 16; i += 8) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        memcpy(tid + i, &rng, 8);
    }
}

static void seq_id(uint8_t *tid, uint64_t n)
{
    memset(tid, 0, 16);
    for (int i = 0; i < 8; i++)
        tid[15 - i] = (uint8_t)(n >> (8 * i));
}

Test(trace_filter, added_ids_are_never_new_and_unknown_ones_mostly_are)
{
    struct trace_filter *f = trace_filter_new(0);
    cr_assert_not_null(f);
    size_t start = trace_filter_bytes(f);
    uint8_t tid[16];
    enum { N = 600000 }; /* past the first part: a second (four times larger) starts */
    uint64_t saved = rng;
    for (int i = 0; i < N; i++) {
        random_id(tid);
        trace_filter_add(f, tid);
    }
    cr_assert(trace_filter_maybe(f, tid), "not ready: everything may exist");
    random_id(tid);
    cr_assert(trace_filter_maybe(f, tid));
    trace_filter_set_ready(f);
    cr_assert_gt(trace_filter_bytes(f), start, "a part was added");
    rng = saved;
    for (int i = 0; i < N; i++) {
        random_id(tid);
        cr_assert(trace_filter_maybe(f, tid), "added id %d answered new", i);
    }
    int maybe = 0;
    for (int i = 0; i < 100000; i++) {
        random_id(tid);
        maybe += trace_filter_maybe(f, tid);
    }
    cr_assert_lt(maybe, 8000, "false maybe rate %d per 100,000", maybe);
    trace_filter_free(f);
}

Test(trace_filter, sequential_ids_are_mixed)
{
    struct trace_filter *f = trace_filter_new(100000);
    uint8_t tid[16];
    for (uint64_t n = 1; n <= 100000; n++) {
        seq_id(tid, n);
        trace_filter_add(f, tid);
    }
    trace_filter_set_ready(f);
    int maybe = 0;
    for (uint64_t n = 1; n <= 100000; n++) {
        seq_id(tid, n);
        cr_assert(trace_filter_maybe(f, tid), "id %llu", (unsigned long long)n);
        seq_id(tid, n + 1000000);
        maybe += trace_filter_maybe(f, tid);
    }
    cr_assert_lt(maybe, 8000, "false maybe rate %d per 100,000", maybe);
    trace_filter_free(f);
}

struct worker {
    struct trace_filter *f;
    uint64_t base;
};

static void *adder(void *arg)
{
    struct worker *w = arg;
    uint8_t tid[16];
    for (uint64_t n = 0; n < 200000; n++) {
        seq_id(tid, w->base + n);
        trace_filter_add(w->f, tid);
    }
    return NULL;
}

Test(trace_filter, concurrent_adders_across_part_growth_lose_nothing)
{
    struct trace_filter *f = trace_filter_new(0);
    trace_filter_set_ready(f);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ f, (uint64_t)i << 40 };
        pthread_create(&t[i], NULL, adder, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    uint8_t tid[16];
    for (int i = 0; i < 4; i++)
        for (uint64_t n = 0; n < 200000; n++) {
            seq_id(tid, w[i].base + n);
            cr_assert(trace_filter_maybe(f, tid), "thread %d id %llu", i, (unsigned long long)n);
        }
    trace_filter_free(f);
}

Test(trace_filter, past_the_last_part_everything_may_exist)
{
    struct trace_filter *f = trace_filter_new_parts(0, 1); /* one part of 131,072 ids */
    trace_filter_set_ready(f);
    uint8_t tid[16];
    for (uint64_t n = 0; n < 131072; n++) {
        seq_id(tid, n);
        trace_filter_add(f, tid);
    }
    int maybe = 0;
    for (uint64_t n = 0; n < 10000; n++) {
        seq_id(tid, (1ULL << 40) + n);
        maybe += trace_filter_maybe(f, tid);
    }
    cr_assert_lt(maybe, 1000, "full, not yet overflowing: unknown ids mostly new");
    size_t bytes = trace_filter_bytes(f);
    seq_id(tid, 1ULL << 50);
    trace_filter_add(f, tid); /* one more than the part takes: no part may be added */
    cr_assert_eq(trace_filter_bytes(f), bytes);
    for (uint64_t n = 0; n < 1000; n++) {
        seq_id(tid, (1ULL << 41) + n);
        cr_assert(trace_filter_maybe(f, tid), "overflowed: every id may exist");
    }
    trace_filter_free(f);
}

/* An absurd expected count (a damaged counter record) still opens: the first part is
 * capped at 64 MiB. */
Test(trace_filter, absurd_expectations_are_capped)
{
    struct trace_filter *f = trace_filter_new(UINT64_MAX);
    cr_assert_not_null(f);
    cr_assert_leq(trace_filter_bytes(f), ((size_t)64 << 20) + 4096);
    uint8_t tid[16];
    seq_id(tid, 42);
    trace_filter_add(f, tid);
    trace_filter_set_ready(f);
    cr_assert(trace_filter_maybe(f, tid));
    trace_filter_free(f);
}
