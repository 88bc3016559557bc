/* Tests storage/logstore/lchunk.c (and the entry encoding of lentry.c it stores):
 * round trips with metadata and equal times, header-only reads, refusal of corrupt
 * values (bad magic, truncated header, wrong sizes, out-of-order entries, a payload
 * that inflates to something else), allocation failure. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/logstore/lchunk.h"

#include <string.h>

static struct label m1[2] = { { VG_STR("trace_id"), VG_STR("abc123") },
                              { VG_STR("level"), VG_STR("warn") } };
static struct lentry es[4] = {
    { -5, VG_STR("first line"), NULL, 0 },
    { -5, VG_STR("same time, kept second"), m1, 2 },
    { 1000, VG_STR(""), NULL, 0 },
    { 1000000000, VG_STR("last"), m1, 1 },
};

static void encode(struct vg_buf *b)
{
    struct lchunk_writer *w = lchunk_writer_new(3);
    cr_assert_not_null(w);
    struct vg_err err;
    vg_buf_init(b);
    cr_assert_eq(lchunk_encode(w, es, 4, b, &err), 0, "%s", err.msg);
    lchunk_writer_free(w);
}

Test(lchunk, round_trip_keeps_order_metadata_and_header_facts)
{
    struct vg_buf b;
    encode(&b);
    struct lchunk_header h;
    struct vg_err err;
    cr_assert_eq(lchunk_header_decode(b.p, b.len, &h, &err), 0, "%s", err.msg);
    cr_assert_eq(h.mint, -5);
    cr_assert_eq(h.maxt, 1000000000);
    cr_assert_eq(h.n, 4);
    cr_assert_eq(h.bytes, 10 + 22 + 4 + (8 + 6 + 5 + 4) + (8 + 6));
    struct lchunk_dctx *d = lchunk_dctx_new();
    struct lchunk_view v;
    cr_assert_eq(lchunk_open(d, &h, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v.n, 4);
    struct label meta[LENTRY_MAX_META];
    for (uint32_t i = 0; i < 4; i++) {
        struct lentry e;
        lchunk_entry(&v, i, &e, meta);
        cr_assert_eq(e.t, es[i].t);
        cr_assert(vg_str_eq(e.line, es[i].line));
        cr_assert_eq(e.nmeta, es[i].nmeta);
        for (size_t j = 0; j < e.nmeta; j++)
            cr_assert(vg_str_eq(e.meta[j].value, es[i].meta[j].value));
    }
    lchunk_view_free(&v);
    lchunk_dctx_free(d);
    vg_buf_free(&b);
}

static int open_bytes(const char *p, size_t len, struct vg_err *err)
{
    struct lchunk_header h;
    int rc = lchunk_header_decode(p, len, &h, err);
    if (rc)
        return rc;
    struct lchunk_dctx *d = lchunk_dctx_new();
    struct lchunk_view v;
    rc = lchunk_open(d, &h, &v, err);
    lchunk_view_free(&v);
    lchunk_dctx_free(d);
    return rc;
}

Test(lchunk, corrupt_values_are_refused_with_a_reason)
{
    struct vg_buf b;
    encode(&b);
    struct vg_err err;
    char *c = vg_malloc(b.len);
    for (size_t cut = 0; cut < b.len; cut++)
        cr_assert_neq(open_bytes(b.p, cut, &err), 0, "truncated at %zu", cut);
    memcpy(c, b.p, b.len);
    c[0] = 'X';
    cr_assert_eq(open_bytes(c, b.len, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "magic"), "%s", err.msg);
    /* Claim one entry more than stored: the index walk notices. */
    memcpy(c, b.p, b.len);
    size_t n_at = 2 + 1 + 5; /* magic, version, zigzag(-5), span (5 bytes for 1e9+5) */
    cr_assert_eq(c[n_at], 4);
    c[n_at] = 3;
    cr_assert_eq(open_bytes(c, b.len, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "after the last entry") || strstr(err.msg, "span"), "%s", err.msg);
    /* Flip bytes everywhere: never a crash, often an error. */
    for (size_t i = 0; i < b.len; i++) {
        memcpy(c, b.p, b.len);
        c[i] ^= 0x5a;
        open_bytes(c, b.len, &err);
    }
    vg_free(c);
    vg_buf_free(&b);
}

Test(lchunk, allocation_failure_is_reported)
{
    for (uint64_t n = 1; n < 40; n++) {
        vg_alloc_fail_after(n);
        struct lchunk_writer *w = lchunk_writer_new(3);
        struct vg_buf b;
        vg_buf_init(&b);
        struct vg_err err;
        int rc = w ? lchunk_encode(w, es, 4, &b, &err) : VG_ENOMEM;
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "rc %d", rc);
        if (rc == 0)
            cr_assert_eq(open_bytes(b.p, b.len, &err), 0);
        vg_buf_free(&b);
        lchunk_writer_free(w);
    }
}
