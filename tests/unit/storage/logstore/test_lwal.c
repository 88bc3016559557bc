/* Tests storage/logstore/lwal.c: record round trip with several groups and metadata,
 * and refusal of malformed records (version, truncation, missing entries). */
#include <criterion/criterion.h>

#include "../../../../storage/logstore/lwal.h"

#include <string.h>

static struct label meta[1] = { { VG_STR("trace_id"), VG_STR("abc") } };
static struct lentry es[3] = { { 100, VG_STR("a"), meta, 1 },
                               { 50, VG_STR("earlier, out of order"), NULL, 0 },
                               { -1, VG_STR("negative time"), NULL, 0 } };

static void record(struct vg_buf *b)
{
    vg_buf_init(b);
    struct lwal_writer w;
    lwal_begin(&w, b);
    lwal_group(&w, 3, 2);
    lwal_entry(&w, &es[0]);
    lwal_entry(&w, &es[1]);
    lwal_group(&w, 9, 1);
    lwal_entry(&w, &es[2]);
    cr_assert_not(vg_buf_failed(b));
}

Test(lwal, round_trip)
{
    struct vg_buf b;
    record(&b);
    struct lwal_reader r;
    struct vg_err err;
    cr_assert_eq(lwal_reader_init(&r, b.p, b.len, &err), 0);
    uint64_t id;
    uint32_t n;
    struct label m[LENTRY_MAX_META];
    struct lentry e;
    cr_assert_eq(lwal_next_group(&r, &id, &n, &err), 1);
    cr_assert_eq(id, 3);
    cr_assert_eq(n, 2);
    cr_assert_eq(lwal_next_entry(&r, &e, m, &err), 0);
    cr_assert_eq(e.t, 100);
    cr_assert_eq(e.nmeta, 1);
    cr_assert(vg_str_eq_c(e.meta[0].value, "abc"));
    cr_assert_eq(lwal_next_entry(&r, &e, m, &err), 0);
    cr_assert_eq(e.t, 50);
    cr_assert_eq(lwal_next_group(&r, &id, &n, &err), 1);
    cr_assert_eq(id, 9);
    cr_assert_eq(lwal_next_entry(&r, &e, m, &err), 0);
    cr_assert_eq(e.t, -1);
    cr_assert(vg_str_eq_c(e.line, "negative time"));
    cr_assert_eq(lwal_next_group(&r, &id, &n, &err), 0);
    vg_buf_free(&b);
}

Test(lwal, malformed_records_are_refused)
{
    struct vg_buf b;
    record(&b);
    struct lwal_reader r;
    struct vg_err err;
    char v = 9;
    cr_assert_eq(lwal_reader_init(&r, &v, 1, &err), VG_EINVAL);
    cr_assert_eq(lwal_reader_init(&r, b.p, 0, &err), VG_EINVAL);
    for (size_t cut = 2; cut < b.len; cut++) { /* 1 byte: a valid empty record */
        cr_assert_eq(lwal_reader_init(&r, b.p, cut, &err), 0);
        uint64_t id;
        uint32_t n;
        struct label m[LENTRY_MAX_META];
        struct lentry e;
        int rc;
        while ((rc = lwal_next_group(&r, &id, &n, &err)) == 1)
            for (uint32_t i = 0; i < n && lwal_next_entry(&r, &e, m, &err) == 0; i++)
                ;
        /* Cutting exactly after the first group leaves a valid, shorter record. */
        size_t first_group_end = 1 + 2 + lentry_size(&es[0], 0) + lentry_size(&es[1], 100);
        cr_assert_eq(rc, cut == first_group_end ? 0 : VG_EINVAL, "cut at %zu of %zu", cut,
                     b.len);
    }
    /* Skipping entries is reported by the next group call. */
    cr_assert_eq(lwal_reader_init(&r, b.p, b.len, &err), 0);
    uint64_t id;
    uint32_t n;
    cr_assert_eq(lwal_next_group(&r, &id, &n, &err), 1);
    cr_assert_eq(lwal_next_group(&r, &id, &n, &err), VG_EINVAL);
    vg_buf_free(&b);
}
