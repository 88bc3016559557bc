/* Tests storage/spanstore/spanstore.c (with span_index.c and spanstore_query.c for
 * reading back): traces written and read whole and sorted, late spans merged into the
 * summary, repeated span ids ignored (also against spans stored one per key before
 * chunks, and against version-2 chunks of earlier stores), invalid spans rejected beside valid ones, counters
 * kept across reopen, durability across SIGKILL, retention (including a trace that
 * outlives its first hour, and index lists holding several traces), allocation failure,
 * bad options, and concurrent writers. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/kv.h"
#include "../../../../storage/spanstore/spanstore.h"
#include "../crash_fixture.h"
#include "span_fixture.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define TMPDIR_PREFIX "vg_spanstore"
#include "../tmpdir_fixture.h"

TestSuite(spanstore, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 60);

/* maint_ms 0 = no background thread; retention 0 = the default. */
static struct spanstore *open_opts(int64_t maint_ms, int64_t retention_ns, bool no_sync)
{
    struct spanstore_opts o;
    spanstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = maint_ms;
    if (retention_ns)
        o.retention_ns = retention_ns;
    o.no_sync = no_sync;
    struct vg_err err = { 0 };
    struct spanstore *ss = spanstore_open(&o, &err);
    cr_assert_not_null(ss, "%s", err.msg);
    return ss;
}

static struct spanstore *open_store(void)
{
    return open_opts(0, 0, false);
}

static struct spanstore_write_result write_spans(struct spanstore *ss, struct fx_span *f,
                                                 size_t n)
{
    struct span *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = f[i].s;
    struct spanstore_write_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_write(ss, s, n, &res, &err), 0, "%s", err.msg);
    free(s);
    return res;
}

/* A three-span trace: root web, child api, grandchild db (error). */
static void three(struct fx_span *f, uint64_t trace, int64_t t0)
{
    fx_span(&f[0], trace, 1, 0, "web", "GET /checkout", t0, 50 * FX_MS, SPAN_STATUS_UNSET);
    fx_span(&f[1], trace, 2, 1, "api", "POST /order", t0 + 5 * FX_MS, 30 * FX_MS,
            SPAN_STATUS_OK);
    fx_span(&f[2], trace, 3, 2, "db", "INSERT orders", t0 + 10 * FX_MS, 10 * FX_MS,
            SPAN_STATUS_ERROR);
}

static struct spanstore_trace get(struct spanstore *ss, uint64_t trace)
{
    uint8_t tid[16];
    fx_id(tid, 16, trace);
    struct spanstore_trace t;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_trace_get(ss, tid, &t, &err), 0, "%s", err.msg);
    return t;
}

Test(spanstore, trace_is_read_whole_and_sorted_by_start)
{
    struct spanstore *ss = open_store();
    struct fx_span f[3];
    three(f, 1, FX_T0);
    struct fx_span rev[3] = { f[2], f[0], f[1] };
    for (int i = 0; i < 3; i++) { /* the copies point into f: re-point their arrays */
        rev[i].s.attrs = rev[i].attrs;
        rev[i].s.resource_attrs = rev[i].res;
    }
    struct spanstore_write_result res = write_spans(ss, f, 3);
    cr_assert_eq(res.accepted, 3);
    cr_assert_eq(res.traces_created, 1);
    struct fx_span other[3];
    three(other, 2, FX_T0);
    write_spans(ss, other, 3);

    struct spanstore_trace t = get(ss, 1);
    cr_assert_eq(t.n, 3);
    cr_assert(vg_str_eq_c(t.spans[0].name, "GET /checkout"));
    cr_assert(vg_str_eq_c(t.spans[1].service, "api"));
    cr_assert(vg_str_eq_c(t.spans[2].status_message, "upstream failed"));
    cr_assert_eq(t.spans[2].nevents, 1);
    cr_assert_eq(t.spans[0].nattrs, 6);
    spanstore_trace_free(&t);

    uint8_t none[16];
    fx_id(none, 16, 3);
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_trace_get(ss, none, &t, &err), VG_ENOTFOUND);
    spanstore_trace_free(&t);

    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.spans, 6);
    cr_assert_eq(st.traces, 2);
    cr_assert_gt(st.bytes, 6 * 100);
    spanstore_close(ss);
}

static struct spanstore_trace_summary one_summary(struct spanstore *ss, uint64_t trace)
{
    struct spanstore_query q;
    spanstore_query_init(&q);
    struct spanstore_search_result r;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_search(ss, &q, &r, &err), 0, "%s", err.msg);
    uint8_t tid[16];
    fx_id(tid, 16, trace);
    struct spanstore_trace_summary s = { 0 };
    for (size_t i = 0; i < r.n; i++)
        if (!memcmp(r.traces[i].trace_id, tid, 16))
            s = r.traces[i];
    s.root_service = s.root_name = (struct vg_str){ NULL, 0 }; /* freed below */
    spanstore_search_free(&r);
    return s;
}

Test(spanstore, late_spans_merge_into_the_summary)
{
    struct spanstore *ss = open_store();
    struct fx_span f[3];
    three(f, 1, FX_T0);
    write_spans(ss, &f[2], 1); /* the grandchild first */
    struct spanstore_trace_summary s = one_summary(ss, 1);
    cr_assert_eq(s.spans, 1);
    cr_assert_not(s.has_root);
    cr_assert_eq(s.errors, 1);
    struct spanstore_write_result res = write_spans(ss, f, 2); /* root and child, later */
    cr_assert_eq(res.accepted, 2);
    cr_assert_eq(res.traces_created, 0);
    s = one_summary(ss, 1);
    cr_assert_eq(s.spans, 3);
    cr_assert(s.has_root);
    cr_assert_eq(s.start_ns, FX_T0);
    cr_assert_eq(s.end_ns, FX_T0 + 50 * FX_MS);

    struct spanstore_query q;
    spanstore_query_init(&q);
    struct spanstore_search_result r;
    cr_assert_eq(spanstore_search(ss, &q, &r, NULL), 0);
    cr_assert_eq(r.n, 1);
    cr_assert(vg_str_eq_c(r.traces[0].root_service, "web"));
    cr_assert(vg_str_eq_c(r.traces[0].root_name, "GET /checkout"));
    spanstore_search_free(&r);
    struct spanstore_trace t = get(ss, 1);
    cr_assert_eq(t.n, 3);
    spanstore_trace_free(&t);
    spanstore_close(ss);
}

/* Late spans of a trace stored before a reopen merge into it: the trace filter that
 * spares new traces their summary read is given the stored ids at open (by the open
 * itself without threads, by its scan thread with them). */
static void late_after_reopen(int64_t maint_ms)
{
    struct spanstore *ss = open_opts(maint_ms, 0, false);
    struct fx_span f[3];
    for (uint64_t t = 1; t <= 50; t++) {
        three(f, t, FX_T0 + (int64_t)t * FX_MS);
        write_spans(ss, &f[2], 1);
    }
    spanstore_close(ss);
    ss = open_opts(maint_ms, 0, false);
    if (maint_ms)
        usleep(300 * 1000); /* the scan of 50 ids is long done */
    for (uint64_t t = 1; t <= 50; t++) {
        three(f, t, FX_T0 + (int64_t)t * FX_MS);
        struct spanstore_write_result res = write_spans(ss, f, 2);
        cr_assert_eq(res.accepted, 2);
        cr_assert_eq(res.traces_created, 0, "trace %llu is not new", (unsigned long long)t);
        struct spanstore_trace tr = get(ss, t);
        cr_assert_eq(tr.n, 3, "trace %llu", (unsigned long long)t);
        spanstore_trace_free(&tr);
    }
    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.traces, 50);
    cr_assert_eq(st.spans, 150);
    spanstore_close(ss);
}

Test(spanstore, late_spans_after_a_reopen_merge)
{
    late_after_reopen(0);
}

Test(spanstore, late_spans_after_a_reopen_merge_with_the_scan_thread)
{
    late_after_reopen(60000);
}

Test(spanstore, repeated_span_ids_are_ignored_and_invalid_spans_rejected)
{
    struct spanstore *ss = open_store();
    struct fx_span f[4];
    three(f, 1, FX_T0);
    f[3] = f[1]; /* same span id twice in one batch */
    f[3].s.attrs = f[3].attrs;
    f[3].s.resource_attrs = f[3].res;
    struct spanstore_write_result res = write_spans(ss, f, 4);
    cr_assert_eq(res.accepted, 3);
    cr_assert_eq(res.duplicates, 1);
    res = write_spans(ss, f, 3); /* a client retry */
    cr_assert_eq(res.accepted, 0);
    cr_assert_eq(res.duplicates, 3);

    struct fx_span bad[2];
    fx_span(&bad[0], 5, 1, 0, "web", "x", FX_T0, 10, SPAN_STATUS_OK);
    fx_span(&bad[1], 6, 1, 0, "web", "y", FX_T0, 10, SPAN_STATUS_OK);
    bad[0].s.end_ns = FX_T0 - 1;
    res = write_spans(ss, bad, 2);
    cr_assert_eq(res.accepted, 1);
    cr_assert_eq(res.rejected, 1);
    cr_assert(strstr(res.first_reject, "span 0: end_time"), "%s", res.first_reject);

    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.spans, 4);
    cr_assert_eq(st.traces, 2);
    spanstore_close(ss);
    /* The counters are stored with the spans and come back on reopen. */
    ss = open_store();
    struct spanstore_stats st2;
    spanstore_stats(ss, &st2);
    cr_assert_eq(st2.spans, 4);
    cr_assert_eq(st2.traces, 2);
    cr_assert_eq(st2.bytes, st.bytes);
    spanstore_close(ss);
}

#define CRASH_BATCH 20

static void crash_child(int wfd)
{
    struct spanstore *ss = open_store();
    for (int i = 0;; i++) {
        struct fx_span f[CRASH_BATCH];
        struct span s[CRASH_BATCH];
        for (int k = 0; k < CRASH_BATCH; k++) {
            /* Each batch: 10 new traces of 2 spans each. */
            uint64_t trace = (uint64_t)i * 10 + (uint64_t)k / 2 + 1;
            fx_span(&f[k], trace, (uint64_t)k % 2 + 1, k % 2 ? 1 : 0, "svc", "op",
                    FX_T0 + i * FX_MS, FX_MS, SPAN_STATUS_OK);
            s[k] = f[k].s;
        }
        struct spanstore_write_result res;
        struct vg_err err;
        if (spanstore_write(ss, s, CRASH_BATCH, &res, &err) != 0 || res.accepted != CRASH_BATCH)
            _exit(3);
        crash_ack(wfd, i);
    }
}

Test(spanstore, acknowledged_batches_survive_sigkill_whole)
{
    int last = crash_run(crash_child, 60);

    struct spanstore *ss = open_store();
    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.spans % CRASH_BATCH, 0, "%llu spans: not whole batches",
                 (unsigned long long)st.spans);
    cr_assert_geq((int)(st.spans / CRASH_BATCH), last + 1, "acknowledged batches lost");
    cr_assert_eq(st.traces * 2, st.spans);
    for (int i = 0; i <= last; i++) {
        struct spanstore_trace t = get(ss, (uint64_t)i * 10 + 1);
        cr_assert_eq(t.n, 2);
        spanstore_trace_free(&t);
    }
    /* The index postings were in memory when the child died: the open rebuilt them
     * from the chunks, so a search finds every stored trace. */
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.service = VG_STR("svc");
    q.limit = 10000;
    struct spanstore_search_result r;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_search(ss, &q, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n, st.traces < 10000 ? st.traces : 10000, "%zu of %llu traces found", r.n,
                 (unsigned long long)st.traces);
    spanstore_search_free(&r);
    spanstore_close(ss);
}

/* Keys starting with prefix in the store's database (sub NULL) or in dir/sub. */
static size_t count_keys_in(const char *sub, const char *prefix)
{
    struct vg_err err = { 0 };
    char path[128];
    snprintf(path, sizeof path, "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    struct kv *kv = kv_open(path, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    size_t n = 0, plen = strlen(prefix);
    for (kv_iter_seek(it, prefix, plen); kv_iter_has_prefix(it, prefix, plen); kv_iter_next(it))
        n++;
    kv_iter_free(it);
    kv_close(kv);
    return n;
}

static size_t count_keys(const char *prefix)
{
    return count_keys_in(NULL, prefix);
}

/* A store written before chunks holds one version-1 span per 'S' key: such spans are
 * read back (also by search verification) beside chunks, and a retry of one of them is
 * still a repeat. */
Test(spanstore, spans_stored_one_per_key_are_read_and_deduplicated)
{
    struct spanstore *ss = open_store();
    struct fx_span f[3];
    three(f, 1, FX_T0);
    cr_assert_eq(write_spans(ss, f, 3).accepted, 3); /* one chunk, keyed by span 1 */
    spanstore_close(ss);

    /* Rewrite the trace the way version-1 stores kept it: each span under its own 'S'
     * key, and a version-1 summary (no chunk list) in place of the one written, which
     * names the single chunk (its last 9 bytes: count 1 and the 8-byte id). Index
     * entries stay as written. */
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct vg_buf key, val;
    vg_buf_init(&key);
    vg_buf_init(&val);
    for (int i = 0; i < 3; i++) {
        vg_buf_reset(&key);
        vg_buf_reset(&val);
        vg_buf_putc(&key, 'S');
        vg_buf_append(&key, f[i].s.trace_id, SPAN_TRACE_ID_LEN);
        vg_buf_append(&key, f[i].s.span_id, SPAN_ID_LEN);
        cr_assert_eq(span_encode(&f[i].s, &val, &err), 0, "%s", err.msg);
        cr_assert_eq(kv_put(kv, key.p, key.len, val.p, val.len, true, &err), 0, "%s", err.msg);
    }
    vg_buf_reset(&key);
    vg_buf_putc(&key, 'T');
    vg_buf_append(&key, f[0].s.trace_id, SPAN_TRACE_ID_LEN);
    cr_assert_eq(kv_get(kv, NULL, key.p, key.len, &val, &err), 0, "%s", err.msg);
    cr_assert_eq(val.p[0], 2);
    cr_assert_eq(val.p[val.len - 9], 1);
    val.p[0] = 1;
    cr_assert_eq(kv_put(kv, key.p, key.len, val.p, val.len - 9, true, &err), 0, "%s", err.msg);
    kv_close(kv);
    vg_buf_free(&key);
    vg_buf_free(&val);
    cr_assert_eq(count_keys("S"), 3);
    char cmd[160]; /* and without the chunk database, as such a store was */
    snprintf(cmd, sizeof cmd, "rm -rf '%s/chunks'", dir);
    cr_assert_eq(system(cmd), 0);

    ss = open_store();
    struct spanstore_trace t = get(ss, 1);
    cr_assert_eq(t.n, 3);
    cr_assert(vg_str_eq_c(t.spans[2].name, "INSERT orders"));
    spanstore_trace_free(&t);
    struct spanstore_write_result res = write_spans(ss, f, 3); /* a retry of all three */
    cr_assert_eq(res.accepted, 0);
    cr_assert_eq(res.duplicates, 3);
    struct fx_span late[2];
    fx_span(&late[0], 1, 4, 1, "web", "late", FX_T0 + 1, 5, SPAN_STATUS_OK);
    late[1] = f[2]; /* a repeat beside a new span: only the new one is kept */
    late[1].s.attrs = late[1].attrs;
    late[1].s.resource_attrs = late[1].res;
    res = write_spans(ss, late, 2);
    cr_assert_eq(res.accepted, 1);
    cr_assert_eq(res.duplicates, 1);
    t = get(ss, 1); /* 3 under 'S' keys, 1 in a chunk */
    cr_assert_eq(t.n, 4);
    spanstore_trace_free(&t);
    /* Search verification (kind is not indexed) reads the version-1 values too. */
    struct spanstore_query q;
    spanstore_query_init(&q);
    q.status = SPAN_STATUS_ERROR;
    q.kind = SPAN_KIND_CLIENT;
    struct spanstore_search_result r;
    cr_assert_eq(spanstore_search(ss, &q, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n, 1);
    cr_assert_eq(r.traces[0].spans, 4);
    spanstore_search_free(&r);
    q.kind = SPAN_KIND_INTERNAL;
    cr_assert_eq(spanstore_search(ss, &q, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n, 0);
    spanstore_search_free(&r);
    spanstore_close(ss);
}

/* Stores of the previous version hold version-2 chunks (every span whole): the chunk
 * written now (version 3, resource parts shared) is replaced by the version-2 chunk of
 * the same spans; the trace reads back the same, and a retry is still a repeat. */
Test(spanstore, version2_chunks_of_earlier_stores_are_read_and_deduplicated)
{
    struct spanstore *ss = open_store();
    struct fx_span f[4];
    three(f, 1, FX_T0);
    fx_span(&f[3], 1, 4, 1, "web", "GET /again", FX_T0 + 1, 5, SPAN_STATUS_OK);
    cr_assert_eq(write_spans(ss, f, 4).accepted, 4);
    struct spanstore_trace want = get(ss, 1);
    spanstore_close(ss);

    char path[128];
    snprintf(path, sizeof path, "%s/chunks", dir);
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(path, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    kv_iter_seek_first(it);
    cr_assert(kv_iter_valid(it));
    size_t klen, vlen;
    const char *k = kv_iter_key(it, &klen);
    cr_assert_eq((uint8_t)kv_iter_value(it, &vlen)[0], SPAN_CHUNK_VERSION_4);
    char ck[8];
    memcpy(ck, k, sizeof ck);
    kv_iter_next(it);
    cr_assert_not(kv_iter_valid(it)); /* one write, one trace: one chunk */
    kv_iter_free(it);
    struct span order[4] = { f[0].s, f[1].s, f[2].s, f[3].s }; /* by span id, as stored */
    struct vg_buf v2, e;
    vg_buf_init(&v2);
    vg_buf_init(&e);
    for (int i = 0; i < 4; i++) {
        vg_buf_reset(&e);
        cr_assert_eq(span_encode(&order[i], &e, &err), 0, "%s", err.msg);
        span_chunk_append(&v2, e.p, e.len);
    }
    cr_assert_gt(v2.len, vlen); /* "web" twice: version 4 stored its resource once */
    cr_assert_eq(kv_put(kv, ck, sizeof ck, v2.p, v2.len, true, &err), 0, "%s", err.msg);
    kv_close(kv);
    vg_buf_free(&v2);
    vg_buf_free(&e);

    ss = open_store();
    struct spanstore_trace t = get(ss, 1);
    cr_assert_eq(t.n, want.n);
    for (size_t i = 0; i < t.n; i++) {
        cr_assert_eq(memcmp(t.spans[i].span_id, want.spans[i].span_id, SPAN_ID_LEN), 0);
        cr_assert(vg_str_eq(t.spans[i].service, want.spans[i].service));
        cr_assert_eq(t.spans[i].nresource_attrs, want.spans[i].nresource_attrs);
        cr_assert_eq(t.spans[i].nattrs, want.spans[i].nattrs);
    }
    spanstore_trace_free(&t);
    spanstore_trace_free(&want);
    struct spanstore_write_result res = write_spans(ss, f, 4);
    cr_assert_eq(res.accepted, 0);
    cr_assert_eq(res.duplicates, 4);
    spanstore_close(ss);
}

Test(spanstore, retention_deletes_old_traces_and_their_hours)
{
    struct spanstore *ss = open_store();
    struct fx_span f[3];
    for (uint64_t tr = 1; tr <= 4; tr++) { /* one trace per hour */
        three(f, tr, FX_T0 + (int64_t)(tr - 1) * FX_HOUR);
        write_spans(ss, f, 3);
    }
    /* Trace 9 starts in the first hour but has a span ending in the third. */
    struct fx_span longf;
    fx_span(&longf, 9, 1, 0, "batch", "nightly", FX_T0, 2 * FX_HOUR + 60000 * FX_MS,
            SPAN_STATUS_OK);
    write_spans(ss, &longf, 1);

    uint64_t deleted = 0;
    struct vg_err err = { 0 };
    int64_t cutoff = (FX_T0 / FX_HOUR + 2) * FX_HOUR; /* the start of the third hour */
    cr_assert_eq(spanstore_retain(ss, cutoff, &deleted, &err), 0, "%s", err.msg);
    cr_assert_eq(deleted, 2, "traces 1 and 2 ended before the cutoff");
    uint8_t tid[16];
    struct spanstore_trace t;
    fx_id(tid, 16, 1);
    cr_assert_eq(spanstore_trace_get(ss, tid, &t, NULL), VG_ENOTFOUND);
    spanstore_trace_free(&t);
    t = get(ss, 9);
    cr_assert_eq(t.n, 1, "a trace still alive is kept whole");
    spanstore_trace_free(&t);
    t = get(ss, 3);
    spanstore_trace_free(&t);

    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.traces, 3);
    cr_assert_eq(st.spans, 7);
    struct spanstore_list l;
    cr_assert_eq(spanstore_services(ss, 0, 0, &l, NULL), 0);
    cr_assert_eq(l.n, 3, "registry of the dropped hours is gone; web, api, db remain");
    spanstore_list_free(&l);

    /* Later, the long trace goes too: it was re-indexed in the hour of its end. */
    cr_assert_eq(spanstore_retain(ss, cutoff + 10 * FX_HOUR, &deleted, &err), 0);
    cr_assert_eq(deleted, 3);
    spanstore_stats(ss, &st);
    cr_assert_eq(st.traces, 0);
    cr_assert_eq(st.spans, 0);
    cr_assert_eq(st.bytes, 0);
    spanstore_close(ss);
    cr_assert_eq(count_keys("S"), 0);
    cr_assert_eq(count_keys("T"), 0);
    cr_assert_eq(count_keys("X"), 0);
    cr_assert_eq(count_keys_in("chunks", ""), 0, "the chunks of deleted traces go too");
}

/* One write's traces share its index lists (one per term): retention walks every
 * posting of the 'a' lists, deleting the ended traces and keeping the live one. */
Test(spanstore, retention_walks_lists_of_many_traces)
{
    struct spanstore *ss = open_store();
    struct fx_span f[12];
    for (uint64_t tr = 1; tr <= 4; tr++) /* four traces a minute apart, one write */
        three(f + 3 * (tr - 1), tr, FX_T0 + (int64_t)tr * 60000 * FX_MS);
    f[11].s.end_ns = FX_T0 + 5 * FX_HOUR; /* trace 4 ends hours later */
    write_spans(ss, f, 12);
    uint64_t deleted = 0;
    struct vg_err err = { 0 };
    cr_assert_eq(spanstore_retain(ss, FX_T0 + 3 * FX_HOUR, &deleted, &err), 0, "%s", err.msg);
    cr_assert_eq(deleted, 3);
    uint8_t tid[16];
    struct spanstore_trace t;
    for (uint64_t tr = 1; tr <= 3; tr++) {
        fx_id(tid, 16, tr);
        cr_assert_eq(spanstore_trace_get(ss, tid, &t, NULL), VG_ENOTFOUND);
        spanstore_trace_free(&t);
    }
    t = get(ss, 4);
    cr_assert_eq(t.n, 3);
    spanstore_trace_free(&t);
    struct spanstore_query q;
    spanstore_query_init(&q);
    struct spanstore_search_result r;
    cr_assert_eq(spanstore_search(ss, &q, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r.n, 1, "the live trace is found through its re-filed 'a' list");
    spanstore_search_free(&r);
    /* the counters, after the deletions, as a reopen reads them back */
    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.traces, 1);
    cr_assert_eq(st.spans, 3);
    spanstore_close(ss);
    ss = open_store();
    struct spanstore_stats st2;
    spanstore_stats(ss, &st2);
    cr_assert_eq(st2.traces, 1);
    cr_assert_eq(st2.spans, 3);
    cr_assert_eq(st2.bytes, st.bytes);
    cr_assert_eq(spanstore_retain(ss, FX_T0 + 6 * FX_HOUR, &deleted, &err), 0, "%s", err.msg);
    cr_assert_eq(deleted, 1);
    spanstore_stats(ss, &st2);
    cr_assert_eq(st2.traces, 0);
    cr_assert_eq(st2.spans, 0);
    cr_assert_eq(st2.bytes, 0);
    spanstore_close(ss);
    cr_assert_eq(count_keys("T"), 0);
    cr_assert_eq(count_keys("X"), 0);
}

/* Chunks live in dir/chunks under ids that only grow: after a reopen, new chunks of an
 * old trace get new ids (none overwrites a stored one), and the trace reads whole. */
Test(spanstore, chunk_ids_continue_across_reopen)
{
    struct spanstore *ss = open_store();
    struct fx_span f[3];
    three(f, 1, FX_T0);
    cr_assert_eq(write_spans(ss, f, 2).accepted, 2);
    spanstore_close(ss);
    cr_assert_eq(count_keys_in("chunks", ""), 1);
    cr_assert_eq(count_keys("S"), 0, "no span is stored under 'S' keys any more");
    ss = open_store();
    cr_assert_eq(write_spans(ss, f + 2, 1).accepted, 1);
    struct fx_span other[3];
    three(other, 2, FX_T0);
    cr_assert_eq(write_spans(ss, other, 3).accepted, 3);
    struct spanstore_trace t = get(ss, 1);
    cr_assert_eq(t.n, 3);
    spanstore_trace_free(&t);
    t = get(ss, 2);
    cr_assert_eq(t.n, 3);
    spanstore_trace_free(&t);
    spanstore_close(ss);
    cr_assert_eq(count_keys_in("chunks", ""), 3);
}

Test(spanstore, background_thread_applies_retention)
{
    struct spanstore *ss = open_opts(20, FX_HOUR, false);
    struct fx_span f[3];
    three(f, 1, FX_T0); /* 2023: far older than an hour */
    write_spans(ss, f, 3);
    struct spanstore_stats st = { .traces = 1 };
    for (int i = 0; i < 200 && st.traces; i++) {
        usleep(10000);
        spanstore_stats(ss, &st);
    }
    cr_assert_eq(st.traces, 0);
    spanstore_close(ss);
}

Test(spanstore, allocation_failure_stores_nothing_and_leaks_nothing)
{
    struct spanstore *ss = open_store();
    struct fx_span f[3];
    three(f, 1, FX_T0);
    struct span s[3] = { f[0].s, f[1].s, f[2].s };
    size_t live = vg_alloc_live_bytes();
    int failures = 0;
    for (uint64_t n = 1; n < 400; n++) {
        struct spanstore_write_result res;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        int rc = spanstore_write(ss, s, 3, &res, &err);
        vg_alloc_fail_after(0);
        if (rc == 0)
            break;
        failures++;
        cr_assert_eq(rc, VG_ENOMEM, "allocation %llu: %d %s", (unsigned long long)n, rc,
                     err.msg);
        cr_assert_eq(res.accepted, 0);
        cr_assert_eq(vg_alloc_live_bytes(), live, "allocation %llu leaked",
                     (unsigned long long)n);
        uint8_t tid[16];
        fx_id(tid, 16, 1);
        struct spanstore_trace t;
        cr_assert_eq(spanstore_trace_get(ss, tid, &t, NULL), VG_ENOTFOUND);
        spanstore_trace_free(&t);
    }
    cr_assert_gt(failures, 5);
    struct spanstore_trace t = get(ss, 1);
    cr_assert_eq(t.n, 3);
    spanstore_trace_free(&t);
    /* Reads fail cleanly too. */
    uint8_t tid[16];
    fx_id(tid, 16, 1);
    for (uint64_t n = 1; n < 20; n++) {
        vg_alloc_fail_after(n);
        struct vg_err err = { 0 };
        int rc = spanstore_trace_get(ss, tid, &t, &err);
        vg_alloc_fail_after(0);
        spanstore_trace_free(&t);
        if (rc == 0)
            break;
        cr_assert_eq(rc, VG_ENOMEM, "%s", err.msg);
    }
    spanstore_close(ss);
}

Test(spanstore, bad_options_and_unusable_directory)
{
    struct spanstore_opts o;
    spanstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0;
    const char *rules[] = { "http.*", "a*b" };
    o.indexed_attrs = rules;
    o.nindexed_attrs = 2;
    struct vg_err err = { 0 };
    cr_assert_null(spanstore_open(&o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, "a*b"), "%s", err.msg);

    char file[96];
    snprintf(file, sizeof file, "%s/plain-file", dir);
    FILE *fp = fopen(file, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    spanstore_opts_default(&o);
    o.dir = file;
    o.maint_interval_ms = 0;
    cr_assert_null(spanstore_open(&o, &err));
    cr_assert_eq(err.code, VG_EIO, "%s", err.msg);
}

#define WRITERS 4
#define WRITER_BATCHES 25

struct writer_arg {
    struct spanstore *ss;
    int id;
};

/* Every writer adds spans to the same 10 shared traces and to traces of its own. */
static void *writer(void *p)
{
    struct writer_arg *a = p;
    for (int b = 0; b < WRITER_BATCHES; b++) {
        struct fx_span f[10];
        struct span s[10];
        for (int k = 0; k < 10; k++) {
            uint64_t trace = k < 5 ? (uint64_t)k + 1 : 1000 + (uint64_t)a->id * 1000 + b;
            uint64_t span = (uint64_t)a->id * 100000 + (uint64_t)b * 10 + (uint64_t)k + 1;
            fx_span(&f[k], trace, span, 1, "svc", "op", FX_T0 + b * FX_MS, FX_MS,
                    SPAN_STATUS_OK);
            s[k] = f[k].s;
        }
        struct spanstore_write_result res;
        if (spanstore_write(a->ss, s, 10, &res, NULL) != 0 || res.accepted != 10)
            return (void *)1;
    }
    return NULL;
}

Test(spanstore, concurrent_writers_lose_nothing)
{
    struct spanstore *ss = open_opts(0, 0, true);
    pthread_t th[WRITERS];
    struct writer_arg args[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        args[i] = (struct writer_arg){ ss, i };
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        cr_assert_null(rv);
    }
    struct spanstore_stats st;
    spanstore_stats(ss, &st);
    cr_assert_eq(st.spans, WRITERS * WRITER_BATCHES * 10);
    cr_assert_eq(st.traces, 5 + WRITERS * WRITER_BATCHES);
    for (uint64_t tr = 1; tr <= 5; tr++) {
        struct spanstore_trace t = get(ss, tr);
        cr_assert_eq(t.n, WRITERS * WRITER_BATCHES);
        spanstore_trace_free(&t);
        cr_assert_eq(one_summary(ss, tr).spans, WRITERS * WRITER_BATCHES,
                     "summary of shared trace %llu", (unsigned long long)tr);
    }
    spanstore_close(ss);
}
