/* Tests storage/spanstore/span_pack.c: span_pack_add builds, from struct span, the
 * very bytes span_encode_shared + span_chunk_add build for the same spans (thousands
 * of random spans: repeated strings, many resources and scopes sharing arrays or
 * only equal in content, every attribute type, events, links, roots and children,
 * one or several traces, past the writer's id, string and shared-part limits, spans
 * too long to pack), the chunk walks back to each span's version-1 encoding, its
 * reported length is that encoding's, bad enums are refused with nothing written, and
 * out of memory marks the chunk failed. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_arena.h"
#include "../../../../storage/spanstore/span_pack.h"
#include "span_fixture.h"

static uint64_t rnd(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

/* What one chunk's random spans are made of; everything lives in the arena until the
 * chunk is checked (span_pack_add compares pointers with earlier spans'). */
struct group { /* a resource and scope: a span's shared part */
    struct vg_str service, scope_name, scope_version;
    struct span_attr *res, *scope;
    size_t nres, nscope;
    uint32_t dropped;
};
struct gen {
    uint64_t st;
    struct vg_arena *a;
    struct vg_str *pool; /* strings spans repeat */
    size_t npool;
    struct group *groups;
    size_t ngroups;
};

static struct vg_str new_str(struct gen *g, size_t n)
{
    char *p = vg_arena_alloc(g->a, n + 1);
    cr_assert(p);
    for (size_t i = 0; i < n; i++) /* a small alphabet, NUL included, so some repeat */
        p[i] = (char)(rnd(&g->st) % 5 == 0 ? rnd(&g->st) % 256 : 'a' + rnd(&g->st) % 4);
    return (struct vg_str){ p, n };
}

static size_t rlen(struct gen *g)
{
    uint64_t r = rnd(&g->st) % 100;
    return r < 10 ? 0 : r < 60 ? rnd(&g->st) % 9 : r < 95 ? rnd(&g->st) % 40 : rnd(&g->st) % 300;
}

static struct vg_str rstr(struct gen *g)
{
    if (rnd(&g->st) % 5 == 0)
        return new_str(g, rlen(g));
    return g->pool[rnd(&g->st) % g->npool];
}

static int64_t rint64(struct gen *g)
{
    switch (rnd(&g->st) % 5) {
    case 0:
        return (int64_t)(rnd(&g->st) % 200) - 100;
    case 1:
        return INT64_MIN;
    case 2:
        return INT64_MAX;
    default:
        return (int64_t)rnd(&g->st);
    }
}

static struct span_attr *rattrs(struct gen *g, size_t n)
{
    struct span_attr *v = vg_arena_calloc(g->a, (n ? n : 1) * sizeof *v);
    cr_assert(v);
    for (size_t i = 0; i < n; i++) {
        v[i].key = rstr(g);
        v[i].type = (enum span_val_type)(SPAN_VAL_STRING + rnd(&g->st) % SPAN_VAL_MAX);
        switch (v[i].type) {
        case SPAN_VAL_INT:
            v[i].v.i = rint64(g);
            break;
        case SPAN_VAL_DOUBLE: {
            uint64_t bits = rnd(&g->st); /* NaNs and infinities included */
            memcpy(&v[i].v.d, &bits, sizeof bits);
            break;
        }
        case SPAN_VAL_BOOL:
            v[i].v.b = rnd(&g->st) & 1;
            break;
        default:
            v[i].v.s = rstr(g);
            break;
        }
    }
    return v;
}

static void new_group(struct gen *g, struct group *gr)
{
    gr->service = rstr(g);
    gr->scope_name = rstr(g);
    gr->scope_version = rstr(g);
    gr->nres = rnd(&g->st) % 8;
    gr->res = rattrs(g, gr->nres);
    if (rnd(&g->st) % 6 == 0) /* big ones overflow the writer's copy (4 KiB) */
        gr->res[0] = (struct span_attr){ rstr(g), SPAN_VAL_BYTES, .v.s = new_str(g, 1500) };
    gr->nres += gr->nres == 0 && gr->res[0].type ? 1 : 0;
    gr->nscope = rnd(&g->st) % 3;
    gr->scope = rattrs(g, gr->nscope);
    gr->dropped = rnd(&g->st) % 4 == 0 ? (uint32_t)rnd(&g->st) : 0;
}

/* A copy of gr's content in new memory (equal bytes, other pointers). */
static struct group copy_group(struct gen *g, const struct group *gr)
{
    struct group c = *gr;
    struct vg_str *strs[] = { &c.service, &c.scope_name, &c.scope_version };
    for (size_t i = 0; i < 3; i++) {
        struct vg_str n = new_str(g, strs[i]->len);
        memcpy((char *)n.p, strs[i]->p, n.len);
        *strs[i] = n;
    }
    c.res = rattrs(g, 0);
    if (gr->nres) {
        c.res = vg_arena_alloc(g->a, gr->nres * sizeof *c.res);
        memcpy(c.res, gr->res, gr->nres * sizeof *c.res);
    }
    return c;
}

static void rand_ids(struct gen *g, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd(&g->st);
}

static void rand_span(struct gen *g, struct span *s, const struct span *spans, size_t i,
                      const uint8_t (*traces)[SPAN_TRACE_ID_LEN], size_t ntraces)
{
    memset(s, 0, sizeof *s);
    memcpy(s->trace_id, traces[rnd(&g->st) % 4 ? 0 : rnd(&g->st) % ntraces], SPAN_TRACE_ID_LEN);
    if (i > 0 && rnd(&g->st) % 3 == 0) /* runs of one trace */
        memcpy(s->trace_id, spans[i - 1].trace_id, SPAN_TRACE_ID_LEN);
    rand_ids(g, s->span_id, SPAN_ID_LEN);
    uint64_t r = rnd(&g->st) % 10;
    if (r < 5 && i > 0)
        memcpy(s->parent_span_id, spans[rnd(&g->st) % i].span_id, SPAN_ID_LEN);
    else if (r < 7)
        rand_ids(g, s->parent_span_id, SPAN_ID_LEN);
    s->flags = rnd(&g->st) % 3 ? (uint32_t)(rnd(&g->st) % 512) : (uint32_t)rnd(&g->st);
    s->kind = (enum span_kind)(rnd(&g->st) % (SPAN_KIND_MAX + 1));
    s->status = (enum span_status)(rnd(&g->st) % (SPAN_STATUS_MAX + 1));
    s->start_ns = rnd(&g->st) % 8 ? FX_T0 + (int64_t)(rnd(&g->st) % FX_HOUR) : rint64(g);
    /* (wrapping add: start may be any int64 here; validation is not under test) */
    s->end_ns = rnd(&g->st) % 8
                    ? (int64_t)((uint64_t)s->start_ns + rnd(&g->st) % (uint64_t)FX_HOUR)
                    : rint64(g);
    s->name = rstr(g);
    s->status_message = rnd(&g->st) % 3 ? (struct vg_str){ NULL, 0 } : rstr(g);
    s->trace_state = rnd(&g->st) % 3 ? (struct vg_str){ "", 0 } : rstr(g);
    struct group gr = g->groups[rnd(&g->st) % g->ngroups];
    if (rnd(&g->st) % 5 == 0)
        gr = copy_group(g, &gr);
    s->service = gr.service;
    s->scope_name = gr.scope_name;
    s->scope_version = gr.scope_version;
    s->resource_attrs = gr.res;
    s->nresource_attrs = gr.nres;
    s->scope_attrs = gr.scope;
    s->nscope_attrs = gr.nscope;
    s->dropped_resource_attrs = gr.dropped;
    s->nattrs = rnd(&g->st) % 13;
    s->attrs = rattrs(g, s->nattrs);
    s->nevents = rnd(&g->st) % 3 ? 0 : rnd(&g->st) % 4;
    struct span_event *ev = vg_arena_calloc(g->a, (s->nevents + 1) * sizeof *ev);
    for (size_t k = 0; k < s->nevents; k++) {
        ev[k].time_ns = rnd(&g->st) % 4
                            ? (int64_t)((uint64_t)s->start_ns + rnd(&g->st) % 1000)
                            : rint64(g);
        ev[k].name = rstr(g);
        ev[k].nattrs = rnd(&g->st) % 4;
        ev[k].attrs = rattrs(g, ev[k].nattrs);
        ev[k].dropped_attrs = (uint32_t)(rnd(&g->st) % 3);
    }
    s->events = ev;
    s->nlinks = rnd(&g->st) % 4 ? 0 : rnd(&g->st) % 3;
    struct span_link *ln = vg_arena_calloc(g->a, (s->nlinks + 1) * sizeof *ln);
    for (size_t k = 0; k < s->nlinks; k++) {
        rand_ids(g, ln[k].trace_id, SPAN_TRACE_ID_LEN);
        rand_ids(g, ln[k].span_id, SPAN_ID_LEN);
        ln[k].trace_state = rstr(g);
        ln[k].flags = (uint32_t)rnd(&g->st);
        ln[k].nattrs = rnd(&g->st) % 3;
        ln[k].attrs = rattrs(g, ln[k].nattrs);
        ln[k].dropped_attrs = (uint32_t)(rnd(&g->st) % 300);
    }
    s->links = ln;
    s->dropped_attrs = (uint32_t)(rnd(&g->st) % 200);
    s->dropped_events = (uint32_t)(rnd(&g->st) % 2);
    s->dropped_links = rnd(&g->st) % 9 ? 0 : (uint32_t)rnd(&g->st);
}

/* The fullest writer tables both_ways saw: the limits must be reached. */
static size_t most_strings, most_shared, most_ids;

/* Packs spans[0..n) both ways: the chunks must be equal, the lengths the encodings'
 * and the walk must give back every encoding. Returns the chunk's length. */
static size_t both_ways(const struct span *spans, size_t n)
{
    static struct span_chunk_w wa, wb; /* about 20 KiB each */
    struct vg_buf ca, cb, enc, all;
    vg_buf_init(&ca);
    vg_buf_init(&cb);
    vg_buf_init(&enc);
    vg_buf_init(&all);
    span_chunk_w_init(&wa, &ca);
    span_chunk_w_init(&wb, &cb);
    size_t *offs = vg_malloc((n + 1) * sizeof *offs);
    cr_assert(offs);
    struct vg_err err = { 0 };
    for (size_t i = 0; i < n; i++) {
        size_t off, len, elen = 0;
        vg_buf_reset(&enc);
        cr_assert_eq(span_encode_shared(&spans[i], &enc, &off, &len, &err), 0, "%s", err.msg);
        span_chunk_add(&wa, enc.p, enc.len, off, len);
        cr_assert_eq(span_pack_add(&wb, &spans[i], &elen, &err), 0, "%s", err.msg);
        cr_assert_eq(elen, enc.len, "span %zu: length %zu, encoding %zu", i, elen, enc.len);
        offs[i] = all.len;
        vg_buf_append(&all, enc.p, enc.len);
        size_t m = ca.len < cb.len ? ca.len : cb.len;
        if (ca.len != cb.len || memcmp(ca.p, cb.p, m) != 0) {
            size_t at = 0;
            while (at < m && ca.p[at] == cb.p[at])
                at++;
            cr_assert_fail("span %zu of %zu: chunks differ at byte %zu (lengths %zu, %zu)", i, n,
                     at, ca.len, cb.len);
        }
    }
    offs[n] = all.len;
    most_strings = wb.nstr > most_strings ? wb.nstr : most_strings;
    most_shared = wb.nshared > most_shared ? wb.nshared : most_shared;
    most_ids = wb.nids > most_ids ? wb.nids : most_ids;
    cr_assert(!vg_buf_failed(&cb) && !vg_buf_failed(&all));
    struct span_chunk_iter it;
    span_chunk_iter_init(&it, cb.p, cb.len);
    const void *e;
    size_t elen;
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 1, "span %zu: %s", i, err.msg);
        cr_assert_eq(elen, offs[i + 1] - offs[i]);
        cr_assert(memcmp(e, all.p + offs[i], elen) == 0, "span %zu differs", i);
    }
    cr_assert_eq(span_chunk_next(&it, &e, &elen, &err), 0);
    span_chunk_iter_free(&it);
    size_t len = cb.len;
    vg_free(offs);
    vg_buf_free(&ca);
    vg_buf_free(&cb);
    vg_buf_free(&enc);
    vg_buf_free(&all);
    return len;
}

/* One random chunk of n spans; seed picks everything else. */
static void random_chunk(uint64_t seed, size_t n)
{
    struct gen g = { .st = seed * 0x9e3779b97f4a7c15u | 1, .a = vg_arena_new(1 << 16) };
    cr_assert(g.a);
    g.npool = 1 + rnd(&g.st) % 900; /* sometimes more than the table's 512 */
    g.pool = vg_arena_alloc(g.a, g.npool * sizeof *g.pool);
    for (size_t i = 0; i < g.npool; i++)
        g.pool[i] = new_str(&g, rlen(&g));
    g.ngroups = 1 + rnd(&g.st) % (rnd(&g.st) % 3 ? 6 : 40); /* past SPAN_CHUNK_MAX_SHARED */
    g.groups = vg_arena_alloc(g.a, g.ngroups * sizeof *g.groups);
    for (size_t i = 0; i < g.ngroups; i++) {
        new_group(&g, &g.groups[i]);
        if (i > 0 && rnd(&g.st) % 3 == 0) { /* another scope of the previous resource */
            struct group *p = &g.groups[i - 1];
            g.groups[i].service = p->service;
            g.groups[i].res = p->res;
            g.groups[i].nres = p->nres;
            g.groups[i].dropped = p->dropped;
        }
    }
    uint8_t traces[3][SPAN_TRACE_ID_LEN];
    size_t ntraces = 1 + rnd(&g.st) % 3;
    rand_ids(&g, &traces[0][0], sizeof traces);
    struct span *spans = vg_arena_alloc(g.a, n * sizeof *spans);
    for (size_t i = 0; i < n; i++)
        rand_span(&g, &spans[i], spans, i, traces, ntraces);
    both_ways(spans, n);
    vg_arena_free(g.a);
}

Test(span_pack, random_spans_pack_to_the_same_bytes_as_encode_and_chunk_add)
{
    size_t total = 0;
    for (uint64_t seed = 1; seed <= 60; seed++) {
        size_t n = seed % 10 == 0 ? 700 : 1 + (seed * 37) % 150; /* some past MAX_IDS */
        random_chunk(seed, n);
        total += n;
    }
    cr_assert_geq(total, 5000);
    cr_assert_eq(most_strings, SPAN_CHUNK_MAX_STRINGS);
    cr_assert_eq(most_shared, SPAN_CHUNK_MAX_SHARED);
    cr_assert_eq(most_ids, SPAN_CHUNK_MAX_IDS);
}

Test(span_pack, realistic_traces_pack_the_same_and_share_resources)
{
    /* The fixture's spans: one service's spans share their resource array, as a
     * decoder hands them; the chunk stores it once. */
    static struct fx_span f[40];
    struct span s[40];
    for (int i = 0; i < 40; i++) {
        fx_span(&f[i], 7, (uint64_t)i + 1, i ? (uint64_t)(i + 1) / 2 : 0,
                i % 4 == 0 ? "checkout" : "cart", "GET /items", FX_T0 + i * FX_MS,
                3 * FX_MS, i % 9 == 0 ? SPAN_STATUS_ERROR : SPAN_STATUS_OK);
        if (i % 4 != 0) /* cart's spans: one array, one service string */
            f[i].s.resource_attrs = f[1].res, f[i].s.service = f[1].s.service;
        s[i] = f[i].s;
    }
    size_t len = both_ways(s, 40);
    struct vg_buf one = { 0 };
    vg_buf_init(&one);
    struct vg_err err;
    cr_assert_eq(span_encode(&s[5], &one, &err), 0);
    cr_assert_lt(len, 40 * one.len / 2, "chunk %zu bytes for 40 spans of %zu", len, one.len);
    vg_buf_free(&one);
}

Test(span_pack, spans_too_long_to_pack_are_stored_verbatim_alike)
{
    struct vg_arena *a = vg_arena_new(1 << 16);
    size_t big = SPAN_CHUNK_V4_MAX_SPAN + 10;
    char *blob = vg_arena_calloc(a, big);
    cr_assert(blob);
    static struct fx_span f[4];
    struct span s[4];
    for (int i = 0; i < 4; i++) {
        fx_span(&f[i], 9, (uint64_t)i + 1, i ? 1 : 0, "web", "GET /", FX_T0 + i, 5,
                SPAN_STATUS_OK);
        s[i] = f[i].s;
    }
    f[1].attrs[2].v.s = (struct vg_str){ blob, big }; /* in the span: verbatim */
    f[2].res[1].v.s = (struct vg_str){ blob, big - 100 }; /* in the shared part */
    cr_assert_gt(both_ways(s, 4), 2 * big);
    vg_arena_free(a);
}

Test(span_pack, bad_enums_are_refused_with_nothing_written)
{
    struct fx_span f;
    fx_span(&f, 1, 2, 0, "web", "GET /", FX_T0, 5, SPAN_STATUS_OK);
    static struct span_chunk_w w;
    struct vg_buf chunk;
    vg_buf_init(&chunk);
    span_chunk_w_init(&w, &chunk);
    struct vg_err err = { 0 };
    size_t n = 1;
    f.s.kind = (enum span_kind)9;
    cr_assert_eq(span_pack_add(&w, &f.s, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "kind"), "%s", err.msg);
    f.s.kind = SPAN_KIND_SERVER;
    f.res[1].type = (enum span_val_type)0;
    cr_assert_eq(span_pack_add(&w, &f.s, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "resource attribute 1"), "%s", err.msg);
    f.res[1].type = SPAN_VAL_STRING;
    f.attrs[4].type = (enum span_val_type)(SPAN_VAL_MAX + 1);
    cr_assert_eq(span_pack_add(&w, &f.s, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "span attribute 4"), "%s", err.msg);
    cr_assert_eq(n, 0);
    cr_assert_eq(chunk.len, 0);
    f.attrs[4].type = SPAN_VAL_DOUBLE;
    cr_assert_eq(span_pack_add(&w, &f.s, &n, &err), 0);
    cr_assert_gt(n, 0);
    vg_buf_free(&chunk);
}

Test(span_pack, out_of_memory_marks_the_chunk_failed)
{
    static struct fx_span f[3];
    for (int i = 0; i < 3; i++)
        fx_span(&f[i], 4, (uint64_t)i + 1, i ? 1 : 0, "web", "GET /", FX_T0 + i, 5,
                SPAN_STATUS_ERROR);
    f[2].attrs[2].v.s = (struct vg_str){ NULL, 0 };
    static struct span_chunk_w w;
    struct vg_err err = { 0 };
    struct vg_buf want;
    vg_buf_init(&want);
    span_chunk_w_init(&w, &want);
    size_t n;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(span_pack_add(&w, &f[i].s, &n, &err), 0);
    int failed = 0;
    for (uint64_t k = 1; k <= 6; k++) { /* at the first, second, ... allocation */
        struct vg_buf chunk;
        vg_buf_init(&chunk);
        span_chunk_w_init(&w, &chunk);
        vg_alloc_fail_after(k);
        for (int i = 0; i < 3; i++)
            cr_assert_eq(span_pack_add(&w, &f[i].s, &n, &err), 0);
        vg_alloc_fail_after(0);
        failed += vg_buf_failed(&chunk);
        cr_assert(vg_buf_failed(&chunk) ||
                  (chunk.len == want.len && memcmp(chunk.p, want.p, want.len) == 0));
        vg_buf_free(&chunk);
    }
    cr_assert_geq(failed, 2);
    vg_buf_free(&want);
    /* a span stored verbatim: its encoding's own allocation fails */
    struct vg_arena *a = vg_arena_new(1 << 16);
    size_t big = SPAN_CHUNK_V4_MAX_SPAN + 1;
    char *blob = vg_arena_calloc(a, big);
    f[0].attrs[2].v.s = (struct vg_str){ blob, big };
    struct vg_buf chunk;
    vg_buf_init(&chunk);
    span_chunk_w_init(&w, &chunk);
    vg_alloc_fail_after(2); /* the chunk's first block, then its growth for the span */
    cr_assert_eq(span_pack_add(&w, &f[0].s, &n, &err), 0);
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&chunk));
    vg_buf_free(&chunk);
    vg_arena_free(a);
}
