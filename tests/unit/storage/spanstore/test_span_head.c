/* Tests storage/spanstore/span_head.c: postings added per term come back sorted newest
 * first (then by trace id) and filtered by time from both generations; freezing moves
 * them to the frozen generation in key order (keys sharing long prefixes, keys that are
 * prefixes of others), release drops them; a released generation's memory serves the
 * next one and span_head_trim gives it back; the hash keeps its stored values; sorting a
 * copy leaves the input alone; allocation failures, on the reuse path too, leave the
 * head usable and leak nothing. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/spanstore/span_head.h"

#include <stdio.h>
#include <stdlib.h>
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
    bool oom;
    cr_assert_eq(span_head_frozen(h, &t, &oom), 2);
    cr_assert_not(oom);
    cr_assert_eq(t[0].klen, 2);
    cr_assert_eq(memcmp(t[0].key, "Xa", 2), 0, "sorted by key");
    cr_assert_eq(t[0].n, 3);
    cr_assert_eq(memcmp(t[1].key, "Xb", 2), 0);
    span_head_release(h);
    cr_assert_eq(span_head_frozen(h, &t, &oom), 0);
    cr_assert_not(oom);
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

/* The hash as first written (its tail copied with memcpy): the values are stored in the
 * segment records, so the cheaper tail must give the very same ones. */
static uint64_t reference_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, b, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
    return h | 1;
}

Test(span_head, hash_values_stay_those_stored)
{
    uint8_t buf[80];
    uint64_t x = 0x243f6a8885a308d3ULL;
    for (int round = 0; round < 50; round++) {
        for (size_t i = 0; i < sizeof buf; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        for (size_t off = 0; off < 8; off++) /* unaligned starts too */
            for (size_t n = 0; n + off <= 72; n++)
                cr_assert_eq(span_head_hash(buf + off, n), reference_hash(buf + off, n),
                             "length %zu at offset %zu", n, off);
    }
    cr_assert_eq(span_head_hash("Xabc", 4), reference_hash("Xabc", 4));
}

static int key_order(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp(x, y); /* the keys hold no NUL: strcmp is memcmp then length */
}

/* Terms sharing long prefixes (URLs with ids), prefixes of one another, and bytes past
 * 0x7f come out of a frozen generation in byte order, as a comparison sort puts them. */
Test(span_head, frozen_terms_come_in_byte_order)
{
    enum { N = 3000 };
    static char keys[N][96];
    static const char *want[N];
    uint64_t x = 7;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        switch (i % 5) {
        case 0: snprintf(keys[i], sizeof keys[i], "X\x01\x02\x03\x04tshttps://shop.example.com/api/v1/cart/%llu", (unsigned long long)(x % 100000)); break;
        case 1: snprintf(keys[i], sizeof keys[i], "X\x01\x02\x03\x04tshttps://shop.example.com/api/v1/cart/%llu/x", (unsigned long long)(x % 1000)); break;
        case 2: snprintf(keys[i], sizeof keys[i], "X\x01\x02\x03%c%c%llu", (char)(0x80 + x % 5), (char)(0xf0 + x % 9), (unsigned long long)(x % 77)); break;
        case 3: snprintf(keys[i], sizeof keys[i], "X\x01\x02\x03\x04s%.*s", (int)(x % 40), "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); break;
        default: snprintf(keys[i], sizeof keys[i], "X%c", (char)(1 + x % 200)); break;
        }
    }
    struct span_head *h = span_head_new();
    size_t distinct = 0;
    for (int i = 0; i < N; i++) {
        size_t klen = strlen(keys[i]);
        struct span_head_posting p = post(i, 1);
        span_head_lock(h);
        size_t before = span_head_active(h);
        cr_assert(span_head_add(h, keys[i], klen, span_head_hash(keys[i], klen), &p, 1));
        cr_assert_eq(span_head_active(h), before + 1);
        span_head_unlock(h);
    }
    qsort(keys, N, sizeof keys[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < N; i++)
        if (i == 0 || strcmp(keys[i], keys[i - 1]) != 0)
            want[distinct++] = keys[i];
    qsort(want, distinct, sizeof *want, key_order);
    span_head_lock(h);
    cr_assert(span_head_freeze(h));
    span_head_unlock(h);
    const struct span_head_term *t;
    bool oom;
    cr_assert_eq(span_head_frozen(h, &t, &oom), distinct);
    for (size_t i = 0; i < distinct; i++) {
        cr_assert_eq(t[i].klen, strlen(want[i]), "term %zu", i);
        cr_assert_eq(memcmp(t[i].key, want[i], t[i].klen), 0, "term %zu", i);
        cr_assert_eq(t[i].hash, span_head_hash(t[i].key, t[i].klen));
    }
    span_head_free(h);
}

/* One generation: 4,000 one-posting terms, 40 of 100, and one of 8,000 postings (an
 * array of its own, past 64 KiB). */
static void fill(struct span_head *h, int round)
{
    char key[32];
    struct span_head_posting p = post(round, (uint8_t)round);
    span_head_lock(h);
    for (int i = 0; i < 8000; i++) {
        cr_assert(span_head_add(h, "Xbig", 4, span_head_hash("Xbig", 4), &p, 1));
        if (i < 4000) {
            snprintf(key, sizeof key, "Xone%d.%d", i, round);
            cr_assert(span_head_add(h, key, strlen(key), span_head_hash(key, strlen(key)), &p,
                                    1));
        }
        if (i < 4000) {
            snprintf(key, sizeof key, "Xmid%d", i % 40);
            cr_assert(span_head_add(h, key, strlen(key), span_head_hash(key, strlen(key)), &p,
                                    1));
        }
    }
    span_head_unlock(h);
}

static void flush_round(struct span_head *h)
{
    span_head_lock(h);
    cr_assert(span_head_freeze(h));
    span_head_unlock(h);
    const struct span_head_term *t;
    bool oom;
    cr_assert_gt(span_head_frozen(h, &t, &oom), 0);
    span_head_release(h);
}

Test(span_head, released_generations_serve_the_next_and_trim_gives_all_back)
{
    size_t live0 = vg_alloc_live_bytes();
    struct span_head *h = span_head_new();
    size_t empty = vg_alloc_live_bytes();
    fill(h, 1);
    size_t one = vg_alloc_live_bytes() - empty;
    flush_round(h); /* generation 1's slabs and tables wait for reuse */
    cr_assert_geq(span_head_bytes(h), one / 2);
    fill(h, 2);     /* slabs from the pool */
    flush_round(h); /* the next active generation takes generation 1's tables */
    size_t before = vg_alloc_live_bytes();
    fill(h, 3);
    size_t grew = vg_alloc_live_bytes() - before;
    cr_assert_lt(grew, one / 10, "generation 3 allocated %zu bytes (a fresh one: %zu)", grew,
                 one);
    cr_assert_str_eq(copy(h, "Xone17.3", 0), "3:3");
    cr_assert_eq(strlen(copy(h, "Xmid7", 0)), 100 * 4 - 1);
    for (int r = 4; r < 8; r++) { /* what is kept stays about one generation */
        flush_round(h);
        fill(h, r);
    }
    cr_assert_lt(vg_alloc_live_bytes() - empty, 4 * one);
    flush_round(h);
    span_head_trim(h); /* idle: the pool, the spare tables and the empty active ones */
    cr_assert_eq(span_head_bytes(h), 0);
    cr_assert_eq(vg_alloc_live_bytes(), empty, "all given back");
    fill(h, 9); /* and the head goes on */
    cr_assert_str_eq(copy(h, "Xone5.9", 0), "9:9");
    span_head_free(h);
    cr_assert_eq(vg_alloc_live_bytes(), live0);
}

/* Every allocation of a generation filled from a pool, and of its sort, failing in turn:
 * adds report it, the head stays usable, a failed sort is tried again, nothing leaks. */
Test(span_head, allocation_failures_on_the_reuse_path)
{
    size_t live0 = vg_alloc_live_bytes();
    int failed = 0;
    for (uint64_t n = 1; n < 60; n++) {
        struct span_head *h = span_head_new();
        fill(h, 1);
        flush_round(h);
        struct span_head_posting p = post(2, 2);
        char key[32];
        bool ok = true;
        vg_alloc_fail_after(n);
        span_head_lock(h);
        for (int i = 0; ok && i < 9000; i++) {
            snprintf(key, sizeof key, i % 3 ? "Xbig" : "Xk%d", i);
            ok = span_head_add(h, key, strlen(key), span_head_hash(key, strlen(key)), &p, 1);
        }
        span_head_unlock(h);
        vg_alloc_fail_after(0);
        failed += !ok;
        add(h, "Xafter", 5, 9);
        cr_assert_str_eq(copy(h, "Xafter", 0), "5:9");
        span_head_lock(h);
        cr_assert(span_head_freeze(h));
        span_head_unlock(h);
        const struct span_head_term *t;
        bool oom;
        vg_alloc_fail_after(n % 3 + 1);
        size_t got = span_head_frozen(h, &t, &oom);
        vg_alloc_fail_after(0);
        if (!got)
            cr_assert(oom, "no terms only when out of memory");
        got = span_head_frozen(h, &t, &oom); /* tried again */
        cr_assert_gt(got, 0);
        cr_assert_not(oom);
        for (size_t i = 1; i < got; i++) {
            size_t m = t[i - 1].klen < t[i].klen ? t[i - 1].klen : t[i].klen;
            int c = memcmp(t[i - 1].key, t[i].key, m);
            cr_assert(c < 0 || (c == 0 && t[i - 1].klen < t[i].klen),
                      "terms %zu and %zu out of order (failure at %llu)", i - 1, i,
                      (unsigned long long)(n % 3 + 1));
        }
        span_head_release(h);
        span_head_trim(h);
        span_head_free(h);
        cr_assert_eq(vg_alloc_live_bytes(), live0, "allocation %llu leaked",
                     (unsigned long long)n);
    }
    cr_assert_gt(failed, 5);
}

/* Sorting a copy: the input stays as it was; in-order, reversed and shuffled inputs
 * come out as span_head_sort puts them; a scratch that cannot grow says so. */
Test(span_head, sort_copy_leaves_the_input_alone)
{
    enum { N = 2000 };
    static struct span_head_posting in[N], keep[N], want[N];
    struct span_head_sort_scratch s = { 0 };
    for (int shape = 0; shape < 3; shape++) {
        uint64_t x = 99;
        for (int i = 0; i < N; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int64_t t = shape == 0 ? N - i : shape == 1 ? i * 1000003LL : (int64_t)(x % 5000);
            in[i] = post(t, (uint8_t)(x >> 20));
        }
        memcpy(keep, in, sizeof in);
        memcpy(want, in, sizeof in);
        span_head_sort(want, N);
        const struct span_head_posting *got = span_head_sort_copy(in, N, &s);
        cr_assert_not_null(got);
        cr_assert_eq(memcmp(got, want, sizeof want), 0, "shape %d", shape);
        cr_assert_eq(memcmp(in, keep, sizeof in), 0, "input untouched");
        span_head_sort_with(in, N, &s);
        cr_assert_eq(memcmp(in, want, sizeof want), 0, "in place, shape %d", shape);
    }
    span_head_sort_scratch_free(&s);
    vg_alloc_fail_after(1);
    cr_assert_null(span_head_sort_copy(keep, N, &s));
    span_head_sort_with(keep, N, &s); /* falls back to qsort */
    vg_alloc_fail_after(0);
    cr_assert_eq(memcmp(keep, want, sizeof want), 0);
    span_head_sort_scratch_free(&s);
}
