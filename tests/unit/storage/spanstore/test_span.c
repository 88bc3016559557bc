/* Tests storage/spanstore/span.c: encode/decode round trips of every field and value
 * type, the header-only decoder, validation, text forms, and a decoder that refuses
 * every truncation, bad enum byte, oversized count and trailing byte, and reports
 * allocation failure; chunks of versions 2, 3 and 4 give back every span byte for byte,
 * and malformed version-4 chunks are refused with the offset and field. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/spanstore/span.h"
#include "span_fixture.h"

#include <math.h>

static struct vg_buf encode(const struct span *s)
{
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_err err = { 0 };
    cr_assert_eq(span_encode(s, &b, &err), 0, "%s", err.msg);
    return b;
}

static void full_span(struct fx_span *f)
{
    fx_span(f, 42, 7, 3, "checkout", "GET /cart", FX_T0, 12 * FX_MS, SPAN_STATUS_ERROR);
    f->s.flags = 0x301;
    f->s.trace_state = VG_STR("vendor=x");
    f->s.dropped_attrs = 2;
    f->s.dropped_events = 3;
    f->s.dropped_links = 4;
    f->s.dropped_resource_attrs = 5;
    f->attrs[5] = (struct span_attr){ VG_STR("blob"), SPAN_VAL_BYTES, .v.s = { "\0\1\2", 3 } };
    f->attrs[4] = (struct span_attr){ VG_STR("neg"), SPAN_VAL_INT, .v.i = INT64_MIN };
    f->attrs[3] = (struct span_attr){ VG_STR("arr"), SPAN_VAL_ARRAY, .v.s = VG_STR("[1,2]") };
    f->res[2] = (struct span_attr){ VG_STR("m"), SPAN_VAL_MAP, .v.s = VG_STR("{\"a\":1}") };
    f->ev.time_ns = FX_T0 - 5; /* an event before the start is legal */
    f->link = (struct span_link){ .trace_state = VG_STR("k=v"), .flags = 1,
                                  .attrs = f->ev_attrs, .nattrs = 1, .dropped_attrs = 9 };
    fx_id(f->link.trace_id, SPAN_TRACE_ID_LEN, 99);
    fx_id(f->link.span_id, SPAN_ID_LEN, 98);
    f->s.links = &f->link;
    f->s.nlinks = 1;
    f->s.scope_attrs = &f->res[1];
    f->s.nscope_attrs = 1;
}

Test(span, round_trip_keeps_every_field)
{
    struct fx_span f;
    full_span(&f);
    struct vg_buf b = encode(&f.s);
    struct vg_arena *a = vg_arena_new(1024);
    struct span d;
    struct vg_err err = { 0 };
    cr_assert_eq(span_decode(b.p, b.len, a, &d, &err), 0, "%s", err.msg);
    cr_assert_arr_eq(d.trace_id, f.s.trace_id, SPAN_TRACE_ID_LEN);
    cr_assert_arr_eq(d.span_id, f.s.span_id, SPAN_ID_LEN);
    cr_assert_arr_eq(d.parent_span_id, f.s.parent_span_id, SPAN_ID_LEN);
    cr_assert_eq(d.flags, 0x301);
    cr_assert_eq(d.kind, SPAN_KIND_CLIENT);
    cr_assert_eq(d.status, SPAN_STATUS_ERROR);
    cr_assert_eq(d.start_ns, FX_T0);
    cr_assert_eq(d.end_ns, FX_T0 + 12 * FX_MS);
    cr_assert(vg_str_eq_c(d.name, "GET /cart"));
    cr_assert(vg_str_eq_c(d.service, "checkout"));
    cr_assert(vg_str_eq_c(d.status_message, "upstream failed"));
    cr_assert(vg_str_eq_c(d.trace_state, "vendor=x"));
    cr_assert(vg_str_eq_c(d.scope_name, "io.opentelemetry.http"));
    cr_assert(vg_str_eq_c(d.scope_version, "1.2.3"));
    cr_assert_eq(d.nattrs, 6);
    cr_assert_eq(d.attrs[4].v.i, INT64_MIN);
    cr_assert_eq(d.attrs[5].type, SPAN_VAL_BYTES);
    cr_assert_eq(d.attrs[5].v.s.len, 3);
    cr_assert_eq(memcmp(d.attrs[5].v.s.p, "\0\1\2", 3), 0);
    cr_assert_eq(d.attrs[1].v.i, 500);
    cr_assert_eq(d.attrs[2].type, SPAN_VAL_STRING);
    cr_assert_eq(d.nresource_attrs, 3);
    cr_assert_eq(d.resource_attrs[2].type, SPAN_VAL_MAP);
    cr_assert_eq(d.nscope_attrs, 1);
    cr_assert_eq(d.dropped_attrs, 2);
    cr_assert_eq(d.dropped_events, 3);
    cr_assert_eq(d.dropped_links, 4);
    cr_assert_eq(d.dropped_resource_attrs, 5);
    cr_assert_eq(d.nevents, 1);
    cr_assert_eq(d.events[0].time_ns, FX_T0 - 5);
    cr_assert(vg_str_eq_c(d.events[0].name, "exception"));
    cr_assert_eq(d.events[0].nattrs, 2);
    cr_assert_eq(d.nlinks, 1);
    cr_assert_arr_eq(d.links[0].trace_id, f.link.trace_id, SPAN_TRACE_ID_LEN);
    cr_assert_eq(d.links[0].dropped_attrs, 9);
    cr_assert_eq(d.links[0].flags, 1);
    /* Re-encoding what was decoded gives the same bytes (doubles bit for bit too). */
    struct vg_buf b2 = encode(&d);
    cr_assert_eq(b2.len, b.len);
    cr_assert_eq(memcmp(b2.p, b.p, b.len), 0);
    vg_buf_free(&b2);
    vg_buf_free(&b);
    vg_arena_free(a);
}

Test(span, doubles_and_bools_survive_bit_exact)
{
    struct fx_span f;
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 0, SPAN_STATUS_OK);
    f.attrs[4].v.d = -0.0;
    f.attrs[3] = (struct span_attr){ VG_STR("nan"), SPAN_VAL_DOUBLE, .v.d = NAN };
    struct vg_buf b = encode(&f.s);
    struct vg_arena *a = vg_arena_new(1024);
    struct span d;
    cr_assert_eq(span_decode(b.p, b.len, a, &d, NULL), 0);
    cr_assert(signbit(d.attrs[4].v.d));
    cr_assert(isnan(d.attrs[3].v.d));
    cr_assert_eq(d.attrs[5].v.b, true);
    cr_assert(span_is_root(&d));
    vg_buf_free(&b);
    vg_arena_free(a);
}

Test(span, header_decoder_reads_ids_and_times_only)
{
    struct fx_span f;
    full_span(&f);
    struct vg_buf b = encode(&f.s);
    struct span h;
    cr_assert_eq(span_decode_header(b.p, b.len, &h, NULL), 0);
    cr_assert_eq(h.end_ns - h.start_ns, 12 * FX_MS);
    cr_assert_arr_eq(h.span_id, f.s.span_id, SPAN_ID_LEN);
    cr_assert_eq(h.nattrs, 0);
    vg_buf_free(&b);
}

Test(span, every_truncation_is_refused)
{
    struct fx_span f;
    full_span(&f);
    struct vg_buf b = encode(&f.s);
    struct vg_arena *a = vg_arena_new(1024);
    for (size_t n = 0; n < b.len; n++) {
        struct span d;
        struct vg_err err = { 0 };
        cr_assert_eq(span_decode(b.p, n, a, &d, &err), VG_EINVAL, "prefix of %zu bytes", n);
        cr_assert(strstr(err.msg, "malformed"), "%s", err.msg);
    }
    struct vg_buf more = encode(&f.s);
    vg_buf_putc(&more, 0);
    struct vg_err err = { 0 };
    struct span d;
    cr_assert_eq(span_decode(more.p, more.len, a, &d, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "trailing"), "%s", err.msg);
    vg_buf_free(&more);
    vg_buf_free(&b);
    vg_arena_free(a);
}

/* Offsets in the fixed header: version 0, ids 1..32, flags 33 (1 byte here). */
Test(span, bad_version_kind_status_type_and_bool_are_refused)
{
    struct fx_span f;
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_OK);
    struct vg_buf b = encode(&f.s);
    struct vg_arena *a = vg_arena_new(1024);
    struct span d;
    struct { size_t off; uint8_t val; const char *field; } cases[] = {
        { 0, 2, "version" }, { 34, 6, "kind" }, { 35, 3, "status" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vg_buf c = encode(&f.s);
        c.p[cases[i].off] = (char)cases[i].val;
        struct vg_err err = { 0 };
        cr_assert_eq(span_decode(c.p, c.len, a, &d, &err), VG_EINVAL, "%s", cases[i].field);
        cr_assert(strstr(err.msg, cases[i].field), "%s", err.msg);
        vg_buf_free(&c);
    }
    /* The bool of cache.hit is the byte after its type byte. */
    const char *key = memmem(b.p, b.len, "cache.hit", 9);
    cr_assert_not_null(key);
    size_t boff = (size_t)(key - b.p) + 9 + 1;
    cr_assert_eq(b.p[boff - 1], SPAN_VAL_BOOL);
    b.p[boff] = 2;
    cr_assert_eq(span_decode(b.p, b.len, a, &d, NULL), VG_EINVAL);
    b.p[boff] = 1;
    b.p[boff - 1] = 9; /* no such value type */
    cr_assert_eq(span_decode(b.p, b.len, a, &d, NULL), VG_EINVAL);
    b.p[boff - 1] = 0;
    cr_assert_eq(span_decode(b.p, b.len, a, &d, NULL), VG_EINVAL);
    vg_buf_free(&b);
    vg_arena_free(a);
}

Test(span, huge_counts_and_lengths_fail_before_allocating)
{
    /* A header, then empty strings, then an attribute count of 2^60. */
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_putc(&b, 1);
    for (int i = 0; i < 32; i++)
        vg_buf_putc(&b, 1);
    vg_buf_put_uvarint(&b, 0);   /* flags */
    vg_buf_putc(&b, 1);          /* kind */
    vg_buf_putc(&b, 0);          /* status */
    span_put_svarint(&b, FX_T0); /* start */
    vg_buf_put_uvarint(&b, 10);  /* duration */
    size_t strings = b.len;
    for (int i = 0; i < 6; i++)
        vg_buf_put_uvarint(&b, 0);
    vg_buf_put_uvarint(&b, 1ULL << 60);
    struct vg_arena *a = vg_arena_new(1024);
    struct span d;
    struct vg_err err = { 0 };
    cr_assert_eq(span_decode(b.p, b.len, a, &d, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "resource attributes"), "%s", err.msg);
    cr_assert_lt(vg_arena_used(a), 1024, "nothing was allocated for the count");
    /* A string length past the end. */
    b.len = strings;
    vg_buf_put_uvarint(&b, 1000);
    cr_assert_eq(span_decode(b.p, b.len, a, &d, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "name"), "%s", err.msg);
    /* A varint longer than 64 bits. */
    b.len = strings;
    for (int i = 0; i < 11; i++)
        vg_buf_putc(&b, (char)0xff);
    cr_assert_eq(span_decode(b.p, b.len, a, &d, NULL), VG_EINVAL);
    vg_buf_free(&b);
    vg_arena_free(a);
}

Test(span, end_time_overflow_is_refused)
{
    struct fx_span f;
    fx_span(&f, 1, 1, 0, "s", "n", INT64_MAX - 10, 5, SPAN_STATUS_OK);
    struct vg_buf b = encode(&f.s);
    struct span h;
    cr_assert_eq(span_decode_header(b.p, b.len, &h, NULL), 0);
    cr_assert_eq(h.end_ns, INT64_MAX - 5);
    /* Rewrite the duration (after the svarint start) to overflow. */
    struct vg_buf c;
    vg_buf_init(&c);
    vg_buf_append(&c, b.p, 36);
    span_put_svarint(&c, INT64_MAX - 10);
    vg_buf_put_uvarint(&c, 100);
    struct vg_err err = { 0 };
    cr_assert_eq(span_decode_header(c.p, c.len, &h, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "duration"), "%s", err.msg);
    vg_buf_free(&c);
    vg_buf_free(&b);
}

Test(span, decode_reports_allocation_failure)
{
    struct fx_span f;
    full_span(&f);
    struct vg_buf b = encode(&f.s);
    struct vg_arena *a = vg_arena_new(64); /* too small: the attributes need a new block */
    struct span d;
    struct vg_err err = { 0 };
    vg_alloc_fail_after(1);
    int rc = span_decode(b.p, b.len, a, &d, &err);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM, "%d %s", rc, err.msg);
    vg_arena_free(a);
    vg_buf_free(&b);
}

Test(span, encode_reports_allocation_failure_and_bad_enums)
{
    struct fx_span f;
    full_span(&f);
    struct vg_buf b;
    vg_buf_init(&b);
    vg_alloc_fail_after(1);
    int rc = span_encode(&f.s, &b, NULL);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    vg_buf_free(&b);
    vg_buf_init(&b);
    f.attrs[0].type = (enum span_val_type)42;
    cr_assert_eq(span_encode(&f.s, &b, NULL), VG_EINVAL);
    cr_assert_eq(b.len, 0, "nothing written");
    vg_buf_free(&b);
}

Test(span, validate_names_the_field)
{
    struct fx_span f;
    struct vg_err err;
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_OK);
    cr_assert_eq(span_validate(&f.s, &err), 0);
    memset(f.s.trace_id, 0, SPAN_TRACE_ID_LEN);
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "trace_id"));
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_OK);
    memset(f.s.span_id, 0, SPAN_ID_LEN);
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "span_id"));
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_OK);
    f.s.end_ns = f.s.start_ns - 1;
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "end_time"));
    f.s.end_ns = f.s.start_ns;
    f.s.start_ns = 0;
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "start_time"));
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_OK);
    f.s.kind = (enum span_kind)9;
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "kind"));
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_OK);
    f.s.status = (enum span_status)3;
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "status"));
    fx_span(&f, 1, 1, 0, "s", "n", FX_T0, 5, SPAN_STATUS_ERROR);
    f.ev_attrs[1].type = (enum span_val_type)0;
    cr_assert_eq(span_validate(&f.s, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "event attribute 1"), "%s", err.msg);
}

Test(span, text_forms_of_values)
{
    struct { struct span_attr a; const char *want; } cases[] = {
        { { VG_STR("k"), SPAN_VAL_STRING, .v.s = VG_STR("GET") }, "GET" },
        { { VG_STR("k"), SPAN_VAL_INT, .v.i = -500 }, "-500" },
        { { VG_STR("k"), SPAN_VAL_INT, .v.i = 0 }, "0" },
        { { VG_STR("k"), SPAN_VAL_INT, .v.i = INT64_MAX }, "9223372036854775807" },
        { { VG_STR("k"), SPAN_VAL_INT, .v.i = INT64_MIN }, "-9223372036854775808" },
        { { VG_STR("k"), SPAN_VAL_DOUBLE, .v.d = 1.5 }, "1.5" },
        { { VG_STR("k"), SPAN_VAL_DOUBLE, .v.d = 1e6 }, "1000000" },
        { { VG_STR("k"), SPAN_VAL_BOOL, .v.b = false }, "false" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        cr_assert(span_attr_text(&cases[i].a, &b));
        cr_assert_str_eq(vg_buf_cstr(&b), cases[i].want);
        vg_buf_free(&b);
    }
    struct span_attr blob = { VG_STR("k"), SPAN_VAL_BYTES, .v.s = VG_STR("x") };
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_not(span_attr_text(&blob, &b));
    cr_assert_eq(b.len, 0);
    vg_buf_free(&b);
}

/* Walks a value with span_chunk_next, decoding each span; returns the count or -1. */
static int walk(const void *buf, size_t len, struct span *out, int max)
{
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, buf, len);
    const void *enc;
    size_t elen;
    struct vg_err err = { 0 };
    int n = 0, rc;
    while ((rc = span_chunk_next(&it, &enc, &elen, &err)) == 1) {
        cr_assert_lt(n, max);
        cr_assert_eq(span_decode_header(enc, elen, &out[n], &err), 0, "%s", err.msg);
        n++;
    }
    span_chunk_iter_free(&it);
    return rc < 0 ? -1 : n;
}

/* Appends s's encoding to a chunk being written; returns its full encoding (caller frees). */
static struct vg_buf chunk_add(struct span_chunk_w *w, const struct span *s)
{
    struct vg_buf e;
    vg_buf_init(&e);
    size_t off, len;
    struct vg_err err = { 0 };
    cr_assert_eq(span_encode_shared(s, &e, &off, &len, &err), 0, "%s", err.msg);
    span_chunk_add(w, e.p, e.len, off, len);
    return e;
}

Test(span, encode_shared_marks_service_through_scope_attributes)
{
    struct fx_span f;
    full_span(&f);
    struct vg_buf a = encode(&f.s), b;
    vg_buf_init(&b);
    size_t off, len;
    struct vg_err err = { 0 };
    cr_assert_eq(span_encode_shared(&f.s, &b, &off, &len, &err), 0);
    cr_assert_eq(a.len, b.len);
    cr_assert_eq(memcmp(a.p, b.p, a.len), 0);
    /* The shared part starts with the service name and ends after the scope attributes:
     * another span of the same resource and scope has the very same bytes there. */
    cr_assert_eq((uint8_t)b.p[off], strlen("checkout"));
    cr_assert_eq(memcmp(b.p + off + 1, "checkout", 8), 0);
    struct fx_span g;
    full_span(&g);
    g.s.name = VG_STR("other name");
    g.attrs[0].v.s = VG_STR("POST");
    struct vg_buf c;
    vg_buf_init(&c);
    size_t off2, len2;
    cr_assert_eq(span_encode_shared(&g.s, &c, &off2, &len2, &err), 0);
    cr_assert_eq(len2, len);
    cr_assert_eq(memcmp(b.p + off, c.p + off2, len), 0);
    cr_assert_neq(off2, off); /* the name before it differs in length */
    vg_buf_free(&a);
    vg_buf_free(&b);
    vg_buf_free(&c);
}

Test(span, version3_chunks_store_a_shared_part_once_and_give_back_full_encodings)
{
    /* Two services, interleaved as a trace's spans are: web, db, web, db, web. */
    struct fx_span f[5];
    for (int i = 0; i < 5; i++)
        fx_span(&f[i], 42, (uint64_t)i + 1, i ? 1 : 0, i % 2 ? "db" : "web", "op",
                FX_T0 + i, 5, SPAN_STATUS_OK);
    struct vg_buf chunk, v2, enc[5];
    vg_buf_init(&chunk);
    vg_buf_init(&v2);
    struct span_chunk_w w;
    span_chunk_w_init_v3(&w, &chunk);
    for (int i = 0; i < 5; i++) {
        enc[i] = chunk_add(&w, &f[i].s);
        span_chunk_append(&v2, enc[i].p, enc[i].len);
    }
    cr_assert_eq((uint8_t)chunk.p[0], SPAN_CHUNK_VERSION_3);
    cr_assert_eq(w.nshared, 2);
    cr_assert_lt(chunk.len + 150, v2.len, "v3 %zu bytes, v2 %zu", chunk.len, v2.len);
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, chunk.p, chunk.len);
    const void *e;
    size_t elen;
    struct vg_err err = { 0 };
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1, "%s", err.msg);
        cr_assert_eq(elen, enc[i].len, "span %d", i);
        cr_assert_eq(memcmp(e, enc[i].p, elen), 0, "span %d", i);
    }
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 0);
    span_chunk_iter_free(&it);
    /* Every truncation ends cleanly at a span boundary or is refused. */
    struct span got[6];
    for (size_t cut = 0; cut < chunk.len; cut++) {
        int n = walk(chunk.p, cut, got, 6);
        cr_assert(n == -1 || (n >= 1 && n < 5), "cut %zu gave %d", cut, n);
    }
    for (int i = 0; i < 5; i++)
        vg_buf_free(&enc[i]);
    vg_buf_free(&chunk);
    vg_buf_free(&v2);
}

Test(span, version3_chunks_past_the_shared_limit_store_whole_spans)
{
    struct vg_buf chunk;
    vg_buf_init(&chunk);
    struct span_chunk_w w;
    span_chunk_w_init_v3(&w, &chunk);
    char svc[SPAN_CHUNK_MAX_SHARED + 4][8];
    struct fx_span f;
    for (int i = 0; i < SPAN_CHUNK_MAX_SHARED + 4; i++) {
        snprintf(svc[i], sizeof svc[i], "s%d", i);
        fx_span(&f, 42, (uint64_t)i + 1, 1, svc[i], "op", FX_T0 + i, 5, SPAN_STATUS_OK);
        struct vg_buf e = chunk_add(&w, &f.s);
        vg_buf_free(&e);
    }
    cr_assert_eq(w.nshared, SPAN_CHUNK_MAX_SHARED);
    /* The last service again: not among the remembered parts, stored whole. */
    size_t before = chunk.len;
    struct vg_buf e = chunk_add(&w, &f.s);
    cr_assert_gt(chunk.len - before, e.len);
    vg_buf_free(&e);
    struct span got[SPAN_CHUNK_MAX_SHARED + 8];
    cr_assert_eq(walk(chunk.p, chunk.len, got, SPAN_CHUNK_MAX_SHARED + 8),
                 SPAN_CHUNK_MAX_SHARED + 5);
    vg_buf_free(&chunk);
}

Test(span, version3_chunks_refuse_bad_references_and_offsets)
{
    struct span_chunk_iter it;
    const void *e;
    size_t elen;
    struct vg_err err = { 0 };
    /* ref 1 before any span carried a shared part */
    char ref[] = { SPAN_CHUNK_VERSION_3, 1, 0, 1, 'x' };
    span_chunk_iter_init(&it, ref, sizeof ref);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "shared part") && strstr(err.msg, "byte 1"), "%s", err.msg);
    span_chunk_iter_free(&it);
    /* a shared part running past its span */
    char part[] = { SPAN_CHUNK_VERSION_3, 0, 1, 3, 2, 'a', 'b' };
    span_chunk_iter_init(&it, part, sizeof part);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), VG_EINVAL);
    span_chunk_iter_free(&it);
    /* an insertion offset past the stored bytes */
    char ins[] = { SPAN_CHUNK_VERSION_3, 0, 0, 1, 1, 'a', 1, 2, 1, 'b' };
    span_chunk_iter_init(&it, ins, sizeof ins);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), VG_EINVAL);
    span_chunk_iter_free(&it);
    /* the same with a good offset rebuilds "a" + "b" around the shared "a" */
    char ok[] = { SPAN_CHUNK_VERSION_3, 0, 0, 1, 1, 'a', 1, 1, 1, 'b' };
    span_chunk_iter_init(&it, ok, sizeof ok);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1);
    cr_assert_eq(elen, 2);
    cr_assert_eq(memcmp(e, "ba", 2), 0);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 0);
    span_chunk_iter_free(&it);
    /* out of memory rebuilding a span */
    span_chunk_iter_init(&it, ok, sizeof ok);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1);
    vg_alloc_fail_after(1);
    int rc = span_chunk_next(&it, &e, &elen, &err);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    span_chunk_iter_free(&it);
}

Test(span, chunks_hold_several_spans_and_single_spans_still_read)
{
    struct fx_span f[3];
    for (int i = 0; i < 3; i++)
        fx_span(&f[i], 42, (uint64_t)i + 1, i ? 1 : 0, "web", "GET /", FX_T0 + i, 5,
                SPAN_STATUS_OK);
    struct vg_buf chunk;
    vg_buf_init(&chunk);
    for (int i = 0; i < 3; i++) {
        struct vg_buf e = encode(&f[i].s);
        span_chunk_append(&chunk, e.p, e.len);
        vg_buf_free(&e);
    }
    cr_assert_eq((uint8_t)chunk.p[0], SPAN_CHUNK_VERSION);
    struct span got[4];
    cr_assert_eq(walk(chunk.p, chunk.len, got, 4), 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(memcmp(got[i].span_id, f[i].s.span_id, SPAN_ID_LEN), 0);
        cr_assert_eq(got[i].start_ns, FX_T0 + i);
    }
    /* A version-1 value (one span per key, as stores before chunks hold) is one span. */
    struct vg_buf one = encode(&f[1].s);
    cr_assert_eq(walk(one.p, one.len, got, 4), 1);
    cr_assert_eq(memcmp(got[0].span_id, f[1].s.span_id, SPAN_ID_LEN), 0);
    /* Every truncation of a chunk either ends cleanly at a span boundary or is refused;
     * the empty value and a bare version byte are refused. */
    for (size_t cut = 0; cut < chunk.len; cut++) {
        int n = walk(chunk.p, cut, got, 4);
        cr_assert(n == -1 || (n >= 1 && n < 3), "cut %zu gave %d", cut, n);
    }
    cr_assert_eq(walk(chunk.p, 0, got, 4), -1);
    cr_assert_eq(walk(chunk.p, 1, got, 4), -1);
    /* A zero length or one running past the end names its offset. */
    char bad[] = { SPAN_CHUNK_VERSION, 0 };
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, bad, sizeof bad);
    const void *enc;
    size_t elen;
    struct vg_err err = { 0 };
    cr_assert_eq(span_chunk_next(&it, &enc, &elen, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "byte 1"), "%s", err.msg);
    char past[] = { SPAN_CHUNK_VERSION, 5, 1, 2 };
    span_chunk_iter_init(&it, past, sizeof past);
    cr_assert_eq(span_chunk_next(&it, &enc, &elen, &err), VG_EINVAL);
    vg_buf_free(&chunk);
    vg_buf_free(&one);
}

/* ---- version 4 ---- */

/* A trace's worth of varied spans: three services, shared and distinct strings (routes
 * cycle, some unique), error spans with events, one with a link, one from another trace,
 * non-monotonic starts, and an attribute value repeated as a key. */
static void v4_spans(struct fx_span *f, int n, char (*uniq)[24])
{
    static const char *const svc[] = { "web", "db", "cache" };
    for (int i = 0; i < n; i++) {
        fx_span(&f[i], i == 7 ? 43 : 42, (uint64_t)i + 1, i ? (uint64_t)i / 2 + 1 : 0,
                svc[i % 3], i % 4 ? "GET /items" : "SELECT items", FX_T0 + (i % 5) * FX_MS - i,
                5 + i, i % 6 == 5 ? SPAN_STATUS_ERROR : SPAN_STATUS_OK);
        snprintf(uniq[i], sizeof uniq[i], "req-%d-%x", i, i * 7919);
        fx_set_attr(&f[i], 3, "request.id", uniq[i]);
        if (i % 9 == 4)
            fx_set_attr(&f[i], 4, "GET", "http.method");
        if (i == 10) {
            full_span(&f[i]);
            f[i].s.status_message = VG_STR("");
        }
    }
}

static void expect_walk(const struct vg_buf *chunk, const struct vg_buf *enc, int n)
{
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, chunk->p, chunk->len);
    const void *e;
    size_t elen;
    struct vg_err err = { 0 };
    for (int i = 0; i < n; i++) {
        cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1, "span %d: %s", i, err.msg);
        cr_assert_eq(elen, enc[i].len, "span %d", i);
        cr_assert_eq(memcmp(e, enc[i].p, elen), 0, "span %d", i);
    }
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 0, "%s", err.msg);
    span_chunk_iter_free(&it);
}

Test(span, version4_chunks_give_back_every_span_byte_for_byte_and_are_smaller)
{
    enum { N = 60 };
    static struct fx_span f[N];
    static char uniq[N][24];
    v4_spans(f, N, uniq);
    struct vg_buf chunk, v3, enc[N];
    vg_buf_init(&chunk);
    vg_buf_init(&v3);
    static struct span_chunk_w w, w3;
    span_chunk_w_init(&w, &chunk);
    span_chunk_w_init_v3(&w3, &v3);
    for (int i = 0; i < N; i++) {
        enc[i] = chunk_add(&w, &f[i].s);
        struct vg_buf e = chunk_add(&w3, &f[i].s);
        vg_buf_free(&e);
    }
    cr_assert_eq((uint8_t)chunk.p[0], SPAN_CHUNK_VERSION_4);
    cr_assert_eq(w.nshared, 4); /* three services and full_span's resource */
    cr_assert_lt(chunk.len * 2, v3.len, "v4 %zu bytes, v3 %zu", chunk.len, v3.len);
    expect_walk(&chunk, enc, N);
    expect_walk(&v3, enc, N); /* version 3 still reads */
    /* Every truncation ends cleanly at a span boundary or is refused. */
    struct span got[N + 1];
    for (size_t cut = 0; cut < chunk.len; cut++) {
        int n = walk(chunk.p, cut, got, N + 1);
        cr_assert(n == -1 || (n >= 1 && n < N), "cut %zu gave %d", cut, n);
    }
    for (int i = 0; i < N; i++)
        vg_buf_free(&enc[i]);
    vg_buf_free(&chunk);
    vg_buf_free(&v3);
}

Test(span, version4_stores_what_it_cannot_pack_verbatim_and_fills_its_string_table)
{
    /* Strings past the table's capacity stay literals; a span with a non-shortest
     * varint and bytes that are no span go in verbatim: all come back. */
    enum { N = SPAN_CHUNK_MAX_STRINGS / 4 + 10 };
    static struct fx_span f[N];
    static char keys[N][6][16];
    static struct span_chunk_w w;
    struct vg_buf chunk;
    vg_buf_init(&chunk);
    span_chunk_w_init(&w, &chunk);
    static struct vg_buf enc[N + 3];
    for (int i = 0; i < N; i++) {
        fx_span(&f[i], 42, (uint64_t)i + 1, 1, "svc", "op", FX_T0 + i, 5, SPAN_STATUS_OK);
        for (int a = 0; a < 4; a++) {
            snprintf(keys[i][a], sizeof keys[i][a], "k%d.%d", i, a);
            fx_set_attr(&f[i], (size_t)a, keys[i][a], keys[i][a]);
        }
        enc[i] = chunk_add(&w, &f[i].s);
    }
    cr_assert_eq(w.nstr, SPAN_CHUNK_MAX_STRINGS);
    /* start_ns 0 written as two bytes: unpackable exactly, so verbatim */
    struct vg_buf odd = encode(&f[0].s);
    size_t at = 1 + SPAN_TRACE_ID_LEN + 2 * SPAN_ID_LEN + 1 + 2;
    vg_buf_init(&enc[N]);
    vg_buf_append(&enc[N], odd.p, at);
    vg_buf_append(&enc[N], "\x80\x00", 2);
    size_t skip = 1;
    while ((uint8_t)odd.p[at + skip - 1] & 0x80)
        skip++;
    vg_buf_append(&enc[N], odd.p + at + skip, odd.len - at - skip);
    span_chunk_add(&w, enc[N].p, enc[N].len, 0, 0);
    vg_buf_init(&enc[N + 1]);
    vg_buf_append(&enc[N + 1], "\x07junk", 5);
    span_chunk_add(&w, enc[N + 1].p, enc[N + 1].len, 2, 9); /* bad shared part too */
    enc[N + 2] = chunk_add(&w, &f[3].s); /* packed again after the failures */
    expect_walk(&chunk, enc, N + 3);
    for (int i = 0; i < N + 3; i++)
        vg_buf_free(&enc[i]);
    vg_buf_free(&odd);
    vg_buf_free(&chunk);
}

Test(span, version4_finds_shared_parts_too_big_for_the_writers_copy_by_unpacking)
{
    /* Resources of 1500-byte host names: the writer keeps a copy of the first two only
     * (SPAN_CHUNK_W_COPY), so later spans of the third and fourth services are matched
     * by unpacking their carrier again; the fourth has the third's length but other
     * bytes, so it is a carrier of its own. */
    enum { N = 12, BIG = 1500 };
    static char host[4][BIG + 1];
    static struct fx_span f[N];
    static struct span_chunk_w w;
    static const char *const svc[] = { "s0", "s1", "s2", "s3" };
    for (int k = 0; k < 4; k++) {
        memset(host[k], 'a' + (k == 3 ? 2 : k), BIG);
        host[k][BIG - 1] = (char)('0' + k);
    }
    struct vg_buf chunk, enc[N];
    vg_buf_init(&chunk);
    span_chunk_w_init(&w, &chunk);
    size_t raw = 0;
    for (int i = 0; i < N; i++) {
        fx_span(&f[i], 42, (uint64_t)i + 1, 1, svc[i % 4], "op", FX_T0 + i, 5, SPAN_STATUS_OK);
        f[i].res[1].v.s = vg_str_c(host[i % 4]);
        enc[i] = chunk_add(&w, &f[i].s);
        raw += enc[i].len;
    }
    cr_assert_eq(w.nshared, 4);
    cr_assert_eq(w.shared_copy[2], SIZE_MAX);
    cr_assert_lt(chunk.len, raw / 2, "v4 %zu bytes of %zu", chunk.len, raw);
    expect_walk(&chunk, enc, N);
    for (int i = 0; i < N; i++)
        vg_buf_free(&enc[i]);
    vg_buf_free(&chunk);
}

/* Expects span_chunk_next on a version-4 value to fail with code and message parts. */
static void v4_refused(const uint8_t *v, size_t len, int ok_before, int code, const char *part)
{
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, v, len);
    const void *e;
    size_t elen;
    struct vg_err err = { 0 };
    for (int i = 0; i < ok_before; i++)
        cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1, "%s", err.msg);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), code);
    cr_assert(strstr(err.msg, part), "want \"%s\" in \"%s\"", part, err.msg);
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), code == VG_ENOMEM ? VG_EINVAL : code);
    span_chunk_iter_free(&it);
}

Test(span, version4_refuses_malformed_entries_naming_field_and_offset)
{
    /* A packed minimal span: tag 1, length 53, id flags 2 (parent zero), trace id, span
     * id, flags 0, kind 1 status 0, start 1 (zigzag 2), duration 0, three empty strings,
     * the shared part (three empty strings, no resource attributes, none dropped, no
     * scope attributes), no attributes, dropped 0, no events, dropped 0, no
     * links, dropped 0. */
    uint8_t ok[64] = { SPAN_CHUNK_VERSION_4, 1, 53, 2 };
    size_t n = 4;
    memset(ok + n, 0xaa, SPAN_TRACE_ID_LEN + SPAN_ID_LEN);
    n += SPAN_TRACE_ID_LEN + SPAN_ID_LEN;
    const uint8_t rest[] = { 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                             0, 0, 0, 0, 0, 0 };
    memcpy(ok + n, rest, sizeof rest);
    n += sizeof rest;
    struct span got[2];
    cr_assert_eq(walk(ok, n, got, 2), 1);
    cr_assert_eq(got[0].start_ns, 1);
    /* rebuilt length must match the declared one */
    ok[2] = 54;
    v4_refused(ok, n, 0, VG_EINVAL, "shorter");
    ok[2] = 52;
    v4_refused(ok, n, 0, VG_EINVAL, "longer");
    ok[2] = 53;
    /* unknown id flags; zero parent and parent reference at once; same trace or a
     * parent reference with no previous span */
    ok[3] = 8;
    v4_refused(ok, n, 0, VG_EINVAL, "id flags at byte 3");
    ok[3] = 6;
    v4_refused(ok, n, 0, VG_EINVAL, "id flags at byte 3");
    ok[3] = 3;
    v4_refused(ok, n, 0, VG_EINVAL, "id flags");
    ok[3] = 4;
    v4_refused(ok, n, 0, VG_EINVAL, "parent span reference at byte 28");
    ok[3] = 2;
    /* a string reference past the table (name = ref 0, table empty) */
    size_t name = 4 + SPAN_TRACE_ID_LEN + SPAN_ID_LEN + 5;
    ok[name] = 1;
    v4_refused(ok, n, 0, VG_EINVAL, "string reference");
    /* a literal running past the end */
    ok[name] = 0x7c;
    v4_refused(ok, n, 0, VG_EINVAL, "name");
    ok[name] = 0;
    /* a shared reference to no carrier, an unknown attribute type, a length past the
     * limit, a verbatim span past the end */
    ok[1] = 2;
    v4_refused(ok, n, 0, VG_EINVAL, "shared part reference at byte 1");
    ok[1] = 1;
    uint8_t attr[80];
    memcpy(attr, ok, n);
    attr[name + 9] = 1;  /* one attribute */
    attr[name + 10] = 0; /* empty key */
    attr[name + 11] = 9; /* type 9 */
    v4_refused(attr, n + 2, 0, VG_EINVAL, "attributes at byte 44");
    const uint8_t big[] = { SPAN_CHUNK_VERSION_4, 1, 0x80, 0x80, 0x80, 0x04 };
    v4_refused(big, sizeof big, 0, VG_EINVAL, "span length at byte 1");
    const uint8_t past[] = { SPAN_CHUNK_VERSION_4, 0, 5, 1, 2 };
    v4_refused(past, sizeof past, 0, VG_EINVAL, "span length");
    const uint8_t empty[] = { SPAN_CHUNK_VERSION_4 };
    cr_assert_eq(walk(empty, sizeof empty, got, 2), -1);
    /* a second span may refer to the first's trace id and strings */
    uint8_t two[128];
    memcpy(two, ok, n);
    two[name] = 2 << 2 | 2; /* name "ab", remembered */
    two[name + 1] = 'a';
    two[name + 2] = 'b';
    memcpy(two + name + 3, ok + name + 1, n - name - 1);
    two[2] = 55;
    size_t m = n + 2;
    /* same trace, parent = the first span, shared part and name of the first */
    const uint8_t second[] = { 2, 55, 5, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb,
                               0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0 };
    memcpy(two + m, second, sizeof second);
    m += sizeof second;
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, two, m);
    const void *e1, *e2;
    size_t l1, l2;
    struct vg_err err = { 0 };
    cr_assert_eq(span_chunk_next(&it, &e1, &l1, &err), 1, "%s", err.msg);
    struct vg_buf first;
    vg_buf_init(&first);
    vg_buf_append(&first, e1, l1);
    cr_assert_eq(span_chunk_next(&it, &e2, &l2, &err), 1, "%s", err.msg);
    cr_assert_eq(l2, l1);
    cr_assert_eq(memcmp(e2, first.p, 1 + SPAN_TRACE_ID_LEN), 0); /* same trace id */
    struct vg_arena *a = vg_arena_new(1024);
    struct span s;
    cr_assert_eq(span_decode(e2, l2, a, &s, &err), 0, "%s", err.msg);
    cr_assert_eq(s.start_ns, 1);
    const uint8_t first_id[SPAN_ID_LEN] = { 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa };
    cr_assert_eq(memcmp(s.parent_span_id, first_id, SPAN_ID_LEN), 0);
    cr_assert_eq(s.name.len, 2);
    cr_assert_eq(memcmp(s.name.p, "ab", 2), 0);
    cr_assert_eq(span_chunk_next(&it, &e2, &l2, &err), 0);
    span_chunk_iter_free(&it);
    vg_arena_free(a);
    vg_buf_free(&first);
    /* allocation failure: the rebuilt span, the string table, the span ids */
    static const char *const oom[] = { "55-byte span", "string table", "span ids" };
    for (int i = 0; i < 3; i++) {
        span_chunk_iter_init(&it, two, m);
        vg_alloc_fail_after(i + 1);
        int rc = span_chunk_next(&it, &e1, &l1, &err);
        vg_alloc_fail_after(0);
        cr_assert_eq(rc, VG_ENOMEM, "%s", err.msg);
        cr_assert(strstr(err.msg, oom[i]), "%s", err.msg);
        span_chunk_iter_free(&it);
    }
}

Test(span, version4_writer_marks_its_chunk_failed_when_out_of_memory)
{
    struct fx_span f;
    fx_span(&f, 42, 1, 0, "web", "GET /", FX_T0, 5, SPAN_STATUS_OK);
    struct vg_buf e = encode(&f.s), chunk;
    vg_buf_init(&chunk);
    static struct span_chunk_w w;
    span_chunk_w_init(&w, &chunk);
    vg_alloc_fail_after(1);
    span_chunk_add(&w, e.p, e.len, 0, 0);
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&chunk));
    vg_buf_free(&chunk);
    vg_buf_free(&e);
}
