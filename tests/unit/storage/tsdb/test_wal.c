/* Tests storage/tsdb/wal.c: record keys, encode/decode round trips (in-order and
 * out-of-order groups, negative and huge timestamps, NaN payloads) and rejection of
 * damaged records. */
#include <criterion/criterion.h>

#include "../../../../storage/tsdb/wal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

Test(wal, keys_sort_by_sequence_and_parse_back)
{
    unsigned char a[WAL_KEY_LEN], b[WAL_KEY_LEN];
    wal_key(a, 255);
    wal_key(b, 256);
    cr_assert_lt(memcmp(a, b, WAL_KEY_LEN), 0);
    uint64_t seq;
    cr_assert(wal_key_parse((const char *)b, WAL_KEY_LEN, &seq));
    cr_assert_eq(seq, 256);
    cr_assert_not(wal_key_parse((const char *)b, WAL_KEY_LEN - 1, &seq));
    cr_assert_not(wal_key_parse("S12345678", WAL_KEY_LEN, &seq));
}

Test(wal, records_round_trip_bit_exact)
{
    uint64_t stale_bits = 0x7ff0000000000002ULL;
    double stale;
    memcpy(&stale, &stale_bits, 8);
    struct vg_buf b;
    vg_buf_init(&b);
    struct wal_writer w;
    wal_begin(&w, &b);
    wal_group(&w, 7, 2, 1);
    wal_sample(&w, INT64_MIN + 1, -0.0);
    wal_sample(&w, INT64_MAX, stale);
    wal_sample(&w, -5, 1e300);
    wal_group(&w, UINT64_MAX, 0, 0);
    wal_group(&w, 1, 1, 0);
    wal_sample(&w, 1700000000000, 42);
    cr_assert_not(vg_buf_failed(&b));

    struct wal_reader r;
    struct wal_group g;
    struct vg_err err = { 0 };
    int64_t t;
    double v;
    cr_assert_eq(wal_reader_init(&r, b.p, b.len, &err), 0);
    cr_assert_eq(wal_next_group(&r, &g, &err), 1);
    cr_assert_eq(g.id, 7);
    cr_assert_eq(g.n_inorder, 2);
    cr_assert_eq(g.n_ooo, 1);
    cr_assert(wal_next_sample(&r, &t, &v));
    cr_assert_eq(t, INT64_MIN + 1);
    cr_assert(signbit(v));
    cr_assert(wal_next_sample(&r, &t, &v));
    cr_assert_eq(t, INT64_MAX);
    uint64_t bits;
    memcpy(&bits, &v, 8);
    cr_assert_eq(bits, stale_bits);
    cr_assert(wal_next_sample(&r, &t, &v));
    cr_assert_eq(t, -5);
    cr_assert_eq(v, 1e300);
    cr_assert_not(wal_next_sample(&r, &t, &v));
    cr_assert_eq(wal_next_group(&r, &g, &err), 1);
    cr_assert_eq(g.id, UINT64_MAX);
    cr_assert_eq(wal_next_group(&r, &g, &err), 1, "unread samples are skipped");
    cr_assert_eq(g.id, 1);
    cr_assert_eq(wal_next_group(&r, &g, &err), 0);
    vg_buf_free(&b);
}

Test(wal, damaged_records_are_rejected_without_reading_past_the_end)
{
    struct vg_buf b;
    vg_buf_init(&b);
    struct wal_writer w;
    wal_begin(&w, &b);
    wal_group(&w, 3, 3, 0);
    for (int i = 0; i < 3; i++)
        wal_sample(&w, 1000 + i, i);
    struct wal_reader r;
    struct wal_group g;
    struct vg_err err = { 0 };
    int64_t t;
    double v;
    /* Every truncation either fails cleanly or yields fewer samples. */
    for (size_t len = 0; len < b.len; len++) {
        int rc = wal_reader_init(&r, b.p, len, &err);
        if (len == 0) {
            cr_assert_eq(rc, VG_EINVAL);
            continue;
        }
        cr_assert_eq(rc, 0);
        int got = wal_next_group(&r, &g, &err);
        if (got == 1) {
            int n = 0;
            while (wal_next_sample(&r, &t, &v))
                n++;
            cr_assert_lt(n, 3);
            got = wal_next_group(&r, &g, &err);
        }
        cr_assert(got == VG_EINVAL || (len == 1 && got == 0), "len %zu got %d", len, got);
    }
    char bad_version[] = { 9 };
    cr_assert_eq(wal_reader_init(&r, bad_version, 1, &err), VG_EINVAL);
    cr_assert_not_null(strstr(err.msg, "version"));
    /* A count far larger than the bytes present. */
    const char huge[] = { 1, 1, (char)0xff, (char)0xff, (char)0xff, 0x0f, 0 };
    cr_assert_eq(wal_reader_init(&r, huge, sizeof huge, &err), 0);
    cr_assert_eq(wal_next_group(&r, &g, &err), VG_EINVAL);
    vg_buf_free(&b);
}

/* The next group of r is id with n_inorder in-order samples (the rest out of order), the
 * first of them (t, v). */
static void expect_group(struct wal_reader *r, uint64_t id, uint32_t n_inorder, int64_t t,
                         double v)
{
    struct wal_group g;
    struct vg_err err = { 0 };
    int64_t gt;
    double gv;
    cr_assert_eq(wal_next_group(r, &g, &err), 1, "%s", err.msg);
    cr_assert_eq(g.id, id);
    cr_assert_eq(g.n_inorder, n_inorder);
    cr_assert(wal_next_sample(r, &gt, &gv));
    cr_assert_eq(gt, t);
    cr_assert_eq(gv, v);
}

/* Version 1 records (ids absolute, timestamps relative to 0 in every group) written by
 * earlier releases are still replayed. */
Test(wal, version_1_records_still_decode)
{
    /* group id 300 (uvarint ac 02), 1 in-order, 0 ooo: t 1000 (zigzag 2000 = d0 0f),
     * value 1.0; group id 5, 0 in-order, 1 ooo: t 1000 again relative to 0. */
    const unsigned char rec[] = {
        1,    0xac, 0x02, 1, 0, 0xd0, 0x0f, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
        0x05, 0,    1,    0xd0, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0x40,
    };
    struct wal_reader r;
    struct wal_group g;
    struct vg_err err = { 0 };
    cr_assert_eq(wal_reader_init(&r, (const char *)rec, sizeof rec, &err), 0, "%s", err.msg);
    expect_group(&r, 300, 1, 1000, 1.0);
    expect_group(&r, 5, 0, 1000, 2.0);
    cr_assert_eq(wal_next_group(&r, &g, &err), 0);
}

/* Version 2: ids and timestamps are deltas across groups, so a record of one sample for
 * each of many series scraped together costs the value plus about three bytes; ids that
 * go down, by far, and timestamps that go back still round-trip. */
Test(wal, version_2_deltas_across_groups)
{
    struct vg_buf b;
    vg_buf_init(&b);
    struct wal_writer w;
    wal_begin(&w, &b);
    for (uint64_t id = 1000; id < 1100; id++) {
        wal_group(&w, id, 1, 0);
        wal_sample(&w, 1700000000000, (double)id);
    }
    cr_assert_eq(b.p[0], WAL_VERSION);
    cr_assert_lt(b.len, 1 + 100 * 12 + 8, "%zu bytes", b.len);
    wal_group(&w, 3, 0, 1);
    wal_sample(&w, -7, 1);
    wal_group(&w, UINT64_MAX, 1, 0);
    wal_sample(&w, INT64_MAX, 2);
    wal_group(&w, 0, 1, 0);
    wal_sample(&w, INT64_MIN, 3);
    cr_assert_not(vg_buf_failed(&b));
    struct wal_reader r;
    struct wal_group g;
    struct vg_err err = { 0 };
    cr_assert_eq(wal_reader_init(&r, b.p, b.len, &err), 0);
    for (uint64_t id = 1000; id < 1100; id++) {
        if (id % 2 == 0) {
            expect_group(&r, id, 1, 1700000000000, (double)id);
            continue;
        }
        cr_assert_eq(wal_next_group(&r, &g, &err), 1); /* samples skipped: deltas stay right */
        cr_assert_eq(g.id, id);
    }
    expect_group(&r, 3, 0, -7, 1);
    expect_group(&r, UINT64_MAX, 1, INT64_MAX, 2);
    expect_group(&r, 0, 1, INT64_MIN, 3);
    cr_assert_eq(wal_next_group(&r, &g, &err), 0);
    vg_buf_free(&b);
}
