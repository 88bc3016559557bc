/* Tests storage/spanstore/spanstore_query.c: every search filter alone and combined
 * (all span-level filters on one span), time windows, limits and newest-first order,
 * the choice of the most selective index (asserted with the keys-read counter), tag
 * name and value listings with their caps, services and operations; index lists of many
 * traces whose times overlap merged newest first, an early window end seeking past the
 * hour's newer lists, and a resource array shared by a batch indexing every trace. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/kv.h"
#include "../../../../storage/spanstore/spanstore.h"
#include "../../../../storage/spanstore/span_index.h"
#include "span_fixture.h"

#include <stdio.h>
#include <stdlib.h>

static char dir[64];
static struct spanstore *ss;

static size_t flush_postings; /* index_flush_postings of the next open (0 = default) */

/* Opens the store in dir with a cap on values per key (0 = default). */
static void open_with(size_t max_values)
{
    struct spanstore_opts o;
    spanstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0;
    o.no_sync = true;
    o.max_values_per_key = max_values;
    if (flush_postings)
        o.index_flush_postings = flush_postings;
    struct vg_err err = { 0 };
    ss = spanstore_open(&o, &err);
    cr_assert_not_null(ss, "%s", err.msg);
}

static void setup(void)
{
    strcpy(dir, "/tmp/vg_spanq_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    open_with(0);
}

static void teardown(void)
{
    spanstore_close(ss);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(spanq, .init = setup, .fini = teardown, .timeout = 60);

static void put(struct fx_span *f, size_t n)
{
    struct span s[64];
    cr_assert_leq(n, 64);
    for (size_t i = 0; i < n; i++)
        s[i] = f[i].s;
    struct spanstore_write_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_write(ss, s, n, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.accepted, n, "%s", res.first_reject);
}

/* Trace t (1..): web root "GET /t" -> api "call" -> db "query"; every 10th trace has a
 * failing db span with http.status_code 500; durations grow with t; one trace a minute. */
static void corpus(int n)
{
    for (int t = 1; t <= n; t++) {
        int64_t t0 = FX_T0 + (int64_t)t * 60000 * FX_MS;
        bool err = t % 10 == 0;
        struct fx_span f[3];
        fx_span(&f[0], (uint64_t)t, 1, 0, "web", t % 2 ? "GET /odd" : "GET /even", t0,
                (100 + t) * FX_MS, SPAN_STATUS_UNSET);
        fx_span(&f[1], (uint64_t)t, 2, 1, "api", "call", t0 + FX_MS, 50 * FX_MS,
                SPAN_STATUS_OK);
        fx_span(&f[2], (uint64_t)t, 3, 2, "db", "query", t0 + 2 * FX_MS, (t % 7 + 1) * FX_MS,
                err ? SPAN_STATUS_ERROR : SPAN_STATUS_OK);
        f[0].attrs[0].v.s = t % 3 ? VG_STR("GET") : VG_STR("POST");
        fx_set_attr(&f[1], 3, "user.id", t == 42 ? "alice" : "bob");
        put(f, 3);
    }
}

/* Runs q; returns the trace numbers found (newest first) as a string "5,4,3". */
static char *run(struct spanstore_query *q, struct spanstore_search_result *keep)
{
    struct spanstore_search_result r;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_search(ss, q, &r, &err), 0, "%s", err.msg);
    static char out[4096];
    out[0] = 0;
    for (size_t i = 0; i < r.n; i++) {
        uint64_t n = 0;
        for (int k = 8; k < 16; k++)
            n = n << 8 | r.traces[i].trace_id[k];
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%llu", i ? "," : "",
                 (unsigned long long)n);
        if (i)
            cr_assert_geq(r.traces[i - 1].start_ns, r.traces[i].start_ns, "newest first");
    }
    if (keep)
        *keep = r;
    else
        spanstore_search_free(&r);
    return out;
}

static struct matcher *mk(enum matcher_op op, const char *name, const char *value)
{
    struct vg_err err = { 0 };
    struct matcher *m = matcher_new(op, vg_str_c(name), vg_str_c(value), &err);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

Test(spanq, no_filter_returns_newest_first_up_to_the_limit)
{
    corpus(30);
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 4;
    cr_assert_str_eq(run(&q, NULL), "30,29,28,27");
    struct spanstore_search_result r;
    q.limit = 1;
    run(&q, &r);
    cr_assert_eq(r.traces[0].spans, 3);
    cr_assert_eq(r.traces[0].errors, 1);
    cr_assert(r.traces[0].has_root);
    cr_assert(vg_str_eq_c(r.traces[0].root_service, "web"));
    cr_assert(vg_str_eq_c(r.traces[0].root_name, "GET /even"));
    cr_assert_eq(r.traces[0].end_ns - r.traces[0].start_ns, 130 * FX_MS);
    spanstore_search_free(&r);
}

Test(spanq, service_name_and_status_filters)
{
    corpus(30);
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 100;
    q.service = VG_STR("web");
    q.span_name = VG_STR("GET /odd");
    cr_assert_str_eq(run(&q, NULL), "29,27,25,23,21,19,17,15,13,11,9,7,5,3,1");
    q.service = VG_STR("api");
    cr_assert_str_eq(run(&q, NULL), "", "span name and service must be on one span");
    spanstore_query_init(&q);
    q.span_name = VG_STR("GET /even"); /* a span name alone: union over services */
    q.limit = 3;
    cr_assert_str_eq(run(&q, NULL), "30,28,26");
    spanstore_query_init(&q);
    q.status = SPAN_STATUS_ERROR;
    q.limit = 100;
    cr_assert_str_eq(run(&q, NULL), "30,20,10");
    q.service = VG_STR("db");
    cr_assert_str_eq(run(&q, NULL), "30,20,10");
    q.service = VG_STR("web");
    cr_assert_str_eq(run(&q, NULL), "", "no web span failed");
    spanstore_query_init(&q);
    q.status = SPAN_STATUS_UNSET;
    q.limit = 2;
    cr_assert_str_eq(run(&q, NULL), "30,29");
    spanstore_query_init(&q);
    q.kind = SPAN_KIND_SERVER;
    q.service = VG_STR("db");
    cr_assert_str_eq(run(&q, NULL), "", "db spans are client spans");
}

Test(spanq, span_and_trace_duration_filters)
{
    corpus(30);
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 100;
    q.service = VG_STR("db");
    q.min_duration_ns = 7 * FX_MS; /* t % 7 == 6 */
    cr_assert_str_eq(run(&q, NULL), "27,20,13,6");
    spanstore_query_init(&q);
    q.limit = 100;
    q.min_duration_ns = 127 * FX_MS; /* only web roots of t >= 27 */
    cr_assert_str_eq(run(&q, NULL), "30,29,28,27");
    q.max_duration_ns = 128 * FX_MS;
    cr_assert_str_eq(run(&q, NULL), "28,27");
    spanstore_query_init(&q);
    q.limit = 100;
    q.min_trace_duration_ns = 125 * FX_MS;
    q.max_trace_duration_ns = 126 * FX_MS;
    cr_assert_str_eq(run(&q, NULL), "26,25");
}

Test(spanq, attribute_filters_by_scope_equality_and_regex)
{
    corpus(30);
    struct spanstore_attr_filter f[2];
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 100;
    q.attrs = f;
    q.nattrs = 1;
    f[0] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_SPAN,
                                           mk(MATCH_EQ, "http.status_code", "500") };
    cr_assert_str_eq(run(&q, NULL), "30,20,10", "an int compared by its text");
    f[0].scope = SPANSTORE_SCOPE_RESOURCE;
    cr_assert_str_eq(run(&q, NULL), "", "not a resource attribute");
    f[0].scope = SPANSTORE_SCOPE_ANY;
    cr_assert_str_eq(run(&q, NULL), "30,20,10");
    matcher_free((struct matcher *)f[0].m);

    f[0] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_ANY,
                                           mk(MATCH_EQ, "http.method", "POST") };
    q.service = VG_STR("web");
    cr_assert_str_eq(run(&q, NULL), "30,27,24,21,18,15,12,9,6,3");
    q.service = VG_STR("db");
    cr_assert_str_eq(run(&q, NULL), "", "db spans say GET");
    matcher_free((struct matcher *)f[0].m);

    q.service = (struct vg_str){ 0 };
    f[0] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_SPAN, mk(MATCH_EQ, "user.id", "alice") };
    cr_assert_str_eq(run(&q, NULL), "", "trace 42 is not in this corpus");
    matcher_free((struct matcher *)f[0].m);

    f[0] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_RESOURCE,
                                           mk(MATCH_EQ, "host.name", "node-1") };
    q.limit = 2;
    cr_assert_str_eq(run(&q, NULL), "30,29", "a non-indexed key is verified on spans");
    matcher_free((struct matcher *)f[0].m);

    q.limit = 100;
    f[0] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_SPAN,
                                           mk(MATCH_RE, "http.route", "/api/v1/items/[5]") };
    f[1] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_ANY,
                                           mk(MATCH_NEQ, "http.status_code", "200") };
    q.nattrs = 2;
    q.service = VG_STR("api"); /* api spans have span id 2: route items/2, never 5 */
    cr_assert_str_eq(run(&q, NULL), "");
    q.service = VG_STR("db"); /* db spans: span id 3, route items/3 */
    cr_assert_str_eq(run(&q, NULL), "");
    matcher_free((struct matcher *)f[0].m);
    f[0] = (struct spanstore_attr_filter){ SPANSTORE_SCOPE_SPAN,
                                           mk(MATCH_RE, "http.route", ".*/3") };
    cr_assert_str_eq(run(&q, NULL), "30,20,10", "regex and != on the same db span");
    f[0].scope = SPANSTORE_SCOPE_RESOURCE;
    cr_assert_str_eq(run(&q, NULL), "");
    matcher_free((struct matcher *)f[0].m);
    matcher_free((struct matcher *)f[1].m);
}

Test(spanq, time_window_limits_the_search)
{
    corpus(30);
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 100;
    q.from_ns = FX_T0 + 10 * 60000 * FX_MS;
    q.to_ns = FX_T0 + 12 * 60000 * FX_MS + 5 * FX_MS;
    cr_assert_str_eq(run(&q, NULL), "12,11,10");
    q.status = SPAN_STATUS_ERROR;
    cr_assert_str_eq(run(&q, NULL), "10");
    q.from_ns = FX_T0 + 10 * 60000 * FX_MS + 3 * FX_MS; /* after trace 10's db span */
    cr_assert_str_eq(run(&q, NULL), "");
}

/* Trace t of put_interleaved starts t seconds after a time 30 s before an hour ends. */
#define IL_T(t) (FX_T0 + (2770 + (int64_t)(t)) * 1000 * FX_MS)

/* Writes traces first..last (step 3) of corpus' shape in one batch: each write's index
 * lists then hold many traces, and the lists of different writes overlap in time. */
static void put_interleaved(int first, int last)
{
    static struct fx_span f[3 * 21];
    size_t n = 0;
    for (int t = first; t <= last; t += 3) {
        int64_t t0 = IL_T(t);
        bool err = t % 10 == 0;
        fx_span(&f[n++], (uint64_t)t, 1, 0, "web", "GET /x", t0, 100 * FX_MS,
                SPAN_STATUS_UNSET);
        fx_span(&f[n++], (uint64_t)t, 2, 1, "api", "call", t0 + FX_MS, 50 * FX_MS,
                SPAN_STATUS_OK);
        fx_span(&f[n++], (uint64_t)t, 3, 2, "db", "query", t0 + 2 * FX_MS, FX_MS,
                err ? SPAN_STATUS_ERROR : SPAN_STATUS_OK);
    }
    put(f, n);
}

/* Index lists of three writes overlap in time (and cross an hour): the postings still
 * come out newest first, so limits and windows cut at the right traces. */
Test(spanq, index_lists_of_many_traces_merge_newest_first)
{
    put_interleaved(1, 60);
    put_interleaved(2, 60);
    put_interleaved(3, 60);
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 5;
    cr_assert_str_eq(run(&q, NULL), "60,59,58,57,56");
    q.to_ns = IL_T(30) + 5 * FX_MS;
    q.limit = 3;
    cr_assert_str_eq(run(&q, NULL), "30,29,28");
    q.to_ns = IL_T(29) + 5 * FX_MS; /* the other side of the hour */
    cr_assert_str_eq(run(&q, NULL), "29,28,27");
    q.from_ns = IL_T(28) + FX_MS;
    q.limit = 100;
    cr_assert_str_eq(run(&q, NULL), "29");
    spanstore_query_init(&q);
    q.limit = 100;
    q.status = SPAN_STATUS_ERROR;
    cr_assert_str_eq(run(&q, NULL), "60,50,40,30,20,10");
    q.status = -1;
    q.service = VG_STR("db");
    q.limit = 4;
    cr_assert_str_eq(run(&q, NULL), "60,59,58,57");
    /* after a reopen (the lists are read back from disk, not from the memtable) */
    spanstore_close(ss);
    open_with(0);
    q.limit = 2;
    q.to_ns = IL_T(47) + 2 * FX_MS; /* trace 47's db span at the bound */
    cr_assert_str_eq(run(&q, NULL), "47,46");
}

/* Segment directory records ('G' and 8 bytes) in dir/index, and the segments' list
 * and packed-block keys; the store must be closed. */
static size_t segment_records(size_t *lists, size_t *packs)
{
    char path[96];
    snprintf(path, sizeof path, "%s/index", dir);
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(path, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    size_t n = 0;
    for (kv_iter_seek(it, "G", 1); kv_iter_has_prefix(it, "G", 1); kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        n += span_index_seg_is_rec(k, klen);
        *lists += klen > 14 && k[13] != 'P';
        *packs += klen > 14 && k[13] == 'P';
    }
    kv_iter_free(it);
    kv_close(kv);
    return n;
}

/* The same searches with the postings spread over the head and several segments of
 * the index database (a small flush limit, so writes flush as they go): every source of
 * a term is merged newest first, and after a reopen everything comes from segments.
 * With 40 postings a flush every term of a segment is packed; with 400 the busy terms
 * (every trace, the services, the statuses) are lists. */
static void spread_over_segments(size_t limit)
{
    spanstore_close(ss);
    flush_postings = limit;
    open_with(0);
    flush_postings = 0;
    put_interleaved(1, 60);
    put_interleaved(2, 60);
    put_interleaved(3, 60);
    struct spanstore_query q;
    for (int round = 0; round < 2; round++) {
        spanstore_query_init(&q);
        q.limit = 5;
        cr_assert_str_eq(run(&q, NULL), "60,59,58,57,56");
        q.to_ns = IL_T(30) + 5 * FX_MS;
        q.limit = 3;
        cr_assert_str_eq(run(&q, NULL), "30,29,28");
        q.to_ns = IL_T(29) + 5 * FX_MS;
        cr_assert_str_eq(run(&q, NULL), "29,28,27");
        q.from_ns = IL_T(28) + FX_MS;
        q.limit = 100;
        cr_assert_str_eq(run(&q, NULL), "29");
        spanstore_query_init(&q);
        q.limit = 100;
        q.status = SPAN_STATUS_ERROR;
        cr_assert_str_eq(run(&q, NULL), "60,50,40,30,20,10");
        q.status = -1;
        q.service = VG_STR("db");
        q.limit = 200;
        struct spanstore_search_result r;
        run(&q, &r);
        cr_assert_eq(r.n, 60, "every trace once: %zu", r.n);
        spanstore_search_free(&r);
        spanstore_close(ss); /* flushes what is left: the second round reads segments */
        if (round == 0) {
            size_t lists = 0, packs = 0;
            cr_assert_geq(segment_records(&lists, &packs), 4, "the first record and flushes");
            cr_assert_gt(packs, 0);
            cr_assert_eq(lists, 0);
        }
        open_with(0);
    }
}

Test(spanq, postings_packed_in_segments_merge_newest_first)
{
    spread_over_segments(40);
}

/* Segments of many traces: the terms every trace carries are lists of pieces there,
 * the rare ones packed, and the same searches still come out right. */
Test(spanq, postings_listed_in_segments_merge_newest_first)
{
    spanstore_close(ss);
    flush_postings = 1500; /* one flush in the middle, one at close */
    open_with(0);
    flush_postings = 0;
    corpus(150);
    for (int round = 0; round < 2; round++) {
        struct spanstore_query q;
        spanstore_query_init(&q);
        q.limit = 4;
        cr_assert_str_eq(run(&q, NULL), "150,149,148,147");
        q.service = VG_STR("db");
        q.status = SPAN_STATUS_ERROR;
        q.limit = 5;
        cr_assert_str_eq(run(&q, NULL), "150,140,130,120,110");
        spanstore_query_init(&q);
        q.to_ns = FX_T0 + 75 * 60000 * FX_MS + 5 * FX_MS;
        q.limit = 3;
        cr_assert_str_eq(run(&q, NULL), "75,74,73");
        q.limit = 200;
        struct spanstore_search_result r;
        run(&q, &r);
        cr_assert_eq(r.n, 75);
        spanstore_search_free(&r);
        spanstore_close(ss);
        if (round == 0) {
            size_t lists = 0, packs = 0;
            cr_assert_geq(segment_records(&lists, &packs), 3, "the first record and flushes");
            cr_assert_gt(lists, 0);
            cr_assert_gt(packs, 0);
        }
        open_with(0);
    }
}

/* A search ending long before the newest lists of its hour seeks past them instead of
 * reading them (a list's postings lie within about 69 s of its newest). */
Test(spanq, an_early_end_skips_the_newer_lists_of_the_hour)
{
    corpus(40); /* one a minute, traces 1..40 in one hour */
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 1;
    q.to_ns = FX_T0 + 5 * 60000 * FX_MS + 5 * FX_MS;
    struct spanstore_search_result r;
    cr_assert_str_eq(run(&q, &r), "5");
    cr_assert_lt(r.keys_read, 12, "%llu keys", (unsigned long long)r.keys_read);
    spanstore_search_free(&r);
}

/* Spans of one ResourceSpans share one resource array: its indexed attributes are
 * worked out once and must still index every trace of the batch, in every hour. */
Test(spanq, a_shared_resource_indexes_every_trace)
{
    static struct fx_span f[60];
    struct span_attr res[2][2] = {
        { { VG_STR("service.name"), SPAN_VAL_STRING, .v.s = VG_STR("svc") },
          { VG_STR("rpc.system"), SPAN_VAL_STRING, .v.s = VG_STR("grpc") } },
        { { VG_STR("service.name"), SPAN_VAL_STRING, .v.s = VG_STR("svc") },
          { VG_STR("rpc.system"), SPAN_VAL_STRING, .v.s = VG_STR("http") } },
    };
    for (int t = 1; t <= 60; t++) { /* 20 minutes apart: the batch covers 20 hours */
        fx_span(&f[t - 1], (uint64_t)t, 1, 0, "svc", "op", FX_T0 + t * 20 * 60000 * FX_MS,
                FX_MS, SPAN_STATUS_OK);
        f[t - 1].s.resource_attrs = res[t > 50];
        f[t - 1].s.nresource_attrs = 2;
    }
    put(f, 30);
    put(f + 30, 30);
    struct spanstore_attr_filter fl = { SPANSTORE_SCOPE_RESOURCE, mk(MATCH_EQ, "rpc.system", "http") };
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.limit = 100;
    q.attrs = &fl;
    q.nattrs = 1;
    cr_assert_str_eq(run(&q, NULL), "60,59,58,57,56,55,54,53,52,51");
    matcher_free((struct matcher *)fl.m);
    fl.m = mk(MATCH_EQ, "rpc.system", "grpc");
    struct spanstore_search_result r;
    run(&q, &r);
    cr_assert_eq(r.n, 50);
    spanstore_search_free(&r);
    matcher_free((struct matcher *)fl.m);
}

/* The acceptance test of the indexes: many traces of a common service, few of a rare
 * one, a rare attribute on a common service, spread over two days. */
Test(spanq, searches_read_few_keys_and_pick_the_selective_index)
{
    for (int b = 0; b < 40; b++) {
        struct fx_span f[50];
        for (int k = 0; k < 50; k++) {
            int t = b * 50 + k + 1;
            fx_span(&f[k], (uint64_t)t, 1, 0, "web", "GET /", FX_T0 + (int64_t)t * 40000 * FX_MS,
                    FX_MS, SPAN_STATUS_OK);
            if (t % 500 == 7)
                fx_set_attr(&f[k], 5, "error", "true");
            if (t == 1001)
                f[k].s.service = VG_STR("rare");
        }
        put(f, 50);
    }
    struct spanstore_query q;
    struct spanstore_search_result r;
    spanstore_query_init(&q);
    q.service = VG_STR("rare");
    q.limit = 100;
    cr_assert_str_eq(run(&q, &r), "1001");
    cr_assert_lt(r.keys_read, 80, "%llu keys", (unsigned long long)r.keys_read);
    spanstore_search_free(&r);

    spanstore_query_init(&q);
    q.service = VG_STR("web");
    q.limit = 5;
    cr_assert_str_eq(run(&q, &r), "2000,1999,1998,1997,1996");
    cr_assert_lt(r.keys_read, 20, "%llu keys", (unsigned long long)r.keys_read);
    spanstore_search_free(&r);

    struct spanstore_attr_filter f = { SPANSTORE_SCOPE_SPAN, mk(MATCH_EQ, "error", "true") };
    spanstore_query_init(&q);
    q.service = VG_STR("web");
    q.attrs = &f;
    q.nattrs = 1;
    q.limit = 100;
    cr_assert_str_eq(run(&q, &r), "1507,1007,507,7");
    /* Probing both streams (32 + 4 entries), then 4 candidates verified. */
    cr_assert_lt(r.keys_read, 200, "%llu keys", (unsigned long long)r.keys_read);
    cr_assert_eq(r.inspected, 4);
    spanstore_search_free(&r);
    matcher_free((struct matcher *)f.m);

    /* A bounded inspection reports truncation. */
    spanstore_query_init(&q);
    q.limit = 100;
    q.max_inspect = 10;
    q.min_trace_duration_ns = 2 * FX_MS; /* matches nothing: every trace is inspected */
    run(&q, &r);
    cr_assert(r.truncated);
    cr_assert_eq(r.n, 0);
    spanstore_search_free(&r);

    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_gt(st.keys_read, 0);
}

Test(spanq, tag_names_values_services_and_operations)
{
    corpus(12);
    struct spanstore_list l;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_tag_names(ss, 0, 0, SPANSTORE_SCOPE_RESOURCE, 0, &l, &err), 0);
    cr_assert_eq(l.n, 2, "host.name, telemetry.sdk.language (service.name is intrinsic)");
    cr_assert(vg_str_eq_c(l.tags[0].key, "host.name"));
    cr_assert_eq(l.tags[0].scope, SPANSTORE_SCOPE_RESOURCE);
    spanstore_list_free(&l);
    cr_assert_eq(spanstore_tag_names(ss, 0, 0, SPANSTORE_SCOPE_ANY, 0, &l, &err), 0);
    cr_assert_eq(l.n, 9, "6 span keys + user.id, 2 resource keys");
    cr_assert_eq(l.tags[0].scope, SPANSTORE_SCOPE_RESOURCE, "resource keys sort first");
    cr_assert_eq(l.tags[8].scope, SPANSTORE_SCOPE_SPAN);
    spanstore_list_free(&l);

    cr_assert_eq(spanstore_tag_values(ss, 0, 0, SPANSTORE_SCOPE_SPAN, VG_STR("http.method"), 0,
                                      &l, &err), 0);
    cr_assert_eq(l.n, 2);
    cr_assert(vg_str_eq_c(l.tags[0].value, "GET"));
    cr_assert(vg_str_eq_c(l.tags[1].value, "POST"));
    cr_assert_eq(l.tags[1].type, SPAN_VAL_STRING);
    spanstore_list_free(&l);
    cr_assert_eq(spanstore_tag_values(ss, 0, 0, SPANSTORE_SCOPE_ANY,
                                      VG_STR("http.status_code"), 0, &l, &err), 0);
    cr_assert_eq(l.n, 2);
    cr_assert(vg_str_eq_c(l.tags[0].value, "200"));
    cr_assert_eq(l.tags[0].type, SPAN_VAL_INT);
    spanstore_list_free(&l);
    cr_assert_eq(spanstore_tag_values(ss, 0, 0, SPANSTORE_SCOPE_SPAN, VG_STR("http.route"), 2,
                                      &l, &err), 0);
    cr_assert_eq(l.n, 2, "limited");
    cr_assert(l.truncated);
    spanstore_list_free(&l);
    cr_assert_eq(spanstore_tag_values(ss, 0, 0, SPANSTORE_SCOPE_SPAN, VG_STR("nope"), 0, &l,
                                      &err), 0);
    cr_assert_eq(l.n, 0);
    spanstore_list_free(&l);

    cr_assert_eq(spanstore_services(ss, 0, 0, &l, &err), 0);
    cr_assert_eq(l.n, 3);
    cr_assert(vg_str_eq_c(l.names[0], "api"));
    cr_assert(vg_str_eq_c(l.names[2], "web"));
    spanstore_list_free(&l);
    /* A window before everything sees nothing. */
    cr_assert_eq(spanstore_services(ss, 1, FX_T0 - FX_HOUR, &l, &err), 0);
    cr_assert_eq(l.n, 0);
    spanstore_list_free(&l);

    cr_assert_eq(spanstore_operations(ss, 0, 0, VG_STR("web"), &l, &err), 0);
    cr_assert_eq(l.n, 2);
    cr_assert(vg_str_eq_c(l.ops[0].name, "GET /even"));
    cr_assert_eq(l.ops[0].kind, SPAN_KIND_SERVER);
    spanstore_list_free(&l);
    cr_assert_eq(spanstore_operations(ss, 0, 0, (struct vg_str){ 0 }, &l, &err), 0);
    cr_assert_eq(l.n, 4);
    spanstore_list_free(&l);
}

/* Traces first..last, each one span with a distinct request.id. */
static void put_requests(int first, int last)
{
    for (int t = first; t <= last; t++) {
        struct fx_span f;
        char v[16];
        snprintf(v, sizeof v, "req-%02d", t);
        fx_span(&f, (uint64_t)t, 1, 0, "web", "GET /", FX_T0 + t * FX_MS, FX_MS,
                SPAN_STATUS_OK);
        fx_set_attr(&f, 3, "request.id", v);
        put(&f, 1);
    }
}

Test(spanq, values_per_key_are_capped_per_hour)
{
    spanstore_close(ss);
    open_with(3);
    put_requests(1, 10);
    struct spanstore_list l;
    cr_assert_eq(spanstore_tag_values(ss, 0, 0, SPANSTORE_SCOPE_SPAN, VG_STR("request.id"), 0,
                                      &l, NULL), 0);
    cr_assert_eq(l.n, 3, "the first three values of the hour");
    cr_assert(vg_str_eq_c(l.tags[2].value, "req-03"));
    spanstore_list_free(&l);
    /* The cap holds across a reopen (it is counted from the stored entries). */
    spanstore_close(ss);
    open_with(4);
    put_requests(11, 12);
    cr_assert_eq(spanstore_tag_values(ss, 0, 0, SPANSTORE_SCOPE_SPAN, VG_STR("request.id"), 0,
                                      &l, NULL), 0);
    cr_assert_eq(l.n, 4);
    cr_assert(vg_str_eq_c(l.tags[3].value, "req-11"));
    spanstore_list_free(&l);
}

Test(spanq, search_and_listing_report_allocation_failure)
{
    corpus(10);
    struct spanstore_attr_filter f = { SPANSTORE_SCOPE_SPAN, mk(MATCH_EQ, "http.method", "GET") };
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.service = VG_STR("web");
    q.attrs = &f;
    q.nattrs = 1;
    size_t live = vg_alloc_live_bytes();
    bool ok = false;
    for (uint64_t n = 1; n < 300 && !ok; n++) {
        struct spanstore_search_result r;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        int rc = spanstore_search(ss, &q, &r, &err);
        vg_alloc_fail_after(0);
        ok = rc == 0;
        if (!ok)
            cr_assert_eq(rc, VG_ENOMEM, "allocation %llu: %s", (unsigned long long)n, err.msg);
        else
            cr_assert_eq(r.n, 7, "%zu found at allocation %llu", r.n, (unsigned long long)n);
        spanstore_search_free(&r);
        cr_assert_eq(vg_alloc_live_bytes(), live, "allocation %llu leaked",
                     (unsigned long long)n);
    }
    cr_assert(ok);
    ok = false;
    for (uint64_t n = 1; n < 100 && !ok; n++) {
        struct spanstore_list l;
        vg_alloc_fail_after(n);
        int rc = spanstore_tag_names(ss, 0, 0, SPANSTORE_SCOPE_ANY, 0, &l, NULL);
        vg_alloc_fail_after(0);
        ok = rc == 0;
        cr_assert(ok || rc == VG_ENOMEM);
        spanstore_list_free(&l);
        cr_assert_eq(vg_alloc_live_bytes(), live);
    }
    cr_assert(ok);
    matcher_free((struct matcher *)f.m);
}
