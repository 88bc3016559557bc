/* Tests storage/spanstore/span_head.c: postings added per term come back sorted newest
 * first (then by trace id) and filtered by time from both generations; freezing moves
 * them to the frozen generation in key order, release drops them; allocation failures
 * leave the head usable and leak nothing. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/spanstore/span_head.h"

#include <stdio.h>
#include <string.h>

static struct span_head_posting post(int64_t t, uint8_t id)
{
    struct span_head_posting p = { .t = t };
    memset(p.tid, id, sizeof p.tid);
    return p;
}

static void add(struct span_head *h, const char *key, int64_t t, uint8_t id)
{
    struct span_head_posting p = post(t, id);
    span_head_lock(h);
    cr_assert(span_head_add(h, key, strlen(key), span_head_hash(key, strlen(key)), &p, 1));
    span_head_unlock(h);
}

/* The term's postings at or before to, as "t:id,..." */
static const char *copy(struct span_head *h, const char *key, int64_t to)
{
    static char out[512];
    struct span_head_posting *p = NULL;
    size_t n = 0, cap = 0;
    span_head_read_begin(h);
    cr_assert(span_head_copy(h, key, strlen(key), to, &p, &n, &cap));
    span_head_read_end(h);
    out[0] = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%lld:%d", i ? "," : "",
                 (long long)p[i].t, p[i].tid[0]);
    vg_free(p);
    return out;
}

Test(span_head, postings_come_back_newest_first_from_both_generations)
{
    struct span_head *h = span_head_new();
    cr_assert_not_null(h);
    add(h, "Xa", 10, 1);
    add(h, "Xa", 30, 2);
    add(h, "Xb", 20, 3);
    add(h, "Xa", 30, 1); /* same time: ordered by trace id */
    cr_assert_str_eq(copy(h, "Xa", 0), "30:1,30:2,10:1");
    cr_assert_str_eq(copy(h, "Xa", 29), "10:1");
    cr_assert_str_eq(copy(h, "Xc", 0), "");
    span_head_lock(h);
    cr_assert_eq(span_head_active(h), 4);
    cr_assert(span_head_freeze(h));
    cr_assert_not(span_head_freeze(h), "one frozen generation at a time");
    cr_assert_eq(span_head_active(h), 0);
    span_head_unlock(h);
    add(h, "Xa", 40, 4); /* into the new active generation */
    cr_assert_str_eq(copy(h, "Xa", 0), "40:4,30:1,30:2,10:1");
    const struct span_head_term *t;
    cr_assert_eq(span_head_frozen(h, &t), 2);
    cr_assert_eq(t[0].klen, 2);
    cr_assert_eq(memcmp(t[0].key, "Xa", 2), 0, "sorted by key");
    cr_assert_eq(t[0].n, 3);
    cr_assert_eq(memcmp(t[1].key, "Xb", 2), 0);
    span_head_release(h);
    cr_assert_eq(span_head_frozen(h, &t), 0);
    cr_assert_str_eq(copy(h, "Xa", 0), "40:4");
    span_head_lock(h);
    cr_assert(span_head_freeze(h));
    span_head_unlock(h);
    span_head_free(h); /* with a frozen generation still held */
}

Test(span_head, many_terms_and_postings_grow_the_tables)
{
    struct span_head *h = span_head_new();
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "Xterm%d", i % 1000);
        add(h, key, i, (uint8_t)(i % 251));
    }
    span_head_lock(h);
    cr_assert_eq(span_head_active(h), 5000);
    span_head_unlock(h);
    cr_assert_str_eq(copy(h, "Xterm7", 0), "4007:242,3007:246,2007:250,1007:3,7:7");
    span_head_free(h);
}

Test(span_head, allocation_failures_keep_the_head_usable)
{
    size_t live = vg_alloc_live_bytes();
    int failed = 0;
    for (uint64_t n = 1; n < 40; n++) {
        struct span_head *h;
        vg_alloc_fail_after(n);
        h = span_head_new();
        bool ok = true;
        if (h) {
            struct span_head_posting p = post(1, 1);
            char key[16];
            span_head_lock(h);
            for (int i = 0; ok && i < 300; i++) {
                snprintf(key, sizeof key, "Xk%d", i);
                ok = span_head_add(h, key, strlen(key), span_head_hash(key, strlen(key)), &p, 1);
            }
            span_head_unlock(h);
        }
        vg_alloc_fail_after(0);
        failed += !h || !ok;
        if (h) {
            add(h, "Xafter", 5, 9); /* usable after a failed add */
            cr_assert_str_eq(copy(h, "Xafter", 0), "5:9");
        }
        span_head_free(h);
        cr_assert_eq(vg_alloc_live_bytes(), live, "allocation %llu leaked",
                     (unsigned long long)n);
    }
    cr_assert_gt(failed, 5);
}

/* A big term takes the radix sort: newest first, ties by the whole trace id (ids equal
 * in their first 8 bytes included). */
Test(span_head, a_big_term_sorts_like_a_small_one)
{
    struct span_head_posting p[3000];
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < 3000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = post((int64_t)(x % 500) - 100, (uint8_t)(x >> 40)); /* many equal times */
        p[i].tid[15] = (uint8_t)(x >> 50); /* differ after the first 8 bytes */
    }
    span_head_sort(p, 3000);
    for (size_t i = 1; i < 3000; i++) {
        bool ordered = p[i - 1].t > p[i].t ||
                       (p[i - 1].t == p[i].t && memcmp(p[i - 1].tid, p[i].tid, 16) <= 0);
        cr_assert(ordered, "postings %zu and %zu out of order", i - 1, i);
    }
    for (size_t i = 0; i < 3000; i++)
        p[i].t = 7; /* every posting at one time: sorted by trace id, not quadratically */
    span_head_sort(p, 3000);
    for (size_t i = 1; i < 3000; i++) {
        bool ordered = p[i - 1].t > p[i].t ||
                       (p[i - 1].t == p[i].t && memcmp(p[i - 1].tid, p[i].tid, 16) <= 0);
        cr_assert(ordered, "postings %zu and %zu out of order", i - 1, i);
    }
}
