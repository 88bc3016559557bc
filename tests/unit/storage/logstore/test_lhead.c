/* Tests storage/logstore/lhead.c: appends across pages, bounds and positions, sorted
 * collection of out-of-order entries (stable for equal times), captures that ignore
 * later appends, reference counting, allocation failure. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/logstore/lhead.h"

#include <stdio.h>

static char big[70000];

Test(lhead, capture_sees_only_what_was_there_and_sorts_stably)
{
    struct lhead *h = lhead_new(123);
    cr_assert_not_null(h);
    char line[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(line, sizeof line, "entry %d", i);
        struct lentry e = { (i % 10) * 100, vg_str_c(line), NULL, 0 };
        cr_assert_eq(lhead_append(h, &e, 7, (uint32_t)i), 0);
    }
    struct lentry huge = { 50, { big, sizeof big }, NULL, 0 }; /* larger than a page */
    cr_assert_eq(lhead_append(h, &huge, 8, 0), 0);
    cr_assert_eq(h->n, 3001);
    cr_assert_eq(h->mint, 0);
    cr_assert_eq(h->maxt, 900);
    cr_assert_not(h->ordered);
    cr_assert_eq(h->seq_lo, 7);
    cr_assert_eq(h->last_seq, 8);
    struct lhead_snap s;
    lhead_capture(h, &s);
    struct lentry later = { 0, VG_STR("after the capture"), NULL, 0 };
    cr_assert_eq(lhead_append(h, &later, 9, 0), 0);
    struct lhead_ref *refs;
    uint32_t n;
    cr_assert_eq(lhead_collect(&s, 0, 200, &refs, &n), 0);
    cr_assert_eq(n, 601, "times 0 and 100 (300 each) and the big one at 50");
    struct label meta[LENTRY_MAX_META];
    struct lentry e;
    lhead_entry(&refs[0], &e, meta);
    cr_assert(vg_str_eq_c(e.line, "entry 0"));
    lhead_entry(&refs[1], &e, meta);
    cr_assert(vg_str_eq_c(e.line, "entry 10"), "stable among equal times");
    lhead_entry(&refs[300], &e, meta);
    cr_assert_eq(e.line.len, sizeof big);
    for (uint32_t i = 1; i < n; i++)
        cr_assert_leq(refs[i - 1].t, refs[i].t);
    vg_free(refs);
    lhead_release(h); /* the capture still holds it */
    cr_assert_eq(lhead_collect(&s, INT64_MIN, INT64_MAX, &refs, &n), 0);
    cr_assert_eq(n, 3001);
    vg_free(refs);
    lhead_release(s.h);
}

Test(lhead, allocation_failure_leaves_the_head_unchanged)
{
    struct lhead *h = lhead_new(0);
    struct lentry e = { 1, { big, 5000 }, NULL, 0 };
    vg_alloc_fail_after(1);
    cr_assert_eq(lhead_append(h, &e, 1, 0), VG_ENOMEM);
    vg_alloc_fail_after(0);
    cr_assert_eq(h->n, 0);
    cr_assert_eq(lhead_append(h, &e, 1, 0), 0);
    cr_assert_eq(h->n, 1);
    lhead_release(h);
}
