/* Tests storage/spanstore/span_index.c: hour and duration buckets, newest-first entry
 * suffixes, index list keys and postings, registry keys parsed back, prefix-free terms, summary merging (provisional
 * root, late root, errors) and the summary and counter records refusing bad bytes. */
#include <criterion/criterion.h>

#include <string.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/spanstore/span_index.h"
#include "span_fixture.h"

Test(span_index, buckets)
{
    cr_assert_eq(span_index_bucket(0), 0);
    cr_assert_eq(span_index_bucket(-5), 0);
    cr_assert_eq(span_index_bucket(SPAN_INDEX_BUCKET_NS - 1), 0);
    cr_assert_eq(span_index_bucket(SPAN_INDEX_BUCKET_NS), 1);
    cr_assert_eq(span_index_bucket_start(span_index_bucket(FX_T0 + 17)),
                 FX_T0 / SPAN_INDEX_BUCKET_NS * SPAN_INDEX_BUCKET_NS);
    cr_assert_eq(span_index_duration_bucket(0), 0);
    cr_assert_eq(span_index_duration_bucket(1023), 0);
    cr_assert_eq(span_index_duration_bucket(1024), 1);
    cr_assert_eq(span_index_duration_bucket(INT64_MAX), 53);
    for (uint8_t b = 1; b < 50; b++) {
        cr_assert_eq(span_index_duration_bucket(span_index_duration_floor(b)), b);
        cr_assert_eq(span_index_duration_bucket(span_index_duration_floor(b) - 1), b - 1);
    }
}

Test(span_index, suffix_orders_newest_first_and_round_trips)
{
    int64_t times[] = { FX_T0 + 5, FX_T0, 1, -7 };
    struct vg_buf prev;
    vg_buf_init(&prev);
    for (size_t i = 0; i < 4; i++) {
        struct vg_buf k;
        vg_buf_init(&k);
        struct span_index_term t = { .kind = SPAN_IX_ALL };
        span_index_term_key(&k, 3, &t);
        uint8_t tid[16], back[16];
        fx_id(tid, 16, i + 1);
        span_index_put_suffix(&k, times[i], tid);
        int64_t t2;
        cr_assert(span_index_get_suffix(k.p, k.len, &t2, back));
        cr_assert_eq(t2, times[i]);
        cr_assert_arr_eq(back, tid, 16);
        uint32_t b;
        cr_assert(span_index_key_bucket(k.p, k.len, &b));
        cr_assert_eq(b, 3);
        if (i)
            cr_assert_lt(vg_str_cmp((struct vg_str){ prev.p, prev.len },
                                    (struct vg_str){ k.p, k.len }), 0, "older sorts later");
        vg_buf_free(&prev);
        prev = k;
    }
    vg_buf_free(&prev);
    cr_assert_not(span_index_get_suffix("X", 1, &(int64_t){ 0 }, (uint8_t[16]){ 0 }));
}

Test(span_index, list_keys_order_newest_first_and_postings_parse_back)
{
    struct vg_buf a, b, v;
    vg_buf_init(&a);
    vg_buf_init(&b);
    vg_buf_init(&v);
    struct span_index_term t = { .kind = SPAN_IX_SERVICE, .a = VG_STR("cart") };
    span_index_term_key(&a, 7, &t);
    span_index_term_key(&b, 7, &t);
    size_t plen = a.len;
    span_index_put_list_suffix(&a, FX_T0 + 10, 99);
    span_index_put_list_suffix(&b, FX_T0, 3);
    cr_assert_eq(a.len, plen + SPAN_INDEX_LIST_SUFFIX_LEN);
    cr_assert_lt(vg_str_cmp((struct vg_str){ a.p, a.len }, (struct vg_str){ b.p, b.len }), 0,
                 "the newer list sorts first whatever its write id");
    int64_t newest;
    cr_assert(span_index_get_list_suffix(a.p, a.len, &newest));
    cr_assert_eq(newest, FX_T0 + 10);
    cr_assert_not(span_index_get_list_suffix("X\0\0\0\7s", 6, &newest));
    uint8_t tid[16], back[16];
    for (int i = 0; i < 3; i++) {
        fx_id(tid, 16, (uint64_t)i + 1);
        span_index_put_suffix(&v, FX_T0 - i, tid);
    }
    size_t n;
    cr_assert(span_index_list_count(v.len, &n));
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        int64_t pt;
        span_index_get_posting(v.p + i * SPAN_INDEX_SUFFIX_LEN, &pt, back);
        fx_id(tid, 16, i + 1);
        cr_assert_eq(pt, FX_T0 - (int64_t)i);
        cr_assert_arr_eq(back, tid, 16);
    }
    cr_assert_not(span_index_list_count(0, &n), "an empty list is malformed");
    cr_assert_not(span_index_list_count(v.len - 1, &n), "a cut posting is malformed");
    vg_buf_free(&a);
    vg_buf_free(&b);
    vg_buf_free(&v);
}

Test(span_index, registry_keys_parse_back)
{
    struct span_index_term in[] = {
        { .kind = SPAN_REG_SERVICE, .a = VG_STR("cart") },
        { .kind = SPAN_REG_OP, .a = VG_STR("cart"), .b = VG_STR("GET /"), .op_kind = 2 },
        { .kind = SPAN_REG_KEY, .byte = SPAN_SCOPE_RESOURCE, .a = VG_STR("host.name") },
        { .kind = SPAN_REG_VALUE, .byte = SPAN_SCOPE_SPAN, .a = VG_STR("http.status_code"),
          .vtype = SPAN_VAL_INT, .b = VG_STR("500") },
        { .kind = SPAN_REG_VALUE, .byte = SPAN_SCOPE_SPAN, .a = VG_STR("k"),
          .vtype = SPAN_VAL_STRING, .b = VG_STR("") },
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        struct vg_buf k;
        vg_buf_init(&k);
        span_index_term_key(&k, 77, &in[i]);
        struct span_index_term out;
        struct vg_err err = { 0 };
        cr_assert_eq(span_index_term_parse(k.p, k.len, &out, &err), 0, "%zu: %s", i, err.msg);
        cr_assert_eq(out.kind, in[i].kind);
        cr_assert_eq(out.byte, in[i].byte);
        cr_assert_eq(out.op_kind, in[i].op_kind);
        cr_assert_eq(out.vtype, in[i].vtype);
        cr_assert(vg_str_eq(out.a, in[i].a));
        cr_assert(vg_str_eq(out.b, in[i].b));
        if (in[i].kind != SPAN_REG_VALUE) /* a value runs to the end: extra bytes are its */
            cr_assert_eq(span_index_term_parse(k.p, k.len - 1, &out, &err), VG_EINVAL);
        vg_buf_free(&k);
    }
    struct vg_buf k;
    vg_buf_init(&k);
    struct span_index_term t = { .kind = SPAN_IX_SERVICE, .a = VG_STR("a") };
    span_index_term_key(&k, 1, &t);
    cr_assert_eq(span_index_term_parse(k.p, k.len, &t, NULL), VG_EINVAL, "not a registry kind");
    cr_assert_eq(span_index_term_parse("S", 1, &t, NULL), VG_EINVAL);
    vg_buf_free(&k);
}

Test(span_index, terms_are_prefix_free)
{
    struct vg_buf a, b;
    vg_buf_init(&a);
    vg_buf_init(&b);
    struct span_index_term ta = { .kind = SPAN_IX_SERVICE, .a = VG_STR("a") };
    struct span_index_term tb = { .kind = SPAN_IX_SERVICE, .a = VG_STR("ab") };
    span_index_term_key(&a, 1, &ta);
    span_index_term_key(&b, 1, &tb);
    cr_assert(b.len < a.len || memcmp(a.p, b.p, a.len) != 0);
    vg_buf_free(&a);
    vg_buf_free(&b);
}

Test(span_index, summary_merges_late_root_and_round_trips)
{
    struct span_index_summary sum = { 0 };
    struct fx_span child, root, late;
    fx_span(&child, 1, 2, 1, "db", "SELECT", FX_T0 + 10, 5, SPAN_STATUS_ERROR);
    fx_span(&late, 1, 3, 1, "cache", "GET", FX_T0 + 2, 1, SPAN_STATUS_OK);
    fx_span(&root, 1, 1, 0, "web", "GET /", FX_T0, 100, SPAN_STATUS_UNSET);
    span_index_summary_add(&sum, &child.s, 100);
    cr_assert_not(sum.has_root);
    cr_assert(vg_str_eq_c(sum.root_service, "db"), "provisional root: the earliest span");
    span_index_summary_add(&sum, &late.s, 50);
    cr_assert(vg_str_eq_c(sum.root_service, "cache"), "an earlier span replaces it");
    span_index_summary_add(&sum, &root.s, 70);
    span_index_summary_add(&sum, &child.s, 1); /* nothing displaces a real root */
    cr_assert(sum.has_root);
    cr_assert(vg_str_eq_c(sum.root_name, "GET /"));
    cr_assert_eq(sum.start_ns, FX_T0);
    cr_assert_eq(sum.end_ns, FX_T0 + 100);
    cr_assert_eq(sum.spans, 4);
    cr_assert_eq(sum.errors, 2);
    cr_assert_eq(sum.bytes, 221);

    struct vg_buf b;
    vg_buf_init(&b);
    span_index_summary_encode(&sum, &b);
    struct span_index_summary d;
    cr_assert_eq(span_index_summary_decode(b.p, b.len, &d, NULL), 0);
    cr_assert_eq(d.start_ns, sum.start_ns);
    cr_assert_eq(d.end_ns, sum.end_ns);
    cr_assert_eq(d.spans, 4);
    cr_assert_eq(d.errors, 2);
    cr_assert_eq(d.bytes, 221);
    cr_assert(d.has_root);
    cr_assert(vg_str_eq_c(d.root_service, "web"));
    for (size_t n = 0; n < b.len; n++)
        cr_assert_eq(span_index_summary_decode(b.p, n, &d, NULL), VG_EINVAL, "%zu bytes", n);
    vg_buf_putc(&b, 0);
    cr_assert_eq(span_index_summary_decode(b.p, b.len, &d, NULL), VG_EINVAL);
    vg_buf_free(&b);
}

/* Version 2 lists the trace's chunk ids (encode appends new_chunk); version 1, written
 * by stores that kept spans under 'S' keys, decodes with legacy set and no chunks, and
 * the legacy flag survives a re-encode. */
Test(span_index, summary_chunk_list_and_version_1)
{
    struct span_index_summary sum = { .start_ns = 5, .end_ns = 9, .spans = 1,
                                      .root_service = VG_STR("web"), .root_name = VG_STR("x"),
                                      .new_chunk = 0x0102030405060708ULL };
    struct vg_buf b, b2;
    vg_buf_init(&b);
    vg_buf_init(&b2);
    span_index_summary_encode(&sum, &b);
    struct span_index_summary d;
    cr_assert_eq(span_index_summary_decode(b.p, b.len, &d, NULL), 0);
    cr_assert_eq(d.nchunks, 1);
    cr_assert_eq(span_index_summary_chunk(&d, 0), 0x0102030405060708ULL);
    cr_assert_not(d.legacy);
    d.new_chunk = 77;
    span_index_summary_encode(&d, &b2);
    struct span_index_summary d2;
    cr_assert_eq(span_index_summary_decode(b2.p, b2.len, &d2, NULL), 0);
    cr_assert_eq(d2.nchunks, 2);
    cr_assert_eq(span_index_summary_chunk(&d2, 0), 0x0102030405060708ULL);
    cr_assert_eq(span_index_summary_chunk(&d2, 1), 77);

    /* A count larger than the bytes left is refused before anything is read. */
    b2.p[b2.len - 17] = 3;
    cr_assert_eq(span_index_summary_decode(b2.p, b2.len, &d2, NULL), VG_EINVAL);

    /* Version 1: the same record without the chunk list. */
    b.p[0] = 1;
    cr_assert_eq(span_index_summary_decode(b.p, b.len - 9, &d, NULL), 0);
    cr_assert(d.legacy);
    cr_assert_eq(d.nchunks, 0);
    cr_assert(vg_str_eq_c(d.root_service, "web"));
    d.new_chunk = 3;
    vg_buf_reset(&b2);
    span_index_summary_encode(&d, &b2);
    cr_assert_eq(b2.p[0], 2);
    cr_assert_eq(span_index_summary_decode(b2.p, b2.len, &d2, NULL), 0);
    cr_assert(d2.legacy);
    cr_assert_eq(d2.nchunks, 1);
    b.p[0] = 3;
    cr_assert_eq(span_index_summary_decode(b.p, b.len, &d, NULL), VG_EINVAL);
    vg_buf_free(&b);
    vg_buf_free(&b2);
}

Test(span_index, counters_round_trip)
{
    struct span_index_counts c = { 1ULL << 40, 7, 123456 }, d;
    struct vg_buf b;
    vg_buf_init(&b);
    span_index_counts_encode(&c, &b);
    cr_assert_eq(span_index_counts_decode(b.p, b.len, &d, NULL), 0);
    cr_assert_eq(d.spans, c.spans);
    cr_assert_eq(d.traces, 7);
    cr_assert_eq(d.bytes, 123456);
    cr_assert_eq(span_index_counts_decode(b.p, b.len - 1, &d, NULL), VG_EINVAL);
    vg_buf_free(&b);
}

/* A segment's directory record round-trips with its buckets and listed-term hashes;
 * span_index_seg_listed finds exactly the listed ones; cut or padded records are
 * refused with a message. */
Test(span_index, segment_record_round_trips_and_lists_terms)
{
    uint64_t h1[] = { 3, 90, 1ULL << 60 }, h2[] = { 7 };
    struct span_index_seg_bucket b[2] = {
        { 472222, FX_T0, FX_T0 + FX_MS, 120, h1, 3 },
        { 472223, FX_T0 + FX_HOUR, FX_T0 + FX_HOUR, 1, h2, 1 },
    };
    struct span_index_seg s = { 77, 70, b, 2 }, d;
    struct vg_buf out;
    vg_buf_init(&out);
    span_index_seg_encode(&s, &out);
    struct vg_err err = { 0 };
    cr_assert_eq(span_index_seg_decode(77, out.p, out.len, &d, &err), 0, "%s", err.msg);
    cr_assert_eq(d.seg, 77);
    cr_assert_eq(d.watermark, 70);
    cr_assert_eq(d.nb, 2);
    cr_assert_eq(d.b[0].bucket, 472222);
    cr_assert_eq(d.b[0].min_t, FX_T0);
    cr_assert_eq(d.b[0].max_t, FX_T0 + FX_MS);
    cr_assert_eq(d.b[0].n, 120);
    cr_assert_eq(d.b[1].nlisted, 1);
    for (size_t i = 0; i < 3; i++)
        cr_assert(span_index_seg_listed(&d.b[0], h1[i]));
    cr_assert_not(span_index_seg_listed(&d.b[0], 4));
    cr_assert_not(span_index_seg_listed(&d.b[0], 7));
    cr_assert(span_index_seg_listed(&d.b[1], 7));
    vg_free(d.b);
    for (size_t cut = 0; cut < out.len; cut++)
        cr_assert_eq(span_index_seg_decode(77, out.p, cut, &d, &err), VG_EINVAL, "cut %zu", cut);
    vg_buf_putc(&out, 0);
    cr_assert_eq(span_index_seg_decode(77, out.p, out.len, &d, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "trailing") != NULL, "%s", err.msg);
    vg_buf_free(&out);
}

/* The record key sorts after every list and packed block of its segment (so a flush
 * writes keys in order) and before the next segment; both record forms are told apart
 * from list and block keys. */
Test(span_index, segment_record_key_sorts_after_its_lists)
{
    struct vg_buf term, list, pack, rec, old, next;
    struct vg_buf *all[] = { &term, &list, &pack, &rec, &old, &next };
    for (size_t i = 0; i < 6; i++)
        vg_buf_init(all[i]);
    struct span_index_term t = { .kind = SPAN_IX_SERVICE, .a = VG_STR("checkout") };
    span_index_term_key(&term, UINT32_MAX - 1, &t);
    span_index_seg_term(&list, 41, term.p, term.len);
    span_index_put_list_suffix(&list, FX_T0, 3);
    span_index_seg_pack_key(&pack, 41, term.p, term.len);
    span_index_seg_rec_key(&rec, 41);
    span_index_seg_key(&old, 41);
    span_index_seg_key(&next, 42);
    cr_assert_eq(rec.len, SPAN_INDEX_SEG_REC_LEN);
    const struct vg_buf *order[] = { &old, &pack, &list, &rec, &next };
    for (size_t i = 1; i < 5; i++) {
        size_t n = order[i - 1]->len < order[i]->len ? order[i - 1]->len : order[i]->len;
        int c = memcmp(order[i - 1]->p, order[i]->p, n);
        cr_assert(c < 0 || (c == 0 && order[i - 1]->len < order[i]->len), "pair %zu", i);
    }
    uint64_t seg = 0;
    cr_assert(span_index_seg_of(rec.p, rec.len, &seg));
    cr_assert_eq(seg, 41);
    cr_assert(span_index_seg_is_rec(rec.p, rec.len));
    cr_assert(span_index_seg_is_rec(old.p, old.len));
    cr_assert_not(span_index_seg_is_rec(list.p, list.len));
    cr_assert_not(span_index_seg_is_rec(pack.p, pack.len));
    cr_assert_not(span_index_seg_is_rec(pack.p, SPAN_INDEX_SEG_REC_LEN)); /* 'G' seg bucket */
    for (size_t i = 0; i < 6; i++)
        vg_buf_free(all[i]);
}
